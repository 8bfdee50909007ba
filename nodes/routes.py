"""Custom HTTP routes under /animation_studio/, registered only inside a running ComfyUI server.

Each route is a plain function returning (status, payload) so it is testable
without a server; `register()` wraps them for aiohttp. Every name a client
sends is checked against a strict pattern and resolved inside the pack's own
folders, so no route can read a path outside them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import bridge

PREFIX = "/animation_studio"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
PACK_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = PACK_ROOT / "workflows"
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


def recipes() -> tuple[int, dict]:
    try:
        from ..agent.director.recipes import describe_recipes
    except ImportError:
        return 200, {"recipes": []}
    return 200, {"recipes": describe_recipes()}


def workflows() -> tuple[int, dict]:
    names = sorted(p.name[:-5] for p in WORKFLOWS.glob("*.json") if not p.name.endswith(".api.json"))
    apis = sorted(p.name[:-9] for p in WORKFLOWS.glob("*.api.json"))
    return 200, {"ui": names, "api": apis}


def workflow(name: str, kind: str = "ui") -> tuple[int, dict]:
    path = _safe_child(WORKFLOWS, name, ".api.json" if kind == "api" else ".json")
    if path is None:
        return 400, {"error": f"invalid workflow name {name!r}"}
    if not path.is_file():
        return 404, {"error": f"no shipped workflow named {name!r}"}
    return 200, json.loads(path.read_text(encoding="utf-8"))


def runs() -> tuple[int, dict]:
    records = [r for root in run_roots() if root.is_dir() for r in root.glob("*/run.json")]
    items = []
    for record in sorted(records, key=lambda p: p.stat().st_mtime, reverse=True)[:200]:
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "intent" not in data:
            continue  # some other tool's run.json
        iterations = data.get("iterations", [])
        items.append({"run_id": record.parent.name, "intent": data.get("intent"), "status": data.get("status"),
                      "iterations": len(iterations) if isinstance(iterations, list) else iterations})
    return 200, {"runs": items}


def run_report(run_id: str) -> tuple[int, dict]:
    folders = [_safe_child(root, run_id) for root in run_roots()]
    if None in folders:
        return 400, {"error": f"invalid run id {run_id!r}"}
    for folder in folders:
        record = folder / "run.json"
        if record.is_file():
            return 200, json.loads(record.read_text(encoding="utf-8"))
    return 404, {"error": f"no run {run_id!r}"}


def register() -> bool:
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

    @routes.get(f"{PREFIX}/recipes")
    async def _recipes(request):
        return respond(recipes())

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

    _registered = True
    return True
