"""ControlNet: load ControlNet models the way base models load, and wrap the base pipeline.

A ControlNet is one of:
- a diffusers folder (config.json + diffusion_pytorch_model.safetensors),
- a single `.safetensors` file, in diffusers or original ("control_model.*") tensor names;
  its config is a config.json beside it or the packaged SD 1.5 / SDXL config in
  `engine/controlnet_configs/`, chosen from the tensor shapes, never from the network,
- a Hugging Face repo id in the local cache.

`wrap_pipeline()` builds the ControlNet pipeline from the base pipeline's own modules
(diffusers' `from_pipe`: nothing is copied or reloaded), with one MultiControlNet when the
job has several units. The ControlNet stage of engine/plan.py adds the call's inputs.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from pathlib import Path

from asset_studio.core import families
from asset_studio.errors import UserError

CONFIGS_DIR = Path(__file__).resolve().parent / "controlnet_configs"
MAX_CACHED = 4  # ControlNets kept loaded: SD 1.5 ones are 0.7 GB in fp16, SDXL ones 2.5 GB

_models: OrderedDict[tuple, object] = OrderedDict()
_pipes: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()
loads = 0  # how many ControlNets were actually read from disk (tests read it)


# ---- loading --------------------------------------------------------------------------------

def load_controlnet(ref: str, device=None, dtype=None):
    """A ControlNetModel on DEVICE in DTYPE, from a folder, a .safetensors file or a cached repo id."""
    global loads
    ref = str(ref or "").strip()
    if not ref:
        raise UserError("A ControlNet unit has no model; give a folder, a .safetensors file or a repo id.")
    source, kind = _resolve(ref)
    key = (str(source), kind, _stamp(source), str(device), str(dtype))
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    model = _load(ref, source, kind, dtype)
    if device is not None:
        model.to(device)
    model.eval()
    with _lock:
        _models[key] = model
        loads += 1
        while len(_models) > MAX_CACHED:
            _models.popitem(last=False)
    return model


def clear_cache() -> None:
    with _lock:
        _models.clear()


def check_controlnet_ref(ref: str) -> None:
    """Refuse a missing, pickled or uncached ControlNet in one sentence, without loading it."""
    if not str(ref or "").strip():
        raise UserError("A ControlNet unit has no model; give a folder, a .safetensors file or a repo id.")
    source, kind = _resolve(str(ref).strip())
    if kind == "file":
        family_of_controlnet_file(source)


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _resolve(ref: str) -> tuple[Path, str]:
    from asset_studio.core.model_files import PICKLE_SUFFIXES, REPO_ID, pickle_refusal

    path = Path(ref).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return path.resolve(), "folder"
        if (path / "controlnet" / "config.json").is_file():
            return (path / "controlnet").resolve(), "folder"
        raise UserError(f"The folder {path} is not a ControlNet: it has no config.json.")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in PICKLE_SUFFIXES:
            raise UserError(pickle_refusal(path))
        if suffix != ".safetensors":
            raise UserError(f"{path.name} is not a ControlNet file; use a .safetensors file or a diffusers folder.")
        return path.resolve(), "file"
    if Path(ref).suffix or not REPO_ID.match(ref):
        raise UserError(f"The ControlNet {ref} was not found.")
    return _cached_repo(ref), "folder"


def _cached_repo(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True,
                                        allow_patterns=["config.json", "*.safetensors"]))
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise UserError(f"The ControlNet {repo_id} is not in the local Hugging Face cache.") from None
    if not (folder / "config.json").is_file():
        raise UserError(f"The repo {repo_id} is not a diffusers ControlNet: it has no config.json.")
    return folder


def _load(ref: str, source: Path, kind: str, dtype):
    from diffusers import ControlNetModel

    from asset_studio.engine.loader import load_errors, quiet_loading

    with load_errors(f"ControlNet {Path(ref).name}"), quiet_loading():
        if kind == "folder":
            if not any(source.glob("diffusion_pytorch_model*.safetensors")):
                raise UserError(f"The ControlNet {ref} has no .safetensors weights (pickle .bin files are refused).")
            return ControlNetModel.from_pretrained(str(source), torch_dtype=dtype, local_files_only=True,
                                                   use_safetensors=True)
        config = single_file_config(source)
        return ControlNetModel.from_single_file(str(source), config=str(config), torch_dtype=dtype,
                                                local_files_only=True)


def single_file_config(path: Path) -> Path:
    """The config folder for a single-file ControlNet: a config.json beside it, else the packaged one."""
    if (path.parent / "config.json").is_file() and path.name.startswith("diffusion_pytorch_model"):
        return path.parent
    beside = path.with_suffix(".json")  # "name.safetensors" + "name.json", as some sites ship them
    if beside.is_file():
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="asset-studio-cn-"))
        shutil.copyfile(beside, folder / "config.json")
        return folder
    family = family_of_controlnet_file(path)
    folder = CONFIGS_DIR / family
    if not (folder / "config.json").is_file():
        raise UserError(
            f"{path.name} is an {families.label(family)} ControlNet; put its config.json beside it "
            f"as {path.with_suffix('.json').name}."
        )
    return folder


def family_of_controlnet_file(path: Path) -> str:
    """sd15 / sd2 / sdxl from a single file's tensor names and shapes (header only)."""
    from asset_studio.core.safetensors_header import read_header_file

    shapes = {k: list(v.shape) for k, v in read_header_file(path).tensors.items()}
    keys = list(shapes)
    if any("lora" in k for k in keys):
        raise UserError(f"{path.name} is a Control-LoRA or LoRA, which Asset Studio does not load as a ControlNet.")
    if any(k.startswith(("task_embedding", "control_add_embedding", "transformer_layes")) for k in keys):
        raise UserError(f"{path.name} is a ControlNet-Union model, which Asset Studio does not support yet.")
    if not any(k.startswith(("control_model.", "controlnet_", "down_blocks.", "input_blocks.")) for k in keys):
        raise UserError(f"{path.name} is not a ControlNet.")
    family = families.cross_attention_family(shapes)
    if family is not None:
        return family
    raise UserError(f"{path.name} is not an SD 1.x, SD 2.x or SDXL ControlNet.")


# ---- families -------------------------------------------------------------------------------

family_of_config = families.describe_unet_config


def check_family(controlnet, unet, ref: str) -> None:
    """A ControlNet must have been trained for the base model's family: same text width and embeddings."""
    cn, base = controlnet.config, unet.config
    same = (
        cn.get("cross_attention_dim") == base.get("cross_attention_dim")
        and cn.get("addition_embed_type") == base.get("addition_embed_type")
        and cn.get("in_channels") == base.get("in_channels")
        and list(cn.get("block_out_channels")) == list(base.get("block_out_channels"))
    )
    if not same:
        raise UserError(
            f"The ControlNet {Path(ref).name} is for {family_of_config(cn)} models, but the model is "
            f"{family_of_config(base)}."
        )


# ---- the pipeline ---------------------------------------------------------------------------

def pipeline_class(is_xl: bool, img2img: bool):
    import diffusers

    return {
        (False, False): diffusers.StableDiffusionControlNetPipeline,
        (False, True): diffusers.StableDiffusionControlNetImg2ImgPipeline,
        (True, False): diffusers.StableDiffusionXLControlNetPipeline,
        (True, True): diffusers.StableDiffusionXLControlNetImg2ImgPipeline,
    }[(is_xl, img2img)]


def wrap_pipeline(base_pipe, models: list, is_xl: bool, img2img: bool, dtype):
    """The ControlNet pipeline over the base's modules, reused while its inputs stay the same."""
    from diffusers import MultiControlNetModel

    cls = pipeline_class(is_xl, img2img)
    key = (cls.__name__, tuple(id(m) for m in models))
    with _lock:
        per_base = _pipes.setdefault(base_pipe, {})
        pipe = per_base.get(key)
    if pipe is None:
        controlnet = models[0] if len(models) == 1 else MultiControlNetModel(models)
        kwargs = {"controlnet": controlnet}
        if dtype is not None:
            kwargs["torch_dtype"] = dtype  # from_pipe casts every module to this (fp32 by default)
        pipe = _quiet_from_pipe(cls, base_pipe, kwargs)
        pipe.set_progress_bar_config(**getattr(base_pipe, "_progress_bar_config", {"disable": True}))
        with _lock:
            if len(per_base) >= MAX_CACHED:
                per_base.pop(next(iter(per_base)))
            per_base[key] = pipe
    from asset_studio.engine.plan import share_modules

    share_modules(base_pipe, pipe)
    return pipe


def _quiet_from_pipe(cls, base_pipe, kwargs):
    """from_pipe without its per-module float32 notes and the torch_dtype rename warning."""
    from diffusers.utils import logging as dlog

    from asset_studio.engine.loader import quiet_loading

    level = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        with quiet_loading():
            return cls.from_pipe(base_pipe, **kwargs)
    finally:
        dlog.set_verbosity(level)
