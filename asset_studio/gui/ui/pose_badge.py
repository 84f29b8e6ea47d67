"""The Create tab's pose badge: the pose or pose set generation follows, its OpenPose ControlNet (pick,
Browse, Get one…), and Remove. Bound to a PoseLink; shown only while a pose is used."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QToolButton

from asset_studio.gui.model.pose_link import PoseLink
from asset_studio.gui.ui.badge import Badge
from asset_studio.gui.ui.controlnet_picker import ControlNetPicker


class PoseBadge(Badge):
    edit_requested = Signal()  # "Edit": the window shows the Pose tab

    def __init__(self, link: PoseLink):
        super().__init__()
        self.link = link
        self.picker = ControlNetPicker(
            "The OpenPose ControlNet that follows the skeleton; it must match the model's family (SD 1.5 or SDXL).",
            "Download an OpenPose ControlNet on the Models page.")
        self.layout().insertWidget(1, self.picker)  # its own line, under the sentence: the box needs the width
        strength = self.add(QLabel("Strength"))
        self.scale_spin = self.add(QDoubleSpinBox())
        self.scale_spin.setRange(0.0, 2.0)
        self.scale_spin.setSingleStep(0.05)
        self.scale_spin.setValue(link.scale)
        tip = "How strongly the skeleton steers the image (the ControlNet scale); lower lets the model pose more freely."
        strength.setToolTip(tip)
        self.scale_spin.setToolTip(tip)
        self.scale_spin.valueChanged.connect(lambda v: setattr(link, "scale", v))
        self.edit_btn = self.add(QToolButton())
        self.edit_btn.setText("Edit")
        self.edit_btn.setToolTip("Show the pose on the Pose tab.")
        self.edit_btn.clicked.connect(self.edit_requested)
        self.remove_btn = self.add(QToolButton())
        self.remove_btn.setText("Remove")
        self.remove_btn.setToolTip("Generate without the pose.")
        self.remove_btn.clicked.connect(link.clear)
        self.picker.changed.connect(lambda ref: setattr(link, "controlnet", ref))
        link.changed.connect(self._show)
        self._show()

    def set_controlnets(self, models: list) -> None:
        """The installed ControlNets; with none chosen, one named for OpenPose is taken."""
        self.picker.set_models(models)
        self.link.offer_controlnets(self.picker.refs())
        self.picker.set_model(self.link.controlnet)

    def _show(self, what: str = "") -> None:
        link = self.link
        self.setVisible(bool(link.kind))
        if what == "controlnet":
            self.picker.set_model(link.controlnet)
        elif what == "scale" and self.scale_spin.value() != link.scale:
            self.scale_spin.setValue(link.scale)
        if not link.kind:
            return
        self.set_text(link.summary())
        self.set_warning(not link.controlnet)
