"""Where the tiled upscale redraws, and how each redrawn piece goes back: pure geometry and masks.

The tiled upscale (Ultimate SD Upscale's "linear" mode) enlarges a picture and then redraws it
piece by piece with img2img, so a 4096-pixel background is made of 512-pixel redraws the model is
good at. `redraws(width, height, settings)` lists the pieces in the order they run: first the tile
grid, then (optional) the seams pass over the joins. Each `Redraw` names

- `rect`: the pixels it owns (what is pasted at full strength);
- `box`: the crop the model sees, `rect` plus `padding` of context on every side, shifted inward at
  the picture's edges so every crop has the same size (the model's own) whenever the picture allows;
- a mask (`mask()`, in box coordinates): 1 inside `rect`, fading to 0 over `mask_blur * 2` pixels
  outward on sides that meet other pieces, so a piece covers the edge of its earlier neighbours
  smoothly and no hard line shows. Sides on the picture's border do not fade.

Pieces run in order, each cropping the picture as the earlier ones left it, so a tile sees the
redrawn neighbours it joins (as in Ultimate SD Upscale). `paste()` lays one redrawn crop in.
Seams modes: "band" redraws a strip `seams_width` wide along every join; "half-tile" redraws
tiles centred on the joins with a mask that ramps up to the join and down again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Redraw:
    rect: tuple[int, int, int, int]  # x0, y0, x1, y1 owned
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 cropped (rect + context)
    kind: str  # "tile", "band" or "half-tile"
    feather: int  # pixels over which the mask fades outside rect
    border: tuple[bool, bool, bool, bool]  # rect touches the picture's left, top, right, bottom edge
    ramp_axis: str = ""  # half-tile: "x" (a vertical join) or "y" (a horizontal one)

    @property
    def size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]

    def mask(self) -> np.ndarray:
        """The paste weight of each pixel of the box (float32, 0..1)."""
        bx0, by0, bx1, by1 = self.box
        x0, y0, x1, y1 = (self.rect[0] - bx0, self.rect[1] - by0, self.rect[2] - bx0, self.rect[3] - by0)
        w, h = bx1 - bx0, by1 - by0
        wx = _axis_weights(w, x0, x1, self.feather, self.border[0], self.border[2])
        wy = _axis_weights(h, y0, y1, self.feather, self.border[1], self.border[3])
        if self.ramp_axis == "x":
            wx = wx * _tent(w, x0, x1)
        elif self.ramp_axis == "y":
            wy = wy * _tent(h, y0, y1)
        return np.outer(wy, wx).astype(np.float32)


def _axis_weights(n: int, a: int, b: int, feather: int, open_start: bool, open_end: bool) -> np.ndarray:
    """1 on [a, b); outside it a smooth fall to 0 over FEATHER pixels (a Gaussian-blurred step's
    shape: a cosine ease), except on a side at the picture's border, which stays 1."""
    w = np.zeros(n, np.float32)
    w[a:b] = 1.0
    idx = np.arange(n, dtype=np.float32)
    if open_start:
        w[:a] = 1.0
    elif feather:
        d = (a - idx[:a]) / feather  # 1 px outside → 1/feather
        w[:a] = np.where(d < 1, 0.5 + 0.5 * np.cos(np.pi * d), 0.0)
    if open_end:
        w[b:] = 1.0
    elif feather:
        d = (idx[b:] - (b - 1)) / feather
        w[b:] = np.where(d < 1, 0.5 + 0.5 * np.cos(np.pi * d), 0.0)
    return w


def _tent(n: int, a: int, b: int) -> np.ndarray:
    """0 at the rect's sides rising linearly to 1 at its middle (the join a half tile is centred on)."""
    idx = np.arange(n, dtype=np.float32) + 0.5
    mid, half = (a + b) / 2, max(1.0, (b - a) / 2)
    return np.clip(1 - np.abs(idx - mid) / half, 0, 1).astype(np.float32)


def context_span(a: int, b: int, padding: int, want: int, length: int) -> tuple[int, int]:
    """A crop of WANT pixels (at most the picture's LENGTH) around [a, b) with PADDING of context,
    moved inward at the picture's edges rather than cut, so crops keep one size."""
    want = min(length, max(want, b - a + 2 * padding))
    start = (a + b) // 2 - want // 2
    start = max(0, min(start, length - want))
    return start, start + want


def redraws(width: int, height: int, tile: int, padding: int, mask_blur: int, seams: str = "none",
            seams_width: int = 64) -> list[Redraw]:
    """Every piece the tiled upscale redraws, in order: the tiles row by row, then the seams pass."""
    cols, rows = math.ceil(width / tile), math.ceil(height / tile)
    want = -(-(tile + 2 * padding) // 8) * 8  # crops the model takes as they are: no resampling
    feather = 2 * mask_blur

    def piece(x0, y0, x1, y1, kind, ramp=""):
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        bx = context_span(x0, x1, padding, want, width)
        by = context_span(y0, y1, padding, want, height)
        border = (x0 == 0, y0 == 0, x1 == width, y1 == height)
        return Redraw((x0, y0, x1, y1), (bx[0], by[0], bx[1], by[1]), kind, feather, border, ramp)

    out = [piece(c * tile, r * tile, (c + 1) * tile, (r + 1) * tile, "tile") for r in range(rows) for c in range(cols)]
    if seams == "band":
        half = seams_width // 2
        out += [piece(c * tile - half, r * tile, c * tile + half, (r + 1) * tile, "band")
                for c in range(1, cols) for r in range(rows)]
        out += [piece(c * tile, r * tile - half, (c + 1) * tile, r * tile + half, "band")
                for r in range(1, rows) for c in range(cols)]
    elif seams == "half-tile":
        half = tile // 2
        out += [piece(c * tile - half, r * tile, c * tile + half, (r + 1) * tile, "half-tile", "x")
                for c in range(1, cols) for r in range(rows)]
        out += [piece(c * tile, r * tile - half, (c + 1) * tile, r * tile + half, "half-tile", "y")
                for r in range(1, rows) for c in range(cols)]
    return out


def process_size(size: tuple[int, int]) -> tuple[int, int]:
    """The crop's size as the model takes it: each side up to a multiple of 8."""
    return tuple(max(8, math.ceil(s / 8) * 8) for s in size)


def crop(picture: np.ndarray, redraw: Redraw) -> Image.Image:
    """The box of PICTURE (uint8 HxWx3), at the size the model takes."""
    x0, y0, x1, y1 = redraw.box
    image = Image.fromarray(picture[y0:y1, x0:x1])
    size = process_size(image.size)
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def paste(picture: np.ndarray, redrawn: Image.Image, redraw: Redraw) -> None:
    """Lay REDRAWN (the model's output for REDRAW's box) into PICTURE in place, through its mask."""
    x0, y0, x1, y1 = redraw.box
    size = (x1 - x0, y1 - y0)
    if redrawn.size != size:
        redrawn = redrawn.resize(size, Image.Resampling.LANCZOS)
    new = np.asarray(redrawn.convert("RGB"), dtype=np.float32)
    old = picture[y0:y1, x0:x1].astype(np.float32)
    m = redraw.mask()[..., None]
    picture[y0:y1, x0:x1] = np.clip(new * m + old * (1 - m) + 0.5, 0, 255).astype(np.uint8)

