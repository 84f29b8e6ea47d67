"""A PNG encoder for 8-bit RGB and RGBA pictures that uses every core.

Pillow filters and deflates a picture on one core with the system zlib; a 5-megapixel sheet page
takes over a second that way, most of the `sheet` command's time. Here the picture is cut into
bands of rows of about 1 MiB, and on a few threads each band is filtered by a compiled loop
(libpng's adaptive choice: per row, the filter whose bytes are closest to zero) and deflated,
primed with the 32 KiB of filtered rows before it (pigz's method), by zlib-ng when it is
installed (the same level 6 compresses smaller and about three times faster than zlib) or by
the standard zlib. Bands depend on the picture's width only, so the bytes written do not depend
on the number of cores.
Small pictures, other modes and a transparency colour key go to Pillow: below MIN_PIXELS its one
core takes a tenth of a second or less, and loading the compiled filter (numba) costs half a
second the first time in a process.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import BinaryIO

import numpy as np

MIN_PIXELS = 1 << 21  # about 1450 x 1450: sheet pages of hundreds of sprites, hires results
LEVEL = 6
PIECE = 1 << 20  # filtered bytes deflated as one piece
WINDOW = 32768  # deflate's window: what a piece is primed with
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def supported(image, any_size: bool = False) -> bool:
    """Whether IMAGE goes through this encoder (it would write it as Pillow does) or to Pillow;
    ANY_SIZE: small pictures too (the caller has numba loaded already)."""
    big = any_size or image.width * image.height >= MIN_PIXELS
    return big and image.mode in ("RGB", "RGBA") and "transparency" not in image.info


def write_png(f: BinaryIO, image, chunks=(), pixels: np.ndarray | None = None) -> None:
    """Write IMAGE (RGB or RGBA, see supported) as PNG to F. CHUNKS: (type, data[, after_idat])
    entries as Pillow's PngInfo.chunks holds them (text chunks and the like). PIXELS: the array
    IMAGE was made from, if the caller has it (saves a copy of the picture)."""
    if pixels is None:
        pixels = np.asarray(image, dtype=np.uint8)
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    channels = 4 if image.mode == "RGBA" else 3
    before = [c for c in chunks if not (len(c) > 2 and c[2])]
    after = [c for c in chunks if len(c) > 2 and c[2]]
    f.write(SIGNATURE)
    _chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, 0))
    profile = image.info.get("icc_profile")
    if profile:  # Pillow keeps a picture's colour profile: so do we
        _chunk(f, b"iCCP", b"ICC Profile\0\0" + zlib.compress(profile))
    for cid, data, *_ in before:
        _chunk(f, cid, data)
    _write_pixels(f, pixels.reshape(height, width * channels), channels)
    for cid, data, *_ in after:
        _chunk(f, cid, data)
    _chunk(f, b"IEND", b"")


def _write_pixels(f: BinaryIO, rows: np.ndarray, bpp: int) -> None:
    """The IDAT chunks of ROWS: one zlib stream, one chunk per band of rows. Each band is
    filtered and deflated by one task, so no filtered copy of the whole picture is ever made
    (on some virtual machines fresh memory costs more than the work), and chunks are written in
    order as their bands finish."""
    from asset_studio.core.png_kernels import filter_band

    z = _zlib()
    height, stride = rows.shape[0], rows.shape[1] + 1
    band = max(1, -(-PIECE // stride))  # rows per piece, whatever the number of cores
    context = -(-WINDOW // stride)  # rows before a band whose filtered bytes prime its deflate

    def piece(r0: int) -> tuple[bytes, int, int]:
        r1 = min(height, r0 + band)
        out = np.empty((r1 - r0, stride), np.uint8)
        filter_band(rows, out, bpp, r0, r1)
        if r0:
            before = np.empty((r0 - max(0, r0 - context), stride), np.uint8)
            filter_band(rows, before, bpp, r0 - before.shape[0], r0)
            co = z.compressobj(LEVEL, zlib.DEFLATED, -15, zdict=before.tobytes()[-WINDOW:])
        else:
            co = z.compressobj(LEVEL, zlib.DEFLATED, -15)
        data = co.compress(out) + co.flush(zlib.Z_FINISH if r1 == height else zlib.Z_SYNC_FLUSH)
        return data, z.adler32(out), out.size

    starts = list(range(0, height, band))
    check = 1  # the adler32 of nothing
    for k, (data, adler, size) in enumerate(_map(piece, starts)):
        check = adler32_combine(check, adler, size)
        head = b"\x78\x9c" if k == 0 else b""  # the zlib header: deflate, 32 KiB window, default level
        tail = struct.pack(">I", check) if k == len(starts) - 1 else b""  # the stream's checksum
        _chunk(f, b"IDAT", head, data, tail)


def adler32_combine(a1: int, a2: int, len2: int) -> int:
    """The adler32 of A followed by B from their own checksums (zlib's adler32_combine)."""
    base = 65521
    rem = len2 % base
    s1 = a1 & 0xFFFF
    s2 = (rem * s1) % base
    s1 = (s1 + (a2 & 0xFFFF) + base - 1) % base
    s2 = (s2 + (a1 >> 16) + (a2 >> 16) + base - rem) % base
    return s1 | (s2 << 16)


def _chunk(f: BinaryIO, cid: bytes, *parts: bytes) -> None:
    crc = zlib.crc32(cid)
    for part in parts:
        crc = zlib.crc32(part, crc)
    f.write(struct.pack(">I", sum(len(p) for p in parts)) + cid)
    for part in parts:
        f.write(part)
    f.write(struct.pack(">I", crc))


def _workers(tasks: int) -> int:
    return max(1, min(tasks, os.cpu_count() or 1, 8))


def _map(function, items: list):
    """FUNCTION over ITEMS on a few threads, results in order as they come."""
    if _workers(len(items)) == 1:
        yield from map(function, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=_workers(len(items))) as pool:
        yield from pool.map(function, items)


def _zlib():
    try:
        from zlib_ng import zlib_ng

        return zlib_ng
    except ImportError:  # an install without zlib-ng: the same stream, slower
        return zlib
