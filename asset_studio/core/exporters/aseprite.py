"""Aseprite's sprite-sheet JSON (array form): frames with durations, meta.frameTags for animations.

Aseprite's data describes one image, so a multi-page sheet is refused with a clear message.
Frame tags index the ``frames`` array, so frames are written animation by animation: every
tag's frames are contiguous and in play order. Each frame's ``filename`` is its index, as
Aseprite writes with Item Filename ``{frame}``: Phaser's ``createFromAseprite`` looks tag frames
up by that index, so source-file names there would leave every animation showing one frame.
"""

from __future__ import annotations

from pathlib import Path

from asset_studio import __version__
from asset_studio.core.exporters import jsontext
from asset_studio.errors import UserError


def ordered_frames(sheet) -> list:
    """Frames with each animation's members together and in order, then the rest."""
    by_name = {f.name: f for f in sheet.frames}
    order: list[str] = []
    for anim in sheet.animations:
        order += [n for n in anim.frames if n not in order]
    order += [f.name for f in sheet.frames if f.name not in order]
    return [by_name[n] for n in order]


def document(sheet, image_name: str, fps: float) -> dict:
    speed = {n: a.fps for a in sheet.animations if a.fps for n in a.frames}  # each animation's own fps
    frames = ordered_frames(sheet)
    index = {f.name: i for i, f in enumerate(frames)}
    tags = []
    for anim in sheet.animations:
        positions = [index[n] for n in anim.frames]
        if positions != list(range(positions[0], positions[0] + len(positions))):
            continue  # a frame shared by two folders' animations cannot be contiguous twice
        tags.append({"name": anim.name, "from": positions[0], "to": positions[-1], "direction": "forward", "color": "#000000ff"})
    w, h = sheet.pages[0].size
    return {
        "frames": [
            {
                "filename": str(i),
                "frame": {"x": f.x, "y": f.y, "w": f.w, "h": f.h},
                "rotated": False,
                "trimmed": f.trimmed,
                "spriteSourceSize": {"x": f.offset_x, "y": f.offset_y, "w": f.w, "h": f.h},
                "sourceSize": {"w": f.source_w, "h": f.source_h},
                "duration": max(1, round(1000 / speed.get(f.name, fps))),
            }
            for i, f in enumerate(frames)
        ],
        "meta": {
            "app": "https://www.aseprite.org/",
            "version": "1.3",
            "generator": f"asset-studio {__version__}",  # tells a re-run this file is its own
            "image": image_name,
            "format": "RGBA8888",
            "size": {"w": w, "h": h},
            "scale": "1",
            "frameTags": tags,
            "layers": [{"name": "Layer", "opacity": 255, "blendMode": "normal"}],
            "slices": [],
        },
    }


def files(sheet, png_paths: list[Path], out_png: Path, fps: float = 10.0) -> list[tuple[Path, bytes]]:
    if len(png_paths) != 1:
        raise UserError("The Aseprite format holds a single image: raise --max-size so every frame fits one sheet.")
    if any(f.rotated for f in sheet.frames):
        raise UserError("The Aseprite format cannot describe rotated frames: leave out --rotate.")
    data = png_paths[0].with_suffix(".json")
    return [(data, (jsontext.dumps(document(sheet, png_paths[0].name, fps), 3, " ") + "\n").encode("utf-8"))]


def write(sheet, png_paths: list[Path], out_png: Path, fps: float = 10.0) -> list[Path]:
    from asset_studio.core.outputs import write_data

    return write_data(files(sheet, png_paths, out_png, fps))
