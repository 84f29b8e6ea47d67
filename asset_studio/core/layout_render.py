"""Render a Layout to pixels with Pillow: deterministic, the same file gives the same pixels.

Each element is drawn on its own tile centred on its box, rotated about that centre, and
composited in z-order. The control images (core/control_image.py) and the crisp-text pass
(core/crisp_text.py) are built from these per-element layers, so they agree with the
filled render exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from PIL import Image, ImageColor, ImageDraw

from asset_studio.core.fonts import get_font, get_font_file, text_runs, weight_value
from asset_studio.core.layout import (ImageElement, Layout, ShapeElement, TextElement, element_bounds,
                                      image_file)
from asset_studio.errors import UserError

MIN_TILE_LIMIT = 4096 * 4096


@dataclass
class Placed:
    """One element drawn on a tile, and where the tile's top-left sits on the canvas."""

    element: object
    tile: Image.Image  # RGBA
    x: int
    y: int


def rgba(color: str | None) -> tuple[int, int, int, int]:
    if color is None:
        return (0, 0, 0, 0)
    return ImageColor.getcolor(color, "RGBA")


def canvas_size(layout: Layout, size: tuple[int, int] | None) -> tuple[int, int]:
    return size if size else (layout.width, layout.height)


def render_layout(layout: Layout, size: tuple[int, int] | None = None, background: bool = True,
                  only: type | tuple | None = None) -> Image.Image:
    """The filled render as RGBA; SIZE rescales the whole layout, ONLY keeps those element types."""
    width, height = canvas_size(layout, size)
    canvas = Image.new("RGBA", (width, height), rgba(layout.background) if background else (0, 0, 0, 0))
    for placed in place_elements(layout, size, only):
        _composite(canvas, placed)
    return canvas


def _composite(canvas: Image.Image, placed: Placed) -> None:
    """Alpha-composite a tile that may hang over the canvas edges."""
    x0, y0 = max(placed.x, 0), max(placed.y, 0)
    x1 = min(placed.x + placed.tile.width, canvas.width)
    y1 = min(placed.y + placed.tile.height, canvas.height)
    if x1 <= x0 or y1 <= y0:
        return
    crop = placed.tile.crop((x0 - placed.x, y0 - placed.y, x1 - placed.x, y1 - placed.y))
    canvas.alpha_composite(crop, dest=(x0, y0))


def element_layer(placed: Placed, width: int, height: int) -> Image.Image:
    """A placed tile on a transparent canvas-sized RGBA image."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    _composite(layer, placed)
    return layer


def place_elements(layout: Layout, size: tuple[int, int] | None = None, only=None) -> Iterator[Placed]:
    """Every element (or those of type ONLY) drawn on its own tile, in z-order.

    A generator: one tile at a time is alive, so a layout of many large elements never holds
    all their tiles in memory at once.
    """
    width, height = canvas_size(layout, size)
    sx, sy = width / layout.width, height / layout.height
    for element in layout.elements:
        if only is not None and not isinstance(element, only):
            continue
        yield place_element(element, layout, sx, sy)


def tile_pixel_limit(width: float, height: float) -> int:
    """The most pixels one element's tile may have on a WIDTH x HEIGHT canvas.

    Layouts come from strangers: text of 2000 characters at size 2048, or a box far larger
    than the canvas, would otherwise ask for tiles of many gigabytes. Twice the canvas on each
    side plus a margin (at least 4096x4096) leaves room for anything that can still be seen.
    """
    return max((2 * math.ceil(width) + 1024) * (2 * math.ceil(height) + 1024), MIN_TILE_LIMIT)


def _check_tile(w: int, h: int, element, limit: int) -> None:
    if w * h > limit:
        kind = getattr(element, "type", "an")
        hint = " (shorten the text or lower its size)" if isinstance(element, TextElement) else ""
        raise UserError(
            f"A {kind} element of the layout is too large to render: {w}x{h} pixels, more than "
            f"{limit:,} pixels{hint}."
        )


def place_element(element, layout: Layout, sx: float = 1.0, sy: float = 1.0) -> Placed:
    box = element_bounds(element)
    cx, cy = (box.x + box.w / 2) * sx, (box.y + box.h / 2) * sy
    limit = tile_pixel_limit(layout.width * sx, layout.height * sy)
    if isinstance(element, TextElement):
        tile = _text_tile(element, sx, sy, limit)
    elif isinstance(element, ShapeElement):
        tile = _shape_tile(element, sx, sy, limit)
    elif isinstance(element, ImageElement):
        tile = _image_tile(element, layout, sx, sy, limit)
    else:  # pragma: no cover - the loader admits no other type
        raise UserError(f"Cannot render an element of type {type(element).__name__}.")
    if element.rotation % 360:
        # PIL rotates counter-clockwise; layouts rotate clockwise like Qt and CSS.
        tile = tile.rotate(-element.rotation, resample=Image.Resampling.BICUBIC, expand=True)
    return Placed(element, tile, round(cx - tile.width / 2), round(cy - tile.height / 2))


def _centred_tile(half_w: float, half_h: float, element, limit: int) -> tuple[Image.Image, float, float]:
    """A transparent tile whose centre is the element's centre; returns it and that centre."""
    w, h = max(1, math.ceil(2 * half_w)), max(1, math.ceil(2 * half_h))
    _check_tile(w, h, element, limit)
    return Image.new("RGBA", (w, h), (0, 0, 0, 0)), w / 2, h / 2


# ---- text -----------------------------------------------------------------------------------

def text_lines_layout(element: TextElement, size: float, spacing: float, line_height: float):
    """Each line's font runs and width, and the block's height, for alignment in the box."""
    weight = weight_value(element.weight)
    primary = get_font(element.font, weight, size)
    lines = []
    for line in element.text.split("\n"):
        runs = [(run, get_font_file(path, size)) for run, path in text_runs(line, element.font, weight)]
        lines.append((runs, line_width(runs, spacing)))
    ascent, descent = primary.getmetrics()
    block_h = (len(lines) - 1) * line_height + ascent + descent
    return lines, block_h, ascent


def line_width(runs, spacing: float) -> float:
    chars = sum(len(run) for run, _ in runs)
    if not chars:
        return 0.0
    if spacing == 0:
        return sum(font.getlength(run) for run, font in runs)
    return sum(font.getlength(ch) for run, font in runs for ch in run) + spacing * (chars - 1)


def _text_tile(element: TextElement, sx: float, sy: float, limit: int) -> Image.Image:
    k = math.sqrt(sx * sy)  # text keeps its proportions when the canvas is stretched
    size = element.size * k
    spacing = element.letter_spacing * k
    outline = int(round(element.outline_width * k))
    line_height = element.size * element.line_spacing * k
    lines, block_h, ascent = text_lines_layout(element, size, spacing, line_height)
    bw, bh = element.box.w * sx, element.box.h * sy
    block_w = max((w for _, w in lines), default=0)
    pad = outline + 2 + size * 0.25  # room for glyphs that overhang their advance
    tile, ox, oy = _centred_tile(max(bw, block_w) / 2 + pad, max(bh, block_h) / 2 + pad, element, limit)
    # Box top-left in tile coordinates; the box is centred on the tile.
    left, top = ox - bw / 2, oy - bh / 2
    if element.valign == "top":
        y = top
    elif element.valign == "bottom":
        y = top + bh - block_h
    else:
        y = top + (bh - block_h) / 2
    draw = ImageDraw.Draw(tile)
    fill, stroke = rgba(element.fill), rgba(element.outline_color)
    for runs, width in lines:
        if element.align == "left":
            x = left
        elif element.align == "right":
            x = left + bw - width
        else:
            x = left + (bw - width) / 2
        _draw_line(draw, x, y + ascent, runs, spacing, fill, outline, stroke)
        y += line_height
    return tile


def _draw_line(draw, x, baseline, runs, spacing, fill, outline, stroke) -> None:
    """Draw font runs on one baseline, so fallback fonts line up with the named one."""
    for run, font in runs:
        kwargs = {"font": font, "fill": fill, "anchor": "ls"}
        if outline > 0:
            kwargs.update(stroke_width=outline, stroke_fill=stroke)
        if spacing == 0:
            draw.text((x, baseline), run, **kwargs)
            x += font.getlength(run)
            continue
        for ch in run:  # letter spacing: one character at a time
            draw.text((x, baseline), ch, **kwargs)
            x += font.getlength(ch) + spacing


# ---- shapes ---------------------------------------------------------------------------------

def _shape_tile(shape: ShapeElement, sx: float, sy: float, limit: int) -> Image.Image:
    box = shape.bounds()
    stroke_w = int(round(shape.stroke_width * math.sqrt(sx * sy))) if shape.stroke else 0
    pad = stroke_w + 2
    bw, bh = box.w * sx, box.h * sy
    tile, ox, oy = _centred_tile(bw / 2 + pad, bh / 2 + pad, shape, limit)
    left, top = ox - bw / 2, oy - bh / 2
    draw = ImageDraw.Draw(tile)
    fill = rgba(shape.fill) if shape.fill else None
    stroke = rgba(shape.stroke) if shape.stroke and stroke_w > 0 else None
    rect = [left, top, left + max(bw - 1, 0), top + max(bh - 1, 0)]
    if shape.kind == "rect":
        draw.rectangle(rect, fill=fill, outline=stroke, width=stroke_w)
    elif shape.kind == "rounded_rect":
        radius = min(shape.radius * math.sqrt(sx * sy), bw / 2, bh / 2)
        draw.rounded_rectangle(rect, radius=radius, fill=fill, outline=stroke, width=stroke_w)
    elif shape.kind == "ellipse":
        draw.ellipse(rect, fill=fill, outline=stroke, width=stroke_w)
    else:
        pts = [(left + (px - box.x) * sx, top + (py - box.y) * sy) for px, py in shape.points]
        if shape.kind == "polygon":
            draw.polygon(pts, fill=fill, outline=stroke, width=max(stroke_w, 1) if stroke else 1)
        else:
            draw.line(pts, fill=stroke, width=stroke_w, joint="curve")
    return tile


# ---- images ---------------------------------------------------------------------------------

def _image_tile(element: ImageElement, layout: Layout, sx: float, sy: float, limit: int) -> Image.Image:
    w, h = max(1, round(element.box.w * sx)), max(1, round(element.box.h * sy))
    _check_tile(w, h, element, limit)  # before decoding anything
    path = image_file(element, layout)
    from asset_studio.core.images import read_image

    picture = read_image(path, "RGBA", max_pixels=8192 * 8192)
    picture = picture.resize((w, h), Image.Resampling.LANCZOS)
    if element.opacity < 1:
        alpha = picture.getchannel("A").point(lambda a: round(a * element.opacity))
        picture.putalpha(alpha)
    return picture
