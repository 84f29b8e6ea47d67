"""`asset-studio layout ...`: layouts for text-bearing assets, and their control images.

  layout new OUT.json [--template button|sign|banner|blank] [--text TEXT] [--size WxH]
  layout render LAYOUT.json --control lineart|scribble|canny|mask|brightness|fill --out OUT.png
  layout reference IMAGE --control canny|lineart|pose|softedge|depth|lineart_anime --out OUT.png
                   [--detector dwpose|openpose]   (pose: as `pose from-image`, drawn by core/pose_render)
  layout crisp IMAGE LAYOUT.json --out OUT.png      (draw the layout's exact text over an image)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asset_studio.errors import UserError

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "core" / "layouts"
RENDER_TYPES = ("lineart", "scribble", "canny", "mask", "brightness", "fill")
REFERENCE_TYPES = ("canny", "lineart", "pose", "softedge", "softedge_pidinet", "depth", "depth_zoe", "lineart_anime")


def register(subparsers) -> None:
    p = subparsers.add_parser("layout", help="create layouts and render their ControlNet control images",
                              description="Layouts: the exact text and shapes a text-bearing asset must show.")
    sub = p.add_subparsers(dest="layout_command", metavar="ACTION", required=True)

    new = sub.add_parser("new", help="write a new layout from a template")
    new.add_argument("out", metavar="OUT.json")
    new.add_argument("--template", default="button", help="button, sign, banner or blank (default button)")
    new.add_argument("--text", help="replace the template's first text")
    new.add_argument("--size", metavar="WxH", help="canvas size; the template is scaled to it")
    new.add_argument("--force", action="store_true", help="overwrite OUT.json")
    new.set_defaults(func=cmd_new)

    render = sub.add_parser("render", help="render a layout's control image")
    render.add_argument("layout", metavar="LAYOUT.json")
    render.add_argument("--control", default="lineart", choices=RENDER_TYPES,
                        help="control type (default lineart); 'fill' is the plain coloured render")
    render.add_argument("--out", required=True, metavar="OUT.png")
    render.add_argument("--size", metavar="WxH", help="output size (default: the layout's)")
    _control_options(render)
    render.add_argument("--stroke-width", type=int, help="line width in pixels (lineart, scribble, canny)")
    _force_option(render)
    render.set_defaults(func=cmd_render)

    ref = sub.add_parser("reference", help="turn a reference picture into a control image")
    ref.add_argument("image", metavar="IMAGE")
    ref.add_argument("--control", default="canny", choices=REFERENCE_TYPES)
    ref.add_argument("--out", required=True, metavar="OUT.png")
    ref.add_argument("--annotators", metavar="DIR", help="folder with annotator weights (.pth, .onnx)")
    from asset_studio.commands.pose import add_detector_option

    add_detector_option(ref)  # pose only, as `pose from-image --detector`
    _control_options(ref)
    _force_option(ref)
    ref.set_defaults(func=cmd_reference)

    crisp = sub.add_parser("crisp", help="draw a layout's exact text over a (generated) image")
    crisp.add_argument("image", metavar="IMAGE")
    crisp.add_argument("layout", metavar="LAYOUT.json")
    crisp.add_argument("--out", required=True, metavar="OUT.png")
    crisp.add_argument("--outline", type=float, help="outline width in layout pixels (default: size/16)")
    crisp.add_argument("--shadow", type=float, default=0.6, help="drop shadow opacity 0-1 (default 0.6)")
    _force_option(crisp)
    crisp.set_defaults(func=cmd_crisp)


def _force_option(p) -> None:
    p.add_argument("--force", action="store_true",
                   help="replace OUT.png even when this command did not write it (or it is an input)")


def _control_options(p) -> None:
    p.add_argument("--low", type=int, default=100, help="canny low threshold (default 100)")
    p.add_argument("--high", type=int, default=200, help="canny high threshold (default 200)")
    p.add_argument("--invert", action="store_true", help="dark lines on white instead of light on black")


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"The size {text!r} is not WxH, e.g. 512x256.") from None
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise UserError(f"The size {text} is outside 8-4096 pixels per side.")
    return w, h


def check_out(args, command: str, *inputs) -> Path:
    """--out, refused by name when it is an input or a file this command did not write (see core/outputs.py)."""
    from asset_studio.core.outputs import check_targets, written_by

    out = Path(args.out)
    check_targets([out], [Path(p) for p in inputs], args.force, owned=lambda p: written_by(p, command))
    return out


def save_png(image, out: Path, command: str) -> Path:
    """Write atomically (never half a PNG), marked as COMMAND's output so a re-run may replace it."""
    from asset_studio.core.outputs import png_writer, write_file

    path = write_file(out, png_writer(image, command))
    print(path)
    return path


def cmd_new(args: argparse.Namespace) -> int:
    from asset_studio.core.layout import Layout, TextElement, layout_from_dict, save_layout

    from asset_studio.core.outputs import check_targets

    out = Path(args.out)
    check_targets([out], force=args.force, option="OUT.json")  # a layout is the artist's work: never replaced silently
    if args.template == "blank":
        layout = Layout()
    else:
        source = TEMPLATES_DIR / f"{args.template}.json"
        if not source.is_file():
            names = sorted(p.stem for p in TEMPLATES_DIR.glob("*.json"))
            raise UserError(f"There is no layout template {args.template!r}; choose one of {', '.join(names + ['blank'])}.")
        import json

        layout = layout_from_dict(json.loads(source.read_text(encoding="utf-8")), source=f"The template {args.template}")
    size = parse_size(args.size)
    if size:
        layout = scaled(layout, *size)
    if args.text:
        texts = [e for e in layout.elements if isinstance(e, TextElement)]
        if texts:
            texts[0].text = args.text
        else:
            from asset_studio.core.layout import Box

            layout.elements.append(TextElement(args.text, Box(0, 0, layout.width, layout.height),
                                               size=layout.height / 3))
    save_layout(layout, out)
    print(out)
    return 0


def scaled(layout, width: int, height: int):
    """LAYOUT resized to WIDTH x HEIGHT: boxes and points stretch, text and strokes scale evenly."""
    from dataclasses import replace

    from asset_studio.core.layout import Box, Layout, ShapeElement, TextElement

    sx, sy = width / layout.width, height / layout.height
    k = (sx * sy) ** 0.5

    def box(b):
        return Box(b.x * sx, b.y * sy, b.w * sx, b.h * sy) if b is not None else None

    elements = []
    for e in layout.elements:
        if isinstance(e, TextElement):
            e = replace(e, box=box(e.box), size=e.size * k, letter_spacing=e.letter_spacing * k,
                        outline_width=e.outline_width * k)
        elif isinstance(e, ShapeElement):
            e = replace(e, box=box(e.box), points=[(x * sx, y * sy) for x, y in e.points],
                        stroke_width=e.stroke_width * k, radius=e.radius * k)
        else:
            e = replace(e, box=box(e.box))
        elements.append(e)
    return Layout(width, height, layout.background, elements, base_dir=layout.base_dir)


def cmd_render(args: argparse.Namespace) -> int:
    from asset_studio.core.layout import load_layout

    out = check_out(args, "layout render", args.layout)
    layout = load_layout(args.layout)
    size = parse_size(args.size)
    if args.control == "fill":
        from asset_studio.core.layout_render import render_layout

        image = render_layout(layout, size)
    else:
        from asset_studio.core.control_image import render_control

        image = render_control(layout, args.control, size=size, stroke_width=args.stroke_width,
                               low_threshold=args.low, high_threshold=args.high, invert=args.invert)
    save_png(image, out, "layout render")
    return 0


def open_image(path: str, mode: str | None = "RGB"):
    from asset_studio.core.images import read_image

    return read_image(path, mode, max_pixels=8192 * 8192)


def cmd_reference(args: argparse.Namespace) -> int:
    if args.detector and args.control != "pose":
        raise UserError("--detector chooses the pose detector; it goes with --control pose.")
    out_path = check_out(args, "layout reference", args.image)
    image = open_image(args.image)
    if args.control in ("canny", "lineart"):
        from asset_studio.core.control_image import control_from_reference

        out = control_from_reference(image, args.control, low_threshold=args.low, high_threshold=args.high,
                                     invert=args.invert)
    else:
        from asset_studio.engine.annotators import control_from_reference

        out = control_from_reference(image, args.control, annotator_dir=args.annotators, detector=args.detector,
                                     invert=args.invert)
    save_png(out, out_path, "layout reference")
    return 0


def cmd_crisp(args: argparse.Namespace) -> int:
    from asset_studio.core.crisp_text import CrispTextOptions, apply_crisp_text
    from asset_studio.core.layout import load_layout

    out_path = check_out(args, "layout crisp", args.image, args.layout)
    layout = load_layout(args.layout)
    image = open_image(args.image, None)  # RGBA only when the image has transparency
    out = apply_crisp_text(image, layout, CrispTextOptions(outline_width=args.outline, shadow_opacity=args.shadow))
    save_png(out, out_path, "layout crisp")
    return 0
