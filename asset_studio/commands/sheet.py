"""`asset-studio sheet`: pack sprites into a sheet and write the data file an engine loads."""

from __future__ import annotations

import re
import sys
from pathlib import Path

FORMATS = ("texturepacker-hash", "texturepacker-array", "aseprite", "godot4", "unity")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sheet",
        help="pack sprites into a sprite sheet for Godot, Unity, Phaser, PixiJS or Aseprite",
        description="Pack images into SHEET.png (SHEET-1.png, SHEET-2.png … when several pages are "
        "needed) and write the format's data file beside it. Frame names are the paths relative to "
        "the input folder; numbered names (walk0, walk1 …) and sub-folders become animations.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT_DIR_OR_FILES")
    p.add_argument("--out", required=True, type=Path, metavar="SHEET.png")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--trim", action="store_true", help="cut transparent borders (offsets are kept)")
    p.add_argument("--padding", type=int, default=0, metavar="N", help="transparent pixels between frames")
    p.add_argument("--extrude", type=int, default=0, metavar="N", help="repeat frame edges N pixels outward")
    p.add_argument("--pot", action="store_true", help="power-of-two page sides")
    p.add_argument("--square", action="store_true", help="square pages")
    p.add_argument("--max-size", type=int, default=4096, metavar="N", help="largest page side (more pages beyond it)")
    p.add_argument("--grid", metavar="WxH", help="uniform WxH-pixel cells instead of tight packing (frames are not trimmed)")
    p.add_argument("--rotate", action="store_true", help="allow frames turned 90° (TexturePacker formats; PixiJS draws them, Phaser 3 cannot)")
    p.add_argument("--fps", type=float, default=10.0, help="animation speed written to the data file")
    p.add_argument("--force", action="store_true",
                   help="replace an existing file this command did not write (or one of the inputs)")
    p.set_defaults(func=run)


def parse_grid(text: str) -> tuple[int, int]:
    from asset_studio.errors import UserError

    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise UserError(f"--grid takes the cell size as WxH, such as 64x64, not '{text}'.")
    return int(m.group(1)), int(m.group(2))


def split_animations(sheet) -> list[str]:
    """Names of the animations whose frames landed on more than one page."""
    page_of = {f.name: f.page for f in sheet.frames}
    return [a.name for a in sheet.animations if len({page_of.get(n) for n in a.frames}) > 1]


def run(args) -> int:
    from asset_studio.core.exporters import ExportOptions, is_sheet_page, rotation_supported, write_sheet
    from asset_studio.core.sheet import SheetOptions, collect_images, load_sprites, pack_sheet
    from asset_studio.errors import UserError

    if args.out.suffix.lower() != ".png":
        raise UserError(f"--out must name a .png file, not {args.out.name}.")
    if args.rotate and not rotation_supported(args.format):
        raise UserError(f"The {args.format} format cannot describe rotated frames: leave out --rotate.")
    grid = parse_grid(args.grid) if args.grid else None
    export_options = ExportOptions(fps=args.fps)  # checked before any page is written
    opts = SheetOptions(
        trim=args.trim and grid is None,
        padding=args.padding,
        extrude=args.extrude,
        pot=args.pot,
        square=args.square,
        max_size=args.max_size,
        grid=grid,
        rotate=args.rotate,
    )
    # A sheet written inside its input folder is not packed into the next run's sheet.
    def own_page(path: Path) -> bool:
        return is_sheet_page(path, args.out)

    inputs = [path for _, path in collect_images(args.inputs, exclude=own_page)]
    sprites = load_sprites(args.inputs, trim=opts.trim, exclude=own_page)
    sheet = pack_sheet(sprites, opts)
    if args.format == "aseprite" and len(sheet.pages) > 1:  # refuse before writing any page
        raise UserError("The Aseprite format holds a single image: raise --max-size so every frame fits one sheet.")
    pngs, data = write_sheet(sheet, args.out, args.format, export_options, inputs=inputs, force=args.force)
    if args.format.startswith("texturepacker"):
        split = split_animations(sheet)
        if split:  # a PixiJS page only animates its own frames, so these were left out of the JSON
            print(f"asset-studio: warning: the animation(s) {', '.join(split)} span several pages and are "
                  "left out of the JSON's animations: raise --max-size to keep each on one page.", file=sys.stderr)
    sizes = ", ".join(f"{p.size[0]}x{p.size[1]}" for p in sheet.pages)
    print(f"packed {len(sheet.frames)} frames on {len(pngs)} page(s) ({sizes}): {', '.join(str(p) for p in pngs + data)}")
    return 0
