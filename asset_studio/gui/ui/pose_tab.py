"""The Pose tab: the skeleton editor over a dimmed reference picture, its tools, the control image
ControlNet will see, and the strip of a pose set's frames.

Every edit goes to the models (gui/model/pose_editor: PoseEditor, PoseSet); "Use this pose" and
"Use this pose set" hand them to the Create tab through its PoseLink. The skeleton is drawn in the
control image's colours (core/pose_render's LIMBS and COLORS) so what the artist drags is what
ControlNet sees.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QImageReader, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QListView, QListWidget,
    QListWidgetItem, QMessageBox, QPushButton, QSizePolicy, QSlider, QSpinBox, QVBoxLayout, QWidget,
)

from asset_studio.core.pose import CYCLES, KEYPOINTS, MAX_SIDE, MIN_SIDE, VIEWS
from asset_studio.core.pose_render import COLORS, JOINT_RADIUS, LIMBS, STICK_WIDTH
from asset_studio.core.pose_sets import set_names
from asset_studio.errors import UserError
from asset_studio.gui.model.pose_editor import PoseEditor, PoseSet
from asset_studio.gui.model.pose_link import PoseLink

MAX_REFERENCE_PIXELS = 64_000_000  # as core/images: more is a mistake, not a picture
THUMB = 84
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def preset_label(name: str) -> str:
    """'three-quarter-left' -> 'Three-quarter left'; 'walk-3' -> 'Walk, frame 4 of 8'."""
    cycle, _, index = name.rpartition("-")
    if cycle in CYCLES and index.isdigit():
        return f"{cycle.capitalize()}, frame {int(index) + 1} of {CYCLES[cycle][1]}"
    words = name.replace("three-quarter", "three‑quarter").replace("-", " ").replace("‑", "-")
    return words[0].upper() + words[1:]


def read_picture(path: str) -> QImage:
    """A reference picture, refused in one sentence when it is not one (or absurdly large)."""
    reader = QImageReader(path)
    size = reader.size()
    if size.isValid() and size.width() * size.height() > MAX_REFERENCE_PIXELS:
        raise UserError(f"The picture {Path(path).name} is {size.width()}x{size.height()}: too large for a reference.")
    image = reader.read()
    if image.isNull():
        raise UserError(f"{Path(path).name} is not a picture this app can read ({reader.errorString()}).")
    return image


def pose_qimage(pil_image) -> QImage:
    from asset_studio.gui.worker import pil_to_qimage

    return pil_to_qimage(pil_image)


class PoseCanvas(QWidget):
    """The pose canvas: black like the control image, the reference picture dimmed under it, limbs
    and joints in ControlNet's colours; drag a joint with the mouse, drop a picture or a pose file."""

    dropped = Signal(str)  # a file dropped on the canvas (a picture or a pose JSON)

    def __init__(self, editor: PoseEditor):
        super().__init__()
        self.editor = editor
        self.reference: QImage | None = None
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setToolTip("Drag a joint to move it; arrows nudge the selected joint (Shift: 10 px), H hides or shows "
                        "it. Drop a picture to pose over it, or a pose JSON to open it.")
        self._hover: tuple[int, int] | None = None
        editor.changed.connect(lambda _what: self.update())

    # --- geometry --------------------------------------------------------------------------------

    def canvas_rect(self) -> QRectF:
        """Where the pose's canvas is drawn: fitted, centred, with a margin."""
        e, margin = self.editor, 12.0
        w, h = max(1.0, self.width() - 2 * margin), max(1.0, self.height() - 2 * margin)
        s = min(w / e.width, h / e.height)
        return QRectF((self.width() - e.width * s) / 2, (self.height() - e.height * s) / 2, e.width * s, e.height * s)

    def _scale(self) -> float:
        return self.canvas_rect().width() / self.editor.width

    def to_widget(self, x: float, y: float) -> QPointF:
        r, s = self.canvas_rect(), self._scale()
        return QPointF(r.x() + x * s, r.y() + y * s)

    def to_canvas(self, point: QPointF) -> tuple[float, float]:
        r, s = self.canvas_rect(), self._scale()
        return (point.x() - r.x()) / s, (point.y() - r.y()) / s

    def _hit(self, point: QPointF) -> tuple[int, int] | None:
        x, y = self.to_canvas(point)
        return self.editor.joint_at(x, y, radius=max(JOINT_RADIUS + 4, 9.0 / self._scale()))

    # --- painting --------------------------------------------------------------------------------

    def paintEvent(self, _event) -> None:
        e = self.editor
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), self.palette().window())
        rect = self.canvas_rect()
        p.fillRect(rect, QColor(0, 0, 0))
        if self.reference is not None and not self.reference.isNull():
            img = self.reference.size().scaled(rect.size().toSize(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF(rect.x() + (rect.width() - img.width()) / 2, rect.y() + (rect.height() - img.height()) / 2,
                            img.width(), img.height())
            p.setOpacity(e.reference_opacity)
            p.drawImage(target, self.reference)
            p.setOpacity(1.0)
        s = rect.width() / e.width
        ox, oy = rect.x(), rect.y()

        def at(x: float, y: float) -> QPointF:  # canvas -> widget, with the rect computed once per paint
            return QPointF(ox + x * s, oy + y * s)

        stick = max(3.0, 2 * STICK_WIDTH * s)
        radius = max(4.0, JOINT_RADIUS * s)
        pose = e.pose
        for n, person in enumerate(pose.people):
            k = person.keypoints
            for (a, b), color in zip(LIMBS, COLORS):
                if k[a - 1] is None or k[b - 1] is None:
                    continue
                c = QColor(*(int(v * 0.6) for v in color))  # limbs at 0.6 of their colour, as in the control image
                p.setPen(QPen(c, stick, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
                p.drawLine(at(*k[a - 1]), at(*k[b - 1]))
            for j, point in person.visible():
                selected = n == e.person and j == e.joint
                hover = self._hover == (n, j)
                p.setBrush(QBrush(QColor(*COLORS[j])))
                p.setPen(QPen(QColor(255, 255, 255), 2.0) if selected or hover else Qt.PenStyle.NoPen)
                r = radius + (2.0 if selected or hover else 0.0)
                p.drawEllipse(at(*point), r, r)
            if n == e.person and len(pose.people) > 1:
                xs = [q[0] for q in k if q]
                ys = [q[1] for q in k if q]
                if xs:
                    p.setBrush(Qt.BrushStyle.NoBrush)
                    p.setPen(QPen(QColor(255, 255, 255, 110), 1.0, Qt.PenStyle.DashLine))
                    a, b = at(min(xs), min(ys)), at(max(xs), max(ys))
                    p.drawRect(QRectF(a, b).adjusted(-radius - 4, -radius - 4, radius + 4, radius + 4))
        # What is selected, in the corner, so the artist knows which joint the tools act on.
        p.setPen(QColor(220, 220, 220))
        joint = f" · {e.joint_name(e.joint)}" if e.joint >= 0 else ""
        people = f" · person {e.person + 1} of {e.people}" if e.people > 1 else ""
        p.drawText(rect.adjusted(6, 4, -6, -4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                   f"{e.name} · {e.width}×{e.height}{people}{joint}")
        p.end()

    # --- mouse and drops -------------------------------------------------------------------------

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        hit = self._hit(event.position())
        if hit is None:
            self.editor.select(self.editor.person, -1)
            return
        self.editor.begin_drag(*hit)

    def mouseMoveEvent(self, event) -> None:
        if self.editor.dragging():
            self.editor.drag_to(*self.to_canvas(event.position()))
            return
        hover = self._hit(event.position())
        if hover != self._hover:
            self._hover = hover
            self.setCursor(Qt.CursorShape.OpenHandCursor if hover else Qt.CursorShape.ArrowCursor)
            self.update()

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.editor.end_drag()

    def keyPressEvent(self, event) -> None:
        """Arrows nudge the selected joint (Shift: 10 px), H or Delete hides it (H shows it again)."""
        key, step = event.key(), 10.0 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1.0
        moves = {Qt.Key.Key_Left: (-step, 0), Qt.Key.Key_Right: (step, 0), Qt.Key.Key_Up: (0, -step),
                 Qt.Key.Key_Down: (0, step)}
        e = self.editor
        if key in moves:
            e.nudge(*moves[key])
        elif key in (Qt.Key.Key_H, Qt.Key.Key_Delete) and e.person >= 0 and e.joint >= 0:
            if key == Qt.Key.Key_H:
                e.toggle_joint()
            else:
                e.set_joint_visible(e.joint, False)
        else:
            super().keyPressEvent(event)

    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).suffix.lower() in (*IMAGE_SUFFIXES, ".json"):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.dropped.emit(urls[0].toLocalFile())
            event.acceptProposedAction()


class PoseTab(QWidget):
    error = Signal(str)  # one sentence for the window's dialog
    used = Signal(str)  # "pose" or "set": the Create tab now follows it

    def __init__(self, link: PoseLink, parent: QWidget | None = None):
        super().__init__(parent)
        self.link = link
        self.editor = PoseEditor(self)
        self.pose_set = PoseSet(self.editor, self)
        self.start_dir = ""  # where file dialogs open (the window sets the output folder)
        self.canvas = PoseCanvas(self.editor)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(80)
        self._preview_timer.timeout.connect(self._refresh_preview)
        self._thumb_timer = QTimer(self)
        self._thumb_timer.setSingleShot(True)
        self._thumb_timer.setInterval(200)
        self._thumb_timer.timeout.connect(self._refresh_edited_thumb)
        self._edited: set[int] = set()
        self._link_timer = QTimer(self)  # "edited since Use" is checked once a burst of edits ends
        self._link_timer.setSingleShot(True)
        self._link_timer.setInterval(150)
        self._link_timer.timeout.connect(self._show_link)

        top = QHBoxLayout()
        top.addWidget(self.canvas, 1)
        top.addLayout(self._tools())
        top.addLayout(self._side())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top, 1)
        layout.addWidget(self._strip())
        self._bind()
        self._editor_changed("pose")
        self._editor_changed("history")
        self._editor_changed("selection")
        self._show_link()

    # --- building --------------------------------------------------------------------------------

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        btn = QPushButton(text)
        btn.setToolTip(tip)
        btn.clicked.connect(slot)
        return btn

    def _tools(self) -> QVBoxLayout:
        column = QVBoxLayout()
        pose_box = QGroupBox("Pose")
        pose_box.setFixedWidth(270)
        grid = QGridLayout(pose_box)
        self.preset_combo = QComboBox()
        for name in VIEWS:
            self.preset_combo.addItem(preset_label(name), name)
        self.preset_combo.insertSeparator(self.preset_combo.count())
        for cycle, (_fn, n) in CYCLES.items():
            for i in range(n):
                self.preset_combo.addItem(preset_label(f"{cycle}-{i}"), f"{cycle}-{i}")
        self.preset_combo.setToolTip("Built-in poses: views for a turnaround and the key frames of a walk and a run "
                                     "(frame 1 is the right foot's contact).")
        self.preset_btn = self._button("Apply", "Replace the pose (or, with several people, the selected person) "
                                       "by this preset.", self.apply_preset)
        grid.addWidget(QLabel("Preset"), 0, 0)
        grid.addWidget(self.preset_combo, 0, 1, 1, 2)
        grid.addWidget(self.preset_btn, 0, 3)
        self.mirror_btn = self._button("Mirror", "Flip the selected person left to right (left and right trade "
                                       "places), where it stands.", self._guard(self.editor.mirror))
        self.hide_btn = self._button("Hide joint", "Hide the selected joint: ControlNet then draws neither it nor "
                                     "its limbs (a hand behind the back, a face turned away).",
                                     self._guard(lambda: self.editor.toggle_joint()))
        grid.addWidget(self.mirror_btn, 1, 0, 1, 2)
        grid.addWidget(self.hide_btn, 1, 2, 1, 2)
        self.person_combo = QComboBox()
        self.person_combo.setToolTip("The person the tools act on (click one of its joints to choose it too).")
        self.add_person_btn = self._button("Add", "Add a person (from the chosen preset).",
                                           self._guard(lambda: self.editor.add_person(self.preset_combo.currentData())))
        self.remove_person_btn = self._button("Remove", "Remove the selected person.",
                                              self._guard(lambda: self.editor.remove_person()))
        grid.addWidget(QLabel("Person"), 2, 0)
        grid.addWidget(self.person_combo, 2, 1)
        grid.addWidget(self.add_person_btn, 2, 2)
        grid.addWidget(self.remove_person_btn, 2, 3)
        self.width_spin, self.height_spin = QSpinBox(), QSpinBox()
        for spin in (self.width_spin, self.height_spin):
            spin.setRange(MIN_SIDE, MAX_SIDE)
            spin.setSingleStep(64)
            spin.setToolTip("The pose's canvas in pixels; generation scales it to the image's size, keeping proportions.")
        self.size_btn = self._button("Set", "Give the pose this canvas (the skeletons are scaled to fit).",
                                     self._guard(lambda: self.editor.set_canvas_size(self.width_spin.value(),
                                                                                     self.height_spin.value())))
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        grid.addWidget(QLabel("Canvas"), 3, 0)
        grid.addLayout(size_row, 3, 1, 1, 2)
        grid.addWidget(self.size_btn, 3, 3)
        self.undo_btn = self._button("Undo", "Undo the last edit (Ctrl+Z).", self.editor.undo)
        self.redo_btn = self._button("Redo", "Redo (Ctrl+Shift+Z).", self.editor.redo)
        self.open_btn = self._button("Open…", "Open an OpenPose JSON file (from this app, controlnet-aux, "
                                     "OpenPose or another pose editor).", self._open_dialog)
        self.save_btn = self._button("Save…", "Save the pose as OpenPose JSON (for --pose, or another editor).",
                                     self._save_dialog)
        grid.addWidget(self.undo_btn, 4, 0, 1, 2)
        grid.addWidget(self.redo_btn, 4, 2, 1, 2)
        grid.addWidget(self.open_btn, 5, 0, 1, 2)
        grid.addWidget(self.save_btn, 5, 2, 1, 2)
        self.undo_btn.setShortcut("Ctrl+Z")
        self.redo_btn.setShortcut("Ctrl+Shift+Z")
        column.addWidget(pose_box)

        joints_box = QGroupBox("Joints of the selected person")
        joints_box.setFixedWidth(270)
        jl = QVBoxLayout(joints_box)
        self.joint_list = QListWidget()
        self.joint_list.setToolTip("Click to select a joint; untick to hide it, tick to show it again.")
        for name in KEYPOINTS:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            dot = QPixmap(10, 10)
            dot.fill(QColor(*COLORS[KEYPOINTS.index(name)]))
            item.setIcon(QIcon(dot))
            self.joint_list.addItem(item)
        jl.addWidget(self.joint_list)
        column.addWidget(joints_box, 1)
        return column

    def _side(self) -> QVBoxLayout:
        column = QVBoxLayout()
        ref_box = QGroupBox("Reference picture")
        ref_box.setFixedWidth(250)
        rl = QGridLayout(ref_box)
        self.ref_label = QLabel("None: open or drop a picture on the canvas.")
        self.ref_label.setWordWrap(True)
        self.ref_open_btn = self._button("Open…", "A picture to pose over (dimmed, never part of the control image).",
                                         self._open_reference_dialog)
        self.ref_clear_btn = self._button("Clear", "Remove the reference picture.", lambda: self.set_reference(""))
        self.ref_opacity = QSlider(Qt.Orientation.Horizontal)
        self.ref_opacity.setRange(10, 100)
        self.ref_opacity.setValue(int(self.editor.reference_opacity * 100))
        self.ref_opacity.setToolTip("How strongly the reference shows under the skeleton.")
        rl.addWidget(self.ref_label, 0, 0, 1, 2)
        rl.addWidget(self.ref_open_btn, 1, 0)
        rl.addWidget(self.ref_clear_btn, 1, 1)
        rl.addWidget(QLabel("Opacity"), 2, 0)
        rl.addWidget(self.ref_opacity, 2, 1)
        column.addWidget(ref_box)

        preview_box = QGroupBox("What ControlNet sees")
        preview_box.setFixedWidth(250)
        pl = QVBoxLayout(preview_box)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(160, 120)
        self.preview.setToolTip("The OpenPose control image drawn from the keypoints, exactly as ControlNet's "
                                "OpenPose models saw skeletons in training (no detector).")
        pl.addWidget(self.preview, 1)
        column.addWidget(preview_box, 1)
        self.use_btn = self._button("Use this pose", "Generate with this pose on the Create tab, through an "
                                    "OpenPose ControlNet.", self.use_pose)
        self.use_btn.setMinimumHeight(34)
        self.use_btn.setStyleSheet("font-weight: bold;")
        self.link_label = QLabel()
        self.link_label.setWordWrap(True)
        self.link_label.setFixedWidth(250)
        self.link_label.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        column.addWidget(self.use_btn)
        column.addWidget(self.link_label)
        return column

    def _strip(self) -> QGroupBox:
        box = QGroupBox("Pose set")
        row = QHBoxLayout(box)
        controls = QGridLayout()
        self.set_combo = QComboBox()
        self.set_combo.addItem("Choose a set…", "")
        for name in set_names():
            self.set_combo.addItem(name, name)
        self.set_combo.setToolTip("A pose set makes one image per pose with the same character: a turnaround, "
                                  "the frames of a walk or a run.")
        self.set_open_btn = self._button("Open folder…", "A folder of OpenPose JSON files (in natural order, or the "
                                         "order its order.txt lists).", self._open_set_dialog)
        self.set_save_btn = self._button("Save set…", "Save the frames (with their edits) to a folder: one JSON per "
                                         "pose, names and order kept, for generate --pose-set FOLDER.",
                                         self._save_set_dialog)
        self.use_set_btn = self._button("Use this pose set", "Generate one image per pose on the Create tab, named "
                                        "by pose in a folder of its own (walk frames become an animation in sheets).",
                                        self.use_set)
        controls.addWidget(self.set_combo, 0, 0)
        controls.addWidget(self.set_open_btn, 0, 1)
        controls.addWidget(self.set_save_btn, 1, 0)
        controls.addWidget(self.use_set_btn, 1, 1)
        row.addLayout(controls)
        self.strip = QListWidget()
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setIconSize(QSize(THUMB, THUMB))
        self.strip.setGridSize(QSize(THUMB + 16, THUMB + 22))
        self.strip.setFixedHeight(THUMB + 40)
        self.strip.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip.setToolTip("The set's frames: click one to edit it; edits stay in the set.")
        row.addWidget(self.strip, 1)
        return box

    # --- wiring ----------------------------------------------------------------------------------

    def _bind(self) -> None:
        e = self.editor
        e.changed.connect(self._editor_changed)
        self.canvas.dropped.connect(self.drop_file)
        self.person_combo.activated.connect(lambda i: e.select(i, -1))
        self.joint_list.currentRowChanged.connect(lambda j: e.select(e.person, j) if j >= 0 else None)
        self.joint_list.itemChanged.connect(self._joint_ticked)
        self.ref_opacity.valueChanged.connect(self._opacity)
        self.set_combo.activated.connect(lambda _i: self.load_set(self.set_combo.currentData()))
        self.strip.currentRowChanged.connect(self._strip_clicked)
        self.pose_set.frames_changed.connect(self._fill_strip)
        self.pose_set.current_changed.connect(self._strip_current)
        self.pose_set.frame_edited.connect(self._frame_edited)
        self.link.changed.connect(lambda _what: self._show_link())

    def _guard(self, action):
        """ACTION with its UserError shown as the one sentence it is."""
        def run(*_args):
            try:
                action()
            except UserError as exc:
                self.error.emit(str(exc))
        return run

    def _editor_changed(self, what: str) -> None:
        e = self.editor
        if what == "pose":
            if not self._preview_timer.isActive():  # during a drag: a new preview every 80 ms
                self._preview_timer.start()
            self._link_timer.start()
            self._sync_people()
            self._sync_joints()
            self.width_spin.setValue(e.width)
            self.height_spin.setValue(e.height)
        elif what == "selection":
            self._sync_people()
            self._sync_joints()
        elif what == "file":
            index = self.preset_combo.findData(e.name)  # the preset this pose is, when it is one
            if index >= 0:
                self.preset_combo.setCurrentIndex(index)
        elif what == "history":
            self.undo_btn.setEnabled(e.can_undo())
            self.redo_btn.setEnabled(e.can_redo())
            if not e.dragging() and self._edited:
                self._thumb_timer.start()

    def _sync_people(self) -> None:
        e = self.editor
        self.person_combo.blockSignals(True)
        if self.person_combo.count() != e.people:
            self.person_combo.clear()
            self.person_combo.addItems([f"{i + 1} of {e.people}" for i in range(e.people)])
        self.person_combo.setCurrentIndex(e.person)
        self.person_combo.blockSignals(False)
        self.remove_person_btn.setEnabled(e.people > 0)
        self.mirror_btn.setEnabled(e.people > 0)

    def _sync_joints(self) -> None:
        e = self.editor
        self.joint_list.blockSignals(True)
        for j in range(self.joint_list.count()):
            visible = e.person >= 0 and e.point(e.person, j) is not None
            self.joint_list.item(j).setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
        self.joint_list.setCurrentRow(e.joint)
        self.joint_list.blockSignals(False)
        has_joint = e.person >= 0 and e.joint >= 0
        self.hide_btn.setEnabled(has_joint)
        self.hide_btn.setText("Show joint" if has_joint and e.point(e.person, e.joint) is None else "Hide joint")

    def _joint_ticked(self, item: QListWidgetItem) -> None:
        joint = self.joint_list.row(item)
        self._guard(lambda: self.editor.set_joint_visible(joint, item.checkState() == Qt.CheckState.Checked))()

    def _opacity(self, value: int) -> None:
        self.editor.reference_opacity = value / 100
        self.canvas.update()

    def _refresh_preview(self) -> None:
        image = pose_qimage(self.editor.render())
        size = self.preview.size().boundedTo(QSize(230, 400))
        self.preview.setPixmap(QPixmap.fromImage(image).scaled(size, Qt.AspectRatioMode.KeepAspectRatio,
                                                               Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._preview_timer.start()

    # --- actions ---------------------------------------------------------------------------------

    def apply_preset(self) -> None:
        self._guard(lambda: self.editor.apply_preset(self.preset_combo.currentData()))()

    def set_reference(self, path: str) -> bool:
        try:
            image = read_picture(path) if path else None
            self.editor.set_reference(path)
        except UserError as exc:
            self.error.emit(str(exc))
            return False
        self.canvas.reference = image
        self.ref_label.setText(Path(path).name if path else "None: open or drop a picture on the canvas.")
        self.ref_label.setToolTip(path)
        self.canvas.update()
        return True

    def open_pose(self, path: str) -> bool:
        try:
            self.editor.open_file(path)
        except UserError as exc:
            self.error.emit(str(exc))
            return False
        return True

    def drop_file(self, path: str) -> None:
        if Path(path).suffix.lower() == ".json":
            self.open_pose(path)
        else:
            self.set_reference(path)

    def load_set(self, name_or_dir: str) -> bool:
        if not name_or_dir:
            return False
        try:
            self.pose_set.load(name_or_dir)
        except UserError as exc:
            self.error.emit(str(exc))
            return False
        return True

    def save_set(self, folder: str) -> bool:
        try:
            self.pose_set.save(folder)
        except UserError as exc:
            if "agree to replace" not in str(exc):
                self.error.emit(str(exc))
                return False
            answer = QMessageBox.question(self, "Replace the poses?", f"{exc} Replace them?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
            try:
                self.pose_set.save(folder, replace=True)
            except UserError as again:
                self.error.emit(str(again))
                return False
        return True

    def use_pose(self) -> bool:
        try:
            self.link.use_pose(self.editor.pose, self.editor.name)
        except UserError as exc:
            self.error.emit(str(exc))
            return False
        self.used.emit("pose")
        return True

    def use_set(self) -> bool:
        try:
            self.link.use_set(self.pose_set.frames, self.pose_set.label)
        except UserError as exc:
            self.error.emit(str(exc))
            return False
        self.used.emit("set")
        return True

    def _show_link(self) -> None:
        link = self.link
        if not link.kind:
            text = "Create does not follow a pose now."
        elif link.is_current(self.editor.pose, self.pose_set.frames):
            text = f"Create follows: {link.summary()}."
        else:
            again = "Use this pose" if link.kind == "pose" else "Use this pose set"
            text = (f"Create follows {link.label} as it was when you pressed Use; what is here differs "
                    f"(press {again} to follow this instead).")
        self.link_label.setText(text)
        self.use_set_btn.setEnabled(bool(self.pose_set.frames))
        self.set_save_btn.setEnabled(bool(self.pose_set.frames))

    # --- the strip -------------------------------------------------------------------------------

    def _thumb(self, index: int) -> QIcon:
        from asset_studio.core.pose_render import render_pose

        frame = self.pose_set.frames[index]
        image = pose_qimage(render_pose(frame.pose))
        return QIcon(QPixmap.fromImage(image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                    Qt.TransformationMode.SmoothTransformation)))

    def _fill_strip(self) -> None:
        self.strip.blockSignals(True)
        self.strip.clear()
        for i, frame in enumerate(self.pose_set.frames):
            item = QListWidgetItem(self._thumb(i), frame.name)
            item.setToolTip(f"{frame.name} · {frame.view}")
            self.strip.addItem(item)
        self.strip.blockSignals(False)
        self._edited.clear()
        source = self.pose_set.source
        index = self.set_combo.findData(source)
        self.set_combo.setCurrentIndex(index if index >= 0 else 0)
        if index < 0 and source:
            self.set_combo.setItemText(0, f"Folder: {Path(source).name}")
        else:
            self.set_combo.setItemText(0, "Choose a set…")
        self._show_link()

    def _strip_clicked(self, row: int) -> None:
        if row >= 0 and row != self.pose_set.current:
            self.pose_set.select(row)

    def _strip_current(self, index: int) -> None:
        self.strip.blockSignals(True)
        self.strip.setCurrentRow(index)
        if index < 0:
            self.strip.clearSelection()
        self.strip.blockSignals(False)

    def _frame_edited(self, index: int) -> None:
        self._edited.add(index)
        if not self.editor.dragging():
            self._thumb_timer.start()

    def _refresh_edited_thumb(self) -> None:
        for i in sorted(self._edited):
            if i < self.strip.count():
                self.strip.item(i).setIcon(self._thumb(i))
        self._edited.clear()

    # --- dialogs ---------------------------------------------------------------------------------

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open pose", self.start_dir, "OpenPose JSON (*.json)")
        if path:
            self.open_pose(path)

    def _save_dialog(self) -> None:
        start = self.editor.path or str(Path(self.start_dir or ".") / f"{self.editor.name or 'pose'}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save pose", start, "OpenPose JSON (*.json)")
        if path:
            self._guard(lambda: self.editor.save_file(path if path.lower().endswith(".json") else path + ".json"))()

    def _open_reference_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference picture", self.start_dir,
                                              "Pictures (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            self.set_reference(path)

    def _open_set_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open pose set folder", self.start_dir)
        if path:
            self.load_set(path)

    def _save_set_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Save the pose set in a folder", self.start_dir)
        if path:
            self.save_set(path)
