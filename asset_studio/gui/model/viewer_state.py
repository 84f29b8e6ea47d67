"""What the viewer shows: one image large (or two, compared), how it is zoomed and panned, and
whether it is a finished file or the live step preview of a running job.

Zoom is a factor of image pixels to screen pixels; None fits the image to the view. Pixel art is
enlarged with nearest-neighbour (`nearest`), and at 6x and more a pixel grid can be drawn. The A/B
compare shows image A left of `split` (0..1 of the width) and image B right of it. A tiled job
(job.tiling != "off") can be shown repeated, 2x2 for both axes or 3 in a row for one, so seams show.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage

ZOOM_STEPS = (0.125, 0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
GRID_FROM_ZOOM = 6  # the pixel grid is drawn from this zoom on (below, lines would hide the pixels)
SMALL_IMAGE = 256  # images this small are pixel art or icons: nearest-neighbour by default
REPEATS = {"off": (1, 1), "both": (2, 2), "x": (3, 1), "y": (1, 3)}


class ViewerState(QObject):
    changed = Signal(str)  # what changed: image, compare, zoom, pan, split, grid, nearest, repeat, preview

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.image = QImage()
        self.image_b = QImage()  # the compare image
        self.path = ""  # the file shown ("" for a live preview)
        self.path_b = ""
        self.label_a, self.label_b = "", ""
        self.compare = False
        self.split = 0.5
        self.zoom: float | None = None  # None: fit
        self.pan = (0.0, 0.0)  # screen pixels the image centre is moved from the view's centre
        self.grid = False
        self.nearest = True
        self.tiling = "off"
        self.repeat = False
        self.preview = False  # a step preview of a running job, not a finished image
        self.preview_text = ""
        self.stale = False  # the preview of a job that was cancelled or failed

    # --- what is shown -------------------------------------------------------------------------

    def show_image(self, image: QImage, path: str = "", label: str = "", tiling: str = "off") -> None:
        """A finished image (a file of the library, or one just saved)."""
        self.image, self.path, self.label_a = image, str(path), label
        self.preview, self.stale, self.preview_text = False, False, ""
        self.tiling = tiling if tiling in REPEATS else "off"
        if self.tiling == "off":
            self.repeat = False
        self.nearest = max(image.width(), image.height()) <= SMALL_IMAGE if not image.isNull() else True
        self.changed.emit("image")

    def show_file(self, path, label: str = "", tiling: str = "off") -> bool:
        image = QImage(str(path))
        self.show_image(image, str(path), label or "", tiling)
        return not image.isNull()

    def set_compare(self, image_b: QImage | None, label_a: str = "", label_b: str = "", path_b: str = "") -> None:
        """Compare the shown image with IMAGE_B (None ends the compare)."""
        if image_b is None or image_b.isNull():
            self.compare, self.image_b, self.path_b = False, QImage(), ""
        else:
            self.compare, self.image_b, self.path_b = True, image_b, str(path_b)
            self.label_a, self.label_b = label_a or self.label_a, label_b
        self.changed.emit("compare")

    def show_before_after(self, before: QImage, after: QImage, path_after: str = "", label: str = "") -> None:
        """Compare a picture before its after-passes (A, left) with the result (B): the before is
        enlarged to the result's size (smoothly, as a plain upscale would), so the split lines up."""
        if not before.isNull() and not after.isNull() and before.size() != after.size():
            before = before.scaled(after.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        self.show_image(before, "", f"before {label}".strip())
        self.set_compare(after, f"before {label}".strip(), f"after {label}".strip(), path_after)

    def show_step(self, image: QImage, text: str) -> None:
        """A live step preview ("Step 6 / 12"): marked as a preview until the image is saved."""
        if image.isNull():
            return
        self.image, self.path, self.preview, self.stale, self.preview_text = image, "", True, False, text
        self.compare = False
        self.changed.emit("preview")

    def end_preview(self, reason: str) -> None:
        """The running job was cancelled or failed: its half-made preview stays marked as such."""
        if self.preview:
            self.stale = True
            self.preview_text = reason
            self.changed.emit("preview")

    def caption(self) -> str:
        if self.preview:
            return f"Preview — {self.preview_text}" if self.preview_text else "Preview"
        if self.compare:
            return f"A: {self.label_a}   |   B: {self.label_b}"
        return self.label_a

    # --- zoom, pan, split ----------------------------------------------------------------------

    def fit_zoom(self, view_w: int, view_h: int) -> float:
        if self.image.isNull():
            return 1.0
        cols, rows = self.repeat_grid()
        return max(0.01, min(view_w / (self.image.width() * cols), view_h / (self.image.height() * rows)))

    def effective_zoom(self, view_w: int, view_h: int) -> float:
        return self.fit_zoom(view_w, view_h) if self.zoom is None else self.zoom

    def image_rect(self, view_w: int, view_h: int) -> tuple[float, float, float, float]:
        """Where the (repeated) image lies in a VIEW_W x VIEW_H view: left, top, width, height."""
        if self.image.isNull():
            return (0.0, 0.0, 0.0, 0.0)
        zoom = self.effective_zoom(view_w, view_h)
        cols, rows = self.repeat_grid()
        w, h = self.image.width() * cols * zoom, self.image.height() * rows * zoom
        return (view_w / 2 + self.pan[0] - w / 2, view_h / 2 + self.pan[1] - h / 2, w, h)

    def to_image(self, x: float, y: float, view_w: int, view_h: int) -> tuple[float, float]:
        """The image pixel coordinates under view point (X, Y), whatever the zoom and pan."""
        left, top, _, _ = self.image_rect(view_w, view_h)
        zoom = self.effective_zoom(view_w, view_h)
        return ((x - left) / zoom, (y - top) / zoom)

    def to_view(self, ix: float, iy: float, view_w: int, view_h: int) -> tuple[float, float]:
        """The view point where image pixel coordinates (IX, IY) are drawn."""
        left, top, _, _ = self.image_rect(view_w, view_h)
        zoom = self.effective_zoom(view_w, view_h)
        return (left + ix * zoom, top + iy * zoom)

    def set_zoom(self, zoom: float | None) -> None:
        self.zoom = None if zoom is None else max(ZOOM_STEPS[0], min(ZOOM_STEPS[-1], float(zoom)))
        if zoom is None:
            self.pan = (0.0, 0.0)
        self.changed.emit("zoom")

    def zoom_step(self, direction: int, view_w: int, view_h: int, anchor: tuple[float, float] = (0.0, 0.0)) -> None:
        """The next zoom step in or out (direction +1/-1), keeping the image point under ANCHOR
        (screen pixels from the view's centre) in place."""
        current = self.effective_zoom(view_w, view_h)
        if direction > 0:
            new = next((z for z in ZOOM_STEPS if z > current * 1.001), ZOOM_STEPS[-1])
        else:
            new = next((z for z in reversed(ZOOM_STEPS) if z < current / 1.001), ZOOM_STEPS[0])
        ax, ay = anchor
        px, py = self.pan
        ratio = new / current
        self.pan = (ax - (ax - px) * ratio, ay - (ay - py) * ratio)
        self.zoom = new
        self.changed.emit("zoom")

    def pan_by(self, dx: float, dy: float) -> None:
        self.pan = (self.pan[0] + dx, self.pan[1] + dy)
        self.changed.emit("pan")

    def set_split(self, split: float) -> None:
        self.split = max(0.0, min(1.0, float(split)))
        self.changed.emit("split")

    def set_grid(self, on: bool) -> None:
        self.grid = bool(on)
        self.changed.emit("grid")

    def grid_visible(self, view_w: int, view_h: int) -> bool:
        return self.grid and self.effective_zoom(view_w, view_h) >= GRID_FROM_ZOOM

    def set_nearest(self, on: bool) -> None:
        self.nearest = bool(on)
        self.changed.emit("nearest")

    # --- tiling ----------------------------------------------------------------------------------

    def can_repeat(self) -> bool:
        return self.tiling != "off"

    def set_repeat(self, on: bool) -> None:
        self.repeat = bool(on) and self.can_repeat()
        self.changed.emit("repeat")

    def repeat_grid(self) -> tuple[int, int]:
        """(columns, rows) of copies drawn: 2x2 for a tile seamless both ways, 3x1 / 1x3 for one axis."""
        return REPEATS[self.tiling] if self.repeat else (1, 1)
