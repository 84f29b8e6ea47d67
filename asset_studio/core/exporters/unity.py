"""Unity: the sheet PNG(s), a JSON of sprite rects and pivots, and the editor script applying them.

Unity's sprite rects have a bottom-left origin and pivots are normalized to the sprite's rect;
a trimmed sprite's pivot is moved so the sprite still sits where the untrimmed image would.
``SpriteSheetImporter.cs`` (copied beside the data from the package) applies the JSON through
``TextureImporter.spritesheet`` whenever Unity imports a page.
"""

from __future__ import annotations

from pathlib import Path

from asset_studio import __version__
from asset_studio.core.exporters import jsontext
from asset_studio.errors import UserError

SCRIPT = Path(__file__).with_name("SpriteSheetImporter.cs")


def sprite_name(frame_name: str) -> str:
    """Unity sub-asset names hold no '/' and no extension."""
    stem = frame_name.rsplit(".", 1)[0] if "." in frame_name.rsplit("/", 1)[-1] else frame_name
    return stem.replace("/", "_")


def unity_pivot(frame) -> tuple[float, float]:
    """The source-image pivot (top-left origin) expressed in the trimmed rect, bottom-left origin."""
    px = (frame.pivot[0] * frame.source_w - frame.offset_x) / frame.w
    py_down = (frame.pivot[1] * frame.source_h - frame.offset_y) / frame.h
    return round(px, 6), round(1.0 - py_down, 6)


def document(sheet, png_paths: list[Path], fps: float, pixels_per_unit: float = 100.0) -> dict:
    if any(f.rotated for f in sheet.frames):
        raise UserError("Unity sprite rects cannot be rotated: leave out --rotate.")
    names: dict[str, str] = {}
    for f in sheet.frames:
        n = sprite_name(f.name)
        if n in names:
            raise UserError(f"The frames {names[n]} and {f.name} would both be the Unity sprite '{n}': rename one.")
        names[n] = f.name
    pages = []
    for i, png in enumerate(png_paths):
        pw, ph = sheet.pages[i].size
        sprites = []
        for f in sheet.frames:
            if f.page != i:
                continue
            px, py = unity_pivot(f)
            sprites.append(
                {
                    "name": sprite_name(f.name),
                    "source": f.name,
                    "rect": {"x": f.x, "y": ph - f.y - f.h, "w": f.w, "h": f.h},
                    "pivot": {"x": px, "y": py},
                }
            )
        pages.append({"image": png.name, "width": pw, "height": ph, "sprites": sprites})
    return {
        "generator": f"asset-studio {__version__}",
        "pixelsPerUnit": pixels_per_unit,
        "pages": pages,
        "animations": [
            {"name": a.name, "fps": a.fps or fps, "frames": [sprite_name(n) for n in a.frames]} for a in sheet.animations
        ],
    }


def files(sheet, png_paths: list[Path], out_png: Path, fps: float = 10.0) -> list[tuple[Path, bytes]]:
    data = Path(out_png).with_suffix(".json")
    return [(data, (jsontext.dumps(document(sheet, png_paths, fps), 4) + "\n").encode("utf-8")),
            (data.parent / SCRIPT.name, SCRIPT.read_bytes())]


def write(sheet, png_paths: list[Path], out_png: Path, fps: float = 10.0) -> list[Path]:
    from asset_studio.core.outputs import write_data

    return write_data(files(sheet, png_paths, out_png, fps))
