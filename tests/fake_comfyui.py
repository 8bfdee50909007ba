"""A loopback stand-in for a ComfyUI server that speaks its HTTP/WS protocol (ComfyUI 0.8.0 server.py/main.py).

Routes: POST /prompt (200 {prompt_id, number, node_errors} / 400 {error, node_errors}),
GET /ws?clientId= (status, execution_start, execution_cached, executing, progress,
executed, execution_error, execution_interrupted, execution_success, then
executing {node: null} after history is written), GET /history/{id}, GET /view,
GET/POST /queue, GET /object_info, POST /upload/image, POST /interrupt.

Its node classes:
  FakeText   {text: STRING}                 -> STRING
  FakeSave   {text: STRING, filename_prefix} output node, writes <prefix>_00001.txt under output/
  FakeSlow   {text: STRING, seconds: FLOAT} -> STRING, progress every 50 ms, interruptible
  FakeFail   {text: STRING}                 -> raises, so execution_error

Run in a thread (FakeComfyUI(...).start()) or as a process that a test can kill:
`python tests/fake_comfyui.py --port N --base DIR`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from pathlib import Path

from aiohttp import web

OBJECT_INFO = {
    "FakeText": {"input": {"required": {"text": ["STRING", {"default": ""}]}}, "output": ["STRING"],
                 "output_is_list": [False], "output_name": ["STRING"], "output_node": False},
    "FakeSave": {"input": {"required": {"text": ["STRING", {"forceInput": True}],
                                        "filename_prefix": ["STRING", {"default": "fake"}]}},
                 "output": [], "output_is_list": [], "output_name": [], "output_node": True},
    "FakeSlow": {"input": {"required": {"text": ["STRING", {"forceInput": True}],
                                        "seconds": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 600.0}]}},
                 "output": ["STRING"], "output_is_list": [False], "output_name": ["STRING"], "output_node": False},
    "FakeFail": {"input": {"required": {"text": ["STRING", {"forceInput": True}]}}, "output": ["STRING"],
                 "output_is_list": [False], "output_name": ["STRING"], "output_node": False},
}
for _name, _info in OBJECT_INFO.items():
    _info.update(name=_name, display_name=_name, description="", category="fake", python_module="fake",
                 input_order={"required": list(_info["input"]["required"])})


class Interrupted(Exception):
    pass


def validate(graph: dict) -> tuple[dict | None, dict]:
    """ComfyUI's answer shape: (top-level error or None, node_errors)."""
    node_errors: dict = {}
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type not in OBJECT_INFO:
            return ({"type": "invalid_prompt", "message": f"Cannot execute because node {class_type} does not exist.",
                     "details": f"Node ID '#{node_id}'", "extra_info": {}}, {})
        for name in OBJECT_INFO[class_type]["input"]["required"]:
            if name not in node.get("inputs", {}):
                node_errors.setdefault(node_id, {"errors": [], "dependent_outputs": [], "class_type": class_type})
                node_errors[node_id]["errors"].append({
                    "type": "required_input_missing", "message": "Required input is missing", "details": name,
                    "extra_info": {"input_name": name}})
    outputs = [n for n, node in graph.items() if OBJECT_INFO[node["class_type"]]["output_node"]]
    if not outputs:
        return ({"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, {})
    for output in outputs:
        for node_id in ancestors(graph, output) & set(node_errors):
            node_errors[node_id]["dependent_outputs"].append(output)
    if node_errors and all(ancestors(graph, o) & set(node_errors) for o in outputs):
        return ({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                 "details": "", "extra_info": {}}, node_errors)
    return None, node_errors  # some outputs are fine: ComfyUI runs those and answers 200 with node_errors


def ancestors(graph: dict, node_id: str) -> set[str]:
    """The node and every node it needs."""
    return set(topological(graph, [node_id]))


def topological(graph: dict, targets: list[str] | None = None) -> list[str]:
    order, seen = [], set()

    def visit(node_id: str) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        for value in graph[node_id].get("inputs", {}).values():
            if isinstance(value, list) and len(value) == 2:
                visit(str(value[0]))
        order.append(node_id)

    for node_id in graph if targets is None else targets:
        visit(node_id)
    return order


class FakeComfyUI:
    def __init__(self, base_dir: Path, port: int = 0, busy: int = 0, hang: bool = False):
        self.base_dir = Path(base_dir)
        for name in ("input", "output", "temp"):
            (self.base_dir / name).mkdir(parents=True, exist_ok=True)
        self.port = port
        self.busy = busy  # prompts "queued by others" that /queue reports, to test routing
        self.hang = hang  # never answer HTTP: a server that times out
        self.sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.history: dict[str, dict] = {}
        self.pending: list[list] = []
        self.running: list | None = None
        self.received: list[dict] = []  # every accepted POST /prompt body
        self.interrupts: list[dict] = []
        self.interrupt_flag = False
        self.number = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ app
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._hang_middleware], client_max_size=64 * 1024 * 1024)
        app.add_routes([
            web.get("/ws", self.ws), web.post("/prompt", self.post_prompt), web.get("/queue", self.get_queue),
            web.post("/queue", self.post_queue), web.get("/history/{prompt_id}", self.get_history),
            web.get("/view", self.view), web.get("/object_info", self.object_info),
            web.post("/upload/image", self.upload), web.post("/interrupt", self.interrupt),
            web.get("/system_stats", self.system_stats),
        ])
        app.on_startup.append(self._start_worker)
        return app

    @web.middleware
    async def _hang_middleware(self, request, handler):
        if self.hang:
            await asyncio.sleep(3600)
        return await handler(request)

    async def _start_worker(self, app):
        self.queue_event = asyncio.Event()
        self._worker_task = asyncio.get_running_loop().create_task(self._worker())

    async def send(self, client_id: str | None, kind: str, data: dict) -> None:
        targets = self.sockets.get(client_id, set()) if client_id else {s for v in self.sockets.values() for s in v}
        for ws in list(targets):
            if not ws.closed:
                await ws.send_str(json.dumps({"type": kind, "data": data}))

    def queue_remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    # ------------------------------------------------------------ routes
    async def ws(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets.setdefault(client_id, set()).add(ws)
        try:
            await ws.send_str(json.dumps({"type": "status", "data": {
                "status": {"exec_info": {"queue_remaining": self.queue_remaining()}}, "sid": client_id}}))
            async for _ in ws:
                pass
        finally:
            self.sockets.get(client_id, set()).discard(ws)
        return ws

    async def post_prompt(self, request):
        body = await request.json()
        graph = body.get("prompt") or {}
        error, node_errors = validate(graph)
        if error:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        self.number += 1
        self.received.append(body)
        # As ComfyUI: outputs whose nodes failed validation are dropped, the others run (answered 200).
        outputs = [n for n, node in graph.items() if OBJECT_INFO[node["class_type"]]["output_node"]
                   and not ancestors(graph, n) & set(node_errors)]
        self.pending.append([self.number, prompt_id, graph, {"client_id": body.get("client_id")}, outputs])
        self.queue_event.set()
        await self.send(None, "status", {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}})
        return web.json_response({"prompt_id": prompt_id, "number": self.number, "node_errors": node_errors})

    async def get_queue(self, request):
        others = [[-i, f"someone-else-{i}", {}, {}, []] for i in range(self.busy)]
        running = [self.running] if self.running else []
        return web.json_response({"queue_running": running, "queue_pending": others + self.pending})

    async def post_queue(self, request):
        body = await request.json()
        if body.get("clear"):
            self.pending.clear()
        delete = set(body.get("delete", []))
        self.pending = [item for item in self.pending if item[1] not in delete]
        return web.json_response({})

    async def get_history(self, request):
        prompt_id = request.match_info["prompt_id"]
        return web.json_response({prompt_id: self.history[prompt_id]} if prompt_id in self.history else {})

    async def view(self, request):
        kind = request.query.get("type", "output")
        folder = (self.base_dir / kind / request.query.get("subfolder", "")).resolve()
        path = (folder / request.query["filename"]).resolve()
        if not path.is_relative_to(self.base_dir.resolve()) or not path.is_file():
            return web.Response(status=404)
        return web.FileResponse(path)

    async def object_info(self, request):
        return web.json_response(OBJECT_INFO)

    async def system_stats(self, request):
        return web.json_response({"system": {"comfyui_version": "fake"}, "devices": []})

    async def upload(self, request):
        form = await request.post()
        upload = form["image"]
        subfolder = form.get("subfolder", "")
        folder = self.base_dir / "input" / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / upload.filename).write_bytes(upload.file.read())
        return web.json_response({"name": upload.filename, "subfolder": subfolder, "type": "input"})

    async def interrupt(self, request):
        body = await request.json() if request.can_read_body else {}
        self.interrupts.append(body)
        if not body.get("prompt_id") or (self.running and self.running[1] == body["prompt_id"]):
            self.interrupt_flag = True
        return web.json_response({})

    # ------------------------------------------------------------ execution
    async def _worker(self):
        while True:
            if not self.pending:
                self.queue_event.clear()
                await self.queue_event.wait()
                continue
            self.running = self.pending.pop(0)
            try:
                await self._execute(*self.running)
            finally:
                self.running = None

    async def _execute(self, number, prompt_id, graph, extra, outputs):
        client_id = extra.get("client_id")
        self.interrupt_flag = False
        await self.send(client_id, "execution_start", {"prompt_id": prompt_id, "timestamp": time.time()})
        await self.send(client_id, "execution_cached", {"nodes": [], "prompt_id": prompt_id})
        values: dict[str, str] = {}
        ui_outputs: dict[str, dict] = {}
        status = "success"
        for node_id in topological(graph, outputs):
            node = graph[node_id]
            inputs = {k: values[str(v[0])] if isinstance(v, list) else v for k, v in node["inputs"].items()}
            await self.send(client_id, "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})
            try:
                values[node_id], ui = await self._run_node(node["class_type"], inputs, node_id, prompt_id, client_id)
            except Interrupted:
                status = "error"
                await self.send(None, "execution_interrupted", {"prompt_id": prompt_id, "node_id": node_id,
                                                                "node_type": node["class_type"], "executed": []})
                break
            except Exception as exc:  # noqa: BLE001 - reported the way ComfyUI reports node failures
                status = "error"
                await self.send(client_id, "execution_error", {
                    "prompt_id": prompt_id, "node_id": node_id, "node_type": node["class_type"], "executed": [],
                    "exception_message": str(exc), "exception_type": type(exc).__name__,
                    "traceback": [f"{type(exc).__name__}: {exc}\n"], "current_inputs": {}, "current_outputs": {}})
                break
            if ui:
                ui_outputs[node_id] = ui
                await self.send(client_id, "executed", {"node": node_id, "display_node": node_id, "output": ui,
                                                        "prompt_id": prompt_id})
        if status == "success":
            await self.send(client_id, "execution_success", {"prompt_id": prompt_id})
        # As main.py: history first, then `executing` with node null.
        self.history[prompt_id] = {"prompt": [number, prompt_id, graph, extra, outputs], "outputs": ui_outputs,
                                   "status": {"status_str": status, "completed": status == "success", "messages": []},
                                   "meta": {}}
        await self.send(client_id, "executing", {"node": None, "prompt_id": prompt_id})

    async def _run_node(self, class_type, inputs, node_id, prompt_id, client_id):
        if class_type == "FakeText":
            return inputs["text"], None
        if class_type == "FakeFail":
            raise ValueError(f"FakeFail refused {inputs['text']!r}")
        if class_type == "FakeSlow":
            steps = max(1, int(float(inputs["seconds"]) / 0.05))
            for step in range(steps):
                if self.interrupt_flag:
                    raise Interrupted()
                await asyncio.sleep(0.05)
                await self.send(client_id, "progress", {"value": step + 1, "max": steps, "prompt_id": prompt_id,
                                                        "node": node_id})
            return inputs["text"], None
        if class_type == "FakeSave":
            prefix = Path(inputs["filename_prefix"])
            folder = self.base_dir / "output" / prefix.parent
            folder.mkdir(parents=True, exist_ok=True)
            counter = 1
            while (folder / f"{prefix.name}_{counter:05d}.txt").exists():
                counter += 1
            name = f"{prefix.name}_{counter:05d}.txt"
            (folder / name).write_text(inputs["text"])
            (self.base_dir / "temp" / "preview.txt").write_text("temp preview")
            subfolder = "" if str(prefix.parent) == "." else prefix.parent.as_posix()
            return None, {"texts": [{"filename": name, "subfolder": subfolder, "type": "output"},
                                    {"filename": "preview.txt", "subfolder": "", "type": "temp"}],
                          "text": [inputs["text"]]}
        raise ValueError(f"unknown class {class_type}")

    # ------------------------------------------------------------ lifecycle
    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.app(), shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> "FakeComfyUI":
        def main():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake ComfyUI server did not start")
        return self

    def stop(self) -> None:
        if not self._loop or not self._loop.is_running():
            return

        async def shutdown():
            for sockets in list(self.sockets.values()):
                for ws in list(sockets):
                    await ws.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base", required=True)
    args = parser.parse_args()
    server = FakeComfyUI(Path(args.base), port=args.port)
    web.run_app(server.app(), host="127.0.0.1", port=args.port, print=lambda *a: print("ready", flush=True))


if __name__ == "__main__":
    main()
