"""Seconds per frame and peak memory of the animation passes, on tiny random models.

    .venv/bin/python bench/animate.py [--size 64] [--steps 2] [--device cpu]

Builds the tests' tiny SD 1.5 model, a tiny AnimateDiff motion adapter and a tiny Stable Video
Diffusion pipeline (the real diffusers classes, random weights) in a temporary folder, then runs
each case in a fresh process through the service (frames saved as decoded, previews written):
text to animation at 8, 16 and 32 frames (32 > the 16-frame window: FreeNoise context windows),
the same 16 with --loop (circular motion context), video to video (24 frames, batches of 8 with
2 overlapping), SVD image to video, and SDXL text to animation (a three-block tiny SDXL with an
SDXL motion adapter, AnimateDiffSDXLPipeline). Reported per case: wall seconds per frame (model load
excluded: a warm-up run loads it first) and the process's peak memory: peak resident set size on
CPU, torch.cuda.max_memory_allocated on CUDA.

The numbers are for tiny models: they show how the cost grows with frames, the loop and the
windows, not what a real SD 1.5 model costs. The issue's target (16 frames of SD 1.5 at 512²
within a 12 GB card) needs a GPU and a real model; it is not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

CASES = {
    "text 8 frames": dict(frames=8),
    "text 16 frames": dict(frames=16),
    "text 16 frames, loop": dict(frames=16, loop=True),
    "text 32 frames (FreeNoise)": dict(frames=32),
    "video2video 24 frames (8/2)": dict(frames=24, video=True),
    "svd 8 frames": dict(frames=8, svd=True),
    "sdxl text 8 frames": dict(frames=8, sdxl=True),
    "sdxl text 16 frames": dict(frames=16, sdxl=True),
}


def build(root: Path) -> None:
    from tiny_models import build_tiny_sd15, save_diffusers
    from tiny_video_models import (build_motion_adapter, build_sdxl_motion_adapter, build_tiny_animatable_sdxl,
                                   build_tiny_svd, save_motion_adapter)

    save_diffusers(build_tiny_sd15(), root / "sd15")
    save_motion_adapter(build_motion_adapter(), root / "mm")
    save_diffusers(build_tiny_animatable_sdxl(), root / "sdxl")
    save_motion_adapter(build_sdxl_motion_adapter(), root / "mm-sdxl")
    build_tiny_svd().save_pretrained(root / "svd", safe_serialization=True)


def job_for(root: Path, case: dict, size: int, steps: int):
    from PIL import Image

    from asset_studio.core.job import (Animation, GenerationJob, ImageToVideo, InitImage, ModelRef, Prompt,
                                       Sampling, VideoSource)
    from asset_studio.engine.video_io import gif_bytes

    sampling = Sampling(steps=steps, width=size, height=size, seed=1)
    if case.get("svd"):
        sprite = root / "sprite.png"
        Image.new("RGB", (size, size), (200, 120, 40)).save(sprite)
        return GenerationJob(model=ModelRef(str(root / "svd")), prompt=Prompt(""), init=InitImage(str(sprite)),
                             sampling=sampling, output="animation",
                             animation=Animation(frames=case["frames"], method="svd", svd=ImageToVideo(decode_chunk=4)))
    sdxl = case.get("sdxl", False)
    animation = Animation(frames=case["frames"], loop=case.get("loop", False),
                          motion_adapter=str(root / ("mm-sdxl" if sdxl else "mm")))
    if case.get("video"):
        frames = []
        for i in range(case["frames"]):
            im = Image.new("RGB", (size, size), (250, 250, 250))
            im.paste((30, 30, 30), (i % (size // 2), size // 4, i % (size // 2) + size // 4, size * 3 // 4))
            frames.append(im)
        clip = root / f"clip-{case['frames']}.gif"
        clip.write_bytes(gif_bytes(frames, 8.0))
        animation.video = VideoSource(path=str(clip), batch_frames=8, overlap=2)
    return GenerationJob(model=ModelRef(str(root / ("sdxl" if sdxl else "sd15"))), prompt=Prompt("a knight walking"),
                         sampling=sampling,
                         output="animation", animation=animation)


def run_one(root: Path, name: str, size: int, steps: int, device: str) -> dict:
    import torch

    from asset_studio.engine.backend import LocalBackend
    from asset_studio.service import run_job

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    case = CASES[name]
    backend = LocalBackend(device=device)
    job = job_for(root, case, size, steps)
    warm = job_for(root, dict(case, frames=min(case["frames"], 8)), size, 1)
    with tempfile.TemporaryDirectory() as out:
        run_job(warm, backend, Path(out) / "warm")  # loads the models: not part of the per-frame time
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = run_job(job, backend, Path(out) / "run")
        seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"case": name, "frames": len(result.saved), "s_per_frame": seconds / len(result.saved),
            "peak_mib": peak / 2**20, "peak_kind": "cuda allocated" if device.startswith("cuda") else "process RSS"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_one(Path(args.root), args.case, args.size, args.steps, args.device)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root)
        rows = []
        for name in CASES:  # a fresh process each: peak memory is that case's own
            out = subprocess.run([sys.executable, __file__, "--case", name, "--root", str(root), "--size",
                                  str(args.size), "--steps", str(args.steps), "--device", args.device],
                                 capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                return out.returncode
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"tiny models, {args.size}x{args.size}, {args.steps} steps, {args.device}")
    print(f"{'case':32} {'frames':>6} {'s/frame':>9} {'peak MiB':>9}  ({rows[0]['peak_kind']})")
    for r in rows:
        print(f"{r['case']:32} {r['frames']:6d} {r['s_per_frame']:9.3f} {r['peak_mib']:9.0f}")
    base = {r["case"]: r["s_per_frame"] for r in rows}
    print(f"loop / no loop (16 frames): {base['text 16 frames, loop'] / base['text 16 frames']:.2f}x per frame")
    print(f"32 frames with FreeNoise / 16 frames: {base['text 32 frames (FreeNoise)'] / base['text 16 frames']:.2f}x per frame")
    print("16 frames of SD 1.5 at 512² on a 12 GB card: not measured (no GPU lent to this task).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
