"""The detailer's arithmetic and words (no torch): region specs, masks and crops in pixels, the
size a crop is redrawn at, and ADetailer's keys in the A1111 `parameters` text.

A region is redrawn as ADetailer's "inpaint only masked" does it: the mask is the region grown by
`dilate` pixels; the crop is the mask's box plus `padding` of context, clipped to the image; the
crop is redrawn at the job's base pixel count (the size the model is used at) with its own aspect,
in multiples of 8, then scaled back and pasted through the mask blurred by `mask_blur`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from asset_studio.core.job import MAX_SIDE, Box, DetailPass
from asset_studio.errors import UserError

Rect = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)

_BOX_SPEC = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")
_CLASS_NAME = re.compile(r"^[\w .\-]{1,64}$")


def parse_region_spec(text: str) -> Box | list[str]:
    """`x,y,w,h` → a drawn Box; anything else → the detector classes it names (`face`, `face,hand`,
    `0`; `all` = every class, an empty list). Four numbers are a box: four class numbers join with +."""
    match = _BOX_SPEC.match(text)
    if match:
        x, y, w, h = map(int, match.groups())
        return Box(x=x, y=y, width=w, height=h)
    names = [n.strip() for n in re.split(r"[,+]", text) if n.strip()]
    if not names or not all(_CLASS_NAME.match(n) for n in names):
        raise UserError(f"--detail takes a region x,y,w,h in pixels (e.g. 96,40,64,64) or detector class names "
                        f"(e.g. face or face,hand), not '{text[:60]}'.")
    return [] if [n.lower() for n in names] == ["all"] else names


def mask_rect(box: Rect, dilate: int, size: tuple[int, int]) -> Rect | None:
    """BOX grown by DILATE pixels (shrunk when negative), clipped to the image; None when nothing is left."""
    width, height = size
    left, top = max(0, box[0] - dilate), max(0, box[1] - dilate)
    right, bottom = min(width, box[2] + dilate), min(height, box[3] + dilate)
    return (left, top, right, bottom) if right > left and bottom > top else None


def crop_rect(mask: Rect, padding: int, size: tuple[int, int]) -> Rect:
    """The mask's box with PADDING pixels of context around it, clipped to the image."""
    width, height = size
    return (max(0, mask[0] - padding), max(0, mask[1] - padding),
            min(width, mask[2] + padding), min(height, mask[3] + padding))


def inpaint_size(width: int, height: int, area: int) -> tuple[int, int]:
    """The size a WIDTH x HEIGHT crop is redrawn at: AREA pixels (the job's base size), the crop's
    aspect, multiples of 8; a sliver of a crop is not stretched past the largest side a job may have."""
    scale = min(math.sqrt(area / (width * height)), MAX_SIDE / max(width, height))
    return max(8, round(width * scale / 8) * 8), max(8, round(height * scale / 8) * 8)


def box_rect(box: Box) -> Rect:
    return (box.x, box.y, box.x + box.width, box.y + box.height)


def pick_regions(rects: list[Rect], largest: int) -> list[Rect]:
    """The LARGEST biggest regions (0 = all), then left to right, top to bottom (the order each
    region's seed follows, as in ADetailer)."""
    if largest:
        rects = sorted(rects, key=lambda r: -(r[2] - r[0]) * (r[3] - r[1]))[:largest]
    return sorted(rects, key=lambda r: (r[0], r[1]))


def region_seed(seed: int, index: int) -> int:
    """Region INDEX's seed: the image's seed + index (ADetailer's), kept in range."""
    return (seed + index) % 2**64


def pass_prompt(text: str, job_text: str) -> str:
    """A pass's prompt: empty = the job's; [PROMPT] stands for the job's (ADetailer's token)."""
    return text.replace("[PROMPT]", job_text) if text.strip() else job_text


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _num(value: float) -> str:
    return f"{float(value):g}"


def adetailer_fields(passes: list[DetailPass], model_name) -> list[tuple[str, str]]:
    """ADetailer's keys for the A1111 `parameters` line: the first pass plain, the next ones with
    " 2nd", " 3rd" … as ADetailer writes them. MODEL_NAME turns a path into the name shown."""
    out: list[tuple[str, str]] = []
    for n, d in enumerate(passes, start=1):
        suffix = "" if n == 1 else f" {_ordinal(n)}"
        if d.detector:
            fields = [("model", Path(d.detector).name)]
            if d.classes:
                fields.append(("model classes", ", ".join(d.classes)))
            fields.append(("confidence", _num(d.confidence)))
        else:  # drawn regions: no model ADetailer knows, the boxes themselves
            fields = [("model", "None"), ("regions", " ".join(f"{b.x},{b.y},{b.width},{b.height}" for b in d.boxes))]
        if d.prompt:
            fields.append(("prompt", d.prompt))
        if d.negative:
            fields.append(("negative prompt", d.negative))
        if d.max_regions:
            fields.append(("mask only top k largest", str(d.max_regions)))
        fields += [("dilate erode", str(d.dilate)), ("mask blur", str(d.mask_blur)),
                   ("denoising strength", _num(d.denoise)), ("inpaint only masked", "True"),
                   ("inpaint padding", str(d.padding))]
        if d.steps:
            fields += [("use separate steps", "True"), ("steps", str(d.steps))]
        if d.inpaint_model:
            fields += [("use separate checkpoint", "True"), ("checkpoint", model_name(d.inpaint_model))]
        out += [(f"ADetailer {key}{suffix}", value) for key, value in fields]
    return out
