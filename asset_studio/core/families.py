"""Model families: their names, sizes, and how to tell them from files. The one home of this knowledge.

A family is what decides whether a LoRA, a ControlNet, a VAE or a style pack fits a base model:
SD 1.x (768-wide CLIP-L text embeddings), SD 2.x (1024-wide OpenCLIP ViT-H), SDXL (2048-wide
CLIP-L + OpenCLIP bigG, with size conditioning). Everything here reads names and shapes only
(safetensors headers, JSON configs), so the model manager, the request path and the engine's
checks agree without loading torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Family:
    id: str  # what jobs, style packs and the catalog write: sd15, sd2, sdxl
    label: str  # what people read
    base_size: int  # the side of the square the family was trained at
    cross_attention_dim: int  # the UNet's text-embedding width
    config_name: str  # packaged config folder for single-file checkpoints (engine/configs/<name>)


FAMILIES: dict[str, Family] = {
    f.id: f
    for f in (
        Family("sd15", "SD 1.5", 512, 768, "sd15"),
        Family("sd2", "SD 2.x", 768, 1024, "sd21"),
        Family("sdxl", "SDXL", 1024, 2048, "sdxl"),
    )
}
FAMILY_IDS = tuple(FAMILIES)
BY_CROSS_ATTENTION = {f.cross_attention_dim: f.id for f in FAMILIES.values()}


def label(family: str) -> str:
    """'SD 1.5', 'SDXL'… ('unknown' for an empty or unrecognised id)."""
    return FAMILIES[family].label if family in FAMILIES else (family or "unknown")


def base_size(family: str) -> int:
    return FAMILIES[family].base_size if family in FAMILIES else 512


def by_cross_attention(dim) -> str | None:
    """The family whose UNet takes text embeddings DIM wide (a config's cross_attention_dim)."""
    if isinstance(dim, (list, tuple)):
        dim = dim[0] if dim else None
    return BY_CROSS_ATTENTION.get(dim)


def family_of_unet_config(config: dict) -> str | None:
    """The family of a UNet or ControlNet config (diffusers' config.json as a dict)."""
    if config.get("addition_embed_type") == "text_time":
        return "sdxl"
    return by_cross_attention(config.get("cross_attention_dim"))


def describe_unet_config(config: dict) -> str:
    """A readable family for a config, also for widths no family has."""
    family = family_of_unet_config(config)
    return label(family) if family else f"a {config.get('cross_attention_dim')}-wide SD 1.x/2.x-type model"


# --- single files (LDM names, as A1111 / ComfyUI / civitai checkpoints name their tensors) -----


def family_of_checkpoint_keys(shapes: dict[str, list[int]]) -> str | None:
    """The family of a single-file checkpoint from its tensor names and shapes; None when not one."""
    keys = shapes.keys()
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"  # OpenCLIP ViT-H
    if any(k.startswith("cond_stage_model.transformer.") for k in keys):
        return "sd15"
    if not any(k.startswith("model.diffusion_model.") for k in keys):
        return None
    # A UNet without text encoder: the class-embedding MLP is SDXL's; else the cross-attention width.
    if "model.diffusion_model.label_emb.0.0.weight" in shapes:
        return "sdxl"
    return cross_attention_family(shapes, prefix="model.diffusion_model.")


def cross_attention_family(shapes: dict[str, list[int]], prefix: str = "") -> str | None:
    """The family from the width of the first cross-attention key projection (attn2.to_k)."""
    for k, shape in shapes.items():
        if k.startswith(prefix) and k.endswith("attn2.to_k.weight") and len(shape) == 2:
            return by_cross_attention(shape[1])
    return None


def is_lora_keys(keys) -> bool:
    return any("lora_" in k or ".lora" in k or "lora_A" in k or ".hada_" in k or ".lokr_" in k for k in keys)


def is_controlnet_keys(keys) -> bool:
    return any(k.startswith(("control_model.", "controlnet_cond_embedding")) for k in keys)


def classify_file(shapes: dict[str, list[int]]) -> tuple[str, str]:
    """(kind, family) of a single .safetensors file from its header: kind is checkpoint, lora,
    controlnet, vae or unknown; family is sd15, sd2, sdxl or '' when the file does not say."""
    keys = set(shapes)
    if is_lora_keys(keys):
        # Without a width to go by, a LoRA with one text encoder is taken as SD 1.x, by far the most common.
        return "lora", lora_family(shapes) or "sd15"
    if is_controlnet_keys(keys):
        sdxl = any("label_emb" in k or "add_embedding" in k for k in keys)
        return "controlnet", "sdxl" if sdxl else (cross_attention_family(shapes) or "sd15")
    family = family_of_checkpoint_keys(shapes)
    if family is not None:
        return "checkpoint", family
    if any(k.startswith(("encoder.down.", "first_stage_model.", "decoder.up_blocks.", "decoder.up.")) for k in keys):
        return "vae", ""
    return "unknown", ""


_SDXL_LORA_MARKERS = ("lora_te1_", "lora_te2_", "text_encoder_2.", "conditioner.")
# The down projection of each LoRA layout (kohya, peft, diffusers' old names, LyCORIS LoHa).
LORA_DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".down.weight", ".hada_w1_b")
# kohya's ss_base_model_version / modelspec.architecture prefixes → family, for files whose
# layer sizes do not tell (UNet-only files of unusual widths).
_TRAINED_ON = (("sdxl", "sdxl"), ("stable-diffusion-xl", "sdxl"), ("sd_v2", "sd2"), ("stable-diffusion-v2", "sd2"),
               ("sd_v1", "sd15"), ("stable-diffusion-v1", "sd15"))


def lora_down_width(shapes: dict[str, list[int]], match) -> int | None:
    """in_features of the first LoRA down projection whose key satisfies MATCH."""
    for key, shape in shapes.items():
        if key.endswith(LORA_DOWN_SUFFIXES) and len(shape) >= 2 and match(key):
            return shape[1]
    return None


def lora_cross_attention_width(shapes: dict[str, list[int]]) -> int | None:
    return lora_down_width(shapes, lambda k: "attn2" in k and ("to_k" in k or "to_v" in k))


def lora_text_encoder_width(shapes: dict[str, list[int]]) -> int | None:
    return lora_down_width(shapes, lambda k: k.startswith(("lora_te_", "lora_te1_", "text_encoder.")) and "q_proj" in k)


def lora_family(shapes: dict[str, list[int]]) -> str | None:
    """The model family a LoRA was made for, when its tensor names and shapes say so clearly."""
    if any(k.startswith(_SDXL_LORA_MARKERS) for k in shapes):
        return "sdxl"
    family = by_cross_attention(lora_cross_attention_width(shapes))
    if family is None:  # text-encoder-only files: CLIP-L is 768 wide, OpenCLIP-H 1024
        family = {768: "sd15", 1024: "sd2"}.get(lora_text_encoder_width(shapes))
    return family


def family_from_training_metadata(metadata: dict) -> str | None:
    """The family kohya's training metadata names (ss_base_model_version, modelspec.architecture)."""
    hint = str(metadata.get("ss_base_model_version") or metadata.get("modelspec.architecture") or "").lower()
    return next((family for prefix, family in _TRAINED_ON if hint.startswith(prefix)), None)


# --- diffusers folders --------------------------------------------------------------------------


def read_json_dict(path: Path) -> dict:
    """A JSON object from PATH, or {} when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def family_of_pipeline_folder(folder: Path) -> str | None:
    """The family of a diffusers pipeline folder (model_index.json), None when it is not SD 1/2/XL."""
    cls = str(read_json_dict(Path(folder) / "model_index.json").get("_class_name", ""))
    if cls.startswith("StableDiffusionXL"):
        return "sdxl"
    if not cls.startswith("StableDiffusion") or "Upscale" in cls or "Inpaint" in cls:
        return None
    text = read_json_dict(Path(folder) / "text_encoder" / "config.json")
    return "sd2" if text.get("hidden_size") == 1024 else "sd15"
