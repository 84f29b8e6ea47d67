"""Tiled upscaler vs spandrel called once on the whole image: speed and peak memory.

Same model (a small random Real-ESRGAN Compact x4, 32 features, 8 convs, or ESRGAN with
--arch esrgan), same input (512x512 by default), same run: the two are timed interleaved and the
script prints input megapixels per second of each and their ratio (tiled / whole). Both sides
include the uint8 <-> float conversions. Peak memory is measured in a fresh child process per
variant, after a small warm-up call: on the CPU, the rise of the resident peak (VmHWM, reset just
before the upscale through /proc/self/clear_refs; Linux) over the resident memory at that moment;
on CUDA, torch.cuda.max_memory_allocated.

    .venv/bin/python bench/upscale.py [--size 512] [--tiles 512 256 128] [--runs 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_model(folder: Path, arch: str) -> Path:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    if arch == "esrgan":
        from spandrel.architectures.ESRGAN import ESRGAN

        net = ESRGAN(num_filters=16, num_blocks=2, scale=4)
    else:
        from spandrel.architectures.Compact import Compact

        net = Compact(num_feat=32, num_conv=8, upscale=4)
    path = folder / f"bench-{arch}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def make_input(size: int):
    import numpy as np

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    rgb = np.stack([xx / size, yy / size, 0.5 + 0.4 * np.sin((xx + yy) / 17)], -1)
    return (rgb * 255).astype(np.uint8)


def whole_fn(upscaler):
    """Plain spandrel: one call on the whole image."""
    import numpy as np
    import torch

    def run(arr):
        x = torch.from_numpy(arr.transpose(2, 0, 1).copy())[None].to(upscaler.device, upscaler.dtype) / 255.0
        y = upscaler.descriptor(x)
        return (y[0].float().cpu().numpy().transpose(1, 2, 0) * 255.0 + 0.5).clip(0, 255).astype(np.uint8)

    return run


def tiled_fn(upscaler, tile: int, overlap: int):
    return lambda arr: upscaler.run_model(arr, tile, overlap)


def current_rss_kib() -> int:
    """Resident memory now (Linux /proc), in KiB like ru_maxrss: the peak rise is measured from it."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() // 1024


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def sync(upscaler) -> None:
    if upscaler.device.type == "cuda":
        import torch

        torch.cuda.synchronize()


def child(args) -> None:
    """One variant, one upscale, in a fresh process: its peak memory."""
    import torch

    from asset_studio.engine.upscale import load_upscaler

    up = load_upscaler(Path(args.model), device=args.device)
    arr = make_input(args.size)
    fn = whole_fn(up) if args.child == "whole" else tiled_fn(up, int(args.child), args.overlap)
    fn(make_input(40))  # first-call costs (kernel libraries paged in, thread pools) are not the variant's
    if up.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = current_rss_kib()
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    fn(arr)
    sync(up)
    if up.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = (peak_rss_kib() - before) * 1024
    print(json.dumps({"peak_bytes": peak}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tiles", type=int, nargs="+", default=[512, 256, 128])
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--arch", choices=["compact", "esrgan"], default="compact")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return

    from asset_studio.engine.upscale import load_upscaler

    tmp = Path(tempfile.mkdtemp())
    model = build_model(tmp, args.arch)
    up = load_upscaler(model, device=args.device)
    arr = make_input(args.size)
    variants = {"whole": whole_fn(up)} | {f"tile {t}": tiled_fn(up, t, args.overlap) for t in args.tiles}
    outputs = {name: fn(arr) for name, fn in variants.items()}  # warm-up, and the outputs to compare
    sync(up)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn(arr)
            sync(up)
            times[name].append(time.perf_counter() - t)

    mp = args.size * args.size / 1e6
    print(f"{args.arch} x{up.scale} on {up.device} ({str(up.dtype).removeprefix('torch.')}), "
          f"{args.size}x{args.size} input, overlap {args.overlap}, median of {args.runs}, {args.threads} threads")
    base = statistics.median(times["whole"])
    for name in variants:
        med = statistics.median(times[name])
        peak = subprocess.run(
            [sys.executable, __file__, "--model", str(model), "--child", name.removeprefix("tile "),
             "--size", str(args.size), "--overlap", str(args.overlap), "--device", args.device,
             "--threads", str(args.threads)],
            capture_output=True, text=True, check=True,
            # glibc would otherwise keep freed large blocks in its heap (its mmap threshold rises
            # after each free), so the resident peak would show the allocator, not the variant.
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"},
        )
        peak_mb = json.loads(peak.stdout.strip().splitlines()[-1])["peak_bytes"] / 2**20
        diff = int(np.abs(outputs[name].astype(int) - outputs["whole"].astype(int)).max())
        print(f"  {name:<9} {mp / med:7.3f} MP/s  ratio {base / med:5.2f}  peak +{peak_mb:7.1f} MB  "
              f"max |diff| vs whole {diff}")


if __name__ == "__main__":
    main()
