"""The gallery's sheet export: options, a live preview of the packed sheet, and the export itself.

Everything goes through the CLI's code: core.sheet packs the preview with the same options, and
service.export_sheet writes the files (as `asset-studio sheet`). Packing and writing run on a
thread pool, never on the GUI thread. core/outputs refuses to replace a file the export did not
write; the model then asks (confirm_overwrite) and exports again with force=True on yes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal
from PySide6.QtGui import QImage

from asset_studio.core.animation import AnimationEdit
from asset_studio.errors import UserError

PREVIEW_DELAY_MS = 200  # option edits within this time are packed once
PREVIEW_SIDE = 512


@dataclass
class SheetOptions:
    """What the dialog sets; the names are service.SheetExport's."""

    out: Path
    format: str = "texturepacker-hash"
    trim: bool = True
    padding: int = 2
    extrude: int = 0
    pot: bool = False
    square: bool = True  # near-square pages, as TexturePacker makes them
    max_size: int = 4096
    fps: float = 10.0


@dataclass
class SheetPlan:
    """The packed sheet as the preview shows it."""

    frames: int
    pages: list[tuple[int, int]]
    occupancy: float  # frame pixels / page pixels, 0..1
    animations: list[tuple[str, int]]  # (name, frame count)
    duplicates: list[list[str]] = field(default_factory=list)  # groups of frames with identical pixels
    image: QImage | None = None  # the first page, scaled down
    found: list[AnimationEdit] = field(default_factory=list)  # each animation as found: name, its job's fps, loop

    def summary(self) -> str:
        sizes = ", ".join(f"{w}×{h}" for w, h in self.pages)
        pages = "1 page" if len(self.pages) == 1 else f"{len(self.pages)} pages"
        text = f"{self.frames} frames on {pages} ({sizes}), {self.occupancy:.0%} filled"
        if self.animations:
            text += "; animations: " + ", ".join(f"{n} ({c})" for n, c in self.animations)
        if self.duplicates:
            text += f"; {sum(len(g) - 1 for g in self.duplicates)} duplicate frame(s)"
        return text


def plan_sheet(inputs: list[Path], opts: SheetOptions, with_image: bool = True) -> SheetPlan:
    """Pack INPUTS as the export will (core.sheet, the same options) and describe the result."""
    from asset_studio.core.animation import timing_from_jobs
    from asset_studio.core.sheet import SheetOptions as CoreOptions
    from asset_studio.core.sheet import collect_images, pack_sheet, read_sprites

    core = CoreOptions(trim=opts.trim, padding=opts.padding, extrude=opts.extrude, pot=opts.pot,
                       square=opts.square, max_size=opts.max_size)
    found = collect_images(list(inputs))  # listed once, as the export does
    sprites = read_sprites(found, trim=core.trim)
    if not sprites:
        raise UserError("Select images to pack.")
    sheet = pack_sheet(sprites, core)
    timing_from_jobs(sheet, dict(found))  # as the export does: an animation's own fps
    used = sum(f.w * f.h for f in sheet.frames)
    area = sum(p.size[0] * p.size[1] for p in sheet.pages) or 1
    by_hash: dict[str, list[str]] = {}
    for sprite in sprites:
        digest = hashlib.sha1(sprite.image.tobytes() + repr(sprite.image.size).encode()).hexdigest()
        by_hash.setdefault(digest, []).append(sprite.name)
    image = None
    if with_image:
        from asset_studio.gui.worker import pil_to_qimage

        image = pil_to_qimage(sheet.pages[0].image, PREVIEW_SIDE)
    return SheetPlan(frames=len(sheet.frames), pages=[p.size for p in sheet.pages], occupancy=used / area,
                     animations=[(a.name, len(a.frames)) for a in sheet.animations],
                     duplicates=[names for names in by_hash.values() if len(names) > 1], image=image,
                     found=[AnimationEdit(found=a.name, name=a.name, fps=a.fps, loop=a.loop) for a in sheet.animations])


def foreign_files(out: Path) -> list[Path]:
    """Files named like the sheet OUT that an export did not write: replacing them needs the artist's yes."""
    from asset_studio.core.exporters import owned_sheet_file

    out = Path(out)
    if not out.parent.is_dir():
        return []
    return sorted(p for p in out.parent.glob(f"{out.stem}*") if p.is_file() and p.name.startswith(out.stem)
                  and (p.name == out.name or p.name.startswith((out.stem + ".", out.stem + "-")))
                  and not owned_sheet_file(p, out))


class _Signals(QObject):
    planned = Signal(int, object)  # generation, SheetPlan
    plan_failed = Signal(int, str)
    done = Signal(list, list)  # files, warnings
    refused = Signal(str, list)  # the sentence, files not written by an export
    failed = Signal(str)


class _Task(QRunnable):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def run(self) -> None:
        self.fn()


class SheetExportModel(QObject):
    preview_ready = Signal(object)  # SheetPlan
    preview_failed = Signal(str)
    confirm_overwrite = Signal(str)  # ask the artist; export(force=True) on yes
    exported = Signal(list, list)  # files written, warnings
    failed = Signal(str)
    busy_changed = Signal(bool)
    animations_changed = Signal()  # a preview found other animations: the list to edit is new

    def __init__(self, inputs: list[Path], out: Path, parent: QObject | None = None,
                 pool: QThreadPool | None = None, animation: tuple[str, float] | None = None):
        """ANIMATION: (name, fps) the one animation of these frames starts with (the Animate tab's
        Export to sheet), as if the artist had typed them; still editable."""
        super().__init__(parent)
        self._initial = animation
        self.inputs = [Path(p) for p in inputs]
        self.options = SheetOptions(out=Path(out))
        self.plan: SheetPlan | None = None
        self.result_paths: list[Path] = []
        self._pool = pool or QThreadPool.globalInstance()
        self._generation = 0
        self._busy = False
        self._edits: dict[str, AnimationEdit] = {}  # by found name: what the artist changed
        self._signals = _Signals()
        self._signals.planned.connect(self._planned)
        self._signals.plan_failed.connect(self._plan_failed)
        self._signals.done.connect(self._done)
        self._signals.refused.connect(self._refused)
        self._signals.failed.connect(self._failed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self.refresh_preview)

    # --- options -------------------------------------------------------------------------------

    def set_option(self, name: str, value) -> None:
        if getattr(self.options, name) == value:
            return
        self.options = replace(self.options, **{name: value})
        if name not in ("out", "format", "fps"):  # these do not change the packing
            self._timer.start()

    @property
    def out(self) -> Path:
        out = Path(self.options.out).expanduser()
        return out if out.suffix.lower() == ".png" else out.with_suffix(".png")

    # --- the preview ---------------------------------------------------------------------------

    def refresh_preview(self) -> None:
        """Pack the selection with the current options on the pool; preview_ready follows."""
        self._timer.stop()
        self._generation += 1
        generation, inputs, opts = self._generation, list(self.inputs), self.options

        def work():
            try:
                self._signals.planned.emit(generation, plan_sheet(inputs, opts))
            except UserError as exc:
                self._signals.plan_failed.emit(generation, str(exc))
            except OSError as exc:
                self._signals.plan_failed.emit(generation, f"Could not read an image: {exc.strerror or exc}.")

        self._pool.start(_Task(work))

    def _planned(self, generation: int, plan: SheetPlan) -> None:
        if generation == self._generation:  # an older packing, overtaken by later options
            before = [a.found for a in self.plan.found] if self.plan else None
            self.plan = plan
            if self._initial and len(plan.found) == 1 and not self._edits:
                name, fps = self._initial
                self._initial = None
                self._edits[plan.found[0].found] = replace(plan.found[0], name=name, fps=float(fps))
            self.preview_ready.emit(plan)
            if [a.found for a in plan.found] != before:
                self.animations_changed.emit()

    # --- animations: names, fps and loop as the artist wants them in the data file -------------

    def animations(self) -> list[AnimationEdit]:
        """Every animation of the last preview as it will be exported (the artist's edits applied)."""
        found = self.plan.found if self.plan else []
        return [replace(self._edits.get(a.found, a)) for a in found]

    def edit_animation(self, found: str, **changes) -> None:
        """Change the exported name, fps (None: its own or the sheet's) or loop of the animation the
        packer found as FOUND. Checked on export (one sentence), so typing may pass through bad names."""
        unknown = set(changes) - {"name", "fps", "loop"}
        if unknown:
            raise TypeError(f"unknown animation setting(s): {', '.join(sorted(unknown))}")
        current = next((a for a in self.animations() if a.found == found), None)
        if current is None:
            raise UserError(f"The sheet has no animation '{found}'.")
        if changes.get("fps") is not None:
            changes["fps"] = float(changes["fps"])
        edit = replace(current, **changes)
        if edit != current:
            self._edits[found] = edit

    def _plan_failed(self, generation: int, text: str) -> None:
        if generation == self._generation:
            self.plan = None
            self.preview_failed.emit(text)

    # --- the export ----------------------------------------------------------------------------

    def busy(self) -> bool:
        return self._busy

    def export(self, force: bool = False) -> None:
        """Write the sheet through service.export_sheet on the pool; exported, failed or
        confirm_overwrite follows."""
        from asset_studio.service import SheetExport, export_sheet

        opts, out = self.options, self.out
        request = SheetExport(inputs=list(self.inputs), out=out, format=opts.format, trim=opts.trim,
                              padding=opts.padding, extrude=opts.extrude, pot=opts.pot, square=opts.square,
                              max_size=opts.max_size, fps=opts.fps, force=force,
                              animations=[a for a in self.animations() if a.found in self._edits])
        self._set_busy(True)

        def work():
            try:
                result = export_sheet(request)  # the one export, as `asset-studio sheet`
            except UserError as exc:
                foreign = [] if force else foreign_files(out)
                if foreign:
                    self._signals.refused.emit(str(exc), foreign)
                else:
                    self._signals.failed.emit(str(exc))
                return
            except OSError as exc:
                from asset_studio.errors import describe_os_error

                self._signals.failed.emit(describe_os_error(exc, out))
                return
            written = result.pages + result.data_files
            warnings = list(result.warnings)
            # Files of an earlier export under this name in another format (Unity's .meta beside a
            # Godot export) would confuse an engine: say so rather than leave them silently.
            left = [p.name for p in out.parent.glob(f"{out.stem}.*") if p.is_file() and p not in written
                    and p.name != out.name]
            if left:
                warnings.append("files of an earlier export are still beside the sheet: " + ", ".join(sorted(left)))
            self._signals.done.emit(written, warnings)

        self._pool.start(_Task(work))

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def _done(self, files: list, warnings: list) -> None:
        self._set_busy(False)
        self.result_paths = [Path(f) for f in files]
        self.exported.emit(self.result_paths, warnings)

    def _refused(self, text: str, foreign: list) -> None:
        self._set_busy(False)
        names = ", ".join(Path(p).name for p in foreign)
        self.confirm_overwrite.emit(f"{names} already exist{'s' if len(foreign) == 1 else ''} in "
                                    f"{self.out.parent} and {'was' if len(foreign) == 1 else 'were'} not written "
                                    "by a sheet export. Replace?")

    def _failed(self, text: str) -> None:
        self._set_busy(False)
        self.failed.emit(text)
