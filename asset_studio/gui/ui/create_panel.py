"""The Create tab's form: widgets bound to a CreateForm (and the generate bar bound to the JobQueue).

Edits go to the form model; the model's changes come back to the widgets. `_syncing` marks the
second direction, so a value the style fills in is not mistaken for the artist's own edit.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
    QPlainTextEdit, QPushButton, QToolButton, QVBoxLayout, QWidget,
)

from asset_studio.core.stylepack import StylePack
from asset_studio.core.samplers import sampler_names  # plain data: no torch
from asset_studio.gui.model.create_form import MAX_SEED, TILINGS, CreateForm
from asset_studio.gui.model.queue import JobQueue
from asset_studio.gui.model.run_status import describe_progress
from asset_studio.gui.model.wording import gui_words
from asset_studio.gui.style_editor import style_icon
from asset_studio.gui.ui.badge import Badge, two_line_label
from asset_studio.gui.ui.form_rows import (
    ElidedLabel, RunBar, WeightedList, double, editable_combo, form_box, path_row, scrolled, select_data,
    settings_column, spin,
)
from asset_studio.gui.ui.pose_badge import PoseBadge
from asset_studio.gui.ui.queue_view import QueueView
from asset_studio.gui.ui.references_box import ReferencesBox
from asset_studio.gui.ui.tips import TIPS
from asset_studio.gui.ui.wheel_guard import guard_wheel


class CreatePanel(QWidget):
    generate_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, form: CreateForm, queue: JobQueue):
        super().__init__()
        self.form = form
        self.queue = queue
        self._syncing = False
        self.start_dir = ""  # where file dialogs open (the window sets the output folder)
        self._field_edits: dict[str, QLineEdit] = {}
        self._t_first_step: float | None = None
        self._first_step = 0
        self._shown_job: int | None = None  # the job the progress bar shows
        self._eta_timer = QTimer(self)  # the time left counts down between steps
        self._eta_timer.setInterval(1000)
        self._eta_timer.timeout.connect(self._tick)
        host, outer = settings_column()
        outer.addWidget(self._layout_badge())
        self.pose_badge = PoseBadge(form.pose)  # the Pose tab's pose or set, while Create follows one
        outer.addWidget(self.pose_badge)
        outer.addWidget(self._style_box())
        outer.addWidget(self._asset_box())
        self.references_box = ReferencesBox(form, start_dir=lambda: self.start_dir)
        outer.addWidget(self.references_box)
        outer.addWidget(self._params_box())
        outer.addWidget(self._passes_box())
        outer.addWidget(self._finishing_box())
        outer.addStretch(1)
        scroll = scrolled(host)
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
                     "cfg_scale", "sampler", "seed", "seed_locked", "seed_mode", "count", "init_image", "denoise",
                     "lora_weight", "remove_background", "trim", "pixel_grid", "palette_size", "tiling"):
            self._sync(name)
        self._show_style()
        self._show_layout()
        guard_wheel(self)  # the wheel scrolls the form; it changes only the control being used

    # --- building ------------------------------------------------------------------------------

    def _layout_badge(self) -> Badge:
        """Shown while generation follows the Layout tab: which layout, which ControlNet, and a
        one-click fix when the image size does not have the layout's shape."""
        badge = self.layout_badge = Badge()
        self.layout_label = badge.label
        self.layout_fix_btn = badge.add(QPushButton("Fix size"))
        self.layout_fix_btn.setToolTip("Set the image size to the layout's shape, at about the same pixel count.")
        self.layout_fix_btn.clicked.connect(self.fix_layout_size)
        self.layout_off_btn = badge.add(QToolButton())
        self.layout_off_btn.setText("Stop following")
        self.layout_off_btn.clicked.connect(lambda: setattr(self.form.layout, "follow", False))
        return badge

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
        self.lora_weight = double(-2.0, 3.0, 1.0, 0.05, TIPS["lora"])
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
        sl.addLayout(self._extra_loras())
        return box

    def _extra_loras(self) -> QHBoxLayout:
        """LoRAs besides the style's: a short list, a weight for the selected one, Add… and Remove."""
        add, remove = QPushButton("Add LoRA…"), QPushButton("Remove")
        self.lora_box = WeightedList("LoRA files added to this run besides the style's; <lora:NAME:WEIGHT> in the "
                                  "prompt does the same.", "Weight of the selected LoRA.", (add, remove),
                                  lambda: self.form.loras, self.form.set_lora_weight)
        self.lora_list, self.extra_lora_weight = self.lora_box.list, self.lora_box.weight
        add.clicked.connect(self._add_lora)
        remove.clicked.connect(lambda: self.form.remove_lora(self.lora_list.currentRow()))
        return self.lora_box.row

    def _add_lora(self) -> None:
        from asset_studio.core.models import DEFAULT_MODELS_DIR

        path, _ = QFileDialog.getOpenFileName(self, "Add a LoRA", str(DEFAULT_MODELS_DIR / "loras"),
                                              "LoRA (*.safetensors)")
        if path:
            self.form.add_lora(path, 1.0)
            self.lora_list.setCurrentRow(len(self.form.loras) - 1)

    def _asset_box(self) -> QGroupBox:
        box, al = form_box("Asset")
        self.template_combo = QComboBox()
        self.template_combo.setToolTip("The kind of asset: it shapes the prompt, the aspect and the post-processing.")
        self.subject_edit = QLineEdit()
        self.subject_edit.setPlaceholderText("health potion")
        self.subject_edit.setToolTip(TIPS["subject"])
        # The template's and style's fields are rows of this same form, so their labels line up.
        self.fields_layout = al
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setPlaceholderText("optional extra words: glowing, gold trim…")
        self.prompt_edit.setToolTip(TIPS["extra"])
        self.prompt_edit.setFixedHeight(54)
        self.negative_edit = QPlainTextEdit()
        self.negative_edit.setPlaceholderText("optional: things to avoid")
        self.negative_edit.setToolTip(TIPS["negative"])
        self.negative_edit.setFixedHeight(54)
        self.final_prompt = ElidedLabel()
        self.final_prompt.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.tokens_label = QLabel("")
        self.tokens_label.setFixedHeight(self.tokens_label.fontMetrics().height() + 4)
        self.tokens_label.setToolTip("CLIP reads the first 75 tokens of the composed prompt; words after that are ignored.")
        self.tokens_label.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        al.addRow("Template", self.template_combo)
        al.addRow("Subject", self.subject_edit)
        al.addRow("Prompt", self.prompt_edit)
        al.addRow("Negative", self.negative_edit)
        al.addRow(self.final_prompt)
        al.addRow(self.tokens_label)
        return box

    def _params_box(self) -> QGroupBox:
        box, pl = form_box("Parameters")
        self.model_combo = editable_combo("the style's recommended model")
        self.model_combo.setToolTip(TIPS["model"])
        self.family_note = two_line_label()
        self.family_note.setStyleSheet("color: #e0a040; font-size: 11px;")
        self.family_note.setVisible(False)
        self.width_spin = spin(64, 2048, 512, 8, TIPS["size"])
        self.height_spin = spin(64, 2048, 512, 8, TIPS["size"])
        self.size_auto_btn = QToolButton()
        self.size_auto_btn.setText("Auto")
        self.size_auto_btn.setCheckable(True)
        self.size_auto_btn.setToolTip(TIPS["size_auto"])
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        size_row.addWidget(self.size_auto_btn)
        tiling_box = self._tiling_row()
        self.steps_spin = spin(1, 150, 25, 1, TIPS["steps"])
        self.cfg_spin = double(0.0, 30.0, 7.0, 0.5, TIPS["cfg"])
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
        self.seed_mode_combo = QComboBox()
        self.seed_mode_combo.addItem("New seed every press", "new")
        self.seed_mode_combo.addItem("Style's seed policy", "style")
        self.seed_mode_combo.setToolTip("What an unlocked seed does on each press of Generate.")
        self.seed_rule = two_line_label()
        self.seed_rule.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.seed_rule.setFixedHeight(self.seed_rule.fontMetrics().lineSpacing() * 2 + 2)
        seed_box = QVBoxLayout()
        seed_box.setSpacing(2)
        seed_box.addLayout(seed_row)
        seed_box.addWidget(self.seed_mode_combo)
        seed_box.addWidget(self.seed_rule)
        self.batch_spin = spin(1, 64, 1, 1, TIPS["batch"])
        self.init_edit = QLineEdit()
        self.init_edit.setPlaceholderText("optional: start from an image")
        self.init_edit.setToolTip("Image to image: the generation starts from this picture instead of noise.")
        self.init_browse = QToolButton()
        self.init_browse.setText("…")
        init_row = path_row(self.init_edit, self.init_browse)
        self.denoise_spin = double(0.0, 1.0, 0.6, 0.05, TIPS["denoise"])
        self.reset_btn = QPushButton("Reset to style")
        self.reset_btn.setToolTip("Fill the parameters (and an automatic size) from the style pack and template again.")
        model_box = QVBoxLayout()
        model_box.setSpacing(2)
        model_box.addWidget(self.model_combo)
        model_box.addWidget(self.family_note)
        for label, field in (("Model", model_box), ("Size", size_row), ("Seamless", tiling_box), ("Steps", self.steps_spin),
                             ("CFG", self.cfg_spin), ("Sampler", self.sampler_combo), ("Seed", seed_box),
                             ("Batch", self.batch_spin), ("Init image", init_row), ("Denoise", self.denoise_spin)):
            pl.addRow(label, field)
        pl.addRow(self.reset_btn)
        for field in (self.cfg_spin, self.denoise_spin):
            label = pl.labelForField(field)
            if label is not None:
                label.setToolTip(field.toolTip())
        return box

    def _tiling_row(self) -> QVBoxLayout:
        """Seamless tiling (as --tile): the template's value until the artist picks one, and one line
        under it saying why the engine would refuse it with the rest of the form."""
        self.tiling_combo = QComboBox()
        for value, text in TILINGS.items():
            self.tiling_combo.addItem(text, value)
        self.tiling_combo.setToolTip(TIPS["tiling"])
        self.tiling_note = two_line_label()
        self.tiling_note.setStyleSheet("color: #e0a040; font-size: 11px;")
        # the engine's sentences run to three lines at the panel's width; hidden while there is none
        self.tiling_note.setFixedHeight(QFontMetrics(self.tiling_note.font()).lineSpacing() * 3 + 4)
        self.tiling_note.setVisible(False)
        box = QVBoxLayout()
        box.setSpacing(2)
        box.addWidget(self.tiling_combo)
        box.addWidget(self.tiling_note)
        return box

    def _show_tiling_conflict(self) -> None:
        conflict = gui_words(self.form.tiling_conflict())
        self.tiling_note.set_text(conflict)
        self.tiling_note.setVisible(bool(conflict))

    def _passes_box(self) -> QGroupBox:
        from asset_studio.gui.ui.passes_panel import PassesPanel

        box = QGroupBox("After-passes")
        self.passes_panel = PassesPanel(self.form.passes)
        QVBoxLayout(box).addWidget(self.passes_panel)
        return box

    def _finishing_box(self) -> QGroupBox:
        """The sprite made from each raw image (saved in sprites/): the style's choice, per run."""
        box = QGroupBox("Finishing (the sprite)")
        box.setToolTip("What turns each raw image into the finished sprite in sprites/. The style and template "
                       "decide until you change one here.")
        fl = QFormLayout(box)
        self.cutout_box = QCheckBox("Remove the background")
        self.trim_box = QCheckBox("Trim transparent edges")
        self.pixel_spin = spin(0, 512, 0, 8, "Snap to a pixel grid of this many logical pixels on the longer side (0 = off).")
        self.pixel_spin.setSpecialValueText("off")
        self.palette_spin = spin(0, 256, 0, 4, "Reduce to this many colours (0 = off).")
        self.palette_spin.setSpecialValueText("off")
        row = QHBoxLayout()
        row.addWidget(self.cutout_box)
        row.addWidget(self.trim_box)
        from asset_studio.gui.ui.transparent_box import TransparentBox

        self.transparent_box = TransparentBox(self.form, self.cutout_box)  # RGBA from the model (LayerDiffuse)
        fl.addRow(self.transparent_box)
        fl.addRow(row)
        fl.addRow("Pixel grid", self.pixel_spin)
        fl.addRow("Palette", self.palette_spin)
        return box

    def _generate_bar(self) -> QWidget:
        bar = RunBar("Generate", "Generate (Ctrl+Enter). Press again while running to queue more.",
                     "Stop the running job (Esc); jobs waiting behind it still run. Shift+Esc drops the queue too. "
                     "Finished images are kept.")
        self.generate_btn, self.cancel_btn = bar.button, bar.cancel_btn
        self.progress, self.progress_text = bar.progress, bar.progress_text
        self.progress.setFormat("Idle")
        self.queue_label = QLabel("")
        self.queue_label.setStyleSheet("color: palette(placeholder-text);")
        self.queue_view = QueueView(self.queue)
        bar.column.addWidget(self.queue_label)
        bar.column.addWidget(self.queue_view)
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
        self.seed_mode_combo.currentIndexChanged.connect(
            edit(lambda _i: setattr(f, "seed_mode", self.seed_mode_combo.currentData())))
        self.seed_random.clicked.connect(f.random_seed)
        self.seed_plus.clicked.connect(f.next_seed)
        self.batch_spin.valueChanged.connect(edit(lambda v: setattr(f, "count", v)))
        self.init_edit.textChanged.connect(edit(lambda t: setattr(f, "init_image", t)))
        self.init_browse.clicked.connect(self._browse_init)
        self.denoise_spin.valueChanged.connect(edit(lambda v: setattr(f, "denoise", round(v, 2))))
        self.lora_weight.valueChanged.connect(edit(lambda v: setattr(f, "lora_weight", round(v, 3))))
        self.tiling_combo.currentIndexChanged.connect(
            edit(lambda _i: setattr(f, "tiling", self.tiling_combo.currentData())))
        f.passes.changed.connect(lambda _s: self._show_tiling_conflict())  # the tiled upscale refuses it
        self.reset_btn.clicked.connect(f.reset_to_style)
        self.cutout_box.toggled.connect(edit(lambda on: setattr(f, "remove_background", on)))
        self.trim_box.toggled.connect(edit(lambda on: setattr(f, "trim", on)))
        self.pixel_spin.valueChanged.connect(edit(lambda v: setattr(f, "pixel_grid", v)))
        self.palette_spin.valueChanged.connect(edit(lambda v: setattr(f, "palette_size", v)))
        self.generate_btn.clicked.connect(self.generate_requested)
        self.cancel_btn.clicked.connect(self.cancel_requested)

        f.changed.connect(self._sync)
        f.styles_changed.connect(self._fill_styles)
        f.templates_changed.connect(self._fill_templates)
        f.fields_changed.connect(self._rebuild_fields)
        f.prompt_preview_changed.connect(self.final_prompt.set_text)
        f.tokens_changed.connect(self._show_tokens)
        f.layout.changed.connect(lambda _name: self._show_layout())
        self.queue.changed.connect(self._queue_changed)
        self.queue.entry_changed.connect(self._entry_changed)
        self._queue_changed()

    def _sync(self, name: str) -> None:
        """Show the model's value NAME in its widget."""
        f = self.form
        self._syncing = True
        try:
            if name == "loras":
                self.lora_box.show()
            elif name == "style_id":
                select_data(self.style_combo, f.style_id)
                self._show_style()
            elif name == "template_id":
                select_data(self.template_combo, f.template_id)
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
                self.seed_mode_combo.setEnabled(not f.seed_locked)
            elif name == "seed_mode":
                select_data(self.seed_mode_combo, f.seed_mode)
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
            elif name == "remove_background":
                self.cutout_box.setChecked(f.remove_background)
            elif name == "trim":
                self.trim_box.setChecked(f.trim)
            elif name == "pixel_grid":
                self.pixel_spin.setValue(f.pixel_grid)
            elif name == "palette_size":
                self.palette_spin.setValue(f.palette_size)
            elif name == "tiling":
                select_data(self.tiling_combo, f.tiling)
                tpl = f.current_template()
                own = "tiling" in f.artist_set() or tpl is None or tpl.tiling == "off"
                self.tiling_combo.setToolTip(TIPS["tiling"] + ("" if own else
                                             f" The template {tpl.name} tiles {TILINGS[tpl.tiling].lower()}."))
            if name in ("tiling", "transparent", "engine", "init_image", "denoise", "template_id", "style_id", "model"):
                self._show_tiling_conflict()
            if name in ("model", "style_id"):
                warning = f.family_warning()
                self.family_note.set_text(warning)
                self.family_note.setVisible(bool(warning))
            if name in ("seed", "seed_locked", "seed_mode", "style_id"):
                self.seed_rule.set_text(f.seed_rule())
            if name in ("width", "height") and f.layout.follow:
                self._show_layout()
        finally:
            self._syncing = False

    def _show_tokens(self, tokens) -> None:
        if tokens is None:
            self.tokens_label.setText("")
            return
        self.tokens_label.setText(tokens.label() + ("  — the words after the 75th are ignored" if tokens.over else ""))
        self.tokens_label.setStyleSheet("font-size: 11px; color: %s;" % ("#e0a040" if tokens.over
                                                                          else "palette(placeholder-text)"))

    def _show_layout(self) -> None:
        """The badge: visible while generation follows the layout."""
        state = self.form.layout
        self.layout_badge.setVisible(state.follow)
        if not state.follow:
            return
        lay = state.layout
        net = Path(state.controlnet).name if state.controlnet else "no ControlNet chosen (Layout tab)"
        self.layout_label.set_text(f"Following the layout ({lay.width}×{lay.height}) through ControlNet: "
                                   f"{state.control_type} · {net}")
        fix = self.form.layout_size_fix()
        self.layout_fix_btn.setVisible(fix is not None)
        if fix is not None:
            self.layout_fix_btn.setText(f"Use {fix[0]}×{fix[1]}")
        for name, edit in self._field_edits.items():
            if self.form.layout_field(name):
                edit.setPlaceholderText(f"from the layout: {self.form.layout_field(name)}")

    def fix_layout_size(self) -> None:
        fix = self.form.layout_size_fix()
        if fix is not None:
            self.form.set_size(*fix)
            self._show_layout()

    # --- styles, templates, fields ---------------------------------------------------------------

    def _fill_styles(self) -> None:
        self._syncing = True
        self.style_combo.clear()
        self.style_combo.addItem(style_icon(None), "No style (prompt only)", "")
        for pack in self.form.styles:
            self.style_combo.addItem(style_icon(pack), f"{pack.name}  ·  {pack.family_name}", pack.id)
        select_data(self.style_combo, self.form.style_id)
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
        select_data(self.template_combo, self.form.template_id)
        self._syncing = False

    def _show_style(self) -> None:
        pack = self.form.current_style()
        if pack is None:
            self.style_desc.setText("The prompt is used as written; pick a style pack to keep assets consistent.")
            self.style_desc.setToolTip("")
        else:
            loras = ", ".join(Path(l.file or l.filename).name for l in pack.loras) or "no LoRA (prompt-only style)"
            if pack.references:
                loras += f" · {len(pack.references)} reference" + ("s" if len(pack.references) > 1 else "")
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
        """One line edit per named field the style and template declare (e.g. the button's text),
        as rows of the Asset form right after the subject."""
        for edit in self._field_edits.values():
            self.fields_layout.removeRow(edit)
        self._field_edits = {}
        row = self._field_row()
        for name, spec in self.form.declared_fields().items():
            edit = QLineEdit(self.form.field(name))
            edit.setPlaceholderText(spec.default if spec.default is not None else "required")
            edit.setToolTip(spec.description)
            edit.textChanged.connect(lambda text, n=name: self.form.set_field(n, text))
            self.fields_layout.insertRow(row, name.replace("_", " ").capitalize(), edit)
            row += 1
            self._field_edits[name] = edit
        self._show_layout()

    def _field_row(self) -> int:
        """The form row after the subject's."""
        row, _role = self.fields_layout.getWidgetPosition(self.subject_edit)
        return row + 1

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
        self.passes_panel.set_models(models)

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
        path, _ = QFileDialog.getOpenFileName(self, "Start from an image", self.start_dir, "Images (*.png *.jpg *.jpeg *.webp)")
        if path:
            self.form.init_image = path

    # --- progress ------------------------------------------------------------------------------

    def _queue_changed(self) -> None:
        busy = self.queue.busy()
        self.cancel_btn.setEnabled(busy)
        waiting = len(self.queue.waiting())
        self.queue_label.setText(f"{waiting} job(s) waiting — right-click one to move, cancel or remove it"
                                 if waiting else "")
        if not busy:
            self._eta_timer.stop()
            if self.progress_text.full_text() in ("Idle", ""):
                self.progress.setValue(0)

    def _tick(self) -> None:
        if self._shown_job is not None:
            self._entry_changed(self._shown_job)

    def _entry_changed(self, job_id: int) -> None:
        entry = self.queue.entry(job_id)
        if entry is None:
            return
        if entry.state == "running":
            self._shown_job = job_id
        elif job_id != self._shown_job:
            self._queue_changed()  # a queued job ended (cancelled or removed): the bar shows another
            return
        view = describe_progress(self.queue, entry)  # the same words the status strip shows
        if view.ticking and not self._eta_timer.isActive():
            self._eta_timer.start()
        elif not view.ticking:
            self._eta_timer.stop()
        self.progress.setRange(0, view.maximum)
        self.progress.setValue(view.value)
        self.progress_text.set_text(view.text)
        self._queue_changed()
