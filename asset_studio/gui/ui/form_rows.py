"""Widget pieces the Create and Animate tabs build alike: spin boxes, the scrolled settings column, a path
row with its buttons, the run bar (the big button, Cancel, the progress line and bar), a short list of
weighted LoRAs, and a combo that shows a value of the model. One home, so the two tabs look and behave
the same."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QLayout, QListWidget,
    QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
)


def _ranged(box, lo, hi, value, step, tip: str):
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


def spin(lo: int, hi: int, value: int, step: int, tip: str) -> QSpinBox:
    return _ranged(QSpinBox(), lo, hi, value, step, tip)


def double(lo: float, hi: float, value: float, step: float, tip: str) -> QDoubleSpinBox:
    return _ranged(QDoubleSpinBox(), lo, hi, value, step, tip)


class ElidedLabel(QLabel):
    """One line, fixed height, elided: a changing text never reflows the form under the pointer.
    The whole text is in the tooltip."""

    def __init__(self, text: str = ""):
        super().__init__()
        self._full = ""
        self.setFixedHeight(self.fontMetrics().height() + 4)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(40)
        self.set_text(text)

    def set_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(10, self.width() - 2)))


def settings_column() -> tuple[QWidget, QVBoxLayout]:
    """The tab's settings: a column of boxes on a host widget; scrolled(host) once they are in (set into
    the scroll area earlier, the widgets added later are laid out a little differently)."""
    host = QWidget()
    column = QVBoxLayout(host)
    column.setContentsMargins(8, 8, 8, 8)
    # Word-wrapped labels under-report their height; never squeeze the form below its minimum.
    column.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
    return host, column


def scrolled(host: QWidget) -> QScrollArea:
    """The filled settings column, scrolling up and down, never sideways."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(host)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    host.setMinimumWidth(340)
    return scroll


def form_box(title: str) -> tuple[QGroupBox, QFormLayout]:
    """A titled box of labelled rows whose fields take the width."""
    box = QGroupBox(title)
    form = QFormLayout(box)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return box, form


def editable_combo(placeholder: str) -> QComboBox:
    """A list to pick from that also takes a typed name or path (typing never adds an item)."""
    combo = QComboBox()
    combo.setEditable(True)
    combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    combo.lineEdit().setPlaceholderText(placeholder)
    return combo


def path_row(edit: QWidget, *buttons: QWidget) -> QHBoxLayout:
    """A path (or name) box taking the width, its Browse… buttons after it."""
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    for button in buttons:
        row.addWidget(button)
    return row


def select_data(combo: QComboBox, data) -> None:
    """Show the item holding DATA (the first item, "none", when no item does)."""
    combo.setCurrentIndex(max(0, combo.findData(data)))


class RunBar(QWidget):
    """Under the settings: the big button (3/4 of the width) and Cancel, then the progress line over a thin
    bar (the text sits above the bar, never drawn over it). Further rows go in `column`."""

    def __init__(self, text: str, tip: str, cancel_tip: str):
        super().__init__()
        self.button = QPushButton(text)
        self.button.setToolTip(tip)
        self.button.setMinimumHeight(36)
        font = self.button.font()
        font.setBold(True)
        self.button.setFont(font)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip(cancel_tip)
        self.cancel_btn.setMinimumHeight(36)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress_text = ElidedLabel("Idle")
        self.column = QVBoxLayout(self)
        self.column.setContentsMargins(8, 4, 8, 8)
        buttons = QHBoxLayout()
        buttons.addWidget(self.button, 3)
        buttons.addWidget(self.cancel_btn, 1)
        self.column.addLayout(buttons)
        self.column.addWidget(self.progress_text)
        self.column.addWidget(self.progress)


class WeightedList:
    """A short list of LoRAs shown as "name  × weight", the selected one's weight in a spin box under the
    buttons. The model holds the list: ITEMS() gives objects with .name and .weight, SET_WEIGHT(row, w)
    changes one; show() refreshes the list after the model changed."""

    def __init__(self, tip: str, weight_tip: str, buttons: Sequence[QWidget], items: Callable[[], list],
                 set_weight: Callable[[int, float], None]):
        self.items = items
        self.list = QListWidget()
        self.list.setFixedHeight(self.list.fontMetrics().lineSpacing() * 3 + 8)
        self.list.setToolTip(tip)
        self.weight = double(-2.0, 3.0, 1.0, 0.05, weight_tip)
        self.weight.valueChanged.connect(lambda v: set_weight(self.list.currentRow(), v))
        self.list.currentRowChanged.connect(self._selected)
        column = QVBoxLayout()
        for widget in (*buttons, self.weight):
            column.addWidget(widget)
        self.row = QHBoxLayout()
        self.row.addWidget(self.list, 1)
        self.row.addLayout(column)

    def show(self) -> None:
        row = self.list.currentRow()
        self.list.clear()
        for item in self.items():
            self.list.addItem(f"{item.name}  × {item.weight:g}")
        self.list.setCurrentRow(min(row, self.list.count() - 1))

    def _selected(self, row: int) -> None:
        items = self.items()
        if 0 <= row < len(items):
            self.weight.blockSignals(True)  # showing the weight is not setting it
            self.weight.setValue(items[row].weight)
            self.weight.blockSignals(False)
