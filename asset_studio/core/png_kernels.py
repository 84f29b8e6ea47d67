"""The PNG row filters, compiled (see core.png_encode): numba caches the machine code on disk."""

from __future__ import annotations

from asset_studio.core.jit import numba
import numpy as np


@numba.njit(cache=True, nogil=True)  # without the GIL: bands of rows are filtered at once
def filter_band(rows, out, bpp, r0, r1):
    """Filter rows r0..r1 of ROWS into OUT's rows 0..r1-r0 (a type byte, then the row): per row
    the filter (none, sub, up, average, Paeth) whose bytes, read as signed, sum closest to zero;
    ties go to the lower type. Filters read the unfiltered rows only, so bands are independent."""
    stride = rows.shape[1]
    zero = np.zeros(stride, np.uint8)
    for y in range(r0, r1):
        cur = rows[y]
        prev = rows[y - 1] if y > 0 else zero
        s0 = s1 = s2 = s3 = s4 = 0
        for i in range(stride):
            x, b = np.int32(cur[i]), np.int32(prev[i])
            a = np.int32(cur[i - bpp]) if i >= bpp else np.int32(0)
            c = np.int32(prev[i - bpp]) if i >= bpp else np.int32(0)
            s0 += _cost(x)
            s1 += _cost(x - a)
            s2 += _cost(x - b)
            s3 += _cost(x - ((a + b) >> 1))
            s4 += _cost(x - _paeth(a, b, c))
        best, low = 0, s0
        if s1 < low:
            best, low = 1, s1
        if s2 < low:
            best, low = 2, s2
        if s3 < low:
            best, low = 3, s3
        if s4 < low:
            best, low = 4, s4
        line = out[y - r0]
        line[0] = best
        for i in range(stride):
            x, b = np.int32(cur[i]), np.int32(prev[i])
            a = np.int32(cur[i - bpp]) if i >= bpp else np.int32(0)
            if best == 0:
                v = x
            elif best == 1:
                v = x - a
            elif best == 2:
                v = x - b
            elif best == 3:
                v = x - ((a + b) >> 1)
            else:
                v = x - _paeth(a, b, np.int32(prev[i - bpp]) if i >= bpp else np.int32(0))
            line[i + 1] = v & 255


@numba.njit(cache=True, inline="always")
def _cost(v):
    v &= 255
    return v if v < 128 else 256 - v


@numba.njit(cache=True, inline="always")
def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    if pb <= pc:
        return b
    return c
