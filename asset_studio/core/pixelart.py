"""Pixel-art clean-up: snap to a pixel grid, reduce to a palette, hard alpha.

Diffusion models draw "pixel art" as soft, slightly uneven blocks. Snapping samples each block
at its centre (nearest neighbour) down to the intended resolution and scales back up with
nearest neighbour, so every logical pixel becomes one flat square again, at the input's size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from asset_studio.errors import UserError


def hard_alpha(image: Image.Image, threshold: int = 128) -> Image.Image:
    """Alpha becomes 0 or 255: pixel art has no half-covered pixels."""
    rgba = np.array(image.convert("RGBA"))
    rgba[..., 3] = np.where(rgba[..., 3] >= threshold, 255, 0)
    return Image.fromarray(rgba, "RGBA")


def detect_pixel_size(image: Image.Image, max_size: int = 64) -> int:
    """The side of one logical pixel in an upscaled pixel-art image (1 when it is not one).

    Colour changes of pixel art happen only on block boundaries: for each candidate size the
    share of edge strength that falls on one lattice of that period is measured, and the largest
    period that still explains nearly all edges wins.
    """
    px = np.asarray(image.convert("RGBA"), dtype=np.float32)
    px = px[..., :3] * (px[..., 3:] / 255.0)
    col = np.abs(np.diff(px, axis=1)).sum(axis=(0, 2))
    row = np.abs(np.diff(px, axis=0)).sum(axis=(1, 2))
    total = col.sum() + row.sum()
    if total <= 0:
        return 1
    best = 1
    for p in range(2, min(max_size, min(px.shape[:2]) // 2) + 1):
        share = 0.0
        for prof in (col, row):
            pos = np.arange(1, len(prof) + 1)  # the boundary after pixel i sits at i + 1
            share += np.bincount(pos % p, weights=prof, minlength=p).max()
        if share / total >= 0.9:
            best = p
    return best


def snap_to_grid(image: Image.Image, resolution: int | None = None) -> Image.Image:
    """Nearest-neighbour down to ``resolution`` logical pixels on the longer side, then back up.

    ``resolution`` None or 0 detects it from the image.
    """
    image = image.convert("RGBA")
    w, h = image.size
    if not resolution:
        resolution = round(max(w, h) / detect_pixel_size(image))
    if resolution < 1:
        raise UserError("The pixel grid must be at least 1 pixel.")
    if resolution >= max(w, h):
        return image
    scale = resolution / max(w, h)
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(small, Image.Resampling.NEAREST).resize((w, h), Image.Resampling.NEAREST)


def reduce_palette(image: Image.Image, colors: int) -> Image.Image:
    """At most ``colors`` colours (from the visible pixels only), no dithering; alpha is kept."""
    if not 1 <= colors <= 256:
        raise UserError("The palette size must be between 1 and 256 colours.")
    rgba = np.array(image.convert("RGBA"))
    visible = rgba[..., 3] > 0
    if not visible.any():
        return Image.fromarray(rgba, "RGBA")
    # the palette comes from what is seen, so the background's colours take no slots
    sample = Image.fromarray(rgba[visible][None, :, :3], "RGB")
    palette = sample.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    mapped = Image.fromarray(rgba[..., :3], "RGB").quantize(palette=palette, dither=Image.Dither.NONE)
    rgba[..., :3] = np.asarray(mapped.convert("RGB"))
    return Image.fromarray(rgba, "RGBA")
