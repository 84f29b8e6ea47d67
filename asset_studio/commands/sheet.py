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
    p.add_argument("--animation", action="append", default=[], metavar="FOUND=NAME[,fps=F][,loop=no]",
                   help="rename an animation found by folder or numbered names, with its own speed and loop "
                        "flag (repeatable), as the gallery's export does: --animation walk=hero_walk,fps=8")
    p.add_argument("--force", action="store_true",
                   help="replace an existing file this command did not write (or one of the inputs)")
    p.set_defaults(func=run)


def parse_grid(text: str, option: str = "--grid") -> tuple[int, int]:
    from asset_studio.errors import UserError

    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise UserError(f"{option} takes the size as WxH, such as 64x64, not '{text}'.")
    return int(m.group(1)), int(m.group(2))


def parse_animation(text: str):
    """`FOUND=NAME[,fps=F][,loop=yes|no]` as a core.animation.AnimationEdit, or one sentence."""
    from asset_studio.core.animation import AnimationEdit
    from asset_studio.errors import UserError

    found, sep, rest = text.partition("=")
    parts = [s.strip() for s in rest.split(",")]
    if not sep or not found.strip() or not parts[0]:
        raise UserError(f"--animation takes FOUND=NAME[,fps=F][,loop=no], such as walk=hero_walk,fps=8, not '{text}'.")
    edit = AnimationEdit(found=found.strip(), name=parts[0])
    for option in parts[1:]:
        key, _, value = option.partition("=")
        if key == "fps":
            try:
                edit.fps = float(value)
            except ValueError:
                raise UserError(f"--animation {found}: fps takes a number, not '{value}'.") from None
        elif key == "loop" and value in ("yes", "no"):
            edit.loop = value == "yes"
        else:
            raise UserError(f"--animation {found}: '{option}' is not fps=F or loop=yes|no.")
    return edit


def run(args) -> int:
    from asset_studio.service import SheetExport, export_sheet

    result = export_sheet(SheetExport(
        inputs=list(args.inputs), out=args.out, format=args.format, trim=args.trim, padding=args.padding,
        extrude=args.extrude, pot=args.pot, square=args.square, max_size=args.max_size,
        grid=parse_grid(args.grid) if args.grid else None, rotate=args.rotate, fps=args.fps, force=args.force,
        animations=[parse_animation(text) for text in args.animation],
    ))
    for warning in result.warnings:
        print(f"asset-studio: warning: {warning}", file=sys.stderr)
    print(result.summary())
    return 0
