"""Engine ▸ Where images are made…: this computer or ComfyUI servers, with a connection check."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QRadioButton, QVBoxLayout,
)

from asset_studio.errors import UserError
from asset_studio.gui.model.engine_choice import ENGINES, EngineChoice


class EngineDialog(QDialog):
    def __init__(self, choice: EngineChoice, parent=None):
        super().__init__(parent)
        self.choice = choice
        self.setWindowTitle("Where images are made")
        self.local = QRadioButton(ENGINES["local"] + " (this machine's GPU or CPU)")
        self.remote = QRadioButton(ENGINES["comfyui"] + " (one image per server at a time; a pool shares the queue)")
        (self.local if choice.engine == "local" else self.remote).setChecked(True)
        self.servers = QPlainTextEdit("\n".join(choice.servers))
        self.servers.setPlaceholderText("one address per line, e.g. http://192.168.1.20:8188")
        self.servers.setFixedHeight(self.servers.fontMetrics().lineSpacing() * 5 + 12)
        self.report = QLabel("")
        self.report.setWordWrap(True)
        check = QPushButton("Check connection")
        check.clicked.connect(self._check)
        choice.checked.connect(self._show_report)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.local, self.remote, QLabel("Servers"), self.servers, check, self.report, buttons):
            layout.addWidget(widget)
        self._reports: list[str] = []

    def urls(self) -> list[str]:
        return [line.strip() for line in self.servers.toPlainText().splitlines() if line.strip()]

    def _check(self) -> None:
        self._reports = []
        self.report.setText("Asking the servers…" if self.urls() else "Add a server address first.")
        if self.urls():
            self.choice.check(self.urls())

    def _show_report(self, report) -> None:
        self._reports.append(f"{'✓' if report.ok else '✗'} {report.url}: {report.text}")
        self.report.setText("\n".join(self._reports))

    def _accept(self) -> None:
        try:
            self.choice.set("local" if self.local.isChecked() else "comfyui", self.urls())
        except UserError as exc:
            self.report.setText(str(exc))
            return
        self.accept()
