"""Tilesets: the grid, margin/spacing/extrude in the image, and the Tiled and Godot files that describe it.

The data files are read back the way the editors read them (Tiled's and Godot's own column
formulas, tile positions from margin/spacing/separation), and every tile found there must hold
exactly the pixels of the image it is named after.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.core.exporters import godot, tiled
from asset_studio.core.tileset import TilesetOptions, build_tileset, load_tiles
from asset_studio.errors import UserError
from test_exporters import TresParser

TILE = (8, 6)


def make_tiles(folder: Path, count: int = 7, size=TILE, seed: int = 0) -> dict[str, np.ndarray]:
    """Random opaque tiles (every pixel different, so a one-pixel shift shows), some in a sub-folder."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        name = f"ground/t{i}" if i % 3 == 0 else f"t{i}"
        px = rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
        px[..., 3] = 255
        path = folder / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(px, "RGBA").save(path)
        out[name] = px
    return out


def tiled_columns(width: int, margin: int, spacing: int, tile: int) -> int:
    """Tiled's Tileset::columnCountForWidth (rowCountForHeight is the same with heights)."""
    return (width - margin + spacing) // (tile + spacing)


def godot_grid(size: int, margins: int, separation: int, region: int) -> int:
    """Godot's TileSetAtlasSource::get_atlas_grid_size along one axis."""
    valid = size - margins
    return 0 if valid < region else 1 + (valid - region) // (region + separation)


LAYOUTS = [
    dict(),
    dict(margin=2, spacing=1),
    dict(extrude=2),
    dict(margin=3, spacing=2, extrude=1, columns=3),
    dict(margin=20, spacing=1, extrude=1),  # a margin wider than a tile step: the trailing edge is cut
]


@pytest.fixture
def tiles_dir(tmp_path):
    folder = tmp_path / "tiles"
    return folder, make_tiles(folder)


@pytest.mark.parametrize("opts", LAYOUTS)
def test_tiles_extrusion_and_gaps_are_where_the_layout_says(tiles_dir, opts):
    folder, pixels = tiles_dir
    ts = build_tileset(load_tiles([folder]), TilesetOptions(**opts))
    lay, img = ts.layout, np.asarray(ts.image)
    e, (tw, th) = lay.extrude, TILE
    covered = np.zeros(img.shape[:2], bool)
    for i, tile in enumerate(ts.tiles):
        x, y = lay.position(i)
        assert np.array_equal(img[y : y + th, x : x + tw], pixels[tile.name])
        block = img[y - e : y + th + e, x - e : x + tw + e]
        assert np.array_equal(block, np.pad(pixels[tile.name], ((e, e), (e, e), (0, 0)), mode="edge"))
        covered[y - e : y + th + e, x - e : x + tw + e] = True
    assert (img[~covered] == 0).all()  # margin, spacing and empty cells stay transparent
    h, w = img.shape[:2]
    # both editors count exactly our columns and rows from the image size
    assert tiled_columns(w, lay.editor_margin, lay.editor_spacing, tw) == lay.columns
    assert tiled_columns(h, lay.editor_margin, lay.editor_spacing, th) == lay.rows
    assert godot_grid(w, lay.editor_margin, lay.editor_spacing, tw) == lay.columns
    assert godot_grid(h, lay.editor_margin, lay.editor_spacing, th) == lay.rows
    assert lay.count == len(pixels) and lay.columns == opts.get("columns", lay.columns)


def tiles_from_tsx(tsx: Path) -> dict[str, np.ndarray]:
    """Name → pixels, found the way Tiled finds them: from the .tsx alone and the image it names."""
    root = ET.parse(tsx).getroot()
    assert root.tag == "tileset"
    a = {k: int(v) for k, v in root.attrib.items() if k in ("tilewidth", "tileheight", "spacing", "margin", "tilecount", "columns")}
    image_el = root.find("image")
    png = tsx.parent / image_el.get("source")
    img = np.asarray(Image.open(png).convert("RGBA"))
    assert (int(image_el.get("width")), int(image_el.get("height"))) == (img.shape[1], img.shape[0])
    columns = tiled_columns(img.shape[1], a["margin"], a["spacing"], a["tilewidth"])
    rows = tiled_columns(img.shape[0], a["margin"], a["spacing"], a["tileheight"])
    assert (columns, columns * rows) == (a["columns"], a["tilecount"])
    out = {}
    for el in root.findall("tile"):
        tid = int(el.get("id"))
        names = [p.get("value") for p in el.iter("property") if p.get("name") == "name"]
        assert len(names) == 1
        x = a["margin"] + (tid % columns) * (a["tilewidth"] + a["spacing"])
        y = a["margin"] + (tid // columns) * (a["tileheight"] + a["spacing"])
        out[names[0]] = img[y : y + a["tileheight"], x : x + a["tilewidth"]]
    return out


@pytest.mark.parametrize("opts", LAYOUTS)
def test_tiled_tsx_names_every_tile_at_its_pixels(tiles_dir, tmp_path, opts):
    folder, pixels = tiles_dir
    ts = build_tileset(load_tiles([folder]), TilesetOptions(**opts))
    png = tmp_path / "out" / "set.png"
    png.parent.mkdir()
    ts.image.save(png)
    tsx, tmx = tiled.write(ts, png)
    found = tiles_from_tsx(tsx)
    assert sorted(found) == sorted(pixels)
    for name, px in pixels.items():
        assert np.array_equal(found[name], px), name

    # the sample map uses the .tsx and places every tile once
    root = ET.parse(tmx).getroot()
    assert root.find("tileset").get("source") == "set.tsx" and root.find("tileset").get("firstgid") == "1"
    layer = root.find("layer")
    w, h = int(layer.get("width")), int(layer.get("height"))
    gids = [int(v) for v in layer.find("data").text.replace("\n", "").split(",")]
    assert len(gids) == w * h and (w, h) == (int(root.get("width")), int(root.get("height")))
    assert sorted(g for g in gids if g) == list(range(1, len(pixels) + 1))


def tiles_from_tres(tres: Path) -> dict[str, np.ndarray]:
    """Name → pixels, the way Godot's TileSetAtlasSource finds each tile's region."""
    sections = TresParser(tres.read_text()).sections()
    head = sections[0]
    assert head[0] == "gd_resource" and head[1]["type"] == "TileSet" and head[1]["format"] == 3
    assert head[1]["load_steps"] == len(sections) - 1
    ext = {a["id"]: a for tag, a, _ in sections if tag == "ext_resource"}
    subs = {a["id"]: (a, props) for tag, a, props in sections if tag == "sub_resource"}
    resource = next(props for tag, _, props in sections if tag == "resource")
    assert resource["custom_data_layer_0/name"] == "name" and resource["custom_data_layer_0/type"] == 4
    kind, sub_id = resource["sources/0"]
    assert kind == "SubResource"
    attrs, atlas = subs[sub_id]
    assert attrs["type"] == "TileSetAtlasSource"
    _, tex_id = atlas["texture"]
    assert ext[tex_id]["type"] == "Texture2D"
    png = tres.parent / ext[tex_id]["path"]
    img = np.asarray(Image.open(png).convert("RGBA"))
    _, mx, my = atlas.get("margins", ("Vector2i", 0, 0))
    _, sx, sy = atlas.get("separation", ("Vector2i", 0, 0))
    _, rw, rh = atlas["texture_region_size"]
    assert resource["tile_size"] == ("Vector2i", rw, rh)
    grid = (godot_grid(img.shape[1], mx, sx, rw), godot_grid(img.shape[0], my, sy, rh))
    out = {}
    for key, value in atlas.items():
        if key.endswith("/0/custom_data_0"):
            col, row = (int(v) for v in key.split("/")[0].split(":"))
            assert atlas[f"{col}:{row}/0"] == 0  # the tile itself is declared
            assert col < grid[0] and row < grid[1]  # inside the grid Godot sees
            x, y = mx + col * (rw + sx), my + row * (rh + sy)
            out[value] = img[y : y + rh, x : x + rw]
    assert len([k for k in atlas if k.endswith("/0")]) == len(out)  # every declared tile is named
    return out


@pytest.mark.parametrize("opts", LAYOUTS)
def test_godot_tileset_names_every_tile_at_its_pixels(tiles_dir, tmp_path, opts):
    folder, pixels = tiles_dir
    ts = build_tileset(load_tiles([folder]), TilesetOptions(**opts))
    png = tmp_path / "set.png"
    ts.image.save(png)
    (tres,) = godot.write_tileset(ts, png)
    assert tres == tmp_path / "set.tres"
    found = tiles_from_tres(tres)
    assert sorted(found) == sorted(pixels)
    for name, px in pixels.items():
        assert np.array_equal(found[name], px), name


def test_godot_tileset_uses_res_paths_inside_a_project(tiles_dir, tmp_path):
    folder, _ = tiles_dir
    (tmp_path / "game").mkdir()
    (tmp_path / "game" / "project.godot").write_text("")
    png = tmp_path / "game" / "art" / "set.png"
    png.parent.mkdir()
    ts = build_tileset(load_tiles([folder]))
    ts.image.save(png)
    assert 'path="res://art/set.png"' in godot.write_tileset(ts, png)[0].read_text()


def test_a_tile_sheet_is_cut_into_its_cells_and_empty_cells_are_left_out(tmp_path):
    rng = np.random.default_rng(5)
    sheet = rng.integers(0, 256, (2 * TILE[1], 3 * TILE[0], 4), dtype=np.uint8)
    sheet[..., 3] = 255
    sheet[TILE[1]:, TILE[0] : 2 * TILE[0]] = 0  # cell 4 is empty
    Image.fromarray(sheet, "RGBA").save(tmp_path / "terrain.png")
    tiles = load_tiles([tmp_path / "terrain.png"], tile=TILE)
    assert [t.name for t in tiles] == ["terrain_0", "terrain_1", "terrain_2", "terrain_3", "terrain_5"]
    tw, th = TILE
    assert np.array_equal(np.asarray(tiles[4].image), sheet[th:, 2 * tw :])


def test_tiles_of_another_size_are_refused_by_name(tiles_dir):
    folder, _ = tiles_dir
    Image.new("RGBA", (9, 6), (1, 2, 3, 255)).save(folder / "odd.png")
    with pytest.raises(UserError, match=r"odd.png is 9x6 pixels, which is not a whole number of 8x6 tiles"):
        load_tiles([folder], tile=TILE)


def test_names_that_clash_without_suffix_are_refused(tmp_path):
    Image.new("RGBA", TILE, (1, 2, 3, 255)).save(tmp_path / "grass.png")
    Image.new("RGBA", TILE, (1, 2, 3, 255)).save(tmp_path / "grass.webp")
    with pytest.raises(UserError, match="share the name 'grass'"):
        load_tiles([tmp_path])


@pytest.mark.parametrize("kwargs, message", [
    (dict(margin=-1), "Margin must be a whole number"),
    (dict(extrude=-2), "Extrude must be a whole number"),
    (dict(columns=0), "columns must be at least 1"),
    (dict(tile=(0, 8)), "tile size must be"),
])
def test_bad_options_are_one_sentence(kwargs, message):
    with pytest.raises(UserError, match=message):
        TilesetOptions(**kwargs)


def test_a_tileset_over_the_gpu_limit_is_refused(tmp_path):
    Image.new("RGBA", (8000, 4), (1, 2, 3, 255)).save(tmp_path / "a.png")
    Image.new("RGBA", (8000, 4), (1, 2, 3, 255)).save(tmp_path / "b.png")
    Image.new("RGBA", (8000, 4), (1, 2, 3, 255)).save(tmp_path / "c.png")
    with pytest.raises(UserError, match="over the 16384-pixel side"):
        build_tileset(load_tiles([tmp_path]), TilesetOptions(columns=3))


# --------------------------------------------------------------------------- the command


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("fmt, data", [("tiled", ["set.tsx", "set.tmx"]), ("godot4", ["set.tres"])])
def test_tileset_command_writes_image_and_data(tiles_dir, tmp_path, capsys, fmt, data):
    folder, pixels = tiles_dir
    out = tmp_path / "out" / "set.png"
    argv = ["tileset", folder, "--tile", "8x6", "--out", out, "--format", fmt, "--margin", "1", "--spacing", "2", "--extrude", "1"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert f"laid out {len(pixels)} tiles of 8x6" in stdout
    found = tiles_from_tsx(out.with_suffix(".tsx")) if fmt == "tiled" else tiles_from_tres(out.with_suffix(".tres"))
    assert all(np.array_equal(found[n], px) for n, px in pixels.items()) and len(found) == len(pixels)
    assert all((out.parent / name).is_file() for name in data)

    code, _, err = run_cli(capsys, *argv)  # a second run keeps the first one's files
    assert code == 2 and "already exists" in err and "--force" in err
    assert run_cli(capsys, *argv, "--force")[0] == 0


@pytest.mark.parametrize("extra, message", [
    (["--tile", "8by6"], "--tile takes the size as WxH"),
    (["--tile", "5x6"], "is not a whole number of 5x6 tiles"),
    (["--spacing", "-1"], "Spacing must be a whole number"),
])
def test_tileset_command_bad_input_is_one_line(tiles_dir, tmp_path, capsys, extra, message):
    folder, _ = tiles_dir
    code, _, err = run_cli(capsys, "tileset", folder, "--out", tmp_path / "s.png", "--format", "tiled", *extra)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "s.png").exists()


def test_tileset_without_tile_size_refuses_a_mixed_folder(tiles_dir, tmp_path, capsys):
    folder, _ = tiles_dir
    Image.new("RGBA", (16, 12), (1, 2, 3, 255)).save(folder / "zz_big.png")
    code, _, err = run_cli(capsys, "tileset", folder, "--out", tmp_path / "s.png", "--format", "godot4")
    assert code == 2 and "zz_big.png is 16x12 pixels, not 8x6" in err
