"""Sheet data writers, one module per format. Each exposes ``files(sheet, png_paths, out_png, ...)``,
the data files as (path, bytes), and ``write``, which writes them. ``write_sheet`` writes a
sheet's pages and data files as one set through core/outputs.py."""

from __future__ import annotations

import json
import math
import os
import re
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


def data_files(sheet, png_paths: list[Path], fmt: str, out_png: Path,
               options: ExportOptions | None = None) -> list[tuple[Path, bytes]]:
    """The data file(s) of ``fmt`` for a sheet whose pages go to ``png_paths``, as (path, bytes)."""
    options = options or ExportOptions()
    if fmt in ("texturepacker-hash", "texturepacker-array"):
        from asset_studio.core.exporters import texturepacker

        return texturepacker.files(sheet, png_paths, Path(out_png), as_array=fmt.endswith("array"))
    if fmt == "aseprite":
        from asset_studio.core.exporters import aseprite

        return aseprite.files(sheet, png_paths, Path(out_png), options.fps)
    if fmt == "godot4":
        from asset_studio.core.exporters import godot

        return godot.files(sheet, png_paths, Path(out_png), options.fps)
    if fmt == "unity":
        from asset_studio.core.exporters import unity

        return unity.files(sheet, png_paths, Path(out_png), options.fps)
    raise UserError(f"Unknown sheet format '{fmt}': use one of {', '.join(FORMATS)}.")


def export(sheet, png_paths: list[Path], fmt: str, out_png: Path, options: ExportOptions | None = None) -> list[Path]:
    """Write the data file(s) of ``fmt`` for a sheet whose pages are saved at ``png_paths``."""
    from asset_studio.core.outputs import write_data

    return write_data(data_files(sheet, png_paths, fmt, out_png, options))


def write_sheet(sheet, out_png: Path, fmt: str, options: ExportOptions | None = None,
                inputs: list[Path] = (), force: bool = False) -> tuple[list[Path], list[Path]]:
    """Write the pages and data files of a sheet as one set: nothing is replaced until all of it is
    written, an input or a file this command did not write is refused unless ``force``, and pages
    (with their data files) left from an earlier, longer run of the same sheet are removed."""
    from asset_studio.core.outputs import bytes_writer, check_targets, write_set
    from asset_studio.core.sheet import page_paths

    out_png = Path(out_png)
    pngs = page_paths(out_png, len(sheet.pages))
    data = data_files(sheet, pngs, fmt, out_png, options)
    targets = pngs + [path for path, _ in data]
    check_targets(targets, inputs, force, owned=lambda path: owned_sheet_file(path, out_png))
    files = [(path, page.writer()) for page, path in zip(sheet.pages, pngs)]
    files += [(path, bytes_writer(content)) for path, content in data]
    write_set(files, remove=stale_sheet_files(out_png, targets))
    return pngs, [path for path, _ in data]


def _page_pattern(out_png: Path) -> re.Pattern:
    return re.compile(rf"^{re.escape(out_png.stem)}(-[1-9][0-9]*)?{re.escape(out_png.suffix)}$")


def is_sheet_page(path: Path, out_png: Path) -> bool:
    """Whether PATH is a page that `sheet` wrote for OUT_PNG (SHEET.png or SHEET-N.png, marked)."""
    from asset_studio.core.outputs import written_by
    from asset_studio.core.sheet import SHEET_COMMAND

    path, out_png = Path(path), Path(out_png)
    return (  # the name first: it rules out nearly every input without touching the disk
        bool(_page_pattern(out_png).match(path.name))
        and path.parent.resolve() == out_png.parent.resolve()
        and written_by(path, SHEET_COMMAND)
    )


def owned_sheet_file(path: Path, out_png: Path) -> bool:
    """Whether PATH, an existing page or data file of the sheet OUT_PNG, was written by `sheet`."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            return is_sheet_page(path, out_png)
        if path.stat().st_size > 256 * 1024**2:
            return False
        if suffix == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            meta = doc.get("meta") if isinstance(doc, dict) else None
            marks = [doc.get("generator") if isinstance(doc, dict) else None,
                     meta.get("generator") if isinstance(meta, dict) else None]
            return any(isinstance(m, str) and m.startswith("asset-studio") for m in marks)
        if suffix == ".tres":  # a SpriteFrames resource over this sheet's pages only
            text = path.read_text(encoding="utf-8")
            pages = re.findall(r'\[ext_resource type="Texture2D" path="([^"]*)"', text)
            pattern = _page_pattern(Path(out_png))
            return text.startswith('[gd_resource type="SpriteFrames"') and bool(pages) \
                and all(pattern.match(p.rsplit("/", 1)[-1]) for p in pages)
        if suffix == ".cs":
            from asset_studio.core.exporters.unity import SCRIPT

            first = SCRIPT.read_text(encoding="utf-8").splitlines()[0]
            return path.name == SCRIPT.name and path.read_text(encoding="utf-8").startswith(first)
    except (OSError, ValueError, RecursionError):
        return False
    return False


def stale_sheet_files(out_png: Path, keep: list[Path]) -> list[Path]:
    """Pages of an earlier run of the sheet OUT_PNG that the new run does not write (old
    SHEET-3.png when the new sheet has two pages), with their per-page data files."""
    out_png = Path(out_png)
    keep_names = {Path(p).name for p in keep}
    pattern = _page_pattern(out_png)
    try:
        names = sorted(os.listdir(out_png.parent))
    except OSError:
        return []
    stale = []
    for name in names:
        if name in keep_names or not pattern.match(name):
            continue
        page = out_png.parent / name
        if not is_sheet_page(page, out_png):
            continue
        stale.append(page)
        data = page.with_suffix(".json")
        if data.name not in keep_names and data.is_file() and owned_sheet_file(data, out_png):
            stale.append(data)
    return stale


def rotation_supported(fmt: str) -> bool:
    """Only TexturePacker's JSON describes frames stored turned on the page (PixiJS draws them; Phaser 3 does not)."""
    return fmt.startswith("texturepacker")
