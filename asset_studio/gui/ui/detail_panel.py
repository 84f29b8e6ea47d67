"""The small panel under the viewer in "Detail a region…" mode: the regions drawn, the detailer's
settings (denoise, prompt, padding, mask blur), and Detail / Cancel. Bound to DetailRegions."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout,
)

from asset_studio.gui.model.detail_regions import DetailRegions


class DetailPanel(QFrame):
    detail_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, regions: DetailRegions):
        super().__init__()
        self.regions = regions
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.hint = QLabel()
        self.hint.setStyleSheet("color: palette(placeholder-text);")
        self.hint.setMinimumWidth(40)  # a long hint is cut, it never widens the viewer
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setPlaceholderText("Prompt of the regions (the image's own by default)")
        self.prompt_edit.setToolTip("What the regions are redrawn as; [PROMPT] stands for the image's own prompt.")
        self.prompt_edit.setMinimumWidth(80)
        self.remove_btn = QPushButton("Remove")
        self.remove_btn.setToolTip("Remove the selected region (Delete).")
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.setToolTip("Remove every region.")
        self.denoise_spin = QDoubleSpinBox()
        self.denoise_spin.setRange(0.05, 1.0)
        self.denoise_spin.setSingleStep(0.05)
        self.denoise_spin.setToolTip("How much each region changes: 0.3 keeps its shapes, 0.7 repaints it.")
        self.padding_spin = QSpinBox()
        self.padding_spin.setRange(0, 512)
        self.padding_spin.setSuffix(" px")
        self.padding_spin.setToolTip("Context around each region the model sees (the dashed frame); "
                                     "pixels outside it never change.")
        self.blur_spin = QSpinBox()
        self.blur_spin.setRange(0, 128)
        self.blur_spin.setSuffix(" px")
        self.blur_spin.setToolTip("The redrawn region fades into the image over this many pixels.")
        self.detail_btn = QPushButton("Detail")
        self.detail_btn.setDefault(True)
        self.detail_btn.setToolTip("Redraw the regions: the result is a new image beside this one in the gallery.")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Leave Detail mode without redrawing anything.")

        top = QHBoxLayout()
        top.addWidget(self.hint, 1)
        top.addWidget(self.remove_btn)
        top.addWidget(self.clear_btn)
        top.addWidget(self.cancel_btn)
        top.addWidget(self.detail_btn)
        bottom = QHBoxLayout()
        bottom.addWidget(self.prompt_edit, 1)
        for text, spin in (("Denoise", self.denoise_spin), ("Padding", self.padding_spin), ("Blur", self.blur_spin)):
            bottom.addWidget(QLabel(text))
            bottom.addWidget(spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addLayout(bottom)

        self.prompt_edit.textEdited.connect(lambda t: regions.set_setting("prompt", t))
        self.denoise_spin.valueChanged.connect(lambda v: regions.set_setting("denoise", round(v, 2)))
        self.padding_spin.valueChanged.connect(lambda v: regions.set_setting("padding", v))
        self.blur_spin.valueChanged.connect(lambda v: regions.set_setting("mask_blur", v))
        self.remove_btn.clicked.connect(lambda: regions.remove())
        self.clear_btn.clicked.connect(regions.clear)
        self.detail_btn.clicked.connect(self.detail_clicked)
        self.cancel_btn.clicked.connect(self.cancel_clicked)
        regions.changed.connect(self._changed)
        self._changed("active")

    def _changed(self, name: str) -> None:
        r = self.regions
        self.setVisible(r.active)
        if name == "active":
            for spin, value in ((self.denoise_spin, r.denoise), (self.padding_spin, r.padding),
                                (self.blur_spin, r.mask_blur)):
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)
            self.prompt_edit.setText(r.prompt)
        n = len(r.boxes)
        if not n:
            self.hint.setText("Drag a rectangle around each region to redraw · drag a box to move it, its edges "
                              "to resize it · right-drag pans, the wheel zooms")
        else:
            size = f" · selected: {r.boxes[r.selected].width}×{r.boxes[r.selected].height} px" if r.selected >= 0 else ""
            self.hint.setText(f"{n} region{'s' if n != 1 else ''} to redraw{size}")
        self.remove_btn.setEnabled(r.selected >= 0)
        self.clear_btn.setEnabled(bool(n))
        self.detail_btn.setEnabled(bool(n))
        self.hint.setToolTip(self.hint.text())
