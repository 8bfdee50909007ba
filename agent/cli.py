"""`animation-studio`: list nodes, validate, convert and run workflows, direct.

Every failure is one clear line on stderr and a non-zero exit code; tracebacks
go to the run's run.json, never to the terminal. This module assembles the
sub-commands; what they share is in cli_common.py.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime, timezone

from . import dataset_cli
from .cli_common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, CLIError, apply_overrides,
                         is_ui_workflow, load_graph, make_engine, new_run_dir, read_json, write_json_new)
from .director import cli as director_cli


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
    from .convert import offline_catalog
    from .ui_layout import api_to_ui
    from .validate import validate_graph

    engine = make_engine(args.engine)
    # As for convert: embedded names ComfyUI's core nodes from the shipped snapshot too; a server's catalog alone.
    catalog = offline_catalog(engine.catalog()) if args.engine == "embedded" else engine.catalog()
    graph = load_graph(args.workflow, catalog)
    checked = validate_graph(graph, catalog)
    if not checked.ok and checked.error.get("type") == "invalid_prompt":
        raise CLIError(f"{args.workflow}: {checked.summary()}", EXIT_INVALID)
    print(json.dumps(api_to_ui(graph, catalog), indent=1))
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

    dataset_cli.add_parser(sub).set_defaults(func=dataset_cli.run)
    director_cli.add_parser(sub)
    if sub.choices["direct"].get_default("func") is None:
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
