"""The Layout tab's state: the layout being drawn and the ControlNet that makes generation follow it.

The LayoutEditor keeps editing a core.layout.Layout with its own undo stack; this object holds
the latest snapshot and the ControlNet settings, and contributes them to the Create tab's request.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from asset_studio.core.layout import Layout, TextElement
from asset_studio.errors import UserError
from asset_studio.core.request import ControlRequest


class LayoutState(QObject):
    changed = Signal(str)  # the name of what changed: layout, follow, controlnet, scale, start, end, control

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._layout = Layout(512, 256, "#000000", [])
        self._follow = False
        self._controlnet = ""
        self._scale, self._start, self._end = 1.0, 0.0, 1.0
        self._control_type = "lineart"
        self._control_options: dict = {}

    def _set(self, name: str, value) -> None:
        if getattr(self, "_" + name) != value:
            setattr(self, "_" + name, value)
            self.changed.emit(name)

    # --- state ---------------------------------------------------------------------------------

    @property
    def layout(self) -> Layout:
        return self._layout

    def set_layout(self, layout: Layout) -> None:
        """A snapshot of the editor's layout (the editor hands out copies)."""
        self._layout = layout
        self.changed.emit("layout")

    def text(self) -> str:
        """The layout's words (its text elements, in drawing order): what a button template's text is."""
        return " ".join(e.text.strip() for e in self._layout.elements if isinstance(e, TextElement) and e.text.strip())

    @property
    def follow(self) -> bool:
        """Whether generation follows the layout (through ControlNet)."""
        return self._follow

    @follow.setter
    def follow(self, value: bool) -> None:
        self._set("follow", bool(value))

    @property
    def controlnet(self) -> str:
        return self._controlnet

    @controlnet.setter
    def controlnet(self, ref: str) -> None:
        self._set("controlnet", str(ref).strip())

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        self._set("scale", round(float(value), 3))

    @property
    def start(self) -> float:
        return self._start

    @start.setter
    def start(self, value: float) -> None:
        self._set("start", round(float(value), 3))

    @property
    def end(self) -> float:
        return self._end

    @end.setter
    def end(self, value: float) -> None:
        self._set("end", round(float(value), 3))

    @property
    def control_type(self) -> str:
        return self._control_type

    @property
    def control_options(self) -> dict:
        return dict(self._control_options)

    def set_control(self, control_type: str, options: dict | None = None) -> None:
        """What ControlNet sees: the control type and its rendering options (stroke, thresholds)."""
        options = dict(self._control_options if options is None else options)
        if (control_type, options) != (self._control_type, self._control_options):
            self._control_type, self._control_options = control_type, options
            self.changed.emit("control")

    # --- the request ---------------------------------------------------------------------------

    def contribute(self, request) -> None:
        """Add the layout, its ControlNet and the control options to REQUEST when generation follows it."""
        if not self._follow:
            return
        if not self._controlnet:
            raise UserError("Choose the ControlNet model that follows the layout (Layout tab), or turn the layout off.")
        if not self._layout.elements:
            raise UserError("The layout is empty: draw its text and shapes first, or turn the layout off.")
        request.layout = self._layout
        request.controls = [ControlRequest(model=self._controlnet, type=self._control_type, scale=self._scale,
                                           start=self._start, end=self._end)]
        request.control_options = dict(self._control_options)
