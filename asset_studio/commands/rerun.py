"""`asset-studio rerun IMAGE.png`: generate an image again from the job embedded in it."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rerun",
        help="re-generate an image from the settings embedded in its PNG",
        description="Read the job inside a PNG written by Asset Studio and run it again.",
    )
    p.add_argument("image", metavar="IMAGE.png")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the image's folder)")
    p.add_argument("--model", help="use this model instead (when the original has moved)")
    p.add_argument("--model-config", metavar="DIR", help="diffusers config folder for a single-file model")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    p.add_argument("--download", action="store_true", help="allow downloading a repo id from the Hugging Face Hub")
    from asset_studio.commands.generate import add_engine_flags

    add_engine_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asset_studio.commands.generate import run_job
    from asset_studio.core.library import read_job

    image = Path(args.image)
    job = read_job(image)
    if args.model:
        job.model.checkpoint = args.model
    if args.model_config:
        job.model.config = str(Path(args.model_config).expanduser().resolve())
    job.made_by = ""  # the backend of this run says who makes the new image
    if job.animation is not None:  # a frame's PNG: its whole animation again, in a new folder beside its own
        from asset_studio.commands.animate import run_animation
        from asset_studio.core.library import SPRITES_DIR

        folder = image.resolve().parent
        folder = folder.parent if folder.name == SPRITES_DIR else folder
        for made in run_animation(job, Path(args.out) if args.out else folder.parent, args.device, args.download,
                                  engine=args.engine, servers=args.server):
            print(made, flush=True)
        return 0
    out_dir = Path(args.out) if args.out else image.resolve().parent
    run_job(job, out_dir, args.device, args.download, engine=args.engine, servers=args.server)
    return 0
