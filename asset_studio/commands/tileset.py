"""`asset-studio tileset`: lay same-size tiles out on a grid and write a map editor's tileset file."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("tiled", "godot4")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tileset",
        help="lay tiles out as a tileset for Tiled or Godot 4",
        description="Lay same-size tiles out on a grid in SET.png and write the map editor's data beside it: "
        "SET.tsx plus a sample map SET.tmx for Tiled, or SET.tres (a TileSet with an atlas source) for Godot 4. "
        "Each tile is named after its file; an image that is several tiles of --tile (a tile sheet) is cut "
        "into its cells, named FILE_<cell number>, and its empty cells are left out.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT_DIR_OR_FILES")
    p.add_argument("--tile", metavar="WxH", help="tile size (default: the size of the first image)")
    p.add_argument("--out", required=True, type=Path, metavar="SET.png")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--margin", type=int, default=0, metavar="N", help="transparent pixels around the grid")
    p.add_argument("--spacing", type=int, default=0, metavar="N", help="transparent pixels between tiles")
    p.add_argument("--extrude", type=int, default=0, metavar="N",
                   help="repeat each tile's edge N pixels outward so filtering never samples a neighbour")
    p.add_argument("--columns", type=int, metavar="N", help="tiles per row (default: a near-square image)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=run)


def output_paths(out_png: Path, fmt: str) -> list[Path]:
    suffixes = (".tsx", ".tmx") if fmt == "tiled" else (".tres",)
    return [out_png, *(out_png.with_suffix(s) for s in suffixes)]


def run(args) -> int:
    from asset_studio.commands.sheet import parse_grid
    from asset_studio.core.tileset import TilesetOptions, build_tileset, load_tiles
    from asset_studio.errors import UserError

    if args.out.suffix.lower() != ".png":
        raise UserError(f"--out must name a .png file, not {args.out.name}.")
    existing = [p for p in output_paths(args.out, args.format) if p.exists()]
    if existing and not args.force:
        raise UserError(f"{existing[0]} exists; pass --force to overwrite it.")
    tile = parse_grid(args.tile, "--tile") if args.tile else None
    options = TilesetOptions(tile=tile, margin=args.margin, spacing=args.spacing, extrude=args.extrude,
                             columns=args.columns)
    tileset = build_tileset(load_tiles(args.inputs, tile), options)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tileset.image.save(args.out, optimize=False)
    if args.format == "tiled":
        from asset_studio.core.exporters import tiled

        data = tiled.write(tileset, args.out)
    else:
        from asset_studio.core.exporters import godot

        data = godot.write_tileset(tileset, args.out)
    lay = tileset.layout
    w, h = tileset.image.size
    print(f"laid out {lay.count} tiles of {lay.tile_w}x{lay.tile_h} in {lay.columns} columns ({w}x{h}): "
          f"{', '.join(str(p) for p in [args.out, *data])}")
    return 0
