"""Face nodes: landmarks, preview, identity likeness, expression exaggeration, expressive moments, parody metrics.

Thin ComfyUI wrappers over landmarks.py / expression.py / warp.py / identity.py / metrics.py.
FACE_LANDMARKS carries a `FaceTrack` (the chosen face's 478 points per frame, in pixels).
"""
from __future__ import annotations

import json

from .. import bridge

CATEGORY = "Animation Studio/face"
LANDMARKS_TYPE = "FACE_LANDMARKS"
VIDEO_TYPE = "STUDIO_VIDEO"
SCENE_LIST_TYPE = "SCENE_LIST"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _np():
    import numpy as np

    return np


def _core():
    from .. import core

    return core


def _report(data: dict) -> str:
    return json.dumps(data, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def _face_opts() -> dict:
    return {"face_index": ("INT", {"default": -1, "min": -1, "max": 64,
                                   "tooltip": "-1 = the largest face; n = the n-th face from the left"}),
            "max_faces": ("INT", {"default": 4, "min": 1, "max": 16})}


def _weights() -> dict:
    return {name: ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                             "tooltip": f"how much of the factor the {name} get (0 = unchanged)"})
            for name in ("brows", "eyes", "mouth")}


# Longest sides tried by analysis_size -1 (auto); 0 = the clip's own size. The detector's hit rate is not
# monotonic in size (Big Buck Bunny: 119 of 132 frames at 320, 122 at 480, 38 at 640, 57 at 960, 119 at full),
# and sampled stills do not predict it (the toon face is acquired once, then tracked), so each size tracks the
# clip's first AUTO_MAX_FRAMES frames as the real pass does.
AUTO_SIZES = (320, 480, 640, 960, 0)
AUTO_MAX_FRAMES = 250


def choose_analysis_size(video, sizes=AUTO_SIZES, max_faces: int = 4, face_index: int = -1):
    """The analysis size whose tracking finds a face in the most of the first AUTO_MAX_FRAMES frames (ties:
    the smaller, faster size) -> (size, {size: frames with a face}, that size's track when it covers the
    whole clip, else None)."""
    from .. import video_io as vio
    from .landmarks import track_faces

    limit = min(video.frame_count, AUTO_MAX_FRAMES)
    longest = max(video.width, video.height)
    counts, tracks = {}, {}
    for size in sorted({s if 0 < s < longest else 0 for s in sizes}, key=lambda s: s or longest):
        w, h = vio.fit_size(video.width, video.height, size or None)
        tracks[size] = track_faces(vio.iter_frames(video, 0, limit, max_size=size or None, chunk=16), limit, w, h,
                                   fps=video.fps, video=True, face_index=face_index, max_faces=max_faces)
        counts[size] = int(tracks[size].valid.sum())
    best = max(counts, key=lambda s: (counts[s], -(s or longest)))
    return best, counts, (tracks[best] if limit == video.frame_count else None)


def track_video(video, face_index: int = -1, max_faces: int = 4, analysis_size: int = 0):
    """FaceTrack of a STUDIO_VIDEO, streamed; points in the video's full-size pixels. analysis_size: longest
    side used for detection, 0 = full size, -1 = automatic (choose_analysis_size, said in the notes)."""
    from .. import video_io as vio
    from .landmarks import track_faces

    note, track = "", None
    if analysis_size < 0:
        analysis_size, counts, track = choose_analysis_size(video, max_faces=max_faces, face_index=face_index)
        tried = ", ".join(f"{s or 'full'}: {n}" for s, n in counts.items())
        note = (f"analysis size {analysis_size or 'full'} chosen automatically: its tracking found a face in the "
                f"most of the first {min(video.frame_count, AUTO_MAX_FRAMES)} frames ({tried})")
    size = analysis_size or None
    if track is None:
        w, h = vio.fit_size(video.width, video.height, size)
        track = track_faces(vio.iter_frames(video, max_size=size, chunk=16), video.frame_count, w, h, fps=video.fps,
                            video=True, face_index=face_index, max_faces=max_faces)
    if note:
        track.notes.insert(0, note)
    return rescale_track(track, video.width, video.height)


def rescale_track(track, width: int, height: int):
    """The same track in another frame size (analysis at a smaller size, warp at full size)."""
    if (track.width, track.height) == (width, height):
        return track
    np = _np()
    from dataclasses import replace

    scale = np.array([width / track.width, height / track.height, width / track.width], np.float32)
    return replace(track, points=track.points * scale, width=width, height=height)


# ================================================================ landmarks
class FaceLandmarks:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = (LANDMARKS_TYPE, "STRING")
    RETURN_NAMES = ("landmarks", "report")
    DESCRIPTION = ("MediaPipe's 478 face landmarks for an image batch (tracked like a clip when the batch has "
                   "several frames); blendshapes when face_landmarker.task is in models/mediapipe.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), **_face_opts(),
                             "fps": ("FLOAT", {"default": 24.0, "min": 0.1, "max": 240.0})}}

    def run(self, images, face_index, max_faces, fps):
        from .landmarks import track_images

        track = track_images(_core().image_to_numpy(images), face_index=face_index, fps=fps, max_faces=max_faces)
        return (track, _report(track.summary()))


class FaceLandmarksVideo:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = (LANDMARKS_TYPE, "STRING")
    RETURN_NAMES = ("landmarks", "report")
    DESCRIPTION = "MediaPipe's 478 face landmarks tracked over a video, streamed in chunks (never the whole clip in RAM)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": (VIDEO_TYPE,), **_face_opts(),
                             "analysis_size": ("INT", {"default": 0, "min": -1, "max": 4096,
                                                       "tooltip": "longest side used for detection; 0 = full size; "
                                                                  "-1 = the size that finds the most faces "
                                                                  "(tried on sampled frames)"})}}

    def run(self, video, face_index, max_faces, analysis_size):
        track = track_video(video, face_index, max_faces, analysis_size)
        return (track, _report(track.summary()))


class FacePreview:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    DESCRIPTION = "Draw the landmarks (features coloured: brows, eyes, lips) over the images."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "landmarks": (LANDMARKS_TYPE,),
                             "point_size": ("INT", {"default": 1, "min": 1, "max": 8})}}

    def run(self, images, landmarks, point_size):
        from .preview import draw_landmarks

        frames = _core().image_to_numpy(images)
        track = rescale_track(landmarks, frames.shape[2], frames.shape[1])
        out = [draw_landmarks(f, track.points[min(i, len(track) - 1)], point_size) for i, f in enumerate(frames)]
        return (_core().numpy_to_image(_np().stack(out)),)


# ================================================================ expression
class ExpressiveMoment:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("INT", "FLOAT", "FLOAT", "INT", "INT", "INT", "STRING")
    RETURN_NAMES = ("peak_frame", "start_time", "end_time", "start_frame", "end_frame", "scene_index", "report")
    DESCRIPTION = ("Where the expression peaks over a clip (mouth opening, smile, brow raise, eyes widening beyond "
                   "the clip's calmest frames; a closed mouth is never a peak), a window around it (for slow motion "
                   "or a trim) and the scene that holds it.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"landmarks": (LANDMARKS_TYPE,),
                             "window_seconds": ("FLOAT", {"default": 1.0, "min": 0.04, "max": 60.0, "step": 0.05})},
                "optional": {"scenes": (SCENE_LIST_TYPE,)}}

    def run(self, landmarks, window_seconds, scenes=None):
        from .expression import find_expressive_moment

        scene_ranges = [tuple(s) for s in scenes["scenes"]] if scenes else None
        moment = find_expressive_moment(landmarks.points, landmarks.fps, window_seconds, scene_ranges,
                                        appearance=getattr(landmarks, "appearance", None))
        if landmarks.blendshapes is not None and not _np().isnan(landmarks.blendshapes[moment["peak_frame"]]).all():
            shapes = landmarks.blendshapes[moment["peak_frame"]]
            top = _np().argsort(-shapes)[:5]
            moment["peak_blendshapes"] = {landmarks.blendshape_names[i]: round(float(shapes[i]), 3) for i in top}
        return (moment["peak_frame"], float(moment["start_time"]), float(moment["end_time"]), moment["start_frame"],
                moment["end_frame"], moment["scene_index"], _report(moment))


# The neutral choices, kept here (not imported from warp.py) so listing the node loads no numpy.
NEUTRALS = ("calmest frames", "clip mean", "first frame")


def _exaggerate_inputs(media: dict) -> dict:
    return {"required": {**media,
                         "factor": ("FLOAT", {"default": 2.5, "min": -100.0, "max": 100.0, "step": 0.05,
                                              "tooltip": "deviation from neutral x factor; clamped to 0..5"}),
                         **_weights(),
                         "neutral": (list(NEUTRALS), {"tooltip": "what the deviation is measured from; the "
                                                                 "calmest frames = the face at rest"}),
                         "smoothing": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.1,
                                                 "tooltip": "temporal Gaussian sigma in frames (anti-flicker)"}),
                         "face_index": _face_opts()["face_index"]},
            "optional": {"landmarks": (LANDMARKS_TYPE,), "neutral_image": ("IMAGE",)}}


def _neutral_points(neutral_image, face_index: int):
    if neutral_image is None:
        return None
    from .landmarks import track_images

    track = track_images(_core().image_to_numpy(neutral_image)[:1], face_index=face_index)
    if not track.valid[0]:
        raise ValueError("neutral_image: no face found in it.")
    return track.points[0]


class ExaggerateExpression:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "report")
    DESCRIPTION = ("Scale each face's expression (deviation from neutral: the clip's calmest frames, its mean, the "
                   "first frame or a neutral image) by a factor with a temporally smoothed, feathered thin-plate "
                   "spline warp driven by the 478 landmarks.")

    @classmethod
    def INPUT_TYPES(cls):
        return _exaggerate_inputs({"images": ("IMAGE",)})

    def run(self, images, factor, brows, eyes, mouth, neutral, smoothing, face_index, landmarks=None,
            neutral_image=None):
        from .landmarks import track_images
        from .warp import apply_plan, plan_exaggeration

        frames = _core().image_to_numpy(images)
        track = landmarks if landmarks is not None else track_images(frames, face_index=face_index)
        track = rescale_track(track, frames.shape[2], frames.shape[1])
        if len(track) != len(frames):
            raise ValueError(f"landmarks: {len(track)} frames, but images has {len(frames)}.")
        plan = plan_exaggeration(track.points, factor, {"brows": brows, "eyes": eyes, "mouth": mouth}, neutral,
                                 _neutral_points(neutral_image, face_index), smoothing, track.appearance)
        plan.report["factor_requested"] = factor
        plan.report["landmarks"] = track.summary()
        if len(frames) == 1 and max(track.faces_found or [0]) > 1:
            plan.report["notes"].append(
                f"{max(track.faces_found)} faces in the photo: one was exaggerated, "
                + ("the largest" if face_index < 0 else f"face {face_index} from the left when it exists")
                + " (face_index chooses another; the others are left as they are)")
        out = _np().concatenate(list(apply_plan([frames], plan, progress=bridge.ProgressBar(len(frames), "exaggerate"))))
        return (_core().numpy_to_image(out), _report(plan.report))


class ExaggerateExpressionVideo:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = (VIDEO_TYPE, "STRING")
    RETURN_NAMES = ("video", "report")
    DESCRIPTION = "Expression exaggeration on a streamed STUDIO_VIDEO (chunked, sound kept)."

    @classmethod
    def INPUT_TYPES(cls):
        return _exaggerate_inputs({"video": (VIDEO_TYPE,)})

    def run(self, video, factor, brows, eyes, mouth, neutral, smoothing, face_index, landmarks=None,
            neutral_image=None):
        from .warp import plan_exaggeration, warp_frame
        from .. import video as video_nodes

        track = landmarks if landmarks is not None else track_video(video, face_index)
        track = rescale_track(track, video.width, video.height)
        if len(track) != video.frame_count:
            raise ValueError(f"landmarks: {len(track)} frames, but the video has {video.frame_count}.")
        plan = plan_exaggeration(track.points, factor, {"brows": brows, "eyes": eyes, "mouth": mouth}, neutral,
                                 _neutral_points(neutral_image, face_index), smoothing, track.appearance)
        plan.report["factor_requested"] = factor
        plan.report["landmarks"] = track.summary()

        def warp(i, img):
            if i < len(plan.valid) and plan.valid[i]:
                return warp_frame(img, plan.src[i], plan.dst[i])
            return img

        return (video_nodes._map_frames(video, warp, "exaggerated"), _report(plan.report))


# ================================================================ identity
def _load_folder_images(folder: str):
    """uint8 RGB images of a folder inside the input folder (refused outside it)."""
    from PIL import Image

    np = _np()
    base = bridge.input_directory().resolve()
    path = (base / folder).resolve()
    if path != base and base not in path.parents:
        raise PermissionError(f"reference_folder {folder!r} is outside the input folder {base}.")
    if not path.is_dir():
        raise FileNotFoundError(f"reference_folder {folder!r} not found in the input folder {base}.")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return [np.asarray(Image.open(p).convert("RGB")) for p in files]


def _landmarks_or_none(img):
    from .landmarks import track_images

    try:
        track = track_images(img, as_video=False)
    except bridge.MissingDependency:
        return None
    return track.points[0] if track.valid[0] else None


class CharacterSimilarity:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("FLOAT", "STRING")
    RETURN_NAMES = ("similarity", "report")
    DESCRIPTION = ("Likeness (0..1) of an image to a character's reference images (IMAGE batch and/or a folder in "
                   "the input folder): InsightFace ArcFace when its pack is in models/insightface, dlib for real "
                   "faces, a colour+HOG+geometry descriptor for toon/3D faces; the report names the path used.")

    @classmethod
    def INPUT_TYPES(cls):
        from .identity import METHODS

        return {"required": {"image": ("IMAGE",), "method": (METHODS,),
                             "reference_folder": ("STRING", {"default": "", "tooltip": "folder in the input folder"})},
                "optional": {"reference_images": ("IMAGE",)}}

    def run(self, image, method, reference_folder, reference_images=None):
        from .identity import character_similarity

        core = _core()
        refs = list(core.image_to_numpy(reference_images)) if reference_images is not None else []
        if reference_folder.strip():
            refs += _load_folder_images(reference_folder.strip())
        frames = core.image_to_numpy(image)
        results = [character_similarity(f, refs, method, _landmarks_or_none) for f in frames]
        score = float(_np().mean([r["similarity"] for r in results]))
        report = {"similarity": round(score, 4), "images": len(frames), "per_image": results}
        return (score, _report(report))


# ================================================================ metrics
class ParodyMetrics:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("STRING", "FLOAT", "FLOAT", "FLOAT")
    RETURN_NAMES = ("report", "achieved_factor", "identity_kept", "flicker_ratio")
    DESCRIPTION = ("Objective metrics of an exaggerated clip against its source: expression intensity achieved vs. "
                   "the target factor (landmarks re-detected on the result), identity kept, added flicker.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"original": (VIDEO_TYPE,), "result": (VIDEO_TYPE,),
                             "target_factor": ("FLOAT", {"default": 2.5, "min": 0.0, "max": 5.0, "step": 0.05}),
                             "analysis_size": ("INT", {"default": 480, "min": -1, "max": 4096,
                                                       "tooltip": "0 = full size; -1 = the size that finds the "
                                                                  "most faces"})},
                "optional": {"landmarks": (LANDMARKS_TYPE,)}}

    def run(self, original, result, target_factor, analysis_size, landmarks=None):
        from .metrics import parody_metrics

        report = parody_metrics(original, result, target_factor, analysis_size, landmarks)
        return (_report(report), float(report["achieved_factor"]), float(report["identity"]["similarity"]),
                float(report["flicker"]["ratio"]))


_NODES = {
    "FaceLandmarks": (FaceLandmarks, "Face Landmarks"),
    "FaceLandmarksVideo": (FaceLandmarksVideo, "Face Landmarks (Video)"),
    "FacePreview": (FacePreview, "Face Landmarks Preview"),
    "ExpressiveMoment": (ExpressiveMoment, "Find Expressive Moment"),
    "ExaggerateExpression": (ExaggerateExpression, "Exaggerate Expression"),
    "ExaggerateExpressionVideo": (ExaggerateExpressionVideo, "Exaggerate Expression (Video)"),
    "CharacterSimilarity": (CharacterSimilarity, "Character Similarity"),
    "ParodyMetrics": (ParodyMetrics, "Parody Metrics"),
}
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings(_NODES)
