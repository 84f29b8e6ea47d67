"""The viewer: the selected image large, zoomed and panned, pixel-crisp, with a grid, an A/B
compare and a tile repeat; the live step preview of a running job, marked as a preview.

Bound to a ViewerState (gui/model/viewer_state.py), which holds everything it shows; the wheel
zooms here (this is a canvas, not a form control), a drag pans, a drag near the split moves it.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from asset_studio.gui.model.viewer_state import ViewerState

CHECKER = 8
SPLIT_GRAB = 8  # pixels either side of the split line that grab it


class ViewerCanvas(QWidget):
    def __init__(self, state: ViewerState):
        super().__init__()
        self.state = state
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self._drag: tuple[str, QPointF] | None = None
        state.changed.connect(lambda _name: self.update())

    # --- geometry --------------------------------------------------------------------------------

    def image_rect(self) -> QRectF:
        """Where the (repeated) image lies on the canvas."""
        s = self.state
        if s.image.isNull():
            return QRectF()
        zoom = s.effective_zoom(self.width(), self.height())
        cols, rows = s.repeat_grid()
        w, h = s.image.width() * cols * zoom, s.image.height() * rows * zoom
        cx, cy = self.width() / 2 + s.pan[0], self.height() / 2 + s.pan[1]
        return QRectF(cx - w / 2, cy - h / 2, w, h)

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

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        if self.state.compare and abs(pos.x() - self.split_x()) <= SPLIT_GRAB:
            self._drag = ("split", pos)
        else:
            self._drag = ("pan", pos)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._drag is None:
            near = self.state.compare and abs(pos.x() - self.split_x()) <= SPLIT_GRAB
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.ArrowCursor)
            return
        kind, last = self._drag
        if kind == "split":
            r = self.image_rect()
            if r.width() > 0:
                self.state.set_split((pos.x() - r.left()) / r.width())
        else:
            self.state.pan_by(pos.x() - last.x(), pos.y() - last.y())
        self._drag = (kind, pos)

    def mouseReleaseEvent(self, event) -> None:
        self._drag = None
        self.setCursor(Qt.CursorShape.ArrowCursor)

    def mouseDoubleClickEvent(self, event) -> None:
        # Double-click toggles between fitting the view and 1:1 pixels.
        self.state.set_zoom(1 if self.state.zoom is None else None)


class Viewer(QWidget):
    """The canvas with its tool row: Fit, 1:1, Nearest, Grid, A/B, Raw/Sprite, Repeat."""

    compare_toggled = Signal(bool)  # the artist asks for the A/B compare (the window picks B)
    raw_toggled = Signal(bool)

    def __init__(self, state: ViewerState | None = None):
        super().__init__()
        self.state = state or ViewerState(self)
        self.canvas = ViewerCanvas(self.state)
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
        self.fit_btn.clicked.connect(lambda: self.state.set_zoom(None))
        self.one_btn.clicked.connect(lambda: self.state.set_zoom(1))
        self.nearest_box.toggled.connect(self.state.set_nearest)
        self.grid_box.toggled.connect(self.state.set_grid)
        self.compare_btn.toggled.connect(self.compare_toggled)
        self.raw_btn.toggled.connect(self.raw_toggled)
        self.repeat_btn.toggled.connect(self.state.set_repeat)
        row = QHBoxLayout()
        row.setContentsMargins(4, 2, 4, 2)
        row.setSpacing(4)
        row.addWidget(self.caption, 1)
        for w in (self.fit_btn, self.one_btn, self.nearest_box, self.grid_box, self.compare_btn, self.raw_btn,
                  self.repeat_btn):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(row)
        layout.addWidget(self.canvas, 1)
        self.state.changed.connect(self._state_changed)
        self._state_changed("image")

    def _state_changed(self, _name: str) -> None:
        s = self.state
        self.caption.setText(s.caption())
        self.caption.setToolTip(s.path or s.caption())
        for box, value in ((self.nearest_box, s.nearest), (self.grid_box, s.grid), (self.compare_btn, s.compare),
                           (self.repeat_btn, s.repeat)):
            if box.isChecked() != value:
                box.blockSignals(True)
                box.setChecked(value)
                box.blockSignals(False)
        self.repeat_btn.setVisible(s.can_repeat())

    # the live preview panel's API (the window feeds steps and finished images)
    def set_image(self, image: QImage, crisp: bool = False) -> None:
        self.state.show_image(image)

    def image(self) -> QImage:
        return self.state.image
