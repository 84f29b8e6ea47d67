"""`asset-studio remove-bg`: cut sprites out of their backgrounds, optionally as clean pixel art."""

from __future__ import annotations

import argparse
from pathlib import Path

METHODS = ("auto", "model", "key")
MODELS = ("u2netp", "u2net", "isnet-general-use", "isnet-anime", "birefnet-general")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "remove-bg",
        help="remove backgrounds (writes RGBA PNGs of the same size)",
        description="Remove the background of images. `auto` keys plain and graded backgrounds "
        "from the border (what the border reaches is background; light paint enclosed by the sprite stays) "
        "and uses a rembg model for anything else.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT_DIR_OR_FILES")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the RGBA PNGs (same relative names)")
    p.add_argument("--method", choices=METHODS, default="auto")
    p.add_argument("--model", choices=MODELS, default="u2netp", help="rembg model for --method model/auto")
    p.add_argument("--pixel-grid", type=int, metavar="N", help="snap to N logical pixels on the longer side (0: detect)")
    p.add_argument("--palette", type=int, metavar="N", help="reduce to N colours")
    p.add_argument("--alpha-matting", action="store_true", help="refine edges with rembg's alpha matting (slow)")
    p.add_argument("--defringe", action=argparse.BooleanOptionalAction, default=True, help="remove background colour from edge pixels")
    p.add_argument("--hard-alpha", action="store_true", help="alpha 0 or 255 only (implied by --pixel-grid)")
    p.add_argument("--download-model", action="store_true", help="let rembg download a missing model file (or fetch it once: python -m asset_studio.engine.rembg_models NAME)")
    p.add_argument("--force", action="store_true",
                   help="replace existing files this command did not write (or the inputs themselves)")
    p.set_defaults(func=run)


COMMAND = "remove-bg"  # the output marker of the PNGs it writes (core/outputs.py)


def run(args) -> int:
    from asset_studio.core import pixelart
    from asset_studio.core.outputs import check_targets, png_writer, write_file, written_by
    from asset_studio.core.sheet import collect_images, open_rgba
    from asset_studio.engine.background import BackgroundRemover, RemovalOptions
    from asset_studio.errors import UserError

    pixel_art = args.pixel_grid is not None
    if pixel_art and args.pixel_grid < 0:
        raise UserError("--pixel-grid must be 0 (detect) or a positive number of pixels.")
    if args.palette is not None and not 1 <= args.palette <= 256:
        raise UserError("--palette must be between 1 and 256 colours.")
    out_dir = args.out.resolve()
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out must name a folder, and {args.out} is a file.")

    def inside_out(path: Path) -> bool:  # earlier results in an --out inside an input folder
        return out_dir in path.resolve().parents

    items = collect_images(args.inputs, exclude=inside_out)
    targets: dict[Path, str] = {}
    for name, path in items:
        target = (args.out / name).with_suffix(".png")
        if target in targets:
            raise UserError(f"{name} and {targets[target]} would both be written to {target}: rename one.")
        targets[target] = name
    check_targets(targets, [path for _, path in items], args.force, owned=lambda t: written_by(t, COMMAND))

    remover = BackgroundRemover(
        RemovalOptions(
            method=args.method,
            model=args.model,
            alpha_matting=args.alpha_matting,
            defringe=args.defringe,
            hard_alpha=args.hard_alpha or pixel_art,
            allow_download=args.download_model,
        )
    )
    for (name, path), target in zip(items, targets):
        image = open_rgba(path)
        out = remover(image)
        if pixel_art:
            out = pixelart.snap_to_grid(out, args.pixel_grid or None)
        if args.palette:
            out = pixelart.reduce_palette(out, args.palette)
        if args.hard_alpha or pixel_art:
            out = pixelart.hard_alpha(out)
        write_file(target, png_writer(out, COMMAND))
    print(f"wrote {len(items)} image(s) to {args.out}")
    return 0
