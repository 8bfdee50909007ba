"""`animation-studio`: list nodes, validate, convert and run workflows, direct.

Every failure is one clear line on stderr and a non-zero exit code; tracebacks
go to the run's run.json, never to the terminal.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_INVALID, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 4, 130


class CLIError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- helpers
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


# ---------------------------------------------------------------- commands
def cmd_nodes(args) -> int:
    engine = make_engine(args.engine)
    catalog = engine.catalog()
    if args.json:
        print(json.dumps(catalog.to_object_info(), indent=1))
    else:
        print(catalog.describe())
        print(f"\n{len(catalog)} node classes ({catalog.source})", file=sys.stderr)
    return EXIT_OK


def cmd_validate(args) -> int:
    engine = make_engine(args.engine)
    graph = apply_overrides(load_graph(args.workflow, engine.catalog()), args.set, engine.catalog())
    result = engine.validate(graph)
    if result.ok:
        print(f"{args.workflow}: valid ({len(result.graph)} nodes, outputs: {', '.join(result.outputs)})")
        return EXIT_OK
    if args.json:
        print(json.dumps(result.as_response(), indent=2))
    for line in result.messages():
        print(f"{args.workflow}: {line}", file=sys.stderr)
    return EXIT_INVALID


def cmd_convert(args) -> int:
    engine = make_engine(args.engine)
    data = read_json(args.workflow)
    if not is_ui_workflow(data):
        raise CLIError(f"{args.workflow}: not a UI-format workflow (no 'nodes'/'links')", EXIT_INVALID)
    from .convert import ConversionError, offline_catalog, ui_to_api

    # Embedded: ComfyUI's core nodes come from the shipped snapshot; a server's own catalog wins when given.
    catalog = offline_catalog(engine.catalog()) if args.engine == "embedded" else engine.catalog()
    try:
        graph = ui_to_api(data, catalog)
    except ConversionError as exc:
        raise CLIError(f"{args.workflow}: {exc}", EXIT_INVALID)
    print(json.dumps(graph, indent=2))
    return EXIT_OK


def cmd_to_ui(args) -> int:
    engine = make_engine(args.engine)
    graph = load_graph(args.workflow, engine.catalog())
    checked = engine.validate(graph)
    if not checked.ok and checked.error.get("type") == "invalid_prompt":
        raise CLIError(f"{args.workflow}: {checked.summary()}", EXIT_INVALID)
    from .ui_layout import api_to_ui

    print(json.dumps(api_to_ui(graph, engine.catalog()), indent=1))
    return EXIT_OK


def cmd_run(args) -> int:
    engine = make_engine(args.engine)
    graph = apply_overrides(load_graph(args.workflow, engine.catalog()), args.set, engine.catalog())
    run_id, run_dir = new_run_dir(args.out)
    record = {"run_id": run_id, "workflow": str(args.workflow), "engine": getattr(engine, "describe", lambda: engine.name)(),
              "graph": graph, "started": datetime.now(timezone.utc).isoformat()}
    bars: dict = {}
    from tqdm import tqdm

    def on_event(kind: str, data: dict) -> None:
        if kind == "executing" and data.get("node") is not None:
            node = data["node"]
            cls = graph.get(node, {}).get("class_type", "")
            tqdm.write(f"[{run_id}] running node {node} {cls}", file=sys.stderr)
        elif kind == "progress":
            node = data.get("node")
            bar = bars.get(node)
            if bar is None:
                bar = bars[node] = tqdm(total=data["max"], desc=f"node {node}", leave=False, file=sys.stderr,
                                        disable=not sys.stderr.isatty())
            bar.total = data["max"]
            bar.n = data["value"]
            bar.refresh()

    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):  # first Ctrl-C cancels the run cleanly; a second one kills
        engine.interrupt()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        result = engine.run(graph, run_dir=run_dir, on_event=on_event, run_id=run_id)
    finally:
        signal.signal(signal.SIGINT, previous)
        for bar in bars.values():
            bar.close()
    record.update(result.to_json())
    record["finished"] = datetime.now(timezone.utc).isoformat()
    write_json_new(run_dir / "run.json", record)
    print(f"[{run_id}] {result.message()}", file=sys.stderr)
    for path in result.files:
        print(path)
    print(f"run record: {run_dir / 'run.json'}", file=sys.stderr)
    if result.status == "invalid":
        return EXIT_INVALID
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED


# ---------------------------------------------------------------- entry
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="animation-studio", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("nodes", help="list the node catalog")
    p.add_argument("--json", action="store_true", help="print /object_info-shaped JSON")
    p.add_argument("--engine", default="embedded")
    p.set_defaults(func=cmd_nodes)

    p = sub.add_parser("validate", help="validate a workflow (API or UI JSON)")
    p.add_argument("workflow")
    p.add_argument("--engine", default="embedded")
    p.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE")
    p.add_argument("--json", action="store_true", help="print ComfyUI-shaped node_errors")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("convert", help="convert a UI workflow to API JSON (stdout)")
    p.add_argument("workflow")
    p.add_argument("--engine", default="embedded",
                   help="whose catalog maps the widgets: embedded (the pack + ComfyUI 0.8.0's core nodes, "
                        "no server needed) | http://host:port (that server's /object_info)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("to-ui", help="lay out an API graph as a UI workflow to drag into ComfyUI (stdout)")
    p.add_argument("workflow")
    p.add_argument("--engine", default="embedded", help="whose catalog names the widgets")
    p.set_defaults(func=cmd_to_ui)

    p = sub.add_parser("run", help="run a workflow on the embedded engine or ComfyUI servers")
    p.add_argument("workflow")
    p.add_argument("--engine", default="embedded", help="embedded | http://host:port[,http://host2:port]")
    p.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE")
    p.add_argument("--out", default=None, help="folder for outputs/<run-id>/ (default: settings paths.output)")
    p.set_defaults(func=cmd_run)

    from ..nodes.dataset import cli as dataset_cli

    dataset_cli.add_parser(sub).set_defaults(func=dataset_cli.run)

    try:
        from .director import cli as director_cli
    except ImportError:
        director_cli = None
    if director_cli is not None:
        director_cli.add_parser(sub)
        if "direct" in sub.choices and sub.choices["direct"].get_default("func") is None:
            sub.choices["direct"].set_defaults(func=director_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..configs.paths import clean_temp_on_exit, remove_temp_files

    clean_temp_on_exit()  # SIGTERM unwinds (every .part is removed) and intermediate videos go at exit
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"animation-studio: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("animation-studio: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback
        from ..configs.settings import ConfigError

        kind = "configuration error" if isinstance(exc, ConfigError) else type(exc).__name__
        print(f"animation-studio: {kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        remove_temp_files()  # the command's intermediate videos; its results are in the output folder


if __name__ == "__main__":
    # Run the package's own module, not this __main__ copy, so its CLIError is the one commands raise.
    from animation_studio.agent import cli as _cli

    sys.exit(_cli.main())
