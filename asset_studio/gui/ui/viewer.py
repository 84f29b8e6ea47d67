"""The viewer: the selected image large, zoomed and panned, pixel-crisp, with a grid, an A/B
compare and a tile repeat; the live step preview of a running job, marked as a preview.

Bound to a ViewerState (gui/model/viewer_state.py), which holds everything it shows; the wheel
zooms here (this is a canvas, not a form control), a drag pans, a drag near the split moves it.
In "Detail a region…" mode (gui/model/detail_regions.py) a left drag draws, moves or resizes the
regions, drawn over the image with the padded crop each one redraws; right or middle drag pans.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from asset_studio.errors import UserError
from asset_studio.gui.model.detail_regions import DetailRegions
from asset_studio.gui.model.viewer_state import ViewerState
from asset_studio.gui.ui.detail_panel import DetailPanel

CHECKER = 8
SPLIT_GRAB = 8  # pixels either side of the split line that grab it
HANDLE = 6  # screen pixels around a region's edge that grab it for resizing
REGION = QColor(255, 200, 40)
REGION_SELECTED = QColor(80, 220, 255)


class ViewerCanvas(QWidget):
    def __init__(self, state: ViewerState, regions: DetailRegions | None = None):
        super().__init__()
        self.state = state
        self.regions = regions or DetailRegions(self)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Delete removes the selected region
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self._drag: tuple[str, QPointF] | None = None
        state.changed.connect(lambda _name: self.update())
        self.regions.changed.connect(lambda _name: self.update())

    # --- geometry --------------------------------------------------------------------------------

    def image_rect(self) -> QRectF:
        """Where the (repeated) image lies on the canvas."""
        return QRectF(*self.state.image_rect(self.width(), self.height()))

    def split_x(self) -> float:
        r = self.image_rect()
        return r.left() + r.width() * self.state.split

    # --- painting --------------------------------------------------------------------------------

    def paintEvent(self, event) -> None:
        s = self.state
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(115))
        if s.image.isNull():
            p.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            p.drawText(self.rect().adjusted(24, 24, -24, -24), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       "Select an image in the gallery to see it here; the live preview shows here while generating.")
            p.end()
            return
        rect = self.image_rect()
        self._checker(p, rect.intersected(QRectF(self.rect())))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not s.nearest)
        cols, rows = s.repeat_grid()
        tile_w, tile_h = rect.width() / cols, rect.height() / rows
        if s.compare:
            sx = self.split_x()
            p.save()
            p.setClipRect(QRectF(rect.left(), rect.top(), sx - rect.left(), rect.height()))
            self._tiles(p, s.image, rect, cols, rows, tile_w, tile_h)
            p.restore()
            p.save()
            p.setClipRect(QRectF(sx, rect.top(), rect.right() - sx, rect.height()))
            self._tiles(p, s.image_b, rect, cols, rows, tile_w, tile_h)
            p.restore()
        else:
            self._tiles(p, s.image, rect, cols, rows, tile_w, tile_h)
        if s.grid_visible(self.width(), self.height()):
            self._grid(p, rect)
        if s.compare:
            sx = self.split_x()
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(sx, rect.top()), QPointF(sx, rect.bottom()))
        if self.regions.active and not s.preview:
            self._regions(p)
        if s.preview:
            self._badge(p, "PREVIEW — cancelled" if s.stale and "ancel" in s.preview_text else
                        ("PREVIEW — " + s.preview_text if s.stale else "PREVIEW"), stale=s.stale)
        p.end()

    def _tiles(self, p: QPainter, image: QImage, rect: QRectF, cols: int, rows: int, tw: float, th: float) -> None:
        for r in range(rows):
            for c in range(cols):
                p.drawImage(QRectF(rect.left() + c * tw, rect.top() + r * th, tw, th), image)

    def _checker(self, p: QPainter, rect: QRectF) -> None:
        a, b = QColor(60, 62, 68), QColor(80, 82, 90)
        p.fillRect(rect, a)
        x0, y0 = int(rect.left()), int(rect.top())
        for y in range(y0, int(rect.bottom()) + 1, CHECKER):
            for x in range(x0 + ((y - y0) // CHECKER % 2) * CHECKER, int(rect.right()) + 1, 2 * CHECKER):
                p.fillRect(QRectF(x, y, CHECKER, CHECKER).intersected(rect), b)

    def _grid(self, p: QPainter, rect: QRectF) -> None:
        zoom = self.state.effective_zoom(self.width(), self.height())
        p.setPen(QPen(QColor(0, 0, 0, 70), 1))
        visible = rect.intersected(QRectF(self.rect()))
        x = rect.left() + max(0, int((visible.left() - rect.left()) / zoom)) * zoom
        while x <= visible.right():
            p.drawLine(QPointF(x, visible.top()), QPointF(x, visible.bottom()))
            x += zoom
        y = rect.top() + max(0, int((visible.top() - rect.top()) / zoom)) * zoom
        while y <= visible.bottom():
            p.drawLine(QPointF(visible.left(), y), QPointF(visible.right(), y))
            y += zoom

    def _view_rect(self, left: float, top: float, right: float, bottom: float) -> QRectF:
        x0, y0 = self.state.to_view(left, top, self.width(), self.height())
        x1, y1 = self.state.to_view(right, bottom, self.width(), self.height())
        return QRectF(QPointF(x0, y0), QPointF(x1, y1))

    def _regions(self, p: QPainter) -> None:
        """The drawn regions: a solid frame each (numbered), the padded crop it redraws dashed."""
        from asset_studio.core.detail import box_rect, crop_rect

        r = self.regions
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        font = p.font()
        font.setBold(True)
        p.setFont(font)
        for i, box in enumerate(r.boxes):
            colour = REGION_SELECTED if i == r.selected else REGION
            crop = crop_rect(box_rect(box), r.padding, r.size)
            p.setPen(QPen(colour, 1, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self._view_rect(*crop))
            frame = self._view_rect(*box_rect(box))
            p.fillRect(frame, QColor(colour.red(), colour.green(), colour.blue(), 40))
            p.setPen(QPen(QColor(0, 0, 0, 160), 4))
            p.drawRect(frame)
            p.setPen(QPen(colour, 2))
            p.drawRect(frame)
            label = QRectF(frame.left(), frame.top() - 18, 22, 18) if frame.top() >= 18 else \
                QRectF(frame.left(), frame.top(), 22, 18)
            p.fillRect(label, colour)
            p.setPen(QColor(0, 0, 0))
            p.drawText(label, Qt.AlignmentFlag.AlignCenter, str(i + 1))
            if i == r.selected:
                for hx, hy in ((frame.left(), frame.top()), (frame.right(), frame.top()),
                               (frame.left(), frame.bottom()), (frame.right(), frame.bottom())):
                    p.fillRect(QRectF(hx - 4, hy - 4, 8, 8), colour)

    def _badge(self, p: QPainter, text: str, stale: bool) -> None:
        font = p.font()
        font.setBold(True)
        p.setFont(font)
        w = p.fontMetrics().horizontalAdvance(text) + 16
        h = p.fontMetrics().height() + 8
        box = QRectF(8, 8, w, h)
        p.fillRect(box, QColor(200, 60, 60, 210) if stale else QColor(20, 20, 24, 190))
        p.setPen(QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # --- mouse -----------------------------------------------------------------------------------

    def wheelEvent(self, event) -> None:
        centre = QPointF(self.width() / 2, self.height() / 2)
        anchor = event.position() - centre
        self.state.zoom_step(1 if event.angleDelta().y() > 0 else -1, self.width(), self.height(),
                             (anchor.x(), anchor.y()))
        event.accept()

    def _image_point(self, pos: QPointF) -> tuple[float, float]:
        return self.state.to_image(pos.x(), pos.y(), self.width(), self.height())

    def _handle(self) -> float:
        """HANDLE screen pixels in image pixels at the current zoom."""
        return HANDLE / self.state.effective_zoom(self.width(), self.height())

    def event(self, event) -> bool:
        # Delete is the gallery's shortcut (trash the selected images); on the canvas in Detail mode
        # it removes the selected region instead, so the canvas takes the key before the shortcut.
        if (event.type() == QEvent.Type.ShortcutOverride and self.regions.active
                and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        if self.regions.active and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.regions.remove()
            event.accept()
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:
        pos = event.position()
        if self.regions.active and not self.state.image.isNull():
            if event.button() == Qt.MouseButton.LeftButton:
                self._drag = ("region", pos)
                self.regions.press(*self._image_point(pos), self._handle())
            elif event.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
                self._drag = ("pan", pos)
                self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if self.state.compare and abs(pos.x() - self.split_x()) <= SPLIT_GRAB:
            self._drag = ("split", pos)
        else:
            self._drag = ("pan", pos)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._drag is None:
            if self.regions.active:
                self.setCursor(self._region_cursor(pos))
                return
            near = self.state.compare and abs(pos.x() - self.split_x()) <= SPLIT_GRAB
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.ArrowCursor)
            return
        kind, last = self._drag
        if kind == "region":
            self.regions.drag(*self._image_point(pos))
        elif kind == "split":
            r = self.image_rect()
            if r.width() > 0:
                self.state.set_split((pos.x() - r.left()) / r.width())
        else:
            self.state.pan_by(pos.x() - last.x(), pos.y() - last.y())
        self._drag = (kind, pos)

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is not None and self._drag[0] == "region":
            self.regions.release(*self._image_point(event.position()))
        self._drag = None
        self.setCursor(Qt.CursorShape.ArrowCursor)

    def _region_cursor(self, pos: QPointF):
        found = self.regions.hit(*self._image_point(pos), self._handle())
        part = found[1] if found else ""
        shapes = Qt.CursorShape
        return {"move": shapes.SizeAllCursor, "n": shapes.SizeVerCursor, "s": shapes.SizeVerCursor,
                "w": shapes.SizeHorCursor, "e": shapes.SizeHorCursor, "nw": shapes.SizeFDiagCursor,
                "se": shapes.SizeFDiagCursor, "ne": shapes.SizeBDiagCursor,
                "sw": shapes.SizeBDiagCursor}.get(part, shapes.CrossCursor)

    def mouseDoubleClickEvent(self, event) -> None:
        if self.regions.active:
            return  # a double click in Detail mode is two clicks on regions, not a zoom change
        # Double-click toggles between fitting the view and 1:1 pixels.
        self.state.set_zoom(1 if self.state.zoom is None else None)


class Viewer(QWidget):
    """The canvas with its tool row: Fit, 1:1, Nearest, Grid, A/B, Raw/Sprite, Repeat."""

    compare_toggled = Signal(bool)  # the artist asks for the A/B compare (the window picks B)
    raw_toggled = Signal(bool)
    detail_submitted = Signal(object, str)  # the detail job, the folder its image is saved in
    error = Signal(str)  # a sentence for the artist

    def __init__(self, state: ViewerState | None = None):
        super().__init__()
        self.state = state or ViewerState(self)
        self.regions = DetailRegions(self)
        self.canvas = ViewerCanvas(self.state, self.regions)
        self.detail_panel = DetailPanel(self.regions)
        self.caption = QLabel()
        self.caption.setStyleSheet("color: palette(placeholder-text);")
        self.caption.setMinimumWidth(40)
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        def tool(text: str, tip: str, checkable: bool = False) -> QToolButton:
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(checkable)
            b.setAutoRaise(True)
            return b

        self.fit_btn = tool("Fit", "Fit the image to the view (double-click the image: fit / 1:1).")
        self.one_btn = tool("1:1", "One image pixel per screen pixel.")
        self.nearest_box = QCheckBox("Pixels")
        self.nearest_box.setToolTip("Enlarge with nearest-neighbour: hard pixel edges, for pixel art.")
        self.grid_box = QCheckBox("Grid")
        self.grid_box.setToolTip("Draw the pixel grid when zoomed in 6x or more.")
        self.compare_btn = tool("A/B", "Compare two images with a split you drag: an image before and after its "
                                       "after-passes, the raw image and its sprite, or two selected images.", checkable=True)
        self.raw_btn = tool("Raw", "Show the raw generated image instead of the finished sprite.", checkable=True)
        self.repeat_btn = tool("Repeat", "Show the tile repeated (2x2, or 3 in a row for one axis) to check seams.",
                               checkable=True)
        self.detail_btn = tool("Detail…", "Detail a region…: drag rectangles around the parts to redraw (a face, "
                                          "a hand, a buckle) and press Detail; the result is a new image.",
                               checkable=True)
        self.fit_btn.clicked.connect(lambda: self.state.set_zoom(None))
        self.one_btn.clicked.connect(lambda: self.state.set_zoom(1))
        self.nearest_box.toggled.connect(self.state.set_nearest)
        self.grid_box.toggled.connect(self.state.set_grid)
        self.compare_btn.toggled.connect(self.compare_toggled)
        self.raw_btn.toggled.connect(self.raw_toggled)
        self.repeat_btn.toggled.connect(self.state.set_repeat)
        self.detail_btn.toggled.connect(lambda on: self.start_detail() if on else self.stop_detail())
        self.detail_panel.detail_clicked.connect(self.submit_detail)
        self.detail_panel.cancel_clicked.connect(self.stop_detail)
        self.regions.changed.connect(self._regions_changed)
        row = QHBoxLayout()
        row.setContentsMargins(4, 2, 4, 2)
        row.setSpacing(4)
        row.addWidget(self.caption, 1)
        for w in (self.fit_btn, self.one_btn, self.nearest_box, self.grid_box, self.compare_btn, self.raw_btn,
                  self.repeat_btn, self.detail_btn):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(row)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.detail_panel)
        self.state.changed.connect(self._state_changed)
        self._state_changed("image")

    def _state_changed(self, _name: str) -> None:
        s = self.state
        self.caption.setText(self._caption())
        self.caption.setToolTip(s.path or s.caption())
        for box, value in ((self.nearest_box, s.nearest), (self.grid_box, s.grid), (self.compare_btn, s.compare),
                           (self.repeat_btn, s.repeat)):
            if box.isChecked() != value:
                box.blockSignals(True)
                box.setChecked(value)
                box.blockSignals(False)
        self.repeat_btn.setVisible(s.can_repeat())
        self.detail_btn.setEnabled(bool(s.path) and not s.preview)
        if self.regions.active and _name == "image" and s.path and s.path != str(self.regions.source):
            self.stop_detail()  # another image was chosen: its regions were drawn on the last one

    # --- Detail a region… ---------------------------------------------------------------------------

    def start_detail(self, path=None) -> bool:
        """Detail mode on PATH (default: the image shown; a sprite stands for its raw image)."""
        try:
            raw = self.regions.start(path or self.state.path)
        except UserError as exc:
            self._set_detail_checked(False)
            self.error.emit(str(exc))
            return False
        self.state.set_compare(None)
        self.state.set_repeat(False)
        if str(raw) != self.state.path:
            self.state.show_file(raw, raw.name)
        self._set_detail_checked(True)
        self.canvas.setFocus()
        return True

    def stop_detail(self) -> None:
        if self.regions.active:
            self.regions.stop()
        self._set_detail_checked(False)

    def submit_detail(self) -> bool:
        """The regions' job to the queue (the window runs it like Create's); Detail mode ends."""
        try:
            job = self.regions.build_job()
        except UserError as exc:
            self.error.emit(str(exc))
            return False
        folder = self.regions.output_folder()
        self.stop_detail()
        self.detail_submitted.emit(job, str(folder))
        return True

    def _set_detail_checked(self, on: bool) -> None:
        self.detail_btn.blockSignals(True)
        self.detail_btn.setChecked(on)
        self.detail_btn.blockSignals(False)

    def _regions_changed(self, name: str) -> None:
        if name == "active":
            self._set_detail_checked(self.regions.active)
            self.caption.setText(self._caption())

    def _caption(self) -> str:
        r = self.regions
        return f"Detail a region — {r.source.name}" if r.active and r.source is not None else self.state.caption()

    # the live preview panel's API (the window feeds steps and finished images)
    def set_image(self, image: QImage, crisp: bool = False) -> None:
        self.state.show_image(image)

    def image(self) -> QImage:
        return self.state.image
