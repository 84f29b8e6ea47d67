"""The layout editor: draw a text-bearing asset's base layout, and see what ControlNet will see.

The editor's model is core.layout.Layout; the QGraphicsScene is only a view of it, rebuilt
from the model after every change. Every change (add, move, resize, rotate, a property
edit) is a snapshot command on a QUndoStack, so undo / redo cover everything and the JSON
saved is exactly the model. Beside the canvas, the control image is rendered by
core.control_image from the same model, so the preview is what the ControlNet receives.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont, QFontDatabase, QKeySequence, QPainter, QPen, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QDoubleSpinBox, QFileDialog, QFontComboBox,
                               QFormLayout, QGraphicsRectItem, QGraphicsScene, QGraphicsView, QGroupBox, QHBoxLayout,
                               QLabel, QMessageBox, QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                               QSplitter, QToolBar, QVBoxLayout, QWidget)

from asset_studio.gui.ui.dialogs import start_in
from asset_studio.gui.ui.wheel_guard import guard_wheel
from asset_studio.core.control_image import CONTROL_TYPES, render_control
from asset_studio.core.layout import (SHAPE_KINDS, Box, ImageElement, Layout, ShapeElement, TextElement,
                                      element_bounds, element_to_dict, layout_from_dict, load_layout, save_layout,
                                      with_box)
from asset_studio.errors import UserError
from asset_studio.gui.layout_items import ElementItem, pil_to_pixmap

SHAPE_LABELS = {"rect": "Rectangle", "rounded_rect": "Rounded", "ellipse": "Ellipse",
                "polygon": "Triangle", "line": "Line"}


class LayoutCommand(QUndoCommand):
    """One undoable change: the whole layout before and after (layouts are small)."""

    MERGE_ID = 4004
    MERGE_WINDOW_S = 1.5  # edits of one field closer together than this are one step (a burst of typing)

    def __init__(self, editor: "LayoutEditor", before: dict, after: dict, text: str, merge_key=None):
        super().__init__(text)
        self.editor, self.before, self.after, self.merge_key = editor, before, after, merge_key
        self.stamp = time.monotonic()

    def redo(self) -> None:
        self.editor._apply(self.after)

    def undo(self) -> None:
        self.editor._apply(self.before)

    def id(self) -> int:
        return self.MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other) -> bool:
        # Typing in a field or dragging a spin box is one step to undo, not one per keystroke.
        # A pause ends the burst: typing a word, pausing, typing another are two steps.
        if getattr(other, "merge_key", None) != self.merge_key:
            return False
        if getattr(other, "stamp", 0.0) - self.stamp > self.MERGE_WINDOW_S:
            return False
        self.after, self.stamp = other.after, other.stamp
        return True


class ControlPreview(QLabel):
    """Shows a control image scaled to fit, keeping 1-pixel strokes visible when it shrinks."""

    def __init__(self):
        super().__init__()
        self._image = None
        self._invert = False

    def show_image(self, image, invert: bool) -> None:
        self._image, self._invert = image, invert
        self._redraw()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._redraw()

    def _redraw(self) -> None:
        if self._image is None:
            return
        from PIL import ImageFilter

        image = self._image
        factor = max(image.width / max(1, self.width()), image.height / max(1, self.height()))
        if factor > 1.5:
            # Plain smoothing averages thin lines into the background; widen them by the shrink
            # factor first (display only: ControlNet gets the exact image).
            k = min(9, math.ceil(factor) | 1)  # odd, at least the shrink factor
            image = image.filter(ImageFilter.MinFilter(k) if self._invert else ImageFilter.MaxFilter(k))
        pixmap = pil_to_pixmap(image)
        if self.width() > 10 and self.height() > 10:
            pixmap = pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(pixmap)


class LayoutView(QGraphicsView):
    """The canvas: zooms to fit, Ctrl+wheel zooms, arrows nudge the selection, Delete removes it."""

    def __init__(self, editor: "LayoutEditor"):
        super().__init__(editor.scene)
        self.editor = editor
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setBackgroundBrush(QColor("#2b2b2b"))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        self.zoomed = False

    def fit(self) -> None:
        if not self.zoomed:
            self.fitInView(self.editor.canvas_rect().adjusted(-24, -40, 24, 24), Qt.AspectRatioMode.KeepAspectRatio)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit()

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            factor = 1.15 if event.angleDelta().y() > 0 else 1 / 1.15
            self.scale(factor, factor)
            self.zoomed = True
            return
        super().wheelEvent(event)

    def keyPressEvent(self, event) -> None:
        step = self.editor.grid if self.editor.snap else 1
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            step *= 10
        moves = {Qt.Key.Key_Left: (-step, 0), Qt.Key.Key_Right: (step, 0),
                 Qt.Key.Key_Up: (0, -step), Qt.Key.Key_Down: (0, step)}
        if event.key() in moves and self.editor.selected_indexes():
            self.editor.nudge(*moves[event.key()])
            return
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.editor.selected_indexes():
            self.editor.delete_selected()
            return
        super().keyPressEvent(event)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if not self.editor.snap or self.editor.grid < 4:
            return
        canvas = self.editor.canvas_rect()
        painter.setPen(QPen(QColor(255, 255, 255, 28), 0))
        g = self.editor.grid
        x = 0.0
        while x <= canvas.width():
            painter.drawLine(QPointF(x, 0), QPointF(x, canvas.height()))
            x += g
        y = 0.0
        while y <= canvas.height():
            painter.drawLine(QPointF(0, y), QPointF(canvas.width(), y))
            y += g


class ColorButton(QPushButton):
    """A swatch that opens QColorDialog; emits the colour as #rrggbb or #rrggbbaa."""

    colorPicked = Signal(str)

    def __init__(self, color: str | None, title: str):
        super().__init__()
        self.title = title
        self.setFixedWidth(72)
        self.set_color(color)
        self.clicked.connect(self._pick)

    def set_color(self, color: str | None) -> None:
        self.color = color
        shown = color or "#00000000"
        self.setText("none" if color is None else color[:7])
        qc = QColor(shown[:7])
        text = "#000000" if qc.lightness() > 128 else "#ffffff"
        self.setStyleSheet(f"background: {shown[:7] if color else 'transparent'}; color: {text};")

    def _pick(self) -> None:
        initial = QColor(self.color[:7]) if self.color else QColor("#ffffff")
        if self.color and len(self.color) == 9:
            initial.setAlpha(int(self.color[7:9], 16))
        chosen = QColorDialog.getColor(initial, self, self.title, QColorDialog.ColorDialogOption.ShowAlphaChannel)
        if chosen.isValid():
            self.colorPicked.emit(hex_color(chosen))


def hex_color(color: QColor) -> str:
    base = color.name(QColor.NameFormat.HexRgb).lower()
    return base if color.alpha() == 255 else f"{base}{color.alpha():02x}"


class LayoutEditor(QWidget):
    """Edit a Layout: add / select / move / resize / rotate text, shapes and images, with undo."""

    layoutChanged = Signal()
    fileChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None, layout: Layout | None = None):
        super().__init__(parent)
        _register_bundled_fonts()
        self._layout = layout.copy() if layout else Layout(512, 256, "#000000", [])
        self.current_path: Path | None = None
        self.snap = True
        self.grid = 8
        self._selected: list[int] = []
        self._rebuilding = False
        self._from_panel = False
        self._last_control = None
        self.text_edit: QPlainTextEdit | None = None
        self.start_dir = ""  # where Open, Save and Place image start (the window sets the output folder)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._update_title)

        self.scene = QGraphicsScene(self)
        self.scene.selectionChanged.connect(self._selection_changed)
        self.view = LayoutView(self)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #e0a040;")

        self.props_box = QGroupBox("Properties")
        self.props_form = QFormLayout(self.props_box)
        # Rows keep their natural height (the panel scrolls), never squeezed into clipped fields.
        self.props_form.setSizeConstraint(QFormLayout.SizeConstraint.SetMinimumSize)
        self.props_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        props_scroll = QScrollArea()
        props_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        props_scroll.setWidgetResizable(True)
        props_scroll.setWidget(self.props_box)
        props_scroll.setMinimumWidth(260)

        self.control_box = self._build_control_panel()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(props_scroll)
        right.addWidget(self.control_box)
        right.setSizes([360, 300])

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([700, 300])

        self.toolbar = self._build_toolbar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.toolbar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

        self._control_timer = QTimer(self)
        self._control_timer.setSingleShot(True)
        self._control_timer.setInterval(120)
        self._control_timer.timeout.connect(self.update_control_preview)
        self._rebuild_scene()
        self._refresh_panel()
        self.update_control_preview()

    # ---- public API (used by the main window) ---------------------------------------------------

    def layout(self) -> Layout:  # noqa: A003 - the contract's name; QWidget.layout() is not used here
        return self._layout.copy()

    def set_layout(self, layout: Layout) -> None:
        """Show LAYOUT as a fresh document (the undo history starts over)."""
        self._layout = layout.copy()
        self._selected = []
        self.undo_stack.clear()
        self.view.zoomed = False
        self._after_change()

    def open_file(self, path) -> None:
        layout = load_layout(path)
        self.set_layout(layout)
        self.current_path = Path(path)
        self.undo_stack.setClean()
        self.fileChanged.emit(str(self.current_path))

    def save_file(self, path=None) -> Path:
        path = Path(path or self.current_path or "")
        if not str(path):
            raise UserError("Choose a file name to save the layout to.")
        save_layout(self._layout, path)  # may copy placed images next to the file and rewrite their paths
        self.current_path = path
        self.undo_stack.setClean()
        self._rebuild_scene()
        self.fileChanged.emit(str(path))
        return path

    def control_options(self) -> dict:
        stroke = self.stroke_spin.value()
        return {"stroke_width": stroke or None, "invert": self.invert_check.isChecked(),
                "low_threshold": self.low_spin.value(), "high_threshold": self.high_spin.value()}

    def control_type(self) -> str:
        return self.control_combo.currentText()

    def control_image(self):
        """The control image shown beside the canvas (PIL, RGB)."""
        if self._last_control is None:
            self.update_control_preview()
        return self._last_control

    # ---- building the widget --------------------------------------------------------------------

    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar()
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)

        def action(text, slot, shortcut=None, tip=None):
            a = QAction(text, self)
            a.triggered.connect(slot)
            if shortcut:
                a.setShortcut(shortcut)
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.addAction(a)
            if tip:
                a.setToolTip(tip)
            bar.addAction(a)
            return a

        action("Open…", self._open_dialog, QKeySequence.StandardKey.Open)
        action("Save", self._save_dialog, QKeySequence.StandardKey.Save)
        bar.addSeparator()
        action("Text", lambda: self.add_text(), tip="Add a text element")
        for kind in SHAPE_KINDS:
            action(SHAPE_LABELS[kind], lambda _=False, k=kind: self.add_shape(k), tip=f"Add a {kind.replace('_', ' ')}")
        action("Image…", self._import_image_dialog, tip="Place a sketch or logo")
        bar.addSeparator()
        action("Delete", self.delete_selected)
        action("Forward", lambda: self.restack(+1), tip="Bring the selection one step forward")
        action("Back", lambda: self.restack(-1), tip="Send the selection one step back")
        bar.addSeparator()
        self.undo_action = self.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        for a in (self.undo_action, self.redo_action):
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(a)
            bar.addAction(a)
        bar.addSeparator()
        self.snap_check = QCheckBox("Snap")
        self.snap_check.setChecked(self.snap)
        self.snap_check.toggled.connect(self._set_snap)
        self.grid_spin = QSpinBox()
        self.grid_spin.setRange(1, 128)
        self.grid_spin.setValue(self.grid)
        self.grid_spin.setSuffix(" px")
        self.grid_spin.setToolTip("Grid size")
        self.grid_spin.valueChanged.connect(self._set_grid)
        bar.addWidget(self.snap_check)
        bar.addWidget(self.grid_spin)
        return bar

    def _build_control_panel(self) -> QGroupBox:
        box = QGroupBox("What ControlNet sees")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.control_combo = QComboBox()
        self.control_combo.addItems(CONTROL_TYPES)
        self.stroke_spin = QSpinBox()
        self.stroke_spin.setRange(0, 64)
        self.stroke_spin.setSpecialValueText("auto")
        self.stroke_spin.setPrefix("stroke ")
        self.invert_check = QCheckBox("Invert")
        for w in (self.control_combo, self.stroke_spin, self.invert_check):
            row.addWidget(w)
        v.addLayout(row)
        row2 = QHBoxLayout()
        self.low_spin, self.high_spin = QSpinBox(), QSpinBox()
        for spin, value, label in ((self.low_spin, 100, "low "), (self.high_spin, 200, "high ")):
            spin.setRange(0, 255)
            spin.setValue(value)
            spin.setPrefix(label)
            row2.addWidget(spin)
        self.canny_row = QWidget()
        self.canny_row.setLayout(row2)
        v.addWidget(self.canny_row)
        self.control_label = ControlPreview()
        self.control_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.control_label.setMinimumSize(200, 120)
        self.control_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.control_label.setStyleSheet("background: #111; border: 1px solid #444;")
        v.addWidget(self.control_label, 1)
        for signal in (self.control_combo.currentTextChanged, self.stroke_spin.valueChanged,
                       self.invert_check.toggled, self.low_spin.valueChanged, self.high_spin.valueChanged):
            signal.connect(lambda *_: self._control_timer.start())
        self.control_combo.currentTextChanged.connect(lambda t: self.canny_row.setVisible(t == "canny"))
        self.canny_row.setVisible(False)
        return box

    # ---- the model ------------------------------------------------------------------------------

    def commit(self, data: dict, text: str, merge_key=None, select: list[int] | None = None) -> bool:
        """Make DATA (a layout dict) the new state through the undo stack; False if it is invalid."""
        before = self._layout.to_dict()
        if data == before:
            return True
        try:
            layout_from_dict(data, base_dir=self._layout.base_dir, check_files=False)
        except UserError as exc:
            self.status.setText(str(exc))
            # Later, not now: the panel widget that sent this change is still in its signal handler.
            QTimer.singleShot(0, self._refresh_panel)
            return False
        self.status.setText("")
        if select is not None:
            self._selected = select
        self.undo_stack.push(LayoutCommand(self, before, data, text, merge_key))
        return True

    def _apply(self, data: dict) -> None:
        self._layout = layout_from_dict(data, base_dir=self._layout.base_dir, check_files=False)
        count = len(self._layout.elements)
        self._selected = [i for i in self._selected if i < count]
        self._after_change()

    def _after_change(self) -> None:
        self._rebuild_scene()
        if not self._from_panel:
            self._refresh_panel()
        self._control_timer.start()
        self._update_title()
        self.layoutChanged.emit()

    def _update_title(self, *_args) -> None:
        name = self.current_path.name if self.current_path else "untitled layout"
        try:
            clean = self.undo_stack.isClean()
        except RuntimeError:  # the stack is being destroyed with the widget
            return
        self.setWindowTitle(f"{name}{'' if clean else ' *'}")

    # ---- the scene ------------------------------------------------------------------------------

    def canvas_rect(self) -> QRectF:
        return QRectF(0, 0, self._layout.width, self._layout.height)

    def items(self) -> list[ElementItem]:
        return sorted((i for i in self.scene.items() if isinstance(i, ElementItem)), key=lambda i: i.index)

    def _rebuild_scene(self) -> None:
        self._rebuilding = True
        try:
            self.scene.clear()
            canvas = QGraphicsRectItem(self.canvas_rect())
            canvas.setBrush(QColor(self._layout.background[:7]))
            canvas.setPen(QPen(QColor("#888888"), 0))
            canvas.setZValue(-1)
            self.scene.addItem(canvas)
            for index, element in enumerate(self._layout.elements):
                try:
                    item = ElementItem(self, index, element, self._layout)
                except UserError as exc:  # e.g. a placed image that vanished from disk
                    self.status.setText(str(exc))
                    continue
                self.scene.addItem(item)
                item.setSelected(index in self._selected)
            self.scene.setSceneRect(self.canvas_rect().adjusted(-24, -40, 24, 24))
        finally:
            self._rebuilding = False
        self.view.fit()

    def _selection_changed(self) -> None:
        if self._rebuilding:
            return
        try:
            self._selected = [i.index for i in self.scene.selectedItems() if isinstance(i, ElementItem)]
        except RuntimeError:  # the scene is being torn down with the widget
            return
        self._refresh_panel()

    def selected_indexes(self) -> list[int]:
        return list(self._selected)

    def select(self, index: int | None) -> None:
        self._selected = [] if index is None else [index]
        for item in self.items():
            item.setSelected(item.index in self._selected)
        self._refresh_panel()

    def snap_centre(self, centre: QPointF, w: float, h: float) -> QPointF:
        if not self.snap:
            return centre
        g = self.grid
        x = round((centre.x() - w / 2) / g) * g + w / 2
        y = round((centre.y() - h / 2) / g) * g + h / 2
        return QPointF(x, y)

    def snap_size(self, v: float) -> float:
        return max(self.grid, round(v / self.grid) * self.grid) if self.snap else v

    def _set_snap(self, on: bool) -> None:
        self.snap = on
        self.scene.update()
        self.view.viewport().update()

    def _set_grid(self, value: int) -> None:
        self.grid = value
        self.view.viewport().update()

    # ---- edits ----------------------------------------------------------------------------------

    def _elements_data(self) -> dict:
        return self._layout.to_dict()

    def _add(self, element, text: str) -> int:
        data = self._elements_data()
        data["elements"].append(element_to_dict(element))
        index = len(data["elements"]) - 1
        self.commit(data, text, select=[index])
        return index

    def _centre_box(self, w: float, h: float) -> Box:
        lw, lh = self._layout.width, self._layout.height
        w, h = min(w, lw), min(h, lh)
        if self.snap:  # a new element lands on the grid, like everything dragged there
            g = self.grid
            w, h = min(self.snap_size(w), lw), min(self.snap_size(h), lh)
            return Box(round((lw - w) / 2 / g) * g, round((lh - h) / 2 / g) * g, round(w), round(h))
        return Box(round((lw - w) / 2), round((lh - h) / 2), round(w), round(h))

    def add_text(self, text: str = "TEXT", font: str | None = None) -> int:
        size = max(12, round(self._layout.height / 4))
        element = TextElement(text, self._centre_box(self._layout.width * 0.8, size * 1.6), size=size, weight="bold")
        if font:
            element.font = font
        return self._add(element, "Add text")

    def add_shape(self, kind: str) -> int:
        box = self._centre_box(self._layout.width / 3, self._layout.height / 3)
        if kind == "polygon":
            points = [(box.x + box.w / 2, box.y), (box.x + box.w, box.y + box.h), (box.x, box.y + box.h)]
            element = ShapeElement(kind, points=points, fill="#ffffff")
        elif kind == "line":
            element = ShapeElement(kind, points=[(box.x, box.y + box.h), (box.x + box.w, box.y)], fill=None,
                                   stroke="#ffffff", stroke_width=max(2, round(self._layout.height / 64)))
        else:
            element = ShapeElement(kind, box=box, fill="#3f6fd0", stroke="#ffffff",
                                   stroke_width=max(2, round(self._layout.height / 64)),
                                   radius=round(min(box.w, box.h) / 4) if kind == "rounded_rect" else 0)
        return self._add(element, f"Add {kind.replace('_', ' ')}")

    def add_image(self, path) -> int:
        from PIL import Image

        path = Path(path).resolve()
        try:
            with Image.open(path) as im:
                iw, ih = im.size
        except (OSError, Image.DecompressionBombError):
            raise UserError(f"{path.name} is not a readable image.") from None
        k = min(self._layout.width * 0.5 / iw, self._layout.height * 0.5 / ih)
        box = self._centre_box(iw * k, ih * k)
        # Kept absolute until saved: save_layout copies it next to the layout file.
        return self._add(ImageElement(path=str(path), box=box), "Add image")

    def delete_selected(self) -> None:
        if not self._selected:
            return
        data = self._elements_data()
        data["elements"] = [e for i, e in enumerate(data["elements"]) if i not in self._selected]
        self.commit(data, "Delete", select=[])

    def restack(self, step: int) -> None:
        if len(self._selected) != 1:
            return
        i = self._selected[0]
        j = i + step
        data = self._elements_data()
        if not 0 <= j < len(data["elements"]):
            return
        data["elements"][i], data["elements"][j] = data["elements"][j], data["elements"][i]
        self.commit(data, "Bring forward" if step > 0 else "Send back", select=[j])

    def nudge(self, dx: float, dy: float) -> None:
        data = self._elements_data()
        for i in self._selected:
            box = element_bounds(self._layout.elements[i])
            moved = with_box(self._layout.elements[i], Box(box.x + dx, box.y + dy, box.w, box.h))
            data["elements"][i] = element_to_dict(moved)
        self.commit(data, "Move")

    def commit_moves(self, text: str) -> None:
        """Called by items on mouse release: every selected item's new position becomes the model's."""
        data = self._elements_data()
        for item in self.items():
            if item.isSelected() or item.index in self._selected:
                data["elements"][item.index] = element_to_dict(with_box(self._layout.elements[item.index],
                                                                        item.moved_box()))
        if not self.commit(data, text):
            self._rebuild_scene()

    def commit_geometry(self, index: int, box: Box | None, rotation: float | None, text: str) -> None:
        element = self._layout.elements[index]
        if box is not None:
            element = with_box(element, box)
        data = self._elements_data()
        new = element_to_dict(element)
        if rotation is not None:
            new["rotation"] = rotation
        data["elements"][index] = new
        if not self.commit(data, text):
            self._rebuild_scene()

    def set_property(self, name: str, value, index: int | None = None) -> bool:
        """Change one field of the selected element (or of the canvas when none is selected)."""
        data = self._elements_data()
        if index is None and len(self._selected) == 1:
            index = self._selected[0]
        target = data if index is None else data["elements"][index]
        if name in ("x", "y", "w", "h"):
            element = self._layout.elements[index]
            box = element_bounds(element)
            values = {"x": box.x, "y": box.y, "w": box.w, "h": box.h, name: value}
            target = data["elements"][index] = element_to_dict(with_box(element, Box(**values)))
        elif value is None:
            target[name] = None
        else:
            target[name] = value
        self._from_panel = True
        try:
            return self.commit(data, f"Change {name.replace('_', ' ')}", merge_key=(index, name))
        finally:
            self._from_panel = False

    # ---- the properties panel -------------------------------------------------------------------

    def _refresh_panel(self) -> None:
        self._fill_panel()
        guard_wheel(self.props_box)  # the new fields, too, take the wheel only when focused

    def _fill_panel(self) -> None:
        form = self.props_form
        while form.rowCount():
            form.removeRow(0)
        if len(self._selected) != 1:
            self._canvas_fields(form)
            return
        index = self._selected[0]
        element = self._layout.elements[index]
        if isinstance(element, TextElement):
            self._text_fields(form, element)
        elif isinstance(element, ShapeElement):
            self._shape_fields(form, element)
        else:
            form.addRow("Image", QLabel(Path(element.path).name))
            form.addRow("Opacity", self._double(element.opacity, 0, 1, "opacity", step=0.05))
        box = element_bounds(element)
        for name, value, lo in (("x", box.x, -4096), ("y", box.y, -4096), ("w", box.w, 1), ("h", box.h, 1)):
            form.addRow(name.upper(), self._double(value, lo, 8192, name))
        form.addRow("Rotation", self._double(element.rotation, -360, 360, "rotation", suffix="°"))

    def edit_text(self, index: int) -> None:
        """Select a text element and put the cursor in its text field."""
        if not isinstance(self._layout.elements[index], TextElement):
            return
        self.select(index)
        self.text_edit.setFocus()
        self.text_edit.selectAll()

    def _canvas_fields(self, form: QFormLayout) -> None:
        form.addRow(QLabel("Canvas (select an element to edit it)"))
        for name, value in (("width", self._layout.width), ("height", self._layout.height)):
            spin = QSpinBox()
            spin.setRange(8, 4096)
            spin.setValue(value)
            spin.setSuffix(" px")
            spin.editingFinished.connect(lambda s=spin, n=name: self.set_property(n, s.value()))
            form.addRow(name.capitalize(), spin)
        form.addRow("Background", self._color(self._layout.background, "background", "Background"))

    def _text_fields(self, form: QFormLayout, element: TextElement) -> None:
        edit = QPlainTextEdit(element.text)
        edit.setFixedHeight(60)
        self.text_edit = edit
        edit.textChanged.connect(lambda: edit.toPlainText() and self.set_property("text", edit.toPlainText()))
        form.addRow("Text", edit)
        fonts = QFontComboBox()
        fonts.setCurrentFont(QFont(element.font))
        fonts.currentFontChanged.connect(lambda f: self.set_property("font", f.family()))
        form.addRow("Font", fonts)
        form.addRow("Size", self._double(element.size, 1, 2048, "size", suffix=" px"))
        weight = QComboBox()
        weight.addItems(["normal", "bold"])
        weight.setCurrentText("bold" if str(element.weight) in ("bold", "700", "800", "900") else "normal")
        weight.currentTextChanged.connect(lambda t: self.set_property("weight", t))
        form.addRow("Weight", weight)
        align = QComboBox()
        align.addItems(["left", "center", "right"])
        align.setCurrentText(element.align)
        align.currentTextChanged.connect(lambda t: self.set_property("align", t))
        form.addRow("Align", align)
        form.addRow("Letter spacing", self._double(element.letter_spacing, -512, 512, "letter_spacing", suffix=" px"))
        form.addRow("Fill", self._color(element.fill, "fill", "Text colour", allow_none=True))
        form.addRow("Outline", self._double(element.outline_width, 0, 256, "outline_width", suffix=" px"))
        form.addRow("Outline colour", self._color(element.outline_color, "outline_color", "Outline colour"))

    def _shape_fields(self, form: QFormLayout, element: ShapeElement) -> None:
        form.addRow("Shape", QLabel(SHAPE_LABELS[element.kind]))
        if element.kind != "line":
            form.addRow("Fill", self._color(element.fill, "fill", "Fill colour", allow_none=True))
        form.addRow("Stroke", self._color(element.stroke, "stroke", "Stroke colour", allow_none=element.kind != "line"))
        form.addRow("Stroke width", self._double(element.stroke_width, 0, 512, "stroke_width", suffix=" px"))
        if element.kind == "rounded_rect":
            form.addRow("Corner radius", self._double(element.radius, 0, 4096, "radius", suffix=" px"))

    def _double(self, value: float, lo: float, hi: float, name: str, step: float = 1.0, suffix: str = "") -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setDecimals(2 if step < 1 else 1)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(lambda v: self.set_property(name, round(v, 3)))
        return spin

    def _color(self, color: str | None, name: str, title: str, allow_none: bool = False) -> QWidget:
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        button = ColorButton(color, title)
        button.colorPicked.connect(lambda c: self.set_property(name, c))
        h.addWidget(button)
        if allow_none:
            none = QCheckBox("none")
            none.setChecked(color is None)
            none.toggled.connect(lambda on: self.set_property(name, None if on else "#ffffff"))
            h.addWidget(none)
        h.addStretch(1)
        return row

    # ---- the control preview --------------------------------------------------------------------

    def update_control_preview(self) -> None:
        try:
            image = render_control(self._layout, self.control_type(), **self.control_options())
        except UserError as exc:
            self.status.setText(str(exc))
            return
        self._last_control = image
        self.control_label.show_image(image, self.invert_check.isChecked())

    # ---- dialogs ---------------------------------------------------------------------------------

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open layout", str(self.current_path or start_in(self.start_dir)), "Layouts (*.json)")
        if path:
            try:
                self.open_file(path)
            except UserError as exc:
                QMessageBox.warning(self, "Open layout", str(exc))

    def _save_dialog(self) -> None:
        path = self.current_path
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save layout", start_in(self.start_dir, "layout.json"), "Layouts (*.json)")
            if not chosen:
                return
            path = Path(chosen)
        try:
            self.save_file(path)
        except (UserError, OSError) as exc:
            QMessageBox.warning(self, "Save layout", str(exc))

    def _import_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Place an image", start_in(self.start_dir), "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            try:
                self.add_image(path)
            except UserError as exc:
                QMessageBox.warning(self, "Place an image", str(exc))


_fonts_registered = False


def _register_bundled_fonts() -> None:
    """Let QFontComboBox offer the bundled family (it renders the same on every machine)."""
    global _fonts_registered
    if _fonts_registered:
        return
    from asset_studio.core.fonts import bundled_font_files

    for path in bundled_font_files():
        QFontDatabase.addApplicationFont(str(path))
    _fonts_registered = True
