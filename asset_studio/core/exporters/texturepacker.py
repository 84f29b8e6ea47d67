"""TexturePacker's JSON (Hash) and JSON (Array) data, as Phaser 3 and PixiJS load them.

Phaser 3 reads both; PixiJS's Spritesheet reads the Hash only (it names Array frames 0, 1, 2 …).
PixiJS draws rotated frames; Phaser 3 keeps the flag but draws them turned (phaserjs/phaser#5012).

One JSON per page. Animations go in the top-level ``animations`` object, which is where PixiJS's
Spritesheet reads them; several pages name each other in ``meta.related_multi_packs`` so PixiJS
loads them together.
"""

from __future__ import annotations

from pathlib import Path

from asset_studio import __version__
from asset_studio.core.exporters import jsontext

APP = "https://www.codeandweb.com/texturepacker"  # what the loaders' docs show; kept for tools that check


def frame_entry(frame) -> dict:
    return {
        "frame": {"x": frame.x, "y": frame.y, "w": frame.w, "h": frame.h},
        "rotated": frame.rotated,
        "trimmed": frame.trimmed,
        "spriteSourceSize": {"x": frame.offset_x, "y": frame.offset_y, "w": frame.w, "h": frame.h},
        "sourceSize": {"w": frame.source_w, "h": frame.source_h},
        "pivot": {"x": frame.pivot[0], "y": frame.pivot[1]},
    }


def page_document(sheet, page_index: int, image_name: str, as_array: bool, related: list[str]) -> dict:
    frames = [f for f in sheet.frames if f.page == page_index]
    if as_array:
        data_frames = [{"filename": f.name, **frame_entry(f)} for f in frames]
    else:
        data_frames = {f.name: frame_entry(f) for f in frames}
    names = {f.name for f in frames}
    w, h = sheet.pages[page_index].size
    doc: dict = {"frames": data_frames}
    animations = {a.name: list(a.frames) for a in sheet.animations if set(a.frames) <= names}
    if animations:
        doc["animations"] = animations
    doc["meta"] = {
        "app": APP,
        "version": "1.0",
        "image": image_name,
        "format": "RGBA8888",
        "size": {"w": w, "h": h},
        "scale": "1",
        "generator": f"asset-studio {__version__}",
    }
    if related:
        doc["meta"]["related_multi_packs"] = related
    return doc


def files(sheet, png_paths: list[Path], out_png: Path, as_array: bool = False) -> list[tuple[Path, bytes]]:
    data_paths = [p.with_suffix(".json") for p in png_paths]
    out = []
    for i, (png, data) in enumerate(zip(png_paths, data_paths)):
        related = [d.name for d in data_paths if d != data]
        doc = page_document(sheet, i, png.name, as_array, related)
        out.append((data, (jsontext.dumps(doc, 3) + "\n").encode("utf-8")))
    return out


def write(sheet, png_paths: list[Path], out_png: Path, as_array: bool = False) -> list[Path]:
    from asset_studio.core.outputs import write_data

    return write_data(files(sheet, png_paths, out_png, as_array))
