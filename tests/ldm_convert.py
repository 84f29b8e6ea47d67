"""Diffusers pipeline → original LDM single-file state dict (the layout of civitai / A1111 checkpoints).

A port of diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py and
convert_diffusers_to_original_sdxl.py. Those scripts hard-code the real models' block counts
(4 UNet levels of 2 layers, VAE blocks of 2/3 resnets); here the same key mapping is generated
from each model's config, so the tiny test models convert too. Tests save the result as
`model.safetensors` and load it through the user's single-file path.
"""

from __future__ import annotations

import re
from pathlib import Path

# --- UNet -----------------------------------------------------------------------------------

UNET_FIXED = [
    # (stable-diffusion, HF Diffusers)
    ("time_embed.0.weight", "time_embedding.linear_1.weight"),
    ("time_embed.0.bias", "time_embedding.linear_1.bias"),
    ("time_embed.2.weight", "time_embedding.linear_2.weight"),
    ("time_embed.2.bias", "time_embedding.linear_2.bias"),
    ("input_blocks.0.0.weight", "conv_in.weight"),
    ("input_blocks.0.0.bias", "conv_in.bias"),
    ("out.0.weight", "conv_norm_out.weight"),
    ("out.0.bias", "conv_norm_out.bias"),
    ("out.2.weight", "conv_out.weight"),
    ("out.2.bias", "conv_out.bias"),
    # SDXL's size/crop conditioning
    ("label_emb.0.0.weight", "add_embedding.linear_1.weight"),
    ("label_emb.0.0.bias", "add_embedding.linear_1.bias"),
    ("label_emb.0.2.weight", "add_embedding.linear_2.weight"),
    ("label_emb.0.2.bias", "add_embedding.linear_2.bias"),
]

UNET_RESNET = [
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("emb_layers.1", "time_emb_proj"),
    ("skip_connection", "conv_shortcut"),
]


def unet_layer_map(config: dict) -> list[tuple[str, str]]:
    """(LDM prefix, diffusers prefix) for every block, for any number of levels and layers."""
    levels = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    up_types = config["up_block_types"]
    pairs = []
    for i in range(levels):
        for j in range(layers):
            pairs.append((f"input_blocks.{i * (layers + 1) + j + 1}.0.", f"down_blocks.{i}.resnets.{j}."))
            pairs.append((f"input_blocks.{i * (layers + 1) + j + 1}.1.", f"down_blocks.{i}.attentions.{j}."))
        if i < levels - 1:
            pairs.append((f"input_blocks.{(i + 1) * (layers + 1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
        has_attention = up_types[i].startswith("CrossAttn")
        for j in range(layers + 1):
            pairs.append((f"output_blocks.{i * (layers + 1) + j}.0.", f"up_blocks.{i}.resnets.{j}."))
            pairs.append((f"output_blocks.{i * (layers + 1) + j}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < levels - 1:
            slot = 2 if has_attention else 1
            pairs.append((f"output_blocks.{i * (layers + 1) + layers}.{slot}.", f"up_blocks.{i}.upsamplers.0."))
    pairs.append(("middle_block.1.", "mid_block.attentions.0."))
    for j in range(2):
        pairs.append((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}."))
    return pairs


def convert_unet_state_dict(state: dict, config: dict) -> dict:
    fixed = {hf: sd for sd, hf in UNET_FIXED}
    layer_map = unet_layer_map(config)
    out = {}
    for hf_name, tensor in state.items():
        if hf_name in fixed:
            out[fixed[hf_name]] = tensor
            continue
        name = hf_name
        for sd_prefix, hf_prefix in layer_map:
            if name.startswith(hf_prefix):
                rest = name[len(hf_prefix):]
                if "resnets" in hf_prefix:
                    for sd_part, hf_part in UNET_RESNET:
                        rest = rest.replace(hf_part, sd_part)
                name = sd_prefix + rest
                break
        else:
            raise KeyError(f"no LDM name for UNet weight {hf_name}")
        out[name] = tensor
    return out


# --- VAE ------------------------------------------------------------------------------------


def vae_layer_map(config: dict) -> list[tuple[str, str]]:
    levels = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    pairs = [("nin_shortcut", "conv_shortcut"), ("norm_out", "conv_norm_out"), ("mid.attn_1.", "mid_block.attentions.0.")]
    for i in range(levels):
        for j in range(layers):
            pairs.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        if i < levels - 1:
            pairs.append((f"down.{i}.downsample.", f"down_blocks.{i}.downsamplers.0."))
            pairs.append((f"up.{levels - 1 - i}.upsample.", f"up_blocks.{i}.upsamplers.0."))
        for j in range(layers + 1):
            pairs.append((f"decoder.up.{levels - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}."))
    for i in range(2):
        pairs.append((f"mid.block_{i + 1}.", f"mid_block.resnets.{i}."))
    return pairs


VAE_ATTENTION = [("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("proj_out.", "to_out.0.")]


def convert_vae_state_dict(state: dict, config: dict) -> dict:
    layer_map = vae_layer_map(config)
    out = {}
    for hf_name, tensor in state.items():
        name = hf_name
        for sd_part, hf_part in layer_map:
            name = name.replace(hf_part, sd_part)
        if "attentions" in hf_name:
            for sd_part, hf_part in VAE_ATTENTION:
                name = name.replace(hf_part, sd_part)
            if tensor.ndim == 2:  # the original attention projections are 1x1 convolutions
                tensor = tensor.reshape(*tensor.shape, 1, 1)
        out[name] = tensor
    return out


# --- text encoders ----------------------------------------------------------------------------

OPENCLIP_RENAMES = [
    ("transformer.resblocks.", "text_model.encoder.layers."),
    ("ln_1", "layer_norm1"),
    ("ln_2", "layer_norm2"),
    (".c_fc.", ".fc1."),
    (".c_proj.", ".fc2."),
    (".attn", ".self_attn"),
    ("ln_final.", "text_model.final_layer_norm."),
    ("token_embedding.weight", "text_model.embeddings.token_embedding.weight"),
    ("positional_embedding", "text_model.embeddings.position_embedding.weight"),
]
_protected = {re.escape(hf): sd for sd, hf in OPENCLIP_RENAMES}
_openclip_pattern = re.compile("|".join(_protected))


def _with_text_model_prefix(state: dict) -> dict:
    # transformers >= 5.6 flattened CLIPTextModel (no `text_model.` level); checkpoints keep it.
    out = {}
    for k, v in state.items():
        if k.startswith(("text_model.", "text_projection")):
            out[k] = v
        else:
            out["text_model." + k] = v
    return out


def convert_openai_clip_state_dict(state: dict) -> dict:
    return _with_text_model_prefix(state)


def convert_openclip_state_dict(state: dict) -> dict:
    """HF CLIPTextModelWithProjection → OpenCLIP names, q/k/v fused into in_proj as OpenCLIP stores them."""
    state = _with_text_model_prefix(state)
    out, qkv_w, qkv_b = {}, {}, {}
    index = {"q": 0, "k": 1, "v": 2}
    for k, v in state.items():
        m = re.match(r"(.*\.self_attn)\.([qkv])_proj\.(weight|bias)$", k)
        if m:
            target = qkv_w if m.group(3) == "weight" else qkv_b
            target.setdefault(m.group(1), [None, None, None])[index[m.group(2)]] = v
            continue
        if k == "text_projection.weight":
            out["text_projection"] = v.T.contiguous()  # OpenCLIP multiplies x @ P
            continue
        if k.endswith("position_ids"):
            continue
        out[_openclip_pattern.sub(lambda m: _protected[re.escape(m.group(0))], k)] = v
    import torch

    for prefix, parts in qkv_w.items():
        out[_openclip_pattern.sub(lambda m: _protected[re.escape(m.group(0))], prefix) + ".in_proj_weight"] = torch.cat(parts)
    for prefix, parts in qkv_b.items():
        out[_openclip_pattern.sub(lambda m: _protected[re.escape(m.group(0))], prefix) + ".in_proj_bias"] = torch.cat(parts)
    return out


# --- whole pipelines -------------------------------------------------------------------------


def _load(folder: Path, component: str) -> tuple[dict, dict]:
    import json

    from safetensors.torch import load_file

    sub = Path(folder) / component
    weights = next(iter(sorted(sub.glob("*.safetensors"))))
    return load_file(str(weights)), json.loads((sub / "config.json").read_text())


def convert_pipeline(folder: Path) -> dict:
    """A diffusers SD 1.x or SDXL folder as one LDM state dict."""
    folder = Path(folder)
    unet, unet_cfg = _load(folder, "unet")
    vae, vae_cfg = _load(folder, "vae")
    text, _ = _load(folder, "text_encoder")
    state = {"model.diffusion_model." + k: v for k, v in convert_unet_state_dict(unet, unet_cfg).items()}
    state.update({"first_stage_model." + k: v for k, v in convert_vae_state_dict(vae, vae_cfg).items()})
    if (folder / "text_encoder_2").is_dir():  # SDXL
        text2, _ = _load(folder, "text_encoder_2")
        state.update({"conditioner.embedders.0.transformer." + k: v for k, v in convert_openai_clip_state_dict(text).items()})
        state.update({"conditioner.embedders.1.model." + k: v for k, v in convert_openclip_state_dict(text2).items()})
    else:
        state.update({"cond_stage_model.transformer." + k: v for k, v in convert_openai_clip_state_dict(text).items()})
    return state


def save_single_file(folder: Path, target: Path) -> Path:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in convert_pipeline(folder).items()}
    save_file(state, str(target))
    return Path(target)


def vae_single_file(folder: Path, target: Path) -> Path:
    """A standalone VAE file as the ones people download (LDM names, no prefix)."""
    from safetensors.torch import save_file

    state, cfg = _load(Path(folder), ".") if (Path(folder) / "config.json").is_file() else _load(Path(folder), "vae")
    save_file({k: v.contiguous() for k, v in convert_vae_state_dict(state, cfg).items()}, str(target))
    return Path(target)
