"""LayerDiffuse's latent-transparency patch: the change to the UNet that makes it draw "transparent
latents" (which engine/layerdiffuse.py's decoder turns into RGBA), put on and taken off again.

The published files come in three layouts, told apart by their tensor names:

- ``attention-sharing`` (SD 1.5, ``layer_sd15_transparent_attn.safetensors``): for each of the UNet's
  32 attention modules in a fixed order (down blocks, up blocks, mid block; attn1 then attn2),
  ``hookers.layers.N.to_{q,k,v,out}_lora.0.{down,up}.weight`` (rank-256 LoRA factors of the
  projections) and ``hookers.layers.N.temporal_{n,i,q,k,v,o}.*`` (a LayerNorm and five Linear
  layers of an attention across the images of a batch; the ".0" is the first and only image).
  The reference (Forge's and ComfyUI's AttentionSharingUnit with frames=1) replaces each attention:
  ``m = h + attention(h) with the projections W + up·down``; ``out = m + temporal(m) - h``. With one
  image the cross-image attention is over a single key, so its softmax is exactly 1 and it returns
  its value: ``temporal(m) = o(v(i(n(m))))``. We install it as an attention processor that calls the
  module's own projections (so style LoRAs loaded as peft adapters still apply) and adds the factors.
- ``frozen patcher`` (Forge / ComfyUI-layerdiffuse, the SDXL files ``layer_xl_transparent_attn`` and
  ``layer_xl_transparent_conv``): ``diffusion_model.<LDM name>::<kind>::<i>``. Kind ``lora``: i=0 is
  ``up`` (out x r), i=1 ``down`` (r x in), an optional i=2 ``alpha`` (scale alpha/r, else 1);
  the weight gains up·down. Kind ``diff``: i=0 is added to the weight as it is. LDM names are the
  original Stable Diffusion ones (``input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight``),
  mapped to diffusers through engine/lora's block map.
- ``offsets`` (``lllyasviel/LayerDiffuse_Diffusers``: ``ld_diffusers_sdxl_attn/conv``): diffusers
  UNet names whose tensors are added to the weights.

Weight patches are applied in place after a copy of every touched weight is kept on the CPU, and
the copies are written back afterwards: the cached model is unchanged bit for bit. The processor
patch keeps the modules' previous processors and puts them back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from asset_studio.errors import UserError

MAX_PATCH_BYTES = 8 * 1024**3  # the largest published patch (SDXL conv) is 3.6 GB
_SHARING_KEY = re.compile(r"^hookers\.layers\.(\d+)\.(to_q_lora|to_k_lora|to_v_lora|to_out_lora|temporal_[niqkvo])\.(.+)$")
_FROZEN_KEY = re.compile(r"^(?:model\.)?diffusion_model\.(.+)::(lora|diff)::(\d+)$")
_PROJECTIONS = {"to_q_lora": "to_q", "to_k_lora": "to_k", "to_v_lora": "to_v", "to_out_lora": "to_out.0"}
TEMPORAL = ("temporal_n", "temporal_i", "temporal_q", "temporal_k", "temporal_v", "temporal_o")


@dataclass
class PatchInfo:
    path: Path
    layout: str  # "attention-sharing", "frozen-patcher" or "offsets"
    shapes: dict[str, list[int]]

    @property
    def family(self) -> str | None:
        """The family the layout implies (the SD 1.5 file is the only attention-sharing one); None = read the UNet."""
        return "sd15" if self.layout == "attention-sharing" else None


def inspect_patch(path: Path | str) -> PatchInfo:
    """What a patch file is, from its header alone; anything else is one sentence."""
    from asset_studio.core.safetensors_header import read_header_file

    path = Path(path)
    shapes = {k: list(v.shape) for k, v in read_header_file(path, MAX_PATCH_BYTES).tensors.items()}
    if not shapes:
        raise UserError(f"{path.name} holds no tensors; it is not a LayerDiffuse patch.")
    if any(k.startswith("kwargs_encoder.") or re.search(r"_lora\.[1-9]\d*\.", k) for k in shapes):
        raise UserError(f"{path.name} is a LayerDiffuse patch for several images at once (foreground, background, "
                        "blend), not the transparent-image patch; use layer_sd15_transparent_attn.safetensors.")
    if all(_SHARING_KEY.match(k) for k in shapes):
        return PatchInfo(path, "attention-sharing", shapes)
    if all(_FROZEN_KEY.match(k) for k in shapes):
        return PatchInfo(path, "frozen-patcher", shapes)
    if any("::" in k or k.startswith("hookers.") for k in shapes):
        raise UserError(f"{path.name} mixes tensor layouts; it is not a LayerDiffuse patch this version can read.")
    if all(k.endswith((".weight", ".bias")) for k in shapes):
        return PatchInfo(path, "offsets", shapes)
    raise UserError(f"{path.name} is not a LayerDiffuse patch (its tensor names are of no known layout).")


def apply_patch(unet, info: PatchInfo) -> Callable[[], None]:
    """Put the patch on UNET; returns the function that takes it off. On any refusal (a file that does
    not fit this UNet: one sentence) nothing stays changed."""
    from safetensors.torch import load_file

    tensors = load_file(str(info.path))
    if info.layout == "attention-sharing":
        return _install_sharing(unet, tensors, info.path.name)
    return _add_to_weights(unet, _deltas(unet, tensors, info), info.path.name)


# --- SD 1.5: attention sharing ------------------------------------------------------------------------


def sharing_order(unet) -> list[str]:
    """The UNet's attention modules in the order the published file numbers them: the transformer
    blocks of the down blocks, then of the up blocks, then of the mid block; attn1 before attn2.
    (For SD 1.5: input_blocks 1, 2, 4, 5, 7, 8, output_blocks 3-11, middle_block.)"""
    names = []
    blocks = [(f"down_blocks.{i}", b) for i, b in enumerate(unet.down_blocks)]
    blocks += [(f"up_blocks.{i}", b) for i, b in enumerate(unet.up_blocks)]
    if unet.mid_block is not None:
        blocks.append(("mid_block", unet.mid_block))
    for prefix, block in blocks:
        for j, transformer in enumerate(getattr(block, "attentions", None) or []):
            for k in range(len(getattr(transformer, "transformer_blocks", []))):
                names += [f"{prefix}.attentions.{j}.transformer_blocks.{k}.attn1",
                          f"{prefix}.attentions.{j}.transformer_blocks.{k}.attn2"]
    return names


def _sharing_processor_class():
    import torch
    import torch.nn.functional as F

    class TransparentAttention(torch.nn.Module):
        """An attention processor: the module's projections plus the patch's LoRA factors, then the
        single-image "temporal" branch (see the module docstring)."""

        def __init__(self, factors: dict, temporal: dict):
            super().__init__()
            self.factors = torch.nn.ModuleDict(factors)
            self.temporal = torch.nn.ModuleDict(temporal)

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                     *args, **kwargs):
            h = hidden_states
            if h.ndim != 3:
                raise ValueError("LayerDiffuse's attention patch works on (batch, tokens, channels)")
            context = h if encoder_hidden_states is None else encoder_hidden_states
            if encoder_hidden_states is not None and attn.norm_cross:
                context = attn.norm_encoder_hidden_states(context)
            f = self.factors
            q = attn.to_q(h) + f["to_q"](h)
            k = attn.to_k(context) + f["to_k"](context)
            v = attn.to_v(context) + f["to_v"](context)
            batch, heads = h.shape[0], attn.heads
            if attention_mask is not None:
                attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
                attention_mask = attention_mask.view(batch, heads, -1, attention_mask.shape[-1])
            q, k, v = (t.view(batch, -1, heads, t.shape[-1] // heads).transpose(1, 2) for t in (q, k, v))
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, scale=attn.scale)
            o = o.transpose(1, 2).reshape(batch, -1, heads * o.shape[-1])
            o = attn.to_out[0](o) + f["to_out"](o)
            o = attn.to_out[1](o)
            m = (h + o) / attn.rescale_output_factor
            t = self.temporal
            x = t["o"](t["v"](t["i"](t["n"](m))))  # attention over one image: softmax of one score is 1
            return m + x - h

    return TransparentAttention


def _install_sharing(unet, tensors: dict, label: str) -> Callable[[], None]:
    import torch

    names = sharing_order(unet)
    layers = sorted({int(_SHARING_KEY.match(k).group(1)) for k in tensors})
    if len(layers) != len(names) or layers != list(range(len(names))):
        raise UserError(f"{label} patches {len(layers)} attention layers but this model's UNet has {len(names)}: "
                        "it is a LayerDiffuse patch for another model (SD 1.5 models have 32).")
    modules = dict(unet.named_modules())
    cls = _sharing_processor_class()
    device, dtype = unet.device, unet.dtype
    processors = {}
    for i, name in enumerate(names):
        factors = {}
        for lora, proj in _PROJECTIONS.items():
            layer = modules[f"{name}.{proj}"]
            base = getattr(layer, "base_layer", layer)
            down, up = (_take(tensors, f"hookers.layers.{i}.{lora}.0.{part}.weight", label) for part in ("down", "up"))
            if down.ndim != 2 or up.ndim != 2 or down.shape[1] != base.in_features or up.shape[0] != base.out_features \
                    or up.shape[1] != down.shape[0]:
                raise UserError(f"{label} does not fit this model: its layer {i} {lora} is {list(up.shape)} x "
                                f"{list(down.shape)}, the UNet's {name}.{proj} is {base.out_features} x {base.in_features}.")
            factors[proj.split(".")[0]] = (down, up)
        width = modules[f"{name}.to_k"]
        width = getattr(width, "base_layer", width).out_features
        temporal = {}
        for part in TEMPORAL:
            w = _take(tensors, f"hookers.layers.{i}.{part}.weight", label)
            b = _take(tensors, f"hookers.layers.{i}.{part}.bias", label)
            if list(b.shape) != [width] or list(w.shape) != ([width] if part == "temporal_n" else [width, width]):
                raise UserError(f"{label} does not fit this model: its layer {i} {part} is for {b.shape[0]} channels, "
                                f"the UNet's {name} has {width}.")
            module = torch.nn.LayerNorm(width, eps=1e-6) if part == "temporal_n" else torch.nn.Linear(width, width)
            module.load_state_dict({"weight": w, "bias": b})
            temporal[part.removeprefix("temporal_")] = module
        processor = cls({k: _factors(*v) for k, v in factors.items()}, temporal)
        processors[name] = processor.to(device=device, dtype=dtype).requires_grad_(False)
    extra = sorted(tensors)
    if extra:
        raise UserError(f"{label} has tensors this version does not know ({extra[0]}); it is not the transparent-image patch.")
    old = {name: modules[name].processor for name in names}
    for name in names:
        modules[name].set_processor(processors[name])

    def undo() -> None:
        for name, processor in old.items():
            modules[name].set_processor(processor)

    return undo


def _factors(down, up):
    import torch

    class LoraFactors(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.down = torch.nn.Linear(down.shape[1], down.shape[0], bias=False)
            self.up = torch.nn.Linear(up.shape[1], up.shape[0], bias=False)
            self.load_state_dict({"down.weight": down, "up.weight": up})

        def forward(self, x):  # x (up·down)^T, without forming the full matrix
            return self.up(self.down(x))

    return LoraFactors()


def _take(tensors: dict, key: str, label: str):
    if key not in tensors:
        raise UserError(f"{label} is not a complete LayerDiffuse patch: it lacks {key}.")
    return tensors.pop(key)


# --- weight patches (SDXL) ------------------------------------------------------------------------------


def unet_parameters(unet) -> dict[str, tuple[object, str]]:
    """Every UNet weight by the names patch files use (diffusers and LDM) -> (module holding it, attribute).
    A LoRA loaded as a peft adapter wraps its layer: the wrapped layer's own weight is the one patched."""
    from asset_studio.engine.lora import _PEFT_PARTS, _ldm_name, _ldm_prefixes

    prefixes = _ldm_prefixes(unet)
    out = {}
    for name, module in unet.named_modules():
        if any(part in _PEFT_PARTS for part in name.split(".")):
            continue
        holder = getattr(module, "base_layer", module)
        for attr, _ in holder.named_parameters(recurse=False):
            out[f"{name}.{attr}"] = (holder, attr)
            ldm = _ldm_name(name, prefixes)
            if ldm:
                out.setdefault(f"ldm:{ldm}.{attr}", (holder, attr))
    return out


def _deltas(unet, tensors: dict, info: PatchInfo) -> list[tuple[object, str, object]]:
    """(module, attribute, change) for every tensor of a weight patch, or one sentence naming the first
    that has no place in this UNet."""
    params = unet_parameters(unet)
    label = info.path.name
    out = []
    if info.layout == "offsets":
        for key, delta in tensors.items():
            if key not in params:
                raise UserError(f"{label} does not fit this model: the UNet has no weight {key} "
                                "(a LayerDiffuse patch for another model family?).")
            out.append((*params[key], delta))
        return _checked(out, label)
    grouped: dict[tuple[str, str], dict[int, object]] = {}
    for key, tensor in tensors.items():
        name, kind, index = _FROZEN_KEY.match(key).groups()
        grouped.setdefault((name, kind), {})[int(index)] = tensor
    for (name, kind), parts in grouped.items():
        target = params.get(f"ldm:{name}")
        if target is None:
            raise UserError(f"{label} does not fit this model: the UNet has no weight {name} "
                            "(a LayerDiffuse patch for another model family?).")
        weight = getattr(*target)
        if kind == "diff":
            if set(parts) != {0}:
                raise UserError(f"{label}: {name} has a weight change of an unknown form.")
            out.append((*target, parts[0]))
            continue
        if not {0, 1} <= set(parts) <= {0, 1, 2}:
            raise UserError(f"{label}: {name} has LoRA parts {sorted(parts)}; up, down and an optional alpha were expected.")
        up, down = parts[0].float().flatten(1), parts[1].float().flatten(1)
        if up.shape[1] != down.shape[0] or up.shape[0] * down.shape[1] != weight.numel():
            raise UserError(f"{label} does not fit this model: its LoRA for {name} makes {up.shape[0]} x {down.shape[1]}, "
                            f"the weight is {list(weight.shape)}.")
        scale = float(parts[2]) / down.shape[0] if 2 in parts else 1.0
        out.append((*target, (up @ down).reshape(weight.shape) * scale))
    return _checked(out, label)


def _checked(changes, label: str):
    for holder, attr, delta in changes:
        weight = getattr(holder, attr)
        if list(delta.shape) != list(weight.shape):
            raise UserError(f"{label} does not fit this model: a change of shape {list(delta.shape)} meets a weight "
                            f"of shape {list(weight.shape)}.")
    return changes


def _add_to_weights(unet, changes, label: str) -> Callable[[], None]:
    """Add every change to its weight, keeping a CPU copy of each to write back."""
    import torch

    kept = []

    def undo() -> None:
        with torch.no_grad():
            for weight, copy in reversed(kept):
                weight.copy_(copy)
        kept.clear()

    if any(getattr(holder, attr).is_meta for holder, attr, _ in changes):  # sequential offload keeps weights elsewhere
        raise UserError(f"{label} cannot be applied while the model is offloaded layer by layer (too little GPU "
                        "memory for this size); lower the image size.")
    try:
        with torch.no_grad():
            for holder, attr, delta in changes:
                weight = getattr(holder, attr)
                kept.append((weight, weight.detach().to("cpu", copy=True)))
                weight.copy_((weight.float() + delta.to(weight.device, torch.float32)).to(weight.dtype))
    except BaseException:
        undo()
        raise
    return undo
