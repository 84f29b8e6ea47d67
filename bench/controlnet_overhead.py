"""ControlNet overhead: Asset Studio's controlnet_pipeline() + call vs a plain diffusers script.

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
    from asset_studio.core.job import ControlUnit, GenerationJob
    from asset_studio.core.layout import load_layout
    from asset_studio.engine.controlnet import controlnet_pipeline, load_controlnet
    from tiny_controlnet import save_tiny_controlnet
    from tiny_models import build_tiny_sd15

    layout = load_layout(Path(__file__).resolve().parents[1] / "asset_studio/core/layouts/button.json")
    render_times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        render_control(layout, "lineart")
        render_times.append(time.perf_counter() - t)

    tmp = Path(tempfile.mkdtemp())
    base = build_tiny_sd15()
    base.set_progress_bar_config(disable=True)
    cn_dir = save_tiny_controlnet(base.unet, tmp / "cn")
    control = tmp / "control.png"
    render_control(layout, "lineart", size=(128, 128)).save(control)
    job = GenerationJob(model="tiny", prompt="a button", width=128, height=128, steps=4,
                        controlnets=[ControlUnit(model=str(cn_dir), image=str(control))])

    plain = StableDiffusionControlNetPipeline(**base.components, controlnet=load_controlnet(str(cn_dir), "cpu", torch.float32))
    plain.set_progress_bar_config(disable=True)
    control_image = Image.open(control).convert("RGB")

    def ours():
        pipe, extra = controlnet_pipeline(base, job, "sd15", "cpu", torch.float32)
        pipe(prompt=job.prompt, num_inference_steps=job.steps, generator=torch.Generator().manual_seed(0), **extra)

    def theirs():
        plain(prompt=job.prompt, image=control_image, width=128, height=128, num_inference_steps=job.steps,
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
