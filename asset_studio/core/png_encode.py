"""A PNG encoder for 8-bit RGB and RGBA pictures that uses every core.

Pillow filters and deflates a picture on one core with the system zlib; a 5-megapixel sheet page
takes over a second that way, most of the `sheet` command's time. Here the rows are filtered by a
compiled loop (libpng's adaptive choice: per row, the filter whose bytes are closest to zero) on
a few threads, and the filtered bytes are deflated in fixed 1 MiB pieces at once, each piece
primed with the 32 KiB before it (pigz's method), by zlib-ng when it is installed (the same
level 6 compresses smaller and about three times faster than zlib) or by the standard zlib.
Pieces are cut at fixed offsets, so the bytes written do not depend on the number of cores.
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
IDAT_SIZE = 1 << 20  # bytes per IDAT chunk
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def supported(image, any_size: bool = False) -> bool:
    """Whether IMAGE goes through this encoder (it would write it as Pillow does) or to Pillow;
    ANY_SIZE: small pictures too (the caller has numba loaded already)."""
    big = any_size or image.width * image.height >= MIN_PIXELS
    return big and image.mode in ("RGB", "RGBA") and "transparency" not in image.info


def write_png(f: BinaryIO, image, chunks=()) -> None:
    """Write IMAGE (RGB or RGBA, see supported) as PNG to F. CHUNKS: (type, data[, after_idat])
    entries as Pillow's PngInfo.chunks holds them (text chunks and the like)."""
    pixels = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
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
    stream = deflate(filter_rows(pixels.reshape(height, width * channels), channels))
    for start in range(0, len(stream), IDAT_SIZE):
        _chunk(f, b"IDAT", stream[start : start + IDAT_SIZE])
    for cid, data, *_ in after:
        _chunk(f, cid, data)
    _chunk(f, b"IEND", b"")


def _chunk(f: BinaryIO, cid: bytes, data: bytes) -> None:
    f.write(struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(cid))))


def _workers(tasks: int) -> int:
    return max(1, min(tasks, os.cpu_count() or 1, 8))


def _map(function, items: list) -> list:
    if _workers(len(items)) == 1:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=_workers(len(items))) as pool:
        return list(pool.map(function, items))


def filter_rows(rows: np.ndarray, bpp: int) -> np.ndarray:
    """The PNG scanlines of ROWS (height x width*bpp bytes): each row's filter type byte and its
    filtered bytes, the filter chosen per row as libpng's adaptive heuristic does."""
    from asset_studio.core.png_kernels import filter_band

    height, stride = rows.shape
    out = np.empty((height, stride + 1), np.uint8)
    band = max(1, -(-PIECE // (stride + 1)))  # about a piece of rows per task
    _map(lambda r0: filter_band(rows, out, bpp, r0, min(height, r0 + band)), list(range(0, height, band)))
    return out


def deflate(data: np.ndarray) -> bytes:
    """A zlib stream of DATA made of pieces deflated at once; inflating it gives DATA back."""
    z = _zlib()
    buf = memoryview(data.reshape(-1))
    size = len(buf)

    def piece(start: int) -> bytes:
        end = min(size, start + PIECE)
        zdict = bytes(buf[max(0, start - WINDOW) : start])
        co = z.compressobj(LEVEL, zlib.DEFLATED, -15, zdict=zdict) if zdict else z.compressobj(LEVEL, zlib.DEFLATED, -15)
        return co.compress(buf[start:end]) + co.flush(zlib.Z_FINISH if end == size else zlib.Z_SYNC_FLUSH)

    body = b"".join(_map(piece, list(range(0, max(size, 1), PIECE))))
    return b"\x78\x9c" + body + struct.pack(">I", z.adler32(buf))


def _zlib():
    try:
        from zlib_ng import zlib_ng

        return zlib_ng
    except ImportError:  # an install without zlib-ng: the same stream, slower
        return zlib
