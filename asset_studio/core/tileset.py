"""Tilesets for map editors: same-size tiles on a regular grid, with margin, spacing and extrusion.

The grid is what Tiled (``margin``/``spacing``) and Godot 4 (``margins``/``separation``) describe:
tile (col, row) sits at ``margin + col * (tile + spacing)``. Extruded edges are part of the gap in
the editors' terms, so the data files use ``margin + extrude`` and ``spacing + 2 * extrude``
(the tile-extruder convention Tiled documents). Both editors count columns from the image width as
``(width - margin + spacing) // (tile + spacing)``, so the space after the last column is kept
below one tile step: otherwise they would see an extra column and Tiled would renumber every tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from asset_studio.core.sheet import MAX_SHEET_SIDE, collect_images, open_rgba
from asset_studio.errors import UserError

MAX_TILES = 65536  # far beyond any hand-made set; a mistake (a photo sliced into 1x1 tiles) above


@dataclass
class Tile:
    name: str  # path relative to its input folder without the image suffix; sliced cells add _<cell>
    image: Image.Image  # RGBA, exactly the tile size


@dataclass
class TilesetOptions:
    tile: tuple[int, int] | None = None  # (w, h); None: the size every input shares
    margin: int = 0  # transparent pixels around the whole grid
    spacing: int = 0  # transparent pixels between neighbouring tiles
    extrude: int = 0  # each tile's edge pixels repeated this far outward (stops filtering bleed)
    columns: int | None = None  # None: as close to a square image as the tiles allow

    def __post_init__(self) -> None:
        for label, value in (("Margin", self.margin), ("Spacing", self.spacing), ("Extrude", self.extrude)):
            if not isinstance(value, int) or value < 0 or value > MAX_SHEET_SIDE:
                raise UserError(f"{label} must be a whole number from 0 to {MAX_SHEET_SIDE}, not {value}.")
        if self.columns is not None and (not isinstance(self.columns, int) or self.columns < 1):
            raise UserError(f"The number of columns must be at least 1, not {self.columns}.")
        if self.tile is not None and (self.tile[0] < 1 or self.tile[1] < 1 or max(self.tile) > MAX_SHEET_SIDE):
            raise UserError(f"The tile size must be from 1x1 to {MAX_SHEET_SIDE}x{MAX_SHEET_SIDE} pixels.")


@dataclass(frozen=True)
class TilesetLayout:
    """Where every tile's own pixels are, and the numbers editors need to find them again."""

    tile_w: int
    tile_h: int
    columns: int
    rows: int
    count: int  # tiles placed; the last row may be partly empty
    margin: int
    spacing: int
    extrude: int

    @property
    def editor_margin(self) -> int:
        """Tiled's ``margin`` and Godot's ``margins``: the first tile's own pixels start here."""
        return self.margin + self.extrude

    @property
    def editor_spacing(self) -> int:
        """Tiled's ``spacing`` and Godot's ``separation``: from one tile's pixels to the next one's."""
        return self.spacing + 2 * self.extrude

    def _trailing(self, tile: int) -> int:
        # At least the last tile's extrusion, and under one step so editors count `columns` exactly.
        return min(self.editor_margin, tile + self.editor_spacing - 1)

    @property
    def size(self) -> tuple[int, int]:
        m, s = self.editor_margin, self.editor_spacing
        w = m + self.columns * self.tile_w + (self.columns - 1) * s + self._trailing(self.tile_w)
        h = m + self.rows * self.tile_h + (self.rows - 1) * s + self._trailing(self.tile_h)
        return w, h

    def cell(self, index: int) -> tuple[int, int]:
        """(column, row) of tile ``index``: row-major, as Tiled numbers tile ids."""
        return index % self.columns, index // self.columns

    def position(self, index: int) -> tuple[int, int]:
        """Top-left pixel of tile ``index``'s own pixels (inside its extrusion)."""
        col, row = self.cell(index)
        return (self.editor_margin + col * (self.tile_w + self.editor_spacing),
                self.editor_margin + row * (self.tile_h + self.editor_spacing))


@dataclass
class Tileset:
    image: Image.Image
    tiles: list[Tile]  # in tile-id order
    layout: TilesetLayout


# --------------------------------------------------------------------------- loading


def _tile_name(rel: str) -> str:
    path = PurePosixPath(rel)
    return path.with_suffix("").as_posix()


def load_tiles(inputs: list[Path], tile: tuple[int, int] | None = None) -> list[Tile]:
    """Every image as a tile, all of one size. With ``tile`` given, an image that is a whole number of tiles wide and
    high (a tile sheet the artist already has) is cut into its cells, left to right, top to bottom;
    wholly transparent cells are left out and the others keep their cell number in the name, so
    names stay the same when a cell is filled later."""
    found = collect_images(inputs)
    slicing = tile is not None  # without an explicit size a bigger image is a mistake, not a sheet
    if tile is None:
        tile = open_rgba(found[0][1]).size
    tw, th = tile
    tiles: list[Tile] = []
    for rel, path in found:
        im = open_rgba(path)
        w, h = im.size
        name = _tile_name(rel)
        if (w, h) == (tw, th):
            tiles.append(Tile(name, im))
            continue
        if not slicing:
            raise UserError(f"{rel} is {w}x{h} pixels, not {tw}x{th} like {found[0][0]}: make every tile "
                            "the same size, or give --tile to cut tile sheets into tiles.")
        if w % tw or h % th:
            raise UserError(f"{rel} is {w}x{h} pixels, which is not a whole number of {tw}x{th} tiles.")
        cols = w // tw
        for r in range(h // th):
            for c in range(cols):
                cell = im.crop((c * tw, r * th, (c + 1) * tw, (r + 1) * th))
                if cell.getchannel("A").getbbox() is None:
                    continue  # an empty cell of the sheet
                tiles.append(Tile(f"{name}_{r * cols + c}", cell))
        if len(tiles) > MAX_TILES:
            raise UserError(f"More than {MAX_TILES} tiles: is {tw}x{th} really the tile size?")
    if not tiles:
        raise UserError("The images hold no tiles: every cell is transparent.")
    seen: dict[str, str] = {}
    for t in tiles:
        key = t.name.lower()
        if key in seen:
            raise UserError(f"Two tiles would share the name '{t.name}' (also '{seen[key]}'): rename one image.")
        seen[key] = t.name
    return tiles


# --------------------------------------------------------------------------- layout and drawing


def plan_layout(count: int, tile: tuple[int, int], options: TilesetOptions) -> TilesetLayout:
    tw, th = tile
    if options.columns is not None:
        columns = min(options.columns, count)
    else:  # the column count whose image is closest to square, then the fewest empty cells
        step_w, step_h = tw + options.spacing + 2 * options.extrude, th + options.spacing + 2 * options.extrude
        columns = min(range(1, count + 1),
                      key=lambda c: (abs(c * step_w - math.ceil(count / c) * step_h), c * math.ceil(count / c) - count))
    layout = TilesetLayout(tw, th, columns, math.ceil(count / columns), count,
                           options.margin, options.spacing, options.extrude)
    w, h = layout.size
    if w > MAX_SHEET_SIDE or h > MAX_SHEET_SIDE:
        raise UserError(f"The tileset would be {w}x{h} pixels, over the {MAX_SHEET_SIDE}-pixel side GPUs load: "
                        "use fewer tiles or another --columns.")
    return layout


def build_tileset(tiles: list[Tile], options: TilesetOptions | None = None) -> Tileset:
    options = options or TilesetOptions()
    if not tiles:
        raise UserError("There are no tiles to lay out.")
    tile = options.tile or tiles[0].image.size
    for t in tiles:
        if t.image.size != tuple(tile):
            raise UserError(f"The tile {t.name} is {t.image.width}x{t.image.height} pixels, not {tile[0]}x{tile[1]}.")
    layout = plan_layout(len(tiles), tuple(tile), options)
    w, h = layout.size
    page = np.zeros((h, w, 4), np.uint8)
    e = layout.extrude
    for i, t in enumerate(tiles):
        x, y = layout.position(i)
        pixels = np.asarray(t.image.convert("RGBA"))
        if e:
            pixels = np.pad(pixels, ((e, e), (e, e), (0, 0)), mode="edge")
        page[y - e : y + layout.tile_h + e, x - e : x + layout.tile_w + e] = pixels
    return Tileset(Image.fromarray(page, "RGBA"), tiles, layout)
