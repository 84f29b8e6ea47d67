"""LoRA adapters on a loaded pipeline: the style switch that never reloads the base model.

apply_loras(pipe, loras, family) makes exactly the job's LoRAs active with their weights. Each file
is loaded once per pipeline as peft LoRA adapters on the UNet and text encoders, and kept, keyed
by path + mtime + size, so switching styles is a set_adapters call. Every layout (kohya /
AUTOMATIC1111, diffusers / peft, LoCon, LoHa, LoKr, DoRA) is first turned into per-layer
(down, up) factors with alpha / rank folded in; each module of the file must find its layer, or
the file is refused with the count (never applied in part). Before a file is loaded its safetensors header is checked: only .safetensors,
under a size limit, and made for the loaded model's family.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path

from asset_studio.core.job import LoraRef
from asset_studio.core.lora_file import COMPONENT_LABELS, MAX_LORA_BYTES, parse_lora_file
from asset_studio.core.safetensors_header import SafetensorsHeader, read_header_file
from asset_studio.core import families
from asset_studio.errors import UserError

MAX_LOADED_ADAPTERS = 12  # least recently used adapters beyond this are dropped from memory

# pipeline -> OrderedDict[(path, mtime_ns, size) -> adapter name]; weak, so a dropped pipeline frees it
_LOADED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# model -> its peft tuner layers; dropped whenever adapters are injected or deleted
_TUNER_LAYERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# --- family check --------------------------------------------------------------------------


def _shapes(header: SafetensorsHeader) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in header.tensors.items()}


def lora_family(header: SafetensorsHeader) -> str | None:
    """The model family a LoRA was made for, when its header says so clearly (core/families)."""
    return families.lora_family(_shapes(header))


def _pipe_cross_dim(pipe) -> int | None:
    dim = getattr(getattr(pipe, "unet", None), "config", {}).get("cross_attention_dim")
    if isinstance(dim, (list, tuple)):
        dim = dim[0]
    return dim


def check_family(header: SafetensorsHeader, pipe, family: str, label: str) -> None:
    """Refuse, with one sentence, a LoRA made for another model family than the loaded one."""
    lora_fam = lora_family(header)
    has_te2 = any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in header.tensors)
    cross, pipe_cross = families.lora_cross_attention_width(_shapes(header)), _pipe_cross_dim(pipe)
    te, pipe_te = families.lora_text_encoder_width(_shapes(header)), getattr(getattr(getattr(pipe, "text_encoder", None), "config", None),
                                          "hidden_size", None)
    mismatch = (
        (lora_fam is not None and lora_fam != family)
        or (has_te2 and getattr(pipe, "text_encoder_2", None) is None)
        or (cross is not None and pipe_cross is not None and cross != pipe_cross)
        or (te is not None and pipe_te is not None and te != pipe_te)
    )
    if not mismatch:
        return
    loaded = families.label(family)
    if lora_fam is not None and lora_fam != family:
        made_for = families.label(lora_fam)
    elif family == "sdxl" and not has_te2:
        made_for = "SD 1.x or 2.x"
    elif family != "sdxl" and has_te2:
        made_for = "SDXL"
    else:
        raise UserError(f"The LoRA {label} does not fit the loaded {loaded} model: its layers have other sizes.")
    raise UserError(f"This LoRA ({label}) is for {made_for}, but the loaded model is {loaded}.")


# --- adapters ------------------------------------------------------------------------------


def loaded_adapters(pipe) -> set[str]:
    return {name for names in pipe.get_list_adapters().values() for name in names}


def _adapter_name(ref: LoraRef, key: tuple) -> str:
    stem = ref.name or Path(ref.path).stem
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_")[:40] or "lora"
    return f"{slug}_{hashlib.sha1(repr(key).encode()).hexdigest()[:8]}"


# --- every layout to per-layer (down, up) factors ---------------------------------------------

# LDM (original Stable Diffusion) resnet layer names -> diffusers ones
_LDM_RESNET = {"in_layers.2": "conv1", "out_layers.3": "conv2", "emb_layers.1": "time_emb_proj",
               "skip_connection": "conv_shortcut", "in_layers.0": "norm1", "out_layers.0": "norm2"}
_PEFT_PARTS = ("base_layer", "lora_A", "lora_B", "lora_magnitude_vector", "lora_embedding_A", "lora_embedding_B",
               "lora_dropout")


def _ldm_prefixes(unet) -> dict[str, str]:
    """diffusers module prefix -> LDM prefix (`down_blocks.0.resnets.0` -> `input_blocks.1.0`), from the UNet's own blocks."""
    out = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
           "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
           "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0", "conv_out": "out.2"}
    index = 1
    for i, block in enumerate(unet.down_blocks):
        attentions = getattr(block, "attentions", None)
        for j in range(len(block.resnets)):
            out[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{index}.0"
            if attentions is not None:
                out[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{index}.1"
            index += 1
        if getattr(block, "downsamplers", None):
            out[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{index}.0.op"
            index += 1
    mid = unet.mid_block
    if mid is not None:
        for j in range(len(mid.resnets)):
            out[f"mid_block.resnets.{j}"] = f"middle_block.{2 * j}"
        for j in range(len(getattr(mid, "attentions", None) or [])):
            out[f"mid_block.attentions.{j}"] = f"middle_block.{2 * j + 1}"
    index = 0
    for i, block in enumerate(unet.up_blocks):
        attentions = getattr(block, "attentions", None)
        for j in range(len(block.resnets)):
            out[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{index}.0"
            if attentions is not None:
                out[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{index}.1"
            index += 1
        if getattr(block, "upsamplers", None):
            out[f"up_blocks.{i}.upsamplers.0"] = f"output_blocks.{index - 1}.{2 if attentions is not None else 1}"
    return out


def _ldm_name(name: str, prefixes: dict[str, str]) -> str | None:
    for prefix, ldm in prefixes.items():
        if name == prefix or name.startswith(prefix + "."):
            rest = name[len(prefix):].lstrip(".")
            if ".resnets." in prefix:
                rest = next((k for k, v in _LDM_RESNET.items() if v == rest), rest)
            return f"{ldm}.{rest}" if rest else ldm
    return None


def _layer_index(pipe) -> dict[tuple[str, str], tuple[object, str]]:
    """(component, name as a file may spell it) -> (model, module name), for every Linear / Conv2d layer.

    Names are listed in every spelling files use: dotted, kohya's underscores, LDM block names for
    the UNet, and CLIP's names with or without `text_model.` (transformers 5 dropped that level).
    """
    import torch

    index: dict[tuple[str, str], tuple[object, str]] = {}
    for component in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, component, None)
        if model is None:
            continue
        prefixes = _ldm_prefixes(model) if component == "unet" else {}
        for name, module in model.named_modules():
            if any(part in _PEFT_PARTS for part in name.split(".")):
                continue
            base = getattr(module, "base_layer", module)
            if not isinstance(base, (torch.nn.Linear, torch.nn.Conv2d)):
                continue
            spellings = {name}
            if component == "unet":
                ldm = _ldm_name(name, prefixes)
                if ldm:
                    spellings.add(ldm)
            elif name.startswith("text_model."):
                spellings.add(name.removeprefix("text_model."))
            else:
                spellings.add("text_model." + name)
            for spelling in list(spellings):
                spellings.add(spelling.replace(".", "_"))
            for spelling in spellings:
                index.setdefault((component, spelling), (model, name))
    return index


def _dotted_aliases(name: str) -> list[str]:
    """Other spellings of a diffusers name: old attention-processor names (`attn1.processor.to_q_lora`)."""
    out = [name]
    plain = name.replace(".processor.", ".")
    for old, new in (("to_out_lora", "to_out.0"), ("to_q_lora", "to_q"), ("to_k_lora", "to_k"), ("to_v_lora", "to_v")):
        if plain.endswith(old):
            plain = plain[: -len(old)] + new
    if plain != name:
        out.append(plain)
    return out


def _factors(lora, module, tensors, path: Path):
    """(down, up) as 2-D float32 matrices with the module's scale folded into ``up``, plus DoRA's magnitude.

    Every layout ends as delta = up @ down: LoHa's Hadamard product and LoKr's Kronecker product
    are rewritten as exact low-rank products (rank r1·r2 and b·r), or as the dense delta when that
    is smaller, so peft's plain LoRA layers carry them all.
    """
    import torch

    t = {part: tensors[key].to(torch.float32) for part, key in module.parts.items() if part != "alpha"}
    for part, value in t.items():
        if not torch.isfinite(value).all():
            raise UserError(f"The LoRA {path.name} has NaN or infinite weights (layer {module.name[:80]}); the file is broken.")
    flat = {k: v.reshape(v.shape[0], -1) if v.dim() > 1 else v for k, v in t.items()}
    scale = lora.scale(module)
    if module.kind == "lora":
        down, up = flat["down"], flat["up"]
    elif module.kind == "loha":
        w1a, w1b, w2a, w2b = flat["w1_a"], flat["w1_b"], flat["w2_a"], flat["w2_b"]
        out_f, in_f = w1a.shape[0], w1b.shape[1]
        if w1a.shape[1] * w2a.shape[1] < min(out_f, in_f):
            up = (w1a[:, :, None] * w2a[:, None, :]).reshape(out_f, -1)
            down = (w1b[:, None, :] * w2b[None, :, :]).reshape(-1, in_f)
        else:
            down, up = _dense((w1a @ w1b) * (w2a @ w2b))
    else:  # lokr
        w1 = flat["w1"] if "w1" in flat else flat["w1_a"] @ flat["w1_b"]
        if "w2_a" in flat and w1.shape[1] * flat["w2_a"].shape[1] < min(
                w1.shape[0] * flat["w2_a"].shape[0], w1.shape[1] * flat["w2_b"].shape[1]):
            # kron(W1, A·B) = kron(W1, A) · kron(I, B)
            up = torch.kron(w1, flat["w2_a"])
            down = torch.kron(torch.eye(w1.shape[1]), flat["w2_b"])
        else:
            w2 = flat["w2"] if "w2" in flat else flat["w2_a"] @ flat["w2_b"]
            down, up = _dense(torch.kron(w1, w2))
    magnitude = t.get("magnitude")
    return down, up * scale, None if magnitude is None else magnitude.reshape(-1)


def _dense(delta):
    import torch

    out_f, in_f = delta.shape
    if in_f <= out_f:
        return torch.eye(in_f), delta
    return delta, torch.eye(out_f)


def _load(pipe, path: Path, adapter: str, family: str = "") -> None:
    with warnings.catch_warnings():
        # peft warns on every second adapter of a model; several adapters are the point here
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        warnings.filterwarnings("ignore", message=".*rank_pattern.*")
        warnings.filterwarnings("ignore", message=".*alpha_pattern.*")
        try:
            _load_checked(pipe, path, adapter, family)
        except UserError:
            _forget(pipe, adapter)
            raise
        except Exception as exc:  # torch/peft raise RuntimeError, ValueError … for odd files
            _forget(pipe, adapter)
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise UserError(f"The LoRA {path.name} could not be applied to this model ({reason}).") from None


def _match(pipe, lora, path: Path, family: str):
    """Each module of the file -> (model, layer name); refuses a file whose modules do not all land."""
    index = _layer_index(pipe)
    found, missing = [], []
    for module in lora.modules:
        names = [module.name] if module.naming == "kohya" else _dotted_aliases(module.name)
        hit = next((index[(module.component, n)] for n in names if (module.component, n) in index), None)
        (found if hit else missing).append((module, hit))
    if missing:
        where = families.label(family)
        example = missing[0][0]
        raise UserError(
            f"{len(missing):,} of {len(lora.modules):,} modules of {path.name} match no layer of this {where} model "
            f"(e.g. {COMPONENT_LABELS[example.component]} '{example.name[:80]}'); it was made for another "
            f"model or in a layout the studio reads differently, so it is not applied in part."
        )
    return found


def _load_checked(pipe, path: Path, adapter: str, family: str = "") -> None:
    import torch
    from peft import LoraConfig, inject_adapter_in_model
    from safetensors.torch import load_file

    lora = parse_lora_file(path, MAX_LORA_BYTES)
    matched = _match(pipe, lora, path, family or _family_of(pipe))
    tensors = load_file(str(path))  # safetensors: data only, never a pickle
    per_model: dict[int, tuple[object, list]] = {}
    for module, (model, name) in matched:
        down, up, magnitude = _factors(lora, module, tensors, path)
        layer = model.get_submodule(name)
        base = getattr(layer, "base_layer", layer)
        weight = base.weight
        in_flat = weight[0].numel()
        if up.shape[0] != weight.shape[0] or down.shape[1] != in_flat or (
                magnitude is not None and magnitude.numel() != weight.shape[0]):
            raise UserError(
                f"The LoRA {path.name} does not fit this model: its layer '{module.name[:80]}' is "
                f"{up.shape[0]}x{down.shape[1]}, the model's is {weight.shape[0]}x{in_flat}."
            )
        if weight.dim() == 4:
            down = down.reshape(down.shape[0], *weight.shape[1:])
            up = up.reshape(up.shape[0], up.shape[1], 1, 1)
        per_model.setdefault(id(model), (model, []))[1].append((name, down, up, magnitude))
    del tensors

    for model, layers in per_model.values():
        ranks = {name: down.shape[0] for name, down, _, _ in layers}
        first = next(iter(ranks.values()))
        # Exact names (escaped: peft matches these patterns as regular expressions); alpha = r,
        # so peft's scale is the job's weight alone — alpha / rank is already in the up factors.
        config = LoraConfig(
            r=first, lora_alpha=first, target_modules=list(ranks), use_dora=lora.dora, init_lora_weights=False,
            rank_pattern={re.escape(n): r for n, r in ranks.items() if r != first},
            alpha_pattern={re.escape(n): r for n, r in ranks.items() if r != first},
        )
        inject_adapter_in_model(config, model, adapter)
        _TUNER_LAYERS.pop(model, None)
        if hasattr(model, "_hf_peft_config_loaded"):
            model._hf_peft_config_loaded = True
        with torch.no_grad():
            for name, down, up, magnitude in layers:
                layer = model.get_submodule(name)
                for target, value in ((layer.lora_A[adapter].weight, down), (layer.lora_B[adapter].weight, up)):
                    target.copy_(value.to(target.dtype))
                if magnitude is not None:
                    target = layer.lora_magnitude_vector[adapter].weight
                    target.copy_(magnitude.to(target.dtype).reshape(target.shape))
    if adapter not in loaded_adapters(pipe):
        raise UserError(f"The LoRA {path.name} has no layers this model has; it was made for another kind of model.")


def _family_of(pipe) -> str:
    if getattr(pipe, "text_encoder_2", None) is not None:
        return "sdxl"
    return families.by_cross_attention(_pipe_cross_dim(pipe)) or ""


def _forget(pipe, adapter: str) -> None:
    from diffusers.utils.peft_utils import delete_adapter_layers

    for name in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, name, None)
        config = getattr(model, "peft_config", None)
        if isinstance(config, dict) and adapter in config:
            _TUNER_LAYERS.pop(model, None)
            try:
                with warnings.catch_warnings():  # peft notes that the deleted adapter was active: it is meant to go
                    warnings.filterwarnings("ignore", message="Adapter .* was active which is now deleted")
                    delete_adapter_layers(model, adapter)
            except Exception:  # a half-loaded adapter: drop what is there
                for layer in _model_tuner_layers(model):
                    if adapter in getattr(layer, "lora_A", {}):
                        layer.delete_adapter(adapter)
            config.pop(adapter, None)
            _TUNER_LAYERS.pop(model, None)


def _model_tuner_layers(model) -> list:
    """The model's adapter-carrying layers, remembered until adapters are added or removed."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = _TUNER_LAYERS.get(model)
    if layers is None:
        layers = _TUNER_LAYERS[model] = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    return layers


def apply_loras(pipe, loras: list[LoraRef], family: str) -> None:
    """Make exactly ``loras`` active on ``pipe`` with their weights; an empty list turns LoRA off."""
    cache = _LOADED.setdefault(pipe, OrderedDict())
    if not loras:
        _activate(pipe, {})
        return

    # Check every new file before loading any, so a refused LoRA leaves the pipeline as it was.
    keyed = []
    for ref in loras:
        path = Path(ref.path)
        try:
            stat = path.stat()
        except OSError:
            raise UserError(f"The LoRA file {path} does not exist.") from None
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in cache:
            check_family(read_header_file(path, MAX_LORA_BYTES), pipe, family, path.name)
            _match(pipe, parse_lora_file(path, MAX_LORA_BYTES), path, family)  # layout known, every module lands
        keyed.append((ref, path, key))

    active: dict[str, float] = {}
    for ref, path, key in keyed:
        if key not in cache:
            for old in [k for k in cache if k[0] == key[0]]:  # the file changed on disk: drop the old one
                _forget(pipe, cache.pop(old))
            adapter = _adapter_name(ref, key)
            _load(pipe, path, adapter, family)
            cache[key] = adapter
        cache.move_to_end(key)
        # The same file twice adds up, as two copies of one LoRA would.
        active[cache[key]] = active.get(cache[key], 0.0) + float(ref.weight)

    while len(cache) > max(MAX_LOADED_ADAPTERS, len(active)):
        oldest = next(k for k in cache if cache[k] not in active)
        _forget(pipe, cache.pop(oldest))

    _activate(pipe, active)


def _activate(pipe, active: dict[str, float]) -> None:
    """Per model, the active adapters it carries with their weights; a model carrying none runs bare.

    Per model rather than pipe.set_adapters: a LoRA may reach only the UNet or only a text encoder.
    The same steps as diffusers' set_weights_and_activate_adapters (set_adapter, set_scale per
    layer), skipping what is already so: a style switch is then a pass over the adapter layers.
    """
    for component in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, component, None)
        config = getattr(model, "peft_config", None)
        if not config:
            continue
        names = [name for name in active if name in config]
        for layer in _model_tuner_layers(model):
            if layer.disable_adapters == bool(names):
                layer.enable_adapters(bool(names))
            if not names:
                continue
            if list(layer.active_adapters) != names:
                layer.set_adapter(names)
            for name in names:
                layer.set_scale(name, active[name])


def forget_all(pipe) -> None:
    """Take every LoRA off PIPE (its layers become plain again); the next apply_loras loads anew."""
    pipe.unload_lora_weights()
    _LOADED.pop(pipe, None)
    for component in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, component, None)
        if model is not None:
            _TUNER_LAYERS.pop(model, None)
