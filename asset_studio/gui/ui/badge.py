"""The Create tab's badges: a tinted strip saying what generation follows from another tab (the
layout, the pose or pose set) with its buttons. One look and one height for every badge."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget


def two_line_label() -> QLabel:
    """A word-wrapped label of a fixed two lines: its text changes without reflowing the form."""
    label = QLabel()
    label.setWordWrap(True)
    label.setFixedHeight(label.fontMetrics().lineSpacing() * 2 + 4)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    label.set_text = lambda text: (label.setText(text), label.setToolTip(text))
    return label


class Badge(QFrame):
    """A two-line sentence over a row of buttons, right-aligned; hidden until something is followed."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("badge")  # the tint is the badge's only: its labels (QFrames too) stay clear
        self.set_warning(False)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 4, 8, 4)
        column.setSpacing(2)
        self.label = two_line_label()
        self.row = QHBoxLayout()
        self.row.addStretch(1)
        column.addWidget(self.label)
        column.addLayout(self.row)

    def add(self, widget: QWidget, stretch: int = 0) -> QWidget:
        self.row.addWidget(widget, stretch)
        return widget

    def set_text(self, text: str) -> None:
        self.label.set_text(text)

    def set_warning(self, warning: bool) -> None:
        """Amber while something is missing (a ControlNet to follow with), else the calm blue."""
        tint = "rgba(224, 160, 64, 60)" if warning else "rgba(122, 162, 247, 40)"
        self.setStyleSheet(f"QFrame#badge {{ background: {tint}; border-radius: 4px; }}")
