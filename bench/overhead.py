"""Overhead of `asset-studio generate` over a plain diffusers script doing the same work.

Both run as fresh processes (start-up and imports count, as they do for a user), on the same
model, prompt, sampler, seed, size and steps, each writing one PNG. Runs are interleaved so
machine load hits both alike; the figure is the ratio of the median wall times. Goal: <= 1.05.

    .venv/bin/python bench/overhead.py                      # a tiny random SD 1.5 model it builds
    .venv/bin/python bench/overhead.py --model PATH_OR_ID --size 512x512 --steps 20 --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

PLAIN = textwrap.dedent(
    """
    import sys
    import torch
    import diffusers

    model, family, prompt, steps, width, height, seed, out, device = sys.argv[1:10]
    dtype = torch.float32 if device == "cpu" else torch.float16
    cls = diffusers.StableDiffusionXLPipeline if family == "sdxl" else diffusers.StableDiffusionPipeline
    extra = {} if family == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    if model.endswith(".safetensors"):
        pipe = cls.from_single_file(model, torch_dtype=dtype, local_files_only=True, **extra)
    else:
        pipe = cls.from_pretrained(model, torch_dtype=dtype, local_files_only=True, **extra)
    pipe.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(int(seed))
    image = pipe(prompt, num_inference_steps=int(steps), guidance_scale=7.0, width=int(width),
                 height=int(height), generator=generator).images[0]
    image.save(out)
    print(out)
    """
)


def build_tiny_model(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_models import build_tiny_sd15, save_diffusers

    return save_diffusers(build_tiny_sd15(), folder / "tiny-sd15")


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child). CPU time barely moves with other load on the box."""
    try:
        import resource

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
    except ImportError:  # Windows
        resource = before = None
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-2000:]}")
    cpu = float("nan")
    if resource is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a model path or cached repo id (default: a tiny model built here)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each, interleaved (default 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP/torch threads for both (default: torch's own choice)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", default=None, help="WxH (default 128x128 tiny, 512x512 real)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from asset_studio.engine.loader import detect_family, resolve_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or str(build_tiny_model(tmp))
        source = resolve_model(model)
        family = detect_family(source)
        size = args.size or ("128x128" if not args.model else ("1024x1024" if family == "sdxl" else "512x512"))
        width, height = size.lower().split("x")
        prompt, seed = "a red health potion, game icon", "1"
        script = tmp / "plain.py"
        script.write_text(PLAIN)
        env = dict(os.environ, HF_HUB_OFFLINE="1", ASSET_STUDIO_CACHE=str(tmp / "cache"))
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)

        ours_cmd = [str(BIN / "asset-studio"), "generate", prompt, "--model", model, "--steps", str(args.steps),
                    "--size", size, "--seed", seed, "--sampler", "Euler a", "--cfg", "7",
                    "--device", args.device, "--out", str(tmp / "ours")]
        plain_model = str(source.path)
        plain_cmd = [sys.executable, str(script), plain_model, family, prompt, str(args.steps), width, height, seed,
                     str(tmp / "plain.png"), args.device]

        # One untimed run of each warms the OS file cache and writes the offline configs.
        timed(ours_cmd, env)
        timed(plain_cmd, env)
        ours, plain = [], []
        for i in range(args.runs):
            pair = [(ours, ours_cmd), (plain, plain_cmd)]
            for bucket, cmd in (pair if i % 2 == 0 else pair[::-1]):
                bucket.append(timed(cmd, env))

    wall_ours, wall_plain = [w for w, _ in ours], [w for w, _ in plain]
    cpu_ours, cpu_plain = [c for _, c in ours], [c for _, c in plain]
    med_ours, med_plain = statistics.median(wall_ours), statistics.median(wall_plain)
    print(f"model: {model} ({family}), {size}, {args.steps} steps, device {args.device}, {args.runs} runs each")
    print(f"asset-studio generate  median {med_ours:.3f} s  runs {', '.join(f'{t:.2f}' for t in wall_ours)}")
    print(f"plain diffusers script median {med_plain:.3f} s  runs {', '.join(f'{t:.2f}' for t in wall_plain)}")
    print(f"ratio (ours / plain), median wall time: {med_ours / med_plain:.3f}  (goal <= 1.05)")
    # On a busy machine wall time swings with other load; these two are steadier cross-checks.
    print(f"ratio of fastest runs: {min(wall_ours) / min(wall_plain):.3f}")
    print(f"ratio of median CPU time: {statistics.median(cpu_ours) / statistics.median(cpu_plain):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
