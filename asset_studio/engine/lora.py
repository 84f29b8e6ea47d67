"""LoRA adapters on a loaded pipeline: the style switch that never reloads the base model.

apply_loras(pipe, loras, family) makes exactly the job's LoRAs active with their weights. Each file
is loaded once per pipeline as a peft adapter (diffusers' load_lora_weights, which also converts
kohya / AUTOMATIC1111 keys) and kept, keyed by path + mtime + size, so switching styles is a
set_adapters call. Before a file is loaded its safetensors header is checked: only .safetensors,
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
from asset_studio.core.safetensors_header import SafetensorsHeader, read_header_file
from asset_studio.core import families
from asset_studio.errors import UserError

MAX_LORA_BYTES = 2 * 1024**3
MAX_LOADED_ADAPTERS = 12  # least recently used adapters beyond this are dropped from memory

# Cross-attention width of the UNet (the text embedding size), by family.
_CROSS_DIM_FAMILY = {768: "sd15", 1024: "sd2", 2048: "sdxl"}
_SDXL_MARKERS = ("lora_te1_", "lora_te2_", "text_encoder_2.", "conditioner.")

# pipeline -> OrderedDict[(path, mtime_ns, size) -> adapter name]; weak, so a dropped pipeline frees it
_LOADED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# --- family check --------------------------------------------------------------------------


def _down_in_features(header: SafetensorsHeader, match) -> int | None:
    """in_features of the first LoRA down-projection whose key satisfies ``match``."""
    for key, info in header.tensors.items():
        down = key.endswith((".lora_down.weight", ".lora_A.weight", ".down.weight"))
        if down and len(info.shape) >= 2 and match(key):
            return info.shape[1]
    return None


def _cross_attn_in(header: SafetensorsHeader) -> int | None:
    return _down_in_features(header, lambda k: "attn2" in k and re.search(r"to_[kv]", k) is not None)


def _te_in(header: SafetensorsHeader) -> int | None:
    def first_encoder(key: str) -> bool:
        return key.startswith(("lora_te_", "lora_te1_", "text_encoder.")) and "q_proj" in key

    return _down_in_features(header, first_encoder)


def lora_family(header: SafetensorsHeader) -> str | None:
    """The model family a LoRA was made for, when its header says so clearly."""
    if any(k.startswith(_SDXL_MARKERS) for k in header.tensors):
        return "sdxl"
    return _CROSS_DIM_FAMILY.get(_cross_attn_in(header) or 0)


def _pipe_cross_dim(pipe) -> int | None:
    dim = getattr(getattr(pipe, "unet", None), "config", {}).get("cross_attention_dim")
    if isinstance(dim, (list, tuple)):
        dim = dim[0]
    return dim


def check_family(header: SafetensorsHeader, pipe, family: str, label: str) -> None:
    """Refuse, with one sentence, a LoRA made for another model family than the loaded one."""
    lora_fam = lora_family(header)
    has_te2 = any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in header.tensors)
    cross, pipe_cross = _cross_attn_in(header), _pipe_cross_dim(pipe)
    te, pipe_te = _te_in(header), getattr(getattr(getattr(pipe, "text_encoder", None), "config", None),
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


def _tuner_layers(pipe):
    from peft.tuners.tuners_utils import BaseTunerLayer

    for component in getattr(pipe, "_lora_loadable_modules", ("unet", "text_encoder")):
        model = getattr(pipe, component, None)
        if model is not None and getattr(model, "peft_config", None):
            for module in model.modules():
                if isinstance(module, BaseTunerLayer):
                    yield module


def _set_enabled(pipe, enabled: bool) -> None:
    # Per layer, as pipe.disable_lora()/enable_lora() would do, but also for a pipeline where
    # only the text encoder (or only the UNet) carries adapters, which those refuse.
    for layer in _tuner_layers(pipe):
        layer.enable_adapters(enabled)


def loaded_adapters(pipe) -> set[str]:
    return {name for names in pipe.get_list_adapters().values() for name in names}


def _adapter_name(ref: LoraRef, key: tuple) -> str:
    stem = ref.name or Path(ref.path).stem
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_")[:40] or "lora"
    return f"{slug}_{hashlib.sha1(repr(key).encode()).hexdigest()[:8]}"


def _load_into_text_encoder(text_encoder, state_dict, network_alphas, metadata, prefix: str, adapter: str):
    """diffusers' text-encoder LoRA loading, with peft called directly.

    diffusers hands text encoders to transformers' load_adapter, which demands a newer peft than
    PyPI offers next to these transformers versions; the steps below are the same ones
    (diffusers.loaders.lora_base._load_lora_into_text_encoder) with peft's injection in its place.
    """
    from diffusers.utils import convert_state_dict_to_diffusers, convert_state_dict_to_peft
    from diffusers.utils.peft_utils import _create_lora_config
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    head = f"{prefix}."
    sd = {k.removeprefix(head): v for k, v in state_dict.items() if k.startswith(head)}
    if not sd:
        return
    meta = {k.removeprefix(head): v for k, v in (metadata or {}).items() if k.startswith(head)} or None
    sd = convert_state_dict_to_peft(convert_state_dict_to_diffusers(sd))
    if not hasattr(text_encoder, "text_model"):  # flattened CLIP in recent transformers
        sd = {k.removeprefix("text_model."): v for k, v in sd.items()}
    rank = {}
    for name, _ in text_encoder.named_modules():
        if name.endswith((".q_proj", ".k_proj", ".v_proj", ".out_proj", ".fc1", ".fc2")):
            if f"{name}.lora_B.weight" in sd:
                rank[f"{name}.lora_B.weight"] = sd[f"{name}.lora_B.weight"].shape[1]
    alphas = None
    if network_alphas:
        alphas = {k.removeprefix(head): v for k, v in network_alphas.items() if k.split(".")[0] == prefix}
    config = _create_lora_config(sd, alphas, meta, rank, is_unet=False)
    inject_adapter_in_model(config, text_encoder, adapter)
    result = set_peft_model_state_dict(text_encoder, sd, adapter)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) or [] if "lora_" in k]
    if unexpected:
        raise ValueError(f"{len(unexpected)} text-encoder LoRA weights match no layer, e.g. {unexpected[0]}")
    text_encoder.to(device=text_encoder.device, dtype=text_encoder.dtype)


def _load(pipe, path: Path, adapter: str) -> None:
    with warnings.catch_warnings():
        # peft warns on every second adapter of a model; several adapters are the point here
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        _load_checked(pipe, path, adapter)


def _load_checked(pipe, path: Path, adapter: str) -> None:
    try:
        # use_safetensors=True: diffusers never falls back to a pickle file. lora_state_dict also
        # converts kohya / AUTOMATIC1111 keys (and SDXL's SGM block names, given the UNet config).
        state_dict, alphas, metadata = pipe.lora_state_dict(
            str(path), use_safetensors=True, unet_config=pipe.unet.config, return_lora_metadata=True,
        )
        if not all("lora" in key for key in state_dict):
            raise ValueError("some weights are not LoRA weights")
        pipe.load_lora_into_unet(state_dict, network_alphas=alphas, unet=pipe.unet, adapter_name=adapter,
                                 metadata=metadata, _pipeline=pipe)
        for prefix in ("text_encoder", "text_encoder_2"):
            encoder = getattr(pipe, prefix, None)
            if encoder is not None:
                _load_into_text_encoder(encoder, state_dict, alphas, metadata, prefix, adapter)
    except UserError:
        raise
    except Exception as exc:  # diffusers/peft raise ValueError, RuntimeError, KeyError … for odd files
        _forget(pipe, adapter)
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(f"The LoRA {path.name} could not be applied to this model ({reason}).") from None
    if adapter not in loaded_adapters(pipe):
        raise UserError(f"The LoRA {path.name} has no layers this model has; it was made for another kind of model.")


def _forget(pipe, adapter: str) -> None:
    try:
        if adapter in loaded_adapters(pipe):
            pipe.delete_adapters(adapter)
    except Exception:  # a half-loaded adapter: nothing more to free
        pass
    # diffusers forgets a text encoder's adapter config only when transformers loaded it; ours came
    # through peft directly (see _load_into_text_encoder), so drop it here.
    for name in ("text_encoder", "text_encoder_2"):
        config = getattr(getattr(pipe, name, None), "peft_config", None)
        if isinstance(config, dict):
            config.pop(adapter, None)


def apply_loras(pipe, loras: list[LoraRef], family: str) -> None:
    """Make exactly ``loras`` active on ``pipe`` with their weights; an empty list turns LoRA off."""
    cache = _LOADED.setdefault(pipe, OrderedDict())
    if not loras:
        _set_enabled(pipe, False)
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
        keyed.append((ref, path, key))

    active: dict[str, float] = {}
    for ref, path, key in keyed:
        if key not in cache:
            for old in [k for k in cache if k[0] == key[0]]:  # the file changed on disk: drop the old one
                _forget(pipe, cache.pop(old))
            adapter = _adapter_name(ref, key)
            _load(pipe, path, adapter)
            cache[key] = adapter
        cache.move_to_end(key)
        # The same file twice adds up, as two copies of one LoRA would.
        active[cache[key]] = active.get(cache[key], 0.0) + float(ref.weight)

    while len(cache) > max(MAX_LOADED_ADAPTERS, len(active)):
        oldest = next(k for k in cache if cache[k] not in active)
        _forget(pipe, cache.pop(oldest))

    _set_enabled(pipe, True)
    pipe.set_adapters(list(active), list(active.values()))


def forget_all(pipe) -> None:
    """Take every LoRA off PIPE (its layers become plain again); the next apply_loras loads anew."""
    pipe.unload_lora_weights()
    _LOADED.pop(pipe, None)
