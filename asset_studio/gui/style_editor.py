"""The style pack editor: create, duplicate and edit packs, drop LoRAs in, export and import .stylepack.

Packs are edited in the user's styles folder. Saving a bundled pack writes an edited copy there
(which shadows the bundled one); the bundled folder is never written. Every save goes through
core.stylepack.save_stylepack, which refuses a pack that would not load back.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
    QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPlainTextEdit, QPushButton, QScrollArea,
    QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from asset_studio.gui.ui.dialogs import start_in
from asset_studio.core import packfile
from asset_studio.core.safetensors_header import read_header_file
from asset_studio.core import families
from asset_studio.core.stylepack import (
    FAMILIES, SEED_POLICIES, Defaults, LoraEntry, PostProcess, StylePack,
    list_styles, load_stylepack, save_stylepack, user_styles_dir,
)
from asset_studio.errors import UserError
from asset_studio.gui.model.pack_rename import id_for_name, move_pack
from asset_studio.gui.model.pack_rename import unique_id as _unique_id
from asset_studio.gui.model.style_previews import is_user_pack

MAX_LORA_BYTES = packfile.Limits().max_file_bytes
NEW_PROMPT = "{subject}, game asset, clean shapes, plain background"


def style_icon(pack: StylePack | None, size: int = 48) -> QIcon:
    """The pack's first preview, or a swatch with its initials when it ships none."""
    if pack is not None and pack.previews and pack.folder is not None:
        pix = QPixmap(str(Path(pack.folder) / pack.previews[0]))
        if not pix.isNull():
            return QIcon(pix.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                    Qt.TransformationMode.SmoothTransformation))
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    hue = (sum(map(ord, pack.id)) * 47 % 360) if pack else 220
    p.setBrush(QColor.fromHsv(hue, 110 if pack else 0, 150))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(2, 2, size - 4, size - 4, 8, 8)
    p.setPen(QColor(255, 255, 255))
    font = p.font()
    font.setBold(True)
    font.setPixelSize(size // 3)
    p.setFont(font)
    initials = "".join(w[0] for w in pack.name.split()[:2]).upper() if pack else "—"
    p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, initials)
    p.end()
    return QIcon(pix)


class LoraDropTable(QTableWidget):
    """The pack's LoRAs; dropping .safetensors files onto it adds them."""

    files_dropped = Signal(list)

    def __init__(self):
        super().__init__(0, 3)
        self.setHorizontalHeaderLabels(["LoRA file", "Weight", "Trigger words (comma separated)"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setToolTip("Drop a LoRA .safetensors file here to copy it into the pack.")
        self.setMinimumHeight(110)

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.rowCount() == 0:
            p = QPainter(self.viewport())
            p.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            p.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                       "No LoRA: the look comes from the prompt.\nDrop a LoRA .safetensors file here to add one.")
            p.end()

    def _files(self, event) -> list[Path]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]

    def dragEnterEvent(self, event) -> None:
        if any(p.suffix.lower() == ".safetensors" for p in self._files(event)):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        files = self._files(event)
        if files:
            event.acceptProposedAction()
            self.files_dropped.emit(files)


class StyleEditor(QWidget):
    styles_changed = Signal()
    message = Signal(str)
    pack_renamed = Signal(str, str)  # old id, new id: a saved pack's id changed and its folder moved

    def __init__(self, parent=None):
        super().__init__(parent)
        self.packs: list[StylePack] = []
        self.pack: StylePack | None = None  # the pack being edited (a working copy)
        self._pending_loras: list[Path] = []  # dropped before the pack has a folder of its own
        self.models_dir = ""  # where "Add a LoRA" opens (the window sets the models folder)
        self.export_dir = ""  # where Export opens (the window sets the output folder)

        # list side
        self.list = QListWidget()
        self.list.setSpacing(3)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setIconSize(QSize(36, 36))
        self.list.currentRowChanged.connect(self._select)
        self.new_btn = QPushButton("New")
        self.dup_btn = QPushButton("Duplicate")
        self.import_btn = QPushButton("Import…")
        self.export_btn = QPushButton("Export…")
        self.new_btn.setToolTip("Start a new style pack.")
        self.dup_btn.setToolTip("Copy the selected pack (with its LoRAs and previews) under a new id.")
        self.import_btn.setToolTip("Install a .stylepack file shared by someone (checked before anything is written).")
        self.export_btn.setToolTip("Save the selected pack as one .stylepack file to share.")
        self.new_btn.clicked.connect(self.new_pack)
        self.dup_btn.clicked.connect(self.duplicate)
        self.import_btn.clicked.connect(self._import_dialog)
        self.export_btn.clicked.connect(self._export_dialog)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("Style packs"))
        ll.addWidget(self.list, 1)
        grid = QHBoxLayout()
        grid.addWidget(self.new_btn)
        grid.addWidget(self.dup_btn)
        ll.addLayout(grid)
        grid2 = QHBoxLayout()
        grid2.addWidget(self.import_btn)
        grid2.addWidget(self.export_btn)
        ll.addLayout(grid2)

        # form side
        self.id_edit = QLineEdit()
        self.id_edit.setToolTip("A short id: lower-case letters, digits, '-' or '_'. Jobs and files refer to it.")
        self.name_edit = QLineEdit()
        self.version_edit = QLineEdit()
        self.author_edit = QLineEdit()
        self.license_edit = QLineEdit()
        self.license_edit.setPlaceholderText("e.g. CC0-1.0, CC-BY-4.0")
        self.family_combo = QComboBox()
        for fam in FAMILIES:
            self.family_combo.addItem(families.label(fam), fam)
        self.family_combo.setToolTip("The base model family the pack (and its LoRAs) is made for.")
        self.models_edit = QLineEdit()
        self.models_edit.setToolTip("Recommended models, comma separated: repo ids, file names in models/, or paths.")
        self.desc_edit = QPlainTextEdit()
        self.desc_edit.setFixedHeight(60)
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setFixedHeight(60)
        self.prompt_edit.setToolTip("The style's prompt; {subject} is replaced by the asset (and template) text.")
        self.negative_edit = QPlainTextEdit()
        self.negative_edit.setFixedHeight(50)

        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 150)
        self.steps_spin.setSpecialValueText("engine default")
        self.cfg_spin = QDoubleSpinBox()
        self.cfg_spin.setRange(-0.5, 30.0)
        self.cfg_spin.setSingleStep(0.5)
        self.cfg_spin.setSpecialValueText("engine default")
        self.cfg_spin.setToolTip("CFG scale: how strictly images follow the prompt (7 is usual; Turbo models want 0-2).")
        self.sampler_edit = QComboBox()
        self.sampler_edit.setEditable(True)
        from asset_studio.core.samplers import sampler_names  # plain data, no torch

        self.sampler_edit.addItems(["", *sampler_names()])
        self.width_spin = QSpinBox()
        self.width_spin.setRange(0, 4096)
        self.width_spin.setSingleStep(64)
        self.width_spin.setSpecialValueText("family default")
        self.height_spin = QSpinBox()
        self.height_spin.setRange(0, 4096)
        self.height_spin.setSingleStep(64)
        self.height_spin.setSpecialValueText("family default")
        self.seed_policy = QComboBox()
        self.seed_policy.addItems(list(SEED_POLICIES))
        self.seed_policy.setToolTip("per-asset: each subject always gets the same seed; fixed: one seed; random: new each time.")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.remove_bg = QCheckBox("Remove background")
        self.trim = QCheckBox("Trim transparent edges")
        self.grid_spin = QSpinBox()
        self.grid_spin.setRange(0, 1024)
        self.grid_spin.setSpecialValueText("off")
        self.grid_spin.setToolTip("Snap to a pixel grid this many pixels across (pixel art); 0 = off.")
        self.palette_spin = QSpinBox()
        self.palette_spin.setRange(0, 256)
        self.palette_spin.setSpecialValueText("off")
        self.palette_spin.setToolTip("Reduce to this many colours; 0 = off.")

        self.loras = LoraDropTable()
        self.loras.files_dropped.connect(self.add_loras)
        self.add_lora_btn = QPushButton("Add LoRA…")
        self.remove_lora_btn = QPushButton("Remove LoRA")
        self.add_lora_btn.clicked.connect(self._add_lora_dialog)
        self.remove_lora_btn.clicked.connect(self._remove_lora)
        self.save_btn = QPushButton("Save")
        self.save_btn.setToolTip("Save the pack into your styles folder.")
        self.save_btn.clicked.connect(self.save)
        self.where = QLabel()
        self.where.setWordWrap(True)
        self.where.setStyleSheet("color: palette(placeholder-text);")

        ident = QGroupBox("Pack")
        f1 = QFormLayout(ident)
        f1.addRow("Id", self.id_edit)
        f1.addRow("Name", self.name_edit)
        f1.addRow("Version", self.version_edit)
        f1.addRow("Author", self.author_edit)
        f1.addRow("License", self.license_edit)
        f1.addRow("Family", self.family_combo)
        f1.addRow("Models", self.models_edit)
        f1.addRow("Description", self.desc_edit)
        prompt_box = QGroupBox("Prompt")
        f2 = QFormLayout(prompt_box)
        f2.addRow("Prompt", self.prompt_edit)
        f2.addRow("Negative", self.negative_edit)
        defaults_box = QGroupBox("Defaults")
        f3 = QFormLayout(defaults_box)
        f3.addRow("Steps", self.steps_spin)
        f3.addRow("CFG", self.cfg_spin)
        f3.addRow("Sampler", self.sampler_edit)
        size = QHBoxLayout()
        size.addWidget(self.width_spin)
        size.addWidget(QLabel("×"))
        size.addWidget(self.height_spin)
        f3.addRow("Size", size)
        f3.addRow("Seed policy", self.seed_policy)
        f3.addRow("Seed", self.seed_spin)
        post_box = QGroupBox("Post-processing")
        f4 = QFormLayout(post_box)
        f4.addRow(self.remove_bg)
        f4.addRow(self.trim)
        f4.addRow("Pixel grid", self.grid_spin)
        f4.addRow("Palette", self.palette_spin)
        lora_box = QGroupBox("LoRAs (drop .safetensors files here)")
        lb = QVBoxLayout(lora_box)
        lb.addWidget(self.loras)
        lr = QHBoxLayout()
        lr.addWidget(self.add_lora_btn)
        lr.addWidget(self.remove_lora_btn)
        lr.addStretch(1)
        lb.addLayout(lr)

        cols = QHBoxLayout()
        c1 = QVBoxLayout()
        c1.addWidget(ident)
        c1.addWidget(prompt_box)
        c1.addStretch(1)
        c2 = QVBoxLayout()
        c2.addWidget(defaults_box)
        c2.addWidget(post_box)
        c2.addStretch(1)
        cols.addLayout(c1, 3)
        cols.addLayout(c2, 2)
        form = QWidget()
        fl = QVBoxLayout(form)
        fl.addLayout(cols)
        fl.addWidget(lora_box)
        bottom = QHBoxLayout()
        bottom.addWidget(self.where, 1)
        bottom.addWidget(self.save_btn)
        fl.addLayout(bottom)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._dirty = False
        self._filling = False
        self._id_typed = False  # the artist typed the id: a new name no longer renames it
        self._watch(form)
        self.reload()

    # --- unsaved changes ----------------------------------------------------------------------

    def _watch(self, form: QWidget) -> None:
        """Any edit of the form marks the pack unsaved (the Save button and the title say so)."""
        from PySide6.QtWidgets import QAbstractSpinBox, QCheckBox, QComboBox, QPlainTextEdit

        for w in form.findChildren(QWidget):
            signal = (w.textChanged if isinstance(w, (QLineEdit, QPlainTextEdit)) else
                      w.currentTextChanged if isinstance(w, QComboBox) else
                      w.toggled if isinstance(w, QCheckBox) else
                      w.editingFinished if isinstance(w, QAbstractSpinBox) else None)
            if signal is not None:
                signal.connect(self._edited)
        self.loras.itemChanged.connect(self._edited)
        self.id_edit.textEdited.connect(lambda _t: setattr(self, "_id_typed", True))
        self.name_edit.textEdited.connect(self._name_edited)

    def _edited(self, *_args) -> None:
        if not self._filling:
            self.set_dirty(True)

    def _name_edited(self, name: str) -> None:
        # The id follows the name ("My Pixels" → my-pixels) until the artist types an id; a saved
        # pack renamed this way moves to its new id's folder on Save (pack_rename.move_pack).
        if self._id_typed:
            return
        own = self.pack.id if self.pack is not None and self.pack.folder is not None and is_user_pack(self.pack) else None
        self.id_edit.setText(id_for_name(name, {p.id for p in self.packs}, current=own))

    def is_dirty(self) -> bool:
        return self._dirty

    def set_dirty(self, dirty: bool) -> None:
        self._dirty = bool(dirty)
        self.save_btn.setText("Save •" if dirty else "Save")
        self.save_btn.setToolTip("Unsaved changes: save the pack into your styles folder." if dirty
                                 else "Save the pack into your styles folder.")

    # --- list -------------------------------------------------------------------------------

    def reload(self, select_id: str | None = None) -> None:
        keep = select_id or (self.pack.id if self.pack else None)
        self.packs = list_styles()
        self.list.blockSignals(True)
        self.list.clear()
        for pack in self.packs:
            item = QListWidgetItem(f"{pack.name}\n{pack.id} · {pack.family_name}" + ("" if is_user_pack(pack) else " · bundled"))
            item.setIcon(style_icon(pack, 36))
            item.setData(Qt.ItemDataRole.UserRole, pack.id)
            self.list.addItem(item)
        self.list.blockSignals(False)
        ids = [p.id for p in self.packs]
        if keep in ids:
            self.list.setCurrentRow(ids.index(keep))
        elif self.packs and self.pack is None:
            self.list.setCurrentRow(0)
        self.dup_btn.setEnabled(bool(self.packs))
        self.export_btn.setEnabled(bool(self.packs))

    def _select(self, row: int) -> None:
        if 0 <= row < len(self.packs):
            self.edit(self.packs[row])

    def edit(self, pack: StylePack) -> None:
        self.pack = copy.deepcopy(pack)
        self._pending_loras = []
        self._filling = True
        try:
            self._fill(self.pack)
        finally:
            self._filling = False
        self._id_typed = False
        self.set_dirty(False)

    # --- form <-> pack ----------------------------------------------------------------------

    def _fill(self, p: StylePack) -> None:
        self.id_edit.setText(p.id)
        self.name_edit.setText(p.name)
        self.version_edit.setText(p.version)
        self.author_edit.setText(p.author)
        self.license_edit.setText(p.license)
        self.family_combo.setCurrentIndex(max(0, self.family_combo.findData(p.family)))
        self.models_edit.setText(", ".join(p.recommended_models))
        self.desc_edit.setPlainText(p.description)
        self.prompt_edit.setPlainText(p.prompt)
        self.negative_edit.setPlainText(p.negative)
        d = p.defaults
        self.steps_spin.setValue(d.steps or 0)
        self.cfg_spin.setValue(d.cfg_scale if d.cfg_scale is not None else -0.5)
        self.sampler_edit.setCurrentText(d.sampler or "")
        self.width_spin.setValue(d.width or 0)
        self.height_spin.setValue(d.height or 0)
        self.seed_policy.setCurrentText(d.seed_policy)
        self.seed_spin.setValue(min(d.seed, 2**31 - 1))
        pp = p.postprocess
        self.remove_bg.setChecked(bool(pp.remove_background))
        self.trim.setChecked(bool(pp.trim))
        self.grid_spin.setValue(pp.pixel_grid or 0)
        self.palette_spin.setValue(pp.palette_size or 0)
        self.loras.setRowCount(0)
        for lora in p.loras:
            self._add_lora_row(lora.file or f"{lora.repo}/{lora.filename}", lora.weight, lora.trigger_words,
                               editable_name=False)
        if p.folder is None:
            self.where.setText("Not saved yet.")
        elif is_user_pack(p):
            self.where.setText(f"Saved in {p.folder}")
        else:
            self.where.setText(f"Bundled pack ({p.folder}); saving writes your own copy to {user_styles_dir()}.")

    def _add_lora_row(self, name: str, weight: float, triggers: list[str], editable_name: bool) -> None:
        row = self.loras.rowCount()
        self.loras.insertRow(row)
        item = QTableWidgetItem(name)
        if not editable_name:
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.loras.setItem(row, 0, item)
        spin = QDoubleSpinBox()
        spin.setRange(-5.0, 5.0)
        spin.setSingleStep(0.05)
        spin.setValue(weight)
        spin.setToolTip("LoRA weight: 1 is as trained; 0.5-0.8 blends it with the base model.")
        self.loras.setCellWidget(row, 1, spin)
        self.loras.setItem(row, 2, QTableWidgetItem(", ".join(triggers)))

    def collect(self) -> StylePack:
        """The pack the form describes (not yet saved); raises UserError for an invalid form."""
        base = self.pack or StylePack(id="", name="", prompt=NEW_PROMPT)
        text = lambda e: e.text().strip()  # noqa: E731
        d = Defaults(
            steps=self.steps_spin.value() or None,
            cfg_scale=None if self.cfg_spin.value() < 0 else round(self.cfg_spin.value(), 2),
            sampler=self.sampler_edit.currentText().strip() or None,
            width=self.width_spin.value() or None,
            height=self.height_spin.value() or None,
            clip_skip=base.defaults.clip_skip,
            seed_policy=self.seed_policy.currentText(),
            seed=self.seed_spin.value(),
        )
        pp = PostProcess(
            remove_background=self.remove_bg.isChecked(),
            trim=self.trim.isChecked(),
            pixel_grid=self.grid_spin.value(),
            palette_size=self.palette_spin.value(),
        )
        loras = []
        for row in range(self.loras.rowCount()):
            old = base.loras[row] if row < len(base.loras) else LoraEntry(file=self.loras.item(row, 0).text())
            entry = copy.deepcopy(old)
            entry.weight = round(self.loras.cellWidget(row, 1).value(), 3)
            triggers = self.loras.item(row, 2).text() if self.loras.item(row, 2) else ""
            entry.trigger_words = [w.strip() for w in triggers.split(",") if w.strip()]
            loras.append(entry)
        pack = StylePack(
            id=text(self.id_edit), name=text(self.name_edit), prompt=self.prompt_edit.toPlainText().strip(),
            version=text(self.version_edit) or "1.0.0", author=text(self.author_edit),
            license=text(self.license_edit), description=self.desc_edit.toPlainText().strip(),
            family=self.family_combo.currentData(),
            recommended_models=[m.strip() for m in self.models_edit.text().split(",") if m.strip()],
            negative=self.negative_edit.toPlainText().strip(), fields=copy.deepcopy(base.fields),
            loras=loras, defaults=d, postprocess=pp, previews=list(base.previews), folder=base.folder,
            references=copy.deepcopy(base.references), ip_adapter=base.ip_adapter, image_encoder=base.image_encoder,
        )
        from asset_studio.core.stylepack import parse_stylepack

        parse_stylepack(pack.to_toml_dict())  # the schema's own sentence for a bad field
        return pack

    # --- actions ----------------------------------------------------------------------------

    def new_pack(self) -> None:
        taken = {p.id for p in self.packs}
        pack = StylePack(id=_unique_id("my-style", taken), name="My style", prompt=NEW_PROMPT,
                         negative="blurry, watermark, text")
        self.list.clearSelection()
        self.edit(pack)
        self.id_edit.setFocus()

    def duplicate(self) -> None:
        if self.pack is None:
            return
        taken = {p.id for p in self.packs}
        new = copy.deepcopy(self.pack)
        new.id = _unique_id(f"{self.pack.id}-copy", taken)
        new.name = f"{self.pack.name} (copy)"
        source = self.pack.folder
        target = user_styles_dir() / new.id
        try:
            if source is not None:
                shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"))
            save_stylepack(new, target)
        except (OSError, UserError) as exc:
            shutil.rmtree(target, ignore_errors=True)
            self._say(f"Could not duplicate the pack: {exc}")
            return
        self._say(f"Duplicated as {new.id}.")
        self._saved(new.id)

    def save(self) -> Path | None:
        """Save the form into the user's styles folder; returns the pack folder, or None on an error."""
        try:
            pack = self.collect()
        except UserError as exc:
            self._say(str(exc))
            return None
        old = self.pack
        target = user_styles_dir() / pack.id
        own = old is not None and old.folder is not None and is_user_pack(old)
        renamed = own and old.id != pack.id
        if own and not renamed:
            target = Path(old.folder)
        elif renamed:
            try:  # the artist's own pack moves to its new id (never over another pack)
                target = move_pack(Path(old.folder), pack.id)
            except (OSError, UserError) as exc:
                self._say(f"Could not rename the pack: {exc}")
                return None
        elif target.exists() and (old is None or old.folder is None or Path(old.folder).resolve() != target.resolve()):
            self._say(f"A pack with the id '{pack.id}' already exists in {user_styles_dir()}; choose another id.")
            return None
        try:
            if not renamed and old is not None and old.folder is not None and Path(old.folder).resolve() != target.resolve():
                # Copy the pack's files (LoRAs, previews) along with it: a bundled pack or a renamed id.
                shutil.copytree(old.folder, target, ignore=shutil.ignore_patterns(".*", "style.toml"),
                                dirs_exist_ok=True)
            target.mkdir(parents=True, exist_ok=True)
            for src in self._pending_loras:
                self._copy_lora(src, target)
            save_stylepack(pack, target)
            load_stylepack(target)  # and it loads back, files included
        except (OSError, UserError) as exc:
            if renamed:  # back where it was, under its old id
                try:
                    move_pack(target, old.id, Path(old.folder).parent)
                except (OSError, UserError):
                    pass
            self._say(f"Could not save the pack: {exc}")
            return None
        self._pending_loras = []
        self.set_dirty(False)
        self._id_typed = False
        if renamed:
            self.pack_renamed.emit(old.id, pack.id)
        self._say(f"Saved {pack.name} to {target}" + (f" (renamed from {old.id})." if renamed else "."))
        self._saved(pack.id)
        return target

    def _saved(self, pack_id: str) -> None:
        self.pack = None
        self.reload(select_id=pack_id)
        self.styles_changed.emit()

    def add_loras(self, files: list) -> None:
        """Add dropped LoRA files: checked now, copied into the pack's loras/ folder on save."""
        for src in map(Path, files):
            try:
                header = read_header_file(src, max_bytes=MAX_LORA_BYTES)
            except UserError as exc:
                self._say(str(exc))
                continue
            if not any("lora" in k.lower() for k in header.tensors):
                self._say(f"{src.name} has no LoRA weights in it; is it a full model?")
                continue
            rel = f"loras/{src.name}"
            if self.pack is None:
                self.new_pack()
            if any(l.file == rel for l in self.pack.loras):
                self._say(f"{src.name} is already in the pack.")
                continue
            self.pack.loras.append(LoraEntry(file=rel, weight=1.0))
            self._pending_loras.append(src)
            self._add_lora_row(rel, 1.0, [], editable_name=False)
            self._say(f"Added {src.name}; it is copied into the pack when you save.")

    def _copy_lora(self, src: Path, folder: Path) -> None:
        dest = folder / "loras" / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            tmp = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(src, tmp)
            tmp.replace(dest)

    def _add_lora_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add a LoRA", start_in(self.models_dir), "LoRA weights (*.safetensors)")
        if paths:
            self.add_loras([Path(p) for p in paths])

    def _remove_lora(self) -> None:
        row = self.loras.currentRow()
        if row < 0 or self.pack is None:
            return
        self.loras.removeRow(row)
        if row < len(self.pack.loras):
            removed = self.pack.loras.pop(row)
            self._pending_loras = [p for p in self._pending_loras if f"loras/{p.name}" != removed.file]

    def export_to(self, out: Path) -> Path | None:
        if self.pack is None or self.pack.folder is None:
            self._say("Save the pack before exporting it.")
            return None
        try:
            path = packfile.export_stylepack(load_stylepack(self.pack.folder), out)
        except UserError as exc:
            self._say(str(exc))
            return None
        self._say(f"Exported {path}.")
        return path

    def import_from(self, path: Path) -> StylePack | None:
        try:
            result = packfile.import_stylepack(path)
        except UserError as exc:
            self._say(str(exc))
            return None
        note = f" as {result.pack.id} (an installed pack already had the id {result.renamed_from})" \
            if result.renamed_from else ""
        self._say(f"Imported {result.pack.name}{note}.")
        self._saved(result.pack.id)
        return result.pack

    def _export_dialog(self) -> None:
        if self.pack is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export style pack", start_in(self.export_dir, f"{self.pack.id}{packfile.SUFFIX}"),
                                              f"Style packs (*{packfile.SUFFIX})")
        if path:
            self.export_to(Path(path))

    def _import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import style pack", start_in(None), f"Style packs (*{packfile.SUFFIX})")
        if path:
            self.import_from(Path(path))

    def _say(self, text: str) -> None:
        self.where.setText(text)
        self.message.emit(text)
