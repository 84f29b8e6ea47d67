"""`asset-studio detail IMAGE --box x,y,w,h [--box …] | --detector MODEL.onnx [--classes face,hand]`:
redraw regions of an existing image (the detailer, without generating the image again).

The new image is saved beside the source (or in --out) with its job inside, so `rerun` repeats it;
the source's style finishes it (its cut-out) like any image of that style. core/detail_job.py
builds the job; the service runs and saves it as it does for `generate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asset_studio.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "detail",
        help="redraw regions of an existing image (drawn boxes or what a detector finds)",
        description="Redraw regions of an existing image by inpainting (the detailer) and save the result as a new "
                    "image beside it, with its settings embedded. The model, prompt and sampler default to the "
                    "image's own when its PNG carries them.",
    )
    p.add_argument("image", metavar="IMAGE", help="the picture to detail (a sprite stands for its raw image)")
    p.add_argument("--box", action="append", default=[], metavar="X,Y,W,H",
                   help="a region in the image's pixels (repeatable)")
    p.add_argument("--detector", metavar="MODEL.onnx", help="a YOLO detector exported to ONNX that finds the regions")
    p.add_argument("--classes", metavar="NAMES", help="the detector's classes to redraw, e.g. face,hand (default all)")
    p.add_argument("--denoise", type=float, default=0.4, metavar="F", help="how much each region changes, 0-1 (default 0.4)")
    p.add_argument("--prompt", default="", metavar="TEXT", help="prompt of the regions ([PROMPT] = the image's; default it)")
    p.add_argument("--negative", default="", metavar="TEXT", help="negative prompt of the regions (default the image's)")
    p.add_argument("--padding", type=int, default=32, metavar="PX", help="context around each region (default 32)")
    p.add_argument("--blur", type=int, default=4, metavar="PX", help="mask blur of the pasted region (default 4)")
    p.add_argument("--dilate", type=int, default=4, metavar="PX", help="grow (or, negative, shrink) the mask (default 4)")
    p.add_argument("--confidence", type=float, default=0.3, metavar="F", help="lowest detector score kept (default 0.3)")
    p.add_argument("--steps", type=int, default=0, metavar="N", help="steps run per region (default: the image's x denoise)")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the first region (default random)")
    p.add_argument("--model", help="the model (default: the one in the image's job)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the image's folder)")
    p.add_argument("--no-postprocess", action="store_true", help="keep only the raw result, not the style's sprite")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    p.add_argument("--download", action="store_true", help="allow downloading a repo id from the Hugging Face Hub")
    p.set_defaults(func=run)


def build_request(args: argparse.Namespace):
    from asset_studio.core.detail import parse_region_spec
    from asset_studio.core.detail_job import DetailRequest
    from asset_studio.core.job import Box

    boxes = []
    for text in args.box:
        spec = parse_region_spec(text) if text.strip() else None
        if not isinstance(spec, Box):
            raise UserError(f"--box takes a region x,y,w,h in the image's pixels (e.g. 96,40,64,64), not '{text[:60]}'.")
        boxes.append(spec)
    if bool(boxes) == bool(args.detector):
        raise UserError("Give the regions to redraw: --box x,y,w,h (repeatable) or --detector MODEL.onnx, not "
                        + ("both." if boxes else "neither."))
    classes = []
    if args.classes:
        if not args.detector:
            raise UserError("--classes goes with --detector.")
        try:  # names or numbers joined by + are never read as a box x,y,w,h
            classes = parse_region_spec(args.classes.replace(",", "+"))
        except UserError:
            raise UserError(f"--classes takes the detector's class names or numbers separated by commas "
                            f"(e.g. face,hand), not '{args.classes[:60]}'.") from None
    return DetailRequest(image=args.image, boxes=boxes, detector=args.detector or "", classes=classes,
                         denoise=args.denoise, prompt=args.prompt, negative=args.negative, padding=args.padding,
                         mask_blur=args.blur, dilate=args.dilate, confidence=args.confidence, steps=args.steps,
                         model=args.model or "", seed=args.seed, finishing=not args.no_postprocess)


def run(args: argparse.Namespace) -> int:
    from asset_studio.commands.generate import run_job
    from asset_studio.core.detail_job import beside, detail_job, image_job

    job = detail_job(build_request(args))
    source = Path(job.init.image)
    out_dir = Path(args.out) if args.out else beside(source, image_job(source))
    run_job(job, out_dir, args.device, args.download, announce_seed=args.seed is None)
    return 0
