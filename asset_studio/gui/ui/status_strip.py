"""The strip below the tabs: the job running (words, bar, Cancel) and the latest result as a small
picture that opens it in the viewer, bound to gui/model/run_status.RunStatus. The window shows it
on every tab but Create, whose panel and viewer already show the same."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QProgressBar, QPushButton, QToolButton

from asset_studio.gui.model.run_status import RunStatus
from asset_studio.gui.ui.form_rows import ElidedLabel

THUMB = 40


class StatusStrip(QFrame):
    open_requested = Signal(str)  # the latest result's path ("" for the live preview): show it in the viewer
    cancel_requested = Signal()

    def __init__(self, status: RunStatus, parent=None):
        super().__init__(parent)
        self.status = status
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedHeight(THUMB + 12)
        self.thumb = QToolButton()
        self.thumb.setIconSize(QSize(THUMB, THUMB))
        self.thumb.setFixedSize(THUMB + 6, THUMB + 6)
        self.thumb.setAutoRaise(True)
        self.thumb.setEnabled(False)
        self.thumb.clicked.connect(self._open)
        self.text = ElidedLabel("Idle")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)  # the words sit beside the bar, never over it
        self.bar.setFixedSize(220, 10)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the running job (Esc); finished images are kept.")
        self.cancel_btn.clicked.connect(self.cancel_requested)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 8, 2)
        row.addWidget(self.thumb)
        row.addWidget(self.text, 1)
        row.addWidget(self.bar, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.cancel_btn)
        status.changed.connect(self.refresh)
        self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        if not self.isVisible():  # on the Create tab: brought up to date when it shows again
            return
        s = self.status
        self.text.set_text(s.headline())
        self.bar.setRange(0, s.view.maximum)
        self.bar.setValue(s.view.value)
        self.bar.setVisible(s.job_id is not None)
        self.cancel_btn.setEnabled(s.busy)
        image, words = s.picture()
        if not image.isNull():
            pix = QPixmap.fromImage(image).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation if image.width() <= THUMB else
                Qt.TransformationMode.SmoothTransformation)
            self.thumb.setIcon(QIcon(pix))
        self.thumb.setEnabled(not image.isNull())
        self.thumb.setToolTip(words)

    def _open(self) -> None:
        image, words = self.status.picture()
        if not image.isNull():
            live = words.startswith("Step preview") or self.status.latest_path is None
            self.open_requested.emit("" if live else str(self.status.latest_path))
