"""Tiny random LoRAs for the tiny test models, in the two layouts found in the wild.

- peft / diffusers layout: adapters injected with peft's LoraConfig, read back with
  get_peft_model_state_dict and written by the pipeline's own save_lora_weights
  (keys like `unet.down_blocks.0....to_q.lora_A.weight`, metadata in the header).
- kohya / AUTOMATIC1111 layout, what civitai ships: `lora_unet_<module_with_underscores>.lora_down.weight`,
  `.lora_up.weight` and `.alpha`, `lora_te_…` for the text encoder (`lora_te1_` / `lora_te2_` on SDXL).

``strength`` scales the up-projections so a LoRA visibly changes a tiny model's output.
"""

from __future__ import annotations

from pathlib import Path

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TE_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def _builder(family: str):
    from tiny_models import build_tiny_sd15, build_tiny_sdxl

    return {"sd15": build_tiny_sd15, "sdxl": build_tiny_sdxl}[family]


def _text_encoders(pipe) -> list[tuple[str, object]]:
    out = [("text_encoder", pipe.text_encoder)]
    if getattr(pipe, "text_encoder_2", None) is not None:
        out.append(("text_encoder_2", pipe.text_encoder_2))
    return out


def _targets(model, suffixes):
    import torch

    for name, module in model.named_modules():
        if any(name.endswith("." + s) for s in suffixes):
            module = getattr(module, "base_layer", module)  # a layer that already carries adapters
            if isinstance(module, torch.nn.Linear):
                yield name, module


def make_peft_lora(path: Path, family: str = "sd15", rank: int = 4, seed: int = 1, strength: float = 0.5,
                   text_encoder: bool = True, pipe=None, unet_targets=UNET_TARGETS) -> Path:
    """A LoRA in the diffusers/peft layout, written by save_lora_weights.

    ``pipe`` (a tiny pipeline of the family, without adapters) is left untouched: the adapters go
    into copies of its networks. ``unet_targets`` may name convolutions too (conv1, conv2 …).
    """
    import copy
    from types import SimpleNamespace

    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    source = pipe or _builder(family)()
    pipe = SimpleNamespace(unet=copy.deepcopy(source.unet), text_encoder=copy.deepcopy(source.text_encoder),
                           text_encoder_2=copy.deepcopy(getattr(source, "text_encoder_2", None)))
    generator = torch.Generator().manual_seed(seed)
    pipe.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(unet_targets)))
    encoders = _text_encoders(pipe) if text_encoder else []
    for _, encoder in encoders:
        # peft directly: transformers' own add_adapter wants a newer peft than PyPI has
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(TE_TARGETS)), encoder)
    with torch.no_grad():
        for model in [pipe.unet] + [e for _, e in encoders]:
            for name, param in model.named_parameters():
                if "lora_A" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) / param.shape[1] ** 0.5)
                elif "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * strength / param.shape[1] ** 0.5)
    layers = {"unet_lora_layers": convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))}
    for attr, encoder in encoders:
        layers[f"{attr}_lora_layers"] = convert_state_dict_to_diffusers(get_peft_model_state_dict(encoder))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    type(source).save_lora_weights(path.parent, weight_name=path.name, safe_serialization=True, **layers)
    return path


def make_kohya_lora(path: Path, family: str = "sd15", rank: int = 4, seed: int = 2, strength: float = 0.5,
                    alpha: float | None = None, pipe=None) -> Path:
    """A LoRA in the kohya / AUTOMATIC1111 layout, as civitai ships them."""
    import torch
    from safetensors.torch import save_file

    pipe = pipe or _builder(family)()
    generator = torch.Generator().manual_seed(seed)
    alpha = float(rank if alpha is None else alpha)
    tensors = {}

    def add(prefix: str, name: str, module):
        key = prefix + name.replace(".", "_")
        down = torch.randn(rank, module.in_features, generator=generator) / module.in_features ** 0.5
        up = torch.randn(module.out_features, rank, generator=generator) * strength / rank ** 0.5
        tensors[f"{key}.lora_down.weight"] = down.contiguous()
        tensors[f"{key}.lora_up.weight"] = up.contiguous()
        tensors[f"{key}.alpha"] = torch.tensor(alpha)

    for name, module in _targets(pipe.unet, UNET_TARGETS):
        add("lora_unet_", name, module)
    encoders = _text_encoders(pipe)
    prefixes = ["lora_te_"] if len(encoders) == 1 else ["lora_te1_", "lora_te2_"]
    for prefix, (_, encoder) in zip(prefixes, encoders):
        for name, module in _targets(encoder, TE_TARGETS):
            add(prefix, name, module)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(rank)})
    return path
