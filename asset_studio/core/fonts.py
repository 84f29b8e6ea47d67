"""Fonts for layouts: the bundled Noto Sans CJK KR subset, or a system font named by family.

A layout names its font by family ("Noto Sans CJK KR", "DejaVu Sans") and a weight. The
bundled family renders the same everywhere (Latin, accented Latin, Hangul, kana, common
kanji); other families are looked up on this machine with fontconfig when it is present,
else by reading the family names of the files in the usual font folders. A family that is
not found is a UserError, never a silent substitute: a substitute would change the layout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from asset_studio.errors import UserError

FONT_DIR = Path(__file__).with_name("fonts")
DEFAULT_FONT = "Noto Sans CJK KR"
# Names that mean the bundled family; "sans" and "default" keep hand-written layouts short.
BUNDLED_ALIASES = {"noto sans cjk kr", "noto sans kr", "default", "sans", "sans-serif"}
BUNDLED_FILES = {
    "normal": FONT_DIR / "NotoSansCJKkr-Subset-Regular.otf",
    "bold": FONT_DIR / "NotoSansCJKkr-Subset-Bold.otf",
}
# Noto Sans CJK lacks much of Latin Extended (Polish, Czech, Turkish, Vietnamese letters):
# Noto Sans fills those in, for the bundled family and as a fallback behind any system font.
LATIN_FILES = {
    "normal": FONT_DIR / "NotoSans-Subset-Regular.ttf",
    "bold": FONT_DIR / "NotoSans-Subset-Bold.ttf",
}
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
WEIGHTS = {"thin": 100, "light": 300, "normal": 400, "regular": 400, "medium": 500,
           "semibold": 600, "bold": 700, "extrabold": 800, "black": 900}


def weight_value(weight: str | int) -> int:
    """A CSS-like weight number (100-900) from a name or a number."""
    if isinstance(weight, (int, float)) and not isinstance(weight, bool):
        value = int(weight)
    elif isinstance(weight, str) and weight.lower() in WEIGHTS:
        value = WEIGHTS[weight.lower()]
    elif isinstance(weight, str) and weight.isdigit():
        value = int(weight)
    else:
        raise UserError(f"The font weight {weight!r} is not one of {', '.join(WEIGHTS)} or 100-900.")
    if not 100 <= value <= 1000:
        raise UserError(f"The font weight {value} is outside 100-900.")
    return value


def is_bundled(family: str) -> bool:
    return family.strip().lower() in BUNDLED_ALIASES


def font_dirs() -> list[Path]:
    """Folders where fonts are usually installed, per platform."""
    home = Path.home()
    dirs = [home / ".fonts", home / ".local/share/fonts", Path("/usr/share/fonts"),
            Path("/usr/local/share/fonts")]
    if sys.platform == "darwin":
        dirs += [home / "Library/Fonts", Path("/Library/Fonts"), Path("/System/Library/Fonts")]
    if os.name == "nt":
        windir = Path(os.environ.get("WINDIR", r"C:\Windows"))
        dirs += [windir / "Fonts"]
        if os.environ.get("LOCALAPPDATA"):
            dirs += [Path(os.environ["LOCALAPPDATA"]) / "Microsoft/Windows/Fonts"]
    return [d for d in dirs if d.is_dir()]


def _fc_list(family: str) -> list[tuple[Path, int]] | None:
    """(file, weight) of every installed face of FAMILY per fontconfig; None without fontconfig."""
    exe = shutil.which("fc-list")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, f":family={family}", "file", "weight"], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, ValueError, subprocess.SubprocessError):  # ValueError: a NUL in the name
        return None
    faces = []
    for line in out.splitlines():
        path, _, rest = line.partition(":")
        weight = 80  # fontconfig's "regular"
        if "weight=" in rest:
            digits = "".join(ch for ch in rest.split("weight=")[1].split(":")[0] if ch.isdigit())
            weight = int(digits or 80)
        if path.lower().endswith(FONT_SUFFIXES):
            faces.append((Path(path), _fc_to_css_weight(weight)))
    return faces


def _fc_to_css_weight(fc: int) -> int:
    table = [(0, 100), (40, 200), (50, 300), (80, 400), (100, 500), (180, 600), (200, 700),
             (205, 800), (210, 900)]
    return min(table, key=lambda pair: abs(pair[0] - fc))[1]


@lru_cache(maxsize=1)
def _scanned_faces() -> dict[str, list[tuple[Path, int]]]:
    """family (lower case) -> faces, read from the font folders: the path without fontconfig."""
    from PIL import ImageFont

    faces: dict[str, list[tuple[Path, int]]] = {}
    for folder in font_dirs():
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in FONT_SUFFIXES:
                continue
            try:
                family, style = ImageFont.truetype(str(path), 12).getname()
            except OSError:
                continue
            weight = 700 if "bold" in (style or "").lower() else 400
            faces.setdefault((family or "").lower(), []).append((path, weight))
    return faces


@lru_cache(maxsize=256)
def find_font_file(family: str, weight: int = 400) -> Path:
    """The font file for FAMILY at the closest weight; UserError when the family is absent."""
    if is_bundled(family):
        return BUNDLED_FILES["bold" if weight >= 600 else "normal"]
    faces = _fc_list(family)
    if faces is None:
        faces = _scanned_faces().get(family.strip().lower(), [])
    faces = [(path, w) for path, w in faces if path.is_file()]
    if not faces:
        raise UserError(
            f"The font '{family}' is not installed on this computer; install it or use the "
            f"bundled font '{DEFAULT_FONT}'."
        )
    # Closest weight; among equals prefer upright faces (no "italic"/"oblique" in the name).
    return min(faces, key=lambda f: (abs(f[1] - weight), _slanted(f[0]), str(f[0])))[0]


def _slanted(path: Path) -> bool:
    name = path.name.lower()
    return "italic" in name or "oblique" in name


def check_font(family: str, weight: str | int = "normal") -> None:
    """Raise UserError unless FAMILY can be rendered at WEIGHT."""
    find_font_file(family, weight_value(weight))


@lru_cache(maxsize=128)
def get_font(family: str, weight: int, size: float):
    """A Pillow FreeType font; size in pixels (fractional sizes allowed)."""
    from PIL import ImageFont

    path = find_font_file(family, weight)
    try:
        return ImageFont.truetype(str(path), size=max(1.0, float(size)))
    except OSError as exc:
        raise UserError(f"The font file {path} could not be read ({exc}).") from None


def bundled_font_files() -> list[Path]:
    """The bundled font files, e.g. for the GUI to register them with Qt."""
    return [p for p in (*BUNDLED_FILES.values(), *LATIN_FILES.values()) if p.is_file()]


# ---- fallback: characters the named font lacks come from the bundled fonts --------------------

def fallback_chain(family: str, weight: int) -> list[Path]:
    """The named font's file, then the bundled CJK and Latin fonts of the same weight."""
    key = "bold" if weight >= 600 else "normal"
    chain = [find_font_file(family, weight), BUNDLED_FILES[key], LATIN_FILES[key]]
    return list(dict.fromkeys(p for p in chain if p.is_file()))


def text_runs(text: str, family: str, weight: int) -> list[tuple[str, Path]]:
    """TEXT split into runs that one font file each can draw (the first in the chain that can)."""
    chain = fallback_chain(family, weight)
    runs: list[tuple[str, Path]] = []
    for ch in text:
        path = next((p for p in chain if ord(ch) in coverage(p)), chain[0])
        if runs and runs[-1][1] == path:
            runs[-1] = (runs[-1][0] + ch, path)
        else:
            runs.append((ch, path))
    return runs


@lru_cache(maxsize=64)
def get_font_file(path: Path, size: float):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(path), size=max(1.0, float(size)))
    except OSError as exc:
        raise UserError(f"The font file {path} could not be read ({exc}).") from None


@lru_cache(maxsize=64)
def coverage(path: Path) -> frozenset[int]:
    """The code points a font file maps to a glyph, read from its cmap table (first face of a .ttc)."""
    import struct

    try:
        data = Path(path).read_bytes()
    except OSError:
        return frozenset()
    try:
        base = struct.unpack_from(">I", data, 12)[0] if data[:4] == b"ttcf" else 0
        num_tables = struct.unpack_from(">H", data, base + 4)[0]
        cmap = None
        for i in range(num_tables):
            tag, _, offset, _ = struct.unpack_from(">4sIII", data, base + 12 + 16 * i)
            if tag == b"cmap":
                cmap = offset
        if cmap is None:
            return frozenset()
        subtables = {}
        for i in range(struct.unpack_from(">H", data, cmap + 2)[0]):
            platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
            subtables[(platform, encoding)] = cmap + offset
        for key in ((3, 10), (0, 4), (0, 6), (3, 1), (0, 3), (0, 1), (0, 0)):
            if key in subtables:
                return frozenset(_cmap_codepoints(data, subtables[key]))
    except struct.error:
        pass
    return frozenset()


def _cmap_codepoints(data: bytes, at: int):
    import struct

    fmt = struct.unpack_from(">H", data, at)[0]
    if fmt == 12:
        groups = struct.unpack_from(">I", data, at + 12)[0]
        for g in range(groups):
            start, end, glyph = struct.unpack_from(">III", data, at + 16 + 12 * g)
            for cp in range(start, end + 1):
                if glyph + cp - start:
                    yield cp
    elif fmt == 4:
        seg = struct.unpack_from(">H", data, at + 6)[0] // 2
        ends = struct.unpack_from(f">{seg}H", data, at + 14)
        starts = struct.unpack_from(f">{seg}H", data, at + 16 + 2 * seg)
        deltas = struct.unpack_from(f">{seg}h", data, at + 16 + 4 * seg)
        range_at = at + 16 + 6 * seg
        offsets = struct.unpack_from(f">{seg}H", data, range_at)
        for i in range(seg):
            for cp in range(starts[i], ends[i] + 1):
                if cp == 0xFFFF:
                    continue
                if offsets[i] == 0:
                    glyph = (cp + deltas[i]) & 0xFFFF
                else:
                    where = range_at + 2 * i + offsets[i] + 2 * (cp - starts[i])
                    glyph = struct.unpack_from(">H", data, where)[0]
                    glyph = (glyph + deltas[i]) & 0xFFFF if glyph else 0
                if glyph:
                    yield cp
