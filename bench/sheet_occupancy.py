"""Sheet area against rectpack's MaxRects in its smallest fitting square, same rectangles, same run.

    .venv/bin/python bench/sheet_occupancy.py [--sprites DIR]

Rectangles: the trimmed sprites of ../shared/data/sprites-dev (padding 0) and three synthetic
sets of 150 random rectangles (8..128 px). The baseline is rectpack's MaxRectsBssf without
rotation in the smallest square that holds every rectangle (found by binary search on the side,
then stepping down while a smaller side still fits, since fitting is not monotonic). The goal:
our area <= baseline / 0.98.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import rectpack  # noqa: E402

from asset_studio.core.sheet import SheetOptions, best_layout, load_sprites  # noqa: E402


def rectpack_fits(sizes, side: int) -> bool:
    packer = rectpack.newPacker(mode=rectpack.PackingMode.Offline, pack_algo=rectpack.MaxRectsBssf, rotation=False)
    for i, (w, h) in enumerate(sizes):
        packer.add_rect(w, h, rid=i)
    packer.add_bin(side, side)
    packer.pack()
    return len(packer.rect_list()) == len(sizes)


def rectpack_square(sizes) -> int:
    lo = int(max(max(max(w, h) for w, h in sizes), sum(w * h for w, h in sizes) ** 0.5))
    hi = lo * 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if rectpack_fits(sizes, mid) else (mid + 1, hi)
    while rectpack_fits(sizes, lo - 1):
        lo -= 1
    return lo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sprites", type=Path, default=REPO.parent / "shared" / "data" / "sprites-dev")
    args = ap.parse_args()
    sets = {}
    if args.sprites.is_dir():
        sets["sprites-dev (trimmed)"] = [(s.trim[2], s.trim[3]) for s in load_sprites([args.sprites], trim=True)]
    for seed in range(3):
        r = random.Random(seed)
        sets[f"random-{seed} (150)"] = [(r.randint(8, 128), r.randint(8, 128)) for _ in range(150)]

    print(f"{'set':22s}{'rects':>6s}{'ours WxH':>12s}{'ours area':>11s}{'fill':>7s}{'rectpack':>10s}{'rp area':>10s}{'ratio':>7s}{'ours s':>8s}{'rp s':>7s}")
    ok = True
    for name, sizes in sets.items():
        t0 = time.perf_counter()
        _, (w, h) = best_layout(sizes, SheetOptions(), 0)
        t1 = time.perf_counter()
        side = rectpack_square(sizes)
        t2 = time.perf_counter()
        used = sum(a * b for a, b in sizes)
        ratio = (w * h) / (side * side)
        ok &= ratio <= 1 / 0.98
        print(
            f"{name:22s}{len(sizes):6d}{f'{w}x{h}':>12s}{w * h:11d}{used / (w * h):7.3f}{f'{side}²':>10s}{side * side:10d}"
            f"{ratio:7.3f}{t1 - t0:8.2f}{t2 - t1:7.2f}"
        )
    print(f"\ngoal: ours / rectpack <= {1 / 0.98:.4f} on every set: {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
