"""Tiled map editor files for a tileset: the external tileset (.tsx) and a sample map (.tmx).

Tiles carry their name as a custom property ``name`` (Tiled has no name field for tiles; engines'
Tiled importers read properties). The sample map shows every tile once, in tileset order, so
opening the .tmx shows the set as a map right away. Paths in both files are relative, as Tiled
writes them, so the folder can move as a whole.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

TMX_VERSION = "1.10"  # the map format version; readers since Tiled 1.10 (2023) accept every field used here
TILED_VERSION = "1.10.2"


def _relative(target: Path, beside: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(beside).resolve().parent)).as_posix()


def _xml(root: ET.Element) -> str:
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def tsx_document(tileset, png: Path, tsx: Path) -> str:
    lay = tileset.layout
    width, height = tileset.image.size
    root = ET.Element("tileset", {
        "version": TMX_VERSION, "tiledversion": TILED_VERSION, "name": Path(tsx).stem,
        "tilewidth": str(lay.tile_w), "tileheight": str(lay.tile_h),
        "spacing": str(lay.editor_spacing), "margin": str(lay.editor_margin),
        # Tiled counts every grid cell of the image as a tile, empty ones in the last row too
        "tilecount": str(lay.columns * lay.rows), "columns": str(lay.columns),
    })
    ET.SubElement(root, "image", {"source": _relative(png, tsx), "width": str(width), "height": str(height)})
    for i, tile in enumerate(tileset.tiles):
        el = ET.SubElement(root, "tile", {"id": str(i)})
        props = ET.SubElement(el, "properties")
        ET.SubElement(props, "property", {"name": "name", "value": tile.name})
    return _xml(root)


def tmx_document(tileset, tsx: Path, tmx: Path) -> str:
    lay = tileset.layout
    root = ET.Element("map", {
        "version": TMX_VERSION, "tiledversion": TILED_VERSION, "orientation": "orthogonal",
        "renderorder": "right-down", "width": str(lay.columns), "height": str(lay.rows),
        "tilewidth": str(lay.tile_w), "tileheight": str(lay.tile_h), "infinite": "0",
        "nextlayerid": "2", "nextobjectid": "1",
    })
    ET.SubElement(root, "tileset", {"firstgid": "1", "source": _relative(tsx, tmx)})
    layer = ET.SubElement(root, "layer", {"id": "1", "name": "Tiles", "width": str(lay.columns), "height": str(lay.rows)})
    gids = [i + 1 if i < lay.count else 0 for i in range(lay.columns * lay.rows)]  # gid 0: an empty cell
    rows = [",".join(map(str, gids[r * lay.columns : (r + 1) * lay.columns])) for r in range(lay.rows)]
    data = ET.SubElement(layer, "data", {"encoding": "csv"})
    data.text = "\n" + ",\n".join(rows) + "\n"
    return _xml(root)  # ET.indent leaves the CSV alone: it only re-indents elements with children


def files(tileset, png: Path, out: Path | None = None) -> list[tuple[Path, bytes]]:
    """SET.tsx and the sample map SET.tmx beside the tileset image ``png``, as (path, bytes)."""
    base = Path(out or png)
    tsx, tmx = base.with_suffix(".tsx"), base.with_suffix(".tmx")
    return [(tsx, tsx_document(tileset, png, tsx).encode("utf-8")), (tmx, tmx_document(tileset, tsx, tmx).encode("utf-8"))]


def write(tileset, png: Path, out: Path | None = None) -> list[Path]:
    from asset_studio.core.outputs import write_data

    return write_data(files(tileset, png, out))
