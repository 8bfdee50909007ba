"""Run API-format graphs on one or many real ComfyUI servers through their HTTP/WS API queue.

Protocol (ComfyUI server.py / main.py): POST /prompt with a client_id, follow
/ws?clientId= for progress, wait for `executing` with node null (history is
written only then; `execution_success` comes before it), read /history/{id},
download outputs with /view. websocket-client bounds neither a frame nor a message, so the
websocket here counts what arrives: one message is capped at settings network.max_response_mb,
a whole run at network.max_ws_run_mb, and every read ends at the run's deadline (a server that
trickles one endless frame cannot hold the run past it). Each prompt goes to the least-busy server
(/queue plus what this engine has in flight there); a server that refuses,
times out or dies mid-run is reported as such and the prompt is retried once on
another server.
"""
from __future__ import annotations

import functools
import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from ..configs import net
from .catalog import Catalog
from .engine import EventHook, RunResult
from .validate import ValidationResult, validate_graph

# How much of a server's error text is kept (characters per text, last traceback frames).
TEXT_KEPT, FRAMES_KEPT = 300, 8
# ServerError kinds after which the same prompt may run on another server.
RETRYABLE = {"server_unreachable", "server_timeout", "server_died"}


class ServerError(RuntimeError):
    """A ComfyUI server refused, timed out, answered badly or died; the message names the server."""

    def __init__(self, message: str, kind: str = "server_error"):
        super().__init__(message)
        self.kind = kind  # server_unreachable | server_timeout | server_died | server_error


class WebsocketTooLarge(ServerError):
    """A server's websocket sent a message, or a run's worth of messages, over the caps."""


class _RunDeadline(Exception):
    """The run's deadline passed while the websocket was still reading."""


@functools.cache
def _bounded_websocket_class():
    """websocket.WebSocket that counts the bytes of each message and of the whole run as they arrive
    (before any frame is assembled or parsed) and never reads past the run's deadline."""
    import websocket

    class BoundedWebSocket(websocket.WebSocket):
        server_url = ""
        max_message = max_run = 0  # bytes; 0 = not set up yet (the handshake reads the socket directly)
        deadline = float("inf")  # time.perf_counter() at which the run ends
        message_bytes = run_bytes = 0

        def _recv(self, bufsize):
            left = self.deadline - time.perf_counter()
            if left <= 0:
                raise _RunDeadline
            if self.sock is not None:
                self.sock.settimeout(min(self.gettimeout() or left, left))
            data = super()._recv(bufsize)
            self.message_bytes += len(data)
            self.run_bytes += len(data)
            if self.max_message and self.message_bytes > self.max_message:
                raise WebsocketTooLarge(f"ComfyUI server {self.server_url}: a websocket message grew past the "
                                        f"{self.max_message / net.MB:.1f} MB allowed (settings "
                                        f"network.max_response_mb); connection closed")
            if self.max_run and self.run_bytes > self.max_run:
                raise WebsocketTooLarge(f"ComfyUI server {self.server_url}: the websocket sent more than the "
                                        f"{self.max_run / net.MB:.1f} MB allowed for one run (settings "
                                        f"network.max_ws_run_mb); connection closed")
            return data

        def recv(self):
            try:
                data = super().recv()
            except UnicodeDecodeError:  # a text message that is not UTF-8: skipped like any non-JSON text
                data = ""
            self.message_bytes = 0  # only a complete message resets it (a read timeout mid-frame does not)
            return data

    return BoundedWebSocket


class ComfyServer:
    """A thin client of one ComfyUI server over configs/net.py (whole-request deadlines, capped answers)."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs) -> net.Response:
        timeout = self.timeout if timeout is None else timeout
        try:
            return net.request(method, self.url + path, timeout=timeout, **kwargs)
        except net.NetError as exc:
            if exc.kind == "timeout":
                raise ServerError(f"ComfyUI server {self.url} did not answer {method} {path} within {timeout:.0f} s",
                                  "server_timeout") from None
            if exc.kind == "unreachable":
                raise ServerError(f"ComfyUI server {self.url} is not reachable (start it with `python main.py "
                                  f"--listen` or check the address)", "server_unreachable") from None
            raise ServerError(f"ComfyUI server {self.url}: {method} {path} failed: {exc}") from None

    def get_json(self, path: str, **kwargs) -> dict:
        response = self._request("GET", path, **kwargs)
        if response.status != 200:
            raise ServerError(f"ComfyUI server {self.url}: GET {path} answered HTTP {response.status}")
        try:
            data = response.json()
        except net.NetError:
            raise ServerError(f"ComfyUI server {self.url}: GET {path} answered something that is not JSON: "
                              f"{net.excerpt(response.body)!r}") from None
        if not isinstance(data, dict):
            raise ServerError(f"ComfyUI server {self.url}: GET {path} answered {type(data).__name__}, not an object")
        return data

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def queue(self) -> dict:
        return self.get_json("/queue")

    @staticmethod
    def queued_prompt_ids(queue: dict) -> list[str]:
        """Prompt ids in a /queue answer (items are [number, prompt_id, prompt, extra_data, outputs])."""
        items = list(queue.get("queue_running", None) or []) + list(queue.get("queue_pending", None) or [])
        return [str(item[1]) for item in items if isinstance(item, (list, tuple)) and len(item) > 1]

    def submit(self, graph: dict, client_id: str, prompt_id: str, extra_data: dict | None = None) -> dict:
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id, "extra_data": extra_data or {}}
        response = self._request("POST", "/prompt", json=body)
        try:
            data = response.json()
        except net.NetError:
            raise ServerError(f"ComfyUI server {self.url}: POST /prompt answered HTTP {response.status} "
                              f"with no JSON: {net.excerpt(response.body)!r}") from None
        if not isinstance(data, dict):
            raise ServerError(f"ComfyUI server {self.url}: POST /prompt answered {type(data).__name__}, not an object")
        data["_status"] = response.status
        return data

    def history(self, prompt_id: str) -> dict:
        entry = self.get_json(f"/history/{prompt_id}").get(prompt_id, {})
        return entry if isinstance(entry, dict) else {}

    def download(self, entry: dict, target: Path, timeout: float) -> None:
        """GET /view into `target` (written as it arrives, capped at settings network.max_download_mb)."""
        params = {"filename": entry["filename"], "subfolder": entry.get("subfolder", ""),
                  "type": entry.get("type", "output")}
        with open(target, "xb") as fh:
            response = self._request("GET", "/view", params=params, timeout=timeout, sink=fh.write,
                                     max_bytes=net.limits()[2])
        if response.status != 200:
            target.unlink(missing_ok=True)
            raise ServerError(f"ComfyUI server {self.url}: could not download {entry['filename']} "
                              f"(HTTP {response.status})")

    def upload_image(self, path: Path, subfolder: str = "animation_studio") -> str:
        body, content_type = net.multipart({"type": "input", "subfolder": subfolder},
                                           {"image": (path.name, Path(path).read_bytes())})
        response = self._request("POST", "/upload/image", data=body, headers={"Content-Type": content_type})
        if response.status != 200:
            raise ServerError(f"ComfyUI server {self.url}: upload of {path.name} failed (HTTP {response.status})")
        try:
            data = response.json()
            return f"{data['subfolder']}/{data['name']}" if data.get("subfolder") else str(data["name"])
        except (net.NetError, KeyError, TypeError, AttributeError):
            raise ServerError(f"ComfyUI server {self.url}: upload of {path.name} answered "
                              f"{net.excerpt(response.body)!r}") from None

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop `prompt_id` if it is running, and take it off the queue if it is still waiting."""
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})
        if prompt_id:
            self._request("POST", "/queue", json={"delete": [prompt_id]})

    def connect_ws(self, client_id: str):
        """The run's websocket, over a socket connected by configs/net.py (the address its name check
        approved); the handshake ends within `timeout` in all, and every message is size-capped."""
        import ssl

        import websocket

        ws_url = self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + f"/ws?clientId={client_id}"
        scheme, host, port = net._origin(self.url)
        try:
            sock = net.connect(host, port, min(self.timeout, net.limits()[0]))
        except net.NetError as exc:
            kind = "server_timeout" if exc.kind == "timeout" else "server_unreachable"
            raise ServerError(f"ComfyUI server {self.url}: websocket connection failed ({exc})", kind) from None
        cut_off = threading.Timer(self.timeout, lambda: _shutdown(sock))  # a handshake that never ends
        cut_off.daemon = True
        cut_off.start()
        try:
            if scheme == "https":
                sock.settimeout(self.timeout)
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            # UTF-8 is checked by bytes.decode in recv(): websocket-client's own check is pure Python (~1 s/MB)
            ws = websocket.create_connection(ws_url, timeout=self.timeout, socket=sock, skip_utf8_validation=True,
                                             class_=_bounded_websocket_class())
            ws.server_url = self.url
            ws.max_message = net.limits()[1]
            ws.max_run = int(_network_settings().max_ws_run_mb * net.MB)
            return ws
        except websocket.WebSocketTimeoutException:
            raise ServerError(f"ComfyUI server {self.url} did not open its websocket within {self.timeout:.0f} s",
                              "server_timeout") from None
        except ConnectionRefusedError:
            raise ServerError(f"ComfyUI server {self.url} is not reachable (connection refused)",
                              "server_unreachable") from None
        except (OSError, websocket.WebSocketException) as exc:
            sock.close()
            raise ServerError(f"ComfyUI server {self.url}: websocket connection failed "
                              f"({net.excerpt(str(exc), 160)})", "server_unreachable") from None
        finally:
            cut_off.cancel()


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _network_settings():
    from ..configs.settings import load_settings

    return load_settings().network


class ServerEngine:
    """The same run() contract as EmbeddedEngine, executed by ComfyUI servers."""

    name = "comfyui"

    def __init__(self, urls: list[str] | str, timeout: float | None = None, request_timeout: float = 30.0,
                 silence_probe_s: float = 5.0):
        if isinstance(urls, str):
            urls = [u.strip() for u in urls.split(",") if u.strip()]
        if not urls:
            raise ValueError("no ComfyUI server URL given")
        if timeout is None:
            from ..configs.settings import load_settings

            timeout = load_settings().comfyui.timeout_s
        self.servers = [ComfyServer(u, request_timeout) for u in urls]
        self.timeout = timeout
        self.silence_probe_s = silence_probe_s  # how long the websocket may be silent before we ask /queue
        self._catalog: Catalog | None = None
        self._active: dict[str, ComfyServer] = {}  # prompt id -> server running it
        self._reserved: dict[str, int] = {}  # server url -> prompts picked for it but not yet finished
        self._lock = threading.Lock()

    def describe(self) -> str:
        return "comfyui:" + ",".join(s.url for s in self.servers)

    # ------------------------------------------------------------ catalog / validation
    def catalog(self) -> Catalog:
        if self._catalog is None:
            errors = []
            for server in self.servers:
                try:
                    info = server.object_info()
                except ServerError as exc:
                    errors.append(str(exc))
                    continue
                try:
                    self._catalog = Catalog.from_object_info(info, source=server.url)
                    break
                except ValueError as exc:  # an answer that is JSON but not ComfyUI's node schemas
                    errors.append(f"ComfyUI server {server.url}: {exc}")
            else:
                raise ServerError("; ".join(errors), "server_unreachable")
        return self._catalog

    def validate(self, graph: dict) -> ValidationResult:
        return validate_graph(graph, self.catalog())

    # ------------------------------------------------------------ scheduling
    def _load(self, server: ComfyServer) -> int:
        """Prompts queued there by others, plus those this engine picked it for (ours counted once)."""
        ours = {pid for pid, s in self._active.items() if s is server}
        others = [pid for pid in server.queued_prompt_ids(server.queue()) if pid not in ours]
        return len(others) + self._reserved.get(server.url, 0)

    def _pick(self, exclude: set[str] = frozenset()) -> ComfyServer:
        """The least-busy reachable server, reserved at once so parallel runs spread out."""
        with self._lock:
            loads, failures = [], []
            for index, server in enumerate(self.servers):
                if server.url in exclude:
                    continue
                try:
                    loads.append((self._load(server), index, server))
                except ServerError as exc:
                    failures.append(exc)
            if not loads:
                if not failures:
                    raise ServerError("no other ComfyUI server to retry on", "server_unreachable")
                raise ServerError("; ".join(map(str, failures)), failures[0].kind)
            server = min(loads, key=lambda item: item[:2])[2]
            self._reserved[server.url] = self._reserved.get(server.url, 0) + 1
            return server

    def _release(self, server: ComfyServer) -> None:
        with self._lock:
            self._reserved[server.url] = max(0, self._reserved.get(server.url, 0) - 1)

    def interrupt(self) -> None:
        """Stop every prompt this engine has running or waiting, on every server."""
        with self._lock:
            active = list(self._active.items())
        for prompt_id, server in active:
            try:
                server.interrupt(prompt_id)
            except ServerError:
                pass

    def put_input(self, path: str | Path) -> str:
        """Upload a local file to every reachable server's input folder; returns the name graphs use."""
        names, errors = set(), []
        for server in self.servers:
            try:
                names.add(server.upload_image(Path(path)))
            except ServerError as exc:
                errors.append(str(exc))
        if not names:
            raise ServerError("; ".join(errors), "server_unreachable")
        if len(names) > 1:
            raise ServerError(f"the servers stored {Path(path).name} under different names {sorted(names)}; "
                              f"remove the older copies from their input folders")
        return names.pop()

    # ------------------------------------------------------------ running
    def run(self, graph: dict, run_dir: str | Path | None = None, on_event: EventHook | None = None,
            run_id: str | None = None, extra_data: dict | None = None) -> RunResult:
        run_id = run_id or uuid.uuid4().hex[:12]
        started = time.perf_counter()
        tried: set[str] = set()
        failures: list[str] = []
        result: RunResult | None = None
        for _ in range(min(2, len(self.servers))):
            try:
                server = self._pick(tried)
            except ServerError as exc:
                if result is None:
                    result = RunResult(run_id=run_id, engine=self.describe())
                    result.status, result.error = "error", {"type": exc.kind, "message": str(exc)}
                break
            tried.add(server.url)
            try:
                result = self._run_on(server, graph, run_dir, on_event, run_id, extra_data)
            finally:
                self._release(server)
            if not (result.error and result.error.get("type") in RETRYABLE):
                break
            failures.append(result.error["message"])
        if result.error and len(failures) > 1:
            result.error["message"] = "; then ".join(failures)
        result.seconds = time.perf_counter() - started
        return result

    def run_many(self, graphs: list[dict], run_dirs: list[Path] | None = None, on_event: EventHook | None = None,
                 max_parallel: int | None = None) -> list[RunResult]:
        """Spread several graphs over the servers; one server failing does not lose the others' results."""
        run_dirs = run_dirs or [None] * len(graphs)
        if len(run_dirs) != len(graphs):
            raise ValueError(f"run_many: {len(graphs)} graphs but {len(run_dirs)} run folders")
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
            # The websocket first: events go only to a client connected before they are sent.
            ws = server.connect_ws(client_id)
        except ServerError as exc:
            result.status, result.error = "error", {"type": exc.kind, "message": str(exc)}
            return result
        try:
            answer = server.submit(graph, client_id, prompt_id, extra_data)
            result.node_errors = answer.get("node_errors") or {}
            if answer["_status"] != 200 or answer.get("error"):
                result.status = "invalid"
                error = answer.get("error") or {"type": "http_error", "message": f"HTTP {answer['_status']}"}
                result.error = {"type": "invalid_prompt", "message": error} if isinstance(error, str) else error
                return result
            prompt_id = answer.get("prompt_id", prompt_id)
            with self._lock:
                self._active[prompt_id] = server
            self._follow(ws, server, prompt_id, result, emit, started, {str(node_id) for node_id in graph})
            if result.node_errors and result.status == "success":
                # A 200 with node_errors: ComfyUI dropped the outputs that failed validation and ran the rest.
                # The embedded engine refuses such a graph, so report it the same way (with what did run kept).
                result.status = "invalid"
                result.error = {"type": "prompt_outputs_failed_validation",
                                "message": "Prompt outputs failed validation",
                                "details": f"ComfyUI ran only the outputs that passed; failed: {sorted(result.node_errors)}",
                                "extra_info": {}}
        except ServerError as exc:
            kind = "server_died" if exc.kind == "server_unreachable" and result.executed else exc.kind
            result.status, result.error = "error", {"type": kind, "message": str(exc)}
            return result
        finally:
            with self._lock:
                self._active.pop(prompt_id, None)
            try:
                ws.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a dead socket may fail in many ways
                pass
        if result.error and result.error.get("type") == "timeout":
            return result
        try:
            self._collect(server, prompt_id, result, run_dir)
        except ServerError as exc:
            result.status = "error"
            result.error = result.error or {"type": "server_died", "message": f"outputs lost: {exc}"}
        return result

    def _follow(self, ws, server: ComfyServer, prompt_id: str, result: RunResult, emit: EventHook,
                started: float, nodes: set[str]) -> None:
        """Read the run's events until it ends; only the graph's own nodes are recorded (a server naming
        others cannot grow the record)."""
        import websocket

        node_started: dict[str, float] = {}
        current = None
        ws.settimeout(self.silence_probe_s)
        ws.deadline = started + self.timeout
        while True:
            if time.perf_counter() - started > self.timeout:
                self._give_up(server, prompt_id, result)
                return
            try:
                frame = ws.recv()
            except _RunDeadline:
                self._give_up(server, prompt_id, result)
                return
            except WebsocketTooLarge:
                _interrupt_quietly(server, prompt_id)
                raise
            except websocket.WebSocketTimeoutException:
                # Silence is normal during a long node; make sure the server is still alive and still has it.
                try:
                    waiting = prompt_id in server.queued_prompt_ids(server.queue())
                except ServerError as exc:
                    raise ServerError(f"ComfyUI server {server.url} stopped responding during the run ({exc})",
                                      "server_died") from None
                if not waiting and server.history(prompt_id):
                    # We missed the final `executing` (e.g. a websocket hiccup): history is complete.
                    if result.status == "pending":
                        result.status = "success"
                    return
                continue
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                raise ServerError(f"ComfyUI server {server.url} closed the connection during the run "
                                  f"(did it crash?)", "server_died") from None
            if isinstance(frame, bytes):
                continue  # binary previews
            try:
                message = json.loads(frame)
            except ValueError:
                continue
            kind, data = message.get("type"), message.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "executing":
                now = time.perf_counter()
                if current is not None:
                    result.timings[current] = now - node_started[current]
                current = data.get("node")
                current = str(current) if current is not None and str(current) in nodes else None
                if data.get("node") is None and data.get("prompt_id") == prompt_id:
                    emit("executing", data)
                    if result.status == "pending":
                        result.status = "success"
                    return
                if current is not None:
                    if current not in node_started:  # a node runs once; a server repeating it adds nothing
                        result.executed.append(current)
                    node_started[current] = now
            elif kind == "execution_cached":
                result.cached.extend(str(n) for n in data.get("nodes") or [] if str(n) in nodes)
            elif kind == "execution_error":
                result.status = "error"
                result.error = {"type": "execution_error", **_bounded_error(data),
                                "message": net.excerpt(data.get("exception_message", ""), TEXT_KEPT),
                                "traceback": [net.excerpt(line, TEXT_KEPT) for line in (data.get("traceback") or [])
                                              if isinstance(line, str)][-FRAMES_KEPT:]}
            elif kind == "execution_interrupted":
                result.status = "interrupted"
                result.error = {"type": "execution_interrupted", **_bounded_error(data), "message": "interrupted"}
            elif kind == "executed" and str(data.get("node")) in nodes:
                result.outputs[str(data["node"])] = data.get("output") or {}
            emit(kind, data)

    def _give_up(self, server: ComfyServer, prompt_id: str, result: RunResult) -> None:
        _interrupt_quietly(server, prompt_id)
        result.status = "error"
        result.error = {"type": "timeout", "message": f"run did not finish within {self.timeout:.0f} s on "
                                                      f"{server.url} (interrupted there)"}

    def _collect(self, server: ComfyServer, prompt_id: str, result: RunResult, run_dir) -> None:
        history = server.history(prompt_id)
        status = history.get("status", {})
        if status.get("status_str") == "error" and result.status == "success":
            result.status = "error"
            result.error = result.error or {"type": "execution_error", "message": "the server's history says error"}
        for node_id, ui in (history.get("outputs") or {}).items():
            result.outputs[str(node_id)] = ui
        if run_dir is None:
            return
        out_dir = Path(run_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        result.output_dir = str(out_dir)
        for entry in _file_entries(result.outputs):
            target = _download_target(out_dir, entry)
            tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                server.download(entry, tmp, timeout=max(30.0, self.timeout))
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)
            result.files.append(str(target))


def _interrupt_quietly(server: ComfyServer, prompt_id: str) -> None:
    try:
        server.interrupt(prompt_id)
    except ServerError:
        pass


def _bounded_error(data: dict) -> dict:
    """The small fields of a server's error event, each a short excerpt (the inputs/outputs it carries and any
    long text stay on the server: what a remote says never reaches run.json or a prompt whole)."""
    return {key: net.excerpt(data[key], TEXT_KEPT) if isinstance(data[key], str) else data[key]
            for key in ("prompt_id", "node_id", "node_type", "executed", "exception_type", "timestamp")
            if key in data and isinstance(data[key], (str, int, float, list)) and len(str(data[key])) < 4000}


def _file_entries(outputs: dict[str, dict]):
    """The {filename, subfolder, type: output} entries of every node's ui dict (previews in temp are skipped).

    Each file once: a node may list one file under several keys."""
    seen = set()
    for ui in outputs.values():
        for entries in (ui or {}).values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("filename") and entry.get("type", "output") == "output":
                    key = (entry.get("subfolder", "") or "", entry["filename"])
                    if key not in seen:
                        seen.add(key)
                        yield entry


def _download_target(out_dir: Path, entry: dict) -> Path:
    """Where a server file lands in the run folder: same subfolder, never outside it, never over a file."""
    parts = [p for p in PurePosixPath(entry.get("subfolder", "") or "").parts if p not in ("", ".", "..", "/")]
    name = PurePosixPath(entry["filename"]).name
    if name in ("", ".", ".."):
        raise ServerError(f"the server named an output file {entry['filename']!r}")
    folder = out_dir.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    target, counter = folder / name, 1
    while target.exists():
        target = folder / f"{Path(name).stem}_{counter}{Path(name).suffix}"
        counter += 1
    return target
