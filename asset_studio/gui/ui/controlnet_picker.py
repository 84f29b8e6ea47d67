"""A ControlNet box: the installed ControlNets, any folder / file / repo id typed in, Browse (…) for a
file and "Get one…" for the Models page. The Layout tab and the Create tab's pose badge use it."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QToolButton, QWidget


class ControlNetPicker(QWidget):
    changed = Signal(str)  # the chosen model reference ("" for none)
    get_one = Signal()  # "Get one…": the window shows the Models page

    def __init__(self, tip: str, get_tip: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.start_dir = ""  # where Browse opens (the window sets the models folder)
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.lineEdit().setPlaceholderText("ControlNet folder, file or repo id")
        self.combo.setToolTip(tip)
        self.combo.setMinimumContentsLength(12)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.browse_btn = QToolButton()
        self.browse_btn.setText("…")
        self.browse_btn.setToolTip("Choose a ControlNet file (.safetensors) or folder on this computer.")
        self.browse_btn.clicked.connect(self.browse)
        self.get_btn = QToolButton()
        self.get_btn.setText("Get one…")
        self.get_btn.setToolTip(get_tip)
        self.get_btn.clicked.connect(self.get_one)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.browse_btn)
        row.addWidget(self.get_btn)
        self.combo.currentTextChanged.connect(lambda _t: self.changed.emit(self.model()))

    def set_models(self, models: list) -> None:
        """The installed ControlNets (core.models entries); the text in the box is kept."""
        text = self.combo.currentText()
        self.combo.blockSignals(True)
        self.combo.clear()
        for m in models:
            if m.kind == "controlnet":
                self.combo.addItem(f"{m.name}  ({m.family_label})", m.ref)
        index = self.combo.findText(text)
        if index >= 0:  # the same installed entry again (not just its label as typed text)
            self.combo.setCurrentIndex(index)
        else:
            self.combo.setEditText(text)
        self.combo.blockSignals(False)
        self.changed.emit(self.model())

    def refs(self) -> list[str]:
        return [self.combo.itemData(i) for i in range(self.combo.count()) if self.combo.itemData(i)]

    def model(self) -> str:
        index = self.combo.currentIndex()
        text = self.combo.currentText().strip()
        if index >= 0 and text == self.combo.itemText(index):
            return self.combo.itemData(index) or ""
        return text

    def set_model(self, ref: str) -> None:
        """Show REF: its installed entry when there is one, else the text."""
        if ref == self.model():
            return
        index = self.combo.findData(ref)
        if index >= 0:
            self.combo.setCurrentIndex(index)
            self.combo.setEditText(self.combo.itemText(index))
        else:
            self.combo.setEditText(ref)

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "ControlNet model", self.start_dir,
                                              "ControlNet (*.safetensors);;All files (*)")
        if path:
            self.combo.setEditText(path)
