"""`asset-studio train-style DATA_DIR --model PATH_OR_ID --out PACK_DIR`: a style pack from the artist's images.

Progress goes to stderr, the pack folder's path to stdout. Ctrl-C stops at the end of the step in
flight, saves a checkpoint and says how to resume; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from asset_studio.core.dataset import BUCKET_STEP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-style",
        help="train a style pack (a LoRA) from a folder of your own images",
        description="Train a LoRA on a folder of PNG/JPEG/WebP images (captions from NAME.txt beside an image, "
        "else from the file name) and write a style pack folder that uses it.",
    )
    p.add_argument("data", type=Path, metavar="DATA_DIR", help="the folder of training images")
    p.add_argument("--model", required=True, metavar="PATH_OR_ID",
                   help="the base model: a .safetensors checkpoint, a diffusers folder or a Hugging Face repo id")
    p.add_argument("--out", required=True, type=Path, metavar="PACK_DIR", help="the style pack folder to write")
    p.add_argument("--trigger", default="", metavar="WORD", help="the word that calls the style (default: the pack id)")
    p.add_argument("--id", default="", metavar="ID", help="the pack id (default: from the PACK_DIR name)")
    p.add_argument("--name", default="", help="the pack's display name")
    p.add_argument("--steps", type=int, default=1000, metavar="N", help="training steps (default 1000)")
    p.add_argument("--epochs", type=int, metavar="N", help="train N passes over the images instead of --steps")
    p.add_argument("--rank", type=int, default=16, metavar="R", help="LoRA rank (default 16)")
    p.add_argument("--alpha", type=float, metavar="A", help="LoRA alpha (default: the rank)")
    p.add_argument("--lr", type=float, default=1e-4, metavar="F", help="learning rate (default 1e-4)")
    p.add_argument("--resolution", type=int, metavar="N",
                   help="training resolution (default: 512 for SD 1.5, 768 for SD 2, 1024 for SDXL)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="images per step (default 1)")
    p.add_argument("--train-text-encoder", action="store_true", help="also train LoRA on the text encoder(s)")
    p.add_argument("--flip", action="store_true", help="also train on mirror images (not for lettering or "
                   "one-sided designs)")
    p.add_argument("--background", metavar="COLOUR", help="colour under transparent pixels (default white)")
    p.add_argument("--snr-gamma", type=float, metavar="G", help="Min-SNR loss weighting (5 is usual; default off)")
    p.add_argument("--mixed-precision", choices=("auto", "no", "fp16", "bf16"), default="auto",
                   help="auto: bf16 or fp16 on CUDA, fp32 elsewhere")
    p.add_argument("--no-gradient-checkpointing", action="store_true",
                   help="faster on CUDA, but needs more memory (checkpointing is on by default on CUDA)")
    p.add_argument("--sample-every", type=int, default=0, metavar="N",
                   help="sample images every N steps into PACK_DIR/.train/samples (default: only at the end)")
    p.add_argument("--sample-prompt", action="append", default=[], metavar="TEXT",
                   help="a prompt for the sample images (repeatable; include the trigger word)")
    p.add_argument("--sample-steps", type=int, default=20, metavar="N", help="sampling steps of sample images")
    p.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                   help="save a resumable checkpoint every N steps (default 100)")
    p.add_argument("--resume", action="store_true", help="continue the training saved in PACK_DIR/.train")
    p.add_argument("--force", action="store_true", help="replace the pack or training already in PACK_DIR")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--device", metavar="D", help="cpu, cuda, cuda:N or mps (default: the best there is)")
    p.add_argument("--model-config", metavar="DIR", help="diffusers config folder for a single-file model")
    p.add_argument("--download", action="store_true", help="let a repo id be downloaded from the Hugging Face Hub")
    p.add_argument("--bucket-step", type=int, default=BUCKET_STEP, help=argparse.SUPPRESS)
    p.add_argument("--check", action="store_true", help="only check the images and captions, then stop")
    p.set_defaults(func=run)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def check_only(args) -> int:
    from asset_studio.core import families
    from asset_studio.core.dataset import check_dataset, scan_dataset
    from asset_studio.core.request import model_family
    from asset_studio.engine.train import pack_id_for

    trigger = args.trigger or args.id or pack_id_for(args.out.resolve())
    resolution = args.resolution or families.base_size(model_family(args.model) or "sd15")
    dataset = scan_dataset(args.data, trigger)
    report = check_dataset(dataset, resolution, args.bucket_step)
    for item in dataset.items:
        size = report.sizes.get(item.path)
        shown = f"{size[0]}x{size[1]}" if size else "unusable"
        print(f"{item.path.name}  {shown}  {item.caption}")
    for note in report.notes:
        _say(f"note: {note}")
    report.raise_problems()
    return 0


def run(args) -> int:
    if args.check:
        return check_only(args)
    from asset_studio.engine import train as t

    config = t.TrainConfig(
        data_dir=str(args.data), model=args.model, out_dir=str(args.out), trigger=args.trigger, pack_id=args.id,
        name=args.name, steps=args.steps, epochs=args.epochs, rank=args.rank, alpha=args.alpha,
        learning_rate=args.lr, batch_size=args.batch, resolution=args.resolution, bucket_step=args.bucket_step,
        seed=args.seed, train_text_encoder=args.train_text_encoder, flip=args.flip, background=args.background,
        snr_gamma=args.snr_gamma, mixed_precision=args.mixed_precision,
        gradient_checkpointing=False if args.no_gradient_checkpointing else None,
        checkpoint_every=args.checkpoint_every, sample_every=args.sample_every, sample_prompts=args.sample_prompt,
        sample_steps=args.sample_steps, resume=args.resume, force=args.force, device=args.device,
        model_config=args.model_config, download=args.download,
    )
    stop = {"asked": False}

    def on_interrupt(signum, frame):
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        _say("Stopping after this step (Ctrl-C again to stop at once)…")

    last = {"shown": 0.0}

    def on_event(event) -> None:
        if isinstance(event, t.DatasetChecked):
            buckets = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sorted(event.buckets.items()))
            _say(f"{event.images} images; training sizes: {buckets}")
            for note in event.report.notes:
                _say(f"note: {note}")
        elif isinstance(event, t.ModelLoading):
            _say(event.what)
        elif isinstance(event, t.TrainingStarted):
            resumed = f", resuming at step {event.start_step}" if event.start_step else ""
            precision = "fp32" if event.precision == "no" else f"{event.precision} mixed"
            _say(f"Training {event.total_steps} steps on {event.device} ({precision} precision){resumed}")
        elif isinstance(event, t.StepDone):
            now = time.monotonic()
            if now - last["shown"] >= 2.0 or event.step == event.total:
                last["shown"] = now
                _say(f"step {event.step}/{event.total}  loss {event.loss:.4f}  {event.steps_per_second:.2f} steps/s"
                     f"  ETA {_duration(event.eta_seconds)}")
        elif isinstance(event, t.SampleReady):
            _say(f"samples at step {event.step}: {', '.join(str(p) for p in event.paths)}")
        elif isinstance(event, t.TrainingCancelled):
            where = f"; the checkpoint is {event.checkpoint}" if event.checkpoint else ""
            _say(f"Stopped at step {event.step}{where}. Run the same command with --resume to continue.")

    previous = signal.signal(signal.SIGINT, on_interrupt) if _main_thread() else None
    try:
        result = t.train(config, on_event=on_event, should_cancel=lambda: stop["asked"])
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if result.cancelled:
        return 130
    print(result.pack_dir.resolve())
    return 0


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
