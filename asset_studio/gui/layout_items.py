"""Scene items of the layout editor: one per layout element, drawn by the same Pillow renderer.

The item shows the element exactly as the control images will see it (core/layout_render),
so what the artist arranges is what ControlNet follows. Dragging the body moves it, the
corner handle resizes it (its opposite corner stays put, also when rotated), the round
handle above rotates it (Shift: 15 degree steps). Every change is handed to the editor as a
new box / rotation when the mouse is released: the editor turns it into an undoable command.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from asset_studio.core.layout import Box, element_bounds
from asset_studio.core.layout_render import place_element

HANDLE = 9.0  # handle size in screen pixels
ROTATE_ARM = 24.0


def pil_to_pixmap(image) -> QPixmap:
    image = image.convert("RGBA")
    data = image.tobytes("raw", "RGBA")
    qimage = QImage(data, image.width, image.height, 4 * image.width, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(qimage.copy())  # copy: QImage does not own `data`


class ElementItem(QGraphicsItem):
    """A layout element in the scene; positioned at its box centre and rotated about it."""

    def __init__(self, editor, index: int, element, layout):
        super().__init__()
        self._mode = "placing"  # no snapping while the item takes the model's position
        self._press_pos = None
        self._anchor = None
        self._live_rotation = None
        self.editor = editor
        self.index = index
        self.element = element
        box = element_bounds(element)
        self.w, self.h = max(box.w, 1.0), max(box.h, 1.0)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
                      | QGraphicsItem.GraphicsItemFlag.ItemIsFocusable)
        self.setAcceptHoverEvents(True)
        self.setPos(box.x + box.w / 2, box.y + box.h / 2)
        self.setRotation(element.rotation)
        self.setZValue(index)
        from dataclasses import replace

        placed = place_element(replace(element, rotation=0.0), layout)
        self.pixmap = pil_to_pixmap(placed.tile)
        self._mode = None

    # ---- geometry ---------------------------------------------------------------------------

    def _handle_scale(self) -> float:
        views = self.scene().views() if self.scene() else []
        return 1.0 / views[0].transform().m11() if views else 1.0

    def _resize_handle(self) -> QRectF:
        s = HANDLE * self._handle_scale()
        return QRectF(self.w / 2 - s / 2, self.h / 2 - s / 2, s, s)

    def _rotate_handle(self) -> QRectF:
        k = self._handle_scale()
        s = HANDLE * k
        return QRectF(-s / 2, -self.h / 2 - ROTATE_ARM * k - s / 2, s, s)

    def boundingRect(self) -> QRectF:
        k = self._handle_scale()
        pad = HANDLE * k
        body = QRectF(-self.w / 2, -self.h / 2, self.w, self.h)
        art = QRectF(-self.pixmap.width() / 2, -self.pixmap.height() / 2, self.pixmap.width(), self.pixmap.height())
        return body.united(art).adjusted(-pad, -pad - ROTATE_ARM * k, pad, pad)

    def shape(self):
        from PySide6.QtGui import QPainterPath

        path = QPainterPath()
        path.addRect(QRectF(-self.w / 2, -self.h / 2, self.w, self.h))
        if self.isSelected():
            path.addRect(self._resize_handle())
            path.addEllipse(self._rotate_handle())
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.drawPixmap(QPointF(-self.pixmap.width() / 2, -self.pixmap.height() / 2), self.pixmap)
        if not self.isSelected():
            return
        k = self._handle_scale()
        pen = QPen(QColor("#39a0ff"), 1.5 * k, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(-self.w / 2, -self.h / 2, self.w, self.h))
        painter.setPen(QPen(QColor("#39a0ff"), 1.5 * k))
        painter.drawLine(QPointF(0, -self.h / 2), self._rotate_handle().center())
        painter.setBrush(QBrush(QColor("#ffffff")))
        painter.drawRect(self._resize_handle())
        painter.drawEllipse(self._rotate_handle())

    # ---- interaction --------------------------------------------------------------------------

    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange and self._mode is None:
            return self.editor.snap_centre(value, self.w, self.h)
        return super().itemChange(change, value)

    def hoverMoveEvent(self, event) -> None:
        if self.isSelected() and self._resize_handle().contains(event.pos()):
            self.setCursor(Qt.CursorShape.SizeFDiagCursor)
        elif self.isSelected() and self._rotate_handle().contains(event.pos()):
            self.setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        super().hoverMoveEvent(event)

    def mousePressEvent(self, event) -> None:
        self._press_pos = QPointF(self.pos())
        if event.button() == Qt.MouseButton.LeftButton and self.isSelected():
            if self._resize_handle().contains(event.pos()):
                self._mode = "resize"
                self._anchor = self.mapToScene(QPointF(-self.w / 2, -self.h / 2))
                event.accept()
                return
            if self._rotate_handle().contains(event.pos()):
                self._mode = "rotate"
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._mode == "resize":
            box = self._resized_box(event.scenePos())
            self.prepareGeometryChange()
            self.w, self.h = box.w, box.h
            self.setPos(box.x + box.w / 2, box.y + box.h / 2)
            return
        if self._mode == "rotate":
            v = event.scenePos() - self.pos()
            angle = math.degrees(math.atan2(v.y(), v.x())) + 90.0
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                angle = round(angle / 15.0) * 15.0
            self._live_rotation = round(((angle + 180.0) % 360.0) - 180.0, 1)
            self.setRotation(self._live_rotation)
            return
        super().mouseMoveEvent(event)

    def _resized_box(self, scene_pos: QPointF) -> Box:
        """The box whose top-left corner stays at the anchor and whose bottom-right follows the mouse."""
        turn = QTransform().rotate(self.rotation())
        back, _ = turn.inverted()
        v = back.map(scene_pos - self._anchor)
        w, h = self.editor.snap_size(max(v.x(), 4.0)), self.editor.snap_size(max(v.y(), 4.0))
        centre = self._anchor + turn.map(QPointF(w / 2, h / 2))
        return Box(centre.x() - w / 2, centre.y() - h / 2, w, h)

    def mouseReleaseEvent(self, event) -> None:
        mode, self._mode = self._mode, None
        if mode == "resize":
            self.editor.commit_geometry(self.index, self._current_box(), None, "Resize")
            return
        if mode == "rotate":
            if self._live_rotation is not None:
                self.editor.commit_geometry(self.index, None, self._live_rotation, "Rotate")
            self._live_rotation = None
            return
        super().mouseReleaseEvent(event)
        if self._press_pos is not None and self.pos() != self._press_pos:
            self.editor.commit_moves("Move")

    def mouseDoubleClickEvent(self, event) -> None:
        self.editor.edit_text(self.index)  # straight to typing, as in any drawing program

    def _current_box(self) -> Box:
        return Box(self.pos().x() - self.w / 2, self.pos().y() - self.h / 2, self.w, self.h)

    def moved_box(self) -> Box:
        """The element's box at the item's current position (the size is unchanged by moves)."""
        return self._current_box()
