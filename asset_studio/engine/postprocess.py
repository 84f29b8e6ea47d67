"""The step between a generated image and a sprite: cut out, snap to the pixel grid, trim.

A job's ``postprocess`` dict (filled from the style pack and the template by compose()) says
what to do. The raw image is always kept; the sprite is saved beside it in ``sprites/`` under
the same file name, with the same job inside, so `asset-studio sheet OUT/sprites` packs a set
as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from asset_studio.core.job import GenerationJob, checked
from asset_studio.errors import UserError

SPRITES_DIR = "sprites"


@dataclass
class PostProcessSpec:
    remove_background: bool = False
    pixel_grid: int = 0  # logical pixels on the longer side; 0 = off
    palette_size: int = 0  # 0 = off
    trim: bool = False
    method: str = "auto"  # background method: auto | model | key
    model: str = "u2netp"
    crisp_text: str = ""  # a layout file whose exact text is drawn over the image first

    def __post_init__(self) -> None:
        if self.pixel_grid < 0 or self.palette_size < 0 or self.palette_size > 256:
            raise UserError("Post-processing needs a pixel grid of 0 or more and a palette of 0 to 256 colours.")

    @classmethod
    def from_job(cls, job: GenerationJob) -> "PostProcessSpec":
        data = job.postprocess or {}
        if not isinstance(data, dict):
            raise UserError("The job's post-processing settings are not a table of options.")
        # It comes from PNGs and style packs too: names and types are checked before any range.
        return checked(cls, data, "postprocess.")

    @property
    def active(self) -> bool:
        return bool(
            self.remove_background or self.pixel_grid > 0 or self.palette_size > 0 or self.trim or self.crisp_text
        )


def check_ready(spec: PostProcessSpec) -> None:
    """Fail before generation, not after it, when the cut-out needs a model file that is missing."""
    if not spec.remove_background or spec.method == "key":
        return
    from asset_studio.engine.background import model_file
    from asset_studio.engine.rembg_models import download_command

    if model_file(spec.model) is None:
        raise UserError(
            f"Removing the background needs rembg's {spec.model}.onnx, which is not installed: "
            f"download it with `{download_command(spec.model)}` (or set U2NET_HOME to a folder holding it), "
            "or generate with --no-postprocess."
        )


def apply_postprocess(image: Image.Image, spec: PostProcessSpec) -> Image.Image:
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

        options = RemovalOptions(method=spec.method, model=spec.model, hard_alpha=pixel_art)
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


def save_sprite(raw_path: Path, image: Image.Image, job: GenerationJob, seed: int) -> Path | None:
    """Post-process one saved image into ``sprites/<same name>``; None when the job asks for nothing."""
    from asset_studio.core.library import png_info

    spec = PostProcessSpec.from_job(job)
    if not spec.active:
        return None
    sprite = apply_postprocess(image, spec)
    folder = Path(raw_path).parent / SPRITES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(raw_path).name
    tmp = folder / f".tmp-{target.name}"
    sprite.save(tmp, format="PNG", pnginfo=png_info(job, seed))
    tmp.replace(target)  # the raw image's name is unique, so this never replaces another sprite
    return target
