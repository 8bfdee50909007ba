"""`animation-studio dataset FILM --character NAME`: the curation job from the command line (tqdm progress).

The agent's side of the dataset family (nodes/dataset/ does the curation): it lives in agent/ because a
command line is the agent's business and nodes/ never imports agent/."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli_common import CLIError


def add_parser(subparsers):
    p = subparsers.add_parser("dataset", help="curate a LoRA dataset for one character from a film (resumable)")
    p.add_argument("film", help="a video file")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--character", help="a name from configs/characters/ (its reference images verify each region)")
    who.add_argument("--subject", help="a subject the registry does not know, e.g. 'bunny': a neutral label, no "
                     "profile text; needs --references")
    p.add_argument("--out", default=None, help="dataset folder (default: <output>/datasets/<film>/<character>); "
                   "run again with the same folder to resume")
    p.add_argument("--references", default=None, help="folder of reference images (default: the character's)")
    p.add_argument("--frames-per-scene", type=int, default=None)
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--identity", choices=["subject", "face", "palette"], default=None,
                   help="how regions are matched to the references (default: subject, colour + surface of the "
                   "matte vs the references and vs the set around it)")
    p.add_argument("--blur-threshold", type=float, default=None,
                   help="least variance of the Laplacian over the subject (default: configs/global.yaml)")
    p.add_argument("--segmenter", default=None, help="auto (clean plate), selfie (a person: MediaPipe where the "
                   "camera moves) or sam2:<checkpoint in models/sam2>")
    p.add_argument("--caption-llm", default=None, help="a vision model for captions, e.g. ollama:qwen2.5vl "
                   "(default: trigger word + the character's description)")
    p.add_argument("--workers", type=int, default=1, help="Ray workers on this machine (1 = no Ray)")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster, e.g. ray://head:10001")
    return p


def _reference_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CLIError(f"--references {folder}: not a folder of images")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))


def _images(paths) -> list:
    import numpy as np
    from PIL import Image

    return [np.asarray(Image.open(p).convert("RGBA")) for p in paths]


def run(args) -> int:
    from ..configs.characters import CharacterError, list_characters, load_character
    from ..configs.settings import load_settings
    from ..nodes import bridge
    from ..nodes.dataset.curate import CurationSettings
    from ..nodes.dataset.pipeline import CurationError, curate_film

    film = Path(args.film)
    if not film.is_file():
        raise CLIError(f"{film}: file not found")
    options = dict(frames_per_scene=args.frames_per_scene, max_images=args.max_images, identity=args.identity,
                   segmenter=args.segmenter, blur_threshold=args.blur_threshold)
    if args.subject is not None:
        try:
            settings = CurationSettings.for_subject(args.subject, **options)
        except ValueError as exc:
            raise CLIError(f"--subject: {exc}")
    else:
        try:
            load_character(args.character)
        except CharacterError as exc:
            raise CLIError(str(exc))
        settings = CurationSettings.for_character(args.character, **options)
    references = {}
    if args.subject is not None and args.references:
        references[settings.character] = _images(_reference_files(Path(args.references)))
    for name in ([] if args.subject is not None else list_characters()):
        if args.references and name == args.character:
            paths = _reference_files(Path(args.references))
        else:
            try:
                paths = load_character(name).reference_paths()
            except Exception:  # noqa: BLE001 - a character without references simply does not vote
                paths = []
        if paths:
            references[name] = _images(paths)
    out = Path(args.out) if args.out else Path(load_settings().paths.output) / "datasets" / film.stem / settings.character
    describe = None
    if args.caption_llm:
        from ..nodes.dataset.curate import vision_describer
        from .llm import LLMError, make_backend

        try:
            describe = vision_describer(make_backend(args.caption_llm, role="video_analyst"), out / ".staging",
                                        settings.trigger)
        except (LLMError, ValueError) as exc:
            raise CLIError(str(exc))
    bar = _tqdm_context()
    token = bridge.set_context(bar.context) if bar else None
    try:
        summary = curate_film(film, out, settings, references, workers=args.workers, ray_address=args.ray_address,
                              describe=describe)
    except CurationError as exc:
        raise CLIError(str(exc), 4)
    finally:
        if token is not None:
            bridge.reset_context(token)
            bar.close()
    short = {k: v for k, v in summary.items() if k != "records"}
    print(json.dumps(short, indent=1))
    if summary.get("warning"):
        print(f"warning: {summary['warning']}", file=sys.stderr)
    if not summary["enough"]:
        print(f"warning: {summary['kept']} images kept, fewer than the {settings.min_images} a character LoRA "
              f"needs; use a longer film or more frames per scene", file=sys.stderr)
    print(f"dataset: {out / summary['folder']}\nmanifest: {out / 'manifest.jsonl'}", file=sys.stderr)
    return 0


class _tqdm_context:
    """A RunContext whose progress hook drives a tqdm bar on stderr."""

    def __init__(self):
        from tqdm import tqdm

        from ..configs.settings import load_settings
        from ..nodes import bridge

        paths = load_settings().paths
        self.bar = tqdm(total=1, desc="curating scenes", file=sys.stderr, disable=not sys.stderr.isatty())
        self.context = bridge.RunContext(output_dir=Path(paths.output).resolve(), input_dir=Path(paths.input).resolve(),
                                         temp_dir=Path(paths.temp).resolve(), on_progress=self._progress)

    def _progress(self, node, value, total):
        self.bar.total = total
        self.bar.n = value
        self.bar.refresh()

    def close(self):
        self.bar.close()
