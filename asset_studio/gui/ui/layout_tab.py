"""The Layout tab: the layout editor and the ControlNet settings that make generation follow it.

It writes to a LayoutState (and, for "Image size from layout", the Create form's size); it never
touches another tab's widgets.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget,
)

from asset_studio.core.request import layout_size
from asset_studio.gui.model.create_form import CreateForm
from asset_studio.gui.model.layout_state import LayoutState
from asset_studio.gui.ui.tips import TIPS


def _spin(lo: float, hi: float, value: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(lo, hi)
    spin.setSingleStep(0.05)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


class LayoutTab(QWidget):
    get_controlnet = Signal(str)  # "get one in Models": the control type wanted (lineart, canny…)
    generate_requested = Signal()  # "Generate with this layout": the Create tab's job, following it

    def __init__(self, editor, state: LayoutState, form: CreateForm):
        super().__init__()
        self.start_dir = ""  # where Browse opens (the window sets the models folder)
        self.editor = editor
        self.state = state
        self.form = form
        self.use_box = QCheckBox("Follow this layout when generating")
        self.use_box.setToolTip("Generation draws over the layout's lines through ControlNet, so text stays readable.")
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.lineEdit().setPlaceholderText("ControlNet folder, file or repo id")
        self.model_combo.setToolTip("The ControlNet model: it must match the base model's family (SD 1.5 or SDXL) "
                                    "and suit the control type (lineart, canny, scribble).")
        self.scale_spin = _spin(0.0, 2.0, state.scale, TIPS["controlnet_scale"])
        self.start_spin = _spin(0.0, 1.0, state.start,
                                "Guidance start: the fraction of the steps after which ControlNet begins to steer.")
        self.end_spin = _spin(0.0, 1.0, state.end, "Guidance end: ControlNet lets go after this fraction of the steps, "
                                                   "so the model can finish details freely.")
        self.browse_btn = QToolButton()
        self.browse_btn.setText("…")
        self.browse_btn.setToolTip("Choose a ControlNet file (.safetensors) or folder on this computer.")
        self.browse_btn.clicked.connect(self._browse)
        self.get_btn = QToolButton()
        self.get_btn.setText("Get one…")
        self.get_btn.setToolTip("Download a ControlNet that suits the layout's control type on the Models page.")
        self.get_btn.clicked.connect(lambda: self.get_controlnet.emit(self.state.control_type))
        self.size_btn = QPushButton("Image size from layout")
        self.size_btn.setToolTip("Set the Create tab's width and height to the layout's aspect, at about the same pixel count.")
        self.generate_btn = QPushButton("Generate with this layout")
        self.generate_btn.setToolTip("Generate the Create tab's asset following this layout; progress and the "
                                     "result show in the strip below.")
        self.generate_btn.clicked.connect(self._generate)
        bar = QHBoxLayout()
        bar.addWidget(self.use_box)
        bar.addSpacing(12)
        bar.addWidget(QLabel("ControlNet"))
        bar.addWidget(self.model_combo, 2)
        bar.addWidget(self.browse_btn)
        bar.addWidget(self.get_btn)
        scale_label = QLabel("Scale")
        scale_label.setToolTip(TIPS["controlnet_scale"])
        for widget in (scale_label, self.scale_spin, QLabel("Start"), self.start_spin, QLabel("End"), self.end_spin,
                       self.size_btn, self.generate_btn):
            bar.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(bar)
        layout.addWidget(editor, 1)
        self._bind()

    def _bind(self) -> None:
        s, e = self.state, self.editor
        self.use_box.toggled.connect(lambda on: setattr(s, "follow", on))
        self.model_combo.currentTextChanged.connect(lambda _t: setattr(s, "controlnet", self.controlnet_model()))
        self.scale_spin.valueChanged.connect(lambda v: setattr(s, "scale", v))
        self.start_spin.valueChanged.connect(lambda v: setattr(s, "start", v))
        self.end_spin.valueChanged.connect(lambda v: setattr(s, "end", v))
        self.size_btn.clicked.connect(self.match_size)
        # The editor owns the drawing and its undo stack; the state keeps the latest snapshot.
        e.layoutChanged.connect(lambda: s.set_layout(e.layout()))
        for signal in (e.control_combo.currentTextChanged, e.stroke_spin.valueChanged, e.invert_check.toggled,
                       e.low_spin.valueChanged, e.high_spin.valueChanged):
            signal.connect(self._control_edited)
        s.changed.connect(self._state_changed)
        s.set_layout(e.layout())
        self._control_edited()

    def _generate(self) -> None:
        self.use_box.setChecked(True)  # "with this layout": follow it
        self.generate_requested.emit()

    def _control_edited(self, *_args) -> None:
        self.state.set_control(self.editor.control_type(), self.editor.control_options())

    def _state_changed(self, name: str) -> None:
        s = self.state
        if name == "control" and self.editor.control_type() != s.control_type:
            self.editor.control_combo.setCurrentText(s.control_type)  # e.g. the template's hint
        elif name == "follow":
            self.use_box.setChecked(s.follow)

    def set_controlnets(self, models: list) -> None:
        text = self.model_combo.currentText()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for m in models:
            if m.kind == "controlnet":
                self.model_combo.addItem(f"{m.name}  ({m.family_label})", m.ref)
        self.model_combo.blockSignals(False)
        self.model_combo.setEditText(text)
        self.state.controlnet = self.controlnet_model()

    def controlnet_model(self) -> str:
        index = self.model_combo.currentIndex()
        text = self.model_combo.currentText().strip()
        if index >= 0 and text == self.model_combo.itemText(index):
            return self.model_combo.itemData(index) or ""
        return text

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "ControlNet model", self.start_dir,
                                              "ControlNet (*.safetensors);;All files (*)")
        if path:
            self.model_combo.setEditText(path)

    def match_size(self) -> None:
        """The Create form's size to the layout's aspect, at about the same pixel count."""
        layout = self.state.layout
        self.form.set_size(*layout_size(layout.width, layout.height, self.form.width, self.form.height))
