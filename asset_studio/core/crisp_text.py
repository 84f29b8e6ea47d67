"""The crisp-text pass: draw a layout's exact text over a generated image.

ControlNet makes the model follow the letters' shapes, but a model can still smudge a stroke.
For assets where legibility must be perfect (UI buttons, shop signs), this pass draws the
layout's own text on top, scaled to the image, with an outline and a soft drop shadow so it
sits on any generated background.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image, ImageChops, ImageFilter

from asset_studio.core.layout import Layout, TextElement
from asset_studio.core.layout_render import render_layout
from asset_studio.errors import UserError


@dataclass
class CrispTextOptions:
    outline_width: float | None = None  # layout pixels; None keeps each element's own, or size/16 when 0
    outline_color: str | None = None  # None keeps each element's own
    shadow_offset: tuple[float, float] = (2.0, 3.0)  # layout pixels, right and down
    shadow_blur: float = 2.0
    shadow_opacity: float = 0.6  # 0 turns the shadow off


def apply_crisp_text(image: Image.Image, layout: Layout, options: CrispTextOptions | None = None) -> Image.Image:
    """IMAGE with LAYOUT's text drawn on top (same mode as IMAGE)."""
    options = options or CrispTextOptions()
    if not 0 <= options.shadow_opacity <= 1:
        raise UserError("The shadow opacity must be between 0 and 1.")
    texts = [e for e in layout.elements if isinstance(e, TextElement)]
    if not texts:
        raise UserError("The layout has no text to draw.")
    styled = Layout(layout.width, layout.height, layout.background,
                    [_styled(e, options) for e in texts], base_dir=layout.base_dir)
    size = image.size
    text_layer = render_layout(styled, size, background=False)
    base = image.convert("RGBA")
    if options.shadow_opacity > 0:
        base.alpha_composite(_shadow(text_layer, layout, size, options))
    base.alpha_composite(text_layer)
    return base if image.mode == "RGBA" else base.convert(image.mode)


def _styled(element: TextElement, options: CrispTextOptions) -> TextElement:
    width = options.outline_width
    if width is None:
        width = element.outline_width or max(1.0, element.size / 16)
    return replace(element, outline_width=width, outline_color=options.outline_color or element.outline_color)


def _shadow(text_layer: Image.Image, layout: Layout, size: tuple[int, int], options: CrispTextOptions) -> Image.Image:
    sx, sy = size[0] / layout.width, size[1] / layout.height
    dx, dy = round(options.shadow_offset[0] * sx), round(options.shadow_offset[1] * sy)
    alpha = ImageChops.offset(text_layer.getchannel("A"), dx, dy)
    # ImageChops.offset wraps around; blank the strips that came in from the other side.
    if dx > 0:
        alpha.paste(0, (0, 0, dx, size[1]))
    elif dx < 0:
        alpha.paste(0, (size[0] + dx, 0, size[0], size[1]))
    if dy > 0:
        alpha.paste(0, (0, 0, size[0], dy))
    elif dy < 0:
        alpha.paste(0, (0, size[1] + dy, size[0], size[1]))
    radius = options.shadow_blur * (sx * sy) ** 0.5
    if radius > 0:
        alpha = alpha.filter(ImageFilter.GaussianBlur(radius))
    alpha = alpha.point(lambda a: round(a * options.shadow_opacity))
    shadow = Image.new("RGBA", size, (0, 0, 0, 0))
    shadow.putalpha(alpha)
    return shadow
