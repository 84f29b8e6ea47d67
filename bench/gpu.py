"""GPU benchmark: the studio's local backend against plain diffusers, same process, same weights.

    .venv/bin/python bench/gpu.py [--families sd15 sdxl] [--steps 20] [--caps 8 4]

Builds full-size pipelines of the real SD 1.5 and SDXL configs (the ones shipped in
asset_studio/engine/configs) with random weights — the same FLOPs as real weights, which these
machines cannot download — saves them to a temporary folder in fp16, and prints one table:

    it/s at batch 1 and batch 8 (plain diffusers fp16 + SDPA, then the studio's LocalBackend),
    their ratio, first-image latency, peak memory, and the same under a memory cap
    (torch.cuda.set_per_process_memory_fraction) of 8 and 4 GB, where the studio's memory policy
    (engine/memory.py) decides offload and slicing.

Needs a CUDA card; on a machine without one it says so and exits 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SIZES = {"sd15": 512, "sdxl": 1024}


def build(family: str, folder: Path) -> Path:
    """A full-size pipeline of FAMILY's real config with random weights, saved as a diffusers folder."""
    import diffusers
    import torch
    import transformers

    from asset_studio.core.families import FAMILIES
    from asset_studio.engine.loader import single_file_config_dir

    config = single_file_config_dir(family)
    torch.manual_seed(0)
    parts = {
        "unet": diffusers.UNet2DConditionModel.from_config(diffusers.UNet2DConditionModel.load_config(config / "unet")),
        "vae": diffusers.AutoencoderKL.from_config(diffusers.AutoencoderKL.load_config(config / "vae")),
        "text_encoder": transformers.CLIPTextModel(transformers.CLIPTextConfig.from_pretrained(config / "text_encoder")),
        "tokenizer": transformers.CLIPTokenizer.from_pretrained(config / "tokenizer"),
        "scheduler": diffusers.EulerDiscreteScheduler.from_pretrained(config / "scheduler"),
    }
    if family == "sdxl":
        parts["text_encoder_2"] = transformers.CLIPTextModelWithProjection(
            transformers.CLIPTextConfig.from_pretrained(config / "text_encoder_2"))
        parts["tokenizer_2"] = transformers.CLIPTokenizer.from_pretrained(config / "tokenizer_2")
        pipe = diffusers.StableDiffusionXLPipeline(**parts)
    else:
        pipe = diffusers.StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                                 requires_safety_checker=False)
    pipe.to(torch.float16).save_pretrained(folder / FAMILIES[family].config_name, safe_serialization=True)
    return folder / FAMILIES[family].config_name


def its(fn, steps: int, runs: int = 3) -> tuple[float, float]:
    """(iterations per second, seconds of the first call) of FN, which runs STEPS steps."""
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    first = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return steps / statistics.median(times), first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=["sd15", "sdxl"], choices=sorted(SIZES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--caps", nargs="*", type=float, default=[8, 4], help="memory caps in GB")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu.py needs a CUDA card; none is here.", file=sys.stderr)
        return 2
    import diffusers

    from asset_studio.core.job import GenerationJob, ModelRef, Prompt, Sampling
    from asset_studio.engine.backend import LocalBackend

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for family in args.families:
            folder = build(family, tmp)
            side = SIZES[family]
            cls = diffusers.StableDiffusionXLPipeline if family == "sdxl" else diffusers.StableDiffusionPipeline
            plain = cls.from_pretrained(folder, torch_dtype=torch.float16).to("cuda")
            plain.set_progress_bar_config(disable=True)
            backend = LocalBackend(device="cuda")
            for batch in (1, 8):
                job = GenerationJob(model=ModelRef(str(folder)), prompt=Prompt("a red health potion"),
                                    sampling=Sampling(sampler="Euler", steps=args.steps, width=side, height=side,
                                                      seed=1, count=batch, batch=batch))
                p_its, p_first = its(lambda: plain("a red health potion", num_inference_steps=args.steps,
                                                   width=side, height=side, num_images_per_prompt=batch),
                                     args.steps)
                s_its, s_first = its(lambda: backend.generate(job, preview=False), args.steps)
                peak = torch.cuda.max_memory_allocated() / 2**30
                rows.append((family, batch, "none", p_its, s_its, s_first, peak))
            for cap in args.caps:
                total = torch.cuda.get_device_properties(0).total_memory
                torch.cuda.set_per_process_memory_fraction(min(1.0, cap * 2**30 / total))
                torch.cuda.reset_peak_memory_stats()
                job.sampling.count = job.sampling.batch = 1
                s_its, s_first = its(lambda: backend.generate(job, preview=False), args.steps, runs=1)
                rows.append((family, 1, f"{cap:g} GB", float("nan"), s_its, s_first,
                             torch.cuda.max_memory_allocated() / 2**30))
                torch.cuda.set_per_process_memory_fraction(1.0)
            del plain, backend
            torch.cuda.empty_cache()
    print(f"{'family':6} {'batch':>5} {'cap':>6} {'plain it/s':>10} {'studio it/s':>11} {'ratio':>6} "
          f"{'first s':>8} {'peak GB':>8}")
    for family, batch, cap, p, s, first, peak in rows:
        print(f"{family:6} {batch:5d} {cap:>6} {p:10.2f} {s:11.2f} {s / p if p == p else float('nan'):6.2f} "
              f"{first:8.2f} {peak:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
