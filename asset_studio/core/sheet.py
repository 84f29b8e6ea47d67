"""Sprite sheets: load sprites, trim them, pack them (MaxRects or a uniform grid), draw the pages.

The packer tries several MaxRects placement heuristics, sort orders and sheet widths and keeps
the smallest sheet, so it usually beats a single square MaxRects run. Everything is
deterministic: the same inputs give the same pixels and the same data files. Frames are drawn
with optional extrusion, and transparent pixels inside and around them take the colour of the
nearest opaque pixel (alpha bleeding) so filtered edges show no dark halo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from asset_studio.errors import UserError

IMAGE_SUFFIXES = (".png", ".webp", ".bmp", ".tga", ".gif", ".jpg", ".jpeg")
MAX_PIXELS = 64_000_000  # a single sprite larger than this is a mistake, not a sprite
MAX_SHEET_SIDE = 16384
SHEET_COMMAND = "sheet"  # the output marker of sheet pages (core/outputs.py)


# --------------------------------------------------------------------------- data


@dataclass
class Sprite:
    """One source image and the part of it that holds pixels."""

    name: str  # path relative to its input folder, with '/' separators
    image: Image.Image  # RGBA
    trim: tuple[int, int, int, int]  # x, y, w, h of the kept part inside the source

    @property
    def source_size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def trimmed(self) -> bool:
        return self.trim != (0, 0, *self.image.size)


@dataclass
class Frame:
    """Where one sprite sits on a page, in TexturePacker's terms."""

    name: str
    page: int
    x: int
    y: int
    w: int  # the sprite's own width (the page region is h x w when rotated)
    h: int
    rotated: bool  # stored turned 90° clockwise on the page
    trimmed: bool
    offset_x: int  # where (x, y) of the frame lies inside the source image
    offset_y: int
    source_w: int
    source_h: int
    pivot: tuple[float, float] = (0.5, 0.5)

    @property
    def page_rect(self) -> tuple[int, int, int, int]:
        """x, y, w, h of the pixels on the page."""
        return (self.x, self.y, self.h, self.w) if self.rotated else (self.x, self.y, self.w, self.h)


@dataclass
class Animation:
    name: str
    frames: list[str]  # frame names in play order
    fps: float | None = None  # its own speed (an animation Asset Studio made says it); None = the export's
    loop: bool = True


@dataclass
class Page:
    image: Image.Image

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@dataclass
class Sheet:
    pages: list[Page]
    frames: list[Frame]  # in input order
    animations: list[Animation] = field(default_factory=list)

    def frame(self, name: str) -> Frame:
        for f in self.frames:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass
class SheetOptions:
    trim: bool = False
    padding: int = 0  # transparent pixels between frames
    extrude: int = 0  # edge pixels repeated around each frame
    pot: bool = False  # power-of-two page sides
    square: bool = False
    max_size: int = 4096
    grid: tuple[int, int] | None = None  # uniform cell size (w, h) instead of MaxRects
    rotate: bool = False
    bleed: bool = True

    def __post_init__(self) -> None:
        if self.padding < 0 or self.extrude < 0:
            raise UserError("Padding and extrude must be zero or positive.")
        if self.max_size < 1:
            raise UserError("The maximum sheet size must be at least 1 pixel.")
        if self.max_size > MAX_SHEET_SIDE:
            # GPUs and engines load textures up to 16384 pixels a side; more is a memory bomb, not a sheet.
            raise UserError(f"The maximum sheet size {self.max_size} is over {MAX_SHEET_SIDE} pixels, "
                            "the largest texture GPUs load.")
        if self.padding > MAX_SHEET_SIDE or self.extrude > MAX_SHEET_SIDE:
            raise UserError(f"Padding and extrude must be at most {MAX_SHEET_SIDE} pixels.")
        if self.grid is not None and (self.grid[0] < 1 or self.grid[1] < 1):
            raise UserError("Grid cells must be at least 1x1 pixels.")


# --------------------------------------------------------------------------- loading


def collect_images(inputs: list[Path], exclude=None) -> list[tuple[str, Path]]:
    """(frame name, path) for every image: names are relative to the folder given (or to the
    common folder of the files given), in a stable natural order. Files of a folder for which
    ``exclude(path)`` is true (the command's own earlier outputs) are left out."""
    found: list[tuple[str, Path]] = []
    loose: list[Path] = []
    for inp in inputs:
        inp = Path(inp)
        if inp.is_dir():
            files = [p for p in inp.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(inp).parts)]
            files = [p for p in files if not (exclude and exclude(p))]
            if not files:
                raise UserError(f"The folder {inp} holds no images.")
            found += [(p.relative_to(inp).as_posix(), p) for p in files]
        elif inp.is_file():
            loose.append(inp)
        else:
            raise UserError(f"{inp} does not exist.")
    if loose:
        import os

        root = Path(os.path.commonpath([str(p.resolve().parent) for p in loose]))
        found += [(p.resolve().relative_to(root).as_posix(), p) for p in loose]
    if not found:
        raise UserError("No images were given.")
    seen: dict[str, str] = {}
    for name, _ in found:
        key = name.lower()  # engines on Windows and macOS do not tell case apart
        if key in seen:
            raise UserError(f"Two images share the frame name '{name}' (also '{seen[key]}'): rename one.")
        seen[key] = name
    return sorted(found, key=lambda item: natural_key(item[0]))


def natural_key(text: str) -> list:
    """walk2 before walk10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", text)]


def open_rgba(path: Path) -> Image.Image:
    from asset_studio.core.images import read_image

    return read_image(path, "RGBA", max_pixels=MAX_PIXELS)


def trim_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The smallest box holding every non-transparent pixel (1x1 for an empty image)."""
    box = image.getchannel("A").getbbox()
    if box is None:
        return (0, 0, 1, 1)
    return (box[0], box[1], box[2] - box[0], box[3] - box[1])


def load_sprites(inputs: list[Path], trim: bool = False, exclude=None) -> list[Sprite]:
    sprites = []
    for name, path in collect_images(inputs, exclude):
        im = open_rgba(path)
        box = trim_box(im) if trim else (0, 0, *im.size)
        sprites.append(Sprite(name=name, image=im, trim=box))
    return sprites


# --------------------------------------------------------------------------- animations

_SEQ = re.compile(r"^(?P<prefix>.*?)[ _\-.]?(?P<index>\d+)$")


def find_animations(names: list[str]) -> list[Animation]:
    """Animations from numbered names (walk0, walk1 … or walk_01 …) and from sub-folders.

    Numbered files of one folder that share a prefix form a sequence (two frames at least). A
    sub-folder whose files form no sequence is itself an animation, in natural order.
    """
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for name in names:
        folder, _, file = name.rpartition("/")
        stem = file.rsplit(".", 1)[0]
        m = _SEQ.match(stem)
        if m:
            groups.setdefault((folder, m.group("prefix")), []).append((int(m.group("index")), name))
    animations: dict[str, Animation] = {}
    in_sequence: set[str] = set()
    for (folder, prefix), items in sorted(groups.items(), key=lambda kv: natural_key("/".join(kv[0]))):
        if len(items) < 2:
            continue
        label = prefix or folder.rsplit("/", 1)[-1] or "default"
        anim_name = f"{folder}/{label}" if folder and prefix else label
        indices = [i for i, _ in items]
        if len(set(indices)) != len(indices):
            dup = sorted(n for i, n in items if indices.count(i) > 1)
            raise UserError(f"The frames {', '.join(dup)} claim the same place in animation '{anim_name}': rename one.")
        _add_animation(animations, Animation(anim_name, [n for _, n in sorted(items)]))
        in_sequence.update(n for _, n in items)
    folders: dict[str, list[str]] = {}
    for name in names:
        folder = name.rpartition("/")[0]
        if folder:
            folders.setdefault(folder, []).append(name)
    for folder, members in sorted(folders.items()):
        if any(m in in_sequence for m in members):
            continue
        _add_animation(animations, Animation(folder, sorted(members, key=natural_key)))
    return list(animations.values())


def _add_animation(animations: dict[str, Animation], anim: Animation) -> None:
    if anim.name in animations:
        raise UserError(f"Two groups of frames would both be the animation '{anim.name}': rename one.")
    animations[anim.name] = anim


# --------------------------------------------------------------------------- MaxRects


HEURISTICS = ("bssf", "blsf", "baf", "bl")


class MaxRects:
    """Jukka Jylänki's MaxRects bin: free space kept as maximal (overlapping) rectangles."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.free: list[tuple[int, int, int, int]] = [(0, 0, width, height)]

    def find(self, w: int, h: int, heuristic: str, rotate: bool):
        """Best (score, x, y, rotated) for a w x h rectangle, or None when nothing fits."""
        best = None
        for fx, fy, fw, fh in self.free:
            for rw, rh, rot in ((w, h, False), (h, w, True)) if rotate and w != h else ((w, h, False),):
                if rw > fw or rh > fh:
                    continue
                dw, dh = fw - rw, fh - rh
                if heuristic == "bssf":
                    score = (min(dw, dh), max(dw, dh))
                elif heuristic == "blsf":
                    score = (max(dw, dh), min(dw, dh))
                elif heuristic == "baf":
                    score = (fw * fh - rw * rh, min(dw, dh))
                else:  # bottom-left: lowest top edge, then leftmost
                    score = (fy + rh, fx)
                if best is None or score < best[0]:
                    best = (score, fx, fy, rot)
        return best

    def place(self, x: int, y: int, w: int, h: int) -> None:
        new: list[tuple[int, int, int, int]] = []
        kept: list[tuple[int, int, int, int]] = []
        for f in self.free:
            fx, fy, fw, fh = f
            if x >= fx + fw or x + w <= fx or y >= fy + fh or y + h <= fy:
                kept.append(f)
                continue
            if x > fx:
                new.append((fx, fy, x - fx, fh))
            if x + w < fx + fw:
                new.append((x + w, fy, fx + fw - x - w, fh))
            if y > fy:
                new.append((fx, fy, fw, y - fy))
            if y + h < fy + fh:
                new.append((fx, y + h, fw, fy + fh - y - h))
        # only the new pieces can be contained in something: prune them (and by them)
        new = [r for i, r in enumerate(new) if not any(_contains(o, r) for j, o in enumerate(new) if j != i and (o != r or j < i))]
        new = [r for r in new if not any(_contains(o, r) for o in kept)]
        self.free = [o for o in kept if not any(_contains(r, o) for r in new)] + new


def _contains(a, b) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and a[0] + a[2] >= b[0] + b[2] and a[1] + a[3] >= b[1] + b[3]


SORTS = {
    "area": lambda w, h: (-w * h, -max(w, h)),
    "maxside": lambda w, h: (-max(w, h), -min(w, h)),
    "height": lambda w, h: (-h, -w),
    "width": lambda w, h: (-w, -h),
    "perimeter": lambda w, h: (-(w + h), -max(w, h)),
}


def maxrects_pack(sizes, width: int, height: int, heuristic: str = "bssf", order: str = "area", rotate: bool = False):
    """Place rectangles in one width x height bin, in the given sort order.

    Returns {index: (x, y, rotated)} for those that fit (all of them when possible).
    """
    key = SORTS[order]
    todo = sorted(range(len(sizes)), key=lambda i: (*key(*sizes[i]), i))
    bin_ = MaxRects(width, height)
    placed = {}
    for i in todo:
        w, h = sizes[i]
        best = bin_.find(w, h, heuristic, rotate)
        if best is None:
            continue
        _, x, y, rot = best
        rw, rh = (h, w) if rot else (w, h)
        bin_.place(x, y, rw, rh)
        placed[i] = (x, y, rot)
    return placed


def _extent(sizes, placed) -> tuple[int, int]:
    w = h = 0
    for i, (x, y, rot) in placed.items():
        rw, rh = (sizes[i][1], sizes[i][0]) if rot else sizes[i]
        w, h = max(w, x + rw), max(h, y + rh)
    return w, h


def _page_dims(w: int, h: int, pad: int, opts: SheetOptions) -> tuple[int, int]:
    """Final page size for content of extent w x h (the trailing padding is not needed)."""
    w, h = max(1, w - pad), max(1, h - pad)
    if opts.square:
        w = h = max(w, h)
    if opts.pot:
        w, h = _next_pot(w), _next_pot(h)
    return w, h


def _next_pot(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


# Strip packing (fixed width, open height) favours bottom-left placement of tall-first orders;
# measured on sprite sets and random rectangles, these six pairs hold nearly every winner.
STRATEGIES = (("bl", "height"), ("bl", "perimeter"), ("bl", "maxside"), ("bl", "area"), ("baf", "height"), ("bssf", "height"))


def best_layout(sizes, opts: SheetOptions, pad: int):
    """The smallest page holding every rectangle, or None when none fits within max_size.

    Sizes include the padding; the page may leave the last padding out, hence limit + pad.
    """
    limit = opts.max_size + pad
    max_w = max(w for w, h in sizes)
    if opts.rotate:  # a rotated rectangle needs only its shorter side across
        max_w = max(min(w, h) for w, h in sizes)
    area = sum(w * h for w, h in sizes)
    side = int(np.ceil(np.sqrt(area)))
    widths = {limit} | {min(limit, max(max_w, int(side * f))) for f in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0)}
    if opts.pot:
        widths |= {min(limit, _next_pot(max(w - pad, 1)) + pad) for w in widths}
    best = None
    for width in sorted(widths):
        if width < max_w:
            continue
        for heuristic, order in STRATEGIES:
            placed = maxrects_pack(sizes, width, limit, heuristic, order, opts.rotate)
            if len(placed) < len(sizes):
                continue
            ew, eh = _extent(sizes, placed)
            pw, ph = _page_dims(ew, eh, pad, opts)
            if pw > opts.max_size or ph > opts.max_size:
                continue
            score = (pw * ph, max(pw, ph), width, heuristic, order)
            if best is None or score < best[0]:
                best = (score, placed, (pw, ph))
    return None if best is None else (best[1], best[2])


def _fill_page(sizes, opts: SheetOptions, pad: int):
    """The most area that fits one max_size page (for multi-page sheets)."""
    limit = opts.max_size + pad
    best = None
    for heuristic in HEURISTICS:
        for order in SORTS:
            placed = maxrects_pack(sizes, limit, limit, heuristic, order, opts.rotate)
            used = sum(sizes[i][0] * sizes[i][1] for i in placed)
            if best is None or used > best[0]:
                best = (used, placed)
    return best[1]


# --------------------------------------------------------------------------- drawing


def bleed(rgba: np.ndarray, rings: int = 32, known: np.ndarray | None = None) -> np.ndarray:
    """Give transparent pixels the colour of the nearest opaque ones (alpha stays 0).

    Grows the opaque region (or ``known``, pixels whose colour is already right) ring by ring,
    each new pixel taking the mean of its coloured neighbours; past ``rings`` the rest takes the
    mean known colour (too far from any edge to be sampled by filtering).
    """
    out = rgba.copy()
    filled = out[..., 3] > 0 if known is None else known.copy()
    done = filled.copy()
    if filled.all() or not filled.any():
        return out
    rgb = out[..., :3].astype(np.int32) * filled[..., None]
    h, w = filled.shape
    for _ in range(rings):
        if filled.all():
            break
        pr = np.pad(rgb, ((1, 1), (1, 1), (0, 0)))
        pf = np.pad(filled, 1).astype(np.int32)
        sums = np.zeros_like(rgb)
        count = np.zeros((h, w), np.int32)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                if dy == 1 and dx == 1:
                    continue
                sums += pr[dy : dy + h, dx : dx + w]
                count += pf[dy : dy + h, dx : dx + w]
        grow = (~filled) & (count > 0)
        if not grow.any():
            break
        rgb[grow] = sums[grow] // count[grow][:, None]
        filled = filled | grow
    if not filled.all():
        rgb[~filled] = rgb[done].mean(axis=0).astype(np.int32)
    out[..., :3] = np.where(done[..., None], out[..., :3], rgb.astype(np.uint8))
    return out


def frame_pixels(sprite: Sprite, rotated: bool) -> Image.Image:
    x, y, w, h = sprite.trim
    im = sprite.image.crop((x, y, x + w, y + h))
    return im.transpose(Image.Transpose.ROTATE_270) if rotated else im  # 90° clockwise


def _draw(page: np.ndarray, tile: np.ndarray, x: int, y: int, extrude: int, margin: int, bleed_on: bool) -> None:
    """Paste a frame at (x, y) with its extruded edge and a bled, transparent margin."""
    if bleed_on:
        tile = bleed(tile)
    if extrude:  # after bleeding, so extruded transparent pixels repeat the edge colour too
        tile = np.pad(tile, ((extrude, extrude), (extrude, extrude), (0, 0)), mode="edge")
    x, y = x - extrude, y - extrude
    if bleed_on and margin:
        known = np.pad(np.ones(tile.shape[:2], bool), margin)
        tile = bleed(np.pad(tile, ((margin, margin), (margin, margin), (0, 0))), known=known)
        x, y = x - margin, y - margin
    ph, pw = page.shape[:2]
    th, tw = tile.shape[:2]
    x0, y0 = max(0, -x), max(0, -y)
    x1, y1 = min(tw, pw - x), min(th, ph - y)
    region = page[y + y0 : y + y1, x + x0 : x + x1]
    src = tile[y0:y1, x0:x1]
    # frames never overlap; a bled margin must not cover a neighbour's visible pixels
    region[...] = np.where((src[..., 3:] > 0) | (region[..., 3:] == 0), src, region)


# --------------------------------------------------------------------------- packing


def pack_sheet(sprites: list[Sprite], opts: SheetOptions | None = None) -> Sheet:
    """Lay the sprites out on one or more pages and draw them."""
    opts = opts or SheetOptions()
    if not sprites:
        raise UserError("There are no sprites to pack.")
    if opts.pot:  # the largest power-of-two side the maximum allows
        opts = replace(opts, max_size=1 << (opts.max_size.bit_length() - 1))
    if opts.grid:
        placements, page_sizes = _grid_layout(sprites, opts)
    else:
        placements, page_sizes = _maxrects_layout(sprites, opts)

    pages = [np.zeros((h, w, 4), np.uint8) for w, h in page_sizes]
    frames: list[Frame] = []
    for sprite, (page_i, x, y, rotated) in zip(sprites, placements):
        if opts.grid:
            cw, ch = opts.grid
            sw, sh = sprite.source_size
            tile = np.zeros((ch, cw, 4), np.uint8)
            ox, oy = (cw - sw) // 2, (ch - sh) // 2
            tile[oy : oy + sh, ox : ox + sw] = np.asarray(sprite.image)
            frame = Frame(sprite.name, page_i, x, y, cw, ch, False, False, 0, 0, cw, ch)
        else:
            tile = np.asarray(frame_pixels(sprite, rotated))
            tx, ty, tw, th = sprite.trim
            sw, sh = sprite.source_size
            frame = Frame(sprite.name, page_i, x, y, tw, th, rotated, sprite.trimmed, tx, ty, sw, sh)
        _draw(pages[page_i], tile, x, y, opts.extrude, opts.padding // 2, opts.bleed)
        frames.append(frame)
    return Sheet(
        pages=[Page(Image.fromarray(p, "RGBA")) for p in pages],
        frames=frames,
        animations=find_animations([s.name for s in sprites]),
    )


def _maxrects_layout(sprites: list[Sprite], opts: SheetOptions):
    pad, ext = opts.padding, opts.extrude
    sizes = [(s.trim[2] + 2 * ext + pad, s.trim[3] + 2 * ext + pad) for s in sprites]
    for s, (w, h) in zip(sprites, sizes):
        fits = (w - pad <= opts.max_size and h - pad <= opts.max_size) or (
            opts.rotate and h - pad <= opts.max_size and w - pad <= opts.max_size
        )
        if not fits:
            raise UserError(
                f"The sprite {s.name} ({s.trim[2]}x{s.trim[3]} with extrude) is larger than the maximum sheet size {opts.max_size}."
            )
    remaining = list(range(len(sprites)))
    placements: list[tuple[int, int, int, bool] | None] = [None] * len(sprites)
    page_sizes = []
    while remaining:
        sub = [sizes[i] for i in remaining]
        layout = best_layout(sub, opts, pad)
        if layout is None:  # more than one page: fill this one, then shrink it to what it holds
            filled = _fill_page(sub, opts, pad)
            if not filled:
                raise UserError(f"The sprites do not fit a {opts.max_size}x{opts.max_size} sheet.")
            chosen = sorted(filled)
            members = [remaining[j] for j in chosen]
            member_sizes = [sizes[i] for i in members]
            layout = best_layout(member_sizes, opts, pad)
            if layout is None:  # only the full-page arrangement holds them
                placed = {k: filled[j] for k, j in enumerate(chosen)}
                layout = (placed, _page_dims(*_extent(member_sizes, placed), pad, opts))
        else:
            members = remaining
        placed, page_size = layout
        for j, i in enumerate(members):
            x, y, rot = placed[j]
            placements[i] = (len(page_sizes), x + ext, y + ext, rot)
        page_sizes.append(page_size)
        remaining = [i for i in remaining if i not in set(members)]
    return placements, page_sizes


def _grid_layout(sprites: list[Sprite], opts: SheetOptions):
    cw, ch = opts.grid
    for s in sprites:
        if s.source_size[0] > cw or s.source_size[1] > ch:
            raise UserError(f"The sprite {s.name} ({s.source_size[0]}x{s.source_size[1]}) is larger than the {cw}x{ch} grid cell.")
    pad, ext = opts.padding, opts.extrude
    sw, sh = cw + 2 * ext + pad, ch + 2 * ext + pad  # the stride between cells
    if sw - pad > opts.max_size or sh - pad > opts.max_size:
        raise UserError(f"A {cw}x{ch} grid cell is larger than the maximum sheet size {opts.max_size}.")
    max_cols = (opts.max_size + pad) // sw
    max_rows = (opts.max_size + pad) // sh
    n = len(sprites)
    per_page = max_cols * max_rows
    placements, page_sizes = [], []
    for start in range(0, n, per_page):
        count = min(per_page, n - start)
        # columns that make the page closest to square (then fewest empty cells)
        cols = min(
            range(1, min(max_cols, count) + 1),
            key=lambda c: (-(-count // c) > max_rows, abs(c * sw - (-(-count // c)) * sh), c * (-(-count // c)) - count),
        )
        rows = -(-count // cols)
        page = len(page_sizes)
        for k in range(count):
            r, c = divmod(k, cols)
            placements.append((page, c * sw + ext, r * sh + ext, False))
        page_sizes.append(_page_dims(cols * sw, rows * sh, pad, opts))
    for w, h in page_sizes:
        if w > opts.max_size or h > opts.max_size:
            raise UserError(f"The grid does not fit a {opts.max_size}x{opts.max_size} sheet with these options.")
    return placements, page_sizes


# --------------------------------------------------------------------------- files


def page_paths(out_png: Path, count: int) -> list[Path]:
    """SHEET.png for one page; SHEET-1.png, SHEET-2.png … for several."""
    out_png = Path(out_png)
    if count == 1:
        return [out_png]
    return [out_png.with_name(f"{out_png.stem}-{i + 1}{out_png.suffix}") for i in range(count)]


def save_pages(sheet: Sheet, out_png: Path) -> list[Path]:
    """Write the pages as one set (see core/outputs.py), each marked as written by `sheet`."""
    from asset_studio.core.outputs import png_writer, write_set

    paths = page_paths(out_png, len(sheet.pages))
    return write_set([(path, png_writer(page.image, SHEET_COMMAND)) for page, path in zip(sheet.pages, paths)])
