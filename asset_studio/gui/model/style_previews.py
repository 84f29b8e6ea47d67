"""A gallery image as a style pack's preview (the pictures the Create tab shows for a style).

Only the artist's own packs (in the user's styles folder) are written; a bundled pack is
read-only and the artist is told to duplicate it first. The image is stored small (a preview,
not an asset), written through core/outputs, and the newest comes first, three at most.
"""

from __future__ import annotations

from pathlib import Path

from asset_studio.core.images import read_image
from asset_studio.core.library import slugify
from asset_studio.core.outputs import png_writer, write_file
from asset_studio.core.stylepack import StylePack, load_stylepack, save_stylepack, user_styles_dir
from asset_studio.errors import UserError

PREVIEW_SIDE = 256
PREVIEWS_DIR = "previews"
MAX_PREVIEWS = 3


def is_user_pack(pack: StylePack) -> bool:
    try:
        return pack.folder is not None and Path(pack.folder).resolve().is_relative_to(user_styles_dir().resolve())
    except OSError:
        return False


def add_preview(pack: StylePack | None, image: Path) -> StylePack:
    """Store IMAGE as PACK's first preview and save the pack; returns the pack as saved."""
    if pack is None:
        raise UserError("Choose a style pack in the Create tab first: the image becomes its preview.")
    if not is_user_pack(pack):
        raise UserError(f"The style {pack.name} is bundled and read-only: duplicate it in Style packs, "
                        "then set the preview on your copy.")
    folder = Path(pack.folder)
    picture = read_image(image, mode="RGBA")
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    rel = f"{PREVIEWS_DIR}/{slugify(Path(image).stem) or 'preview'}.png"
    (folder / PREVIEWS_DIR).mkdir(parents=True, exist_ok=True)
    write_file(folder / rel, png_writer(picture))
    pack.previews = [rel, *[p for p in pack.previews if p != rel]][:MAX_PREVIEWS]
    save_stylepack(pack, folder)
    return load_stylepack(folder)
