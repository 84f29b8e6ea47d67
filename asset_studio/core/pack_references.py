"""Character references carried by a style pack: a picture copied into PACK/references/ and listed
under `[[references]]` in style.toml, so one pack keeps the same character in every asset.

The picture is stored as a PNG of at most REFERENCE_SIDE pixels per side: an IP-Adapter's image
encoder sees 224 or so pixels, and re-encoding drops whatever the original carried (an Asset Studio
PNG holds its job, with the artist's folders in it) before the pack is shared. Bundled packs are
read-only: the artist works on a copy in the user's styles folder.
"""

from __future__ import annotations

import copy
from pathlib import Path

from asset_studio.core.images import read_image
from asset_studio.core.job import MAX_REFERENCES, Reference
from asset_studio.core.library import slugify
from asset_studio.core.outputs import png_writer, write_file
from asset_studio.core.stylepack import (
    REFERENCE_MODES, ID_PATTERN, ReferenceEntry, StylePack, bundled_styles_dir, load_stylepack, save_stylepack,
    user_styles_dir,
)
from asset_studio.errors import UserError

REFERENCES_DIR = "references"
REFERENCE_SIDE = 1024


def is_bundled(pack: StylePack) -> bool:
    return pack.folder is not None and Path(pack.folder).resolve().is_relative_to(bundled_styles_dir().resolve())


def add_reference(pack: StylePack, image: str | Path, scale: float = Reference.scale, mode: str = Reference.mode,
                  ip_adapter: str | None = None, image_encoder: str | None = None) -> StylePack:
    """Copy IMAGE into PACK as a character reference (and set the IP-Adapter it wants); returns the
    pack as saved. Every problem is one sentence, raised before anything is written."""
    if pack.folder is None:
        raise UserError(f"The style {pack.name} has no folder to store a reference in.")
    if is_bundled(pack):
        raise UserError(f"The style {pack.name} is bundled and read-only: copy its folder into {user_styles_dir()} "
                        "with a new id (or duplicate it in Style packs), then add the reference to the copy.")
    if len(pack.references) >= MAX_REFERENCES:
        raise UserError(f"The style {pack.name} already has {MAX_REFERENCES} references, the most a job takes; "
                        "remove one from its style.toml first.")
    if not 0 <= scale <= 2:
        raise UserError(f"A reference's strength must be between 0 and 2, not {scale:g}.")
    if mode not in REFERENCE_MODES:
        raise UserError(f"A reference's mode is one of {', '.join(REFERENCE_MODES)}, not {mode!r}.")
    for key, value in (("IP-Adapter", ip_adapter), ("image encoder", image_encoder)):
        if value and not ID_PATTERN.fullmatch(value):
            raise UserError(f"The {key} of a style pack is a catalog id (asset-studio models list shows them), "
                            f"not {value!r}.")
    if image_encoder and not (ip_adapter or pack.ip_adapter):
        raise UserError("An image encoder belongs to an IP-Adapter: give the style's IP-Adapter too (--ip-adapter).")
    picture = read_image(image, mode=None, what="The reference image")
    picture.thumbnail((REFERENCE_SIDE, REFERENCE_SIDE))

    pack, folder = copy.deepcopy(pack), Path(pack.folder)  # the caller's pack changes only once saved
    stem = slugify(Path(image).stem) or "reference"
    taken = {ref.file for ref in pack.references}
    rel, n = f"{REFERENCES_DIR}/{stem}.png", 2
    while rel in taken or (folder / rel).exists():
        rel, n = f"{REFERENCES_DIR}/{stem}-{n}.png", n + 1
    pack.references.append(ReferenceEntry(file=rel, scale=round(float(scale), 3), mode=mode))
    if ip_adapter:
        pack.ip_adapter = ip_adapter
    if image_encoder:
        pack.image_encoder = image_encoder
    (folder / REFERENCES_DIR).mkdir(parents=True, exist_ok=True)
    write_file(folder / rel, png_writer(picture))
    try:
        save_stylepack(pack, folder)
    except BaseException:
        (folder / rel).unlink(missing_ok=True)  # no stray picture beside a style.toml that does not name it
        raise
    return load_stylepack(folder)
