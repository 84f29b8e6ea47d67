"""The packer at scale: thousands of frames stay apart, inside their pages, dense and repeatable."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.exporters import export
from asset_studio.core.sheet import Sheet, SheetOptions, Sprite, bleed, best_layout, pack_sheet, save_pages, trim_box


def random_sprites(n: int, seed: int = 0, lo: int = 16, hi: int = 96) -> list[Sprite]:
    """n in-memory sprites of lo..hi px: soft blobs (transparent corners to bleed), solid tiles,
    every third inside transparent margins, trimmed as load_sprites trims them."""
    rng = np.random.default_rng(seed)
    sprites = []
    for i in range(n):
        w, h = (int(v) for v in rng.integers(lo, hi + 1, 2))
        px = np.zeros((h, w, 4), np.uint8)
        bw, bh = (int(rng.integers(max(2, w // 3), w + 1)), int(rng.integers(max(2, h // 3), h + 1))) if i % 3 == 0 else (w, h)
        x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
        px[y0 : y0 + bh, x0 : x0 + bw, :3] = rng.integers(0, 256, (bh, bw, 3))
        if i % 4 == 3:
            px[y0 : y0 + bh, x0 : x0 + bw, 3] = 255
        else:
            yy, xx = np.mgrid[0:bh, 0:bw]
            ell = ((xx - bw / 2 + 0.5) / (bw / 2)) ** 2 + ((yy - bh / 2 + 0.5) / (bh / 2)) ** 2
            px[y0 : y0 + bh, x0 : x0 + bw, 3] = (np.clip((1.0 - ell) * 4, 0, 1) * 255).astype(np.uint8)
        im = Image.fromarray(px, "RGBA")
        sprites.append(Sprite(name=f"s{i:05d}.png", image=im, trim=trim_box(im)))
    return sprites


def check_layout(sheet: Sheet, sprites: list[Sprite], opts: SheetOptions) -> None:
    """Every frame inside its page with its extrusion, frames of a page at least the padding
    apart, rotation flags matching the page regions, page sides within the options."""
    pad, ext = opts.padding, opts.extrude
    assert [f.name for f in sheet.frames] == [s.name for s in sprites]
    for page in sheet.pages:
        w, h = page.size
        assert w <= opts.max_size and h <= opts.max_size
        if opts.pot:
            assert w & (w - 1) == 0 and h & (h - 1) == 0
        if opts.square:
            assert w == h
    rects = []
    for f, s in zip(sheet.frames, sprites):
        assert (f.w, f.h) == s.trim[2:] and (f.offset_x, f.offset_y) == s.trim[:2]
        assert opts.rotate or not f.rotated
        x, y, w, h = f.page_rect
        assert (w, h) == ((f.h, f.w) if f.rotated else (f.w, f.h))
        pw, ph = sheet.pages[f.page].size
        assert x - ext >= 0 and y - ext >= 0 and x + w + ext <= pw and y + h + ext <= ph, f.name
        rects.append((f.page, x - ext, y - ext, x + w + ext, y + h + ext))
    r = np.array(rects)
    page, x0, y0, x1, y1 = (r[:, k] for k in range(5))
    apart = (
        (page[:, None] != page[None, :])
        | (x1[:, None] + pad <= x0[None, :])
        | (x1[None, :] + pad <= x0[:, None])
        | (y1[:, None] + pad <= y0[None, :])
        | (y1[None, :] + pad <= y0[:, None])
    )
    np.fill_diagonal(apart, True)
    assert apart.all(), np.argwhere(~apart)[:3]
    if not (opts.pot or opts.square):  # no page is bigger than what it holds
        for i, (pw, ph) in enumerate(p.size for p in sheet.pages):
            on = page == i
            assert x1[on].max() == pw and y1[on].max() == ph


def frame_tile(sheet: Sheet, f) -> np.ndarray:
    x, y, w, h = f.page_rect
    return np.asarray(sheet.pages[f.page].image)[y : y + h, x : x + w]


def source_tile(s: Sprite, rotated: bool) -> np.ndarray:
    x, y, w, h = s.trim
    tile = np.asarray(s.image)[y : y + h, x : x + w]
    return np.rot90(tile, k=-1) if rotated else tile  # stored 90° clockwise


@pytest.mark.parametrize(
    "opts",
    [
        SheetOptions(trim=True, max_size=8192),
        SheetOptions(trim=True, padding=2, extrude=1, rotate=True, max_size=8192),
    ],
    ids=["tight", "pad-extrude-rotate"],
)
def test_two_thousand_frames_keep_the_invariants(opts):
    sprites = random_sprites(2000, seed=1)
    sheet = pack_sheet(sprites, opts)
    assert len(sheet.pages) == 1
    check_layout(sheet, sprites, opts)
    if opts.rotate:
        assert any(f.rotated for f in sheet.frames)
    for f, s in zip(sheet.frames[::37], sprites[::37]):  # visible pixels are the source's, turned as flagged
        got, want = frame_tile(sheet, f), source_tile(s, f.rotated)
        assert np.array_equal(got[..., 3], want[..., 3])
        assert np.array_equal(got[want[..., 3] > 0], want[want[..., 3] > 0])


def test_frames_edge_to_edge_bleed_only_from_themselves():
    """With no padding frames touch; each one's transparent pixels still carry exactly what
    bleeding that frame alone gives, never a neighbour's colour."""
    sprites = random_sprites(600, seed=2)
    sheet = pack_sheet(sprites, SheetOptions(trim=True, max_size=8192))
    touching = 0
    for f, s in zip(sheet.frames, sprites):
        assert np.array_equal(frame_tile(sheet, f), bleed(source_tile(s, f.rotated))), f.name
        x, y, w, h = f.page_rect
        touching += any(g is not f and g.page_rect[0] == x + w and g.page_rect[1] < y + h and y < g.page_rect[1] + g.page_rect[3]
                        for g in sheet.frames[:50])
    assert touching  # the check above did see frames packed against each other


def test_dense_at_two_thousand_rectangles():
    """Random 16..96 px rectangles fill at least 97% of the sheet (the search found ~99.6%)."""
    rng = np.random.default_rng(5)
    sizes = [(int(w), int(h)) for w, h in rng.integers(16, 97, (2000, 2))]
    placed, (w, h) = best_layout(sizes, SheetOptions(max_size=8192), 0)
    assert len(placed) == len(sizes)
    assert sum(a * b for a, b in sizes) / (w * h) >= 0.97


def test_same_input_gives_byte_identical_sheet_and_data(tmp_path):
    outputs = []
    for run in ("a", "b"):
        sprites = random_sprites(300, seed=3)  # rebuilt: nothing carried over between the runs
        sheet = pack_sheet(sprites, SheetOptions(trim=True, padding=1, extrude=1, rotate=True, max_size=8192))
        pngs = save_pages(sheet, tmp_path / run / "sheet.png")
        data = export(sheet, pngs, "texturepacker-hash", tmp_path / run / "sheet.png")
        outputs.append([p.read_bytes() for p in pngs + data])
    assert outputs[0] == outputs[1]


def test_many_pages_at_a_small_maximum():
    sprites = random_sprites(400, seed=4, lo=8, hi=40)
    opts = SheetOptions(trim=True, padding=1, max_size=160)
    sheet = pack_sheet(sprites, opts)
    assert len(sheet.pages) > 3
    check_layout(sheet, sprites, opts)
    assert {f.page for f in sheet.frames} == set(range(len(sheet.pages)))
    # each page is filled before the next one starts: all but the last hold most of their area
    for i, page in enumerate(sheet.pages[:-1]):
        used = sum((f.w + 1) * (f.h + 1) for f in sheet.frames if f.page == i)
        assert used >= 0.8 * opts.max_size**2, i


def test_power_of_two_square_page():
    sprites = random_sprites(500, seed=7)
    opts = SheetOptions(trim=True, padding=3, pot=True, square=True, max_size=8192)
    sheet = pack_sheet(sprites, opts)
    assert len(sheet.pages) == 1
    check_layout(sheet, sprites, opts)
    w, h = sheet.pages[0].size
    used = sum((f.w + 3) * (f.h + 3) for f in sheet.frames)
    assert w == h and used > (w // 2 + 3) ** 2  # the next smaller power of two could not hold them


def test_power_of_two_square_pages_over_several_pages():
    sprites = random_sprites(300, seed=6, lo=8, hi=48)
    opts = SheetOptions(trim=True, pot=True, square=True, padding=2, extrude=1, max_size=200)  # pages of 128
    sheet = pack_sheet(sprites, opts)
    assert len(sheet.pages) > 1 and all(p.size == (128, 128) or p.size[0] < 128 for p in sheet.pages)
    check_layout(sheet, sprites, SheetOptions(trim=True, pot=True, square=True, padding=2, extrude=1, max_size=128))
    buf = io.BytesIO()
    sheet.pages[0].image.save(buf, "PNG")  # a page is an ordinary RGBA image
    assert Image.open(buf).mode == "RGBA"


def test_loading_the_kernels_leaves_scipy_importable():
    """core/jit.py hides scipy.linalg from numba's first load only: afterwards scipy.linalg
    imports and numba still compiles np.dot with BLAS."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from asset_studio.core import sheet_kernels, png_kernels\n"
        "assert 'scipy.linalg' not in sys.modules\n"
        "import numpy as np, scipy.linalg, numba\n"
        "f = numba.njit(lambda a, b: np.dot(a, b))\n"
        "assert f(np.ones((2, 2)), np.eye(2)).sum() == 4.0\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
