"""The Create tab's pose badge: the pose or pose set generation follows, its OpenPose ControlNet (pick,
Browse, Get one…), and Remove. Bound to a PoseLink; shown only while a pose is used."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QToolButton

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
        if not link.kind:
            return
        self.set_text(link.summary())
        self.setStyleSheet("QFrame { background: %s; border-radius: 4px; }"
                           % ("rgba(122, 162, 247, 40)" if link.controlnet else "rgba(224, 160, 64, 60)"))
