"""Sheet data writers, one module per format. Each exposes ``write(sheet, png_paths, options)``
and returns the data files it wrote beside the page images."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from asset_studio.errors import UserError

FORMATS = ("texturepacker-hash", "texturepacker-array", "aseprite", "godot4", "unity")


@dataclass
class ExportOptions:
    fps: float = 10.0  # animation speed: Aseprite frame durations, Godot speed, Unity clip rate
    data_path: Path | None = None  # default: the first page's path with the format's suffix

    def __post_init__(self) -> None:
        # NaN and infinity would pass a plain "> 0" and land in the data files as invalid JSON.
        if not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps) or not 0 < self.fps <= 1000:
            raise UserError(f"The animation speed (fps) must be a number above 0 and at most 1000, not {self.fps}.")


def export(sheet, png_paths: list[Path], fmt: str, out_png: Path, options: ExportOptions | None = None) -> list[Path]:
    """Write the data file(s) of ``fmt`` for a sheet whose pages are saved at ``png_paths``."""
    options = options or ExportOptions()
    if fmt in ("texturepacker-hash", "texturepacker-array"):
        from asset_studio.core.exporters import texturepacker

        return texturepacker.write(sheet, png_paths, Path(out_png), as_array=fmt.endswith("array"))
    if fmt == "aseprite":
        from asset_studio.core.exporters import aseprite

        return aseprite.write(sheet, png_paths, Path(out_png), options.fps)
    if fmt == "godot4":
        from asset_studio.core.exporters import godot

        return godot.write(sheet, png_paths, Path(out_png), options.fps)
    if fmt == "unity":
        from asset_studio.core.exporters import unity

        return unity.write(sheet, png_paths, Path(out_png), options.fps)
    raise UserError(f"Unknown sheet format '{fmt}': use one of {', '.join(FORMATS)}.")


def rotation_supported(fmt: str) -> bool:
    """Only TexturePacker's JSON describes frames stored turned on the page (PixiJS draws them; Phaser 3 does not)."""
    return fmt.startswith("texturepacker")
