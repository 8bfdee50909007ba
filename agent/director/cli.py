"""`animation-studio direct "INTENT"`: run the Director from the command line.

It prints every decision (the plan, repairs, each post-condition check with its measured value, the verdict),
writes outputs/<run-id>/run.json (plan, graph, checks, every prompt, each LLM answer's plan and an excerpt,
timings) and never overwrites anything. Exit status: 0 only when approved (every hard post-condition verified).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_INVALID, EXIT_FAILED = 0, 2, 3, 4
EXIT_LLM_UNUSED = 5  # outputs were made, but the configured LLM server never answered usefully
REMOTE_LLMS = ("ollama", "openai")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("direct", help="the LLM Director: intent -> plan -> graph -> run -> verify -> refine")
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
        return None, "none (the parser plans alone)"
    if spec == "auto":
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            return None, "none (llama_cpp not installed: the parser plans alone; use --llm ollama:MODEL for an LLM)"
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
        # Only readable media the user named, from the folders a user works in (never /etc, /proc...).
        from ...configs.paths import inside, open_exclusive, reserve_new
        from ...nodes.video_io import media_kind

        roots = [base, Path.cwd(), Path.home(), Path(tempfile.gettempdir())]
        if not any(inside(root, path) for root in roots):
            raise ValueError(f"--input {item!r}: only files under the input folder, the current folder, your home "
                             f"or the temp folder are used")
        if media_kind(path) is None:
            raise ValueError(f"--input {item!r}: not a readable image, audio or video file")
        if base in path.parents:
            names.append(path.relative_to(base).as_posix())
            continue
        target_dir = base / "director" / run_id
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / path.name
        try:
            fd = open_exclusive(target)
        except FileExistsError:
            target = reserve_new(target_dir, path.stem, path.suffix)
            fd = os.open(target, os.O_WRONLY | os.O_NOFOLLOW)
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
        names.append(target.relative_to(base).as_posix())
    return names


def _printer(run_id: str):
    """Every decision, check and step on the CLI: the same words the ComfyUI panel shows."""
    def on_event(kind: str, data: dict) -> None:
        text = data.get("text")
        if text and kind != "graph":
            _say(f"[{run_id}] {text}")
        elif kind == "graph":
            _say(f"[{run_id}] graph (iteration {data['iteration']}): {text}")
    return on_event


def _write_record(run_dir: Path, record: dict) -> Path:
    from ...configs.paths import write_new

    text = json.dumps(record, indent=2, default=str)
    for counter in range(10_000):  # a resumed run keeps the earlier record; a planted symlink is never followed
        path = run_dir / ("run.json" if counter == 0 else f"run.{counter}.json")
        try:
            return write_new(path, text)
        except FileExistsError:
            continue
    raise FileExistsError(f"{run_dir} holds 10000 run records; not writing another")


def run(args) -> int:
    from ...configs.settings import load_settings
    from . import core
    from .core import Budgets
    from .graph import Deps, DirectorError, new_run_id, run_director, run_record, saved_state
    from .llm_caller import LLMCaller
    from .memory import Memory

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
            return fail("the intent is empty: describe what to make, e.g. \"make this clip quarter speed\"",
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
    from ..cli_common import CLIError, make_engine

    try:
        engine = make_engine(args.engine)
    except CLIError as exc:
        return fail(str(exc), EXIT_USAGE)
    memory = None if args.no_memory else Memory(out_root / core.memory_path().name)
    llm = LLMCaller(backend)
    deps = Deps(engine=engine, llm=llm, run_dir=run_dir, budgets=Budgets.from_settings(args.max_iterations),
                memory=memory, on_event=_printer(run_id))
    _say(f"[{run_id}] {'resuming' if args.resume else 'directing'}: {intent!r} (llm: {llm_desc}, engine: {args.engine})")
    try:
        state = run_director(intent, deps, run_id=run_id, inputs=inputs, character=character, resume=bool(args.resume))
    except DirectorError as exc:
        return fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return fail(f"interrupted; continue with: animation-studio direct --resume {run_id}"
                    + (f" --out {args.out}" if args.out else ""), 130)
    except Exception as exc:  # noqa: BLE001 - the checkpoint keeps the finished steps
        return fail(f"{type(exc).__name__}: {exc} (finished steps are saved; retry with --resume {run_id})", EXIT_FAILED)
    usage = llm_usage(backend, llm_desc, llm.log)
    record = run_record(state, {"llm": usage, "engine": args.engine, "llm_calls": llm.log, "tokens": llm.tokens})
    path = _write_record(run_dir, record)
    status = state.get("status")
    if backend is not None and not usage["used"]:
        _say(f"[{run_id}] llm: {llm_desc} was configured but NOT used ({usage['why']}); the plan is the parser's alone")
    for f in state.get("files", []):
        print(f)
    _say(f"run record: {path}")
    if status == "approved":
        _say(f"[{run_id}] approved: {state.get('message', '')}")
        if str(args.llm).split(":")[0] in REMOTE_LLMS and llm.log and not any(c.get("json_object") for c in llm.log):
            return fail(f"the LLM ({args.llm}) never answered usefully; the parser's plan was used", EXIT_LLM_UNUSED)
        return EXIT_OK
    if status in ("refused", "invalid", "unavailable"):
        return fail(f"{status}: {state.get('message', '')}", EXIT_INVALID)
    return fail(f"{status}: {state.get('message', '')}", EXIT_FAILED)


def llm_usage(backend, described: str, calls: list[dict]) -> dict:
    """run.json's `llm`: whether the configured LLM planned anything (at least one usable answer) and, if not,
    why, as a short excerpt of the first failure (what a server says is never copied whole)."""
    from ...configs.net import excerpt

    if backend is None:
        return {"configured": described, "used": False, "why": "no LLM configured: the parser plans alone"}
    answered = [c for c in calls if c.get("json_object") and not c.get("error") and not c.get("rejected")]
    failed = [c for c in calls if c.get("error") or c.get("rejected")]
    usage = {"configured": described, "used": bool(answered), "calls": len(calls), "answered": len(answered),
             "failed": len(failed)}
    if not answered:
        first = failed[0] if failed else {}
        usage["why"] = excerpt(first.get("error") or first.get("rejected") or "the LLM was never asked")
    return usage
