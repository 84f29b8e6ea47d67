"""Background removal quality and speed on real sprites composited over light backgrounds.

    .venv/bin/python bench/bg_quality.py [--sprites DIR] [--limit N] [--canvas 512]

Every sprite of ../shared/data/sprites-dev (CC0, with true alpha) is scaled so its longer side
is 3/4 of the canvas (128 px -> 384 px on the default 512 px canvas, a typical Stable Diffusion
output with the subject centred and a margin around it), premultiplied-bicubic so the true
alpha keeps soft edges, and composited over three backgrounds: plain white, a light vertical
gradient and light Gaussian noise (σ = 6 per channel on a light grey). Each method's alpha is
thresholded at 0.5 and compared with the true alpha (IoU), and timed per image. The baseline is
rembg's u2netp with one reused session, measured in the same run on the same images.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
if (SHARED / "models" / "rembg" / "u2netp.onnx").is_file():
    os.environ.setdefault("U2NET_HOME", str(SHARED / "models" / "rembg"))

from asset_studio.engine.background import RemovalOptions, get_session, remove_background  # noqa: E402


def scaled_sprite(path: Path, canvas: int) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied RGB and alpha of the sprite scaled to 3/4 of the canvas and centred on it."""
    im = Image.open(path).convert("RGBA")
    scale = canvas * 3 / 4 / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    px = np.asarray(im, dtype=np.float32) / 255.0
    pre = px[..., :3] * px[..., 3:]
    chans = [Image.fromarray(c).resize(size, Image.Resampling.BICUBIC) for c in np.moveaxis(np.dstack([pre, px[..., 3]]), 2, 0)]
    up = np.clip(np.stack([np.asarray(c) for c in chans], axis=-1), 0.0, 1.0)
    out = np.zeros((canvas, canvas, 4), np.float32)
    ox, oy = (canvas - size[0]) // 2, (canvas - size[1]) // 2
    out[oy : oy + size[1], ox : ox + size[0]] = up
    rgb_pre, alpha = out[..., :3], out[..., 3]
    rgb_pre = np.minimum(rgb_pre, alpha[..., None])  # bicubic overshoot must not exceed coverage
    return rgb_pre, alpha


def backgrounds(canvas: int) -> dict[str, np.ndarray]:
    white = np.ones((canvas, canvas, 3), np.float32)
    t = np.linspace(0.0, 1.0, canvas, dtype=np.float32)[:, None, None]
    top, bottom = np.array([0.98, 0.97, 0.93]), np.array([0.84, 0.88, 0.95])
    gradient = np.broadcast_to(top * (1 - t) + bottom * t, (canvas, canvas, 3)).astype(np.float32)
    rng = np.random.default_rng(0)
    noise = np.clip(0.93 + rng.normal(0.0, 6 / 255, (canvas, canvas, 3)), 0, 1).astype(np.float32)
    return {"white": white, "gradient": gradient, "noise": noise}


def composite(rgb_pre: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return (np.clip(rgb_pre + (1 - alpha[..., None]) * bg, 0, 1) * 255 + 0.5).astype(np.uint8)


def iou(pred: np.ndarray, true: np.ndarray) -> float:
    p, t = pred >= 0.5, true >= 0.5
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def run_rembg_u2netp(session, image: Image.Image) -> np.ndarray:
    from rembg import remove

    return np.asarray(remove(image, session=session, only_mask=True), np.float32) / 255.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sprites", type=Path, default=SHARED / "data" / "sprites-dev")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N sprites (0 = all)")
    ap.add_argument("--canvas", type=int, default=512)
    ap.add_argument("--worst", type=int, default=0, help="list the N worst images of `auto`")
    ap.add_argument("--with-model", action="store_true", help="also time our `model` method (u2netp)")
    args = ap.parse_args()
    paths = sorted(args.sprites.rglob("*.png"))
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        print(f"no sprites under {args.sprites}")
        return 1
    bgs = backgrounds(args.canvas)
    session = get_session("u2netp")  # created once, reused for every image (rembg's and ours)
    methods = {
        "rembg u2netp": lambda im: run_rembg_u2netp(session, im),
        "ours auto": lambda im: np.asarray(remove_background(im, RemovalOptions(method="auto")))[..., 3] / 255.0,
        "ours key": lambda im: np.asarray(remove_background(im, RemovalOptions(method="key")))[..., 3] / 255.0,
    }
    if args.with_model:  # the same u2netp session through our path (adds defringe), slow
        methods["ours model (u2netp)"] = lambda im: np.asarray(remove_background(im, RemovalOptions(method="model")))[..., 3] / 255.0
    sprites = [scaled_sprite(p, args.canvas) for p in paths]
    print(f"{len(paths)} sprites on a {args.canvas}x{args.canvas} canvas, backgrounds: {', '.join(bgs)}")
    results: dict[tuple[str, str], tuple[float, float]] = {}
    worst: list[tuple[float, str, str]] = []
    for bg_name, bg in bgs.items():
        images = [(Image.fromarray(composite(pre, a, bg)), a) for pre, a in sprites]
        for name, fn in methods.items():
            fn(images[0][0])  # warm-up: first-call costs (session, JIT) are not throughput
            scores, t0 = [], time.perf_counter()
            for (im, true), path in zip(images, paths):
                s = iou(fn(im), true)
                scores.append(s)
                if name == "ours auto":
                    worst.append((s, bg_name, str(path.relative_to(args.sprites))))
            elapsed = time.perf_counter() - t0
            results[(name, bg_name)] = (float(np.mean(scores)), len(images) / elapsed)
            print(f"  {bg_name:9s} {name:22s} IoU {results[(name, bg_name)][0]:.4f}  {results[(name, bg_name)][1]:.1f} img/s", flush=True)

    print(f"\n{'method':22s}" + "".join(f"{b + ' IoU':>14s}{b + ' img/s':>14s}" for b in bgs))
    for name in methods:
        row = f"{name:22s}"
        for b in bgs:
            m, ips = results[(name, b)]
            row += f"{m:14.4f}{ips:14.1f}"
        print(row)
    print()
    ok = True
    for b in bgs:
        m, ips = results[("ours auto", b)]
        base = results[("rembg u2netp", b)][1]
        good = m >= 0.98 and ips >= base
        ok &= good
        print(f"{b:9s} auto IoU {m:.4f} (goal >= 0.98), speed {ips / base:.1f}x rembg u2netp  {'OK' if good else 'MISSED'}")
    if args.worst:
        print("\nworst auto images:")
        for s, b, p in sorted(worst)[: args.worst]:
            print(f"  {s:.3f}  {b:9s} {p}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
