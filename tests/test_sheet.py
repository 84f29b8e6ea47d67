"""Sheet packing: frames equal their trimmed sources, never overlap, restore their placement."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.exporters import export
from asset_studio.core.sheet import (
    SheetOptions,
    bleed,
    best_layout,
    find_animations,
    load_sprites,
    pack_sheet,
    save_pages,
)
from asset_studio.errors import UserError


def make_sprites(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A small sprite set: loose sprites, a numbered walk cycle and a folder animation.

    Each sprite is a random blob with soft edges inside a larger transparent canvas, so trim
    has something to cut and offsets matter. Returns {frame name: RGBA array}.
    """
    rng = np.random.default_rng(seed)
    names = ["coin.png", "gem.png", "hero/walk0.png", "hero/walk1.png", "hero/walk2.png", "hero/walk10.png"]
    names += ["jump/up.png", "jump/down.png", "tree.png", "rock.png"]
    out = {}
    for i, name in enumerate(names):
        w, h = int(rng.integers(20, 48)), int(rng.integers(20, 48))
        px = np.zeros((h, w, 4), np.uint8)
        bw, bh = int(rng.integers(6, w - 4)), int(rng.integers(6, h - 4))
        x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
        yy, xx = np.mgrid[0:bh, 0:bw]
        ell = ((xx - bw / 2 + 0.5) / (bw / 2)) ** 2 + ((yy - bh / 2 + 0.5) / (bh / 2)) ** 2
        alpha = np.clip((1.0 - ell) * 4, 0, 1)
        px[y0 : y0 + bh, x0 : x0 + bw, :3] = rng.integers(0, 256, (bh, bw, 3))
        px[y0 : y0 + bh, x0 : x0 + bw, 3] = (alpha * 255).astype(np.uint8)
        if i % 3 == 0:
            px[y0 + bh // 2, x0 : x0 + bw, 3] = 255  # a solid line reaching the blob's box edges
        px[px[..., 3] == 0] = 0
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(px, "RGBA").save(path)
        out[name] = px
    return out


@pytest.fixture
def sprite_dir(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path / "sprites"
    return folder, make_sprites(folder)


def read_frames(json_path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Frames of a TexturePacker hash file and its page pixels, via the data file only."""
    doc = json.loads(json_path.read_text())
    page = np.asarray(Image.open(json_path.parent / doc["meta"]["image"]).convert("RGBA"))
    return doc, page


def frame_pixels(page: np.ndarray, entry: dict) -> np.ndarray:
    f = entry["frame"]
    if entry["rotated"]:  # stored 90° clockwise: the page region is h x w
        region = page[f["y"] : f["y"] + f["w"], f["x"] : f["x"] + f["h"]]
        return np.rot90(region, k=1)  # turn back anticlockwise
    return page[f["y"] : f["y"] + f["h"], f["x"] : f["x"] + f["w"]]


def restore(page: np.ndarray, entry: dict) -> np.ndarray:
    """The source image rebuilt from the frame and its offsets."""
    out = np.zeros((entry["sourceSize"]["h"], entry["sourceSize"]["w"], 4), np.uint8)
    s = entry["spriteSourceSize"]
    out[s["y"] : s["y"] + s["h"], s["x"] : s["x"] + s["w"]] = frame_pixels(page, entry)
    return out


def same_visible(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal alpha everywhere and equal colour wherever a pixel shows (bleeding recolours the rest)."""
    if a.shape != b.shape or not np.array_equal(a[..., 3], b[..., 3]):
        return False
    vis = a[..., 3] > 0
    return np.array_equal(a[vis], b[vis])


def write_tp(sprite_folder: Path, out: Path, **opts) -> list[Path]:
    sheet = pack_sheet(load_sprites([sprite_folder], trim=opts.get("trim", False)), SheetOptions(**opts))
    pngs = save_pages(sheet, out)
    return export(sheet, pngs, "texturepacker-hash", out)


OPTION_SETS = [
    dict(trim=True),
    dict(trim=True, padding=2, extrude=1),
    dict(trim=True, rotate=True, padding=1),
    dict(trim=False, pot=True, square=True),
    dict(trim=True, max_size=40, padding=1),  # several pages
]


@pytest.mark.parametrize("opts", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_frames_equal_trimmed_sources_and_restore_placement(sprite_dir, tmp_path, opts):
    folder, sources = sprite_dir
    data_files = write_tp(folder, tmp_path / "out" / "sheet.png", **opts)
    seen = set()
    for data in data_files:
        doc, page = read_frames(data)
        for name, entry in doc["frames"].items():
            src = sources[name]
            s = entry["spriteSourceSize"]
            trimmed_src = src[s["y"] : s["y"] + s["h"], s["x"] : s["x"] + s["w"]]
            assert same_visible(frame_pixels(page, entry), trimmed_src), name
            assert same_visible(restore(page, entry), src), name
            if opts.get("trim"):
                ys, xs = np.nonzero(src[..., 3])
                assert (s["x"], s["y"]) == (xs.min(), ys.min())
                assert (s["w"], s["h"]) == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            seen.add(name)
        w, h = doc["meta"]["size"]["w"], doc["meta"]["size"]["h"]
        assert page.shape[:2] == (h, w)
        if opts.get("pot"):
            assert w & (w - 1) == 0 and h & (h - 1) == 0
        if opts.get("square"):
            assert w == h
        if "max_size" in opts:
            assert w <= opts["max_size"] and h <= opts["max_size"]
    assert seen == set(sources)
    if "max_size" in opts:
        assert len(data_files) > 1


@pytest.mark.parametrize("opts", OPTION_SETS[:3], ids=["trim", "pad-extrude", "rotate"])
def test_no_overlaps_and_padding_kept(sprite_dir, opts):
    folder, _ = sprite_dir
    sheet = pack_sheet(load_sprites([folder], trim=opts.get("trim", False)), SheetOptions(**opts))
    pad, ext = opts.get("padding", 0), opts.get("extrude", 0)
    rects = []
    for f in sheet.frames:
        x, y, w, h = f.page_rect
        pw, ph = sheet.pages[f.page].size
        assert 0 <= x - ext and 0 <= y - ext and x + w + ext <= pw and y + h + ext <= ph
        rects.append((f.page, x - ext, y - ext, w + 2 * ext, h + 2 * ext))
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            if a[0] != b[0]:
                continue
            # apart by at least the padding on one axis
            assert a[1] + a[3] + pad <= b[1] or b[1] + b[3] + pad <= a[1] or a[2] + a[4] + pad <= b[2] or b[2] + b[4] + pad <= a[2]


def test_extrude_repeats_the_edge(sprite_dir):
    folder, _ = sprite_dir
    sheet = pack_sheet(load_sprites([folder], trim=True), SheetOptions(trim=True, extrude=2, padding=1))
    for f in sheet.frames:
        page = np.asarray(sheet.pages[f.page].image)
        x, y, w, h = f.page_rect
        assert np.array_equal(page[y : y + h, x - 1], page[y : y + h, x])
        assert np.array_equal(page[y : y + h, x - 2], page[y : y + h, x])
        assert np.array_equal(page[y + h + 1, x : x + w], page[y + h - 1, x : x + w])


def test_packing_is_deterministic(sprite_dir, tmp_path):
    folder, _ = sprite_dir
    a = write_tp(folder, tmp_path / "a" / "s.png", trim=True, padding=1)
    b = write_tp(folder, tmp_path / "b" / "s.png", trim=True, padding=1)
    assert a[0].read_bytes() == b[0].read_bytes()
    assert (tmp_path / "a" / "s.png").read_bytes() == (tmp_path / "b" / "s.png").read_bytes()


def test_transparent_pixels_carry_the_nearest_opaque_colour():
    px = np.zeros((5, 7, 4), np.uint8)
    px[2, 1] = (200, 10, 10, 255)
    px[2, 5] = (10, 10, 200, 255)
    out = bleed(px)
    assert tuple(out[2, 0, :3]) == (200, 10, 10) and tuple(out[0, 6, :3]) == (10, 10, 200)
    assert np.array_equal(out[..., 3], px[..., 3])
    assert np.array_equal(out[2, 1], px[2, 1])


def test_packed_sheet_has_no_dark_halo(sprite_dir):
    folder, _ = sprite_dir
    sheet = pack_sheet(load_sprites([folder], trim=True), SheetOptions(trim=True, padding=2))
    page = np.asarray(sheet.pages[0].image).astype(int)
    f = sheet.frame("coin.png")
    x, y, w, h = f.page_rect
    tile = page[y : y + h, x : x + w]
    clear = tile[..., 3] == 0
    # every transparent pixel of the frame has a colour taken from the sprite, not black
    assert clear.any() and (tile[clear][:, :3].sum(axis=1) > 0).all()
    # and the ring touching the sprite carries the mean colour of its opaque neighbours, which is
    # what a bilinear sample across the edge blends with (a wrong colour here is the halo itself)
    solid = ~clear
    padded_rgb = np.pad(tile[..., :3] * solid[..., None], ((1, 1), (1, 1), (0, 0)))
    padded_solid = np.pad(solid, 1).astype(int)
    sums = sum(padded_rgb[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1))
    count = sum(padded_solid[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1))
    ring = clear & (count > 0)
    expected = sums[ring] // count[ring][:, None]
    assert ring.sum() >= 8 and np.abs(tile[ring][:, :3] - expected).max() <= 1


def test_grid_mode_uses_uniform_cells(sprite_dir):
    folder, sources = sprite_dir
    sheet = pack_sheet(load_sprites([folder]), SheetOptions(grid=(48, 48), padding=2))
    for f in sheet.frames:
        assert (f.w, f.h) == (48, 48) and f.x % 50 == 0 and f.y % 50 == 0
        page = np.asarray(sheet.pages[f.page].image)
        src = sources[f.name]
        sh, sw = src.shape[:2]
        ox, oy = (48 - sw) // 2, (48 - sh) // 2
        assert same_visible(page[f.y + oy : f.y + oy + sh, f.x + ox : f.x + ox + sw], src)
    with pytest.raises(UserError, match="larger than the 16x16 grid cell"):
        pack_sheet(load_sprites([folder]), SheetOptions(grid=(16, 16)))


def test_sprite_larger_than_max_size_is_refused(sprite_dir):
    folder, _ = sprite_dir
    with pytest.raises(UserError, match="larger than the maximum sheet size 16"):
        pack_sheet(load_sprites([folder], trim=True), SheetOptions(trim=True, max_size=16))


def test_animations_from_numbers_and_folders():
    names = ["hero/walk10.png", "hero/walk2.png", "hero/walk0.png", "jump/up.png", "jump/down.png", "coin.png", "fx_01.png", "fx_02.png"]
    anims = {a.name: a.frames for a in find_animations(names)}
    assert anims["hero/walk"] == ["hero/walk0.png", "hero/walk2.png", "hero/walk10.png"]
    assert anims["jump"] == ["jump/down.png", "jump/up.png"]
    assert anims["fx"] == ["fx_01.png", "fx_02.png"]
    assert "coin" not in anims
    with pytest.raises(UserError, match="claim the same place"):
        find_animations(["walk1.png", "walk01.png"])
    with pytest.raises(UserError, match="would both be the animation 'walk'"):
        find_animations(["walk0.png", "walk1.png", "walk/a.png", "walk/b.png"])


def random_rects(seed: int, n: int) -> list[tuple[int, int]]:
    r = random.Random(seed)
    return [(r.randint(8, 96), r.randint(8, 96)) for _ in range(n)]


def rectpack_square(sizes) -> int:
    """Side of the smallest square rectpack's MaxRectsBssf fills: the benchmark's own baseline."""
    pytest.importorskip("rectpack")
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "sheet_occupancy.py"
    spec = importlib.util.spec_from_file_location("sheet_occupancy_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.rectpack_square(sizes)


def test_occupancy_goal_against_rectpack():
    """With padding 0, our sheet area is at most 1/0.98 of rectpack's smallest MaxRects square."""
    sizes = random_rects(7, 40)
    (_, (w, h)) = best_layout(sizes, SheetOptions(), 0)
    side = rectpack_square(sizes)
    assert w * h <= side * side / 0.98
    assert w * h >= sum(a * b for a, b in sizes)


def test_power_of_two_pages_respect_an_odd_maximum(sprite_dir):
    folder, _ = sprite_dir
    sprites = load_sprites([folder], trim=True)
    sheet = pack_sheet(sprites, SheetOptions(trim=True, pot=True, max_size=127))
    for page in sheet.pages:
        w, h = page.size
        assert w <= 64 and h <= 64 and w & (w - 1) == 0 and h & (h - 1) == 0
    with pytest.raises(UserError, match="maximum sheet size 32"):
        pack_sheet(sprites, SheetOptions(trim=True, pot=True, max_size=50))


def test_page_bleeding_matches_a_plain_reference():
    """bleed_regions (compiled) against the rule written out in numpy: ring by ring each pixel
    next to coloured pixels of its own region takes their floor mean; what the rings do not
    reach takes the region's mean known colour; regions without a known pixel stay as they are."""
    from asset_studio.core.sheet import bleed_regions

    rng = np.random.default_rng(3)
    h, w = 40, 50
    labels = np.zeros((h, w), np.int32)
    labels[1:20, 1:25], labels[1:20, 25:49], labels[20:39, 1:49] = 1, 2, 3
    labels[30:39, 40:49] = 4  # a region with nothing known
    rgba = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
    known = (rng.random((h, w)) < 0.02) & (labels != 4)
    rings = 3

    ref = rgba.astype(np.int64)
    filled = known & (labels > 0)
    for _ in range(rings):
        grow = []
        for y, x in zip(*np.nonzero((labels > 0) & ~filled)):
            near = [(y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy or dx)]
            near = [(v, u) for v, u in near if filled[v, u] and labels[v, u] == labels[y, x]]
            if near:
                grow.append((y, x, [sum(ref[v, u, c] for v, u in near) // len(near) for c in range(3)]))
        for y, x, colour in grow:
            ref[y, x, :3] = colour
            filled[y, x] = True
    for region in (1, 2, 3):
        own = known & (labels == region)
        left = (labels == region) & ~filled
        ref[left, :3] = rgba[own][:, :3].astype(np.int64).sum(0) // own.sum()

    out = rgba.copy()
    bleed_regions(out, labels, known, rings)
    assert np.array_equal(out, ref.astype(np.uint8))
