"""The studio window: the Create form on the left, the live preview and the library on the right,
and tabs for the layout editor, the style pack editor and the model manager.

The form builds an AssetRequest; compose() turns it into a GenerationJob, and every parameter
shown in the form is passed as an explicit override, so what the artist sees is what runs.
The worker thread runs it; this module never imports torch.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QImage, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QLayout,
    QApplication, QLineEdit, QMainWindow, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSizePolicy,
    QSpinBox, QSplitter, QTabWidget, QToolButton, QVBoxLayout, QWidget,
)

from asset_studio.core.compose import AssetRequest, compose
from asset_studio.core.job import GenerationJob
from asset_studio.core.library import save_control_image
from asset_studio.core.models import DEFAULT_MODELS_DIR
from asset_studio.core.stylepack import StylePack, app_home, list_styles
from asset_studio.core.templates import Template, list_templates
from asset_studio.core.samplers import sampler_names  # plain data: no torch
from asset_studio.errors import UserError
from asset_studio.gui.gallery import GalleryWidget, checkerboard
from asset_studio.gui.model_manager import ModelManager
from asset_studio.gui.settings import Settings
from asset_studio.gui.style_editor import StyleEditor, style_icon
from asset_studio.gui.worker import GenerationWorker, default_engine_factory

MAX_SEED = 2**32 - 1
CONTROL_DIR = ".controls"  # hidden inside the output folder: the gallery lists results, not inputs
WARM_UP_DELAY_MS = 700  # let the window paint first, then load torch in the worker thread

# Artist terms, explained where they are set.
TIPS = {
    "cfg": ("CFG scale (classifier-free guidance): how strictly the image follows the prompt. "
            "Low (2-5) is looser and more natural, 7 is the usual, high (10+) is literal but harsh. "
            "Turbo and LCM models want 0-2."),
    "steps": "Denoising steps: more is slower and usually finer, with little gain past 30. Turbo/LCM models need 1-8.",
    "sampler": "The sampler (scheduler) walks from noise to the image. 'Euler a' and 'DPM++ 2M Karras' are good defaults.",
    "seed": "The seed fixes the starting noise: the same seed and settings give the same image.",
    "lock": ("Locked: use exactly this seed. Unlocked: the style decides (its seed policy: the same subject "
             "always gets the same seed, or a fixed or random seed), and the seed used is shown here afterwards."),
    "batch": "How many images to make; image i uses seed + i.",
    "size": "Output size in pixels (multiples of 8). Models draw best near their training size: 512 for SD 1.5, 1024 for SDXL.",
    "denoise": ("Denoise (strength) when starting from an image: 0 keeps the image, 1 ignores it. "
                "0.4-0.6 repaints details but keeps the composition."),
    "lora": ("LoRA weight: how strongly the style's LoRA pulls the look. 1 is as trained, 0.5-0.8 blends it "
             "with the base model, above 1.2 often breaks images."),
    "controlnet_scale": ("ControlNet scale: how strictly the image follows the layout's lines. 1 is firm, "
                         "0.5 lets the model reinterpret, above 1.5 can look traced."),
    "model": "The base model: a models/ folder entry, a .safetensors checkpoint, or a Hugging Face repo id you downloaded.",
    "negative": "What to keep out of the image (e.g. blurry, text, watermark). Added to the style's and template's negatives.",
    "subject": "What the asset is, in a few words: \"health potion\", \"goblin archer\", \"PLAY\".",
    "extra": "Extra words appended to the composed prompt (lighting, colour, details).",
}


class PreviewPanel(QLabel):
    """The live preview: the latest step's picture, or the finished image, scaled to fit."""

    def __init__(self):
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._image = QImage()
        self._crisp = False
        self.setText("The live preview appears here while an image is generated.")
        self.setWordWrap(True)

    def set_image(self, image: QImage, crisp: bool = False) -> None:
        """crisp: enlarge with nearest-neighbour (finished pixel art); step previews are smoothed."""
        self._image = image
        self._crisp = crisp
        self._rescale()

    def image(self) -> QImage:
        return self._image

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image.isNull():
            return
        side = max(16, min(self.width(), self.height()) - 12)
        # Pixel art stays crisp when enlarged: nearest-neighbour for upscales.
        upscale = max(self._image.width(), self._image.height()) < side
        mode = (Qt.TransformationMode.FastTransformation if (upscale and self._crisp)
                else Qt.TransformationMode.SmoothTransformation)
        scaled = self._image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode)
        canvas = checkerboard(max(scaled.width(), scaled.height())).toImage().copy(0, 0, scaled.width(), scaled.height())
        p = QPainter(canvas)
        p.drawImage(0, 0, scaled)
        p.end()
        self.setPixmap(QPixmap.fromImage(canvas))


class LayoutTab(QWidget):
    """The layout editor (issue 4) and the ControlNet that makes generation follow it."""

    def __init__(self, editor, window: "MainWindow"):
        super().__init__()
        self.editor = editor
        self.window_ = window
        self.use_box = QCheckBox("Follow this layout when generating")
        self.use_box.setToolTip("Generation draws over the layout's lines through ControlNet, so text stays readable.")
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.lineEdit().setPlaceholderText("ControlNet folder, file or repo id")
        self.model_combo.setToolTip("The ControlNet model: it must match the base model's family (SD 1.5 or SDXL) "
                                    "and suit the control type (lineart, canny, scribble).")
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setRange(0.0, 2.0)
        self.scale_spin.setSingleStep(0.05)
        self.scale_spin.setValue(1.0)
        self.scale_spin.setToolTip(TIPS["controlnet_scale"])
        self.start_spin = QDoubleSpinBox()
        self.start_spin.setRange(0.0, 1.0)
        self.start_spin.setSingleStep(0.05)
        self.start_spin.setToolTip("Guidance start: the fraction of the steps after which ControlNet begins to steer.")
        self.end_spin = QDoubleSpinBox()
        self.end_spin.setRange(0.0, 1.0)
        self.end_spin.setSingleStep(0.05)
        self.end_spin.setValue(1.0)
        self.end_spin.setToolTip("Guidance end: ControlNet lets go after this fraction of the steps, "
                                 "so the model can finish details freely.")
        self.size_btn = QPushButton("Image size from layout")
        self.size_btn.setToolTip("Set the Create tab's width and height to the layout's aspect, at about the same pixel count.")
        self.size_btn.clicked.connect(self.match_size)
        bar = QHBoxLayout()
        bar.addWidget(self.use_box)
        bar.addSpacing(12)
        bar.addWidget(QLabel("ControlNet"))
        bar.addWidget(self.model_combo, 2)
        scale_label = QLabel("Scale")
        scale_label.setToolTip(TIPS["controlnet_scale"])
        bar.addWidget(scale_label)
        bar.addWidget(self.scale_spin)
        bar.addWidget(QLabel("Start"))
        bar.addWidget(self.start_spin)
        bar.addWidget(QLabel("End"))
        bar.addWidget(self.end_spin)
        bar.addWidget(self.size_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(bar)
        layout.addWidget(editor, 1)

    def set_controlnets(self, models: list) -> None:
        text = self.model_combo.currentText()
        self.model_combo.clear()
        for m in models:
            if m.kind == "controlnet":
                self.model_combo.addItem(f"{m.name}  ({m.family_label})", m.ref)
        if text:
            self.model_combo.setEditText(text)

    def controlnet_model(self) -> str:
        index = self.model_combo.currentIndex()
        text = self.model_combo.currentText().strip()
        if index >= 0 and text == self.model_combo.itemText(index):
            return self.model_combo.itemData(index) or ""
        return text

    def suggest_control_type(self, control_type: str) -> None:
        combo = getattr(self.editor, "control_combo", None)
        if combo is not None and combo.findText(control_type) >= 0:
            combo.setCurrentText(control_type)

    def match_size(self) -> None:
        layout = self.editor.layout()
        w = self.window_
        area = w.width_spin.value() * w.height_spin.value()
        ratio = layout.width / layout.height
        width, height = (area * ratio) ** 0.5, (area / ratio) ** 0.5
        grow = max(1.0, 64 / min(width, height))  # the smaller side stays at least 64, the aspect kept
        width, height = round(width * grow / 8) * 8, round(height * grow / 8) * 8
        w.width_spin.setValue(width)
        w.height_spin.setValue(height)

    def apply_to(self, job: GenerationJob, template) -> None:
        """Add the ControlNet unit that follows the layout, with its control image saved beside the outputs."""
        if not self.use_box.isChecked():
            return
        from asset_studio.core.control_image import render_control
        from asset_studio.core.job import ControlUnit

        model = self.controlnet_model()
        if not model:
            raise UserError("Choose the ControlNet model that follows the layout (Layout tab), or turn the layout off.")
        layout = self.editor.layout()
        if not layout.elements:
            raise UserError("The layout is empty: draw its text and shapes first, or turn the layout off.")
        if abs(layout.width / layout.height - job.width / job.height) > 0.03 * (layout.width / layout.height):
            raise UserError(f"The layout is {layout.width}x{layout.height} but the image is {job.width}x{job.height}; "
                            "press 'Image size from layout' so the text is not stretched.")
        control_type = self.editor.control_type()
        image = render_control(layout, control_type, size=(job.width, job.height), **self.editor.control_options())
        path = save_control_image(image, self.window_.output_dir / CONTROL_DIR, control_type)
        job.controlnets.append(ControlUnit(model=model, image=str(path), control_type=control_type,
                                           scale=round(self.scale_spin.value(), 3),
                                           guidance_start=round(self.start_spin.value(), 3),
                                           guidance_end=round(self.end_spin.value(), 3)))




class MainWindow(QMainWindow):
    job_submitted = Signal(int, object)  # job_id, GenerationJob (tests and the status bar listen)
    error_shown = Signal(str)
    # Re-emitted on the GUI thread once the window has updated itself (the worker's own signals
    # may reach plain Python callables on the worker thread).
    job_finished = Signal(int, list)
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)

    def __init__(self, output_dir: Path | None = None, models_dir: Path | None = None,
                 settings: Settings | None = None, engine_factory=None):
        super().__init__()
        self.settings = settings or Settings()
        self.output_dir = Path(output_dir) if output_dir else self.settings.output_dir(app_home() / "output")
        self.models_dir = Path(models_dir) if models_dir else self.settings.models_dir(DEFAULT_MODELS_DIR)
        if output_dir:
            self.settings.set_output_dir(self.output_dir)
        if models_dir:
            self.settings.set_models_dir(self.models_dir)
        self.setWindowTitle("Asset Studio")
        self.resize(1400, 900)
        self.setMinimumSize(760, 520)

        self._jobs: dict[int, GenerationJob] = {}
        self._running: int | None = None
        self._t_first_step: float | None = None
        self._first_step = 0
        self.last_error = ""
        self._dialogs: list[QMessageBox] = []
        self.styles: list[StylePack] = []
        self.templates: list[Template] = []
        self._field_edits: dict[str, QLineEdit] = {}

        self._build_form()
        self._build_right()
        self.style_editor = StyleEditor(self)
        self.model_manager = ModelManager(self.models_dir, parent=self)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.create_splitter, "Create")
        self.layout_tab = self._build_layout_tab()
        if self.layout_tab is not None:
            self.tabs.addTab(self.layout_tab, "Layout")
        self.tabs.addTab(self.style_editor, "Style packs")
        self.tabs.addTab(self.model_manager, "Models")
        self.setCentralWidget(self.tabs)
        self._build_menus()
        # The worker thread starts last, so a failure above never leaves a thread running.
        self.worker = GenerationWorker(self.output_dir, device=self.settings.device(),
                                       engine_factory=engine_factory or default_engine_factory)
        self._connect()
        QApplication.instance().aboutToQuit.connect(self.shutdown)
        self.reload_styles()
        self.reload_templates()
        self._restore()
        self.model_manager.refresh()
        self.gallery.refresh()  # the library as it is on disk; thumbnails load as rows are painted
        self._update_buttons()
        self.statusBar().showMessage(f"Output folder: {self.output_dir}")

    # --- building ---------------------------------------------------------------------------

    def _build_form(self) -> None:
        form_host = QWidget()
        outer = QVBoxLayout(form_host)
        outer.setContentsMargins(8, 8, 8, 8)
        # Word-wrapped labels under-report their height; never squeeze the form below its minimum.
        outer.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)

        # Style
        style_box = QGroupBox("Style pack")
        sl = QVBoxLayout(style_box)
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
        self.lora_weight = QDoubleSpinBox()
        self.lora_weight.setRange(-2.0, 3.0)
        self.lora_weight.setSingleStep(0.05)
        self.lora_weight.setValue(1.0)
        self.lora_weight.setToolTip(TIPS["lora"])
        self.lora_label = QLabel("LoRA weight")
        self.lora_label.setToolTip(TIPS["lora"])
        row = QHBoxLayout()
        row.addWidget(self.lora_label)
        row.addWidget(self.lora_weight)
        row.addStretch(1)
        sl.addWidget(self.style_combo)
        top = QHBoxLayout()
        top.addWidget(self.style_previews)
        top.addWidget(self.style_desc, 1)
        sl.addLayout(top)
        sl.addLayout(row)

        # Asset
        asset_box = QGroupBox("Asset")
        al = QFormLayout(asset_box)
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

        # Model and parameters
        params_box = QGroupBox("Parameters")
        pl = QFormLayout(params_box)
        pl.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.setToolTip(TIPS["model"])
        self.model_combo.lineEdit().setPlaceholderText("the style's recommended model")
        self.width_spin = self._spin(64, 2048, 512, 8, TIPS["size"])
        self.height_spin = self._spin(64, 2048, 512, 8, TIPS["size"])
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        self.steps_spin = self._spin(1, 150, 25, 1, TIPS["steps"])
        self.cfg_spin = QDoubleSpinBox()
        self.cfg_spin.setRange(0.0, 30.0)
        self.cfg_spin.setSingleStep(0.5)
        self.cfg_spin.setValue(7.0)
        self.cfg_spin.setToolTip(TIPS["cfg"])
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
        seed_row.addWidget(self.seed_lock)
        seed_row.addWidget(self.seed_random)
        seed_row.addWidget(self.seed_plus)
        self.batch_spin = self._spin(1, 64, 1, 1, TIPS["batch"])
        self.init_edit = QLineEdit()
        self.init_edit.setPlaceholderText("optional: start from an image")
        self.init_edit.setToolTip("Image to image: the generation starts from this picture instead of noise.")
        init_browse = QToolButton()
        init_browse.setText("…")
        init_browse.clicked.connect(self._browse_init)
        init_row = QHBoxLayout()
        init_row.addWidget(self.init_edit, 1)
        init_row.addWidget(init_browse)
        self.denoise_spin = QDoubleSpinBox()
        self.denoise_spin.setRange(0.0, 1.0)
        self.denoise_spin.setSingleStep(0.05)
        self.denoise_spin.setValue(0.6)
        self.denoise_spin.setToolTip(TIPS["denoise"])
        self.reset_btn = QPushButton("Reset to style")
        self.reset_btn.setToolTip("Fill the parameters from the style pack and template again.")
        pl.addRow("Model", self.model_combo)
        pl.addRow("Size", size_row)
        pl.addRow("Steps", self.steps_spin)
        pl.addRow("CFG", self.cfg_spin)
        pl.addRow("Sampler", self.sampler_combo)
        pl.addRow("Seed", seed_row)
        pl.addRow("Batch", self.batch_spin)
        pl.addRow("Init image", init_row)
        pl.addRow("Denoise", self.denoise_spin)
        pl.addRow(self.reset_btn)
        for label_widget in (pl.labelForField(self.cfg_spin), pl.labelForField(self.denoise_spin)):
            if label_widget is not None:
                label_widget.setToolTip(label_widget.buddy().toolTip() if label_widget.buddy() else "")

        outer.addWidget(style_box)
        outer.addWidget(asset_box)
        outer.addWidget(params_box)
        outer.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form_host)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        form_host.setMinimumWidth(340)

        # Generate bar under the form
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
        bar = QWidget()
        bl = QVBoxLayout(bar)
        bl.setContentsMargins(8, 4, 8, 8)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_btn, 3)
        buttons.addWidget(self.cancel_btn, 1)
        bl.addLayout(buttons)
        bl.addWidget(self.progress)
        bl.addWidget(self.queue_label)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(0)
        ll.addWidget(scroll, 1)
        ll.addWidget(bar)
        self.form_panel = left

    def _spin(self, lo: int, hi: int, value: int, step: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    def _build_right(self) -> None:
        self.preview = PreviewPanel()
        self.gallery = GalleryWidget(self.output_dir)
        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.right_splitter.addWidget(self.preview)
        self.right_splitter.addWidget(self.gallery)
        self.right_splitter.setStretchFactor(0, 1)
        self.right_splitter.setStretchFactor(1, 1)
        self.right_splitter.setSizes([420, 420])
        self.create_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.create_splitter.addWidget(self.form_panel)
        self.create_splitter.addWidget(self.right_splitter)
        self.create_splitter.setStretchFactor(0, 0)
        self.create_splitter.setStretchFactor(1, 1)
        self.create_splitter.setSizes([400, 1000])
        self.create_splitter.setCollapsible(0, False)

    def _build_layout_tab(self) -> QWidget | None:
        """The layout editor (issue 4) with the ControlNet that follows it; absent until it exists."""
        try:
            from asset_studio.gui.layout_editor import LayoutEditor
        except ImportError:
            return None
        return LayoutTab(LayoutEditor(), self)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        out_action = QAction("Choose output folder…", self)
        out_action.triggered.connect(self._choose_output)
        open_action = QAction("Open output folder", self)
        open_action.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.output_dir))))
        models_action = QAction("Choose models folder…", self)
        models_action.triggered.connect(self._choose_models)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for a in (out_action, open_action, models_action):
            file_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        engine_menu = self.menuBar().addMenu("&Engine")
        device_menu = engine_menu.addMenu("Device")
        group = QActionGroup(self)
        self.device_actions: dict[str, QAction] = {}
        for key, label in (("auto", "Automatic (GPU when present)"), ("cuda", "NVIDIA GPU (CUDA)"),
                           ("mps", "Apple GPU (Metal)"), ("cpu", "CPU (slow)")):
            action = QAction(label, self, checkable=True)
            action.setData(key)
            group.addAction(action)
            device_menu.addAction(action)
            self.device_actions[key] = action
        current = self.settings.device()
        self.device_actions.get(current, self.device_actions["auto"]).setChecked(True)
        group.triggered.connect(lambda a: self.set_device(a.data()))

        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("About Asset Studio", self)
        about.triggered.connect(lambda: self._info(
            "Asset Studio turns style packs and short subjects into consistent game sprites, "
            "and exports them as background-removed sprite sheets."))
        help_menu.addAction(about)

    def _connect(self) -> None:
        w = self.worker
        w.queued.connect(self._on_queued)
        w.started.connect(self._on_started)
        w.step.connect(self._on_step)
        w.image_saved.connect(self._on_image_saved)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.idle.connect(self._update_buttons)

        self.generate_btn.clicked.connect(self.generate)
        self.cancel_btn.clicked.connect(self.cancel)
        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(seq), self, self.generate)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)

        self.style_combo.currentIndexChanged.connect(self._style_changed)
        self.template_combo.currentIndexChanged.connect(self._template_changed)
        self.reset_btn.clicked.connect(self.fill_from_style)
        self.seed_random.clicked.connect(self.random_seed)
        self.seed_plus.clicked.connect(self.next_seed)
        self.init_edit.textChanged.connect(lambda t: self.denoise_spin.setEnabled(bool(t.strip())))
        self.denoise_spin.setEnabled(False)
        for edit in (self.subject_edit,):
            edit.textChanged.connect(self._update_final_prompt)
        self.prompt_edit.textChanged.connect(self._update_final_prompt)

        self.gallery.rerun_requested.connect(self.submit_job)
        self.gallery.export_requested.connect(self.export_sheet)
        self.gallery.message.connect(self.statusBar().showMessage)
        self.model_manager.models_changed.connect(self._models_changed)
        self.model_manager.use_model.connect(self._use_model)
        self.model_manager.message.connect(self.statusBar().showMessage)
        self.style_editor.styles_changed.connect(self.reload_styles)
        self.style_editor.message.connect(self.statusBar().showMessage)

    # --- styles and templates ---------------------------------------------------------------

    def reload_styles(self) -> None:
        keep = self.current_style_id() or self.settings.last_style()
        problems = []
        self.styles = list_styles(on_error=lambda folder, exc: problems.append(f"{folder.name}: {exc}"))
        self.style_combo.blockSignals(True)
        self.style_combo.clear()
        self.style_combo.addItem(style_icon(None), "No style (prompt only)", "")
        for pack in self.styles:
            self.style_combo.addItem(style_icon(pack), f"{pack.name}  ·  {pack.family_name}", pack.id)
        index = max(0, self.style_combo.findData(keep))
        self.style_combo.setCurrentIndex(index)
        self.style_combo.blockSignals(False)
        self._style_changed()
        if problems:
            self.statusBar().showMessage("Skipped a broken style pack: " + problems[0])

    def reload_templates(self) -> None:
        keep = self.current_template_id() or self.settings.last_template()
        try:
            self.templates = list_templates()
        except UserError as exc:
            self.templates = []
            self.statusBar().showMessage(str(exc))
        self.template_combo.blockSignals(True)
        self.template_combo.clear()
        self.template_combo.addItem("Free (no template)", "")
        for tpl in self.templates:
            self.template_combo.addItem(tpl.name, tpl.id)
            self.template_combo.setItemData(self.template_combo.count() - 1, tpl.description,
                                            Qt.ItemDataRole.ToolTipRole)
        self.template_combo.setCurrentIndex(max(0, self.template_combo.findData(keep)))
        self.template_combo.blockSignals(False)
        self._template_changed()

    def current_style(self) -> StylePack | None:
        sid = self.current_style_id()
        return next((p for p in self.styles if p.id == sid), None)

    def current_style_id(self) -> str:
        return self.style_combo.currentData() or ""

    def current_template(self) -> Template | None:
        tid = self.current_template_id()
        return next((t for t in self.templates if t.id == tid), None)

    def current_template_id(self) -> str:
        return self.template_combo.currentData() or ""

    def select_style(self, style_id: str) -> None:
        self.style_combo.setCurrentIndex(max(0, self.style_combo.findData(style_id)))

    def select_template(self, template_id: str) -> None:
        self.template_combo.setCurrentIndex(max(0, self.template_combo.findData(template_id)))

    def _style_changed(self, *_args) -> None:
        pack = self.current_style()
        self.settings.set_last_style(pack.id if pack else "")
        if pack is None:
            self.style_desc.setText("The prompt is used as written; pick a style pack to keep assets consistent.")
        else:
            loras = ", ".join(Path(l.file or l.filename).name for l in pack.loras) or "no LoRA (prompt-only style)"
            # What drives the look comes first, so a long description never hides it.
            self.style_desc.setText(f"{loras}\n{pack.description.splitlines()[0] if pack.description else ''}")
            self.style_desc.setToolTip(pack.description)
        self._show_style_previews(pack)
        has_lora = bool(pack and pack.loras)
        self.lora_weight.setVisible(has_lora)
        self.lora_label.setVisible(has_lora)
        if has_lora:
            self.lora_weight.setValue(pack.loras[0].weight)
        self._rebuild_fields()
        self.fill_from_style()

    def _show_style_previews(self, pack: StylePack | None) -> None:
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
        self.style_previews.setPixmap(strip.copy(0, 0, drawn * 68, 64))

    def _template_changed(self, *_args) -> None:
        self.settings.set_last_template(self.current_template_id())
        tpl = self.current_template()
        self.template_combo.setToolTip(tpl.description if tpl else "No template: the subject is the whole prompt.")
        if tpl is not None and tpl.controlnet != "none" and self.layout_tab is not None:
            self.layout_tab.suggest_control_type(tpl.controlnet)
        self._rebuild_fields()
        self.fill_from_style()

    def _rebuild_fields(self) -> None:
        """One line edit per named field the style and template declare (e.g. the button's text)."""
        old = {k: e.text() for k, e in self._field_edits.items()}
        while self.fields_layout.rowCount():
            self.fields_layout.removeRow(0)
        self._field_edits = {}
        declared = {}
        for owner in (self.current_template(), self.current_style()):
            if owner is not None:
                for name, spec in owner.fields.items():
                    declared.setdefault(name, spec)
        for name, spec in declared.items():
            edit = QLineEdit(old.get(name, ""))
            edit.setPlaceholderText(spec.default if spec.default is not None else "required")
            edit.setToolTip(spec.description)
            edit.textChanged.connect(self._update_final_prompt)
            self.fields_layout.addRow(name.replace("_", " ").capitalize(), edit)
            self._field_edits[name] = edit
        self.fields_host.setVisible(bool(declared))

    def _field_values(self, placeholder: str | None = None) -> dict[str, str]:
        values = {}
        for name, edit in self._field_edits.items():
            text = edit.text().strip()
            if text:
                values[name] = text
            elif placeholder is not None:
                values[name] = edit.placeholderText() if edit.placeholderText() != "required" else placeholder
        return values

    def fill_from_style(self) -> None:
        """Parameters as the style and template recommend them (the user can then change any)."""
        try:
            job = compose(AssetRequest(subject=self.subject_edit.text().strip() or "subject",
                                       style=self.current_style(), template=self.current_template(),
                                       fields=self._field_values(placeholder="text"), model="-"))
        except UserError as exc:
            self.statusBar().showMessage(str(exc))
            return
        self.width_spin.setValue(job.width)
        self.height_spin.setValue(job.height)
        self.steps_spin.setValue(job.steps)
        self.cfg_spin.setValue(job.cfg_scale)
        index = self.sampler_combo.findText(job.sampler)
        if index >= 0:
            self.sampler_combo.setCurrentIndex(index)
        if not self.seed_lock.isChecked():
            self.seed_spin.setValue(job.seed)
        self._update_final_prompt()

    def _update_final_prompt(self, *_args) -> None:
        subject = self.subject_edit.text().strip()
        if not subject:
            self.final_prompt.setText("")
            return
        try:
            job = self.build_job(preview=True)
        except UserError as exc:
            self.final_prompt.setText(str(exc))
            return
        self.final_prompt.setText(f"→ {job.prompt}")

    # --- models -----------------------------------------------------------------------------

    def _models_changed(self, models: list) -> None:
        text = self.model_combo.currentText() or self.settings.last_model()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for m in models:
            if m.kind == "checkpoint":
                self.model_combo.addItem(f"{m.name}  ({m.family_label})", m.ref)
        self.model_combo.blockSignals(False)
        if not text and self.model_combo.count():
            text = self.model_combo.itemData(0)  # a model on disk beats an empty box and an error
        self._use_model(text)
        if self.layout_tab is not None:
            self.layout_tab.set_controlnets(models)

    def _use_model(self, ref: str) -> None:
        index = self.model_combo.findData(ref)
        if index >= 0:
            self.model_combo.setCurrentIndex(index)
        else:
            self.model_combo.setEditText(ref)
        if ref and self.sender() is self.model_manager:
            self.tabs.setCurrentIndex(0)  # "Use for generation" takes the artist back to the form

    def current_model(self) -> str:
        index = self.model_combo.currentIndex()
        text = self.model_combo.currentText().strip()
        if index >= 0 and text == self.model_combo.itemText(index):
            return self.model_combo.itemData(index) or ""
        return text

    def set_model(self, ref: str) -> None:
        self._use_model(str(ref))

    def first_run_check(self) -> None:
        """With no model anywhere, open the model manager so the first thing is getting one."""
        def check(models=None):
            models = self.model_manager.local if models is None else models
            if not any(m.kind == "checkpoint" for m in models) and not self.current_model():
                self.tabs.setCurrentWidget(self.model_manager)
                self.statusBar().showMessage("No model yet: download one (SD-Turbo makes images in 1-4 steps) or import a checkpoint.")
        if self.model_manager.scanned:
            check()
        else:
            self.model_manager.models_changed.connect(check, Qt.ConnectionType.SingleShotConnection)

    # --- seed -------------------------------------------------------------------------------

    def seed(self) -> int:
        return int(self.seed_spin.value())

    def random_seed(self) -> None:
        self.seed_spin.setValue(random.randrange(MAX_SEED + 1))
        self.seed_lock.setChecked(True)

    def next_seed(self) -> None:
        self.seed_spin.setValue((self.seed() + 1) % (MAX_SEED + 1))
        self.seed_lock.setChecked(True)

    # --- jobs -------------------------------------------------------------------------------

    def build_job(self, preview: bool = False) -> GenerationJob:
        """The job the form describes; raises UserError with the sentence to show."""
        subject = self.subject_edit.text().strip()
        extra = " ".join(self.prompt_edit.toPlainText().split())
        pack, tpl = self.current_style(), self.current_template()
        if not subject and pack is None and tpl is None and extra:
            subject, extra = extra, ""  # a plain prompt with no style: the prompt is the subject
        overrides = {
            "width": self.width_spin.value(), "height": self.height_spin.value(),
            "steps": self.steps_spin.value(), "cfg_scale": round(self.cfg_spin.value(), 2),
            "sampler": self.sampler_combo.currentText(), "batch_count": self.batch_spin.value(),
        }
        if self.seed_lock.isChecked():
            overrides["seed"] = self.seed()
        init = self.init_edit.text().strip()
        if init:
            if not preview and not Path(init).is_file():
                raise UserError(f"The start image {init} does not exist.")
            overrides["init_image"] = init
            overrides["denoise"] = round(self.denoise_spin.value(), 2)
        model = self.current_model() or None
        if preview:
            model = model or "-"
        job = compose(AssetRequest(subject=subject, style=pack, template=tpl, fields=self._field_values(),
                                   model=model, overrides=overrides))
        if extra:
            job.prompt = f"{job.prompt}, {extra}"
        negative = " ".join(self.negative_edit.toPlainText().split())
        if negative:
            job.negative_prompt = f"{job.negative_prompt}, {negative}" if job.negative_prompt else negative
        if job.loras and self.lora_weight.isVisible():
            scale = self.lora_weight.value() / (pack.loras[0].weight or 1.0)
            for lora in job.loras:
                lora.weight = round(lora.weight * scale, 3)
        if self.layout_tab is not None and not preview:
            self.layout_tab.apply_to(job, tpl)
        return job

    def generate(self) -> int | None:
        try:
            job = self.build_job()
        except UserError as exc:
            self.show_error(str(exc))
            return None
        self.settings.set_last_model(self.current_model())
        if not self.seed_lock.isChecked():
            self.seed_spin.setValue(job.seed)  # show the seed the style chose, ready to lock
        return self.submit_job(job)

    def submit_job(self, job: GenerationJob) -> int:
        job_id = self.worker.submit(job)
        self.job_submitted.emit(job_id, job)
        return job_id

    def cancel(self) -> None:
        if self.worker.busy():
            self.worker.cancel()
            self.statusBar().showMessage("Cancelling…")

    # --- worker signals ---------------------------------------------------------------------

    def _on_queued(self, job_id: int, job: GenerationJob) -> None:
        self._jobs[job_id] = job
        self._update_buttons()

    def _on_started(self, job_id: int) -> None:
        self._running = job_id
        self._t_first_step = None
        job = self._jobs.get(job_id)
        total = job.steps * job.batch_count if job else 1
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat("Loading the model…" if job else "Starting…")
        self.statusBar().showMessage(f"Generating: {job.subject or job.prompt[:60]}" if job else "Generating…")
        self._update_buttons()

    def _on_step(self, job_id: int, step: int, total: int, preview: QImage) -> None:
        now = time.perf_counter()
        if self._t_first_step is None:
            # Time left is measured from the first step, so model loading does not skew it.
            self._t_first_step, self._first_step = now, step
        self.progress.setRange(0, total)
        self.progress.setValue(step)
        rate = (now - self._t_first_step) / (step - self._first_step) if step > self._first_step else None
        left = f" · {self._fmt_time(rate * (total - step))} left" if rate else ""
        self.progress.setFormat(f"Step {step} / {total}{left}")
        if not preview.isNull():
            self.preview.set_image(preview)

    @staticmethod
    def _fmt_time(seconds: float) -> str:
        seconds = max(0, int(round(seconds)))
        return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"

    def _on_image_saved(self, job_id: int, path: str, image: QImage) -> None:
        if not image.isNull():
            self.preview.set_image(image, crisp=True)
        self.gallery.add_image(path)

    def _on_finished(self, job_id: int, paths: list) -> None:
        self._job_done(job_id)
        self.progress.setFormat(f"Done: {len(paths)} image(s)")
        self.progress.setValue(self.progress.maximum())
        self.statusBar().showMessage(f"Saved {len(paths)} image(s) to {self.output_dir}")
        self.job_finished.emit(job_id, paths)

    def _on_failed(self, job_id: int, message: str) -> None:
        self._job_done(job_id)
        self.progress.setFormat("Failed")
        self.show_error(message)
        self.job_failed.emit(job_id, message)

    def _on_cancelled(self, job_id: int) -> None:
        self._job_done(job_id)
        self.progress.setFormat("Cancelled")
        self.progress.setValue(0)
        self.statusBar().showMessage("Cancelled; finished images were kept.")
        self.job_cancelled.emit(job_id)

    def _job_done(self, job_id: int) -> None:
        self._jobs.pop(job_id, None)
        if self._running == job_id:
            self._running = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.worker.busy()
        self.cancel_btn.setEnabled(busy)
        waiting = max(0, len(self._jobs) - (1 if self._running is not None else 0))
        self.queue_label.setText(f"{waiting} job(s) queued" if waiting else "")
        if not busy and self.progress.format() in ("Idle", ""):
            self.progress.setValue(0)

    # --- messages ---------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        """A non-blocking dialog (the window keeps working behind it) and the status bar."""
        self.last_error = message
        self.statusBar().showMessage(message)
        box = QMessageBox(QMessageBox.Icon.Warning, "Asset Studio", message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda *_: self._dialogs.remove(box) if box in self._dialogs else None)
        self._dialogs.append(box)
        box.show()
        self.error_shown.emit(message)

    def _info(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Asset Studio", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()

    # --- folders, device, export ------------------------------------------------------------

    def _browse_init(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start from an image", str(self.output_dir),
                                              "Images (*.png *.jpg *.jpeg *.webp)")
        if path:
            self.init_edit.setText(path)

    def set_output_dir(self, path: Path) -> None:
        self.output_dir = Path(path)
        self.settings.set_output_dir(self.output_dir)
        self.worker.set_output_dir(self.output_dir)
        self.gallery.set_output_dir(self.output_dir)
        self.statusBar().showMessage(f"Output folder: {self.output_dir}")

    def _choose_output(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", str(self.output_dir))
        if path:
            self.set_output_dir(Path(path))

    def _choose_models(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Models folder", str(self.models_dir))
        if path:
            self.models_dir = Path(path)
            self.settings.set_models_dir(self.models_dir)
            self.model_manager.set_models_dir(self.models_dir)

    def set_device(self, device: str) -> None:
        self.settings.set_device(device)
        self.worker.set_device(device)
        self.statusBar().showMessage(f"Device: {device}; the next job runs on it.")

    def export_sheet(self, paths: list) -> None:
        from asset_studio.gui.gallery import SheetExportDialog

        dialog = SheetExportDialog([Path(p) for p in paths], self.output_dir, self)
        dialog.message.connect(self.statusBar().showMessage)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.sheet_dialog = dialog  # reachable for tests and for a second look

    # --- persistence ------------------------------------------------------------------------

    def _restore(self) -> None:
        s = self.settings
        if not s.geometry().isEmpty():
            self.restoreGeometry(s.geometry())
        if not s.window_state().isEmpty():
            self.restoreState(s.window_state())
        self._splitters_restored = False
        self.tabs.setCurrentIndex(min(s.current_tab(), self.tabs.count() - 1))
        if s.last_model():
            self.model_combo.setEditText(s.last_model())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._splitters_restored:
            # Splitter sizes only stick once the window has its real size.
            self._splitters_restored = True
            QTimer.singleShot(WARM_UP_DELAY_MS, self.worker.warm_up)
            for name, splitter in self._splitters().items():
                state = self.settings.splitter(name)
                if not state.isEmpty():
                    splitter.restoreState(state)

    def _splitters(self) -> dict[str, QSplitter]:
        return {"create": self.create_splitter, "right": self.right_splitter, "gallery": self.gallery.splitter}

    def save_settings(self) -> None:
        s = self.settings
        s.set_geometry(self.saveGeometry())
        s.set_window_state(self.saveState())
        for name, splitter in self._splitters().items():
            s.set_splitter(name, splitter.saveState())
        s.set_current_tab(self.tabs.currentIndex())
        s.set_last_style(self.current_style_id())
        s.set_last_template(self.current_template_id())
        s.set_last_model(self.current_model())
        s.set_output_dir(self.output_dir)
        s.set_models_dir(self.models_dir)
        s.sync()

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the worker and download threads (on close, and when the application quits)."""
        self.worker.shutdown()
        self.model_manager.shutdown()
