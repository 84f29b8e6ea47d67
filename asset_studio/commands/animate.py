"""`asset-studio animate PROMPT --model M --motion-adapter A`: an animation (AnimateDiff), or
`asset-studio animate --image IMAGE --svd S`: a picture set in motion (Stable Video Diffusion).

Writes OUT/00001-<seed>-<slug>/ with one PNG per frame (`<slug>-000.png` …, the job inside each)
as soon as each is decoded, then OUT/00001-<seed>-<slug>.gif and .apng (--preview picks; .mp4/.webm
with --video); prints the folder, which `asset-studio sheet FOLDER` packs as one tagged animation.
The prompt, style, template, LoRA and ControlNet flags are generate's (the same request path).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asset_studio.errors import UserError

DEFAULT_OUT = "output"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "animate",
        help="make an animation (AnimateDiff) or set a picture in motion (Stable Video Diffusion)",
        description="Make an animation: one PNG per frame in a folder of its own, a GIF and APNG preview.",
    )
    p.add_argument("prompt", metavar="PROMPT", nargs="?", default="",
                   help="the prompt; the SUBJECT when --style or --template is given (optional with --image)")
    p.add_argument("--model", help="SD 1.5 or SDXL model: diffusers folder, single-file .safetensors, or repo id")
    p.add_argument("--motion-adapter", metavar="PATH_OR_ID",
                   help="AnimateDiff motion adapter: a catalog id (animatediff-v1-5-2 …, see `asset-studio models "
                        "list`), a folder, a .safetensors file or a cached repo id")
    p.add_argument("--frames", type=int, default=16, metavar="N", help="frames (default 16)")
    p.add_argument("--fps", type=float, default=8.0, metavar="F", help="playback speed (default 8)")
    p.add_argument("--loop", action="store_true", help="the last frame leads into the first (a seamless loop)")
    p.add_argument("--context", type=int, default=0, metavar="N",
                   help="frames the motion modules see at once (default: the adapter's 16); longer animations "
                        "slide this window along")
    p.add_argument("--motion-lora", action="append", default=[], metavar="PATH[:W]",
                   help="motion LoRA (camera moves…): a .safetensors file or a catalog id (motion-lora-zoom-in …), "
                        "with its weight (default 1; repeatable)")
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:W]", help="a LoRA on the image model (repeatable)")
    p.add_argument("--pose-set", metavar="NAME_OR_DIR",
                   help="a pose sequence (walk-8, run-8 … or a folder of pose JSON) the frames follow, with an "
                        "OpenPose --controlnet")
    p.add_argument("--video", action="store_true", help="also write an MP4 and a WebM")
    svd = p.add_argument_group("image to video (Stable Video Diffusion)")
    svd.add_argument("--image", metavar="IMAGE", help="the picture to set in motion")
    svd.add_argument("--svd", metavar="PATH_OR_ID", help="Stable Video Diffusion model: a diffusers folder or a cached repo id")
    svd.add_argument("--motion", type=float, metavar="F",
                     help="how much moves, 0-1 (SVD's motion bucket 0-255; default 0.5)")
    svd.add_argument("--noise-aug", type=float, default=0.02, metavar="F",
                     help="noise added to the picture: more frees the motion from it (default 0.02)")
    svd.add_argument("--decode-chunk", type=int, default=8, metavar="N",
                     help="frames decoded at once; lower to save memory (default 8)")
    add_common(p)
    p.set_defaults(func=run)


def add_common(p) -> None:
    """The flags animate and video2video share with generate."""
    p.add_argument("--negative", metavar="TEXT", help="negative prompt terms (added to the style's)")
    p.add_argument("--count", type=int, metavar="N", help="number of animations (default 1)")
    p.add_argument("--seed", type=int, metavar="S", help="seed (default random)")
    p.add_argument("--steps", type=int, metavar="N", help="sampling steps (default 25)")
    p.add_argument("--cfg", type=float, metavar="F", help="CFG scale (default 7)")
    p.add_argument("--sampler", metavar="NAME", help='sampler, as in A1111 (default "Euler a")')
    p.add_argument("--size", metavar="WxH", help="frame size, multiples of 8 (default 512x512)")
    p.add_argument("--controlnet", action="append", default=[], metavar="PATH_OR_ID", help="ControlNet (repeatable)")
    p.add_argument("--control-scale", action="append", default=[], type=float, metavar="F",
                   help="strength of each --controlnet, in order (default 1)")
    p.add_argument("--style", metavar="ID_OR_PATH", help="style pack to compose the prompt with")
    p.add_argument("--template", metavar="NAME", help="asset template to compose the prompt with")
    p.add_argument("--field", action="append", default=[], metavar="KEY=VALUE", help="template field (repeatable)")
    p.add_argument("--remove-bg", action="store_true", help="cut the character out of every frame (sprites/)")
    p.add_argument("--preview", action="append", default=[], choices=("gif", "apng", "webp"), metavar="FORMAT",
                   help="preview written beside the frames: gif, apng (full colour, true alpha) or webp "
                        "(repeatable; default gif and apng)")
    p.add_argument("--out", metavar="DIR", help=f"output folder (default ./{DEFAULT_OUT})")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    p.add_argument("--download", action="store_true", help="allow downloading a repo id from the Hugging Face Hub")
    from asset_studio.commands.generate import add_engine_flags

    add_engine_flags(p)  # on ComfyUI servers: Stable Video Diffusion (AnimateDiff needs custom nodes)


def parse_weighted(items: list[str], flag: str) -> list:
    """PATH[:W] values as LoraRefs (a Windows drive letter is not a weight)."""
    from asset_studio.core.job import LoraRef

    out = []
    for item in items:
        path, sep, weight = item.rpartition(":")
        if sep and path and not (len(path) == 1 and path.isalpha()):
            try:
                out.append(LoraRef(path=path, weight=float(weight)))
                continue
            except ValueError:
                raise UserError(f"{flag} takes PATH or PATH:WEIGHT, not '{item}'.") from None
        out.append(LoraRef(path=item))
    return out


def request_for(args: argparse.Namespace, animation, output: str, *, model, image=None, control_type="pose"):
    """The AssetRequest of these flags (what generate builds for images), with the animation."""
    from asset_studio.commands.generate import parse_fields, parse_size
    from asset_studio.core.request import AssetRequest, ControlRequest, Overrides

    if getattr(args, "preview", None):
        animation.previews = list(dict.fromkeys(args.preview))
    width = height = None
    if args.size is not None:
        width, height = parse_size(args.size)
    if len(args.control_scale) > len(args.controlnet):
        raise UserError("There are more --control-scale values than --controlnet models.")
    if args.field and not (args.style or args.template):
        raise UserError("--field needs --template (fields fill a template's prompt).")
    overrides = Overrides(negative=args.negative, width=width, height=height, steps=args.steps, cfg_scale=args.cfg,
                          sampler=args.sampler, seed=args.seed, count=args.count, init_image=image,
                          finishing={"remove_background": True} if args.remove_bg else {})
    controls = [ControlRequest(model=m, type=control_type,
                               scale=args.control_scale[i] if i < len(args.control_scale) else 1.0)
                for i, m in enumerate(args.controlnet)]
    return AssetRequest(subject=args.prompt or "", style=args.style, template=args.template,
                        fields=parse_fields(args.field), model=model, overrides=overrides, controls=controls,
                        loras=parse_weighted(getattr(args, "lora", []), "--lora"), animation=animation,
                        output=output, pose_frames=getattr(args, "pose_set", None) or "")


def size_of(image: str) -> tuple[int, int]:
    from asset_studio.core.animation import fit_size
    from asset_studio.core.images import read_image

    return fit_size(*read_image(image, "RGB", what="The image").size)


def run(args: argparse.Namespace) -> int:
    from asset_studio.core.animation import animatediff_settings, svd_settings
    from asset_studio.core.request import prepare

    out_dir = Path(args.out or DEFAULT_OUT)
    if args.image or args.svd:
        if args.motion_adapter or args.motion_lora or args.pose_set or args.controlnet or args.loop:
            raise UserError("--motion-adapter, --motion-lora, --pose-set, --controlnet and --loop are AnimateDiff's; "
                            "Stable Video Diffusion takes --motion, --noise-aug and --decode-chunk.")
        anim = svd_settings(image=args.image, svd=args.svd, frames=args.frames, fps=args.fps,
                            motion=0.5 if args.motion is None else args.motion, noise_aug=args.noise_aug,
                            decode_chunk=args.decode_chunk)
        if args.size is None:
            args.size = "x".join(map(str, size_of(args.image)))
        if args.cfg is None:
            args.cfg = 3.0  # SVD's own default guidance (it rises from 1 on the first frame)
        request = request_for(args, anim, "video" if args.video else "animation", model=args.svd, image=args.image)
    else:
        if args.motion is not None:
            raise UserError("--motion is Stable Video Diffusion's (with --image and --svd).")
        anim = animatediff_settings(motion_adapter=args.motion_adapter, frames=args.frames, fps=args.fps,
                                    loop=args.loop, motion_loras=parse_weighted(args.motion_lora, "--motion-lora"),
                                    context=args.context, pose_set=args.pose_set or "", controlnets=args.controlnet,
                                    has_model=bool(args.model or args.style))
        request = request_for(args, anim, "video" if args.video else "animation", model=args.model or None)
    job = prepare(request, out_dir, download=args.download)
    for folder in run_animation(job, out_dir, args.device, args.download, announce_seed=args.seed is None,
                                engine=args.engine, servers=args.server):
        print(folder, flush=True)
    return 0


def run_animation(job, out_dir: Path, device: str | None, download: bool, announce_seed: bool = False,
                  engine: str = "local", servers: list[str] | None = None) -> list[Path]:
    """Run an animation job on the chosen backend; returns the folders `sheet` packs (one per
    animation: its sprites/ when the job finishes the frames, else the raw frames)."""
    from asset_studio.core.backend import Notice, Progress
    from asset_studio.service import Saved, check_job, make_backend, run_job

    backend = make_backend(engine, servers or [], device=device, download=download)
    check_job(job, backend, out_dir)  # bad input fails before a model loads
    if announce_seed:
        print(f"seed: {job.sampling.seed}", file=sys.stderr)
    show = sys.stderr.isatty()

    def on_event(event) -> None:
        if isinstance(event, Notice):
            print(f"asset-studio: note: {event.text}", file=sys.stderr, flush=True)
        elif isinstance(event, Progress) and show:
            print(f"\ranimation {event.image_index + 1}/{event.image_count}  step {event.step}/{event.total}",
                  end="", file=sys.stderr)
        elif isinstance(event, Saved) and show:
            print(f"\r\033[Kframe {event.frame + 1}/{job.animation.frames}", end="", file=sys.stderr)
            for path in event.previews:
                print(f"\r\033[Kpreview: {path}", file=sys.stderr)

    result = run_job(job, backend, out_dir, on_event=on_event)
    if show:
        print("\r\033[K", end="", file=sys.stderr)
    from asset_studio.core.library import SPRITES_DIR

    return [f / SPRITES_DIR if job.finishing.active else f for f in result.animations]
