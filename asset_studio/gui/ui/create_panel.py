"""The Create tab's form: widgets bound to a CreateForm (and the generate bar bound to the JobQueue).

Edits go to the form model; the model's changes come back to the widgets. `_syncing` marks the
second direction, so a value the style fills in is not mistaken for the artist's own edit.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QLayout,
    QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSpinBox, QToolButton, QVBoxLayout, QWidget,
)

from asset_studio.core.stylepack import StylePack
from asset_studio.core.samplers import sampler_names  # plain data: no torch
from asset_studio.gui.model.create_form import MAX_SEED, CreateForm
from asset_studio.gui.model.queue import CANCELLED, DONE, FAILED, JobQueue
from asset_studio.gui.style_editor import style_icon
from asset_studio.gui.ui.queue_view import QueueView
from asset_studio.gui.ui.tips import TIPS


def _spin(lo: int, hi: int, value: int, step: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def _double(lo: float, hi: float, value: float, step: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def fmt_time(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class CreatePanel(QWidget):
    generate_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, form: CreateForm, queue: JobQueue):
        super().__init__()
        self.form = form
        self.queue = queue
        self._syncing = False
        self._field_edits: dict[str, QLineEdit] = {}
        self._t_first_step: float | None = None
        self._first_step = 0
        self._shown_job: int | None = None  # the job the progress bar shows
        host = QWidget()
        outer = QVBoxLayout(host)
        outer.setContentsMargins(8, 8, 8, 8)
        # Word-wrapped labels under-report their height; never squeeze the form below its minimum.
        outer.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        outer.addWidget(self._style_box())
        outer.addWidget(self._asset_box())
        outer.addWidget(self._params_box())
        outer.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(host)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        host.setMinimumWidth(340)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(scroll, 1)
        layout.addWidget(self._generate_bar())
        self._bind()
        self._fill_styles()
        self._fill_templates()
        self._rebuild_fields()
        for name in ("subject", "extra_prompt", "negative", "model", "width", "height", "size_auto", "steps",
                     "cfg_scale", "sampler", "seed", "seed_locked", "count", "init_image", "denoise", "lora_weight"):
            self._sync(name)
        self._show_style()

    # --- building ------------------------------------------------------------------------------

    def _style_box(self) -> QGroupBox:
        box = QGroupBox("Style pack")
        sl = QVBoxLayout(box)
        self.style_combo = QComboBox()
        self.style_combo.setIconSize(QSize(40, 40))
        self.style_combo.setToolTip("The style pack keeps every asset in one look: prompt wording, LoRAs, settings.")
        self.style_previews = QLabel()
        self.style_previews.setFixedHeight(68)
        self.style_previews.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.style_desc = QLabel()
        self.style_desc.setWordWrap(True)
        self.style_desc.setStyleSheet("color: palette(placeholder-text);")
        # A fixed four lines: a word-wrapped label's height-for-width confuses the scrolled form.
        self.style_desc.setFixedHeight(self.style_desc.fontMetrics().lineSpacing() * 4 + 6)
        self.style_desc.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.lora_weight = _double(-2.0, 3.0, 1.0, 0.05, TIPS["lora"])
        self.lora_label = QLabel("LoRA weight")
        self.lora_label.setToolTip(TIPS["lora"])
        row = QHBoxLayout()
        row.addWidget(self.lora_label)
        row.addWidget(self.lora_weight)
        row.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.style_previews)
        top.addWidget(self.style_desc, 1)
        sl.addWidget(self.style_combo)
        sl.addLayout(top)
        sl.addLayout(row)
        return box

    def _asset_box(self) -> QGroupBox:
        box = QGroupBox("Asset")
        al = QFormLayout(box)
        al.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.template_combo = QComboBox()
        self.template_combo.setToolTip("The kind of asset: it shapes the prompt, the aspect and the post-processing.")
        self.subject_edit = QLineEdit()
        self.subject_edit.setPlaceholderText("health potion")
        self.subject_edit.setToolTip(TIPS["subject"])
        self.fields_host = QWidget()
        self.fields_layout = QFormLayout(self.fields_host)
        self.fields_layout.setContentsMargins(0, 0, 0, 0)
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setPlaceholderText("optional extra words: glowing, gold trim…")
        self.prompt_edit.setToolTip(TIPS["extra"])
        self.prompt_edit.setFixedHeight(54)
        self.negative_edit = QPlainTextEdit()
        self.negative_edit.setPlaceholderText("optional: things to avoid")
        self.negative_edit.setToolTip(TIPS["negative"])
        self.negative_edit.setFixedHeight(54)
        self.final_prompt = QLabel()
        self.final_prompt.setWordWrap(True)
        self.final_prompt.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.final_prompt.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        al.addRow("Template", self.template_combo)
        al.addRow("Subject", self.subject_edit)
        al.addRow(self.fields_host)
        al.addRow("Prompt", self.prompt_edit)
        al.addRow("Negative", self.negative_edit)
        al.addRow(self.final_prompt)
        return box

    def _params_box(self) -> QGroupBox:
        box = QGroupBox("Parameters")
        pl = QFormLayout(box)
        pl.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.setToolTip(TIPS["model"])
        self.model_combo.lineEdit().setPlaceholderText("the style's recommended model")
        self.width_spin = _spin(64, 2048, 512, 8, TIPS["size"])
        self.height_spin = _spin(64, 2048, 512, 8, TIPS["size"])
        self.size_auto_btn = QToolButton()
        self.size_auto_btn.setText("Auto")
        self.size_auto_btn.setCheckable(True)
        self.size_auto_btn.setToolTip(TIPS["size_auto"])
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        size_row.addWidget(self.size_auto_btn)
        self.steps_spin = _spin(1, 150, 25, 1, TIPS["steps"])
        self.cfg_spin = _double(0.0, 30.0, 7.0, 0.5, TIPS["cfg"])
        self.sampler_combo = QComboBox()
        self.sampler_combo.addItems(sampler_names())
        self.sampler_combo.setToolTip(TIPS["sampler"])
        # Seeds span 0..2^32-1, beyond QSpinBox's signed 32 bits; a 0-decimal double spin box holds them exactly.
        self.seed_spin = QDoubleSpinBox()
        self.seed_spin.setDecimals(0)
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setToolTip(TIPS["seed"])
        self.seed_lock = QCheckBox("Lock")
        self.seed_lock.setToolTip(TIPS["lock"])
        self.seed_random = QToolButton()
        self.seed_random.setText("Random")
        self.seed_random.setToolTip("A new random seed (and lock it).")
        self.seed_plus = QToolButton()
        self.seed_plus.setText("+1")
        self.seed_plus.setToolTip("The next seed (and lock it): a close variation.")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        for w in (self.seed_lock, self.seed_random, self.seed_plus):
            seed_row.addWidget(w)
        self.batch_spin = _spin(1, 64, 1, 1, TIPS["batch"])
        self.init_edit = QLineEdit()
        self.init_edit.setPlaceholderText("optional: start from an image")
        self.init_edit.setToolTip("Image to image: the generation starts from this picture instead of noise.")
        self.init_browse = QToolButton()
        self.init_browse.setText("…")
        init_row = QHBoxLayout()
        init_row.addWidget(self.init_edit, 1)
        init_row.addWidget(self.init_browse)
        self.denoise_spin = _double(0.0, 1.0, 0.6, 0.05, TIPS["denoise"])
        self.reset_btn = QPushButton("Reset to style")
        self.reset_btn.setToolTip("Fill the parameters (and an automatic size) from the style pack and template again.")
        for label, field in (("Model", self.model_combo), ("Size", size_row), ("Steps", self.steps_spin),
                             ("CFG", self.cfg_spin), ("Sampler", self.sampler_combo), ("Seed", seed_row),
                             ("Batch", self.batch_spin), ("Init image", init_row), ("Denoise", self.denoise_spin)):
            pl.addRow(label, field)
        pl.addRow(self.reset_btn)
        for field in (self.cfg_spin, self.denoise_spin):
            label = pl.labelForField(field)
            if label is not None:
                label.setToolTip(field.toolTip())
        return box

    def _generate_bar(self) -> QWidget:
        self.generate_btn = QPushButton("Generate")
        self.generate_btn.setToolTip("Generate (Ctrl+Enter). Press again while running to queue more.")
        self.generate_btn.setMinimumHeight(36)
        font = self.generate_btn.font()
        font.setBold(True)
        self.generate_btn.setFont(font)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the running job and drop the queue (Esc). Finished images are kept.")
        self.cancel_btn.setMinimumHeight(36)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Idle")
        self.progress.setTextVisible(True)
        self.queue_label = QLabel("")
        self.queue_label.setStyleSheet("color: palette(placeholder-text);")
        self.queue_view = QueueView(self.queue)
        bar = QWidget()
        bl = QVBoxLayout(bar)
        bl.setContentsMargins(8, 4, 8, 8)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_btn, 3)
        buttons.addWidget(self.cancel_btn, 1)
        bl.addLayout(buttons)
        bl.addWidget(self.progress)
        bl.addWidget(self.queue_label)
        bl.addWidget(self.queue_view)
        return bar

    # --- binding -------------------------------------------------------------------------------

    def _bind(self) -> None:
        f = self.form

        def edit(setter):
            # the artist's edits only, not the values the model pushes back
            return lambda *args: None if self._syncing else setter(*args)

        self.style_combo.currentIndexChanged.connect(edit(lambda _i: setattr(f, "style_id", self.style_combo.currentData() or "")))
        self.template_combo.currentIndexChanged.connect(
            edit(lambda _i: setattr(f, "template_id", self.template_combo.currentData() or "")))
        self.subject_edit.textChanged.connect(edit(lambda t: setattr(f, "subject", t)))
        self.prompt_edit.textChanged.connect(edit(lambda: setattr(f, "extra_prompt", self.prompt_edit.toPlainText())))
        self.negative_edit.textChanged.connect(edit(lambda: setattr(f, "negative", self.negative_edit.toPlainText())))
        self.model_combo.currentTextChanged.connect(edit(lambda _t: setattr(f, "model", self.current_model())))
        self.width_spin.valueChanged.connect(edit(lambda _v: f.set_size(self.width_spin.value(), self.height_spin.value())))
        self.height_spin.valueChanged.connect(edit(lambda _v: f.set_size(self.width_spin.value(), self.height_spin.value())))
        self.size_auto_btn.toggled.connect(edit(lambda on: f.set_size_auto() if on
                                                else f.set_size(self.width_spin.value(), self.height_spin.value())))
        self.steps_spin.valueChanged.connect(edit(lambda v: setattr(f, "steps", v)))
        self.cfg_spin.valueChanged.connect(edit(lambda v: setattr(f, "cfg_scale", round(v, 2))))
        self.sampler_combo.currentTextChanged.connect(edit(lambda t: setattr(f, "sampler", t)))
        self.seed_spin.valueChanged.connect(edit(lambda v: setattr(f, "seed", int(v))))
        self.seed_lock.toggled.connect(edit(lambda on: setattr(f, "seed_locked", on)))
        self.seed_random.clicked.connect(f.random_seed)
        self.seed_plus.clicked.connect(f.next_seed)
        self.batch_spin.valueChanged.connect(edit(lambda v: setattr(f, "count", v)))
        self.init_edit.textChanged.connect(edit(lambda t: setattr(f, "init_image", t)))
        self.init_browse.clicked.connect(self._browse_init)
        self.denoise_spin.valueChanged.connect(edit(lambda v: setattr(f, "denoise", round(v, 2))))
        self.lora_weight.valueChanged.connect(edit(lambda v: setattr(f, "lora_weight", round(v, 3))))
        self.reset_btn.clicked.connect(f.reset_to_style)
        self.generate_btn.clicked.connect(self.generate_requested)
        self.cancel_btn.clicked.connect(self.cancel_requested)

        f.changed.connect(self._sync)
        f.styles_changed.connect(self._fill_styles)
        f.templates_changed.connect(self._fill_templates)
        f.fields_changed.connect(self._rebuild_fields)
        f.prompt_preview_changed.connect(self.final_prompt.setText)
        self.queue.changed.connect(self._queue_changed)
        self.queue.entry_changed.connect(self._entry_changed)
        self._queue_changed()

    def _sync(self, name: str) -> None:
        """Show the model's value NAME in its widget."""
        f = self.form
        self._syncing = True
        try:
            if name == "style_id":
                self.style_combo.setCurrentIndex(max(0, self.style_combo.findData(f.style_id)))
                self._show_style()
            elif name == "template_id":
                self.template_combo.setCurrentIndex(max(0, self.template_combo.findData(f.template_id)))
                tpl = f.current_template()
                self.template_combo.setToolTip(tpl.description if tpl else "No template: the subject is the whole prompt.")
            elif name == "subject" and self.subject_edit.text() != f.subject:
                self.subject_edit.setText(f.subject)
            elif name == "extra_prompt" and self.prompt_edit.toPlainText() != f.extra_prompt:
                self.prompt_edit.setPlainText(f.extra_prompt)
            elif name == "negative" and self.negative_edit.toPlainText() != f.negative:
                self.negative_edit.setPlainText(f.negative)
            elif name == "model" and self.current_model() != f.model:
                self.set_model(f.model)
            elif name in ("width", "height"):
                self.width_spin.setValue(f.width)
                self.height_spin.setValue(f.height)
            elif name == "size_auto":
                self.size_auto_btn.setChecked(f.size_auto)
            elif name == "steps":
                self.steps_spin.setValue(f.steps)
            elif name == "cfg_scale":
                self.cfg_spin.setValue(f.cfg_scale)
            elif name == "sampler":
                if self.sampler_combo.findText(f.sampler) >= 0:
                    self.sampler_combo.setCurrentText(f.sampler)
            elif name == "seed":
                self.seed_spin.setValue(f.seed)
            elif name == "seed_locked":
                self.seed_lock.setChecked(f.seed_locked)
            elif name == "count":
                self.batch_spin.setValue(f.count)
            elif name == "init_image":
                if self.init_edit.text() != f.init_image:
                    self.init_edit.setText(f.init_image)
                self.denoise_spin.setEnabled(bool(f.init_image.strip()))
            elif name == "denoise":
                self.denoise_spin.setValue(f.denoise)
            elif name == "lora_weight":
                self.lora_weight.setValue(f.lora_weight)
        finally:
            self._syncing = False

    # --- styles, templates, fields ---------------------------------------------------------------

    def _fill_styles(self) -> None:
        self._syncing = True
        self.style_combo.clear()
        self.style_combo.addItem(style_icon(None), "No style (prompt only)", "")
        for pack in self.form.styles:
            self.style_combo.addItem(style_icon(pack), f"{pack.name}  ·  {pack.family_name}", pack.id)
        self.style_combo.setCurrentIndex(max(0, self.style_combo.findData(self.form.style_id)))
        self._syncing = False
        self._show_style()

    def _fill_templates(self) -> None:
        self._syncing = True
        self.template_combo.clear()
        self.template_combo.addItem("Free (no template)", "")
        for tpl in self.form.templates:
            self.template_combo.addItem(tpl.name, tpl.id)
            self.template_combo.setItemData(self.template_combo.count() - 1, tpl.description,
                                            Qt.ItemDataRole.ToolTipRole)
        self.template_combo.setCurrentIndex(max(0, self.template_combo.findData(self.form.template_id)))
        self._syncing = False

    def _show_style(self) -> None:
        pack = self.form.current_style()
        if pack is None:
            self.style_desc.setText("The prompt is used as written; pick a style pack to keep assets consistent.")
            self.style_desc.setToolTip("")
        else:
            loras = ", ".join(Path(l.file or l.filename).name for l in pack.loras) or "no LoRA (prompt-only style)"
            # What drives the look comes first, so a long description never hides it.
            self.style_desc.setText(f"{loras}\n{pack.description.splitlines()[0] if pack.description else ''}")
            self.style_desc.setToolTip(pack.description)
        self.style_previews.setPixmap(self._style_strip(pack))
        has_lora = self.form.has_lora()
        self.lora_weight.setVisible(has_lora)
        self.lora_label.setVisible(has_lora)

    @staticmethod
    def _style_strip(pack: StylePack | None) -> QPixmap:
        strip = QPixmap(3 * 68, 64)
        strip.fill(Qt.GlobalColor.transparent)
        p = QPainter(strip)
        previews = [Path(pack.folder) / rel for rel in pack.previews[:3]] if pack and pack.folder else []
        drawn = 0
        for path in previews:
            pix = QPixmap(str(path))
            if pix.isNull():
                continue
            pix = pix.scaled(64, 64, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            p.drawPixmap(drawn * 68, 0, pix)
            drawn += 1
        if not drawn:
            p.drawPixmap(0, 0, style_icon(pack, 64).pixmap(64, 64))
            drawn = 1
        p.end()
        return strip.copy(0, 0, drawn * 68, 64)

    def _rebuild_fields(self) -> None:
        """One line edit per named field the style and template declare (e.g. the button's text)."""
        while self.fields_layout.rowCount():
            self.fields_layout.removeRow(0)
        self._field_edits = {}
        declared = self.form.declared_fields()
        for name, spec in declared.items():
            edit = QLineEdit(self.form.field(name))
            edit.setPlaceholderText(spec.default if spec.default is not None else "required")
            edit.setToolTip(spec.description)
            edit.textChanged.connect(lambda text, n=name: self.form.set_field(n, text))
            self.fields_layout.addRow(name.replace("_", " ").capitalize(), edit)
            self._field_edits[name] = edit
        self.fields_host.setVisible(bool(declared))

    # --- models --------------------------------------------------------------------------------

    def set_models(self, models: list, fallback: str = "") -> None:
        """The checkpoints the model manager found; keeps the artist's choice (else FALLBACK, else the first)."""
        text = self.form.model or fallback
        self._syncing = True
        self.model_combo.clear()
        for m in models:
            if m.kind == "checkpoint":
                self.model_combo.addItem(f"{m.name}  ({m.family_label})", m.ref)
        self._syncing = False
        if not text and self.model_combo.count():
            text = self.model_combo.itemData(0)  # a model on disk beats an empty box and an error
        self.set_model(text)
        self.form.model = self.current_model()

    def set_model(self, ref: str) -> None:
        index = self.model_combo.findData(ref)
        if index >= 0:
            self.model_combo.setCurrentIndex(index)
        else:
            self.model_combo.setEditText(ref)

    def current_model(self) -> str:
        index = self.model_combo.currentIndex()
        text = self.model_combo.currentText().strip()
        if index >= 0 and text == self.model_combo.itemText(index):
            return self.model_combo.itemData(index) or ""
        return text

    def _browse_init(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start from an image", "", "Images (*.png *.jpg *.jpeg *.webp)")
        if path:
            self.form.init_image = path

    # --- progress ------------------------------------------------------------------------------

    def _queue_changed(self) -> None:
        busy = self.queue.busy()
        self.cancel_btn.setEnabled(busy)
        waiting = len(self.queue.waiting())
        self.queue_label.setText(f"{waiting} job(s) queued" if waiting else "")
        if not busy and self.progress.format() in ("Idle", ""):
            self.progress.setValue(0)

    def _entry_changed(self, job_id: int) -> None:
        entry = self.queue.entry(job_id)
        if entry is None:
            return
        bar = self.progress
        if entry.state == "running":
            self._shown_job = job_id
        elif job_id != self._shown_job:
            self._queue_changed()  # a queued job ended (cancelled or removed): the bar shows another
            return
        if entry.state == "running" and entry.step == 0:
            self._t_first_step = None
            bar.setRange(0, max(1, entry.total))
            bar.setValue(0)
            bar.setFormat("Loading the model…" if entry.status in ("Starting…", "") else entry.status)
        elif entry.state == "running":
            now = time.perf_counter()
            if self._t_first_step is None:
                # Time left is measured from the first step, so model loading does not skew it.
                self._t_first_step, self._first_step = now, entry.step
            done = entry.step - self._first_step
            rate = (now - self._t_first_step) / done if done > 0 else None
            left = f" · {fmt_time(rate * (entry.total - entry.step))} left" if rate else ""
            bar.setRange(0, entry.total)
            bar.setValue(entry.step)
            bar.setFormat(f"Step {entry.step} / {entry.total}{left}")
        elif entry.state == DONE:
            bar.setFormat(f"Done: {len(entry.paths)} image(s)")
            bar.setValue(bar.maximum())
        elif entry.state == FAILED:
            bar.setFormat("Failed")
        elif entry.state == CANCELLED:
            bar.setFormat("Cancelled")
            bar.setValue(0)
        self._queue_changed()
