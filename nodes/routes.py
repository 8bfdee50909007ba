"""Custom HTTP routes under /animation_studio/, registered only inside a running ComfyUI server.

Each route is a plain function returning (status, payload) so it is testable
without a server; `register()` wraps them for aiohttp. Every name a client
sends is checked against a strict pattern and resolved inside the pack's own
folders, so no route can read a path outside them.

Routes of the agent side (the Director's recipes) are handed to `register()` by
the pack's entry module as plain (path, function) pairs, so nodes/ never imports agent/.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..configs import paths
from . import bridge

PREFIX = "/animation_studio"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
PACK_ROOT = Path(__file__).resolve().parent.parent
# A run record is parsed whole up to this size; the runs list reads only this much of a larger one.
RECORD_PARSE_LIMIT = 4 * 1024 * 1024
_TOP_LEVEL_TEXT = re.compile(r'^  "(intent|status)": ("(?:[^"\\\n]|\\.){0,2000}")', re.M)
WORKFLOWS = PACK_ROOT / "workflows"  # UI workflows (ComfyUI lists them as the pack's templates)
API_WORKFLOWS = WORKFLOWS / "api"  # their API twins, out of ComfyUI's (non-recursive) template scan
_registered = False


def _safe_child(root: Path, name: str, suffix: str = "") -> Path | None:
    if not isinstance(name, str) or not SAFE_NAME.match(name) or ".." in name:
        return None
    path = (root / f"{name}{suffix}").resolve()
    return path if path.parent == root.resolve() else None


def run_roots() -> list[Path]:
    """Where Director runs keep <run-id>/run.json: the `animation-studio direct` CLI writes them under the
    settings' output folder; inside ComfyUI that may differ from ComfyUI's own output folder, so both count."""
    roots = [bridge.output_directory().resolve()]
    try:
        from ..configs.settings import load_settings

        roots.append(Path(load_settings().paths.output).resolve())
    except Exception:  # noqa: BLE001 - broken settings must not hide ComfyUI's own output folder
        pass
    return list(dict.fromkeys(roots))


def runs_root() -> Path:
    return run_roots()[0]


def health() -> tuple[int, dict]:
    from . import FAMILY_ERRORS, NODE_CLASS_MAPPINGS

    return 200, {"nodes": len(NODE_CLASS_MAPPINGS), "family_errors": FAMILY_ERRORS}


def characters() -> tuple[int, dict]:
    from ..configs.characters import list_characters, load_character

    out = []
    for name in list_characters():
        try:
            c = load_character(name)
            out.append({"name": name, "display_name": getattr(c, "display_name", name),
                        "description": getattr(c, "description", "")})
        except Exception as exc:  # noqa: BLE001 - one broken file must not hide the others
            out.append({"name": name, "error": str(exc)})
    return 200, {"characters": out}


def ui_workflows() -> dict[str, Path]:
    """API twin name -> its UI workflow. ComfyUI's Templates browser shows a pack's template by its file name
    alone, so a UI workflow is named for a person ("Parody video, exaggerate the funniest moment.json") and
    names its twin workflows/api/<name>.api.json in extra.animation_studio_api."""
    twins = {}
    for path in sorted(WORKFLOWS.glob("*.json")):
        twin = json.loads(path.read_text(encoding="utf-8")).get("extra", {}).get("animation_studio_api")
        if isinstance(twin, str):
            twins[twin] = path
    return twins


def workflows() -> tuple[int, dict]:
    """The API twins by name, and each UI workflow's title under its twin's name."""
    apis = sorted(p.name[:-9] for p in API_WORKFLOWS.glob("*.api.json"))
    return 200, {"api": apis, "ui": {twin: path.stem for twin, path in ui_workflows().items()}}


def workflow(name: str, kind: str = "ui") -> tuple[int, dict]:
    """A shipped workflow by its API twin's name: the UI form (kind=ui) or the API form (kind=api)."""
    path = _safe_child(API_WORKFLOWS, name, ".api.json")
    if path is None:
        return 400, {"error": f"invalid workflow name {name!r}"}
    if kind != "api":
        path = ui_workflows().get(name)
    if path is None or not path.is_file():
        return 404, {"error": f"no shipped workflow named {name!r}"}
    return 200, json.loads(path.read_text(encoding="utf-8"))


def _record_summary(root: Path, record: Path) -> dict | None:
    """intent/status/iterations of one run.json; a huge record is summarised from its first bytes only."""
    try:
        data, complete = paths.read_inside(root, record, max_bytes=RECORD_PARSE_LIMIT)
    except OSError:
        return None  # a symlinked, vanished or unreadable record is not listed
    if complete:
        try:
            parsed = json.loads(data.decode("utf-8"))
        except ValueError:
            return None
        if not isinstance(parsed, dict) or "intent" not in parsed:
            return None  # some other tool's run.json
        iterations = parsed.get("iterations", [])
        return {"run_id": record.parent.name, "intent": parsed.get("intent"), "status": parsed.get("status"),
                "iterations": len(iterations) if isinstance(iterations, list) else iterations}
    # The Director writes run.json indented by two, so its top-level fields are found without parsing it all.
    fields = {}
    for key, value in _TOP_LEVEL_TEXT.findall(data.decode("utf-8", "replace")):
        try:
            fields.setdefault(key, json.loads(value))
        except ValueError:
            continue
    if "intent" not in fields:
        return None
    return {"run_id": record.parent.name, "intent": fields["intent"], "status": fields.get("status"),
            "iterations": None, "too_large": True}


def runs() -> tuple[int, dict]:
    records = []
    for root in run_roots():
        if root.is_dir():
            for record in root.glob("*/run.json"):
                try:
                    records.append((record.lstat().st_mtime, root, record))
                except OSError:
                    continue
    items = []
    for _, root, record in sorted(records, key=lambda r: r[0], reverse=True)[:200]:
        item = _record_summary(root, record)
        if item is not None:
            items.append(item)
    return 200, {"runs": items}


def run_report(run_id: str) -> tuple[int, dict]:
    folders = [_safe_child(root, run_id) for root in run_roots()]
    if None in folders:
        return 400, {"error": f"invalid run id {run_id!r}"}
    for root, folder in zip(run_roots(), folders):
        record = folder / "run.json"
        if record.is_symlink():
            return 403, {"error": f"run {run_id!r}: run.json is a symlink; it is not served"}
        if record.is_file():
            try:
                data, complete = paths.read_inside(root, record, max_bytes=RECORD_PARSE_LIMIT)
            except OSError as exc:
                return 403, {"error": f"run {run_id!r}: {exc}"}
            if not complete:
                return 413, {"error": f"run {run_id!r}: run.json is larger than {RECORD_PARSE_LIMIT >> 20} MB; "
                                      f"read it from {folder} instead"}
            try:
                return 200, json.loads(data.decode("utf-8"))
            except ValueError as exc:
                return 500, {"error": f"run {run_id!r}: run.json is not valid JSON ({exc})"}
    return 404, {"error": f"no run {run_id!r}"}


MAX_BODY_BYTES = 2_000_000  # a POSTed graph; larger bodies are refused before they are parsed


def register(extra_routes: dict[str, object] | None = None, extra_post_routes: dict[str, object] | None = None) -> bool:
    """Add the pack's GET routes to ComfyUI's server, with `extra_routes` (path under PREFIX -> function()
    returning (status, payload)) and `extra_post_routes` (path -> function(json_body) returning the same);
    False outside a running server or when already done."""
    global _registered
    routes = bridge.prompt_server_routes()
    if routes is None or _registered:
        return False
    from aiohttp import web

    def respond(result: tuple[int, dict]):
        status, payload = result
        return web.json_response(payload, status=status)

    @routes.get(f"{PREFIX}/health")
    async def _health(request):
        return respond(health())

    @routes.get(f"{PREFIX}/characters")
    async def _characters(request):
        return respond(characters())

    @routes.get(f"{PREFIX}/workflows")
    async def _workflows(request):
        return respond(workflows())

    @routes.get(f"{PREFIX}/workflows/{{name}}")
    async def _workflow(request):
        return respond(workflow(request.match_info["name"], request.query.get("kind", "ui")))

    @routes.get(f"{PREFIX}/runs")
    async def _runs(request):
        return respond(runs())

    @routes.get(f"{PREFIX}/runs/{{run_id}}")
    async def _run(request):
        return respond(run_report(request.match_info["run_id"]))

    for path, handler in (extra_routes or {}).items():
        routes.get(f"{PREFIX}{path}")(_plain_route(handler, respond))
    for path, handler in (extra_post_routes or {}).items():
        routes.post(f"{PREFIX}{path}")(_json_route(handler, respond))

    _registered = True
    return True


def _plain_route(handler, respond):
    async def route(request):
        return respond(handler())

    return route


def _json_route(handler, respond):
    async def route(request):
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return respond((413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"}))
        try:
            body = await request.json()
        except ValueError:
            return respond((400, {"error": "the body is not JSON"}))
        return respond(handler(body))

    return route
