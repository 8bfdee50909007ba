"""Character consistency: IP-Adapter from a reference image (works on stylized 3D characters, where real-face
detectors fail) and InstantID (face embedding + IdentityNet ControlNet) when its weights are present.

Expected files (ComfyUI models folder layout):
  models/ipadapter/<name>.safetensors|.bin  with  models/ipadapter/image_encoder/ (CLIP vision, diffusers folder)
  models/instantid/ip-adapter.bin  and  models/instantid/ControlNetModel/ (IdentityNet, diffusers folder)
  models/insightface/<pack>/  an InsightFace model pack with an ArcFace recognition ONNX (antelopev2's
  glintr100.onnx is what InstantID was trained on). Faces are found and given their five keypoints by the
  face family's MediaPipe landmarks (bundled with mediapipe), so no SCRFD detector file is needed.
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


def instantid_reference(face_image, ip_scale: float, controlnet_strength: float,
                       insightface_pack: str = "antelopev2") -> dict:
    """A REFERENCE value for InstantID: the ArcFace embedding and five face keypoints of the largest face."""
    import numpy as np

    from ..face import identity as faces
    from ..face.landmarks import track_images

    adapter = bridge.find_model("instantid", "ip-adapter.bin")
    identitynet = bridge.find_model("instantid", "ControlNetModel")
    arcface = faces._arcface(insightface_pack)  # MissingModel names the pack folder when absent
    track = track_images(np.ascontiguousarray(face_image)[None], as_video=False)
    if not track.valid[0]:
        raise ValueError("InstantID found no face in the reference image; for stylized 3D characters use the "
                         "IP-Adapter reference instead.")
    kps = faces.five_points(track.points[0])
    face_align = bridge.require("insightface.utils.face_align", "face", "insightface")
    crop = face_align.norm_crop(np.ascontiguousarray(face_image[..., ::-1]), kps, image_size=arcface.input_size[0])
    # InstantID feeds insightface's raw `embedding` (not `normed_embedding`) to its projection, so do we.
    embedding = np.asarray(arcface.get_feat(crop), np.float32).reshape(-1)
    return {"kind": "instantid", "weights": str(adapter), "identitynet": str(identitynet),
            "embedding": embedding.tolist(), "kps": kps.tolist(), "insightface_pack": insightface_pack,
            "image_size": list(face_image.shape[:2]), "scale": float(ip_scale), "strength": float(controlnet_strength)}


# InstantID's keypoint image, as its paper and pipeline describe it: the four limbs eye-nose, eye-nose,
# mouth-nose, mouth-nose are filled ellipses 4 px in half-width along the limb, in the colour of the limb's
# outer point, the limb layer then dimmed to 60 %; each keypoint on top is a filled 10 px circle at full colour.
KPS_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]
KPS_LIMBS = ((0, 2), (1, 2), (3, 2), (4, 2))
KPS_LIMB_HALF_WIDTH = 4
KPS_LIMB_DIM = 0.6
KPS_RADIUS = 10


def draw_face_keypoints(kps, height: int, width: int):
    """InstantID's control image for five face keypoints (left eye, right eye, nose, mouth corners)."""
    import math

    import numpy as np

    cv2 = bridge.require("cv2", EXTRA, "opencv-python-headless")
    points = np.asarray(kps, np.float64)
    limbs = np.zeros((height, width, 3), np.float64)
    for a, b in KPS_LIMBS:
        (xa, ya), (xb, yb) = points[a], points[b]
        centre = (int((xa + xb) / 2), int((ya + yb) / 2))
        half_length = int(math.hypot(xa - xb, ya - yb) / 2)
        angle = int(math.degrees(math.atan2(ya - yb, xa - xb)))
        outline = cv2.ellipse2Poly(centre, (half_length, KPS_LIMB_HALF_WIDTH), angle, 0, 360, 1)
        cv2.fillConvexPoly(limbs, outline, KPS_COLOURS[a])
    canvas = (limbs * KPS_LIMB_DIM).astype(np.uint8)
    for (x, y), colour in zip(points, KPS_COLOURS):
        cv2.circle(canvas, (int(x), int(y)), KPS_RADIUS, colour, -1)
    return canvas


def attach_reference(pipe, reference: dict | None, guided: bool = True) -> tuple[dict, list[ControlSpec]]:
    """Load (or unload) the adapter on the pipeline; the extra call arguments and controls it needs.

    `guided`: the sampler runs classifier-free guidance (cfg > 1), so the identity needs its negative half too.
    """
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
    # [batch, images, sequence, 512]: one face image whose embedding is a one-token sequence for the Resampler.
    embedding = torch.tensor(reference["embedding"], dtype=pipe.unet.dtype)[None, None, None]
    # Classifier-free guidance: an all-zero identity for the unconditional half (as InstantID does).
    embeds = torch.cat([torch.zeros_like(embedding), embedding]) if guided else embedding
    projection = pipe.unet.encoder_hid_proj  # the same projection the UNet applies to these embeds
    with torch.no_grad():
        face_tokens = projection([embeds.to(next(projection.parameters()).device)])[0].flatten(1, 2)
    h, w = reference["image_size"]
    # IdentityNet reads the projected face tokens where a ControlNet usually reads the prompt (InstantID's pipeline).
    control = ControlSpec(reference["identitynet"], draw_face_keypoints(reference["kps"], h, w), reference["strength"],
                          hidden_states=face_tokens)
    return {"ip_adapter_image_embeds": [embeds]}, [control]
