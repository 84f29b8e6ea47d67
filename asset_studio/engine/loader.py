"""Load Stable Diffusion pipelines from what users have, offline, and keep them loaded.

A model is one of:
- a diffusers folder (model_index.json and one folder per component),
- a single-file `.safetensors` checkpoint as civitai and A1111 ship them; its configs come from
  `engine/configs/<family>/` (or a user's `model_config` folder), never from the network,
- a Hugging Face repo id, taken from the local cache unless the user asked to download.

Pickle weights (.ckpt, .pt, .bin) are refused: loading them can run arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asset_studio.core import families
from asset_studio.core.model_files import PICKLE_SUFFIXES, REPO_ID, pickle_refusal
from asset_studio.errors import UserError

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
# OpenCLIP's tokenizers pad with "!" (SD 2.x, SDXL's second encoder); OpenAI CLIP's with <|endoftext|>.
TOKENIZER_PADS = {
    "sd15": {"tokenizer": "<|endoftext|>"},
    "sd21": {"tokenizer": "!"},
    "sdxl": {"tokenizer": "<|endoftext|>", "tokenizer_2": "!"},
}
# Only what a diffusers pipeline needs; skips the duplicate single files and fp16/EMA variants repos carry.
DOWNLOAD_ALLOW = ["model_index.json", "*/*.json", "*/*.txt", "*/*.model", "*/*.safetensors"]
DOWNLOAD_IGNORE = ["*.fp16.*", "*.ema.*", "*non_ema*", "*.bin", "*.ckpt", "*.msgpack", "*.onnx", "*.h5"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: kind is "folder", "file" (single-file checkpoint) or "repo"."""

    ref: str
    kind: str
    path: Path

    @property
    def name(self) -> str:
        return model_display_name(self.ref)


def model_display_name(ref: str) -> str:
    """A short name for a model reference: the file stem, folder name, or repo name."""
    ref = str(ref).rstrip("/\\")
    base = re.split(r"[/\\]", ref)[-1]
    return base.rsplit(".", 1)[0] if base.lower().endswith((".safetensors", ".ckpt")) else base


# --- finding the files ------------------------------------------------------------------------


def resolve_model(ref: str, download: bool = False) -> ModelSource:
    """Turn what the user typed into local files, or one clear sentence saying why not."""
    if not ref or not str(ref).strip():
        raise UserError("No model was given; pass --model with a folder, a .safetensors file or a repo id.")
    ref = str(ref).strip()
    path = Path(ref).expanduser()
    if path.exists():
        if path.is_dir():
            if not (path / "model_index.json").is_file():
                raise UserError(f"The folder {path} is not a diffusers model: it has no model_index.json.")
            return ModelSource(ref, "folder", path.resolve())
        suffix = path.suffix.lower()
        if suffix in PICKLE_SUFFIXES:
            raise UserError(pickle_refusal(path))
        if suffix != ".safetensors":
            raise UserError(f"{path.name} is not a model file; use a .safetensors checkpoint or a diffusers folder.")
        return ModelSource(ref, "file", path.resolve())
    if Path(ref).suffix.lower() in PICKLE_SUFFIXES | {".safetensors"} or not REPO_ID.match(ref):
        raise UserError(f"The model {ref} was not found.")
    return ModelSource(ref, "repo", snapshot_folder(ref, download))


def snapshot_folder(repo_id: str, download: bool = False) -> Path:
    """The local folder of a Hugging Face repo: from the cache, or downloaded when asked for."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(
            repo_id, local_files_only=not download, allow_patterns=DOWNLOAD_ALLOW, ignore_patterns=DOWNLOAD_IGNORE
        )
    except LocalEntryNotFoundError:
        if download:
            raise UserError(f"Could not download {repo_id}: the Hugging Face Hub is not reachable.") from None
        raise UserError(
            f"The model {repo_id} is not in the local Hugging Face cache; pass --download to fetch it."
        ) from None
    except HfHubHTTPError as exc:
        raise UserError(f"Could not download {repo_id}: {first_line(exc)}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"Could not find the model {repo_id}: {first_line(exc)}") from None
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise UserError(f"The repo {repo_id} is not a diffusers pipeline: it has no model_index.json.")
    return folder


# --- telling families apart -----------------------------------------------------------------


def detect_family(source) -> str:
    """"sd15", "sd2" or "sdxl" for a folder, a single-file checkpoint, a repo id or a ModelSource."""
    if not isinstance(source, ModelSource):
        source = resolve_model(str(source))
    if source.kind == "file":
        return family_of_checkpoint(source.path)
    return family_of_folder(source.path)


def family_of_folder(folder: Path) -> str:
    family = families.family_of_pipeline_folder(folder)
    if family is None:
        cls = str(read_json(folder / "model_index.json").get("_class_name", ""))
        raise UserError(f"{folder.name} is a {cls or 'diffusers'} model; Asset Studio runs SD 1.x, 2.x and SDXL.")
    return family


def family_of_checkpoint(path: Path) -> str:
    from asset_studio.core.safetensors_header import read_header_file

    tensors = read_header_file(path).tensors  # also rejects corrupt and truncated files
    family = family_of_keys({k: v.shape for k, v in tensors.items()})
    if family is None:
        if any("lora" in k for k in tensors):
            raise UserError(f"{path.name} is a LoRA, not a model; apply it through a style pack instead.")
        raise UserError(f"{path.name} is not a Stable Diffusion 1.x, 2.x or SDXL checkpoint.")
    conv_in = tensors.get("model.diffusion_model.input_blocks.0.0.weight")
    if conv_in is not None and len(conv_in.shape) == 4 and conv_in.shape[1] != 4:
        raise UserError(f"{path.name} is an inpainting or other special checkpoint; use a regular one.")
    return family


family_of_keys = families.family_of_checkpoint_keys  # the one detector, in core/families


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError):
        raise UserError(f"{path} is not readable JSON.") from None
    return data if isinstance(data, dict) else {}


# --- offline configs for single files --------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("ASSET_STUDIO_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "asset-studio"


def single_file_config_dir(family: str) -> Path:
    """The diffusers config folder for a family's single-file checkpoints (packaged JSON + tokenizers).

    Tokenizer files are 2 MB built from CLIP's vocabulary, so they are written once into the cache
    rather than shipped; the folder name carries a hash of the packaged configs, so edits refresh it.
    """
    from asset_studio.engine.clip_vocab import write_clip_tokenizer

    name = families.FAMILIES[family].config_name
    packaged = CONFIGS_DIR / name
    digest = hashlib.sha256()
    for f in sorted(packaged.rglob("*.json")):
        digest.update(f.relative_to(packaged).as_posix().encode() + f.read_bytes())
    target = cache_dir() / "configs" / f"{name}-{digest.hexdigest()[:12]}"
    if (target / "model_index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        shutil.copytree(packaged, tmp, dirs_exist_ok=True)
        for sub, pad in TOKENIZER_PADS[name].items():
            write_clip_tokenizer(tmp / sub, pad_token=pad)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "model_index.json").is_file():  # not a concurrent writer that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def config_dir_for(family: str, model_config: str | None) -> Path:
    if not model_config:
        return single_file_config_dir(family)
    folder = Path(model_config).expanduser()
    if not (folder / "model_index.json").is_file():
        raise UserError(f"The model config folder {folder} has no model_index.json.")
    return folder.resolve()


# --- loading ----------------------------------------------------------------------------------


def pipeline_class(family: str):
    import diffusers

    return diffusers.StableDiffusionXLPipeline if family == "sdxl" else diffusers.StableDiffusionPipeline


def _extra_kwargs(family: str) -> dict:
    # Single files never carry the SD 1.x safety checker; folders that do would load 1.2 GB for nothing.
    if family == "sdxl":
        return {}
    return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


@contextmanager
def load_errors(what: str):
    """Any failure inside becomes one UserError: "Could not load the WHAT: <first line of the cause>"."""
    try:
        yield
    except (UserError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # diffusers raises ValueError/OSError/RuntimeError/SafetensorError alike
        if "weights_only" in str(exc):  # torch's safe loader met code objects: never advise turning it off
            raise UserError(f"Could not load the {what}: the file holds more than plain weights (code objects "
                            "a pickle can run), so it is refused; use the official weights.") from exc
        raise UserError(f"Could not load the {what}: {first_line(exc)}") from exc


@contextmanager
def quiet_loading():
    """No per-component progress bars on the console, and no warning about diffusers' dtype rename
    (we pass `torch_dtype`, which every supported diffusers version accepts)."""
    import warnings

    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    level = dlog.get_verbosity()
    dlog.set_verbosity_error()  # per-module dtype notes are not the user's business
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            yield
    finally:
        dlog.set_verbosity(level)


def load_pipeline(source: ModelSource, family: str, device, dtype, model_config: str | None = None):
    """Load the base text-to-image pipeline onto the device. Any failure becomes one UserError."""
    cls = pipeline_class(family)
    with load_errors(f"model {source.name}"), quiet_loading():
        pipe = _load(cls, source, family, dtype, model_config)
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    _restore_text_model_path(pipe)
    return pipe


def _restore_text_model_path(pipe) -> None:
    """SD 1.x/2.x pipelines apply clip skip through `text_encoder.text_model.final_layer_norm`;
    transformers >= 5.6 flattened CLIPTextModel so that path is gone. Point it back at the same
    layer (a plain attribute, not a submodule, so weights and state dicts are untouched)."""
    from types import SimpleNamespace

    encoder = getattr(pipe, "text_encoder", None)
    if encoder is None or hasattr(encoder, "text_model") or not hasattr(encoder, "final_layer_norm"):
        return
    object.__setattr__(encoder, "text_model", SimpleNamespace(final_layer_norm=encoder.final_layer_norm))


def _load(cls, source: ModelSource, family: str, dtype, model_config: str | None):
    """The pipeline from a single file (with offline configs) or a diffusers folder."""
    if source.kind == "file":
        config = config_dir_for(family, model_config)
        pipe = cls.from_single_file(
            str(source.path), config=str(config), torch_dtype=dtype, local_files_only=True,
            **_extra_kwargs(family),
        )
    else:
        variant = None
        unet = source.path / "unet"
        if not any(unet.glob("diffusion_pytorch_model*.safetensors")):
            raise UserError(f"{source.name} has no .safetensors UNet weights (pickle .bin files are refused).")
        if not any(unet.glob("diffusion_pytorch_model.safetensors")) and not any(
            unet.glob("diffusion_pytorch_model-*.safetensors")
        ) and any(unet.glob("diffusion_pytorch_model.fp16.safetensors")):
            variant = "fp16"
        pipe = cls.from_pretrained(
            str(source.path), torch_dtype=dtype, local_files_only=True, use_safetensors=True,
            variant=variant, **_extra_kwargs(family),
        )
    return pipe


def check_vae_ref(ref: str) -> None:
    """Refuse a pickled, non-safetensors or missing VAE in one sentence, without loading it."""
    path = Path(ref).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(f"The VAE {path.name} is a pickle file, which can run code; use a .safetensors version.")
    if path.is_file() and path.suffix.lower() != ".safetensors":
        raise UserError(f"The VAE {path.name} is not a .safetensors file.")
    if not path.exists() and not REPO_ID.match(str(ref)):
        raise UserError(f"The VAE {ref} was not found.")


def load_vae(ref: str, base_vae, device, dtype, download: bool = False):
    """A VAE from a folder (its own or a model's vae/), a single .safetensors file, or a repo id.

    A single file carries no config; it takes the loaded model's own VAE config, since a VAE
    must share its model's latent space anyway.
    """
    import diffusers

    path = Path(ref).expanduser()
    name = model_display_name(ref)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(f"The VAE {path.name} is a pickle file, which can run code; use a .safetensors version.")
    with load_errors(f"VAE {name}"):
        if path.is_file():
            if path.suffix.lower() != ".safetensors":
                raise UserError(f"The VAE {path.name} is not a .safetensors file.")
            from asset_studio.core.safetensors_header import read_header_file

            read_header_file(path)
            with quiet_loading():
                vae = diffusers.AutoencoderKL.from_single_file(
                    str(path), config=str(_vae_config_dir(base_vae)), subfolder="vae",
                    torch_dtype=dtype, local_files_only=True,
                )
        else:
            if path.is_dir():
                folder = path
            elif REPO_ID.match(str(ref)):
                folder = Path(_vae_snapshot(str(ref), download))
            else:
                raise UserError(f"The VAE {ref} was not found.")
            sub = "vae" if (folder / "vae" / "config.json").is_file() else None
            config = read_json(folder / (sub or ".") / "config.json")
            if not config:
                raise UserError(f"The folder {folder} holds no VAE (no config.json).")
            cls = diffusers.AutoencoderTiny if config.get("_class_name") == "AutoencoderTiny" else diffusers.AutoencoderKL
            with quiet_loading():
                vae = cls.from_pretrained(
                    str(folder), subfolder=sub, torch_dtype=dtype, local_files_only=True, use_safetensors=True
                )
        vae.to(device)
    return vae


def _vae_config_dir(base_vae) -> Path:
    """A folder holding vae/config.json of the loaded model's VAE (what from_single_file reads)."""
    text = json.dumps(dict(base_vae.config), sort_keys=True, default=str)
    folder = cache_dir() / "vae-configs" / hashlib.sha256(text.encode()).hexdigest()[:12]
    if not (folder / "vae" / "config.json").is_file():
        base_vae.save_config(str(folder / "vae"))
    return folder


def _vae_snapshot(repo_id: str, download: bool) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(
            repo_id, local_files_only=not download, allow_patterns=["*.json", "*.safetensors"],
            ignore_patterns=DOWNLOAD_IGNORE,
        )
    except LocalEntryNotFoundError:
        raise UserError(f"The VAE {repo_id} is not in the local Hugging Face cache; pass --download.") from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else type(exc).__name__
    line = line[:300]
    return line if line.endswith(".") else line + "."


# --- the cache --------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A loaded base pipeline and what the engine keeps beside it."""

    source: ModelSource
    family: str
    pipe: Any
    base_vae: Any
    scheduler_config: dict  # the model's own scheduler settings; samplers are built from them
    vaes: dict[str, Any] = field(default_factory=dict)  # VAE overrides already loaded, by reference
    derived: dict[str, Any] = field(default_factory=dict)  # img2img etc. built from the same components


SHARED: "PipelineCache | None" = None


def shared_cache() -> "PipelineCache":
    """The process-wide cache every Engine uses unless given its own."""
    global SHARED
    if SHARED is None:
        SHARED = PipelineCache()
    return SHARED


class PipelineCache:
    """The loaded pipelines, most recently used last; at most `capacity` stay in memory.

    One model is the default: an SDXL pipeline in fp16 is ~7 GB, and artists switch models rarely.
    Set ASSET_STUDIO_CACHED_MODELS to keep more.
    """

    def __init__(self, capacity: int | None = None):
        if capacity is None:
            capacity = int(os.environ.get("ASSET_STUDIO_CACHED_MODELS", "1") or 1)
        self.capacity = max(1, capacity)
        self._entries: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a pipeline was actually loaded (tests and the GUI read it)

    def get(self, model: str, device, dtype, model_config: str | None = None, download: bool = False) -> LoadedModel:
        source = resolve_model(model, download=download)
        key = (str(source.path), _stamp(source), str(model_config or ""), str(device), str(dtype))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        family = detect_family(source)
        # Free the old model before loading the new one, so two never need to fit at once.
        with self._lock:
            while len(self._entries) >= self.capacity:
                self._evict()
        pipe = load_pipeline(source, family, device, dtype, model_config=model_config)
        loaded = LoadedModel(
            source=source, family=family, pipe=pipe, base_vae=pipe.vae, scheduler_config=dict(pipe.scheduler.config)
        )
        with self._lock:
            self._entries[key] = loaded
            self.loads += 1
        return loaded

    def _evict(self) -> None:
        _, old = self._entries.popitem(last=False)
        device = getattr(old.pipe, "device", None)
        del old
        import gc

        gc.collect()
        if device is not None and getattr(device, "type", "") == "cuda":
            import torch

            torch.cuda.empty_cache()

    def clear(self) -> None:
        with self._lock:
            while self._entries:
                self._evict()

    def __len__(self) -> int:
        return len(self._entries)


def _stamp(source: ModelSource) -> int:
    """Changes when the model's files are replaced, so a re-saved model is reloaded."""
    target = source.path if source.kind == "file" else source.path / "model_index.json"
    try:
        st = target.stat()
        return st.st_mtime_ns ^ st.st_size
    except OSError:
        return 0


def use_vae(loaded: LoadedModel, vae_ref: str | None, device, dtype, download: bool = False) -> None:
    """Put the job's VAE (or the model's own) into the pipeline; overrides stay loaded for reuse."""
    if not vae_ref:
        vae = loaded.base_vae
    else:
        key = str(Path(vae_ref).expanduser().resolve()) if Path(vae_ref).expanduser().exists() else vae_ref
        if key not in loaded.vaes:
            loaded.vaes[key] = load_vae(vae_ref, loaded.base_vae, device, dtype, download)
        vae = loaded.vaes[key]
    if loaded.pipe.vae is not vae:
        loaded.pipe.vae = vae
