"""The Train page: pick a folder of your own sprites, see them with their captions, set the few
settings that matter, watch the loss and the samples while it trains, and use the new style pack
in the Create tab in one click. State lives in gui/model/training.TrainingRun."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
    QPushButton, QSpinBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

from asset_studio.errors import UserError
from asset_studio.gui.model.training import TrainingRun


class TrainPage(QWidget):
    use_style = Signal(str)  # "Use in Create": the new pack's id

    def __init__(self, run: TrainingRun, parent: QWidget | None = None):
        super().__init__(parent)
        self.run = run
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a folder of your finished sprites (PNG, JPEG, WebP); NAME.txt = caption")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.lineEdit().setPlaceholderText("base model (SD 1.5 or SDXL)")
        self.id_edit = QLineEdit()
        self.id_edit.setPlaceholderText("from the folder's name")
        self.trigger_edit = QLineEdit()
        self.trigger_edit.setPlaceholderText("the pack id")
        self.steps_spin = _spin(10, 100000, 1000, 100)
        self.rank_spin = _spin(1, 256, 16, 4)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 1e-2)
        self.lr_spin.setSingleStep(1e-5)
        self.lr_spin.setValue(1e-4)
        self.res_spin = _spin(0, 2048, 0, 64)
        self.res_spin.setSpecialValueText("the model's own")
        self.te_box = QCheckBox("Train the text encoder too")
        self.flip_box = QCheckBox("Mirrored copies (flip)")

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        form.addRow("Images", row)
        form.addRow("Base model", self.model_combo)
        form.addRow("Pack id", self.id_edit)
        form.addRow("Trigger word", self.trigger_edit)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Rank", self.rank_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Resolution", self.res_spin)
        form.addRow("", self.te_box)
        form.addRow("", self.flip_box)

        self.dataset = QTreeWidget()
        self.dataset.setHeaderLabels(["Image", "Caption"])
        self.dataset.setRootIsDecorated(False)
        self.start_btn = QPushButton("Train")
        self.resume_btn = QPushButton("Resume")
        self.cancel_btn = QPushButton("Cancel")
        self.use_btn = QPushButton("Use in Create")
        for button, slot in ((self.start_btn, self._start), (self.resume_btn, lambda: self._start(resume=True)),
                             (self.cancel_btn, run.cancel), (self.use_btn, self._use)):
            button.clicked.connect(slot)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)  # the text goes on its own line, not over the bar
        self.status = QLabel("Pick a folder of your images.")
        self.status.setWordWrap(True)
        self.loss_label = QLabel("")
        self.sample_label = QLabel()
        self.sample_label.setMinimumSize(256, 256)
        self.sample_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        buttons = QHBoxLayout()
        for button in (self.start_btn, self.resume_btn, self.cancel_btn, self.use_btn):
            buttons.addWidget(button)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addLayout(buttons)
        left.addWidget(self.progress)
        left.addWidget(self.status)
        left.addWidget(self.loss_label)
        left.addWidget(self.dataset, 1)
        right = QVBoxLayout()
        right.addWidget(QLabel("Latest sample"))
        right.addWidget(self.sample_label, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addLayout(right, 2)

        self.folder_edit.editingFinished.connect(self._show_dataset)
        run.progress.connect(self._on_progress)
        run.status.connect(self.status.setText)
        run.failed.connect(lambda message: self.status.setText(message))
        run.sample.connect(self._on_sample)
        run.state_changed.connect(self._on_state)
        run.finished.connect(lambda pack_id: self.status.setText(
            f"The style pack '{pack_id}' is ready: Use in Create makes it the current style."))
        self._on_state(run.state)

    def set_models(self, models: list) -> None:
        text = self.model_combo.currentText()
        self.model_combo.clear()
        for m in models:
            if m.kind == "checkpoint":
                self.model_combo.addItem(f"{m.name}  ({m.family_label})", m.ref)
        if text:
            self.model_combo.setEditText(text)

    def apply_settings(self) -> None:
        """The form's values into the run's settings."""
        s = self.run.settings
        index = self.model_combo.currentIndex()
        text = self.model_combo.currentText().strip()
        s.model = (self.model_combo.itemData(index) if index >= 0 and text == self.model_combo.itemText(index)
                   else text) or ""
        s.data_dir = self.folder_edit.text().strip()
        s.pack_id, s.trigger = self.id_edit.text().strip(), self.trigger_edit.text().strip()
        s.steps, s.rank, s.learning_rate = self.steps_spin.value(), self.rank_spin.value(), self.lr_spin.value()
        s.resolution, s.train_text_encoder, s.flip = self.res_spin.value(), self.te_box.isChecked(), self.flip_box.isChecked()

    # --- slots ----------------------------------------------------------------------------------

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of your images", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self._show_dataset()

    def _show_dataset(self) -> None:
        self.apply_settings()
        self.dataset.clear()
        if not self.run.settings.data_dir:
            return
        try:
            rows = self.run.dataset_preview()
        except UserError as exc:
            self.status.setText(str(exc))
            return
        for name, caption in rows:
            self.dataset.addTopLevelItem(QTreeWidgetItem([name, caption]))
        self.status.setText(f"{len(rows)} images; each caption starts with the trigger word.")

    def _start(self, resume: bool = False) -> None:
        self.apply_settings()
        try:
            self.run.start(resume=resume)
        except UserError as exc:
            self.status.setText(str(exc))

    def _use(self) -> None:
        if self.run.pack_dir is not None:
            self.use_style.emit(self.run.pack_dir.name)

    def _on_progress(self, step: int, total: int, loss: float, left: float) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(step)
        tail = f" · about {_duration(left)} left" if left >= 0 else ""
        self.status.setText(f"Step {step} of {total} · loss {loss:.4f}{tail}")
        recent = self.run.losses[-50:]
        self.loss_label.setText(f"mean loss of the last {len(recent)} steps: {sum(recent) / len(recent):.4f}")

    def _on_sample(self, image) -> None:
        from PySide6.QtGui import QPixmap

        from asset_studio.gui.worker import pil_to_qimage

        pixmap = QPixmap.fromImage(pil_to_qimage(image, 512))
        self.sample_label.setPixmap(pixmap.scaled(self.sample_label.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation))

    def _on_state(self, state: str) -> None:
        busy = state in ("checking", "training")
        self.start_btn.setEnabled(not busy)
        self.resume_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self.use_btn.setEnabled(state == "finished")


def _spin(lo: int, hi: int, value: int, step: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setValue(value)
    return spin


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
