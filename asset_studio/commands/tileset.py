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
    from asset_studio.core.outputs import bytes_writer, check_targets, png_writer, write_set
    from asset_studio.core.sheet import collect_images
    from asset_studio.core.tileset import TilesetOptions, build_tileset, load_tiles
    from asset_studio.errors import UserError

    if args.out.suffix.lower() != ".png":
        raise UserError(f"--out must name a .png file, not {args.out.name}.")
    tile = parse_grid(args.tile, "--tile") if args.tile else None
    options = TilesetOptions(tile=tile, margin=args.margin, spacing=args.spacing, extrude=args.extrude,
                             columns=args.columns)
    tiles = load_tiles(args.inputs, tile)
    # Like every command: never replace an input, or a file this command did not just write, without --force.
    inputs = [path for _, path in collect_images(args.inputs)]
    check_targets(output_paths(args.out, args.format), inputs=inputs, force=args.force)
    tileset = build_tileset(tiles, options)
    if args.format == "tiled":
        from asset_studio.core.exporters.tiled import files
    else:
        from asset_studio.core.exporters.godot import tileset_files as files
    data = files(tileset, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_set([(args.out, png_writer(tileset.image)), *((path, bytes_writer(b)) for path, b in data)])
    data = [path for path, _ in data]
    lay = tileset.layout
    w, h = tileset.image.size
    print(f"laid out {lay.count} tiles of {lay.tile_w}x{lay.tile_h} in {lay.columns} columns ({w}x{h}): "
          f"{', '.join(str(p) for p in [args.out, *data])}")
    return 0
