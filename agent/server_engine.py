"""Run API-format graphs on one or many real ComfyUI servers through their HTTP/WS API queue.

Protocol (ComfyUI server.py / main.py): POST /prompt with a client_id, follow
/ws?clientId= for progress, wait for `executing` with node null (history is
written only then), read /history/{id}, download outputs with /view. Each
prompt goes to the least-busy server (/queue); a server that dies mid-run is
reported as such and the prompt is retried once on another server.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from .catalog import Catalog
from .engine import EventHook, RunResult
from .validate import ValidationResult, validate_graph


class ServerError(RuntimeError):
    """A ComfyUI server refused, timed out or died; the message names the server."""


class ComfyServer:
    """A thin client of one ComfyUI server."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        import requests

        self.http = requests.Session()

    def _request(self, method: str, path: str, **kwargs):
        import requests

        try:
            response = self.http.request(method, self.url + path, timeout=kwargs.pop("timeout", self.timeout), **kwargs)
        except requests.Timeout:
            raise ServerError(f"ComfyUI server {self.url} did not answer {method} {path} within {self.timeout:.0f} s") from None
        except requests.ConnectionError:
            raise ServerError(f"ComfyUI server {self.url} is not reachable (start it with `python main.py "
                              f"--listen` or check the address)") from None
        return response

    def get_json(self, path: str) -> dict:
        response = self._request("GET", path)
        if response.status_code != 200:
            raise ServerError(f"ComfyUI server {self.url}: GET {path} answered HTTP {response.status_code}")
        return response.json()

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def busy(self) -> int:
        queue = self.get_json("/queue")
        return len(queue.get("queue_running", [])) + len(queue.get("queue_pending", []))

    def submit(self, graph: dict, client_id: str, prompt_id: str, extra_data: dict | None = None) -> dict:
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id, "extra_data": extra_data or {}}
        response = self._request("POST", "/prompt", json=body)
        try:
            data = response.json()
        except ValueError:
            raise ServerError(f"ComfyUI server {self.url}: POST /prompt answered HTTP {response.status_code} "
                              f"with no JSON") from None
        data["_status"] = response.status_code
        return data

    def history(self, prompt_id: str) -> dict:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id, {})

    def view(self, entry: dict) -> bytes:
        params = {"filename": entry["filename"], "subfolder": entry.get("subfolder", ""),
                  "type": entry.get("type", "output")}
        response = self._request("GET", "/view", params=params)
        if response.status_code != 200:
            raise ServerError(f"ComfyUI server {self.url}: could not download {entry['filename']} "
                              f"(HTTP {response.status_code})")
        return response.content

    def upload_image(self, path: Path, subfolder: str = "animation_studio") -> str:
        with open(path, "rb") as fh:
            response = self._request("POST", "/upload/image", files={"image": (path.name, fh)},
                                     data={"type": "input", "subfolder": subfolder})
        if response.status_code != 200:
            raise ServerError(f"ComfyUI server {self.url}: upload of {path.name} failed (HTTP {response.status_code})")
        data = response.json()
        return f"{data['subfolder']}/{data['name']}" if data.get("subfolder") else data["name"]

    def interrupt(self, prompt_id: str | None = None) -> None:
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})

    def connect_ws(self, client_id: str):
        import websocket

        ws_url = self.url.replace("http://", "ws://").replace("https://", "wss://") + f"/ws?clientId={client_id}"
        try:
            return websocket.create_connection(ws_url, timeout=self.timeout)
        except (OSError, websocket.WebSocketException) as exc:
            raise ServerError(f"ComfyUI server {self.url}: websocket connection failed ({exc})") from None


class ServerEngine:
    """The same run() contract as EmbeddedEngine, executed by ComfyUI servers."""

    name = "comfyui"

    def __init__(self, urls: list[str] | str, timeout: float | None = None, request_timeout: float = 30.0):
        if isinstance(urls, str):
            urls = [u for u in urls.split(",") if u]
        if not urls:
            raise ValueError("no ComfyUI server URL given")
        if timeout is None:
            from .config import load_settings

            timeout = load_settings().comfyui.timeout_s
        self.servers = [ComfyServer(u, request_timeout) for u in urls]
        self.timeout = timeout
        self._catalog: Catalog | None = None
        self._active: dict[str, ComfyServer] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return "comfyui:" + ",".join(s.url for s in self.servers)

    # ------------------------------------------------------------ catalog / validation
    def catalog(self) -> Catalog:
        if self._catalog is None:
            errors = []
            for server in self.servers:
                try:
                    self._catalog = Catalog.from_object_info(server.object_info(), source=server.url)
                    break
                except ServerError as exc:
                    errors.append(str(exc))
            else:
                raise ServerError("; ".join(errors))
        return self._catalog

    def validate(self, graph: dict) -> ValidationResult:
        return validate_graph(graph, self.catalog())

    # ------------------------------------------------------------ scheduling
    def _pick(self, exclude: set[str] = frozenset()) -> ComfyServer:
        loads = []
        for server in self.servers:
            if server.url in exclude:
                continue
            try:
                loads.append((server.busy(), len([s for s in self._active.values() if s is server]), server))
            except ServerError:
                continue
        if not loads:
            tried = ", ".join(s.url for s in self.servers)
            raise ServerError(f"no ComfyUI server is reachable ({tried})")
        loads.sort(key=lambda item: (item[0] + item[1]))
        return loads[0][2]

    def interrupt(self) -> None:
        with self._lock:
            active = list(self._active.items())
        for prompt_id, server in active:
            try:
                server.interrupt(prompt_id)
            except ServerError:
                pass

    def put_input(self, path: str | Path) -> str:
        """Upload a local file to every server's input folder; returns the name graphs use."""
        names = {server.upload_image(Path(path)) for server in self.servers}
        return names.pop()

    # ------------------------------------------------------------ running
    def run(self, graph: dict, run_dir: str | Path | None = None, on_event: EventHook | None = None,
            run_id: str | None = None, extra_data: dict | None = None) -> RunResult:
        run_id = run_id or uuid.uuid4().hex[:12]
        tried: set[str] = set()
        last: RunResult | None = None
        for _ in range(min(2, len(self.servers))):
            try:
                server = self._pick(tried)
            except ServerError as exc:
                result = last or RunResult(run_id=run_id, engine=self.name)
                if last is None:
                    result.status, result.error = "error", {"type": "server_unreachable", "message": str(exc)}
                return result
            tried.add(server.url)
            last = self._run_on(server, graph, run_dir, on_event, run_id, extra_data)
            if not (last.error and last.error.get("type") == "server_died"):
                return last
        return last

    def run_many(self, graphs: list[dict], run_dirs: list[Path] | None = None, on_event: EventHook | None = None,
                 max_parallel: int | None = None) -> list[RunResult]:
        """Spread several graphs over the servers; one server failing does not lose the others' results."""
        run_dirs = run_dirs or [None] * len(graphs)
        workers = max_parallel or max(1, len(self.servers))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(self.run, g, d, on_event) for g, d in zip(graphs, run_dirs)]
            return [f.result() for f in futures]

    def _run_on(self, server: ComfyServer, graph: dict, run_dir, on_event, run_id, extra_data) -> RunResult:
        emit = on_event or (lambda kind, data: None)
        result = RunResult(run_id=run_id, engine=f"comfyui:{server.url}")
        started = time.perf_counter()
        prompt_id = str(uuid.uuid4())
        client_id = uuid.uuid4().hex
        try:
            ws = server.connect_ws(client_id)
        except ServerError as exc:
            result.status, result.error = "error", {"type": "server_died", "message": str(exc)}
            return result
        try:
            answer = server.submit(graph, client_id, prompt_id, extra_data)
            if answer["_status"] != 200 or answer.get("error"):
                result.status = "invalid"
                result.error = answer.get("error") or {"type": "http_error", "message": f"HTTP {answer['_status']}"}
                if isinstance(result.error, str):
                    result.error = {"type": "invalid_prompt", "message": result.error}
                result.node_errors = answer.get("node_errors") or {}
                return result
            prompt_id = answer.get("prompt_id", prompt_id)
            with self._lock:
                self._active[prompt_id] = server
            self._follow(ws, server, prompt_id, result, emit, started)
        except ServerError as exc:
            result.status, result.error = "error", {"type": "server_died", "message": str(exc)}
            return result
        finally:
            with self._lock:
                self._active.pop(prompt_id, None)
            try:
                ws.close()
            except Exception:  # noqa: BLE001
                pass
        self._collect(server, prompt_id, result, run_dir)
        result.seconds = time.perf_counter() - started
        return result

    def _follow(self, ws, server: ComfyServer, prompt_id: str, result: RunResult, emit: EventHook,
                started: float) -> None:
        import websocket

        node_started: dict[str, float] = {}
        current = None
        ws.settimeout(5.0)
        while True:
            if time.perf_counter() - started > self.timeout:
                server.interrupt(prompt_id)
                result.status = "error"
                result.error = {"type": "timeout", "message": f"run did not finish within {self.timeout:.0f} s on {server.url}"}
                return
            try:
                frame = ws.recv()
            except websocket.WebSocketTimeoutException:
                # Silence is normal during a long node; make sure the server is still alive.
                try:
                    server.get_json("/queue")
                except ServerError:
                    raise ServerError(f"ComfyUI server {server.url} stopped responding during the run") from None
                continue
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                raise ServerError(f"ComfyUI server {server.url} closed the connection during the run "
                                  f"(did it crash?)") from None
            if isinstance(frame, bytes):
                continue  # binary previews
            message = json.loads(frame)
            kind, data = message.get("type"), message.get("data", {})
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "executing":
                now = time.perf_counter()
                if current is not None:
                    result.timings[current] = now - node_started[current]
                current = data.get("node")
                if current is None and data.get("prompt_id") == prompt_id:
                    emit("executing", data)
                    if result.status == "pending":
                        result.status = "success"
                    return
                if current is not None:
                    node_started[current] = now
                    result.executed.append(current)
            elif kind == "execution_cached":
                result.cached.extend(data.get("nodes", []))
            elif kind == "execution_error":
                result.status = "error"
                result.error = {"type": "execution_error", **{k: v for k, v in data.items()}}
                result.error["message"] = data.get("exception_message", "")
                result.error["traceback"] = data.get("traceback")
            elif kind == "execution_interrupted":
                result.status = "interrupted"
                result.error = {"type": "execution_interrupted", **data, "message": "interrupted"}
            elif kind == "executed":
                result.outputs[data["node"]] = data.get("output") or {}
            emit(kind, data)

    def _collect(self, server: ComfyServer, prompt_id: str, result: RunResult, run_dir) -> None:
        try:
            history = server.history(prompt_id)
        except ServerError as exc:
            result.error = result.error or {"type": "history_unavailable", "message": str(exc)}
            return
        status = history.get("status", {})
        if status.get("status_str") == "error" and result.status == "success":
            result.status = "error"
        for node_id, ui in (history.get("outputs") or {}).items():
            result.outputs[node_id] = ui
        if run_dir is None:
            return
        out_dir = Path(run_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        result.output_dir = str(out_dir)
        for ui in result.outputs.values():
            for entries in ui.values():
                for entry in entries if isinstance(entries, list) else []:
                    if isinstance(entry, dict) and "filename" in entry and entry.get("type") == "output":
                        target = out_dir / entry.get("subfolder", "") / entry["filename"]
                        if target.exists():
                            continue
                        target.parent.mkdir(parents=True, exist_ok=True)
                        tmp = target.with_name(target.name + ".part")
                        tmp.write_bytes(server.view(entry))
                        tmp.replace(target)
                        result.files.append(str(target))
