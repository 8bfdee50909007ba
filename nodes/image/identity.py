"""Character consistency: IP-Adapter from a reference image (works on stylized 3D characters, where real-face
detectors fail) and InstantID (face embedding + IdentityNet ControlNet) when its weights are present.

Expected files (ComfyUI models folder layout):
  models/ipadapter/<name>.safetensors|.bin  with  models/ipadapter/image_encoder/ (CLIP vision, diffusers folder)
  models/instantid/ip-adapter.bin  and  models/instantid/ControlNetModel/ (IdentityNet, diffusers folder)
  models/insightface/models/antelopev2/  (insightface detector + ArcFace recognition ONNX files)
"""
from __future__ import annotations

from pathlib import Path

from .. import bridge
from .sdxl import EXTRA, ControlSpec


def ip_adapter_reference(image, ipadapter_name: str, scale: float) -> dict:
    """A REFERENCE value; files are checked now so a missing model is reported before sampling."""
    weights = bridge.find_model("ipadapter", ipadapter_name)
    encoder = weights.parent / "image_encoder"
    if not (encoder / "config.json").is_file():
        raise bridge.MissingModel(f"IP-Adapter '{ipadapter_name}' needs its CLIP image encoder: put the diffusers "
                                  f"folder 'image_encoder' (config.json + weights) in {weights.parent}.")
    return {"kind": "ip_adapter", "weights": str(weights), "encoder": str(encoder), "image": image,
            "scale": float(scale)}


def instantid_reference(face_image, ip_scale: float, controlnet_strength: float) -> dict:
    """A REFERENCE value for InstantID: ArcFace embedding and face keypoints from insightface (antelopev2)."""
    adapter = bridge.find_model("instantid", "ip-adapter.bin")
    identitynet = bridge.find_model("instantid", "ControlNetModel")
    insight_root = bridge.find_model("insightface", "models/antelopev2").parent.parent
    insightface = bridge.require("insightface", "face")
    analysis = insightface.app.FaceAnalysis(name="antelopev2", root=str(insight_root),
                                            providers=["CPUExecutionProvider"])
    analysis.prepare(ctx_id=-1, det_size=(640, 640))
    faces = analysis.get(face_image[..., ::-1].copy())  # insightface expects BGR
    if not faces:
        raise ValueError("InstantID found no face in the reference image; for stylized 3D characters use the "
                         "IP-Adapter reference instead.")
    face = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
    return {"kind": "instantid", "weights": str(adapter), "identitynet": str(identitynet),
            "embedding": face.normed_embedding.tolist(), "kps": face.kps.tolist(),
            "image_size": list(face_image.shape[:2]), "scale": float(ip_scale), "strength": float(controlnet_strength)}


def draw_face_keypoints(kps, height: int, width: int):
    """InstantID's control image: five face keypoints joined to the nose, in its colours."""
    import numpy as np

    cv2 = bridge.require("cv2", EXTRA, "opencv-python-headless")
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]
    canvas = np.zeros((height, width, 3), np.uint8)
    for a, b in ((0, 2), (1, 2), (3, 2), (4, 2)):
        cv2.line(canvas, tuple(map(round, kps[a])), tuple(map(round, kps[b])), colors[a], 6)
    for (x, y), color in zip(kps, colors):
        cv2.circle(canvas, (round(x), round(y)), 10, color, -1)
    return canvas


def attach_reference(pipe, reference: dict | None) -> tuple[dict, list[ControlSpec]]:
    """Load (or unload) the adapter on the pipeline; the extra call arguments and controls it needs."""
    loaded = getattr(pipe, "_studio_ip_adapter", None)
    wanted = reference["weights"] if reference else None
    if loaded and loaded != wanted:
        pipe.unload_ip_adapter()
        pipe._studio_ip_adapter = None
    if reference is None:
        return {}, []
    weights = Path(reference["weights"])
    if getattr(pipe, "_studio_ip_adapter", None) != wanted:
        encoder = reference.get("encoder")
        pipe.load_ip_adapter(str(weights.parent), subfolder="", weight_name=weights.name,
                             image_encoder_folder=encoder, local_files_only=True)
        pipe._studio_ip_adapter = wanted
    pipe.set_ip_adapter_scale(reference["scale"])
    if reference["kind"] == "ip_adapter":
        from PIL import Image

        return {"ip_adapter_image": Image.fromarray(reference["image"])}, []
    torch = bridge.require("torch", EXTRA)
    embedding = torch.tensor(reference["embedding"], dtype=pipe.unet.dtype)[None, None]
    # Classifier-free guidance: an all-zero identity for the unconditional half.
    embeds = torch.cat([torch.zeros_like(embedding), embedding])
    h, w = reference["image_size"]
    control = ControlSpec(reference["identitynet"], draw_face_keypoints(reference["kps"], h, w), reference["strength"])
    return {"ip_adapter_image_embeds": [embeds]}, [control]
