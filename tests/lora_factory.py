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


# --- every layout, with the hand merge it must equal ---------------------------------------------

ATTN_TARGETS = UNET_TARGETS + ("ff.net.0.proj", "ff.net.2", "proj_in", "proj_out")
CONV_TARGETS = ("conv1", "conv2", "time_emb_proj")  # LoCon: the resnets too
MLP_TE_TARGETS = TE_TARGETS + ("fc1", "fc2")


def ldm_unet_name(name: str, config) -> str:
    """diffusers UNet module name -> original Stable Diffusion (LDM) name, by the SD checkpoint formula
    (diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py, any layers_per_block)."""
    per = config.layers_per_block + 1
    parts = name.split(".")
    resnet = {"conv1": "in_layers.2", "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
              "conv_shortcut": "skip_connection"}
    if parts[0] == "down_blocks":
        i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "downsamplers":
            return f"input_blocks.{per * (i + 1)}.0.op"
        head = f"input_blocks.{per * i + j + 1}.{0 if kind == 'resnets' else 1}"
    elif parts[0] == "up_blocks":
        i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "upsamplers":
            slot = 1 if config.up_block_types[i] == "UpBlock2D" else 2
            return f"output_blocks.{per * i + per - 1}.{slot}.{rest}"
        head = f"output_blocks.{per * i + j}.{0 if kind == 'resnets' else 1}"
    elif parts[0] == "mid_block":
        kind, j, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        head = f"middle_block.{2 * j if kind == 'resnets' else 1}"
    else:
        raise ValueError(name)
    if kind == "resnets":
        rest = resnet.get(rest, rest)
    return f"{head}.{rest}"


class HandMerge:
    """A written LoRA file and the per-layer weight change it stands for, merged by hand into a pipeline."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.deltas: dict[tuple[str, str], object] = {}  # (component, module) -> delta at weight 1
        self.dora: dict[tuple[str, str], object] = {}  # (component, module) -> DoRA magnitude

    def merged(self, weight, component: str, module: str, base):
        """The layer's weight at ``weight``: W + w·delta, or DoRA's m·(W + w·delta)/‖W + w·delta‖ per output."""
        key = (component, module)
        merged = base + weight * self.deltas[key].reshape(base.shape)
        if key in self.dora:
            norm = merged.reshape(merged.shape[0], -1).norm(dim=1)
            merged = merged * (self.dora[key] / norm).reshape(-1, *([1] * (merged.dim() - 1)))
        return merged


def apply_by_hand(pipe, merges: list[tuple["HandMerge", float]]):
    """Add each file's deltas into ``pipe``'s own weights; returns an undo function."""
    import torch

    saved = {}
    with torch.no_grad():
        for merge, weight in merges:
            for component, module in merge.deltas:
                param = getattr(pipe, component).get_submodule(module).weight
                saved.setdefault(id(param), (param, param.detach().clone()))
                param.copy_(merge.merged(weight, component, module, param.detach().clone()))

    def undo():
        with torch.no_grad():
            for param, value in saved.values():
                param.copy_(value)

    return undo


def _factor_pair(n: int) -> tuple[int, int]:
    a = next(f for f in (4, 2, 1) if n % f == 0)
    return a, n // a


def make_layout_lora(path: Path, pipe, layout: str = "kohya", *, rank: int = 4, alpha: float | None = 2.0,
                     seed: int = 5, strength: float = 1.0, unet_targets=ATTN_TARGETS, te_targets=MLP_TE_TARGETS,
                     ldm: bool = False, te_prefix: str | None = None, dora: bool = False,
                     w1_decomposed: bool = False) -> HandMerge:
    """A LoRA of ``layout`` for ``pipe``'s own layers, with random factors, and its hand merge.

    layout: "kohya" (lora_unet_ / lora_te_, .lora_down / .lora_up / .alpha; ``alpha=None`` writes no
    alpha), "peft" (unet. / text_encoder., lora_A / lora_B, alpha in diffusers' metadata), "dora"
    (peft plus lora_magnitude_vector), "loha" (LyCORIS hada_*), "lokr" (LyCORIS lokr_*), "diffusers-old"
    (diffusers 0.2x: attention-processor names `attn1.processor.to_q_lora.down.weight`, `.lora.down.weight`,
    `.lora_linear_layer.down.weight`). ``dora`` adds DoRA magnitudes (LyCORIS `.dora_scale` per output).
    ``ldm`` names UNet layers as the original SD checkpoint does (input_blocks …).
    """
    import json
    import re

    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator) * scale).contiguous()

    merge = HandMerge(path)
    tensors: dict[str, torch.Tensor] = {}
    encoders = _text_encoders(pipe)
    te_prefixes = ["lora_te_"] if len(encoders) == 1 else ["lora_te1_", "lora_te2_"]
    components = [("unet", pipe.unet, unet_targets, "lora_unet_")] + [
        (attr, enc, te_targets, te_prefix or pre) for (attr, enc), pre in zip(encoders, te_prefixes)]
    a = float(rank if alpha is None else alpha)
    for component, model, targets, kohya_prefix in components:
        for name, module in model.named_modules():
            module = getattr(module, "base_layer", module)
            if not any(name.endswith("." + t) for t in targets or ()) or ".lora_" in name or name.endswith("base_layer"):
                continue
            if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                continue
            w = module.weight
            out_f, in_flat = w.shape[0], w[0].numel()
            if layout in ("kohya", "loha", "lokr"):
                spelled = ldm_unet_name(name, pipe.unet.config) if (ldm and component == "unet") else name
                if component != "unet" and not spelled.startswith("text_model."):
                    spelled = "text_model." + spelled  # kohya writes CLIP's full module path
                key = kohya_prefix + spelled.replace(".", "_")
            else:
                key = f"{component}.{name}"
            if layout == "diffusers-old":
                attn = re.match(r"(.*\.attn[12])\.(to_q|to_k|to_v|to_out)(\.0)?$", name)
                down = rnd(rank, in_flat, scale=in_flat ** -0.5)
                up = rnd(out_f, rank, scale=strength * rank ** -0.5)
                if attn:
                    head, mid = f"{component}.{attn.group(1)}.processor.{attn.group(2)}_lora", ""
                elif component == "unet":
                    head, mid = key, ".lora"
                else:
                    head, mid = key, ".lora_linear_layer"
                shaped_down = down.reshape(rank, *w.shape[1:]) if w.dim() == 4 else down
                tensors[f"{head}{mid}.down.weight"] = shaped_down.contiguous()
                tensors[f"{head}{mid}.up.weight"] = up.reshape(out_f, rank, 1, 1) if w.dim() == 4 else up
                delta = up @ down  # no alpha in this layout: scale 1
            elif layout in ("kohya", "peft", "dora"):
                down = rnd(rank, in_flat, scale=in_flat ** -0.5)
                up = rnd(out_f, rank, scale=strength * rank ** -0.5)
                delta = up @ down * (a / rank)
                if layout == "kohya":
                    shaped = down.reshape(rank, *w.shape[1:]) if w.dim() == 4 else down
                    tensors[f"{key}.lora_down.weight"] = shaped.contiguous()
                    tensors[f"{key}.lora_up.weight"] = up.reshape(out_f, rank, 1, 1) if w.dim() == 4 else up
                    if alpha is not None:
                        tensors[f"{key}.alpha"] = torch.tensor(a)
                else:
                    tensors[f"{key}.lora_A.weight"] = down.reshape(rank, *w.shape[1:]) if w.dim() == 4 else down
                    tensors[f"{key}.lora_B.weight"] = up.reshape(out_f, rank, 1, 1) if w.dim() == 4 else up
                    if layout == "dora":
                        norm = (w.detach().reshape(out_f, -1) + delta).norm(dim=1)
                        magnitude = norm * (1 + 0.3 * rnd(out_f).tanh())
                        tensors[f"{key}.lora_magnitude_vector"] = magnitude
                        merge.dora[(component, name)] = magnitude
            elif layout == "loha":
                w1a, w1b = rnd(out_f, rank, scale=strength), rnd(rank, in_flat, scale=in_flat ** -0.5)
                w2a, w2b = rnd(out_f, rank, scale=rank ** -0.5), rnd(rank, in_flat, scale=rank ** -0.5)
                for part, value in (("w1_a", w1a), ("w1_b", w1b), ("w2_a", w2a), ("w2_b", w2b)):
                    tensors[f"{key}.hada_{part}"] = value
                tensors[f"{key}.alpha"] = torch.tensor(a)
                delta = (w1a @ w1b) * (w2a @ w2b) * (a / rank)
            elif layout == "lokr":
                (pa, pc), (pb, pd) = _factor_pair(out_f), _factor_pair(in_flat)
                tensors[f"{key}.alpha"] = torch.tensor(a)
                if w1_decomposed:  # the small factor low-rank, the big one full (the dense path)
                    r1 = min(rank, pa, pb)
                    w1a, w1b = rnd(pa, r1, scale=strength), rnd(r1, pb, scale=r1 ** -0.5)
                    w2 = rnd(pc, pd, scale=pd ** -0.5)
                    tensors[f"{key}.lokr_w1_a"], tensors[f"{key}.lokr_w1_b"], tensors[f"{key}.lokr_w2"] = w1a, w1b, w2
                    delta = torch.kron(w1a @ w1b, w2) * (a / r1)
                else:
                    w1 = rnd(pa, pb, scale=strength)
                    w2a, w2b = rnd(pc, rank, scale=rank ** -0.5), rnd(rank, pd, scale=pd ** -0.5)
                    tensors[f"{key}.lokr_w1"], tensors[f"{key}.lokr_w2_a"], tensors[f"{key}.lokr_w2_b"] = w1, w2a, w2b
                    delta = torch.kron(w1, w2a @ w2b) * (a / rank)
            else:
                raise ValueError(layout)
            if dora:
                norm = (w.detach().reshape(out_f, -1) + delta).norm(dim=1)
                magnitude = norm * (1 + 0.3 * rnd(out_f).tanh())
                tensors[f"{key}.dora_scale"] = magnitude.reshape(out_f, *([1] * (w.dim() - 1))).contiguous()
                merge.dora[(component, name)] = magnitude
            merge.deltas[(component, name)] = delta
    metadata = {"format": "pt"}
    if layout in ("peft", "dora"):
        metadata["lora_adapter_metadata"] = json.dumps(
            {f"{c}.{k}": v for c, *_ in components for k, v in (("r", rank), ("lora_alpha", a))})
    else:
        metadata.update({"ss_network_module": "lycoris.kohya" if layout in ("loha", "lokr") else "networks.lora",
                         "ss_network_dim": str(rank), "ss_network_alpha": str(a),
                         "ss_tag_frequency": json.dumps({"1_pix": {"pixel art": 12, "sprite": 3}})})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return merge
