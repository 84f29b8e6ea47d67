"""The Create tab's References box: pictures that steer a generation through an IP-Adapter.

One row per reference: a thumbnail, its strength (0-2, as the job accepts) and whether it gives
its whole look or its style only. The style pack's own references are listed first, marked as the
style's, and switched on or off together; the artist's are added by dropping pictures on the box
or with Add…. The IP-Adapter and its image encoder are chosen as the Layout tab's ControlNet is: a
list of the catalog's, Browse for a file or folder, and "Get one…" for the Models page.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
    QPushButton, QSizePolicy, QSlider, QToolButton, QVBoxLayout,
)

from asset_studio.core.job import Reference
from asset_studio.core.stylepack import IMAGE_SUFFIXES
from asset_studio.gui.model.create_form import CreateForm

THUMB = 48
MODES = (("Full", "full"), ("Style only", "style"))
MODE_TIP = ("Full: the picture's character, content and style steer the image. Style only: just its colours, "
            "strokes and lighting (InstantStyle), so the pose and subject stay the prompt's.")
STRENGTH_TIP = "How strongly the picture steers: 0 ignores it, 0.5-0.8 keeps a character, above 1 copies it closely."


def thumbnail(path: str, side: int = THUMB) -> QPixmap:
    """A small picture of PATH, decoded at that size (a 4000-pixel reference stays cheap); an empty
    frame when it cannot be read."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and size.width() > 0 and size.height() > 0:
        reader.setScaledSize(size.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    pix = QPixmap(side, side)
    pix.fill(Qt.GlobalColor.transparent)
    if not image.isNull():
        from PySide6.QtGui import QPainter

        p = QPainter(pix)
        p.drawImage((side - image.width()) // 2, (side - image.height()) // 2, image)
        p.end()
    return pix


class NameLabel(QLabel):
    """A file name elided in the middle to the width it gets, then a grey TAG that is never cut."""

    def __init__(self, name: str, tag: str = ""):
        super().__init__()
        self._name, self._tag = name, tag
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.RichText)
        self._elide()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        from html import escape

        metrics = self.fontMetrics()
        tag = f" · {self._tag}" if self._tag else ""
        room = max(40, self.width() - metrics.horizontalAdvance(tag) - 6)
        name = escape(metrics.elidedText(self._name, Qt.TextElideMode.ElideMiddle, room))
        self.setText(f"{name}<span style='color: gray'>{escape(tag)}</span>" if tag else name)

    def plain_text(self) -> str:
        return self._name + (f" · {self._tag}" if self._tag else "")


class ReferenceRow(QFrame):
    """One reference: thumbnail, name, strength slider + spin box, mode, remove (the artist's only)."""

    scale_changed = Signal(float)
    mode_changed = Signal(str)
    remove_clicked = Signal()
    keep_clicked = Signal()  # "Keep in the style pack" (the artist's rows)

    def __init__(self, ref: Reference, from_style: bool):
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.thumb = QLabel()
        self.thumb.setFixedSize(THUMB, THUMB)
        self.thumb.setPixmap(thumbnail(ref.image))
        self.thumb.setToolTip(ref.image)
        self.name = NameLabel(Path(ref.image).name, "style's" if from_style else "")
        self.name.setToolTip(ref.image)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 200)
        self.slider.setToolTip(STRENGTH_TIP)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 2.0)
        self.spin.setSingleStep(0.05)
        self.spin.setDecimals(2)
        self.spin.setToolTip(STRENGTH_TIP)
        self.mode = QComboBox()
        for label, mode in MODES:
            self.mode.addItem(label, mode)
        self.mode.setToolTip(MODE_TIP)
        self.remove = QToolButton()
        self.remove.setText("✕")
        self.remove.setToolTip("Remove this reference.")
        policy = self.remove.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the style's rows line up with the artist's
        self.remove.setSizePolicy(policy)
        self.remove.setVisible(not from_style)
        self._show(ref)
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        grid.addWidget(self.thumb, 0, 0, 2, 1)
        grid.addWidget(self.name, 0, 1)
        grid.addWidget(self.mode, 0, 2)
        grid.addWidget(self.remove, 0, 3)
        grid.addWidget(self.slider, 1, 1)
        grid.addWidget(self.spin, 1, 2)
        grid.setColumnStretch(1, 1)
        if from_style:  # the style decides these; the switch above turns them on or off together
            for w in (self.slider, self.spin, self.mode):
                w.setEnabled(False)
                w.setToolTip("Set in the style pack (its style.toml); switch the style's references off to use your own.")
        self.slider.valueChanged.connect(lambda v: self.spin.setValue(v / 100))
        self.spin.valueChanged.connect(self._spun)
        self.mode.currentIndexChanged.connect(lambda _i: self.mode_changed.emit(self.mode.currentData()))
        self.remove.clicked.connect(self.remove_clicked)
        if not from_style:
            self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
            keep = QAction("Keep in the style pack", self)
            keep.setToolTip("Copy this picture into the chosen style pack: every asset of the style starts from it.")
            keep.triggered.connect(self.keep_clicked)
            self.addAction(keep)
            self.thumb.setToolTip(f"{ref.image}\nRight-click: keep it in the style pack.")

    def _show(self, ref: Reference) -> None:
        for w in (self.slider, self.spin, self.mode):
            w.blockSignals(True)
        self.slider.setValue(round(ref.scale * 100))
        self.spin.setValue(ref.scale)
        self.mode.setCurrentIndex(max(0, self.mode.findData(ref.mode)))
        for w in (self.slider, self.spin, self.mode):
            w.blockSignals(False)

    def _spun(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * 100))
        self.slider.blockSignals(False)
        self.scale_changed.emit(round(value, 3))


class ReferencesBox(QGroupBox):
    get_ip_adapter = Signal()  # "Get one…": the Models page with an IP-Adapter selected

    def __init__(self, form: CreateForm, start_dir=lambda: ""):
        super().__init__("References")
        self.form = form
        self.start_dir = start_dir  # where Add… opens (the Create tab's folder, which the window sets)
        self.rows: list[ReferenceRow] = []
        self._shown: tuple | None = None
        self.setAcceptDrops(True)
        self.setToolTip("Pictures that keep a character or a look across assets (IP-Adapter). Drop images here.")
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self._show_hint()
        self.style_switch = QCheckBox()
        self.style_switch.setToolTip("The style pack ships these references; switched off, only your own are used.")
        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(4)
        self.add_btn = QPushButton("Add…")
        self.add_btn.setToolTip("Add reference pictures (PNG, JPEG, WebP); dropping them on this box does the same.")
        self.adapter_combo = self.model_combo("choose one", "ip_adapter")
        self.encoder_combo = self.model_combo("automatic", "image_encoder")
        self.encoder_combo.lineEdit().setToolTip("Empty: the CLIP image encoder the adapter was trained with "
                                                 "(ViT-H, or ViT-bigG for the original SDXL adapter).")
        self.adapter_browse, self.encoder_browse = QToolButton(), QToolButton()
        for button, tip in ((self.adapter_browse, "Choose an IP-Adapter file (.safetensors) on this computer."),
                            (self.encoder_browse, "Choose an image encoder folder (config.json + model.safetensors).")):
            button.setText("…")
            button.setToolTip(tip)
        self.get_btn = QToolButton()
        self.get_btn.setText("Get one…")
        self.get_btn.setToolTip("Download an IP-Adapter (and its image encoder) on the Models page.")
        adapter_row, encoder_row = QHBoxLayout(), QHBoxLayout()
        adapter_row.addWidget(self.adapter_combo, 1)
        adapter_row.addWidget(self.adapter_browse)
        adapter_row.addWidget(self.get_btn)
        encoder_row.addWidget(self.encoder_combo, 1)
        encoder_row.addWidget(self.encoder_browse)
        models = QFormLayout()
        models.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        models.addRow("Adapter", adapter_row)
        models.addRow("Encoder", encoder_row)
        top = QHBoxLayout()
        top.addWidget(self.hint, 1)
        top.addWidget(self.add_btn)
        column = QVBoxLayout(self)
        column.addLayout(top)
        column.addWidget(self.style_switch)
        column.addLayout(self.rows_box)
        column.addLayout(models)
        self.show_choice(self.adapter_combo, form.ip_adapter)
        self.show_choice(self.encoder_combo, form.image_encoder)
        self._bind()
        self.refresh()

    @staticmethod
    def model_combo(placeholder: str, kind: str) -> QComboBox:
        """An editable box listing the catalog's entries of KIND (the Create tab's other model choices use it too)."""
        from asset_studio.core.models import load_catalog
        from asset_studio.errors import UserError

        combo = QComboBox()
        combo.setEditable(True)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        combo.lineEdit().setPlaceholderText(placeholder)
        combo.setMinimumContentsLength(12)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        try:
            entries = [e for e in load_catalog() if e.kind == kind]
        except UserError:
            entries = []
        for entry in entries:
            combo.addItem(entry.name, entry.id)
            combo.setItemData(combo.count() - 1, entry.description, Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(-1)
        combo.setToolTip("A catalog id (downloaded on the Models page), a file or a folder.")
        return combo

    @staticmethod
    def chosen(combo: QComboBox) -> str:
        """The catalog id of a listed entry, else the text typed (a path)."""
        index, text = combo.currentIndex(), combo.currentText().strip()
        if index >= 0 and text == combo.itemText(index):
            return combo.itemData(index) or ""
        return text

    @staticmethod
    def show_choice(combo: QComboBox, ref: str) -> None:
        index = combo.findData(ref) if ref else -1
        if index >= 0:
            combo.setCurrentIndex(index)
        else:
            combo.setCurrentIndex(-1)
            combo.setEditText(ref)

    def _bind(self) -> None:
        f = self.form
        self.add_btn.clicked.connect(self._add)
        self.style_switch.toggled.connect(lambda on: setattr(f, "use_style_references", on))
        self.adapter_combo.currentTextChanged.connect(lambda _t: setattr(f, "ip_adapter", self.chosen(self.adapter_combo)))
        self.encoder_combo.currentTextChanged.connect(lambda _t: setattr(f, "image_encoder", self.chosen(self.encoder_combo)))
        self.adapter_browse.clicked.connect(self._browse_adapter)
        self.encoder_browse.clicked.connect(self._browse_encoder)
        self.get_btn.clicked.connect(self.get_ip_adapter)
        f.changed.connect(self._changed)

    def _changed(self, name: str) -> None:
        if name in ("references", "style_id", "use_style_references"):
            self.refresh()
        elif name == "ip_adapter" and self.chosen(self.adapter_combo) != self.form.ip_adapter:
            self.show_choice(self.adapter_combo, self.form.ip_adapter)
        elif name == "image_encoder" and self.chosen(self.encoder_combo) != self.form.image_encoder:
            self.show_choice(self.encoder_combo, self.form.image_encoder)

    def refresh(self) -> None:
        """Rows for the style's references and the artist's; rebuilt only when what they show changed."""
        f = self.form
        style_refs, own = f.style_references(), f.references
        shown = (tuple(r.image for r in style_refs), tuple(r.image for r in own))
        self.style_switch.setVisible(bool(style_refs))
        self.style_switch.blockSignals(True)
        self.style_switch.setChecked(f.use_style_references)
        self.style_switch.blockSignals(False)
        pack = f.current_style()
        self.style_switch.setText(f"Use the style's references ({len(style_refs)}, from {pack.name})" if pack else "")
        adapter, _encoder = f.style_ip_adapter()
        self.adapter_combo.lineEdit().setPlaceholderText(f"style's: {Path(adapter).name}" if adapter else "choose one")
        self.adapter_combo.lineEdit().setToolTip(
            f"Empty: the style's IP-Adapter, {adapter}." if adapter else
            "The IP-Adapter that reads the pictures: a catalog id (downloaded on the Models page) or a .safetensors file.")
        if shown == self._shown:  # the same pictures: update the rows in place (a dragged slider keeps its grip)
            for row, ref in zip(self.rows, style_refs + own):
                row._show(ref)
            for row in self.rows[:len(style_refs)]:
                row.setEnabled(f.use_style_references)
            return
        self._shown = shown
        for row in self.rows:
            self.rows_box.removeWidget(row)
            row.hide()  # deleted when the event loop next runs; never painted in the meantime
            row.deleteLater()
        self.rows = []
        for ref in style_refs:
            row = ReferenceRow(ref, from_style=True)
            row.setEnabled(f.use_style_references)
            self._add_row(row)
        for i, ref in enumerate(own):
            row = ReferenceRow(ref, from_style=False)
            row.scale_changed.connect(lambda v, i=i: f.set_reference_scale(i, v))
            row.mode_changed.connect(lambda m, i=i: f.set_reference_mode(i, m))
            row.remove_clicked.connect(lambda i=i: f.remove_reference(i))
            row.keep_clicked.connect(lambda i=i: f.keep_in_style(i))
            self._add_row(row)

    def _add_row(self, row: ReferenceRow) -> None:
        from asset_studio.gui.ui.wheel_guard import guard_wheel

        guard_wheel(row)  # the wheel scrolls the form past a row; it changes only a focused control
        self.rows.append(row)
        self.rows_box.addWidget(row)

    # --- adding pictures -------------------------------------------------------------------------

    def _add(self) -> None:
        patterns = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(self, "Add reference pictures", self.start_dir(), f"Images ({patterns})")
        if paths:
            self.form.add_references(paths)

    @staticmethod
    def _pictures(event) -> list[str]:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        return [u.toLocalFile() for u in urls if u.isLocalFile() and u.toLocalFile().lower().endswith(IMAGE_SUFFIXES)]

    def _show_hint(self, dropping: int = 0) -> None:
        """The line above the rows; while pictures are dragged over the box, what a drop will do."""
        if dropping:
            self.hint.setText(f"Release to add {dropping} picture{'s' if dropping > 1 else ''}.")
            self.hint.setStyleSheet("color: palette(highlight); font-size: 11px; font-weight: bold;")
        else:
            self.hint.setText("Drop pictures here to keep a character or a look (IP-Adapter).")
            self.hint.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        pictures = self._pictures(event)
        if pictures:
            self._show_hint(len(pictures))
            event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self._show_hint()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if self._pictures(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        self._show_hint()
        paths = self._pictures(event)
        if paths:
            self.form.add_references(paths)
            event.acceptProposedAction()

    def _browse_adapter(self) -> None:
        from asset_studio.core.models import DEFAULT_MODELS_DIR

        path, _ = QFileDialog.getOpenFileName(self, "IP-Adapter", str(DEFAULT_MODELS_DIR), "IP-Adapter (*.safetensors)")
        if path:
            self.form.ip_adapter = path

    def _browse_encoder(self) -> None:
        from asset_studio.core.models import DEFAULT_MODELS_DIR

        path = QFileDialog.getExistingDirectory(self, "Image encoder folder", str(DEFAULT_MODELS_DIR))
        if path:
            self.form.image_encoder = path
