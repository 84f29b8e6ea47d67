"""A style pack renamed in the pack editor: its id follows the new name, its folder moves, and the
settings that named the old id name the new one.

The id is what jobs, the Create tab and the styles folder know a pack by; a new display name with the
old id left behind ("my-style" for "Retro Icons") is the surprise this removes. The move never
overwrites: a folder already holding the new id is refused with one sentence, the old one untouched.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from asset_studio.core.library import slugify
from asset_studio.core.stylepack import ID_PATTERN, user_styles_dir
from asset_studio.errors import UserError


def unique_id(base: str, taken: set[str]) -> str:
    """BASE, or BASE-2, BASE-3 … : the first not in TAKEN."""
    base = base[:60] or "style"
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def id_for_name(name: str, taken: set[str], current: str | None = None) -> str:
    """The id a pack called NAME gets: its slug, unique among TAKEN (the pack's own CURRENT id is
    free for it, so a name edited back keeps its id)."""
    others = set(taken) - {current} if current else set(taken)
    # slugify() names a wordless text "image"; a pack named only in other scripts is a "style".
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii").lower()
    return unique_id(slugify(name) if re.search(r"[a-z0-9]", ascii_name) else "style", others)


def move_pack(folder: Path, new_id: str, styles_dir: Path | None = None) -> Path:
    """Move the user's pack FOLDER to NEW_ID's folder under STYLES_DIR (default the user's styles
    folder); the new folder. Refuses an invalid id and a target that exists (nothing is overwritten)."""
    if not ID_PATTERN.fullmatch(new_id):
        raise UserError(f"'{new_id}' is not a pack id: use lower-case letters, digits, '-' or '_'.")
    styles_dir = Path(styles_dir) if styles_dir is not None else user_styles_dir()
    folder, target = Path(folder), styles_dir / new_id
    if folder.resolve() == target.resolve():
        return folder
    if target.exists():
        raise UserError(f"A pack with the id '{new_id}' already exists in {styles_dir}; choose another id.")
    # A rename within one folder: atomic, and the pack's files (LoRAs, previews) move with it.
    os.rename(folder, target)
    return target


def follow_rename(settings, old_id: str, new_id: str) -> bool:
    """Point the settings that named OLD_ID (the Create tab's last style) at NEW_ID; whether any did."""
    if settings.last_style() == old_id:
        settings.set_last_style(new_id)
        return True
    return False
