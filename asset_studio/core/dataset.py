"""Training images: a folder of the artist's pictures, their captions, and aspect-ratio buckets.

    data/
        knight.png          a sprite (alpha is composited on the background colour)
        knight.txt          its caption (optional; else the file name: "knight")
        red_potion-02.webp  caption "red potion"

`scan_dataset` reads the folder (no image decoded), `check_dataset` opens every image once and
says in plain sentences what stops training (too few images, unreadable or huge files) and what
is worth knowing (mixed sizes, upscaled small sprites, files skipped). `prepare_image` gives the
RGB picture a bucket wants: resized to cover it and centre-cropped, never squashed.

Buckets are sizes in multiples of 64 with about the training resolution's area (kohya's scheme),
so a tall character trains at 384x640 instead of being squeezed into 512x512. Pure data: no torch.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageColor

from asset_studio.core.images import MAX_PIXELS, has_alpha, read_image
from asset_studio.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MIN_IMAGES = 3  # fewer cannot tell a style from a subject
FEW_IMAGES = 10  # fewer works, but the note says more would help
MAX_IMAGES = 5000
MAX_FILE_BYTES = 50 * 1024**2  # a finished sprite is kilobytes; 50 MB is a photo scan or a mistake
MAX_CAPTION_BYTES = 10_000
MAX_ASPECT = 3.0  # buckets from 1:3 to 3:1; a longer strip is centre-cropped to 3:1
BUCKET_STEP = 64  # SD's UNets need sides divisible by 64 (8x VAE, three 2x downsamplings)


@dataclass
class DatasetItem:
    path: Path
    caption: str  # with the trigger word first
    caption_source: str  # "txt" (NAME.txt beside the image) or "name" (from the file name)


@dataclass
class Dataset:
    folder: Path
    trigger: str
    items: list[DatasetItem]
    skipped: list[Path] = field(default_factory=list)  # files that are not training images

    def tag_frequency(self) -> dict[str, dict[str, int]]:
        """kohya's ss_tag_frequency: {folder name: {tag: count}}, tags being the caption's comma parts."""
        counts: Counter = Counter()
        for item in self.items:
            counts.update(caption_tags(item.caption))
        return {self.folder.name: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}

    def tag_frequency_json(self) -> str:
        return json.dumps(self.tag_frequency(), ensure_ascii=False)


@dataclass
class DatasetReport:
    """What check_dataset found: problems stop training, notes are for the artist to know."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sizes: dict[Path, tuple[int, int]] = field(default_factory=dict)  # readable images only
    with_alpha: int = 0  # images that had transparency (composited on the background)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_problems(self) -> None:
        if self.problems:
            raise UserError(" ".join(self.problems))


# --- captions ------------------------------------------------------------------------------------


def caption_from_name(path: Path) -> str:
    """'red_potion-02.png' -> 'red potion': separators become spaces, a trailing number goes."""
    stem = re.sub(r"[_\-.]+", " ", Path(path).stem)
    stem = re.sub(r"(\s+\(?\d+\)?)+$", "", stem)  # "knight 02", "knight (3)"
    return " ".join(stem.split())


def caption_tags(caption: str) -> list[str]:
    return [t for t in (" ".join(part.split()) for part in caption.split(",")) if t]


def with_trigger(trigger: str, caption: str) -> str:
    """The trigger word first, once (a caption that already starts with it keeps it as is)."""
    tags = caption_tags(caption)
    if tags and tags[0].lower() == trigger.lower():
        tags = tags[1:]
    return ", ".join([trigger, *tags]) if trigger else ", ".join(tags)


def _read_caption(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CAPTION_BYTES:
            raise UserError(f"The caption {path} is larger than {MAX_CAPTION_BYTES // 1000} kB; "
                            "a caption is one line of words.")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"The caption {path} is not UTF-8 text; save it as UTF-8.") from None
    except OSError as exc:
        raise UserError(f"The caption {path} cannot be read ({exc.strerror or exc}).") from None
    return " ".join(text.split())


def check_trigger(trigger: str) -> str:
    trigger = " ".join(str(trigger).split())
    if not trigger:
        raise UserError("The trigger word is empty; give one with --trigger (by default it is the pack id).")
    if len(trigger) > 100 or "," in trigger or any(c in trigger for c in "{}"):
        raise UserError("The trigger word must be a short word or two, without commas or braces.")
    return trigger


# --- the folder ----------------------------------------------------------------------------------


def scan_dataset(folder: str | Path, trigger: str) -> Dataset:
    """The images in FOLDER (not its sub-folders) with their captions; no image is opened yet."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise UserError(f"The image folder {folder} does not exist.")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give the folder that holds the training images.")
    trigger = check_trigger(trigger)
    items, skipped = [], []
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name.lower())
    except OSError as exc:
        raise UserError(f"The image folder {folder} cannot be read ({exc.strerror or exc}).") from None
    for path in entries:
        if path.name.startswith(".") or path.is_dir():
            continue
        suffix = path.suffix.lower()
        if suffix == ".txt":
            continue  # captions, read with their image
        if suffix not in IMAGE_SUFFIXES:
            skipped.append(path)
            continue
        txt = path.with_suffix(".txt")
        if txt.is_file():
            caption, source = _read_caption(txt), "txt"
        else:
            caption, source = caption_from_name(path), "name"
        items.append(DatasetItem(path=path, caption=with_trigger(trigger, caption), caption_source=source))
        if len(items) > MAX_IMAGES:
            raise UserError(f"The folder {folder} holds more than {MAX_IMAGES} images; "
                            "a style trains well on 10 to 100.")
    return Dataset(folder=folder, trigger=trigger, items=items, skipped=skipped)


def _names(paths, limit: int = 5) -> str:
    names = [Path(p).name for p in paths]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_dataset(dataset: Dataset, resolution: int, step: int = BUCKET_STEP) -> DatasetReport:
    """Open every image once (header and pixels) and report, in sentences, what training needs to know."""
    report = DatasetReport()
    unreadable, huge, blank, small = [], [], [], []
    for item in dataset.items:
        try:
            size = item.path.stat().st_size
        except OSError:
            unreadable.append(item.path)
            continue
        if size > MAX_FILE_BYTES:
            huge.append(item.path)
            continue
        try:
            image = read_image(item.path, mode=None)
        except UserError as exc:
            (huge if "too large" in str(exc) else unreadable).append(item.path)
            continue
        if image.mode == "RGBA":
            low, high = image.getchannel("A").getextrema()
            if high == 0:
                blank.append(item.path)
                continue
            report.with_alpha += low < 255
        report.sizes[item.path] = image.size
        if max(image.size) * 2 <= resolution:
            small.append(item.path)

    if unreadable:
        report.problems.append(f"{len(unreadable)} file(s) cannot be read as images ({_names(unreadable)}); "
                               "fix or remove them.")
    if huge:
        report.problems.append(f"{len(huge)} file(s) are too large to train on ({_names(huge)}): keep images "
                               f"under {MAX_FILE_BYTES // 1024**2} MB and {MAX_PIXELS // 1_000_000} megapixels.")
    if blank:
        report.problems.append(f"{len(blank)} image(s) are fully transparent ({_names(blank)}); remove them.")
    usable = len(report.sizes)
    if usable < MIN_IMAGES:
        where = f"{dataset.folder}"
        found = "no images" if not dataset.items else f"{usable} usable image{'s' if usable != 1 else ''}"
        report.problems.append(f"The folder {where} holds {found}; a style needs at least {MIN_IMAGES} "
                               f"PNG, JPEG or WebP images (10 to 50 work best).")
    elif usable < FEW_IMAGES:
        report.notes.append(f"Only {usable} images: the LoRA will learn them closely; "
                            f"{FEW_IMAGES} or more give a style that generalises.")

    sizes = Counter(report.sizes.values())
    if len(sizes) > 1:
        buckets = Counter(bucket_for(w, h, resolution, step) for w, h in report.sizes.values())
        smallest = min(sizes, key=lambda s: s[0] * s[1])
        largest = max(sizes, key=lambda s: s[0] * s[1])
        report.notes.append(
            f"The images have {len(sizes)} different sizes ({smallest[0]}x{smallest[1]} to {largest[0]}x{largest[1]}); "
            f"each is resized, never squashed, into one of {len(buckets)} training size(s): "
            + ", ".join(f"{w}x{h} ({n})" for (w, h), n in sorted(buckets.items())) + "."
        )
    if small:
        report.notes.append(f"{len(small)} image(s) are less than half the training size ({_names(small)}) and "
                            "are scaled up with hard pixel edges; large originals train better.")
    if report.with_alpha:
        report.notes.append(f"{report.with_alpha} image(s) have transparency; they are placed on the "
                            "background colour for training.")
    if dataset.skipped:
        report.notes.append(f"{len(dataset.skipped)} file(s) are not PNG, JPEG or WebP images and are left out "
                            f"({_names(dataset.skipped)}).")
    from_names = sum(1 for item in dataset.items if item.caption_source == "name")
    if from_names and dataset.items:
        report.notes.append(f"{from_names} of {len(dataset.items)} caption(s) come from file names; a NAME.txt "
                            "beside an image gives it a caption of its own.")
    return report


# --- buckets -------------------------------------------------------------------------------------


def check_resolution(resolution: int, step: int = BUCKET_STEP) -> None:
    low = max(64, step)  # a style pack's image size starts at 64
    if not isinstance(resolution, int) or resolution < low or resolution > 2048 or resolution % step:
        raise UserError(f"The training resolution must be a multiple of {step} from {low} to 2048 "
                        "(512 for SD 1.5, 1024 for SDXL).")


def make_buckets(resolution: int, step: int = BUCKET_STEP, max_aspect: float = MAX_ASPECT) -> list[tuple[int, int]]:
    """(width, height) sizes in multiples of STEP with at most resolution² pixels, as close to it as
    the step allows, from 1:MAX_ASPECT to MAX_ASPECT:1; the square is always one of them."""
    area = resolution * resolution
    buckets = {(resolution, resolution)}
    width = step
    while width <= resolution * max_aspect:
        height = (area // width) // step * step
        if height >= step and max(width, height) / min(width, height) <= max_aspect:
            buckets.add((width, height))
            buckets.add((height, width))
        width += step
    return sorted(buckets)


def bucket_for(width: int, height: int, resolution: int, step: int = BUCKET_STEP) -> tuple[int, int]:
    """The bucket whose aspect is nearest the image's (by log ratio); of equals, the larger area."""
    ratio = math.log(width / height)
    return min(make_buckets(resolution, step), key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def parse_background(value: str | None) -> tuple[int, int, int]:
    """The colour transparent pixels are placed on: '#rrggbb', a CSS name; None = white."""
    if value is None or value == "":
        return (255, 255, 255)
    try:
        rgb = ImageColor.getrgb(str(value).strip())
    except ValueError:
        raise UserError(f"The background colour {value!r} is not a colour; use '#ffffff' or a name like 'white'.") \
            from None
    return tuple(rgb[:3])


@dataclass(frozen=True)
class Prepared:
    image: Image.Image  # RGB, exactly the bucket's size
    original_size: tuple[int, int]  # (width, height) of the file
    crop_top_left: tuple[int, int]  # (top, left) in the resized image: SDXL's crop conditioning
    had_alpha: bool


def prepare_image(path: Path, bucket: tuple[int, int], background=(255, 255, 255)) -> Prepared:
    """PATH as an RGB image of exactly BUCKET's size: alpha composited on BACKGROUND, scaled to cover
    the bucket and centre-cropped. Scaling up by 2x or more keeps hard pixel edges (pixel-art sprites);
    anything else is resampled with Lanczos."""
    image = read_image(path, mode=None)
    alpha = image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255
    if image.mode == "RGBA":
        flat = Image.new("RGB", image.size, tuple(background))
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    bw, bh = bucket
    w, h = image.size
    scale = max(bw / w, bh / h)
    new = (max(bw, round(w * scale)), max(bh, round(h * scale)))
    if new != image.size:
        method = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
        image = image.resize(new, method)
    left, top = (new[0] - bw) // 2, (new[1] - bh) // 2
    image = image.crop((left, top, left + bw, top + bh))
    return Prepared(image=image, original_size=(w, h), crop_top_left=(top, left), had_alpha=alpha)
