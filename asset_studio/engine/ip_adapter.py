"""IP-Adapter: reference pictures that steer a generation, through diffusers' own `load_ip_adapter`.

One adapter file (SD 1.5 or SDXL, base or Plus; .safetensors only) and its CLIP image encoder (a
folder with config.json and model.safetensors) are checked against each other and against the
loaded UNet *before* any weight is read, so a wrong pairing is one sentence rather than a shape
error deep inside diffusers. Each reference gets its own copy of the adapter's attention layers,
so each has its own strength; "style" mode turns a reference's strength into InstantStyle's
per-block scales (only the style-carrying attention of the lowest-resolution up block listens).

Image embeddings are cached per reference file content and settings. With classifier-free
guidance diffusers' embeddings carry a negative half (the encoder's answer to a blank image) in
front of the positive one, so whether CFG is on is part of the key.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from asset_studio.core.job import MAX_REFERENCES, Reference
from asset_studio.core.model_files import PICKLE_SUFFIXES
from asset_studio.core.safetensors_header import read_header_file
from asset_studio.errors import UserError

MODES = ("full", "style")
MAX_REFERENCE_BYTES = 64 * 1024 * 1024
MAX_REFERENCE_PIXELS = 8192 * 8192
# Catalog ids (models/catalog.toml) and the file / folder each one stands for in the repo.
ADAPTER_FILES = {
    "ip-adapter-sd15": ("h94/IP-Adapter", "models/ip-adapter_sd15.safetensors"),
    "ip-adapter-plus-sd15": ("h94/IP-Adapter", "models/ip-adapter-plus_sd15.safetensors"),
    "ip-adapter-sdxl-vit-h": ("h94/IP-Adapter", "sdxl_models/ip-adapter_sdxl_vit-h.safetensors"),
    "ip-adapter-plus-sdxl-vit-h": ("h94/IP-Adapter", "sdxl_models/ip-adapter-plus_sdxl_vit-h.safetensors"),
    "ip-adapter-sdxl": ("h94/IP-Adapter", "sdxl_models/ip-adapter_sdxl.safetensors"),
}
ENCODER_FOLDERS = {
    "ip-adapter-image-encoder-vit-h": ("h94/IP-Adapter", "models/image_encoder"),
    "ip-adapter-image-encoder-vit-bigg": ("h94/IP-Adapter", "sdxl_models/image_encoder"),
}
# The real encoders by the width an adapter takes from them: (projection_dim, hidden_size).
_ENCODER_FOR_WIDTH = {1024: "ip-adapter-image-encoder-vit-h", 1280: "ip-adapter-image-encoder-vit-h",
                      1664: "ip-adapter-image-encoder-vit-bigg"}


@dataclass(frozen=True)
class AdapterInfo:
    path: Path
    plus: bool  # patch embeddings (Plus): the encoder's penultimate hidden states, not its image embedding
    image_width: int  # the width the adapter's image projection takes from the encoder
    cross_attention_dim: int  # the UNet's text-conditioning width the adapter was trained for


# ---- finding and checking files ------------------------------------------------------------------


def resolve_adapter(ref: str) -> Path:
    """An adapter file from a path or a catalog id already in the local Hugging Face cache."""
    path = Path(ref).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(f"The IP-Adapter {path.name} is a pickle, which can run code; use its .safetensors file.")
    if path.is_file():
        return path
    if ref in ADAPTER_FILES:
        return _cached(*ADAPTER_FILES[ref], ref)
    raise UserError(f"The IP-Adapter {ref} was not found; give a .safetensors file or one of {', '.join(ADAPTER_FILES)}.")


def resolve_encoder(ref: str | None, adapter: AdapterInfo) -> Path:
    """The image encoder folder: REF (a folder or a catalog id), or the one ADAPTER was trained with."""
    if ref is None:
        ref = _ENCODER_FOR_WIDTH.get(adapter.image_width)
        if ref is None:
            raise UserError(f"Which image encoder {adapter.path.name} needs is not known; pass --image-encoder.")
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if ref in ENCODER_FOLDERS:
        repo, folder = ENCODER_FOLDERS[ref]
        return _cached(repo, f"{folder}/config.json", ref).parent
    raise UserError(f"The image encoder {ref} was not found; give a folder with config.json and model.safetensors "
                    f"or one of {', '.join(ENCODER_FOLDERS)}.")


def _cached(repo: str, filename: str, catalog_id: str) -> Path:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    if not isinstance(found, str):
        raise UserError(f"{catalog_id} is not downloaded; run `asset-studio models download {catalog_id}`.")
    return Path(found)


def inspect_adapter(path: Path) -> AdapterInfo:
    """What an adapter file is, from its safetensors header alone."""
    tensors = read_header_file(Path(path)).tensors
    name = Path(path).name
    if not any(k.startswith("image_proj.") for k in tensors) or not any(k.startswith("ip_adapter.") for k in tensors):
        raise UserError(f"{name} is not an IP-Adapter: it has no image_proj and ip_adapter weights.")
    k_ip = next((tensors[k].shape for k in sorted(tensors) if k.endswith(".to_k_ip.weight")), None)
    if "image_proj.proj_in.weight" in tensors:  # Plus: a resampler over patch embeddings
        return AdapterInfo(Path(path), True, tensors["image_proj.proj_in.weight"].shape[1], k_ip[1] if k_ip else 0)
    if "image_proj.proj.weight" in tensors:  # base: one image embedding projected to a few tokens
        return AdapterInfo(Path(path), False, tensors["image_proj.proj.weight"].shape[1], k_ip[1] if k_ip else 0)
    raise UserError(f"{name} is an IP-Adapter of a kind Asset Studio does not load (only base and Plus).")


def check_pairing(adapter: AdapterInfo, encoder_dir: Path, unet_cross_attention_dim: int | None = None) -> dict:
    """The encoder's config, after checking the encoder and the UNet fit ADAPTER; else one sentence."""
    import json

    config_path = encoder_dir / "config.json"
    if not (encoder_dir / "model.safetensors").is_file() or not config_path.is_file():
        raise UserError(f"The image encoder folder {encoder_dir} needs config.json and model.safetensors.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise UserError(f"The image encoder's {config_path} is not readable JSON.") from None
    config = config.get("vision_config", config) if isinstance(config, dict) else {}
    gives = config.get("hidden_size") if adapter.plus else config.get("projection_dim")
    if gives != adapter.image_width:
        what = "patch embeddings" if adapter.plus else "image embeddings"
        hint = _ENCODER_FOR_WIDTH.get(adapter.image_width)
        raise UserError(f"The image encoder in {encoder_dir.name} gives {gives}-wide {what} but the IP-Adapter "
                        f"{adapter.path.name} takes {adapter.image_width}" + (f"; use {hint}." if hint else "."))
    if unet_cross_attention_dim and adapter.cross_attention_dim and adapter.cross_attention_dim != unet_cross_attention_dim:
        raise UserError(f"The IP-Adapter {adapter.path.name} was made for models with {adapter.cross_attention_dim}-wide "
                        f"text conditioning, but this model has {unet_cross_attention_dim} (SD 1.5 and SDXL adapters "
                        "do not mix).")
    return config


# ---- loading onto a pipeline ---------------------------------------------------------------------


def load_ip_adapter(pipe, adapter_ref: str, encoder_ref: str | None, n_references: int) -> AdapterInfo:
    """Put ADAPTER (once per reference) and its image encoder on PIPE; a no-op when already there."""
    if not 1 <= n_references <= MAX_REFERENCES:
        raise UserError(f"A job takes 1 to {MAX_REFERENCES} reference images, not {n_references}.")
    adapter = inspect_adapter(resolve_adapter(adapter_ref))
    encoder_dir = resolve_encoder(encoder_ref, adapter)
    config = check_pairing(adapter, encoder_dir, getattr(pipe.unet.config, "cross_attention_dim", None))
    stamp = (str(adapter.path.resolve()), adapter.path.stat().st_mtime_ns, str(encoder_dir.resolve()), n_references)
    if getattr(pipe, "_asset_studio_ip_adapter", None) == stamp:
        return adapter
    from safetensors.torch import load_file
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    from asset_studio.engine.loader import load_errors

    unload_ip_adapter(pipe)
    with load_errors(f"image encoder {encoder_dir}"):
        encoder = CLIPVisionModelWithProjection.from_pretrained(
            encoder_dir, local_files_only=True, use_safetensors=True, dtype=pipe.unet.dtype
        ).to(pipe.unet.device)
    pipe.register_modules(image_encoder=encoder)
    size = int(config.get("image_size", 224))
    extractor = getattr(pipe, "feature_extractor", None)
    if extractor is None or getattr(extractor, "crop_size", {}).get("height") != size:
        pipe.register_modules(feature_extractor=CLIPImageProcessor(size=size, crop_size=size))
    with load_errors(f"IP-Adapter {adapter.path.name}"):
        flat = load_file(str(adapter.path))
        state = {"image_proj": {}, "ip_adapter": {}}
        for key, value in flat.items():
            part, _, rest = key.partition(".")
            if part in state:
                state[part][rest] = value
        pipe.load_ip_adapter([state] * n_references, subfolder=[""] * n_references,
                             weight_name=[adapter.path.name] * n_references)
    pipe._asset_studio_ip_adapter = stamp
    return adapter


def unload_ip_adapter(pipe) -> None:
    if getattr(pipe, "_asset_studio_ip_adapter", None) is not None:
        pipe.unload_ip_adapter()
        pipe._asset_studio_ip_adapter = None


def style_scale(unet, scale: float) -> dict:
    """InstantStyle's "style only" scales for UNET: the middle attention of the lowest-resolution up block
    with attention listens (up.block_0 of SDXL, up.block_1 of SD 1.5); every other block ignores the image."""
    for i, block in enumerate(unet.up_blocks):
        attentions = getattr(block, "attentions", None)
        if attentions:
            n = len(attentions)
            return {"up": {f"block_{i}": [scale if j == n // 2 else 0.0 for j in range(n)]}}
    raise UserError("This model's UNet has no attention in its up blocks, so style-only references cannot apply.")


def set_reference_scales(pipe, references: list[Reference]) -> None:
    # Modes and strengths are checked with the job (core/job.check_limits).
    scales = [style_scale(pipe.unet, ref.scale) if ref.mode == "style" else ref.scale for ref in references]
    pipe.set_ip_adapter_scale(scales)


# ---- image embeddings, cached --------------------------------------------------------------------


class EmbeddingCache:
    """Reference embeddings by (file sha256, encoder, Plus or not, CFG or not, device, dtype); least recently used goes."""

    def __init__(self, size: int = 32):
        self.size = size
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple, make):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        value = make()
        with self._lock:
            self.misses += 1
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


_cache = EmbeddingCache()


def reference_embeds(pipe, references: list[Reference], adapter: AdapterInfo, do_cfg: bool,
                     cache: EmbeddingCache | None = None) -> list:
    """`ip_adapter_image_embeds` for PIPE: one tensor per reference, negative half first when DO_CFG."""
    import torch

    cache = cache or _cache
    encoder = pipe.image_encoder
    out = []
    for ref in references:
        data = _read_reference(Path(ref.image))
        key = (hashlib.sha256(data).hexdigest(), getattr(pipe, "_asset_studio_ip_adapter", (None,) * 3)[2],
               adapter.plus, bool(do_cfg), str(encoder.device), str(encoder.dtype))

        def make(data=data, ref=ref):
            image = _open_reference(data, Path(ref.image))
            with torch.inference_mode():
                embeds, negative = pipe.encode_image(image, encoder.device, 1, adapter.plus)
            embeds = embeds[None]
            return torch.cat([negative[None], embeds]) if do_cfg else embeds

        out.append(cache.get(key, make))
    return out


def _read_reference(path: Path) -> bytes:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(f"The reference image {path} does not exist.") from None
    if size > MAX_REFERENCE_BYTES:
        raise UserError(f"The reference image {path} is larger than {MAX_REFERENCE_BYTES // (1024 * 1024)} MB.")
    return path.read_bytes()


def _open_reference(data: bytes, path: Path):
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_REFERENCE_PIXELS:
                raise UserError(f"The reference image {path} is too large ({im.width}x{im.height}).")
            if im.mode in ("RGBA", "LA", "P"):  # transparent sprites: composite on white as artists see them
                rgba = im.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                return flat
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise UserError(f"The reference image {path} is not a readable image.") from None
