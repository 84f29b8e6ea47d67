"""The Animate tab: the animation's settings (bound to an AnimateForm, the prompt side shared with
the Create tab's CreateForm) on the left; the playback of the frames as they arrive (bound to an
AnimationPlayer) with a frame strip to scrub, play/pause and Export to sheet on the right.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QButtonGroup, QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
    QPushButton, QRadioButton, QSizePolicy, QSlider, QSplitter, QVBoxLayout, QWidget,
)

from asset_studio.core.pose_sets import set_names
from asset_studio.gui.model.animate_form import AnimateForm
from asset_studio.gui.model.animation_player import RUNNING, AnimationPlayer
from asset_studio.gui.model.queue import JobQueue
from asset_studio.gui.ui.form_rows import (
    RunBar, WeightedList, double, editable_combo, form_box, path_row, scrolled, select_data, settings_column,
    spin,
)
from asset_studio.gui.ui.wheel_guard import guard_wheel

ADAPTER_HELP = (
    "AnimateDiff needs a motion adapter in diffusers' format: a catalog id (animatediff-v1-5-2 or "
    "animatediff-v1-5-3 for SD 1.5 models, animatediff-sdxl-beta for SDXL models; Get one… downloads them "
    "on the Models page), a folder with config.json and .safetensors weights, one .safetensors file, or a "
    "repo id already in the Hugging Face cache. Pickled .ckpt files are refused."
)


def downloaded_motion_loras() -> list[tuple[str, str]]:
    """(id, name) of the catalog's motion LoRAs that are in the Hugging Face cache."""
    from asset_studio.core.models import cached_entry_files, load_catalog
    from asset_studio.errors import UserError

    try:
        return [(e.id, e.name) for e in load_catalog() if e.kind == "motion_lora" and cached_entry_files(e)]
    except UserError:  # a broken catalog: File… still works
        return []


class FrameStrip(QWidget):
    """The scrubber: one cell per frame, filled as frames arrive, the shown frame marked; click or
    drag to scrub."""

    def __init__(self, player: AnimationPlayer):
        super().__init__()
        self.player = player
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Frames: filled as they arrive. Click or drag to scrub.")
        player.frames_changed.connect(self.update)
        player.current_changed.connect(lambda _f: self.update())

    def sizeHint(self) -> QSize:
        return QSize(320, 22)

    def _cell(self, i: int) -> QRect:
        n = max(1, self.player.count)
        w = self.width() / n
        return QRect(round(i * w) + 1, 2, max(1, round((i + 1) * w) - round(i * w) - 2), self.height() - 4)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().base())
        arrived = set(self.player.arrived())
        for i in range(self.player.count):
            colour = QColor(122, 162, 247) if i in arrived else QColor(90, 90, 98, 90)
            p.fillRect(self._cell(i), colour)
        if self.player.current >= 0:
            p.setPen(QColor(255, 200, 60))
            p.drawRect(self._cell(self.player.current).adjusted(0, 0, -1, -1))
        p.end()

    def frame_at(self, x: int) -> int:
        n = self.player.count
        return max(0, min(n - 1, int(x * n / max(1, self.width())))) if n else -1

    def mousePressEvent(self, event) -> None:
        self.player.scrub(self.frame_at(int(event.position().x())))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.player.scrub(self.frame_at(int(event.position().x())))


class FrameView(QLabel):
    """The shown frame, scaled to fit with whole-pixel steps (pixel art stays crisp) on a checkerboard."""

    def __init__(self):
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image = None

    def set_image(self, image) -> None:
        self._image = image
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(42, 43, 48))
        image = self._image
        if image is None or image.isNull():
            p.setPen(QColor(150, 150, 160))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Frames appear here as they are made.")
            p.end()
            return
        box = self.rect().adjusted(8, 8, -8, -8)
        scale = min(box.width() / image.width(), box.height() / image.height())
        if scale >= 1:
            scale = int(scale)  # whole steps: every source pixel the same size
        w, h = max(1, int(image.width() * scale)), max(1, int(image.height() * scale))
        target = QRect(box.center() - QPoint(w // 2, h // 2), QSize(w, h))
        tile = 8
        for y in range(target.top(), target.bottom() + 1, tile):  # transparency shows as a checkerboard
            for x in range(target.left(), target.right() + 1, tile):
                light = ((x - target.left()) // tile + (y - target.top()) // tile) % 2
                p.fillRect(QRect(x, y, min(tile, target.right() + 1 - x), min(tile, target.bottom() + 1 - y)),
                           QColor(70, 70, 76) if light else QColor(56, 56, 62))
        smooth = scale < 1
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        p.drawImage(target, image)
        p.end()


class AnimateTab(QSplitter):
    animate_requested = Signal()
    cancel_requested = Signal()
    export_requested = Signal()
    open_folder_requested = Signal()
    get_motion_adapter = Signal()  # "Get one…": the Models page with a motion adapter selected
    get_motion_lora = Signal()  # the same for camera-move motion LoRAs

    def __init__(self, form: AnimateForm, player: AnimationPlayer, queue: JobQueue):
        super().__init__(Qt.Orientation.Horizontal)
        self.form, self.player, self.queue = form, player, queue
        self.create = form.create
        self._syncing = False
        self.start_dir = ""
        host, outer = settings_column()
        outer.addWidget(self._mode_box())
        outer.addWidget(self._asset_box())
        outer.addWidget(self._timing_box())
        self.motion_box = self._motion_box()
        self.pose_box = self._pose_box()
        self.svd_box = self._svd_box()
        for box in (self.motion_box, self.pose_box, self.svd_box):
            outer.addWidget(box)
        outer.addWidget(self._previews_box())
        outer.addStretch(1)
        scroll = scrolled(host)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(0)
        ll.addWidget(scroll, 1)
        ll.addWidget(self._run_bar())
        self.addWidget(left)
        self.addWidget(self._playback())
        self.setStretchFactor(0, 0)
        self.setStretchFactor(1, 1)
        self.setSizes([400, 880])
        self.setCollapsible(0, False)
        self._bind()
        for name in ("mode", "frames", "fps", "loop", "motion_adapter", "context", "pose_set", "controlnet",
                     "control_scale", "svd_model", "svd_image", "motion", "noise_aug", "decode_chunk", "svd_cfg",
                     "previews", "motion_loras"):
            self._sync(name)
        self._fill_styles()
        self._fill_templates()
        for name in ("subject", "model", "style_id", "template_id"):
            self._sync_create(name)
        self._show_player()
        guard_wheel(self)

    # --- building ------------------------------------------------------------------------------

    def _mode_box(self) -> QGroupBox:
        box = QGroupBox("What moves")
        row = QHBoxLayout(box)
        self.text_mode = QRadioButton("Text to animation")
        self.text_mode.setToolTip("AnimateDiff: the Create tab's prompt, style and model, with a motion adapter.")
        self.svd_mode = QRadioButton("Picture to video")
        self.svd_mode.setToolTip("Stable Video Diffusion: one picture set in motion (an idle loop from a sprite).")
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.text_mode)
        self.mode_group.addButton(self.svd_mode)
        row.addWidget(self.text_mode)
        row.addWidget(self.svd_mode)
        row.addStretch(1)
        return box

    def _asset_box(self) -> QGroupBox:
        box, form = form_box("Asset (shared with the Create tab)")
        self.style_combo = QComboBox()
        self.template_combo = QComboBox()
        self.subject_edit = QLineEdit()
        self.subject_edit.setPlaceholderText("a slime bouncing")
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("the style's recommended model (SD 1.5 or SDXL)")
        self.shared_note = QLabel()
        self.shared_note.setWordWrap(True)
        self.shared_note.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.shared_note.setText("Steps, CFG, sampler, seed, size and LoRAs are the Create tab's.")
        form.addRow("Style", self.style_combo)
        form.addRow("Template", self.template_combo)
        form.addRow("Subject", self.subject_edit)
        form.addRow("Model", self.model_edit)
        form.addRow(self.shared_note)
        self.asset_form = form
        return box

    def _timing_box(self) -> QGroupBox:
        box = QGroupBox("Frames")
        row = QHBoxLayout(box)
        self.frames_spin = spin(1, 1024, 16, 1, "How many frames. Past the adapter's window (16) context windows "
                                                  "slide along the animation.")
        self.fps_spin = double(0.5, 120.0, 8.0, 1.0, "Playback speed: the preview, the GIF/APNG and the sheet's animation.")
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setToolTip("The last frame leads into the first: a seamless idle or walk cycle.")
        row.addWidget(QLabel("Frames"))
        row.addWidget(self.frames_spin)
        row.addWidget(QLabel("fps"))
        row.addWidget(self.fps_spin)
        row.addWidget(self.loop_box)
        row.addStretch(1)
        return box

    def _motion_box(self) -> QGroupBox:
        box, form = form_box("Motion (AnimateDiff)")
        self.adapter_edit = QLineEdit()
        self.adapter_edit.setPlaceholderText("catalog id, folder, .safetensors or repo id")
        self.adapter_edit.setToolTip(ADAPTER_HELP)
        browse = self._folder_or_file_button("Motion adapter", "Motion adapter (*.safetensors)",
                                             lambda path: setattr(self.form, "motion_adapter", path))
        self.get_adapter_btn = QPushButton("Get one…")
        self.get_adapter_btn.setToolTip("Download a motion adapter on the Models page; then type its id here.")
        self.get_adapter_btn.clicked.connect(self.get_motion_adapter)
        self.context_spin = spin(0, 64, 0, 1, "Frames the motion modules see at once; 0 = the adapter's own window.")
        self.context_spin.setSpecialValueText("adapter's")
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        self.get_lora_btn = QPushButton("Get one…")
        self.get_lora_btn.setToolTip("Download camera-move motion LoRAs (zoom, pan, tilt, roll) on the Models page; "
                                     "downloaded ones are offered under Add….")
        self.get_lora_btn.clicked.connect(self.get_motion_lora)
        self.add_lora_btn = add
        self.motion_lora_box = WeightedList("Motion LoRAs (camera pans, zooms…) on the motion modules, with weights.",
                                            "Weight of the selected motion LoRA.", (add, remove, self.get_lora_btn),
                                            lambda: self.form.motion_loras, self.form.set_motion_lora_weight)
        self.motion_lora_list, self.motion_lora_weight = self.motion_lora_box.list, self.motion_lora_box.weight
        add.clicked.connect(self._add_motion_lora)
        remove.clicked.connect(lambda: self.form.remove_motion_lora(self.motion_lora_list.currentRow()))
        adapter = QVBoxLayout()  # the path gets the whole width: adapter names are long
        adapter.addWidget(self.adapter_edit)
        adapter.addLayout(path_row(QWidget(), browse, self.get_adapter_btn))
        form.addRow("Adapter", adapter)
        form.addRow("Context", self.context_spin)
        form.addRow("Motion LoRAs", self.motion_lora_box.row)
        return box

    def _pose_box(self) -> QGroupBox:
        box, form = form_box("Poses (optional)")
        self.pose_combo = editable_combo("none: the motion adapter decides")
        self.pose_combo.addItem("")
        for name in set_names():
            self.pose_combo.addItem(name)
        self.pose_combo.setToolTip("A pose sequence (walk-8, run-8… or a folder of pose JSON): every frame follows "
                                   "its skeleton through an OpenPose ControlNet, the poses repeated as a cycle.")
        pose_folder = QPushButton("Folder…")
        pose_folder.clicked.connect(self._browse_pose_folder)
        self.controlnet_edit = QLineEdit()
        self.controlnet_edit.setPlaceholderText("an OpenPose ControlNet")
        cn_browse = self._folder_or_file_button("OpenPose ControlNet", "ControlNet (*.safetensors)",
                                                lambda path: setattr(self.form, "controlnet", path))
        self.control_scale_spin = double(0.0, 2.0, 1.0, 0.05, "How strongly the frames follow the poses.")
        form.addRow("Pose set", path_row(self.pose_combo, pose_folder))
        form.addRow("ControlNet", path_row(self.controlnet_edit, cn_browse))
        form.addRow("Strength", self.control_scale_spin)
        return box

    def _svd_box(self) -> QGroupBox:
        box, form = form_box("Picture to video (Stable Video Diffusion)")
        self.svd_image_edit = QLineEdit()
        self.svd_image_edit.setPlaceholderText("the picture to set in motion")
        image_btn = QPushButton("Browse…")
        image_btn.clicked.connect(self._browse_svd_image)
        self.svd_model_edit = QLineEdit()
        self.svd_model_edit.setPlaceholderText("an SVD folder or cached repo id")
        model_btn = QPushButton("Browse…")
        model_btn.clicked.connect(self._browse_svd_model)
        self.motion_slider = QSlider(Qt.Orientation.Horizontal)
        self.motion_slider.setRange(0, 255)
        self.motion_slider.setToolTip("How much moves: SVD's motion bucket, 0 to 255.")
        self.motion_label = QLabel()
        motion = QHBoxLayout()
        motion.addWidget(self.motion_slider, 1)
        motion.addWidget(self.motion_label)
        self.noise_spin = double(0.0, 1.0, 0.02, 0.01, "Noise added to the picture: more frees the motion from it.")
        self.chunk_spin = spin(1, 64, 8, 1, "Frames decoded at once: lower saves memory.")
        self.svd_cfg_spin = double(1.0, 20.0, 3.0, 0.5, "CFG of the last frame (it rises from 1 on the first).")
        form.addRow("Picture", path_row(self.svd_image_edit, image_btn))
        form.addRow("SVD model", path_row(self.svd_model_edit, model_btn))
        form.addRow("Motion", motion)
        form.addRow("Noise", self.noise_spin)
        form.addRow("Decode chunk", self.chunk_spin)
        form.addRow("CFG", self.svd_cfg_spin)
        return box

    def _previews_box(self) -> QGroupBox:
        box = QGroupBox("Previews beside the frames")
        row = QHBoxLayout(box)
        self.preview_boxes = {}
        for kind, label, tip in (("gif", "GIF", "Plays anywhere; 256 colours, on/off transparency."),
                                 ("apng", "APNG", "Full colour and true alpha; plays in browsers and most viewers."),
                                 ("webp", "WebP", "Full colour and alpha, small; some tools do not animate it.")):
            check = QCheckBox(label)
            check.setToolTip(tip)
            check.toggled.connect(self._previews_toggled)
            self.preview_boxes[kind] = check
            row.addWidget(check)
        row.addStretch(1)
        return box

    def _run_bar(self) -> QWidget:
        bar = RunBar("Animate", "Make the animation; its frames appear on the right as they are decoded.",
                     "Stop the animation (Esc); the frames already made are kept.")
        self.animate_btn, self.cancel_btn = bar.button, bar.cancel_btn
        self.progress, self.progress_text = bar.progress, bar.progress_text
        self.cancel_btn.setEnabled(False)
        self.animate_btn.clicked.connect(self.animate_requested)
        self.cancel_btn.clicked.connect(self.cancel_requested)
        return bar

    def _playback(self) -> QWidget:
        panel = QWidget()
        pl = QVBoxLayout(panel)
        pl.setContentsMargins(8, 8, 8, 8)
        self.frame_view = FrameView()
        self.strip = FrameStrip(self.player)
        self.play_btn = QPushButton("Play")
        self.play_btn.setCheckable(True)
        self.play_btn.setToolTip("Play the frames that are in at the animation's fps (Space).")
        self.play_btn.setShortcut(Qt.Key.Key_Space)
        self.frame_label = QLabel()
        self.export_btn = QPushButton("Export to sheet…")
        self.export_btn.setToolTip("Pack this animation's frames into a sprite sheet with its name and fps "
                                   "(Aseprite tags, Godot SpriteFrames, TexturePacker animations).")
        self.folder_btn = QPushButton("Open folder")
        controls = QHBoxLayout()
        controls.addWidget(self.play_btn)
        controls.addWidget(self.frame_label, 1)
        controls.addWidget(self.folder_btn)
        controls.addWidget(self.export_btn)
        pl.addWidget(self.frame_view, 1)
        pl.addWidget(self.strip)
        pl.addLayout(controls)
        self.play_btn.toggled.connect(lambda on: self.player.play() if on else self.player.pause())
        self.export_btn.clicked.connect(self.export_requested)
        self.folder_btn.clicked.connect(self.open_folder_requested)
        return panel

    # --- binding -------------------------------------------------------------------------------

    def _bind(self) -> None:
        f, c = self.form, self.create

        def edit(setter):
            def slot(value):
                if not self._syncing:
                    setter(value)
            return slot

        self.text_mode.toggled.connect(edit(lambda on: setattr(f, "mode", "animatediff" if on else "svd")))
        self.frames_spin.valueChanged.connect(edit(lambda v: setattr(f, "frames", v)))
        self.fps_spin.valueChanged.connect(edit(lambda v: setattr(f, "fps", round(v, 2))))
        self.loop_box.toggled.connect(edit(lambda on: setattr(f, "loop", on)))
        self.adapter_edit.textChanged.connect(edit(lambda t: setattr(f, "motion_adapter", t)))
        self.context_spin.valueChanged.connect(edit(lambda v: setattr(f, "context", v)))
        self.pose_combo.currentTextChanged.connect(edit(lambda t: setattr(f, "pose_set", t)))
        self.controlnet_edit.textChanged.connect(edit(lambda t: setattr(f, "controlnet", t)))
        self.control_scale_spin.valueChanged.connect(edit(lambda v: setattr(f, "control_scale", round(v, 2))))
        self.svd_image_edit.textChanged.connect(edit(lambda t: setattr(f, "svd_image", t)))
        self.svd_model_edit.textChanged.connect(edit(lambda t: setattr(f, "svd_model", t)))
        self.motion_slider.valueChanged.connect(edit(lambda v: setattr(f, "motion", round(v / 255, 3))))
        self.noise_spin.valueChanged.connect(edit(lambda v: setattr(f, "noise_aug", round(v, 3))))
        self.chunk_spin.valueChanged.connect(edit(lambda v: setattr(f, "decode_chunk", v)))
        self.svd_cfg_spin.valueChanged.connect(edit(lambda v: setattr(f, "svd_cfg", round(v, 2))))
        f.changed.connect(self._sync)
        # the prompt side is the Create tab's form
        self.subject_edit.textChanged.connect(edit(lambda t: setattr(c, "subject", t)))
        self.model_edit.textChanged.connect(edit(lambda t: setattr(c, "model", t)))
        self.style_combo.currentIndexChanged.connect(
            edit(lambda _i: setattr(c, "style_id", self.style_combo.currentData() or "")))
        self.template_combo.currentIndexChanged.connect(
            edit(lambda _i: setattr(c, "template_id", self.template_combo.currentData() or "")))
        c.changed.connect(self._sync_create)
        c.styles_changed.connect(self._fill_styles)
        c.templates_changed.connect(self._fill_templates)
        p = self.player
        p.current_changed.connect(lambda _f: self._show_player())
        p.frames_changed.connect(self._show_player)
        p.frames_changed.connect(lambda: self._entry_changed(p.job_id) if p.job_id is not None else None)
        p.state_changed.connect(lambda _s: self._show_player())
        p.preview_changed.connect(self._show_player)
        p.playing_changed.connect(self._playing_changed)
        self.queue.entry_changed.connect(self._entry_changed)

    def _sync(self, name: str) -> None:
        f = self.form
        self._syncing = True
        try:
            if name == "mode":
                text = f.mode == "animatediff"
                self.text_mode.setChecked(text)
                self.svd_mode.setChecked(not text)
                self.motion_box.setVisible(text)
                self.pose_box.setVisible(text)
                self.svd_box.setVisible(not text)
                self.loop_box.setEnabled(text)
                self.animate_btn.setText("Animate" if text else "Set in motion")
                # SVD takes no prompt, style or model of the Create tab: the subject only names the files
                for widget in (self.style_combo, self.template_combo, self.model_edit):
                    self.asset_form.setRowVisible(widget, text)
                self.shared_note.setText("Steps, CFG, sampler, seed, size and LoRAs are the Create tab's." if text
                                         else "The subject names the files; steps and seed are the Create tab's.")
            elif name == "frames":
                self.frames_spin.setValue(f.frames)
            elif name == "fps":
                self.fps_spin.setValue(f.fps)
            elif name == "loop":
                self.loop_box.setChecked(f.loop)
            elif name == "motion_adapter" and self.adapter_edit.text() != f.motion_adapter:
                self.adapter_edit.setText(f.motion_adapter)
            elif name == "context":
                self.context_spin.setValue(f.context)
            elif name == "pose_set" and self.pose_combo.currentText() != f.pose_set:
                self.pose_combo.setEditText(f.pose_set)
            elif name == "controlnet" and self.controlnet_edit.text() != f.controlnet:
                self.controlnet_edit.setText(f.controlnet)
            elif name == "control_scale":
                self.control_scale_spin.setValue(f.control_scale)
            elif name == "svd_image" and self.svd_image_edit.text() != f.svd_image:
                self.svd_image_edit.setText(f.svd_image)
            elif name == "svd_model" and self.svd_model_edit.text() != f.svd_model:
                self.svd_model_edit.setText(f.svd_model)
            elif name == "motion":
                self.motion_slider.setValue(round(f.motion * 255))
                self.motion_label.setText(f"{round(f.motion * 255)}")
            elif name == "noise_aug":
                self.noise_spin.setValue(f.noise_aug)
            elif name == "decode_chunk":
                self.chunk_spin.setValue(f.decode_chunk)
            elif name == "svd_cfg":
                self.svd_cfg_spin.setValue(f.svd_cfg)
            elif name == "previews":
                for kind, check in self.preview_boxes.items():
                    check.setChecked(kind in f.previews)
            elif name == "motion_loras":
                self.motion_lora_box.show()
        finally:
            self._syncing = False

    def _sync_create(self, name: str) -> None:
        c = self.create
        self._syncing = True
        try:
            if name == "subject" and self.subject_edit.text() != c.subject:
                self.subject_edit.setText(c.subject)
            elif name == "model" and self.model_edit.text() != c.model:
                self.model_edit.setText(c.model)
            elif name == "style_id":
                select_data(self.style_combo, c.style_id)
            elif name == "template_id":
                select_data(self.template_combo, c.template_id)
        finally:
            self._syncing = False

    def _fill_styles(self) -> None:
        self._syncing = True
        try:
            self.style_combo.clear()
            self.style_combo.addItem("(no style: the prompt alone)", "")
            for pack in self.create.styles:
                self.style_combo.addItem(pack.name, pack.id)
            select_data(self.style_combo, self.create.style_id)
        finally:
            self._syncing = False

    def _fill_templates(self) -> None:
        self._syncing = True
        try:
            self.template_combo.clear()
            self.template_combo.addItem("(no template)", "")
            for tpl in self.create.templates:
                self.template_combo.addItem(tpl.name, tpl.id)
            select_data(self.template_combo, self.create.template_id)
        finally:
            self._syncing = False

    def _previews_toggled(self, _on: bool) -> None:
        if self._syncing:
            return
        chosen = tuple(k for k, box in self.preview_boxes.items() if box.isChecked())
        self.form.previews = chosen

    # --- the player ---------------------------------------------------------------------------------

    def _show_player(self) -> None:
        p = self.player
        self.frame_view.set_image(p.image())
        self.frame_label.setText(p.status())
        have = bool(p.arrived())
        self.play_btn.setEnabled(have)
        self.export_btn.setEnabled(have and p.state != RUNNING)
        self.folder_btn.setEnabled(have)

    def _playing_changed(self, on: bool) -> None:
        self.play_btn.blockSignals(True)
        self.play_btn.setChecked(on)
        self.play_btn.setText("Pause" if on else "Play")
        self.play_btn.blockSignals(False)

    def _entry_changed(self, job_id: int) -> None:
        if job_id != self.player.job_id:
            return
        entry = self.queue.entry(job_id)
        if entry is None:
            return
        running = entry.state in ("running", "queued")
        self.cancel_btn.setEnabled(running)
        if entry.state == "running" and entry.step:
            self.progress.setRange(0, max(1, entry.total))
            self.progress.setValue(entry.step)
        elif entry.state == "running":
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if entry.state == "done" else 0)
        have, n = len(self.player.arrived()), self.player.count
        frames = f" · {have}/{n} frames" if entry.state == "running" and have else ""
        self.progress_text.set_text((entry.status or entry.state.capitalize()) + frames)

    # --- files ---------------------------------------------------------------------------------------

    def _pick(self, title: str, filters: str) -> str:
        path, _ = QFileDialog.getOpenFileName(self, title, self.start_dir, filters)
        return path

    def _pick_folder(self, title: str) -> str:
        return QFileDialog.getExistingDirectory(self, title, self.start_dir)

    def _folder_or_file_button(self, what: str, filters: str, use) -> QPushButton:
        """Browse… with a menu: models come as diffusers folders or as one .safetensors file."""
        from PySide6.QtWidgets import QMenu

        button = QPushButton("Browse…")
        menu = QMenu(button)

        def folder():
            path = self._pick_folder(f"{what}: a diffusers folder")
            if path:
                use(path)

        def file():
            path = self._pick(f"{what}: one file", filters)
            if path:
                use(path)

        menu.addAction("A folder…", folder)
        menu.addAction("A .safetensors file…", file)
        button.setMenu(menu)
        return button

    def _add_motion_lora(self) -> None:
        """A menu of the downloaded catalog motion LoRAs (added by id, so the job travels) and File…."""
        from PySide6.QtWidgets import QMenu

        menu = QMenu(self)
        for entry_id, name in downloaded_motion_loras():
            menu.addAction(name, lambda i=entry_id: self._add_lora_ref(i))
        if not menu.isEmpty():
            menu.addSeparator()
        menu.addAction("File…", self._add_lora_file)
        menu.exec(self.add_lora_btn.mapToGlobal(QPoint(0, self.add_lora_btn.height())))

    def _add_lora_file(self) -> None:
        path = self._pick("Add a motion LoRA", "LoRA (*.safetensors)")
        if path:
            self._add_lora_ref(path)

    def _add_lora_ref(self, ref: str) -> None:
        self.form.add_motion_lora(ref, 1.0)
        self.motion_lora_list.setCurrentRow(len(self.form.motion_loras) - 1)

    def _browse_pose_folder(self) -> None:
        path = self._pick_folder("A folder of pose JSON")
        if path:
            self.form.pose_set = path

    def _browse_svd_image(self) -> None:
        path = self._pick("Picture to set in motion", "Images (*.png *.webp *.jpg *.jpeg)")
        if path:
            self.form.svd_image = path

    def _browse_svd_model(self) -> None:
        path = self._pick_folder("Stable Video Diffusion folder")
        if path:
            self.form.svd_model = path
