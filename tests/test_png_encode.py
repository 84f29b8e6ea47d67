"""The multi-core PNG encoder (core/png_encode.py): exact pixels, Pillow's chunks, fixed bytes."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from asset_studio.core import png_encode
from asset_studio.core.outputs import png_writer, write_file, written_by

SPRITES_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sprites-dev"


def picture(w: int, h: int, mode: str = "RGBA", seed: int = 0) -> Image.Image:
    """Flat areas, gradients both ways, noise and a transparent hole: every filter has rows to win."""
    rng = np.random.default_rng(seed)
    px = np.zeros((h, w, 4), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    px[..., 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
    px[..., 1] = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
    px[..., 2] = ((xx + yy) * 3 % 256).astype(np.uint8)
    px[..., 3] = 255
    px[h // 3 : h // 2, :] = rng.integers(0, 256, (h // 2 - h // 3, w, 4))
    px[: h // 4, : w // 4] = 0
    return Image.fromarray(px if mode == "RGBA" else px[..., :3].copy(), mode)


def encode(image: Image.Image, chunks=(), pixels=None) -> bytes:
    buf = io.BytesIO()
    png_encode.write_png(buf, image, chunks, pixels)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()  # Pillow checks every chunk's CRC and the zlib stream's checksum
    return im


def chunk_types(data: bytes) -> list[bytes]:
    pos, types = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + n
    return types


def filtered(rows: np.ndarray, bpp: int) -> np.ndarray:
    """All of ROWS through the compiled filter at once."""
    from asset_studio.core.png_kernels import filter_band

    rows = np.ascontiguousarray(rows)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    filter_band(rows, out, bpp, 0, rows.shape[0])
    return out


def scanlines(data: bytes) -> bytes:
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    return zlib.decompress(idat)


@pytest.mark.parametrize("mode", ["RGBA", "RGB"])
@pytest.mark.parametrize("size", [(1, 1), (3, 2), (97, 61), (700, 500)])  # 700x500 RGBA: two deflate pieces
def test_pixels_come_back_exactly(mode, size):
    im = picture(*size, mode=mode)
    data = encode(im)
    back = decode(data)
    assert back.mode == mode and back.size == size
    assert np.array_equal(np.asarray(back), np.asarray(im))
    # libpng (through OpenCV) reads it too: the decoder Godot and many other engines link
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert bgr is not None
    channels = cv2.COLOR_BGRA2RGBA if mode == "RGBA" else cv2.COLOR_BGR2RGB
    assert np.array_equal(cv2.cvtColor(bgr.reshape(size[1], size[0], -1), channels).reshape(np.asarray(im).shape), np.asarray(im))


def test_filters_are_libpngs_adaptive_choice():
    """Each row's filter is the one whose bytes, read as signed, sum closest to zero (ties to
    the lower type), and the filtered bytes are that filter's: checked against a plain reference."""
    im = picture(53, 40)
    rows = np.asarray(im).reshape(40, -1).astype(np.int32)
    bpp = 4
    expected = []
    for y in range(rows.shape[0]):
        x = rows[y]
        b = rows[y - 1] if y else np.zeros_like(x)
        a = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])
        c = np.concatenate([np.zeros(bpp, np.int32), b[:-bpp]])
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        candidates = [x, x - a, x - b, x - (a + b) // 2, x - paeth]
        costs = [int(np.minimum(v & 255, 256 - (v & 255)).sum()) for v in candidates]
        best = int(np.argmin(costs))
        expected.append(bytes([best]) + bytes((candidates[best] & 255).astype(np.uint8)))
    ours = filtered(np.asarray(im).reshape(40, -1), bpp)
    assert ours.tobytes() == b"".join(expected)
    assert set(ours[:, 0]) >= {1, 2}  # the picture really exercises the choice


def test_text_chunks_profile_and_late_chunks_are_written():
    im = picture(40, 30)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im.info["icc_profile"] = profile
    info = PngInfo()
    info.add_text("parameters", "a knight, Steps: 20")
    info.add_itxt("Comment", "ünïcode", lang="en")
    info.add(b"zzZz", b"after the pixels", after_idat=True)
    data = encode(im, info.chunks)
    back = decode(data)
    assert back.info["parameters"] == "a knight, Steps: 20" and back.info["Comment"] == "ünïcode"
    assert back.info["icc_profile"] == profile
    types = chunk_types(data)
    assert types[0] == b"IHDR" and types[-1] == b"IEND"
    assert types.index(b"zzZz") > types.index(b"IDAT") > types.index(b"tEXt")


def test_the_pixels_go_in_one_idat_chunk_per_band_with_one_checksum():
    im = picture(700, 800)  # 2,801-byte rows: 375 rows a band, three bands
    data = encode(im)
    assert chunk_types(data).count(b"IDAT") == 3
    assert scanlines(data) == filtered(np.asarray(im).reshape(800, -1), 4).tobytes()  # zlib checks the adler32
    assert encode(im, ()) == encode(im, (), pixels=np.asarray(im).copy())  # the caller's array: the same file


def test_adler32_combine_matches_zlib():
    rng = np.random.default_rng(1)
    for n in (0, 1, 5552, 65521, 300_000):
        blob = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        for cut in {0, n // 3, n}:
            a, b = blob[:cut], blob[cut:]
            assert png_encode.adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(blob)


def test_bytes_do_not_depend_on_the_number_of_cores(monkeypatch):
    im = picture(700, 800)  # several pieces and several filter bands
    monkeypatch.setattr(png_encode.os, "cpu_count", lambda: 1)
    one = encode(im)
    monkeypatch.setattr(png_encode.os, "cpu_count", lambda: 8)
    assert encode(im) == one
    assert encode(im) == one  # and from one run to the next


def test_without_zlib_ng_the_standard_zlib_writes_the_same_pixels(monkeypatch):
    im = picture(700, 500)
    monkeypatch.setattr(png_encode, "_zlib", lambda: zlib)
    data = encode(im)
    assert np.array_equal(np.asarray(decode(data)), np.asarray(im))
    assert scanlines(data) == filtered(np.asarray(im).reshape(500, -1), 4).tobytes()


def test_png_writer_sends_big_pictures_here_and_the_rest_to_pillow(tmp_path, monkeypatch):
    used = []
    real = png_encode.write_png
    monkeypatch.setattr(png_encode, "write_png", lambda *a, **k: used.append(a[1].size) or real(*a, **k))
    big = picture(1500, 1400)  # over MIN_PIXELS
    page = write_file(tmp_path / "page.png", png_writer(big, "sheet"))
    small = write_file(tmp_path / "small.png", png_writer(picture(64, 48), "sheet"))
    assert used == [(1500, 1400)]
    write_file(tmp_path / "page-2.png", png_writer(picture(64, 48), "sheet", any_size=True))  # a small sheet page
    assert used == [(1500, 1400), (64, 48)]
    assert written_by(page, "sheet") and written_by(small, "sheet")
    with Image.open(page) as back:
        assert np.array_equal(np.asarray(back), np.asarray(big))
    monkeypatch.setattr(png_encode, "MIN_PIXELS", 1)
    for mode in ("L", "P", "LA", "I;16"):
        im = picture(20, 10).convert("L" if mode == "I;16" else mode)
        if mode == "I;16":
            im = Image.fromarray(np.asarray(im).astype(np.uint16) * 257)
        path = write_file(tmp_path / f"{mode.replace(';', '')}.png", png_writer(im, "sheet"))
        with Image.open(path) as back:
            assert back.mode == mode and written_by(path, "sheet")
            assert np.array_equal(np.asarray(back), np.asarray(im))
    keyed = picture(8, 8, "RGB")
    keyed.info["transparency"] = (0, 0, 0)  # a colour key only Pillow writes (tRNS)
    path = write_file(tmp_path / "keyed.png", png_writer(keyed))
    with Image.open(path) as back:
        assert back.info.get("transparency") == (0, 0, 0)


@pytest.mark.skipif(not SPRITES_DEV.is_dir(), reason="../shared/data/sprites-dev is absent (CC0 sprite art)")
def test_real_art_compresses_about_as_well_as_pillow():
    """A page of the CC0 art: no larger than 3% over Pillow's own encoding."""
    art = [Image.open(p).convert("RGBA") for p in sorted(SPRITES_DEV.rglob("*.png"))[:60]]
    page = Image.new("RGBA", (1024, 1024))
    x = y = row = 0
    for im in art:
        im = im.resize((min(im.width, 128), min(im.height, 128)))
        if x + im.width > 1024:
            x, y, row = 0, y + row, 0
        if y + im.height > 1024:
            break
        page.paste(im, (x, y))
        x, row = x + im.width, max(row, im.height)
    pillow = io.BytesIO()
    page.save(pillow, "PNG")
    ours = encode(page)
    assert np.array_equal(np.asarray(decode(ours)), np.asarray(page))
    assert len(ours) <= 1.03 * len(pillow.getvalue())
