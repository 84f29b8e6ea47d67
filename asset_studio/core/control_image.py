"""Control images for ControlNet, rendered from a Layout (or, model-free, from a reference picture).

Types that suit text-bearing assets:

- ``lineart``: thin light lines on black: glyph contours, shape outlines, edges of placed images.
- ``scribble``: the same lines, thick, as the scribble ControlNets expect.
- ``canny``: OpenCV Canny edges of the filled render (low / high thresholds).
- ``mask``: the elements' filled coverage, white on black.
- ``brightness``: the grey levels of the filled render (for brightness / "QR monster" ControlNets).

Upper elements hide the lines of lower ones, as in the filled render. Every option has the
default artists know from the A1111 / ComfyUI preprocessors. Deterministic: the same layout
and options give the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from asset_studio.core.layout import Layout, ShapeElement, TextElement, ImageElement
from asset_studio.core.layout_render import Placed, element_layer, place_element, place_elements, render_layout
from asset_studio.errors import UserError

# Drawn from a layout / made from a picture without a model: the vocabulary lives in core/controls.
from asset_studio.core.controls import LAYOUT_TYPES as CONTROL_TYPES, REFERENCE_TYPES_NO_MODEL  # noqa: E402


def default_stroke_width(control_type: str, width: int, height: int) -> int:
    side = min(width, height)
    if control_type == "scribble":
        return max(3, round(side / 96))
    return max(1, round(side / 256))


def render_control(layout: Layout, control_type: str = "lineart", *, size: tuple[int, int] | None = None,
                   stroke_width: int | None = None, low_threshold: int = 100, high_threshold: int = 200,
                   invert: bool = False) -> Image.Image:
    """The control image (RGB) of LAYOUT for CONTROL_TYPE, at the layout's size or SIZE."""
    if control_type not in CONTROL_TYPES:
        raise UserError(f"Unknown control type {control_type!r}; expected one of {', '.join(CONTROL_TYPES)}.")
    width, height = size or (layout.width, layout.height)
    if stroke_width is None:
        stroke_width = default_stroke_width(control_type, width, height)
    if not 1 <= stroke_width <= 64:
        raise UserError(f"The stroke width {stroke_width} is outside 1-64.")
    if control_type in ("lineart", "scribble"):
        out = _lines(layout, (width, height), stroke_width)
    elif control_type == "canny":
        out = canny(render_layout(layout, (width, height)).convert("RGB"), low_threshold, high_threshold)
        if stroke_width > 1:
            out = _dilate(out, stroke_width - 1)
    elif control_type == "mask":
        out = _coverage(place_elements(layout, (width, height)), width, height)
    else:
        out = np.asarray(render_layout(layout, (width, height)).convert("L"))
    if invert:
        out = 255 - out
    return Image.fromarray(out.astype(np.uint8), "L").convert("RGB")


# ---- building blocks ------------------------------------------------------------------------

def canny(image: Image.Image, low_threshold: int = 100, high_threshold: int = 200) -> np.ndarray:
    import cv2

    if not (0 <= low_threshold <= 255 and 0 <= high_threshold <= 255 and low_threshold <= high_threshold):
        raise UserError("Canny thresholds must be 0-255 with low <= high.")
    gray = np.asarray(image.convert("L"))
    return cv2.Canny(gray, int(low_threshold), int(high_threshold))


def _kernel(radius: int):
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    return cv2.dilate(mask, _kernel(radius)) if radius > 0 else mask


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    return cv2.erode(mask, _kernel(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0) if radius > 0 else mask


def contour(mask: np.ndarray, stroke_width: int) -> np.ndarray:
    """A line of about STROKE_WIDTH pixels along the boundary of a binary mask (uint8 0/255)."""
    outer, inner = stroke_width // 2, stroke_width - stroke_width // 2
    return np.where((_dilate(mask, outer) > 0) & (_erode(mask, inner) == 0), 255, 0).astype(np.uint8)


def _alpha(placed: Placed, width: int, height: int) -> np.ndarray:
    return np.asarray(element_layer(placed, width, height).getchannel("A"))


def _coverage(placed, width: int, height: int) -> np.ndarray:
    out = np.zeros((height, width), np.uint8)
    for p in placed:
        out = np.maximum(out, _alpha(p, width, height))
    return out


def _lines(layout: Layout, size: tuple[int, int], stroke_width: int) -> np.ndarray:
    width, height = size
    sx, sy = width / layout.width, height / layout.height
    lines = np.zeros((height, width), np.uint8)
    for element in layout.elements:
        placed = place_element(element, layout, sx, sy)
        filled = np.where(_alpha(placed, width, height) >= 128, 255, 0).astype(np.uint8)
        # What this element covers hides the lines drawn so far beneath it.
        lines[filled > 0] = 0
        lines = np.maximum(lines, _element_lines(element, layout, placed, filled, size, stroke_width))
    return lines


def _element_lines(element, layout: Layout, placed: Placed, filled: np.ndarray, size, stroke_width: int):
    width, height = size
    if isinstance(element, ShapeElement):
        # Draw the shape's own outline at the stroke width: one line, not the two edges of its stroke.
        k = (width / layout.width * height / layout.height) ** 0.5
        outline = ShapeElement(kind=element.kind, box=element.box, points=element.points, fill=None,
                               stroke="#ffffff", stroke_width=stroke_width / k, radius=element.radius,
                               rotation=element.rotation)
        line_layer = place_element(outline, layout, width / layout.width, height / layout.height)
        return np.where(_alpha(line_layer, width, height) >= 128, 255, 0).astype(np.uint8)
    if isinstance(element, TextElement):
        return contour(filled, stroke_width)
    if isinstance(element, ImageElement):
        rgb = Image.new("RGB", (width, height))
        rgb.paste(element_layer(placed, width, height))
        edges = _dilate(canny(rgb, 50, 150), stroke_width // 2)
        return np.maximum(np.where(filled > 0, edges, 0).astype(np.uint8), contour(filled, stroke_width))
    raise UserError(f"Cannot draw lines for {type(element).__name__}.")  # pragma: no cover


# ---- reference pictures (no model needed) ---------------------------------------------------

def control_from_reference(image: Image.Image, control_type: str, *, low_threshold: int = 100,
                           high_threshold: int = 200, invert: bool = False) -> Image.Image:
    """Canny or model-free line art of a reference picture (RGB, same size).

    The model-based types (pose, softedge, depth, lineart_anime) live in
    asset_studio.engine.annotators, as they need torch and annotator weights.
    """
    if control_type == "canny":
        out = canny(image.convert("RGB"), low_threshold, high_threshold)
    elif control_type == "lineart":
        out = lineart_standard(image)
    else:
        raise UserError(
            f"The control type {control_type!r} needs an annotator model; without one only "
            f"{' and '.join(REFERENCE_TYPES_NO_MODEL)} work."
        )
    if invert:
        out = 255 - out
    return Image.fromarray(out, "L").convert("RGB")


def lineart_standard(image: Image.Image, sigma: float = 6.0, threshold: int = 8) -> np.ndarray:
    """Line art without a model: how much darker each pixel is than its blurred surroundings.

    The same algorithm as controlnet_aux's LineartStandardDetector (which imports torch, so
    core cannot use it): dark strokes on light paper become light lines on black.
    """
    import cv2

    x = np.asarray(image.convert("RGB"), dtype=np.float32)
    blurred = cv2.GaussianBlur(x, (0, 0), sigma)
    intensity = np.min(blurred - x, axis=2).clip(0, 255)
    strong = intensity[intensity > threshold]
    intensity /= max(16.0, float(np.median(strong)) if strong.size else 16.0)
    return (intensity * 127).clip(0, 255).astype(np.uint8)
