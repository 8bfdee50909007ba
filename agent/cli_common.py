"""What every `animation-studio` sub-command shares: exit codes, the one-line CLIError, reading workflows,
--set overrides, run folders and engines. The command modules (agent/cli.py, agent/dataset_cli.py,
agent/director/cli.py) import this module and never each other, except cli.py, which assembles them.
"""
from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_INVALID, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 4, 130


class CLIError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def read_json(path: str) -> dict:
    if path == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        p = Path(path)
        if not p.is_file():
            raise CLIError(f"{path}: file not found")
        try:
            text, name = p.read_text(encoding="utf-8"), path
        except UnicodeDecodeError as exc:
            raise CLIError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                           "a workflow is a JSON file", EXIT_INVALID) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", EXIT_INVALID)
    except RecursionError:
        raise CLIError(f"{name}: JSON nested too deeply to read", EXIT_INVALID) from None
    except ValueError as exc:  # e.g. an integer literal of more than 4,300 digits
        raise CLIError(f"{name}: not readable JSON ({str(exc)[:160]})", EXIT_INVALID) from None
    if not isinstance(data, dict):
        raise CLIError(f"{name}: expected a JSON object, got {type(data).__name__}", EXIT_INVALID)
    return data


def is_ui_workflow(data: dict) -> bool:
    return isinstance(data.get("nodes"), list) and "links" in data


def load_graph(path: str, catalog) -> dict:
    """An API graph from an API- or UI-format file."""
    data = read_json(path)
    if is_ui_workflow(data):
        from .convert import ConversionError, ui_to_api

        try:
            return ui_to_api(data, catalog)
        except ConversionError as exc:
            raise CLIError(f"{path}: {exc}", EXIT_INVALID)
    if "prompt" in data and isinstance(data["prompt"], dict) and "class_type" not in data.get("prompt", {}):
        data = data["prompt"]  # a saved POST /prompt body
    return data


def apply_overrides(graph: dict, overrides: list[str], catalog=None) -> dict:
    """--set NODE.INPUT=VALUE (VALUE parsed as JSON when it parses, else kept as text).

    With a catalog, INPUT must be one of the node's inputs: a misspelt name is an error, not a no-op."""
    for item in overrides or []:
        target, sep, raw = item.partition("=")
        node_id, dot, input_name = target.partition(".")
        if not sep or not dot or not node_id or not input_name:
            raise CLIError(f"--set {item!r}: expected NODE.INPUT=VALUE")
        if node_id not in graph:
            shown = ", ".join(list(graph)[:30]) + (" ..." if len(graph) > 30 else "")
            raise CLIError(f"--set {item!r}: node {node_id!r} is not in the graph (nodes: {shown})")
        node = graph[node_id] if isinstance(graph[node_id], dict) else {}
        spec = catalog.get(node.get("class_type")) if catalog is not None and isinstance(node.get("class_type"), str) \
            else None
        if spec is not None:
            from .validate import finalized_inputs

            names = [n for n, i in finalized_inputs(spec, node.get("inputs") or {}).items() if i.section != "hidden"]
            if input_name not in names and "." not in input_name:
                raise CLIError(f"--set {item!r}: node {node_id} ({spec.name}) has no input {input_name!r} "
                               f"(its inputs: {', '.join(names) or 'none'})", EXIT_INVALID)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        graph[node_id].setdefault("inputs", {})[input_name] = value
    return graph


def new_run_dir(out_root: str | None) -> tuple[str, Path]:
    from ..configs.settings import load_settings

    root = Path(out_root or load_settings().paths.output)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        run_id = f"{stamp}-{uuid.uuid4().hex[:6]}"
        run_dir = root / run_id
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
            return run_id, run_dir
        except FileExistsError:
            continue
    raise CLIError(f"could not create a new run folder under {root}")


def write_json_new(path: Path, data: dict) -> None:
    """Write a JSON file that must not exist yet (atomic rename from a temp name)."""
    from ..configs.paths import write_new

    try:
        write_new(path, json.dumps(data, indent=2, default=str))  # never through a symlink, never over a file
    except FileExistsError:
        raise CLIError(f"{path} already exists; refusing to overwrite") from None


def make_engine(spec: str | None):
    """'embedded' (default) or one or more ComfyUI servers 'http://h:p[,http://h2:p2]'."""
    if not spec or spec == "embedded":
        from .engine import EmbeddedEngine

        return EmbeddedEngine()
    urls = [u.strip() for u in spec.split(",") if u.strip()]
    if not all(u.startswith(("http://", "https://")) for u in urls):
        raise CLIError(f"--engine {spec!r}: use 'embedded' or http://host:port[,http://host2:port]")
    from .server_engine import ServerEngine

    return ServerEngine(urls)
