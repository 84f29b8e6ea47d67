"""Image upscale models (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, Compact, SPAN…) and pixel-art nearest.

Models are loaded with spandrel, which detects the architecture and its hyper-parameters from the
tensor names and shapes, from `.safetensors` files only (pickles can run code when loaded).
`get_upscaler(ref)` is what the CLI, the hires fix and the detailer call; it keeps recently used
models loaded.

Large sheets are processed in overlapping tiles whose overlaps are blended with linear ramps, so
memory stays bounded by the tile size and no seam shows; the output is assembled band by band.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from asset_studio.core.model_files import PICKLE_SUFFIXES, pickle_refusal
from asset_studio.errors import UserError

NEAREST = "nearest"
DEFAULT_TILE = 512  # input pixels per tile side: ~1-2 GB of activations for RRDBNet x4 in fp16
DEFAULT_OVERLAP = 32  # wide enough to hide the border effects of a typical SR model's receptive field
MIN_TILE = 32
MAX_SCALE = 16.0
MAX_OUTPUT_PIXELS = 128 * 1024 * 1024  # ~11.5k x 11.5k; RGBA in memory is ~0.5 GB
MAX_MODEL_BYTES = 2 * 1024**3  # the largest HAT/DAT upscalers are a few hundred MB
MAX_PASSES = 3  # as AUTOMATIC1111: a x4 model reaches at most x64 before the final resize
CACHE_CAPACITY = 2


@dataclass
class UpscaleSettings:
    """How to upscale: `scale` None means the model's own; `tile` 0 means the whole image at once."""

    scale: float | None = None
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP

    def check(self) -> None:
        if self.scale is not None and not (0 < self.scale <= MAX_SCALE):
            raise UserError(f"The upscale factor must be above 0 and at most {MAX_SCALE:g}; got {self.scale:g}.")
        if self.tile and self.tile < MIN_TILE:
            raise UserError(f"The tile size must be 0 (no tiling) or at least {MIN_TILE} pixels; got {self.tile}.")
        if self.overlap < 0 or (self.tile and self.overlap > self.tile // 2):
            raise UserError(f"The tile overlap must be between 0 and half the tile size; got {self.overlap}.")


def output_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    w, h = max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
    if w * h > MAX_OUTPUT_PIXELS:
        raise UserError(
            f"Upscaling {size[0]}x{size[1]} by {scale:g} gives {w}x{h}, more than Asset Studio writes "
            f"({MAX_OUTPUT_PIXELS // 1024**2} megapixels); upscale a smaller image or use a smaller --scale."
        )
    return w, h


# --- alpha -------------------------------------------------------------------------------------
#
# Colour and alpha are upscaled separately. The alpha channel goes through the same model as a grey
# image (as Real-ESRGAN and chaiNNer do) rather than through a plain resampler: Lanczos or bicubic
# alpha at x4 is a soft ramp that no longer lines up with the sharpened colour edge (a halo), and
# nearest is a staircase. Two guards keep sprites clean, since a GAN may paint faint texture into
# flat areas: pixels whose whole 3x3 source neighbourhood is transparent stay exactly transparent,
# and those whose neighbourhood is opaque stay exactly opaque, so the model only shapes the edge
# band; and a hard (0/255-only) source alpha, as pixel art has, stays hard. Under transparent
# pixels the colour is first bled in from the nearest opaque ones (core/sheet.bleed), so the
# colour pass never pulls the (usually black) hidden colour into the edge as a dark fringe.


def split_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB uint8 with colour bled under transparent pixels, alpha uint8 or None when opaque)."""
    from asset_studio.core.sheet import bleed

    if image.mode != "RGBA":
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    arr = np.asarray(image)
    if arr.shape[2] == 3:
        return arr, None
    alpha = arr[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(arr[..., :3]), None
    return np.ascontiguousarray(bleed(arr)[..., :3]), alpha


def finish_alpha(upscaled: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Apply the guards above to a model-upscaled alpha (uint8, output size) of `source` alpha."""
    from PIL import ImageFilter

    size = (upscaled.shape[1], upscaled.shape[0])
    src = Image.fromarray(source)
    clear = np.asarray(src.filter(ImageFilter.MaxFilter(3)).resize(size, Image.Resampling.NEAREST)) == 0
    solid = np.asarray(src.filter(ImageFilter.MinFilter(3)).resize(size, Image.Resampling.NEAREST)) == 255
    out = upscaled.copy()
    if np.isin(source, (0, 255)).all():
        out = np.where(out >= 128, 255, 0).astype(np.uint8)
    out[clear] = 0
    out[solid] = 255
    return out


def resize_to(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Lanczos to an exact size, as AUTOMATIC1111 does after the model passes."""
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS))


def merge(rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    if alpha is None:
        return Image.fromarray(rgb, "RGB")
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


# --- tiles -------------------------------------------------------------------------------------


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Start/end of the tiles along one axis: `tile` long, overlapping by at least `overlap`."""
    if not tile or length <= tile:
        return [(0, length)]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride)) + [length - tile]
    return [(s, s + tile) for s in dict.fromkeys(starts)]


def feather(start: int, end: int, length: int, overlap: int, scale: int) -> np.ndarray:
    """Blend weights of one tile along one axis, in output pixels, on sides that meet another tile.

    Across an overlap, the quarter nearest this tile's cut edge (pixels the model saw with the
    least context, where zero padding shows) weighs next to nothing, the middle half cross-fades
    linearly, and the rest is 1; the neighbour mirrors it, so it has full weight wherever this tile
    has none. Measured on random models this halves to quarters the tiled-vs-whole error of a
    plain linear ramp over the whole overlap. Weights never reach 0, so every pixel has some.
    """
    n = (end - start) * scale
    w = np.ones(n, np.float32)
    ramp_len = min(overlap * scale, n)
    if ramp_len:
        t = (np.arange(ramp_len, dtype=np.float32) + 0.5) / ramp_len
        ramp = np.clip((t - 0.25) / 0.5, 1e-3, 1.0)
        if start > 0:
            w[:ramp_len] = np.minimum(w[:ramp_len], ramp)
        if end < length:
            w[n - ramp_len:] = np.minimum(w[n - ramp_len:], ramp[::-1])
    return w


def to_uint8(arr: np.ndarray) -> np.ndarray:
    return np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)


def run_tiled(fn, image: np.ndarray, scale: int, tile: int, overlap: int) -> np.ndarray:
    """Apply `fn` (float32 HxWxC in [0, 1] -> float32 (H*scale)x(W*scale)xC) tile by tile; uint8 out.

    The weights are separable and the tiles form a grid, so the weight sum at (y, x) is
    sum_y(y) * sum_x(x): no full-size weight buffer. Only the band of output rows that tiles still
    write to is kept in float; finished rows go to the uint8 result at once.
    """
    h, w, c = image.shape
    xs, ys = tile_spans(w, tile, overlap), tile_spans(h, tile, overlap)
    if len(xs) == len(ys) == 1:  # one tile: nothing to blend
        return to_uint8(fn(image))
    wx = [feather(a, b, w, overlap, scale) for a, b in xs]
    wy = [feather(a, b, h, overlap, scale) for a, b in ys]
    sum_x = np.zeros(w * scale, np.float32)
    for (a, b), weights in zip(xs, wx):
        sum_x[a * scale:b * scale] += weights
    sum_y = np.zeros(h * scale, np.float32)
    for (a, b), weights in zip(ys, wy):
        sum_y[a * scale:b * scale] += weights

    out = np.empty((h * scale, w * scale, c), np.uint8)
    band_h = max(b - a for a, b in ys) * scale  # one row of tiles; later rows reuse it
    band = np.zeros((band_h, w * scale, c), np.float32)
    band_start = 0  # output row of band[0]: always the current tile row's first row
    for j, (y0, y1) in enumerate(ys):
        for (x0, x1), weights_x in zip(xs, wx):
            piece = fn(image[y0:y1, x0:x1])
            if piece.shape != ((y1 - y0) * scale, (x1 - x0) * scale, c):
                raise UserError(f"The upscale model returned a {piece.shape[1]}x{piece.shape[0]} tile "
                                f"where {(x1 - x0) * scale}x{(y1 - y0) * scale} was expected.")
            if not piece.flags.writeable:
                piece = piece.copy()
            piece *= wy[j][:, None, None] * weights_x[None, :, None]
            r0 = y0 * scale - band_start
            band[r0:r0 + piece.shape[0], x0 * scale:x1 * scale] += piece
        done = ys[j + 1][0] * scale if j + 1 < len(ys) else h * scale
        n = done - band_start
        rows = band[:n]  # finished: no later tile reaches them; normalised and quantised in place
        rows /= sum_y[band_start:done, None, None] * sum_x[None, :, None]
        rows *= 255.0
        rows += 0.5
        np.clip(rows, 0, 255, out=rows)
        out[band_start:done] = rows
        band[: band_h - n] = band[n:]  # the overlap rows the next tile row adds to
        band[band_h - n:] = 0
        band_start = done
    return out


# --- upscalers ---------------------------------------------------------------------------------


class NearestUpscaler:
    """Integer nearest-neighbour enlargement: every pixel becomes an N x N block. For pixel art."""

    name = NEAREST
    scale = 1  # no native factor; `settings.scale` must say how much

    def upscale(self, image: Image.Image, settings: UpscaleSettings | None = None) -> Image.Image:
        settings = settings or UpscaleSettings()
        settings.check()
        factor = settings.scale
        if factor is None:
            raise UserError("The nearest upscaler has no scale of its own; give one with --scale N.")
        if float(factor) != int(factor) or factor < 1:
            raise UserError(f"Nearest-neighbour upscaling of pixel art needs a whole factor (2, 3, 4…); got {factor:g}.")
        factor = int(factor)
        size = output_size(image.size, factor)
        return image.resize(size, Image.Resampling.NEAREST)


class ModelUpscaler:
    """A loaded spandrel image model on one device, in the best precision it allows there."""

    def __init__(self, descriptor, name: str, device, dtype):
        self.descriptor = descriptor
        self.name = name
        self.device = device
        self.dtype = dtype
        self.scale = int(descriptor.scale)
        self._lock = threading.Lock()  # one image at a time per loaded model

    @property
    def architecture(self) -> str:
        return self.descriptor.architecture.name

    def upscale(self, image: Image.Image, settings: UpscaleSettings | None = None) -> Image.Image:
        settings = settings or UpscaleSettings()
        settings.check()
        factor = float(settings.scale or self.scale)
        target = output_size(image.size, factor)
        rgb, alpha = split_alpha(image)
        with self._lock:
            rgb_out = resize_to(self._passes(rgb, target, settings), target)
            alpha_out = None
            if alpha is not None:
                grey = np.repeat(alpha[..., None], 3, axis=2)
                up = self._passes(grey, target, settings).mean(axis=2).round().astype(np.uint8)
                alpha_out = finish_alpha(resize_to(up, target), alpha)
        return merge(rgb_out, alpha_out)

    def _passes(self, arr: np.ndarray, target: tuple[int, int], settings: UpscaleSettings) -> np.ndarray:
        """Model passes until the image reaches the target size (A1111: at most 3); a x1 model runs once."""
        for i in range(MAX_PASSES):
            if i and (arr.shape[1] >= target[0] and arr.shape[0] >= target[1]):
                break
            output_size((arr.shape[1], arr.shape[0]), self.scale)  # the pass itself must fit too
            arr = self.run_model(arr, settings.tile, settings.overlap)
            if self.scale == 1:
                break
        return arr

    def run_model(self, arr: np.ndarray, tile: int, overlap: int) -> np.ndarray:
        """One model pass over a uint8 HxWx3 image, tiled; halves the tile when the GPU runs out of memory."""
        import torch

        from asset_studio.engine.loader import first_line

        from spandrel import ModelTiling

        if self.descriptor.tiling == ModelTiling.INTERNAL:
            tile = 0  # the model tiles internally; outside tiles would only add seams
        image = arr.astype(np.float32) / 255.0
        while True:
            try:
                return run_tiled(self._tile_fn, image, self.scale, tile, min(overlap, tile // 2) if tile else 0)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                smaller = (tile or max(arr.shape[:2])) // 2
                if smaller < MIN_TILE * 2:
                    raise UserError(f"The GPU ran out of memory upscaling with {self.name} even in small tiles; "
                                    "use --device cpu or a smaller model.") from None
                tile = smaller
            except RuntimeError as exc:
                raise UserError(f"The upscale model {self.name} failed: {first_line(exc)}") from exc

    def _tile_fn(self, tile: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))[None]
        x = x.to(self.device, self.dtype)
        if self.descriptor.input_channels == 1:  # a grey model sees each channel alone
            y = torch.cat([self.descriptor(x[:, i:i + 1]) for i in range(x.shape[1])], dim=1)
        else:
            y = self.descriptor(x)
        return y[0].float().cpu().numpy().transpose(1, 2, 0)


# --- loading -----------------------------------------------------------------------------------


def resolve_upscaler(ref: str) -> Path:
    """The .safetensors file of a path or of a downloaded catalog upscaler, or one sentence why not."""
    ref = str(ref or "").strip()
    if not ref:
        raise UserError("No upscale model was given; pass a .safetensors file, a catalog id or 'nearest'.")
    path = Path(ref).expanduser()
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise UserError(pickle_refusal(path))
    if path.is_file():
        if suffix != ".safetensors":
            raise UserError(f"{path.name} is not an upscale model; use a .safetensors file.")
        return path.resolve()
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the upscale model's .safetensors file.")
    cached = catalog_upscaler_file(ref)
    if cached is not None:
        return cached
    raise UserError(f"The upscale model {ref} was not found.")


def catalog_upscaler_file(entry_id: str) -> Path | None:
    """The cached file of a catalog upscaler (`asset-studio models download ID`), offline; None if
    `entry_id` names no upscaler in the catalog."""
    from asset_studio.core.models import load_catalog

    entry = next((e for e in load_catalog() if e.kind == "upscaler" and entry_id in (e.id, e.name)), None)
    if entry is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    filename = entry.allow_patterns[0] if entry.allow_patterns else ""
    found = try_to_load_from_cache(entry.repo, filename) if filename else None
    if not isinstance(found, str):
        raise UserError(f"The upscaler {entry.id} is not downloaded yet; run `asset-studio models download {entry.id}`.")
    return Path(found)


def pick_dtype(descriptor, device, wanted):
    """Half precision only on CUDA and only where the architecture supports it (spandrel says which);
    a model that overflows in fp16 may still run in bf16, which keeps fp32's range."""
    import torch

    if device.type != "cuda" or wanted == torch.float32:
        return torch.float32
    if wanted == torch.float16 and descriptor.supports_half:
        return torch.float16
    if descriptor.supports_bfloat16 and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_upscaler(path: Path, device=None, dtype=None) -> ModelUpscaler:
    """Load a checked .safetensors file with spandrel; any failure becomes one sentence."""
    from asset_studio.core.safetensors_header import read_header_file
    from asset_studio.engine.device import choose_device
    from asset_studio.engine.loader import first_line, model_display_name

    path = Path(path)
    name = model_display_name(str(path))
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise UserError(f"{path.name} is larger than any upscale model ({MAX_MODEL_BYTES // 1024**3} GB).")
    read_header_file(path)  # a broken or hostile header is refused before torch reads the file
    dev, wanted = choose_device(None if device is None else str(device), dtype)

    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    try:
        descriptor = ModelLoader("cpu").load_from_file(str(path))
    except UnsupportedModelError:
        raise UserError(
            f"{path.name} is not an upscale model architecture Asset Studio knows (ESRGAN, Real-ESRGAN, "
            "SwinIR, HAT, DAT, Compact, SPAN and the others spandrel reads)."
        ) from None
    except Exception as exc:  # safetensors or an architecture's loader: a mismatched file
        raise UserError(f"Could not load the upscale model {name}: {first_line(exc)}") from exc
    if not isinstance(descriptor, ImageModelDescriptor):
        raise UserError(f"{path.name} is an inpainting model ({descriptor.architecture.name}), not an upscaler.")
    if descriptor.purpose == "FaceSR":
        raise UserError(f"{path.name} is a face restoration model ({descriptor.architecture.name}), not an upscaler.")
    if (descriptor.input_channels, descriptor.output_channels) not in ((3, 3), (1, 1)):
        raise UserError(f"{path.name} maps {descriptor.input_channels} channels to {descriptor.output_channels}; "
                        "only RGB and grey upscale models are supported.")
    chosen = pick_dtype(descriptor, dev, wanted)
    descriptor.to(dev).to(chosen).eval()
    return ModelUpscaler(descriptor, name, dev, chosen)


class UpscalerCache:
    """Recently used upscale models stay loaded (they are small); a re-saved file is reloaded."""

    def __init__(self, capacity: int = CACHE_CAPACITY):
        self.capacity = capacity
        self._entries: OrderedDict[tuple, ModelUpscaler] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, ref: str, device=None, dtype=None):
        if str(ref).strip().lower() == NEAREST:
            return NearestUpscaler()
        from asset_studio.engine.device import choose_device

        path = resolve_upscaler(ref)
        st = path.stat()
        dev, wanted = choose_device(None if device is None else str(device), dtype)  # a name or a torch.device
        key = (str(path), st.st_mtime_ns, st.st_size, str(dev), str(wanted))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            while len(self._entries) >= self.capacity:
                self._entries.popitem(last=False)
            upscaler = load_upscaler(path, dev, wanted)
            self._entries[key] = upscaler
            self.loads += 1
            return upscaler

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_SHARED = UpscalerCache()


def get_upscaler(ref: str, device=None, dtype=None):
    """An upscaler for a .safetensors path, a downloaded catalog id, or 'nearest'; cached."""
    return _SHARED.get(ref, device, dtype)


def upscale_image(image: Image.Image, ref: str, settings: UpscaleSettings | None = None, device=None) -> Image.Image:
    """One call for the passes: upscale `image` with the model `ref` (or 'nearest')."""
    return get_upscaler(ref, device).upscale(image, settings)
