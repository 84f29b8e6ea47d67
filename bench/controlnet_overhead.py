"""ControlNet overhead: the local backend running a ControlNet job vs a plain diffusers script.

Both run the same tiny random SD1.5-shaped model and tiny ControlNet on the CPU, same control
image, same steps. Runs are interleaved; the script prints the median of each and their ratio
(goal: at most 1.05). It also times render_control() for a 512x256 button layout.

    .venv/bin/python bench/controlnet_overhead.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionControlNetPipeline
    from PIL import Image

    from asset_studio.core.control_image import render_control
    from asset_studio.core.job import ControlUnit, GenerationJob, ModelRef, Prompt, Sampling
    from asset_studio.core.layout import load_layout
    from asset_studio.engine.backend import LocalBackend
    from asset_studio.engine.controlnet import load_controlnet
    from tiny_controlnet import save_tiny_controlnet
    from tiny_models import build_tiny_sd15, save_diffusers

    layout = load_layout(Path(__file__).resolve().parents[1] / "asset_studio/core/layouts/button.json")
    render_times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        render_control(layout, "lineart")
        render_times.append(time.perf_counter() - t)

    tmp = Path(tempfile.mkdtemp())
    model = save_diffusers(build_tiny_sd15(), tmp / "tiny")
    control = tmp / "control.png"
    render_control(layout, "lineart", size=(128, 128)).save(control)
    backend = LocalBackend(device="cpu", dtype=torch.float32)
    base = backend.load(GenerationJob(model=ModelRef(str(model)), prompt=Prompt("x"))).pipe
    cn_dir = save_tiny_controlnet(base.unet, tmp / "cn")
    job = GenerationJob(model=ModelRef(str(model)), prompt=Prompt("a button"),
                        sampling=Sampling(width=128, height=128, steps=4, sampler="Euler a", seed=0),
                        controls=[ControlUnit(model=str(cn_dir), image=str(control))])

    plain = StableDiffusionControlNetPipeline(**base.components, controlnet=load_controlnet(str(cn_dir), "cpu", torch.float32))
    plain.set_progress_bar_config(disable=True)
    control_image = Image.open(control).convert("RGB")

    def ours():
        backend.generate(job, preview=False)

    def theirs():
        plain(prompt=job.prompt.text, image=control_image, width=128, height=128, num_inference_steps=job.sampling.steps,
              generator=torch.Generator().manual_seed(0))

    ours(), theirs()  # warm-up: first calls pay for lazy imports and allocations
    a, b = [], []
    for _ in range(args.runs):
        for fn, out in ((ours, a), (theirs, b)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    print(f"render_control lineart 512x256: median {statistics.median(render_times) * 1000:.1f} ms")
    print(f"asset-studio controlnet: median {statistics.median(a):.3f} s")
    print(f"plain diffusers:         median {statistics.median(b):.3f} s")
    print(f"ratio: {statistics.median(a) / statistics.median(b):.3f}")


if __name__ == "__main__":
    main()
