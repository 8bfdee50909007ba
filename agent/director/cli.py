"""`animation-studio direct "INTENT"`: run the Director from the command line.

It streams the brief, the plan, the graph, each iteration's score and the
decision, writes outputs/<run-id>/run.json (every prompt, raw LLM answer,
graph, error, score and timing) and never overwrites anything.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_INVALID, EXIT_FAILED = 0, 2, 3, 4


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("direct", help="the LLM Director: intent -> plan -> graph -> run -> evaluate -> refine")
    p.add_argument("intent", nargs="?", default="", help="what to make, in words")
    p.add_argument("--input", action="append", default=[], metavar="FILE", help="an input image/video/audio (repeatable)")
    p.add_argument("--character", default="", help="character name from configs/characters (e.g. luca)")
    p.add_argument("--llm", default="auto", help="ollama:MODEL | openai:URL#MODEL | local | scripted:FILE | none | auto")
    p.add_argument("--engine", default="embedded", help="embedded | http://host:port[,http://host2:port]")
    p.add_argument("--max-iterations", type=int, default=None, help="iteration budget (default: settings)")
    p.add_argument("--resume", default=None, metavar="RUN_ID", help="continue a killed run from its last finished step")
    p.add_argument("--out", default=None, help="root folder for <run-id>/ (default: settings paths.output)")
    p.add_argument("--no-memory", action="store_true", help="do not read or write the experience memory")
    p.set_defaults(func=run)


def _say(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def _make_backend(spec: str):
    """(backend or None, description). 'auto' = the embedded model when llama_cpp is installed, else keywords only."""
    spec = (spec or "auto").strip()
    if spec == "none":
        return None, "none (keyword planning only)"
    if spec == "auto":
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            return None, "none (llama_cpp not installed: keyword planning only; use --llm ollama:MODEL for an LLM)"
        spec = "local"
    try:
        from ..llm import make_backend
    except ImportError as exc:
        raise RuntimeError(f"LLM backends are not available ({exc}); use --llm none") from None
    return make_backend(spec, role="creative_director"), spec


def _stage_inputs(files: list[str], run_id: str) -> list[str]:
    """Input names relative to the input folder; files elsewhere are copied in (never over an existing file)."""
    from ...nodes import bridge

    base = bridge.input_directory().resolve()
    names = []
    for item in files:
        path = Path(item).expanduser()
        if not path.is_absolute() and not path.exists() and (base / path).is_file():
            path = base / path
        if not path.is_file():
            raise ValueError(f"--input {item!r}: file not found")
        path = path.resolve()
        if base in path.parents:
            names.append(path.relative_to(base).as_posix())
            continue
        target_dir = base / "director" / run_id
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / path.name
        counter = 1
        while target.exists():
            target = target_dir / f"{path.stem}_{counter}{path.suffix}"
            counter += 1
        shutil.copy2(path, target)
        names.append(target.relative_to(base).as_posix())
    return names


def _printer(run_id: str):
    def on_event(kind: str, data: dict) -> None:
        tag = f"[{run_id}]"
        if kind == "brief":
            b = data["brief"]
            _say(f"{tag} brief: {b['task_kind']} | characters={b['characters']} emotion={b['emotion']} "
                 f"setting={b['setting']!r} dialogue={b['dialogue']!r} constraints={b['constraints']}")
            for note in data.get("notes", []):
                _say(f"{tag}   note: {note}")
        elif kind == "analysis" and (data["inputs"] or data["memory_hits"]):
            _say(f"{tag} inputs: {data['inputs']} memory: {data['memory_hits']}")
        elif kind == "plan":
            _say(f"{tag} plan: recipe {data['recipe']} — {data['reason']}")
            for name, why in data["unavailable"].items():
                _say(f"{tag}   not used: {name}: {why}")
        elif kind == "graph":
            _say(f"{tag} graph (iteration {data['iteration']}):\n{data['summary']}")
        elif kind == "validation" and (data["repairs"] or data["errors"]):
            for line in data["repairs"]:
                _say(f"{tag}   repaired: {line}")
            for line in data["errors"]:
                _say(f"{tag}   invalid: {line}")
        elif kind == "executed":
            _say(f"{tag} run: {data['message']} ({data['seconds']:.2f} s)")
        elif kind == "score":
            shown = {k: round(v, 3) for k, v in data["metrics"].items() if isinstance(v, (int, float))}
            _say(f"{tag} iteration {data['iteration']}: score {data['score']:.3f} {shown}")
        elif kind == "refine":
            _say(f"{tag} refine: {'; '.join(data['changes']) or 'no change proposed'}")
        elif kind == "decision":
            _say(f"{tag} decision: {data['decision']}" + (f" — {data['message']}" if data.get("message") else ""))
    return on_event


def _write_record(run_dir: Path, record: dict) -> Path:
    path = run_dir / "run.json"
    counter = 1
    while path.exists():  # a resumed run keeps the earlier record
        path = run_dir / f"run.{counter}.json"
        counter += 1
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def run(args) -> int:
    from ...configs.settings import load_settings
    from .graph import DirectorContext, DirectorError, new_run_id, run_director, run_record, saved_state
    from .memory import Memory
    from .planner import LLMCaller

    def fail(message: str, code: int) -> int:
        print(f"animation-studio direct: {message}", file=sys.stderr)
        return code

    settings = load_settings()
    out_root = Path(args.out or settings.paths.output)
    intent, inputs, character = (args.intent or "").strip(), list(args.input), args.character
    if args.resume:
        run_id = args.resume
        run_dir = out_root / run_id
        state = saved_state(run_dir, run_id)
        if state is None:
            return fail(f"--resume {run_id}: no saved run in {run_dir}", EXIT_USAGE)
        intent, inputs, character = state.get("intent", ""), state.get("inputs", []), state.get("character", "")
    else:
        if not intent:
            return fail("the intent is empty: describe what to make, e.g. \"Luca running, excited, sunny Italian seaside\"",
                        EXIT_USAGE)
        if args.max_iterations is not None and not 1 <= args.max_iterations <= 20:
            return fail("--max-iterations must be between 1 and 20", EXIT_USAGE)
        run_id = new_run_id()
        run_dir = out_root / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        try:
            inputs = _stage_inputs(inputs, run_id)
        except ValueError as exc:
            return fail(str(exc), EXIT_USAGE)
    if character:
        from ...configs.characters import CharacterError, load_character

        try:
            load_character(character)
        except CharacterError as exc:
            return fail(str(exc), EXIT_USAGE)
    try:
        backend, llm_desc = _make_backend(args.llm)
    except Exception as exc:  # noqa: BLE001 - a backend that cannot start is one clear line
        return fail(f"--llm {args.llm}: {exc}", EXIT_USAGE)
    from ..cli import CLIError, make_engine

    try:
        engine = make_engine(args.engine)
    except CLIError as exc:
        return fail(str(exc), EXIT_USAGE)
    memory = None if args.no_memory else Memory(out_root / "director_memory.sqlite")
    d = settings.director
    ctx = DirectorContext(engine=engine, llm=LLMCaller(backend), run_dir=run_dir, memory=memory,
                          max_iterations=args.max_iterations or d.max_iterations, max_seconds=d.max_seconds,
                          max_tokens=d.max_tokens, approve_score=d.approve_score, on_event=_printer(run_id))
    _say(f"[{run_id}] {'resuming' if args.resume else 'directing'}: {intent!r} (llm: {llm_desc}, engine: {args.engine})")
    try:
        state = run_director(intent, ctx, run_id=run_id, inputs=inputs, character=character, resume=bool(args.resume))
    except DirectorError as exc:
        return fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return fail(f"interrupted; continue with: animation-studio direct --resume {run_id}"
                    + (f" --out {args.out}" if args.out else ""), 130)
    except Exception as exc:  # noqa: BLE001 - the checkpoint keeps the finished steps
        return fail(f"{type(exc).__name__}: {exc} (finished steps are saved; retry with --resume {run_id})", EXIT_FAILED)
    record = run_record(state, {"llm": llm_desc, "engine": args.engine})
    path = _write_record(run_dir, record)
    status = state.get("status")
    _say(f"[{run_id}] {status}: {state.get('message', '')}")
    for f in state.get("files", []):
        print(f)
    _say(f"run record: {path}")
    if status == "invalid":
        return fail(state.get("message", "invalid intent"), EXIT_INVALID)
    if status in ("llm_timeout", "failed"):
        return fail(state.get("message", status), EXIT_FAILED)
    return EXIT_OK if state.get("files") else fail("no output was produced: " + state.get("message", ""), EXIT_FAILED)
