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
