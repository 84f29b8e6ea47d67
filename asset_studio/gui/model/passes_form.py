"""The Create tab's after-passes: hires fix, refiner, detailer and tiled upscale, each on or off
with its settings.

The settings are the job's own dataclasses (core/job HiresFix, Refiner, DetailPass, TiledUpscale),
so what the sections show is what `contribute()` puts into the request's Overrides and prepare()
checks; a pass that is off contributes nothing. `summary(section)` is the one line a collapsed
section shows ("×2, Latent, denoise 0.45" beside "Hires fix"). The Create tab's detailer finds its
regions with a detector; regions drawn by hand belong to one image (the viewer's Detail a region…).
"""

from __future__ import annotations

import copy
from dataclasses import fields, replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from asset_studio.core.job import DetailPass, HiresFix, Refiner, TiledUpscale
from asset_studio.errors import UserError

SECTIONS = ("hires", "refiner", "detail", "tiled_upscale")
TITLES = {"hires": "Hires fix", "refiner": "Refiner", "detail": "Detailer", "tiled_upscale": "Tiled upscale"}
UPSCALER_NAMES = {"latent": "Latent", "latent-nearest": "Latent (nearest)", "lanczos": "Lanczos", "nearest": "Nearest"}


def _short(ref: str) -> str:
    return UPSCALER_NAMES.get(ref) or Path(ref).stem or ref


def pass_summary(section: str, s) -> str:
    """One line of what a pass does (its settings S: core/job HiresFix, Refiner or TiledUpscale)."""
    if section == "hires":
        return f"×{s.scale:g}, {_short(s.upscaler)}, denoise {s.denoise:g}"
    if section == "refiner":
        name = Path(s.model).stem or "no model chosen"
        return f"{name}, switch at {s.switch_at:g}"
    if section == "detail":
        found = Path(s.detector).stem or "no detector chosen"
        if s.classes:
            found += f" ({', '.join(s.classes)})"
        largest = f", the {s.max_regions} largest" if s.max_regions else ""
        return f"{found}{largest}, denoise {s.denoise:g}"
    seams = "" if s.seams == "none" else f", {s.seams} seams"
    cn = ", tile ControlNet" if s.controlnet else ""
    return f"×{s.scale:g}, {_short(s.upscaler)}, {s.tile} px tiles, denoise {s.denoise:g}{seams}{cn}"


class PassesForm(QObject):
    changed = Signal(str)  # the section whose switch or settings changed

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.on = {name: False for name in SECTIONS}
        self.settings = {"hires": HiresFix(), "refiner": Refiner(model=""), "detail": DetailPass(),
                         "tiled_upscale": TiledUpscale()}

    def set_on(self, section: str, on: bool) -> None:
        if self.on[section] != bool(on):
            self.on[section] = bool(on)
            self.changed.emit(section)

    def value(self, section: str, name: str):
        return getattr(self.settings[section], name)

    def set_value(self, section: str, name: str, value) -> None:
        current = self.settings[section]
        if name not in {f.name for f in fields(current)}:
            raise KeyError(f"{section} has no setting {name}")
        if getattr(current, name) != value:
            setattr(current, name, value)
            self.changed.emit(section)

    def summary(self, section: str) -> str:
        """One line for a collapsed section: what the pass will do, or "" when it is off."""
        return pass_summary(section, self.settings[section]) if self.on[section] else ""

    def contribute(self, overrides) -> None:
        """Put the passes that are on into OVERRIDES (core/request.Overrides)."""
        if self.on["hires"]:
            overrides.hires = replace(self.settings["hires"])
        if self.on["refiner"]:
            refiner = self.settings["refiner"]
            if not refiner.model.strip():
                raise UserError("Choose the refiner's model, or turn the refiner off.")
            overrides.refiner = replace(refiner, model=refiner.model.strip())
        if self.on["detail"]:
            detail = self.settings["detail"]
            if not detail.detector.strip():
                raise UserError("Choose the detailer's detector (a YOLO model exported to .onnx), or turn the "
                                "detailer off; regions drawn by hand go on a gallery image (Detail a region…).")
            overrides.detail = [copy.deepcopy(detail)]
        if self.on["tiled_upscale"]:
            overrides.tiled_upscale = replace(self.settings["tiled_upscale"])

