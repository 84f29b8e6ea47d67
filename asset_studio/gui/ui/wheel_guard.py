"""The mouse wheel changes only the control the artist is using.

Qt gives the wheel to whatever combo box or spin box is under the pointer, so scrolling a long
form turns "Free" into "Icon" on the way down. This filter lets such a control take the wheel only
while it has the keyboard focus (the artist clicked into it); otherwise the event goes on to the
scroll area around it. The controls stop taking focus from the wheel itself, too.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSlider, QAbstractSpinBox, QComboBox, QScrollBar, QWidget

GUARDED = (QComboBox, QAbstractSpinBox, QAbstractSlider)


class WheelGuard(QObject):
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if (event.type() == QEvent.Type.Wheel and isinstance(obj, GUARDED) and not isinstance(obj, QScrollBar)
                and not obj.hasFocus()):
            # Not the control's: the scroll area around it scrolls instead (its scroll bar takes the turn).
            area = obj.parentWidget()
            while area is not None and not isinstance(area, QAbstractScrollArea):
                area = area.parentWidget()
            if area is not None:
                QCoreApplication.sendEvent(area.verticalScrollBar(), event)
            return True
        return False


_GUARD: WheelGuard | None = None


def _guard() -> WheelGuard:
    global _GUARD
    if _GUARD is None:
        _GUARD = WheelGuard()
    return _GUARD


def guard_wheel(root: QWidget) -> int:
    """Guard every combo box, spin box and slider under ROOT (and ROOT itself); returns how many."""
    guard = _guard()
    widgets = [root, *root.findChildren(QWidget)]
    count = 0
    for w in widgets:
        if isinstance(w, GUARDED) and not isinstance(w, QScrollBar) and not w.property("wheel_guarded"):
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # click or Tab, not the wheel, gives focus
            w.installEventFilter(guard)
            w.setProperty("wheel_guarded", True)
            count += 1
    return count
