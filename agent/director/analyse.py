"""Look at the user's media before planning: a vision model describes up to 4 sampled frames.

The answer (subjects, setting, action, mood, faces visible) is bounded by a JSON schema, stored in
the run record, and used by the plan: an empty brief setting is filled from it, the parody caption
names the scene, and "no faces visible" is said before a face recipe runs. Only when the backend can
see images (backend.supports_images); otherwise the plan uses the words of the intent alone.
"""
from __future__ import annotations

from pathlib import Path

MAX_FRAMES = 4
FRAME_SIZE = 512  # long side sent to the model: enough to recognise a scene, small enough for any context

ANALYSIS_SCHEMA = {
    "type": "object",
    "properties": {
        "subjects": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 6},
        "setting": {"type": "string", "maxLength": 160},
        "action": {"type": "string", "maxLength": 160},
        "mood": {"type": "string", "maxLength": 60},
        "faces_visible": {"type": "string", "enum": ["yes", "no"]},
    },
    "required": ["subjects", "setting", "action", "mood", "faces_visible"],
    "additionalProperties": False,
}


def can_see(llm) -> bool:
    backend = getattr(llm, "backend", None)
    return backend is not None and bool(getattr(backend, "supports_images", False))


def sample_frames(path: Path, kind: str, count: int = MAX_FRAMES) -> list[bytes]:
    """PNG bytes of up to `count` frames spread over a video, or of the image itself."""
    from .evaluator import png_bytes

    if kind == "image":
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((FRAME_SIZE, FRAME_SIZE))
            return [png_bytes(np.asarray(img))]
    from ...nodes import video_io

    video = video_io.probe(path)
    total = max(video.frame_count, 1)
    wanted = {min(total - 1, int((i + 0.5) * total / count)) for i in range(count)}
    frames: list[bytes] = []
    index = 0
    for chunk in video_io.iter_frames(video, max_size=FRAME_SIZE):
        for frame in chunk:
            if index in wanted:
                frames.append(png_bytes(frame))
            index += 1
        if len(frames) >= len(wanted):
            break
    return frames[:count]


def look_at_inputs(inputs: dict, intent: str, llm) -> tuple[dict, list[str]]:
    """{input name: the analyst's answer (+ "frames": how many it saw)} and notes on what could not be seen."""
    from ...nodes import bridge

    seen: dict = {}
    notes: list[str] = []
    if not can_see(llm):
        return seen, notes
    for kind in ("video", "image"):
        for name in inputs.get(kind, []):
            try:
                frames = sample_frames(bridge.safe_input_path(name), kind)
            except Exception as exc:  # noqa: BLE001 - unreadable media is a note; the intent's words still plan
                notes.append(f"could not sample {name}: {type(exc).__name__}: {exc}")
                continue
            if not frames:
                continue
            answer = llm.ask("video_analyst",
                             "You describe the frames of an animation clip for a film director. JSON only.",
                             f"The user wants: {intent}\nThese are {len(frames)} frames sampled from {kind} "
                             f"'{Path(name).name}'. Who is in them, where, doing what, in what mood, and are "
                             "faces visible?", ANALYSIS_SCHEMA, images=frames, max_tokens=250)
            if answer:
                seen[name] = {**answer, "frames": len(frames)}
            else:
                notes.append(f"the video analyst gave no usable answer for {name}")
    return seen, notes


def first_answer(analysis: dict) -> dict:
    """The first input's vision answer from a run's analysis facts, or {}."""
    for facts in (analysis or {}).values():
        if isinstance(facts, dict) and isinstance(facts.get("vision"), dict):
            return facts["vision"]
    return {}
