"""The viewer's "Detail a region…" mode: the regions the artist draws on an image and the detailer's
settings, turned into the job that redraws them (core/detail_job.py), without a window.

Boxes are kept in the image's own pixels, whatever the zoom and pan (the canvas converts the mouse
through ViewerState.to_image). One gesture, press → drag → release, draws a new box on empty
image, moves a box grabbed inside, or resizes one grabbed by an edge or corner; a click without a
drag only selects. The job runs through the same worker as Create; its image is saved beside the
source (in the source's run folder, so the gallery groups them).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from asset_studio.core.job import MAX_DETAIL_BOXES, Box, GenerationJob
from asset_studio.errors import UserError

MIN_SIDE = 4  # a smaller drag is a click, not a region
EDGES = ("nw", "ne", "sw", "se", "n", "s", "w", "e")


class DetailRegions(QObject):
    changed = Signal(str)  # what changed: active, boxes, selection, settings

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.active = False
        self.source: Path | None = None  # the raw image the regions belong to
        self.job: GenerationJob | None = None  # the job inside it (None: a picture from elsewhere)
        self.size = (0, 0)
        self.boxes: list[Box] = []
        self.selected = -1
        self.denoise = 0.4
        self.prompt = ""  # the regions' prompt; starts as the image's own
        self.padding = 32
        self.mask_blur = 4
        self.fallback_model: Callable[[], str] = lambda: ""  # for a picture whose PNG names no model
        self._gesture: tuple[str, int, float, float, Box] | None = None  # (kind, box, start x, start y, box then)

    # --- the mode --------------------------------------------------------------------------------

    def start(self, path) -> Path:
        """Detail the picture at PATH (a sprite stands for its raw image); returns the file the
        regions are drawn on. One sentence (UserError) when it cannot be detailed."""
        from asset_studio.core.detail_job import image_job, source_image
        from asset_studio.core.images import read_image

        if not path:
            raise UserError("Select an image in the gallery first, then choose Detail a region….")
        raw = source_image(path)
        size = read_image(raw, "RGB", what="The image to detail").size
        job = image_job(raw)
        if job is None and not self.fallback_model():
            raise UserError(f"{raw.name} carries no Asset Studio job, so it names no model: "
                            "choose a model in the Model box of the Create tab first.")
        self.source, self.job, self.size = raw, job, size
        self.boxes, self.selected, self._gesture = [], -1, None
        self.prompt = job.prompt.text if job is not None else ""
        self.active = True
        self.changed.emit("active")
        return raw

    def stop(self) -> None:
        self.active, self._gesture = False, None
        self.boxes, self.selected = [], -1
        self.changed.emit("active")

    # --- boxes, in image pixels ------------------------------------------------------------------

    def _clamped(self, x0: float, y0: float, x1: float, y1: float) -> Box | None:
        """The box between two corners, in whole pixels inside the image; None when too small."""
        w, h = self.size
        left, right = sorted((max(0, min(w, round(x0))), max(0, min(w, round(x1)))))
        top, bottom = sorted((max(0, min(h, round(y0))), max(0, min(h, round(y1)))))
        if right - left < MIN_SIDE or bottom - top < MIN_SIDE:
            return None
        return Box(x=left, y=top, width=right - left, height=bottom - top)

    def add_box(self, x0: float, y0: float, x1: float, y1: float) -> int | None:
        """A region between two corners (image pixels); returns its index, None when too small or full."""
        box = self._clamped(x0, y0, x1, y1)
        if box is None or len(self.boxes) >= MAX_DETAIL_BOXES:
            return None
        self.boxes.append(box)
        self.selected = len(self.boxes) - 1
        self.changed.emit("boxes")
        return self.selected

    def set_box(self, index: int, box: Box) -> None:
        fixed = self._clamped(box.x, box.y, box.x + box.width, box.y + box.height)
        if fixed is not None and 0 <= index < len(self.boxes):
            self.boxes[index] = fixed
            self.changed.emit("boxes")

    def remove(self, index: int | None = None) -> None:
        """Remove box INDEX (the selected one by default)."""
        index = self.selected if index is None else index
        if 0 <= index < len(self.boxes):
            del self.boxes[index]
            self.selected = min(self.selected, len(self.boxes) - 1) if self.selected != index else -1
            self.changed.emit("boxes")

    def clear(self) -> None:
        self.boxes, self.selected = [], -1
        self.changed.emit("boxes")

    def select(self, index: int) -> None:
        self.selected = index if 0 <= index < len(self.boxes) else -1
        self.changed.emit("selection")

    def hit(self, x: float, y: float, tolerance: float) -> tuple[int, str] | None:
        """(box, part) at image point (X, Y): an edge or corner within TOLERANCE image pixels
        ("nw", "e" …), or "move" inside; the selected box first, then the topmost."""
        order = ([self.selected] if self.selected >= 0 else []) + list(reversed(range(len(self.boxes))))
        for i in order:
            b = self.boxes[i]
            near_l, near_r = abs(x - b.x) <= tolerance, abs(x - (b.x + b.width)) <= tolerance
            near_t, near_b = abs(y - b.y) <= tolerance, abs(y - (b.y + b.height)) <= tolerance
            within_x = b.x - tolerance <= x <= b.x + b.width + tolerance
            within_y = b.y - tolerance <= y <= b.y + b.height + tolerance
            if not (within_x and within_y):
                continue
            part = ("n" if near_t else "s" if near_b else "") + ("w" if near_l else "e" if near_r else "")
            if part:
                return i, part
            if b.x < x < b.x + b.width and b.y < y < b.y + b.height:
                return i, "move"
        return None

    # --- the mouse gesture, in image pixels -------------------------------------------------------

    def press(self, x: float, y: float, tolerance: float = 0.0) -> None:
        found = self.hit(x, y, tolerance)
        if found is None:
            self._gesture = ("new", -1, x, y, Box(0, 0, 0, 0))
            if self.selected != -1:
                self.select(-1)
        else:
            index, part = found
            self._gesture = (part, index, x, y, self.boxes[index])
            if index != self.selected:
                self.select(index)

    def drag(self, x: float, y: float) -> None:
        if self._gesture is None:
            return
        kind, index, x0, y0, then = self._gesture
        if kind == "new":
            box = self._clamped(x0, y0, x, y)
            if box is None:
                return
            if index < 0:
                index = self.add_box(x0, y0, x, y)
                if index is not None:
                    self._gesture = ("new", index, x0, y0, then)
                return
            self.boxes[index] = box
        elif kind == "move":
            w, h = self.size
            dx = max(-then.x, min(w - then.x - then.width, round(x - x0)))
            dy = max(-then.y, min(h - then.y - then.height, round(y - y0)))
            self.boxes[index] = replace(then, x=then.x + dx, y=then.y + dy)
        else:
            left, top, right, bottom = then.x, then.y, then.x + then.width, then.y + then.height
            if "w" in kind:
                left = min(x, right - MIN_SIDE)
            if "e" in kind:
                right = max(x, left + MIN_SIDE)
            if "n" in kind:
                top = min(y, bottom - MIN_SIDE)
            if "s" in kind:
                bottom = max(y, top + MIN_SIDE)
            box = self._clamped(left, top, right, bottom)
            if box is None:
                return
            self.boxes[index] = box
        self.changed.emit("boxes")

    def release(self, x: float, y: float) -> None:
        self.drag(x, y)
        self._gesture = None

    # --- settings and the job ------------------------------------------------------------------

    def set_setting(self, name: str, value) -> None:
        if name not in ("denoise", "prompt", "padding", "mask_blur"):
            raise ValueError(name)
        setattr(self, name, value)
        self.changed.emit("settings")

    def request(self, seed: int | None = None):
        from asset_studio.core.detail_job import DetailRequest

        own = self.job.prompt.text if self.job is not None else ""
        prompt = "" if self.prompt.strip() == own.strip() else self.prompt  # "" = the image's, as ADetailer
        return DetailRequest(image=str(self.source), boxes=list(self.boxes), denoise=round(float(self.denoise), 2),
                             prompt=prompt, padding=int(self.padding), mask_blur=int(self.mask_blur),
                             model="" if self.job is not None else self.fallback_model(), seed=seed)

    def build_job(self, seed: int | None = None) -> GenerationJob:
        """The job that redraws the regions; a UserError sentence when there is nothing to redraw."""
        from asset_studio.core.detail_job import detail_job

        if not self.active or self.source is None:
            raise UserError("Choose Detail a region… on an image first.")
        if not self.boxes:
            raise UserError("Drag a rectangle on the image around each region to redraw, then press Detail.")
        return detail_job(self.request(seed))

    def output_folder(self) -> Path:
        """Where the result is saved: beside the source, in its run's folder (an animation's frame:
        beside the animation's folder, which holds only its frames)."""
        from asset_studio.core.detail_job import beside

        return beside(self.source, self.job)
