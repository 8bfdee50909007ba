"""A tiny random-weight SDXL built in code, saved the way real models ship, for tests and benchmarks.

`build_tiny_sdxl(root)` writes:
  root/config/                      diffusers-format config folder (tiny shapes; SDXL's scheduler config)
  root/models/checkpoints/tiny_sdxl.safetensors   single-file checkpoint in the SGM/LDM key layout
  root/models/controlnet/tiny_openpose/           a ControlNet (diffusers folder)
  root/models/loras/tiny_style.safetensors        a LoRA on the UNet attention projections
The single file is written with this module's own diffusers->SGM key conversion, so the pack's loader
reads it exactly as it would read a real SDXL checkpoint from ComfyUI's models folder.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent
LAYERS_PER_BLOCK = 2
TE1_HIDDEN, TE2_HIDDEN = 32, 64  # must differ: diffusers tells CLIP-L from OpenCLIP by this width


def _byte_level_vocab() -> dict[str, int]:
    # CLIP's byte-to-unicode table: every byte gets a printable character.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            chars.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in chars]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": i + 256 for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    return vocab


def tiny_components(seed: int = 0):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64, 64), layers_per_block=LAYERS_PER_BLOCK, sample_size=8,
        in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1, 1),
        projection_class_embeddings_input_dim=8 * 6 + TE2_HIDDEN, cross_attention_dim=TE1_HIDDEN + TE2_HIDDEN,
        norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(16, 32), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=8, sample_size=64)
    vocab = _byte_level_vocab()

    def text_config(hidden, act):
        return CLIPTextConfig(hidden_size=hidden, intermediate_size=hidden * 2, num_attention_heads=4,
                              num_hidden_layers=2, vocab_size=len(vocab), max_position_embeddings=77,
                              projection_dim=hidden, hidden_act=act, bos_token_id=512, eos_token_id=513,
                              pad_token_id=513)

    te1 = CLIPTextModel(text_config(TE1_HIDDEN, "quick_gelu"))
    te2 = CLIPTextModelWithProjection(text_config(TE2_HIDDEN, "gelu"))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                              unk_token="<|endoftext|>", pad_token="<|endoftext|>", model_max_length=77)
    return {"unet": unet.eval(), "vae": vae.eval(), "text_encoder": te1.eval(), "text_encoder_2": te2.eval(),
            "tokenizer": tokenizer}


# ---------------------------------------------------------------- diffusers -> SGM key layout
_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def _resnet_inner(rest: str) -> str:
    for new, old in _RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def unet_key_to_sgm(key: str, up_blocks_with_attention: set[int]) -> str:
    step = LAYERS_PER_BLOCK + 1
    for src, dst in _UNET_FIXED.items():
        if key.startswith(src + "."):
            return dst + key[len(src):]
    if m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"input_blocks.{int(m[1]) * step + int(m[2]) + 1}.0.{_resnet_inner(m[3])}"
    if m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
        return f"input_blocks.{int(m[1]) * step + int(m[2]) + 1}.1.{m[3]}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * step}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet_inner(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"output_blocks.{int(m[1]) * step + int(m[2])}.0.{_resnet_inner(m[3])}"
    if m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
        return f"output_blocks.{int(m[1]) * step + int(m[2])}.1.{m[3]}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        slot = 2 if int(m[1]) in up_blocks_with_attention else 1
        return f"output_blocks.{int(m[1]) * step + LAYERS_PER_BLOCK}.{slot}.conv.{m[2]}"
    raise KeyError(f"no SGM name for UNet key {key}")


def vae_key_to_sgm(key: str, num_up_blocks: int) -> str:
    key = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        rest = m[2]
        for new, old in (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")):
            if rest.startswith(new + "."):
                rest = old + rest[len(new):]
        return f"{m[1]}.mid.attn_1.{rest}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(.*)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)", key):
        return f"encoder.down.{m[1]}.downsample.{m[2]}"
    # The LDM decoder numbers its up levels from the lowest resolution upwards, diffusers the other way.
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(.*)", key):
        return f"decoder.up.{num_up_blocks - 1 - int(m[1])}.block.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
        return f"decoder.up.{num_up_blocks - 1 - int(m[1])}.upsample.{m[2]}"
    return key


def open_clip_state(te2_state: dict) -> dict:
    """CLIPTextModelWithProjection weights in OpenCLIP names (fused q/k/v, transposed projection)."""
    import torch

    out, qkv = {}, {}
    for key, value in te2_state.items():
        if key.endswith("position_ids"):
            continue
        if key == "text_projection.weight":
            out["text_projection"] = value.t().contiguous()
            continue
        key = key.removeprefix("text_model.")
        if key == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif key == "embeddings.position_embedding.weight":
            out["positional_embedding"] = value
        elif key.startswith("final_layer_norm."):
            out["ln_final." + key.split(".")[-1]] = value
        elif m := re.match(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            qkv.setdefault((m[1], m[3]), {})[m[2]] = value
        else:
            m = re.match(r"encoder\.layers\.(\d+)\.(.*)", key)
            rest = (m[2].replace("self_attn.out_proj", "attn.out_proj").replace("layer_norm1", "ln_1")
                    .replace("layer_norm2", "ln_2").replace("mlp.fc1", "mlp.c_fc").replace("mlp.fc2", "mlp.c_proj"))
            out[f"transformer.resblocks.{m[1]}.{rest}"] = value
    for (layer, kind), parts in qkv.items():
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def sgm_state_dict(components: dict) -> dict:
    unet, vae = components["unet"], components["vae"]
    with_attention = {i for i, block in enumerate(unet.up_blocks) if getattr(block, "attentions", None)}
    state = {}
    for key, value in unet.state_dict().items():
        state["model.diffusion_model." + unet_key_to_sgm(key, with_attention)] = value
    for key, value in vae.state_dict().items():
        if ".mid_block.attentions.0." in key and value.ndim == 2:
            value = value[:, :, None, None]  # LDM attention projections are 1x1 convolutions
        state["first_stage_model." + vae_key_to_sgm(key, len(vae.decoder.up_blocks))] = value
    for key, value in components["text_encoder"].state_dict().items():
        if not key.endswith("position_ids"):
            # transformers 5 drops the text_model. prefix on CLIPTextModel; original checkpoints keep it.
            key = key if key.startswith("text_model.") else "text_model." + key
            state["conditioner.embedders.0.transformer." + key] = value
    for key, value in open_clip_state(components["text_encoder_2"].state_dict()).items():
        state["conditioner.embedders.1.model." + key] = value
    return {k: v.detach().contiguous().clone() for k, v in state.items()}


# ---------------------------------------------------------------- extras: ControlNet and LoRA
def tiny_controlnet(unet):
    from diffusers import ControlNetModel

    import torch

    model = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    # A trained ControlNet's zero convolutions are no longer zero; give them weights so control shows.
    with torch.no_grad():
        for conv in [*model.controlnet_down_blocks, model.controlnet_mid_block, model.controlnet_cond_embedding.conv_out]:
            conv.weight.normal_(0.0, 0.2)
    return model


def tiny_lora_state(unet, seed: int = 1) -> dict:
    """A rank-4 LoRA with non-zero weights on every attention projection (so it visibly changes outputs)."""
    import copy

    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    host = copy.deepcopy(unet)
    host.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    state = get_peft_model_state_dict(host)
    return {k: v * 4.0 for k, v in state.items()}


def build_tiny_sdxl(root: str | Path) -> dict[str, Path]:
    """Write the tiny model set under `root` (idempotent: reuses what is there)."""
    root = Path(root)
    paths = {
        "config": root / "config",
        "models": root / "models",
        "checkpoint": root / "models" / "checkpoints" / "tiny_sdxl.safetensors",
        "controlnet": root / "models" / "controlnet" / "tiny_openpose",
        "lora": root / "models" / "loras" / "tiny_style.safetensors",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    parts = tiny_components()
    config = paths["config"]
    if config.exists():
        shutil.rmtree(config)
    # Config folder: the real SDXL pipeline index and scheduler, tiny model configs.
    shutil.copytree(PACK_ROOT / "configs" / "sdxl", config, ignore=shutil.ignore_patterns("*.md"))
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        shutil.rmtree(config / name)
        parts[name].save_pretrained(config / name)
        for weights in (config / name).glob("*.safetensors"):
            weights.unlink()  # only the config is needed; the weights come from the single file
    parts["tokenizer"].save_pretrained(config / "tokenizer")
    for path in (paths["checkpoint"], paths["lora"]):
        path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sgm_state_dict(parts), str(paths["checkpoint"]), metadata={"modelspec.architecture": "tiny-sdxl"})
    tiny_controlnet(parts["unet"]).save_pretrained(paths["controlnet"])
    StableDiffusionXLPipeline.save_lora_weights(str(paths["lora"].parent), unet_lora_layers=tiny_lora_state(parts["unet"]),
                                                weight_name=paths["lora"].name)
    (root / "built.json").write_text(json.dumps({k: str(v) for k, v in paths.items()}))
    return paths


# ---------------------------------------------------------------- extras: references (IP-Adapter, InstantID) and depth
CLIP_VISION_DIM = 32  # the tiny image encoder's projection width (SDXL's real one is 1280)
ARCFACE_DIM = 512  # InstantID's face embedding width, as antelopev2's glintr100 gives it


def _cross_attention_sizes(unet) -> list[int]:
    """Hidden size of every cross-attention layer, in the order IP-Adapter files number them (1, 3, 5...)."""
    sizes, blocks = [], unet.config.block_out_channels
    for name in unet.attn_processors:
        if name.endswith("attn2.processor"):
            if name.startswith("mid_block"):
                sizes.append(blocks[-1])
            elif name.startswith("up_blocks"):
                sizes.append(list(reversed(blocks))[int(name.split(".")[1])])
            else:
                sizes.append(blocks[int(name.split(".")[1])])
    return sizes


def _ip_layers(unet, std: float) -> dict:
    """The `ip_adapter` half of an IP-Adapter file: to_k_ip / to_v_ip for each cross-attention."""
    import torch

    cross = unet.config.cross_attention_dim
    state = {}
    for n, hidden in enumerate(_cross_attention_sizes(unet)):
        for name in ("to_k_ip", "to_v_ip"):
            state[f"{2 * n + 1}.{name}.weight"] = torch.randn(hidden, cross) * std
    return state


def tiny_ip_adapter_state(unet, seed: int = 2) -> dict:
    """A plain IP-Adapter (4 image tokens from a CLIP image embedding), in the original file layout."""
    import torch

    torch.manual_seed(seed)
    cross = unet.config.cross_attention_dim
    return {"image_proj": {"proj.weight": torch.randn(4 * cross, CLIP_VISION_DIM) * 0.3,
                           "proj.bias": torch.zeros(4 * cross), "norm.weight": torch.ones(cross),
                           "norm.bias": torch.zeros(cross)},
            "ip_adapter": _ip_layers(unet, 0.3)}


def tiny_instantid_state(unet, seed: int = 3, dim: int = 64, tokens: int = 4) -> dict:
    """InstantID's ip-adapter.bin layout: a Resampler (IP-Adapter Plus: 4 perceiver layers, 64-wide heads) from
    a 512-d face embedding to `tokens` image tokens, plus the cross-attention image projections."""
    import torch

    torch.manual_seed(seed)
    cross = unet.config.cross_attention_dim

    def lin(out_dim, in_dim):
        return torch.randn(out_dim, in_dim) / in_dim ** 0.5

    proj = {"latents": torch.randn(1, tokens, dim) / dim ** 0.5, "proj_in.weight": lin(dim, ARCFACE_DIM),
            "proj_in.bias": torch.zeros(dim), "proj_out.weight": lin(cross, dim), "proj_out.bias": torch.zeros(cross),
            "norm_out.weight": torch.ones(cross), "norm_out.bias": torch.zeros(cross)}
    for layer in range(4):
        attn, ff = f"layers.{layer}.0.", f"layers.{layer}.1."
        for norm in ("norm1", "norm2"):
            proj[attn + norm + ".weight"], proj[attn + norm + ".bias"] = torch.ones(dim), torch.zeros(dim)
        proj.update({attn + "to_q.weight": lin(64, dim), attn + "to_kv.weight": lin(128, dim),
                     attn + "to_out.weight": lin(dim, 64), ff + "0.weight": torch.ones(dim), ff + "0.bias": torch.zeros(dim),
                     ff + "1.weight": lin(4 * dim, dim), ff + "3.weight": lin(dim, 4 * dim)})
    return {"image_proj": proj, "ip_adapter": _ip_layers(unet, 0.3)}


def tiny_image_encoder(seed: int = 4):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2, image_size=32,
        patch_size=8, projection_dim=CLIP_VISION_DIM)).eval()


def write_arcface_onnx(path: Path, seed: int = 5) -> None:
    """A random-weight ArcFace-shaped ONNX (3x112x112 -> 512) that insightface's model zoo routes to ArcFaceONNX."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 8, stride=8), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 14 * 14, ARCFACE_DIM)).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, torch.zeros(1, 3, 112, 112), str(path), input_names=["input.1"], output_names=["embedding"],
                      dynamic_axes={"input.1": {0: "batch"}}, dynamo=False)


def write_tiny_depth(folder: Path, seed: int = 6) -> None:
    """A random DPT depth model (small ViT backbone) with its image processor, as a transformers folder."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(seed)
    config = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64,
                       image_size=64, patch_size=16, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 32],
                       fusion_hidden_size=16, head_in_index=-1)
    DPTForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessor(size={"height": 64, "width": 64}, keep_aspect_ratio=False).save_pretrained(folder)


def build_tiny_references(root: str | Path) -> dict[str, Path]:
    """Reference and depth models in the layout users put real ones in (idempotent):
      models/ipadapter/ip-adapter_sdxl.safetensors + models/ipadapter/image_encoder/
      models/instantid/ip-adapter.bin + models/instantid/ControlNetModel/
      models/insightface/antelopev2/glintr100.onnx
      models/depth/tiny-dpt/
    """
    root = Path(root)
    models = root / "models"
    paths = {
        "models": models,
        "ipadapter": models / "ipadapter" / "ip-adapter_sdxl.safetensors",
        "image_encoder": models / "ipadapter" / "image_encoder",
        "instantid": models / "instantid" / "ip-adapter.bin",
        "identitynet": models / "instantid" / "ControlNetModel",
        "arcface": models / "insightface" / "antelopev2" / "glintr100.onnx",
        "depth": models / "depth" / "tiny-dpt",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    import torch
    from safetensors.torch import save_file

    unet = tiny_components()["unet"]
    paths["ipadapter"].parent.mkdir(parents=True, exist_ok=True)
    flat = {f"{part}.{k}": v.contiguous() for part, state in tiny_ip_adapter_state(unet).items() for k, v in state.items()}
    save_file(flat, str(paths["ipadapter"]))
    tiny_image_encoder().save_pretrained(paths["image_encoder"])
    paths["instantid"].parent.mkdir(parents=True, exist_ok=True)
    torch.save(tiny_instantid_state(unet), paths["instantid"])
    torch.manual_seed(7)
    tiny_controlnet(unet).save_pretrained(paths["identitynet"])
    write_arcface_onnx(paths["arcface"])
    write_tiny_depth(paths["depth"])
    return paths


if __name__ == "__main__":
    import sys

    print(build_tiny_sdxl(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny_sdxl"))
