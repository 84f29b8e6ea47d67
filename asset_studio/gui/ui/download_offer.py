"""The window's side of a missing cut-out model: the offer (once per model), a progress bar and
Cancel in the status bar, and the messages when it ends. The work is gui/model/model_download."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMainWindow, QMessageBox, QProgressBar, QPushButton

from asset_studio.gui.model.model_download import ModelDownload


class DownloadOffer(QObject):
    def __init__(self, window: QMainWindow, output_dir: Callable[[], Path], on_error: Callable[[str], None],
                 on_done: Callable[[], None]):
        super().__init__(window)
        self.window, self.output_dir, self.on_error, self.on_done = window, output_dir, on_error, on_done
        self.download = ModelDownload(self)
        self.offered: set[str] = set()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(160)
        self.cancel = QPushButton("Cancel download")
        for widget in (self.bar, self.cancel):
            window.statusBar().addPermanentWidget(widget)
            widget.hide()
        self.cancel.clicked.connect(self.download.cancel)
        self.download.progress.connect(self._progress)
        self.download.finished.connect(lambda path, made: self._ended(
            f"Installed {Path(path).name}; made {len(made)} sprite(s) the earlier runs could not."))
        self.download.failed.connect(self._failed)
        self.download.cancelled.connect(lambda: self._ended("The download was cancelled; nothing was kept."))

    def offer(self, name: str) -> QMessageBox | None:
        """A run needed rembg's NAME and it is not installed: offer it once (non-blocking). The raw
        images are kept either way; their sprites are made once the file is here."""
        if name in self.offered or self.download.busy():
            return None
        self.offered.add(name)
        box = QMessageBox(QMessageBox.Icon.Question, "Asset Studio",
                          f"Cutting the background out needs rembg's {name} model, which is not installed. "
                          "Download it now? The raw images are kept, and their sprites are made as soon as it "
                          "is here.", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self.window)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.button(QMessageBox.StandardButton.Yes).clicked.connect(lambda: self.start(name))
        box.show()
        return box

    def start(self, name: str, source=None) -> None:
        """Fetch NAME with a progress bar in the status bar and Cancel; then make the missing sprites."""
        if self.download.busy():
            return
        self.bar.setRange(0, 0)
        self.bar.show()
        self.cancel.show()
        self.window.statusBar().showMessage(f"Downloading {name}…")
        self.download.start(name, self.output_dir(), source=source)

    def _progress(self, done: int, total: int) -> None:
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(done)

    def _failed(self, message: str) -> None:
        self._ended(message)
        self.on_error(message)

    def _ended(self, message: str) -> None:
        self.bar.hide()
        self.cancel.hide()
        self.window.statusBar().showMessage(message)
        self.on_done()
