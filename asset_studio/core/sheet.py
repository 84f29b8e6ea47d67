"""Sprite sheets: load sprites, trim them, pack them (MaxRects or a uniform grid), draw the pages.

The packer sweeps sheet widths with several MaxRects placement heuristics and sort orders and
keeps the smallest sheet, so it usually beats a single square MaxRects run; the MaxRects loops
run compiled (core.sheet_kernels), so thousands of sprites pack in about a second. Everything
is deterministic: the same inputs give the same pixels and the same data files. Frames are
drawn with optional extrusion, and transparent pixels inside and around them take the colour
of the nearest opaque pixel of the same frame (alpha bleeding) so filtered edges show no dark
halo; a page is bled in one pass, frame by frame.
"""

from __future__ import annotations

import os
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
    pixels: np.ndarray | None = field(default=None, repr=False)  # an array image shares, if any (no copies)

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
    pixels: np.ndarray | None = field(default=None, repr=False)  # the array image shares (saves a copy when saving)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def writer(self):
        """The page as a core.outputs writer: PNG through the multi-core encoder at any size (the
        packer has loaded its compiled code), marked as the `sheet` command's."""
        from asset_studio.core.outputs import png_writer

        return png_writer(self.image, SHEET_COMMAND, any_size=True, pixels=self.pixels)


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
    return read_sprites(collect_images(inputs, exclude), trim)


def read_sprites(found: list[tuple[str, Path]], trim: bool = False) -> list[Sprite]:
    """Sprites from collect_images' (name, path) list, in its order. One thread: Pillow holds the
    GIL for most of a PNG's decoding, so threads were measured slower (0.35-0.46 s against
    0.28 s for 2,000 small sprites, the same for 60 large ones)."""
    sprites = []
    for name, path in found:
        im = open_rgba(path)
        sprites.append(Sprite(name=name, image=im, trim=trim_box(im) if trim else (0, 0, *im.size)))
    return sprites


def kernels_loaded() -> bool:
    """Whether this process has loaded the compiled loops already (an earlier sheet)."""
    import sys

    return "asset_studio.core.sheet_kernels" in sys.modules


def load_kernels() -> None:
    """Load the compiled loops a sheet uses (numba and their cached machine code) now, by running
    each once on tiny inputs, so that the loading can overlap the reading (core.sprite_reader)."""
    from asset_studio.core.png_kernels import filter_band
    from asset_studio.core.sheet_kernels import Packer, bleed_labelled

    Packer([(1, 1)]).pack(1, 1, "bl", "height")
    bleed_labelled(np.zeros((9, 4), np.uint8), np.zeros(9, np.int32), np.zeros(9, bool), 3, 1)
    filter_band(np.zeros((1, 4), np.uint8), np.zeros((1, 5), np.uint8), 4, 0, 1)


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
# measured on sprite sets and random rectangles, these six pairs hold nearly every winner, and
# the first one (also the cheapest: it leaves few free rectangles) wins almost always.
STRATEGIES = (("bl", "height"), ("bl", "perimeter"), ("bl", "maxside"), ("bl", "area"), ("baf", "height"), ("bssf", "height"))
WIDTH_FACTORS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0)  # of the square's side
FINE_FACTORS = tuple(round(0.5 + 0.02 * i, 2) for i in range(76))  # 0.5 … 2.0: the sheet area is a noisy function of the width
# Up to this many rectangles the other strategies try every coarse width; beyond, only the best
# three widths of the sweep (the best one past MANY: there a bottom-left pack of a non-height
# order costs half a second, and the sweep alone already fills 99.9% on random sprites).
ALL_STRATEGIES_UP_TO = 1000
MANY = 5000
PARALLEL_FROM = 200  # rectangles: below this a pack is too short to be worth a thread


def best_layout(sizes, opts: SheetOptions, pad: int):
    """The smallest page holding every rectangle, or None when none fits within max_size.

    Sizes include the padding; the page may leave the last padding out, hence limit + pad.
    Returns ({index: (x, y, rotated)}, (page width, page height)).

    Bottom-left, tallest first, runs at every width of a fine sweep; the other strategies run at
    the coarse widths, or, for many rectangles where each pack costs more and they have not been
    seen to win, at the few best widths of the sweep.
    """
    from asset_studio.core.sheet_kernels import Packer  # compiled kernel: numba loads on first use

    limit = opts.max_size + pad
    max_w = max(w for w, h in sizes)
    if opts.rotate:  # a rotated rectangle needs only its shorter side across
        max_w = max(min(w, h) for w, h in sizes)
    area = sum(w * h for w, h in sizes)
    if area > limit * limit:  # more than one page holds, whatever the layout
        return None
    side = int(np.ceil(np.sqrt(area)))

    def clamp(factors) -> list[int]:
        widths = {limit} | {min(limit, max(max_w, int(side * f))) for f in factors}
        if opts.pot:
            widths |= {min(limit, _next_pot(max(w - pad, 1)) + pad) for w in widths}
        return sorted(w for w in widths if w >= max_w)

    packer = Packer(sizes, opts.rotate)
    for _, order in STRATEGIES:
        packer.prepare(order)
    results: dict[tuple[int, str, str], tuple] = {}

    def attempt(key: tuple[int, str, str]):
        width, heuristic, order = key
        xs, ys, rots = packer.pack(width, limit, heuristic, order)
        if (xs < 0).any():
            return None
        pw, ph = _page_dims(*packer.extent(xs, ys, rots), pad, opts)
        if pw <= opts.max_size and ph <= opts.max_size:
            return (pw * ph, max(pw, ph), width, heuristic, order), (xs, ys, rots), (pw, ph)
        return None

    def attempt_all(keys) -> None:
        # The kernel runs without the GIL, so a big set's packs share the cores; the results (and
        # so the chosen layout) do not depend on the order they finish in.
        keys = [k for k in dict.fromkeys(keys) if k not in results]
        if len(sizes) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
            results.update((k, attempt(k)) for k in keys)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            results.update(zip(keys, pool.map(attempt, keys)))

    coarse = clamp(WIDTH_FACTORS)
    attempt_all((width, *STRATEGIES[0]) for width in sorted(set(coarse) | set(clamp(FINE_FACTORS))))
    ranked = sorted(r[0] for r in results.values() if r is not None)
    if len(sizes) <= ALL_STRATEGIES_UP_TO or not ranked:
        others = coarse
    else:
        others = [score[2] for score in ranked[: 3 if len(sizes) <= MANY else 1]]
    attempt_all((width, heuristic, order) for width in others for heuristic, order in STRATEGIES[1:])
    found = [r for r in results.values() if r is not None]
    if not found:
        return None
    _, placed, page = min(found, key=lambda r: r[0])
    return packer.as_dict(*placed), page


def _fill_page(sizes, opts: SheetOptions, pad: int):
    """The most area that fits one max_size page (for multi-page sheets)."""
    from asset_studio.core.sheet_kernels import HEURISTICS, SORTS, Packer

    limit = opts.max_size + pad
    packer = Packer(sizes, opts.rotate)
    areas = packer.ws * packer.hs
    best = None
    for heuristic in HEURISTICS:
        for order in SORTS:
            xs, ys, rots = packer.pack(limit, limit, heuristic, order)
            used = int(areas[xs >= 0].sum())
            if best is None or used > best[0]:
                best = (used, (xs, ys, rots))
    return packer.as_dict(*best[1])


# --------------------------------------------------------------------------- drawing


def bleed(rgba: np.ndarray, rings: int = 32, known: np.ndarray | None = None) -> np.ndarray:
    """Give transparent pixels the colour of the nearest opaque ones (alpha stays 0).

    Grows the opaque region (or ``known``, pixels whose colour is already right) ring by ring,
    each new pixel taking the mean of its coloured neighbours; past ``rings`` the rest takes the
    mean known colour (too far from any edge to be sampled by filtering).
    """
    out = np.array(rgba, np.uint8, order="C")
    known = out[..., 3] > 0 if known is None else known
    bleed_regions(out, np.ones(rgba.shape[:2], np.int32), known, rings)
    return out


def bleed_regions(rgba: np.ndarray, labels: np.ndarray, known: np.ndarray, rings: int = 32) -> None:
    """``bleed`` in place for many regions of one canvas at once, each on its own.

    ``labels`` numbers the regions (0: none): a pixel takes colour only from known pixels of its
    own region, so frames packed edge to edge do not bleed into each other. A region without a known pixel is left as it is. Only the pixels still
    to fill are visited each ring, which makes a whole page cost about what its holes hold.
    """
    from asset_studio.core.sheet_kernels import bleed_labelled  # compiled: numba loads on first use

    if not rgba.flags.c_contiguous or not labels.flags.c_contiguous:
        raise ValueError("bleed_regions works in place on C-contiguous arrays")
    bleed_labelled(rgba.reshape(-1, 4), labels.reshape(-1), np.ascontiguousarray(known).reshape(-1), labels.shape[1], rings)


def frame_pixels(sprite: Sprite, rotated: bool) -> np.ndarray:
    """The trimmed sprite as the page holds it (turned 90° clockwise when rotated): a view of
    sprite.pixels when there is one, else a copy from the image."""
    x, y, w, h = sprite.trim
    if sprite.pixels is not None:
        part = sprite.pixels[y : y + h, x : x + w]
        return np.rot90(part, -1) if rotated else part
    im = sprite.image.crop((x, y, x + w, y + h))
    return np.asarray(im.transpose(Image.Transpose.ROTATE_270) if rotated else im)


def _draw_page(size: tuple[int, int], tiles: list[tuple[int, int, np.ndarray]], extrude: int, margin: int, bleed_on: bool) -> np.ndarray:
    """One page: each tile at its (x, y), its transparent pixels bled from its own opaque ones, its
    edge extruded, then a transparent margin bled from the extruded tile.

    Frames never overlap and a margin is at most half the padding, so every frame (with its
    extrusion and margin) is a region of its own and the whole page is bled in one pass. The
    canvas reaches past the page by the margin, as a margin bled at the edge needs its outer part;
    without a margin the canvas is the page (no copy: fresh memory is slow on some machines).
    """
    pw, ph = size
    b = margin if bleed_on else 0
    canvas = np.zeros((ph + 2 * b, pw + 2 * b, 4), np.uint8)
    labels = np.zeros(canvas.shape[:2], np.int32)
    for k, (x, y, tile) in enumerate(tiles, start=1):
        th, tw = tile.shape[:2]
        canvas[b + y : b + y + th, b + x : b + x + tw] = tile
        labels[b + y : b + y + th, b + x : b + x + tw] = k
    if bleed_on:
        bleed_regions(canvas, labels, canvas[..., 3] > 0)
    if extrude:  # after bleeding, so extruded transparent pixels repeat the edge colour too
        e = extrude
        for x, y, tile in tiles:
            th, tw = tile.shape[:2]
            y0, x0 = b + y, b + x
            inner = canvas[y0 : y0 + th, x0 : x0 + tw]
            canvas[y0 - e : y0 + th + e, x0 - e : x0 + tw + e] = np.pad(inner, ((e, e), (e, e), (0, 0)), mode="edge")
    if bleed_on and margin:
        e, m = extrude, margin
        labels[...] = 0
        known = np.zeros(labels.shape, bool)
        for k, (x, y, tile) in enumerate(tiles, start=1):
            th, tw = tile.shape[:2]
            y0, x0 = b + y - e, b + x - e
            labels[y0 - m : y0 + th + 2 * e + m, x0 - m : x0 + tw + 2 * e + m] = k
            known[y0 : y0 + th + 2 * e, x0 : x0 + tw + 2 * e] = True
        bleed_regions(canvas, labels, known)
    return canvas if b == 0 else np.ascontiguousarray(canvas[b : b + ph, b : b + pw])


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

    tiles: list[list[tuple[int, int, np.ndarray]]] = [[] for _ in page_sizes]
    frames: list[Frame] = []
    for sprite, (page_i, x, y, rotated) in zip(sprites, placements):
        if opts.grid:
            cw, ch = opts.grid
            sw, sh = sprite.source_size
            tile = np.zeros((ch, cw, 4), np.uint8)
            ox, oy = (cw - sw) // 2, (ch - sh) // 2
            tile[oy : oy + sh, ox : ox + sw] = sprite.pixels if sprite.pixels is not None else np.asarray(sprite.image)
            frame = Frame(sprite.name, page_i, x, y, cw, ch, False, False, 0, 0, cw, ch)
        else:
            tile = frame_pixels(sprite, rotated)
            tx, ty, tw, th = sprite.trim
            sw, sh = sprite.source_size
            frame = Frame(sprite.name, page_i, x, y, tw, th, rotated, sprite.trimmed, tx, ty, sw, sh)
        tiles[page_i].append((x, y, tile))
        frames.append(frame)
    pages = [_draw_page(size, page_tiles, opts.extrude, opts.padding // 2, opts.bleed) for size, page_tiles in zip(page_sizes, tiles)]
    return Sheet(
        pages=[Page(Image.fromarray(p, "RGBA"), p) for p in pages],
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
        taken = set(members)
        remaining = [i for i in remaining if i not in taken]
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
    from asset_studio.core.outputs import write_set

    paths = page_paths(out_png, len(sheet.pages))
    return write_set([(path, page.writer()) for page, path in zip(sheet.pages, paths)])
