"""The loops of sheet building, compiled: MaxRects bin packing and alpha bleeding.

MaxRects is Jukka Jylänki's algorithm: free space kept as maximal, overlapping rectangles, here
in flat arrays. Numba compiles the kernels on first use and caches the machine code beside this
file (or in the user's cache folder), so a pack of thousands of rectangles costs milliseconds
instead of the minutes the same loops took in Python. The packing kernel visits the free
rectangles in the order the earlier list-based version did and breaks ties the same way, so it
places every rectangle where that version did; results are deterministic.
Bleeding visits only the pixels still to colour, ring after ring, for every frame of a page at
once (see core.sheet.bleed_regions).
"""

from __future__ import annotations

from asset_studio.core.jit import numba
import numpy as np

HEURISTICS = ("bssf", "blsf", "baf", "bl")

# Sort orders: rectangle index order, biggest first by each key, ties by input position.
SORTS = {
    "area": lambda w, h: (-w * h, -max(w, h)),
    "maxside": lambda w, h: (-max(w, h), -min(w, h)),
    "height": lambda w, h: (-h, -w),
    "width": lambda w, h: (-w, -h),
    "perimeter": lambda w, h: (-(w + h), -max(w, h)),
}


def sort_order(sizes, order: str) -> np.ndarray:
    key = SORTS[order]
    return np.array(sorted(range(len(sizes)), key=lambda i: (*key(*sizes[i]), i)), np.int64)


@numba.njit(cache=True)
def _score(heuristic, fx, fy, fw, fh, rw, rh):
    dw, dh = fw - rw, fh - rh
    if heuristic == 0:  # best short side fit
        return min(dw, dh), max(dw, dh)
    if heuristic == 1:  # best long side fit
        return max(dw, dh), min(dw, dh)
    if heuristic == 2:  # best area fit
        return fw * fh - rw * rh, min(dw, dh)
    return fy + rh, fx  # bottom-left: lowest top edge, then leftmost


@numba.njit(cache=True)
def _contains(ax, ay, aw, ah, bx, by, bw, bh):
    return ax <= bx and ay <= by and ax + aw >= bx + bw and ay + ah >= by + bh


@numba.njit(cache=True, nogil=True)  # without the GIL: best_layout packs several widths at once
def _pack(ws, hs, order, width, height, heuristic, rotate):
    """Place rectangles in `order`; returns x, y (-1 when it did not fit) and rotated flags."""
    n = ws.shape[0]
    xs = np.full(n, -1, np.int64)
    ys = np.full(n, -1, np.int64)
    rots = np.zeros(n, np.bool_)
    cap = 1024
    free = np.empty((cap, 4), np.int64)  # x, y, w, h
    free[0, 0], free[0, 1], free[0, 2], free[0, 3] = 0, 0, width, height
    nf = 1
    new = np.empty((4 * cap, 4), np.int64)
    keep = np.empty(4 * cap, np.bool_)
    near = np.empty(cap, np.bool_)
    for k in range(order.shape[0]):
        i = order[k]
        w, h = ws[i], hs[i]
        found = False
        b1 = b2 = bx = by = 0
        brot = False
        turns = 2 if rotate and w != h else 1
        for j in range(nf):
            fx, fy, fw, fh = free[j, 0], free[j, 1], free[j, 2], free[j, 3]
            for t in range(turns):
                rw, rh = (w, h) if t == 0 else (h, w)
                if rw > fw or rh > fh:
                    continue
                s1, s2 = _score(heuristic, fx, fy, fw, fh, rw, rh)
                if not found or s1 < b1 or (s1 == b1 and s2 < b2):
                    found = True
                    b1, b2, bx, by, brot = s1, s2, fx, fy, t == 1
        if not found:
            continue
        xs[i], ys[i], rots[i] = bx, by, brot
        x, y = bx, by
        pw, ph = (h, w) if brot else (w, h)
        # split every free rectangle the placed one overlaps; keep the others in order
        if 4 * nf > new.shape[0]:
            new = np.empty((4 * nf, 4), np.int64)
            keep = np.empty(4 * nf, np.bool_)
        nk = nn = 0
        for j in range(nf):
            fx, fy, fw, fh = free[j, 0], free[j, 1], free[j, 2], free[j, 3]
            if x >= fx + fw or x + pw <= fx or y >= fy + fh or y + ph <= fy:
                free[nk, 0], free[nk, 1], free[nk, 2], free[nk, 3] = fx, fy, fw, fh
                nk += 1
                continue
            if x > fx:
                new[nn, 0], new[nn, 1], new[nn, 2], new[nn, 3] = fx, fy, x - fx, fh
                nn += 1
            if x + pw < fx + fw:
                new[nn, 0], new[nn, 1], new[nn, 2], new[nn, 3] = x + pw, fy, fx + fw - x - pw, fh
                nn += 1
            if y > fy:
                new[nn, 0], new[nn, 1], new[nn, 2], new[nn, 3] = fx, fy, fw, y - fy
                nn += 1
            if y + ph < fy + fh:
                new[nn, 0], new[nn, 1], new[nn, 2], new[nn, 3] = fx, y + ph, fw, fy + fh - y - ph
                nn += 1
        # only the new pieces can be contained in something: prune them among themselves (the
        # first of equal twins stays), then by the kept ones, then the kept ones by them
        for a in range(nn):
            keep[a] = True
            for b in range(nn):
                if b == a:
                    continue
                same = new[a, 0] == new[b, 0] and new[a, 1] == new[b, 1] and new[a, 2] == new[b, 2] and new[a, 3] == new[b, 3]
                if (not same or b < a) and _contains(new[b, 0], new[b, 1], new[b, 2], new[b, 3], new[a, 0], new[a, 1], new[a, 2], new[a, 3]):
                    keep[a] = False
                    break
        # the box around the surviving pieces: a kept rectangle that holds a piece overlaps it,
        # one that a piece holds lies inside it, so the others need no test
        ux0 = uy0 = np.int64(1) << 62
        ux1 = uy1 = -ux0
        for a in range(nn):
            if keep[a]:
                ux0, uy0 = min(ux0, new[a, 0]), min(uy0, new[a, 1])
                ux1, uy1 = max(ux1, new[a, 0] + new[a, 2]), max(uy1, new[a, 1] + new[a, 3])
        for m in range(nk):
            near[m] = not (free[m, 0] >= ux1 or free[m, 0] + free[m, 2] <= ux0 or free[m, 1] >= uy1 or free[m, 1] + free[m, 3] <= uy0)
        for a in range(nn):
            if not keep[a]:
                continue
            for m in range(nk):
                if near[m] and _contains(free[m, 0], free[m, 1], free[m, 2], free[m, 3], new[a, 0], new[a, 1], new[a, 2], new[a, 3]):
                    keep[a] = False
                    break
        total = 0
        for m in range(nk):
            inside = False
            if not near[m] or free[m, 0] < ux0 or free[m, 1] < uy0 or free[m, 0] + free[m, 2] > ux1 or free[m, 1] + free[m, 3] > uy1:
                pass
            else:
                for a in range(nn):
                    if keep[a] and _contains(new[a, 0], new[a, 1], new[a, 2], new[a, 3], free[m, 0], free[m, 1], free[m, 2], free[m, 3]):
                        inside = True
                        break
            if not inside:
                free[total, 0], free[total, 1], free[total, 2], free[total, 3] = free[m, 0], free[m, 1], free[m, 2], free[m, 3]
                total += 1
        need = total + nn
        if need > free.shape[0]:
            grown = np.empty((2 * need, 4), np.int64)
            grown[:total] = free[:total]
            free = grown
            near = np.empty(2 * need, np.bool_)
        for a in range(nn):
            if keep[a]:
                free[total, 0], free[total, 1], free[total, 2], free[total, 3] = new[a, 0], new[a, 1], new[a, 2], new[a, 3]
                total += 1
        nf = total
    return xs, ys, rots


class Packer:
    """One set of rectangles packed into many bins: the sort orders are worked out once."""

    def __init__(self, sizes, rotate: bool = False):
        arr = np.asarray(sizes, np.int64).reshape(-1, 2)
        self.sizes = sizes
        self.ws, self.hs = arr[:, 0].copy(), arr[:, 1].copy()
        self.rotate = bool(rotate)
        self._orders: dict[str, np.ndarray] = {}

    def pack(self, width: int, height: int, heuristic: str, order: str):
        """x, y (-1 where it did not fit) and rotated flags, one per rectangle."""
        self.prepare(order)
        return _pack(self.ws, self.hs, self._orders[order], int(width), int(height), HEURISTICS.index(heuristic), self.rotate)

    def prepare(self, order: str) -> None:
        """Work out a sort order before packs run on several threads."""
        if order not in self._orders:
            self._orders[order] = sort_order(self.sizes, order)

    def extent(self, xs, ys, rots) -> tuple[int, int]:
        """Width and height of what the placed rectangles cover."""
        ok = xs >= 0
        if not ok.any():
            return 0, 0
        rw = np.where(rots, self.hs, self.ws)
        rh = np.where(rots, self.ws, self.hs)
        return int((xs + rw)[ok].max()), int((ys + rh)[ok].max())

    @staticmethod
    def as_dict(xs, ys, rots) -> dict[int, tuple[int, int, bool]]:
        return {int(i): (int(xs[i]), int(ys[i]), bool(rots[i])) for i in np.flatnonzero(xs >= 0)}


_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@numba.njit(cache=True)
def bleed_rings(px, lab, filled, todo, width, rings):
    """Colour the `todo` pixels (flat indices) of the RGBA rows `px` ring by ring: each pixel next
    to a filled one of its own region (same `lab`) takes the floor mean of those neighbours, all
    of a ring from the rings before it. Updates px and filled; returns the pixels left over.

    Neighbours outside the canvas (width x len(lab) / width) do not count.
    """
    height = lab.shape[0] // width
    cur = todo.copy()
    m = cur.shape[0]
    count = np.zeros(m, np.int32)
    sums = np.zeros((m, 3), np.int32)
    for _ in range(rings):
        if m == 0:
            break
        for t in range(m):
            p = cur[t]
            region = lab[p]
            y = p // width
            x = p - y * width
            c = s0 = s1 = s2 = 0
            for dy, dx in _OFFSETS:
                if y + dy < 0 or y + dy >= height or x + dx < 0 or x + dx >= width:
                    continue
                q = p + dy * width + dx
                if filled[q] and lab[q] == region:
                    c += 1
                    s0 += px[q, 0]
                    s1 += px[q, 1]
                    s2 += px[q, 2]
            count[t], sums[t, 0], sums[t, 1], sums[t, 2] = c, s0, s1, s2
        left = 0
        for t in range(m):
            p = cur[t]
            c = count[t]
            if c > 0:
                px[p, 0], px[p, 1], px[p, 2] = sums[t, 0] // c, sums[t, 1] // c, sums[t, 2] // c
                filled[p] = True
            else:
                cur[left] = p
                left += 1
        if left == m:  # nothing grew: nothing will
            break
        m = left
    return cur[:m]


@numba.njit(cache=True)
def bleed_labelled(px, lab, known, width, rings):
    """core.sheet.bleed_regions on flat arrays: the pixels of each region (lab > 0) that are not
    known take colour ring by ring from the known ones of their region (bleed_rings); what is
    left past the rings takes the floor mean colour of the region's known pixels. A region
    without a known pixel is left as it is. One pass over the canvas finds the work."""
    n = lab.shape[0]
    regions = 1
    for p in range(n):
        regions = max(regions, lab[p] + 1)
    count = np.zeros(regions, np.int64)
    done = np.zeros(n, np.bool_)
    for p in range(n):
        if lab[p] > 0 and known[p]:
            done[p] = True
            count[lab[p]] += 1
    size = 0
    for p in range(n):
        if lab[p] > 0 and not done[p] and count[lab[p]] > 0:
            size += 1
    todo = np.empty(size, np.int64)
    size = 0
    for p in range(n):
        if lab[p] > 0 and not done[p] and count[lab[p]] > 0:
            todo[size] = p
            size += 1
    if size == 0:
        return
    left = bleed_rings(px, lab, done.copy(), todo, width, rings)
    if left.shape[0] == 0:
        return
    sums = np.zeros((regions, 3), np.int64)
    for p in range(n):
        if done[p]:
            for c in range(3):
                sums[lab[p], c] += px[p, c]
    for t in range(left.shape[0]):
        p = left[t]
        for c in range(3):
            px[p, c] = sums[lab[p], c] // count[lab[p]]
