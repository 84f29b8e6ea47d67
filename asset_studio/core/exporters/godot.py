"""Godot 4 ``SpriteFrames`` resource (.tres): one AtlasTexture per frame, one animation per sequence.

Texture paths are ``res://`` paths when a ``project.godot`` sits in a folder above the sheet;
otherwise they are relative to the .tres, which Godot's text loader resolves the same way.
Trimmed frames keep their placement through the AtlasTexture ``margin``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from asset_studio.errors import UserError


def resource_path(png: Path, tres: Path) -> str:
    for folder in [png.resolve().parent, *png.resolve().parents]:
        if (folder / "project.godot").is_file():
            return "res://" + png.resolve().relative_to(folder).as_posix()
    return Path(os.path.relpath(png.resolve(), tres.resolve().parent)).as_posix()


def _uid(text: str) -> str:
    """Five lowercase letters/digits, like Godot's own ids, but stable for the same input."""
    digest = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    out = ""
    for _ in range(5):
        digest, r = divmod(digest, len(chars))
        out += chars[r]
    return out


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def number(value: float) -> str:
    return repr(float(value))  # Godot writes floats with a decimal point: 1.0, 5.0


def animations_of(sheet) -> list:
    """The sheet's animations, then its loose frames as one more ("default")."""
    from asset_studio.core.sheet import Animation

    anims = list(sheet.animations)
    used = {n for a in anims for n in a.frames}
    rest = [f.name for f in sheet.frames if f.name not in used]
    if rest:
        name = "default" if all(a.name != "default" for a in anims) else "frames"
        anims.append(Animation(name, rest))
    return anims


def document(sheet, png_paths: list[Path], tres: Path, fps: float) -> str:
    if any(f.rotated for f in sheet.frames):
        raise UserError("Godot's AtlasTexture cannot show rotated frames: leave out --rotate.")
    ext_ids = [f"{i + 1}_{_uid(p.name)}" for i, p in enumerate(png_paths)]
    sub_ids: dict[str, str] = {}
    taken: set[str] = set()
    for f in sheet.frames:
        sid = f"AtlasTexture_{_uid(f.name)}"
        k = 0
        while sid in taken:  # a hash clash between two names: keep ids unique
            k += 1
            sid = f"AtlasTexture_{_uid(f'{f.name}#{k}')}"
        taken.add(sid)
        sub_ids[f.name] = sid

    steps = len(png_paths) + len(sheet.frames) + 1
    out = [f'[gd_resource type="SpriteFrames" load_steps={steps} format=3]', ""]
    for eid, png in zip(ext_ids, png_paths):
        out.append(f'[ext_resource type="Texture2D" path={quote(resource_path(png, tres))} id="{eid}"]')
    out.append("")
    for f in sheet.frames:
        px, py, pw, ph = f.page_rect
        out.append(f'[sub_resource type="AtlasTexture" id="{sub_ids[f.name]}"]')
        out.append(f'atlas = ExtResource("{ext_ids[f.page]}")')
        out.append(f"region = Rect2({px}, {py}, {pw}, {ph})")
        if f.trimmed:
            out.append(f"margin = Rect2({f.offset_x}, {f.offset_y}, {f.source_w - f.w}, {f.source_h - f.h})")
        out.append("filter_clip = true")  # never sample the neighbouring frame
        out.append("")

    anim_texts = []
    for anim in animations_of(sheet):
        frame_texts = [
            '{\n"duration": 1.0,\n"texture": SubResource("' + sub_ids[n] + '")\n}' for n in anim.frames
        ]
        anim_texts.append(
            '{\n"frames": [' + ", ".join(frame_texts) + '],\n"loop": ' + ("true" if anim.loop else "false")
            + ',\n"name": &' + quote(anim.name) + ',\n"speed": ' + number(anim.fps or fps) + "\n}"
        )
    out.append("[resource]")
    out.append("animations = [" + ", ".join(anim_texts) + "]")
    return "\n".join(out) + "\n"


def files(sheet, png_paths: list[Path], out_png: Path, fps: float = 10.0) -> list[tuple[Path, bytes]]:
    tres = Path(out_png).with_suffix(".tres")
    return [(tres, document(sheet, png_paths, tres, fps).encode("utf-8"))]


def write(sheet, png_paths: list[Path], out_png: Path, fps: float = 10.0) -> list[Path]:
    from asset_studio.core.outputs import write_data

    return write_data(files(sheet, png_paths, out_png, fps))


# --- TileSet ----------------------------------------------------------------------------------
# A Godot 4 TileSet with one TileSetAtlasSource over the tileset image. Godot finds tile (x, y) at
# margins + (x, y) * (texture_region_size + separation): the same grid as Tiled's margin/spacing.
# Tiles have no name field, so each carries it in a String custom data layer called "name"
# (read with tile_data.get_custom_data("name")).

GODOT_TYPE_STRING = 4  # Variant.Type.TYPE_STRING, how Godot stores a custom data layer's type


def tileset_document(tileset, png: Path, tres: Path) -> str:
    lay = tileset.layout
    ext_id = f"1_{_uid(png.name)}"
    src_id = f"TileSetAtlasSource_{_uid(png.name)}"
    out = ['[gd_resource type="TileSet" load_steps=3 format=3]', ""]
    out.append(f'[ext_resource type="Texture2D" path={quote(resource_path(png, tres))} id="{ext_id}"]')
    out.append("")
    out.append(f'[sub_resource type="TileSetAtlasSource" id="{src_id}"]')
    out.append(f'texture = ExtResource("{ext_id}")')
    m, s = lay.editor_margin, lay.editor_spacing
    if m:
        out.append(f"margins = Vector2i({m}, {m})")
    if s:
        out.append(f"separation = Vector2i({s}, {s})")
    out.append(f"texture_region_size = Vector2i({lay.tile_w}, {lay.tile_h})")
    for i, tile in enumerate(tileset.tiles):
        col, row = lay.cell(i)
        out.append(f"{col}:{row}/0 = 0")
        out.append(f"{col}:{row}/0/custom_data_0 = {quote(tile.name)}")
    out.append("")
    out.append("[resource]")
    out.append(f"tile_size = Vector2i({lay.tile_w}, {lay.tile_h})")
    out.append('custom_data_layer_0/name = "name"')
    out.append(f"custom_data_layer_0/type = {GODOT_TYPE_STRING}")
    out.append(f'sources/0 = SubResource("{src_id}")')
    return "\n".join(out) + "\n"


def tileset_files(tileset, png: Path, out: Path | None = None) -> list[tuple[Path, bytes]]:
    """SET.tres (a TileSet) beside the tileset image ``png``, as (path, bytes)."""
    tres = Path(out or png).with_suffix(".tres")
    return [(tres, tileset_document(tileset, Path(png), tres).encode("utf-8"))]


def write_tileset(tileset, png: Path, out: Path | None = None) -> list[Path]:
    from asset_studio.core.outputs import write_data

    return write_data(tileset_files(tileset, png, out))
