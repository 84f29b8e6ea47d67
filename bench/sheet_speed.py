"""Speed of the whole `asset-studio sheet` command against a rectpack script, same sprites, same run.

    .venv/bin/python bench/sheet_speed.py [--count 2000] [--also 10000] [--old-ref COMMIT]

Sprites: COUNT random PNGs of 16..96 px (seeded): blobs with soft edges and rectangles, a third
of them inside transparent margins so trimming matters. Ours: the real command in a fresh
process, `sheet DIR --out a.png --format texturepacker-hash --trim --padding 0 --max-size 8192`
(numba's compiled kernels are cached on disk by a warm-up run on other sprites first). The
baseline: the short script a user would write around rectpack: open and trim every sprite, pack
them once into a square bin a tenth over their area (grown by a tenth until all fit), paste the
frames, save the PNG and a TexturePacker-style JSON. Goal at 2,000 sprites: the script's wall time /
ours >= 40, and our sheet area no larger than the packer's before the rewrite (measured with
--old-ref, which loads that commit's core/sheet.py and runs its layout search on the same
rectangles: minutes).
--also N times ours on N sprites as well (without the baseline, which would take hours).

Measured 2026-12-02 on the 2-core dev machine (shared: the same command varies 1.4-2.5 s from one
minute to the next, so compare ratios from one run), ours the median of three runs:
- stop 3, final (the machine slow that hour: the script took 166 s): noise sprites ours 2.07 s
  wall / 3.26 s CPU (with the reading child), the script 166.2 s: 80.4x wall, 50.0x CPU; art
  sprites ours 2.07 s / 3.09 s, the script 138.8 s: 67.1x wall, 44.4x CPU. 10,000 noise sprites:
  ours 9.0 s wall (stop 2: 14.5-19.9 s). Earlier runs this stop: 75.5x / 65.2x and 85.0x / 66.4x
  (noise / art, wall) with the child reading a fixed three quarters; before the child 52.3x /
  56.6x, 56.4x / 60.2x, 73.7x / 50.5x. Area ours / script 0.830, and the layout search is
  unchanged since stop 2, where --old-ref 94c7664 gave the same 5,132,086 px (1.000).
- stop 2, for comparison (quiet): noise 3.91 s wall, 33.1x; art 2.88 s, 37.2x.
Where ours goes now (noise set, in process, seconds): start-up and imports 0.25; listing 0.06;
reading 0.45 and loading numba with the cached kernels 0.5, at once (core/sprite_reader.py: a
child reads chunks from the front, this process from the back once loaded); 106 packs on two threads 0.22; drawing and bleeding 0.15; the PNG
(core/png_encode.py: compiled filters, zlib-ng in 1 MiB pieces on both cores) 0.3 against
Pillow's 1.3; the JSON 0.03 (C encoder); the end of the process 0.05 (gc.freeze: numba's objects
made it 0.3). Fresh memory is slow and erratic on these virtual machines (290 MB touched took
0.12-2.7 s in a bare loop), so the run also avoids copies: 74,000 page faults per run became
50,000. The first run after an install compiles the kernels (about 9 s, once).
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

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asset_studio.core.sheet import SheetOptions, best_layout, load_sprites  # noqa: E402


SPRITES_DEV = REPO.parent / "shared" / "data" / "sprites-dev"


def make_art_sprites(folder: Path, count: int, seed: int = 0, source: Path = SPRITES_DEV) -> Path:
    """COUNT sprites of 16..96 px cut from real CC0 art (../shared/data/sprites-dev): a random
    sprite, scaled so its longer side is a random 16..96 px, with a random crop a third of the
    time; flat colours and clean alpha compress like the art the studio makes, where the noise
    sprites are a worst case for the PNG encoder."""
    stamp = folder / f".made-{count}-{seed}"
    if stamp.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    art = [Image.open(p).convert("RGBA") for p in sorted(source.rglob("*.png"))]
    for i in range(count):
        im = art[int(rng.integers(len(art)))]
        if i % 3 == 0:  # a part of it: other sizes and aspects than the source set has
            w, h = im.size
            cw, ch = int(rng.integers(w // 2, w + 1)), int(rng.integers(h // 2, h + 1))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            im = im.crop((x, y, x + cw, y + ch))
        side = int(rng.integers(16, 97))
        scale = side / max(im.size)
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        im.resize(size, Image.Resampling.NEAREST).save(folder / f"a{i:05d}.png")
    stamp.touch()
    return folder


def make_sprites(folder: Path, count: int, seed: int = 0) -> Path:
    """COUNT random sprites in folder (kept between runs: the same seed gives the same files)."""
    stamp = folder / f".made-{count}-{seed}"
    if stamp.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        w, h = (int(v) for v in rng.integers(16, 97, 2))
        px = np.zeros((h, w, 4), np.uint8)
        if i % 3 == 0:  # transparent margins around the drawn part
            bw, bh = int(rng.integers(max(4, w // 3), w + 1)), int(rng.integers(max(4, h // 3), h + 1))
        else:
            bw, bh = w, h
        x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
        colour = rng.integers(0, 256, 3)
        noise = rng.integers(-24, 25, (bh, bw, 3))
        px[y0 : y0 + bh, x0 : x0 + bw, :3] = np.clip(colour + noise, 0, 255)
        if i % 4 == 3:  # a solid tile
            px[y0 : y0 + bh, x0 : x0 + bw, 3] = 255
        else:  # a blob with a soft edge: transparent corners for bleeding
            yy, xx = np.mgrid[0:bh, 0:bw]
            ell = ((xx - bw / 2 + 0.5) / (bw / 2)) ** 2 + ((yy - bh / 2 + 0.5) / (bh / 2)) ** 2
            px[y0 : y0 + bh, x0 : x0 + bw, 3] = (np.clip((1.0 - ell) * 4, 0, 1) * 255).astype(np.uint8)
        px[px[..., 3] == 0] = 0
        Image.fromarray(px, "RGBA").save(folder / f"s{i:05d}.png")
    stamp.touch()
    return folder


def rectpack_script(folder: Path, out: Path) -> None:
    """What a user writes around rectpack: trim, one square bin a little over the sprites' area
    (grown by a tenth until everything fits), paste, PNG + JSON."""
    import rectpack

    names = sorted(p.name for p in folder.glob("*.png"))
    crops = []
    for name in names:
        im = Image.open(folder / name).convert("RGBA")
        box = im.getchannel("A").getbbox() or (0, 0, 1, 1)
        crops.append((name, im.crop(box), box, im.size))
    sizes = [c[1].size for c in crops]
    side = int(sum(w * h for w, h in sizes) ** 0.5 * 1.1)
    while True:
        packer = rectpack.newPacker(rotation=False)
        for i, (w, h) in enumerate(sizes):
            packer.add_rect(w, h, rid=i)
        packer.add_bin(side, side)
        packer.pack()
        if len(packer.rect_list()) == len(sizes):
            break
        side = int(side * 1.1)
    page = Image.new("RGBA", (side, side))
    frames = {}
    for _, x, y, w, h, i in packer.rect_list():
        name, crop, box, size = crops[i]
        page.paste(crop, (x, y))
        frames[name] = {"frame": {"x": x, "y": y, "w": w, "h": h}, "spriteSourceSize": {"x": box[0], "y": box[1], "w": w, "h": h},
                        "sourceSize": {"w": size[0], "h": size[1]}}
    page.save(out)
    out.with_suffix(".json").write_text(json.dumps({"frames": frames, "meta": {"image": out.name, "size": {"w": side, "h": side}}}))


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of a command in a fresh process (CPU time is steadier on a shared machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def run_ours(folder: Path, out: Path) -> tuple[float, float, tuple[int, int]]:
    """Wall and CPU seconds of the whole command, and the page size it wrote."""
    wall, cpu = timed([sys.executable, "-m", "asset_studio", "sheet", str(folder), "--out", str(out), "--format",
                       "texturepacker-hash", "--trim", "--padding", "0", "--max-size", "8192"])
    size = json.loads(out.with_suffix(".json").read_text())["meta"]["size"]
    return wall, cpu, (size["w"], size["h"])


def run_rectpack(folder: Path, out: Path) -> tuple[float, float, int]:
    wall, cpu = timed([sys.executable, __file__, "--rectpack-script", str(folder), str(out)])
    return wall, cpu, json.loads(out.with_suffix(".json").read_text())["meta"]["size"]["w"]


def old_area(folder: Path, ref: str) -> int:
    """Sheet area of the layout search at git commit REF, on the same trimmed rectangles."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:asset_studio/core/sheet.py"], check=True,
                            capture_output=True, text=True).stdout
    module = sys.modules["old_sheet"] = type(sys)("old_sheet")  # dataclasses look their module up
    exec(compile(source, f"{ref}:asset_studio/core/sheet.py", "exec"), module.__dict__)
    sizes = [(s.trim[2], s.trim[3]) for s in load_sprites([folder], trim=True)]
    _, (w, h) = module.best_layout(sizes, module.SheetOptions(max_size=8192), 0)
    return w * h


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--also", type=int, nargs="*", default=[10000], help="sprite counts timed for ours only")
    ap.add_argument("--old-ref", help="git commit whose packer's area to measure on the same sprites")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "asset-studio-sheet-speed")
    ap.add_argument("--sprites", choices=("noise", "art", "both"), default="both",
                    help="synthetic noisy sprites (the PNG encoder's worst case), sprites cut from ../shared's CC0 art, or both")
    ap.add_argument("--no-baseline", action="store_true", help="skip the rectpack script (no ratio)")
    ap.add_argument("--rectpack-script", nargs=2, type=Path, metavar=("DIR", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rectpack_script:  # the baseline's own process
        rectpack_script(*args.rectpack_script)
        return 0

    # compiles and caches the kernels, as any later run finds them (1,000 sprites: a page big
    # enough for the PNG encoder's own filter kernel)
    warm = make_sprites(args.work / "sprites-1000", 1000, seed=1)
    run_ours(warm, args.work / "warm.png")

    ok = True
    kinds = ["noise", "art"] if args.sprites == "both" else [args.sprites]
    if "art" in kinds and not SPRITES_DEV.is_dir():
        print(f"no {SPRITES_DEV}: the art sprites are left out")
        kinds.remove("art")
    for kind in kinds:
        make = make_art_sprites if kind == "art" else make_sprites
        folder = make(args.work / f"{kind}-{args.count}", args.count)
        used = sum(s.trim[2] * s.trim[3] for s in load_sprites([folder], trim=True))
        # ours takes seconds, so it runs three times and the median counts (the script runs once: minutes)
        runs = sorted((run_ours(folder, args.work / "ours.png") for _ in range(3)), key=lambda r: r[0])
        wall, cpu, (w, h) = runs[1]
        print(f"{args.count} {kind} sprites, {used} px once trimmed")
        print(f"  ours      {wall:8.2f} s wall {cpu:8.2f} s CPU  {w}x{h} = {w * h} px (fill {used / (w * h):.3f})"
              f"   (runs: {', '.join(f'{r[0]:.2f}' for r in runs)} s)")
        if not args.no_baseline:
            rp_wall, rp_cpu, side = run_rectpack(folder, args.work / "rectpack.png")
            ok &= rp_wall / wall >= 40
            print(f"  rectpack  {rp_wall:8.2f} s wall {rp_cpu:8.2f} s CPU  {side}x{side} = {side * side} px (fill {used / side**2:.3f})")
            print(f"  rectpack / ours: {rp_wall / wall:.1f}x wall, {rp_cpu / cpu:.1f}x CPU (goal >= 40)   "
                  f"area ours / rectpack: {w * h / side**2:.4f}")
        if args.old_ref:
            t0 = time.perf_counter()
            old = old_area(folder, args.old_ref)
            ok &= w * h <= old
            print(f"  packer at {args.old_ref}: {old} px ({time.perf_counter() - t0:.0f} s); area ours / old = {w * h / old:.4f} (goal <= 1)")
    for n in args.also:
        folder = make_sprites(args.work / f"noise-{n}", n)
        used = sum(s.trim[2] * s.trim[3] for s in load_sprites([folder], trim=True))
        wall, cpu, (w, h) = run_ours(folder, args.work / f"ours-{n}.png")
        print(f"{n} noise sprites: ours {wall:.2f} s wall {cpu:.2f} s CPU  {w}x{h} (fill {used / (w * h):.3f})")
    print(f"\ngoals: {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
