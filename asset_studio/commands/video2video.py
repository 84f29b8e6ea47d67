"""`asset-studio video2video VIDEO --model M --motion-adapter A --controlnet CN`: redraw a video
(MP4, WebM, GIF or a folder of frames) as a sprite animation.

Each frame gets a control image drawn from it (line art, soft edge, the pose skeleton `pose
from-image` finds…), AnimateDiff redraws the frames at --denoise in batches of at most
--batch-frames, neighbours sharing --overlap frames that are cross-faded at the joins; --remove-bg
cuts the character out of every frame (OUT/<folder>/sprites/). Writes the frames folder, GIF/WebP
and MP4/WebM previews, and prints the folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asset_studio.commands.animate import DEFAULT_OUT, add_common, request_for, run_animation
from asset_studio.errors import UserError


def register(subparsers) -> None:
    from asset_studio.core.controls import CONTROL_TYPES

    p = subparsers.add_parser(
        "video2video",
        help="redraw a video as a sprite animation (AnimateDiff + ControlNet, in overlapping batches)",
        description="Redraw a video frame by frame, following its motion and lines, into a sprite animation.",
    )
    p.add_argument("video", metavar="VIDEO", help="MP4, WebM, GIF or a folder of frames")
    p.add_argument("prompt_flag", metavar="PROMPT", nargs="?", default="", help="what the frames should show")
    p.add_argument("--prompt", dest="prompt_opt", metavar="TEXT", help="the prompt (same as the positional)")
    p.add_argument("--model", help="SD 1.5 model: diffusers folder, single-file .safetensors, or repo id")
    p.add_argument("--motion-adapter", metavar="PATH_OR_ID", required=True,
                   help="AnimateDiff motion adapter: a catalog id (animatediff-v1-5-2 …), a folder, a .safetensors "
                        "file or a cached repo id")
    p.add_argument("--control", choices=CONTROL_TYPES, default="lineart",
                   help="what each --controlnet follows, drawn from every frame (default lineart)")
    p.add_argument("--denoise", type=float, default=0.6, metavar="F", help="how much is redrawn, 0-1 (default 0.6)")
    p.add_argument("--batch-frames", type=int, default=16, metavar="N",
                   help="frames generated together; memory grows with it (default 16)")
    p.add_argument("--overlap", type=int, default=4, metavar="K", help="frames shared by neighbouring batches (default 4)")
    p.add_argument("--frames", type=int, metavar="N", help="redraw the first N frames (default: all)")
    p.add_argument("--fps", type=float, metavar="F", help="playback speed (default: the video's)")
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:W]", help="a LoRA on the image model (repeatable)")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asset_studio.core.job import MAX_FRAMES, Animation, VideoSource
    from asset_studio.core.request import prepare
    from asset_studio.engine.video_io import probe_video, video_fps

    args.prompt = args.prompt_opt or args.prompt_flag
    if not args.prompt:
        raise UserError("Say what the frames should show (PROMPT).")
    if not args.model and not args.style:
        raise UserError("--model is required unless a style pack recommends one.")
    # a bad file is one sentence, before any model loads
    count, size = probe_video(args.video, args.frames or MAX_FRAMES)
    if args.frames and count < args.frames:
        raise UserError(f"The video has {count} frames, fewer than the {args.frames} asked for.")
    if args.size is None:
        from asset_studio.core.animation import fit_size

        args.size = "x".join(map(str, fit_size(*size)))
    anim = Animation(frames=count, fps=args.fps or video_fps(args.video), motion_adapter=args.motion_adapter,
                     video=VideoSource(path=str(args.video), denoise=args.denoise, batch_frames=args.batch_frames,
                                       overlap=args.overlap))
    request = request_for(args, anim, "video", model=args.model or None, control_type=args.control)
    out_dir = Path(args.out or DEFAULT_OUT)
    job = prepare(request, out_dir, download=args.download)
    for folder in run_animation(job, out_dir, args.device, args.download, announce_seed=args.seed is None,
                                engine=args.engine, servers=args.server):
        print(folder, flush=True)
    return 0
