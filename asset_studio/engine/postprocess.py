"""Finishing: the step between a generated image and a sprite: crisp text, cut out, pixel grid,
palette, trim. A job's `finishing` (core/job.Finishing, filled from the style pack, the template
and the artist by prepare()) says what to do; the service saves the result beside the raw image.
"""

from __future__ import annotations

from PIL import Image

from asset_studio.core.job import Finishing
from asset_studio.errors import UserError

def check_ready(spec: Finishing) -> None:
    """Fail before generation, not after it, when the cut-out needs a model file that is missing."""
    if not spec.remove_background or spec.method == "key":
        return
    from asset_studio.engine.background import model_file
    from asset_studio.engine.rembg_models import download_command

    if model_file(spec.bg_model) is None:
        raise UserError(
            f"Removing the background needs rembg's {spec.bg_model}.onnx, which is not installed: "
            f"download it with `{download_command(spec.bg_model)}` (or set U2NET_HOME to a folder holding it), "
            "or generate with --no-postprocess."
        )


def apply_postprocess(image: Image.Image, spec: Finishing) -> Image.Image:
    """The finished sprite (RGBA) from a generated image."""
    from asset_studio.core.pixelart import hard_alpha, reduce_palette, snap_to_grid

    sprite = image.convert("RGBA")
    if spec.crisp_text:
        # Text goes on before the cut-out so its outline stays part of the sprite.
        from asset_studio.core.crisp_text import apply_crisp_text
        from asset_studio.core.layout import load_layout

        sprite = apply_crisp_text(sprite, load_layout(spec.crisp_text)).convert("RGBA")
    pixel_art = spec.pixel_grid > 0
    if spec.remove_background:
        from asset_studio.engine.background import RemovalOptions, remove_background

        options = RemovalOptions(method=spec.method, model=spec.bg_model, hard_alpha=pixel_art)
        sprite = remove_background(sprite, options)
    if pixel_art:
        sprite = snap_to_grid(sprite, spec.pixel_grid)
    if spec.palette_size > 0:
        sprite = reduce_palette(sprite, spec.palette_size)
    if pixel_art:
        sprite = hard_alpha(sprite)
    if spec.trim:
        box = sprite.getchannel("A").getbbox()
        if box:  # an empty cut-out stays whole rather than becoming a 0x0 file
            sprite = sprite.crop(box)
    return sprite
