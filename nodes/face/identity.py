"""Identity embeddings and likeness, with the path that produced each score said out loud.

Paths, tried in this order by `method="auto"`:
1. **insightface** — ArcFace from an InsightFace model pack in `models/insightface/<pack>/` (any ONNX
   that insightface's model zoo routes to ArcFace, e.g. buffalo_l's `w600k_r50.onnx`). Faces are aligned
   with insightface's `norm_crop` on five points taken from the MediaPipe landmarks (eye centres, nose
   tip, mouth corners), so no SCRFD detector is needed.
2. **dlib** — dlib's ResNet face descriptor (128-d) with its HOG detector and 5-point aligner; the model
   files ship in the `face-recognition-models` PyPI package, so this works offline.
3. **stylized** — for 3D/toon characters where the real-face detectors find nothing: the face crop
   (from MediaPipe landmarks when they are found, else the whole image) described by
   colour (HSV histogram), shape (HOG gradients on a 64x64 grey crop) and, when landmarks exist,
   face geometry (distances between key points in eye-distance units). It is a general image
   descriptor, not a face recogniser: it says "same look", and is reported as such.
Similarity is in 0..1 for every path (1 = same). dlib: 1 - distance/1.2, so its usual 0.6 "same
person" threshold maps to 0.5. ArcFace and stylized: cosine, clipped at 0.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import bridge

EXTRA = "face"
METHODS = ["auto", "insightface", "dlib", "stylized"]
INSIGHTFACE_KIND = "insightface"


@dataclass
class Embedding:
    vector: np.ndarray
    path: str  # insightface | dlib | stylized
    note: str = ""


# ---------------------------------------------------------------- dlib
def _dlib_files() -> dict[str, Path]:
    # face_recognition_models' own __init__ imports pkg_resources (gone from setuptools>=81): find the files directly.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise bridge.MissingDependency("dlib face recognition needs the 'face-recognition-models' package. "
                                       "Install the 'face' extra: pip install \"comfyui-animation-studio[face]\"")
    root = Path(spec.origin).parent / "models"
    return {"recognition": root / "dlib_face_recognition_resnet_model_v1.dat",
            "shape5": root / "shape_predictor_5_face_landmarks.dat"}


_DLIB: dict = {}


def _dlib_models():
    if not _DLIB:
        dlib = bridge.require("dlib", EXTRA, "dlib-bin")
        files = _dlib_files()
        for name, path in files.items():
            if not path.is_file():
                raise bridge.MissingModel(f"Model '{path.name}' not found in {path.parent} "
                                          "(reinstall face-recognition-models).")
        _DLIB.update(dlib=dlib, detector=dlib.get_frontal_face_detector(),
                     shape=dlib.shape_predictor(str(files["shape5"])),
                     net=dlib.face_recognition_model_v1(str(files["recognition"])))
    return _DLIB


def dlib_embedding(image: np.ndarray, face_index: int = -1) -> Embedding | None:
    """128-d dlib descriptor of the chosen face (largest by default), or None when HOG finds no face."""
    m = _dlib_models()
    img = np.ascontiguousarray(image)
    # Upsample small images once so faces under ~80 px are still found.
    faces = list(m["detector"](img, 1 if max(img.shape[:2]) < 800 else 0))
    if not faces:
        return None
    faces.sort(key=lambda r: r.left())
    if 0 <= face_index < len(faces):
        rect, note = faces[face_index], f"face {face_index} from the left of {len(faces)}"
    else:
        rect = max(faces, key=lambda r: r.width() * r.height())
        note = f"largest of {len(faces)} faces" if len(faces) > 1 else ""
    chip = m["shape"](img, rect)
    return Embedding(np.array(m["net"].compute_face_descriptor(img, chip), np.float32), "dlib", note)


# ---------------------------------------------------------------- insightface
_ARCFACE: dict = {}


def insightface_packs() -> list[str]:
    return sorted({Path(p).parts[0] for p in bridge.list_models(INSIGHTFACE_KIND, (".onnx",)) if "/" in p})


def _arcface(pack: str):
    if pack not in _ARCFACE:
        bridge.require("onnxruntime", EXTRA)
        model_zoo = bridge.require("insightface.model_zoo", EXTRA, "insightface")
        folder = bridge.find_model(INSIGHTFACE_KIND, pack)
        model = None
        for onnx in sorted(folder.glob("*.onnx")):
            candidate = model_zoo.get_model(str(onnx), providers=["CPUExecutionProvider"])
            if candidate is not None and candidate.__class__.__name__ == "ArcFaceONNX":
                model = candidate
                break
        if model is None:
            raise bridge.MissingModel(f"No ArcFace recognition ONNX (e.g. 'w600k_r50.onnx') in the insightface "
                                      f"model pack folder {folder}.")
        model.prepare(ctx_id=-1)
        _ARCFACE[pack] = model
    return _ARCFACE[pack]


def five_points(points: np.ndarray) -> np.ndarray:
    """ArcFace's five alignment points from MediaPipe's 478: eyes (iris centres), nose tip, mouth corners."""
    # MediaPipe's "left" is the subject's left = image right; ArcFace wants image-left eye first.
    return np.array([points[468, :2], points[473, :2], points[1, :2], points[61, :2], points[291, :2]], np.float32)


def insightface_embedding(image: np.ndarray, points: np.ndarray | None, pack: str) -> Embedding | None:
    if points is None or np.isnan(points).any():
        return None
    model = _arcface(pack)
    face_align = bridge.require("insightface.utils.face_align", EXTRA, "insightface")
    size = model.input_size[0]
    bgr = np.ascontiguousarray(image[..., ::-1])
    crop = face_align.norm_crop(bgr, five_points(points), image_size=size)
    vec = np.asarray(model.get_feat(crop), np.float32).reshape(-1)
    return Embedding(vec / max(np.linalg.norm(vec), 1e-9), "insightface", f"pack {pack}")


# ---------------------------------------------------------------- stylized fallback
GEOMETRY_PAIRS = [(33, 263), (61, 291), (13, 14), (1, 152), (10, 152), (105, 334), (159, 145), (386, 374),
                  (1, 61), (1, 291), (234, 454), (33, 1), (263, 1)]


def face_crop(image: np.ndarray, points: np.ndarray | None, margin: float = 0.15) -> np.ndarray:
    if points is None or np.isnan(points).any():
        return image
    h, w = image.shape[:2]
    x0, y0 = points[:, 0].min(), points[:, 1].min()
    x1, y1 = points[:, 0].max(), points[:, 1].max()
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    x0, y0 = int(max(x0 - mx, 0)), int(max(y0 - my, 0))
    x1, y1 = int(min(x1 + mx, w)), int(min(y1 + my, h))
    return image[y0:y1, x0:x1] if x1 - x0 >= 8 and y1 - y0 >= 8 else image


def stylized_embedding(image: np.ndarray, points: np.ndarray | None) -> Embedding:
    """Colour + gradient + geometry descriptor of a face crop (works on toon and 3D faces)."""
    import cv2

    skimage_feature = bridge.require("skimage.feature", EXTRA, "scikit-image")
    crop = face_crop(image, points)
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256]).reshape(-1)
    hist = np.sqrt(hist / max(hist.sum(), 1.0))  # Hellinger: cosine of sqrt-histograms
    grey = cv2.resize(cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY), (64, 64),
                      interpolation=cv2.INTER_AREA)
    hog = skimage_feature.hog(grey, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                              feature_vector=True).astype(np.float32)
    parts = [(hist, 1.0), (hog, 1.0)]
    used = "colour+HOG"
    if points is not None and not np.isnan(points).any():
        iod = max(float(np.linalg.norm(points[33, :2] - points[263, :2])), 1e-6)
        geo = np.array([np.linalg.norm(points[a, :2] - points[b, :2]) / iod for a, b in GEOMETRY_PAIRS], np.float32)
        parts.append((geo - geo.mean(), 1.0))
        used += "+landmark geometry"
    # Each part is unit-normalised and weighted equally, so no part dominates by its length.
    vec = np.concatenate([p / max(np.linalg.norm(p), 1e-9) * wgt for p, wgt in parts])
    return Embedding(vec / max(np.linalg.norm(vec), 1e-9), "stylized", used)


# ---------------------------------------------------------------- one entry point
def embed(image: np.ndarray, method: str = "auto", points: np.ndarray | None = None,
          face_index: int = -1) -> Embedding:
    """The embedding of one uint8 RGB image by `method`, falling back as `auto` allows."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    notes = []
    if method in ("auto", "insightface"):
        packs = insightface_packs()
        if packs:
            emb = insightface_embedding(image, points, packs[0])
            if emb is not None:
                return emb
            notes.append("insightface: no landmarks for alignment")
        elif method == "insightface":
            folders = ", ".join(str(f) for f in bridge.model_folders(INSIGHTFACE_KIND))
            raise bridge.MissingModel(f"No InsightFace model pack (a folder with ArcFace ONNX files, e.g. "
                                      f"buffalo_l/w600k_r50.onnx) in the '{INSIGHTFACE_KIND}' models folder ({folders}).")
    if method in ("auto", "dlib"):
        emb = dlib_embedding(image, face_index)
        if emb is not None:
            return emb
        notes.append("dlib: no real face found")
    emb = stylized_embedding(image, points)
    emb.note = "; ".join(notes + [emb.note])
    return emb


def similarity(a: Embedding, b: Embedding) -> float:
    """Likeness 0..1 of two embeddings of the same path."""
    if a.path != b.path:
        raise ValueError(f"Cannot compare a {a.path} embedding with a {b.path} one.")
    if a.path == "dlib":
        return float(np.clip(1.0 - np.linalg.norm(a.vector - b.vector) / 1.2, 0.0, 1.0))
    cos = float(np.dot(a.vector, b.vector) / max(np.linalg.norm(a.vector) * np.linalg.norm(b.vector), 1e-12))
    return float(np.clip(cos, 0.0, 1.0))


def character_similarity(image: np.ndarray, references: list[np.ndarray], method: str = "auto",
                         points_of=None) -> dict:
    """Likeness of `image` to a character's reference images: the mean over references, with the path per score.

    All scores use one path: the most specific path that works on the image *and* every reference
    (a real-face score against a toon reference would mean nothing).
    """
    if not references:
        raise ValueError("reference images: none given (connect an IMAGE batch or name a folder).")
    points_of = points_of or (lambda img: None)
    image_points = points_of(image)
    ref_points = [points_of(r) for r in references]
    if image_points is None or any(p is None for p in ref_points):
        # Landmark geometry only compares like with like: used for all images or for none.
        image_points, ref_points = None, [None] * len(references)
    order = {"auto": ["insightface", "dlib", "stylized"], "insightface": ["insightface"], "dlib": ["dlib", "stylized"],
             "stylized": ["stylized"]}[method]
    if "insightface" in order and not insightface_packs():
        if method == "insightface":
            embed(image, "insightface", image_points)  # raises the MissingModel message
        order = [p for p in order if p != "insightface"]
    for path in order:
        if path == "insightface":
            pack = insightface_packs()[0]
            target = insightface_embedding(image, image_points, pack)
            refs = [insightface_embedding(r, p, pack) for r, p in zip(references, ref_points)]
        elif path == "dlib":
            target = dlib_embedding(image)
            refs = [dlib_embedding(r) for r in references] if target is not None else []
        else:
            target = stylized_embedding(image, image_points)
            refs = [stylized_embedding(r, p) for r, p in zip(references, ref_points)]
        if target is not None and refs and all(r is not None for r in refs):
            scores = [similarity(target, r) for r in refs]
            return {"similarity": round(float(np.mean(scores)), 4), "best": round(float(np.max(scores)), 4),
                    "path": path, "scores": [round(s, 4) for s in scores], "references": len(references),
                    "note": {"dlib": "dlib ResNet 128-d (real faces); 0.5 = dlib's same-person threshold",
                             "insightface": "ArcFace cosine", "stylized": "colour + HOG + landmark geometry "
                             "(no real face found: a look-alike score, not face recognition)"}[path]}
    raise ValueError("No path could score this image against the references.")
