"""The Create tab's after-pass sections (hires fix, refiner, tiled upscale), bound to a PassesForm.

Each section is collapsed by default: a header with the pass's name, its On switch and, when on,
the one line of what it will do ("×2, Latent, denoise 0.5"); the arrow opens its settings.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QSpinBox,
    QToolButton, QVBoxLayout, QWidget,
)

from asset_studio.gui.model.passes_form import SECTIONS, TITLES, PassesForm
from asset_studio.gui.ui.form_rows import ElidedLabel

TIPS = {
    "hires": "Generate at the base size, enlarge, then redraw at the new size over the same model "
             "(AUTOMATIC1111's hires fix): sharper detail at sizes the model cannot start from.",
    "refiner": "Hand the end of the schedule to a second model: SDXL's refiner takes over the last steps; "
               "with SD 1.5 the second model redraws the finished picture lightly.",
    "detail": "Find regions with a detector (faces, hands…) and redraw each at the model's working size by "
              "inpainting over the same model (ADetailer's \"inpaint only masked\"), pasted back with a soft edge.",
    "tiled_upscale": "Enlarge the finished picture and redraw it tile by tile (Ultimate SD Upscale): "
                     "big backgrounds at any size, each tile at the model's own size.",
}


class Section(QWidget):
    """A header (arrow + title, On switch, summary) over a body that opens and closes."""

    def __init__(self, title: str, tip: str):
        super().__init__()
        self.arrow = QToolButton()
        self.arrow.setText(title)
        self.arrow.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.arrow.setArrowType(Qt.ArrowType.RightArrow)
        self.arrow.setAutoRaise(True)
        self.arrow.setToolTip(tip)
        self.arrow.setStyleSheet("QToolButton { font-weight: bold; }")
        self.switch = QCheckBox("On")
        self.switch.setToolTip(tip)
        self.summary = ElidedLabel()  # one line, elided; the whole line in its tooltip
        self.summary.setStyleSheet("color: palette(placeholder-text);")
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.arrow)
        header.addWidget(self.switch)
        header.addWidget(self.summary, 1)
        self.body = QWidget()
        self.form = QFormLayout(self.body)
        self.form.setContentsMargins(22, 2, 0, 6)
        self.body.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.body)
        self.arrow.clicked.connect(lambda: self.set_open(not self.is_open()))

    def set_open(self, on: bool) -> None:
        self.arrow.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)

    def is_open(self) -> bool:
        return not self.body.isHidden()


def _double(lo, hi, step, decimals=2, special=""):
    spin = QDoubleSpinBox()
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setDecimals(decimals)
    if special:
        spin.setSpecialValueText(special)
    return spin


def _int(lo, hi, step, special=""):
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    if special:
        spin.setSpecialValueText(special)
    return spin


def _choice(items, editable=True):
    combo = QComboBox()
    combo.setEditable(editable)
    combo.addItems(items)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
    return combo


def _typed(text: str, like):
    """TEXT as the kind of value LIKE is: a list from comma-separated words, else the text."""
    if isinstance(like, list):
        return [w.strip() for w in text.split(",") if w.strip()]
    return text


class PassesPanel(QWidget):
    """The three sections; edits go to the PassesForm, its changes refresh the summaries."""

    def __init__(self, form: PassesForm):
        super().__init__()
        self.form = form
        self.start_dir = ""
        self.sections: dict[str, Section] = {}
        self.fields: dict[tuple[str, str], QWidget] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        for name in SECTIONS:
            section = Section(TITLES[name], TIPS[name])
            self.sections[name] = section
            layout.addWidget(section)
            section.switch.toggled.connect(lambda on, n=name: self.form.set_on(n, on))
        from asset_studio.core.job import HIRES_IMAGE_UPSCALERS, HIRES_LATENT_UPSCALERS

        upscalers = list(HIRES_LATENT_UPSCALERS + HIRES_IMAGE_UPSCALERS) + self._catalog_ids("upscaler")
        self._row("hires", "scale", "Scale", _double(1.05, 4, 0.25), "Enlarge by this much (×).")
        self._row("hires", "upscaler", "Upscaler", _choice(upscalers),
                  "latent: resize the latents (A1111's Latent); lanczos / nearest: resize the picture; "
                  "or an upscale model's .safetensors file or catalog id.", browse="Upscale models (*.safetensors)")
        self._row("hires", "denoise", "Denoise", _double(0.01, 1, 0.05), "How much the second pass may change (0-1).")
        self._row("hires", "steps", "Steps", _int(0, 150, 1, "as the base"), "Steps the second pass runs.")
        self._row("refiner", "model", "Model", _choice([]), "The second model (SDXL: the refiner).",
                  browse="Models (*.safetensors)")
        self._row("refiner", "switch_at", "Switch at", _double(0.05, 0.95, 0.05),
                  "Fraction of the steps the base model runs before the refiner takes over.")
        self._row("detail", "detector", "Detector", _choice([""]),
                  "A YOLO detector exported to ONNX (.onnx); the common face and hand detectors are AGPL-3.0.",
                  browse="ONNX detectors (*.onnx)")
        self._row("detail", "classes", "Classes", QLineEdit(), "The detector's classes to keep, e.g. face, hand "
                  "(empty: all).")
        self._row("detail", "confidence", "Confidence", _double(0.01, 1, 0.05), "The lowest detection score kept.")
        self._row("detail", "max_regions", "Largest", _int(0, 64, 1, "all"), "Only the N largest regions.")
        self._row("detail", "dilate", "Dilate", _int(-256, 256, 2), "Grow (or, negative, shrink) each region's mask.")
        self._row("detail", "mask_blur", "Mask blur", _int(0, 256, 2), "The pasted crop fades out over this radius.")
        self._row("detail", "padding", "Padding", _int(0, 1024, 8), "Context around each region the model sees.")
        self._row("detail", "denoise", "Denoise", _double(0.01, 1, 0.05), "How much each region may change.")
        self._row("detail", "steps", "Steps", _int(0, 150, 1, "as the base"), "Steps each region runs.")
        self._row("detail", "prompt", "Prompt", QLineEdit(), "Empty: the image's prompt; [PROMPT] stands for it.")
        self._row("detail", "inpaint_model", "Inpaint model", _choice(["", *self._catalog_repos("inpaint")]),
                  "An inpainting model of the same family; empty: the model's own modules.",
                  browse="Models (*.safetensors)")
        tiled_upscalers = list(HIRES_IMAGE_UPSCALERS) + self._catalog_ids("upscaler")
        self._row("tiled_upscale", "scale", "Scale", _double(1.25, 8, 0.25), "Enlarge the finished picture by this much.")
        self._row("tiled_upscale", "upscaler", "Upscaler", _choice(tiled_upscalers),
                  "How to enlarge before the tiles are redrawn: lanczos, nearest, or an upscale model.",
                  browse="Upscale models (*.safetensors)")
        self._row("tiled_upscale", "tile", "Tile", _int(64, 2048, 64), "Tile side in pixels: the model's own size.")
        self._row("tiled_upscale", "padding", "Padding", _int(0, 1024, 8), "Context around each tile the model sees.")
        self._row("tiled_upscale", "mask_blur", "Mask blur", _int(0, 512, 2),
                  "Feather of each tile's edge (at most half the padding).")
        self._row("tiled_upscale", "denoise", "Denoise", _double(0, 1, 0.05, special="enlarge only"),
                  "How much each tile may change; 0 only enlarges.")
        self._row("tiled_upscale", "steps", "Steps", _int(0, 150, 1, "as the base"), "Steps each tile runs.")
        self._row("tiled_upscale", "seams", "Seams", _choice(["none", "band", "half-tile"], editable=False),
                  "Redraw the joins afterwards: a band along each, or tiles centred on them.")
        self._row("tiled_upscale", "seams_width", "Seams width", _int(8, 2048, 8), "Width of each band (band mode).")
        self._row("tiled_upscale", "seams_denoise", "Seams denoise", _double(0.01, 1, 0.05), "Denoise of the seams pass.")
        self._row("tiled_upscale", "controlnet", "ControlNet", _choice(["", *self._catalog_ids("controlnet", "tile")]),
                  "A ControlNet tile model (e.g. controlnet-tile-sd15) keeps each tile to what it shows.",
                  browse="ControlNets (*.safetensors)")
        self._row("tiled_upscale", "controlnet_scale", "ControlNet strength", _double(0, 2, 0.1), "")
        self.form.changed.connect(self._show)
        for name in SECTIONS:
            self._show(name)

    @staticmethod
    def _catalog_ids(kind: str, word: str = "") -> list[str]:
        """Catalog models of KIND (their ids work once downloaded), e.g. the upscalers."""
        from asset_studio.core.models import load_catalog
        from asset_studio.errors import UserError

        try:
            return [e.id for e in load_catalog() if e.kind == kind and word in e.id]
        except UserError:
            return []

    @staticmethod
    def _catalog_repos(kind: str) -> list[str]:
        """The repositories of catalog models of KIND (a downloaded one loads by its repo id)."""
        from asset_studio.core.models import load_catalog
        from asset_studio.errors import UserError

        try:
            return [e.repo for e in load_catalog() if e.kind == kind]
        except UserError:
            return []

    def _row(self, section: str, name: str, label: str, widget: QWidget, tip: str, browse: str = "") -> None:
        widget.setToolTip(tip)
        self.fields[(section, name)] = widget
        value = self.form.value(section, name)
        if isinstance(widget, QLineEdit):  # text, or a list typed with commas (the detector's classes)
            widget.setText(", ".join(value) if isinstance(value, list) else str(value))
            widget.textChanged.connect(lambda text, s=section, n=name: self.form.set_value(s, n, _typed(
                text, self.form.value(s, n))))
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(str(value))
            widget.currentTextChanged.connect(lambda text, s=section, n=name: self.form.set_value(s, n, text.strip()))
        else:
            widget.setValue(value)
            widget.valueChanged.connect(lambda v, s=section, n=name, w=widget: self.form.set_value(
                s, n, round(float(v), 3) if isinstance(w, QDoubleSpinBox) else int(v)))
        if browse:
            row = QHBoxLayout()
            row.addWidget(widget, 1)
            button = QToolButton()
            button.setText("…")
            button.setToolTip(f"Choose a file ({browse})")
            button.clicked.connect(lambda _=False, w=widget, f=browse: self._browse(w, f))
            row.addWidget(button)
            self.sections[section].form.addRow(label, row)
        else:
            self.sections[section].form.addRow(label, widget)

    def _browse(self, combo: QComboBox, filters: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model file", self.start_dir, filters)
        if path:
            combo.setCurrentText(path)

    def _show(self, section: str) -> None:
        s = self.sections[section]
        on = self.form.on[section]
        if s.switch.isChecked() != on:
            s.switch.blockSignals(True)
            s.switch.setChecked(on)
            s.switch.blockSignals(False)
        s.summary.set_text(self.form.summary(section))
        for (owner, name), widget in self.fields.items():  # values set elsewhere (a test, a loaded job)
            if owner != section:
                continue
            value = self.form.value(section, name)
            widget.blockSignals(True)
            if isinstance(widget, QLineEdit):
                text = ", ".join(value) if isinstance(value, list) else str(value)
                if _typed(widget.text(), value) != value:
                    widget.setText(text)
            elif isinstance(widget, QComboBox):
                if widget.currentText() != str(value):
                    widget.setCurrentText(str(value))
            elif widget.value() != value:
                widget.setValue(value)
            widget.blockSignals(False)

    def set_models(self, models: list) -> None:
        """Local models for the refiner (checkpoints and refiners) and the tile ControlNet boxes."""
        for key, kinds in ((("refiner", "model"), ("checkpoint", "refiner")), (("tiled_upscale", "controlnet"), ("controlnet",))):
            combo = self.fields[key]
            text = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            if key[1] == "controlnet":
                combo.addItems(["", *self._catalog_ids("controlnet", "tile")])
            for m in models:
                if m.kind in kinds:
                    combo.addItem(m.ref)
            combo.setCurrentText(text)
            combo.blockSignals(False)
