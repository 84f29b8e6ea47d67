"""Style-pack training speed and memory: steps per second and peak memory of the LoRA training loop.

    .venv/bin/python bench/train_style.py                          # tiny random SD 1.5 model, 512², rank 16
    .venv/bin/python bench/train_style.py --model sd15.safetensors # a real SD 1.5 model (the issue's figure)
    .venv/bin/python bench/train_style.py --model sdxl.safetensors --resolution 1024

Generated sprites (coloured shapes on transparency) are the training images. The first --warmup
steps (first-use code paths, allocator growth) are not timed; steps/s is over the next --steps.
Memory: on CUDA the peak allocated by PyTorch during training (torch.cuda.max_memory_allocated,
reset after set-up) and the peak over the whole run; on a CPU the process's peak resident set,
which includes the model, the Python runtime and everything loaded.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # tiny_models


def make_images(folder: Path, count: int, size: int) -> Path:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        w, h = (size, size) if i % 3 else (size * 3 // 4, size)
        image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.ellipse((w // 8, h // 8, w * 7 // 8, h * 7 // 8), fill=(40 * i % 256, 120, 200 - 20 * i % 200, 255),
                     outline=(0, 0, 0, 255), width=max(1, size // 64))
        image.save(folder / f"sprite_{i:02d}.png")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder, .safetensors or cached repo id (default: a tiny random SD 1.5)")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--train-text-encoder", action="store_true")
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: its default)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import torch

    from asset_studio.engine.train import StepDone, TrainConfig, TrainingStarted, Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="train-bench-"))
    try:
        model = args.model
        if model is None:
            from tiny_models import build_tiny_sd15, save_diffusers

            model = str(save_diffusers(build_tiny_sd15(), tmp / "tiny-sd15"))
        data = make_images(tmp / "data", args.images, args.resolution)
        times: list[float] = []
        started = {}

        def on_event(event):
            if isinstance(event, StepDone):
                times.append(time.perf_counter())
            elif isinstance(event, TrainingStarted):
                started.update(device=event.device, precision=event.precision)
                if torch.cuda.is_available() and event.device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()

        config = TrainConfig(
            data_dir=str(data), model=model, out_dir=str(tmp / "pack"), steps=args.warmup + args.steps,
            rank=args.rank, resolution=args.resolution, batch_size=args.batch,
            train_text_encoder=args.train_text_encoder, sample_steps=1, checkpoint_every=10**6,
            gradient_checkpointing=False if args.no_gradient_checkpointing else None, device=args.device,
        )
        setup = time.perf_counter()
        trainer = Trainer(config, on_event)
        trainer.prepare()
        setup = time.perf_counter() - setup
        trainer.run()

        gaps = [b - a for a, b in zip(times[args.warmup - 1:], times[args.warmup:])] if args.warmup else \
            [b - a for a, b in zip(times, times[1:])]
        rate = len(gaps) / sum(gaps)
        on_cuda = started["device"].startswith("cuda")
        print(f"model: {trainer.source.name} ({trainer.family}), {args.resolution}², rank {args.rank}, "
              f"batch {args.batch}, text encoder {'trained' if args.train_text_encoder else 'frozen'}")
        print(f"device: {started['device']}, precision: {started['precision']}, "
              f"gradient checkpointing: {trainer.gradient_checkpointing}, torch threads: {torch.get_num_threads()}")
        print(f"set-up (load, adapters, encode {args.images} images): {setup:8.2f} s")
        print(f"steps/s (median step {statistics.median(gaps) * 1000:.0f} ms over {len(gaps)} steps): {rate:8.3f}")
        if on_cuda:
            print(f"peak GPU memory in training: {torch.cuda.max_memory_allocated() / 1024**3:8.2f} GiB")
        else:
            print(f"peak process memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.0f} MiB")
            print("GPU figure: not measured (no CUDA GPU in this run).")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
