"""The library: one entry per asset in the output folder, newest first (the gallery shows this list).

An asset is the raw image (the job inside its PNG) and, when the style finishes it, the sprite
written under the same name in `sprites/` (service.save_result). The entry shows the sprite where
one exists (the cut-out is what the artist wants); `show_raw` flips every entry to the raw image.
Sheets the export wrote (in `sheets/`, or a PNG with its engine data file beside it) are results
of another kind: kept out of the grid unless `show_sheets`, and badged then. Images in a folder
of their own (a pose set's run) carry that folder as their group.

Deleting moves the entry's files into `.trash/` inside the output folder and can be undone;
hidden folders (the trash, the ControlNet inputs in `.controls/`) are not part of the library.

Runs: every image a press of Generate (or a re-roll, a batch) saved carries its run
(core/library.RunInfo); `runs()` groups the entries by it (a folder of its own is one run too;
images from before runs were recorded are grouped by name and time), and `view_rows()` is what
the grid shows: a header per run and its images unless the run is collapsed. Collapsed runs stay
collapsed for the session (refreshes included).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from asset_studio.core.library import SPRITES_DIR, RunInfo, before_path, read_run

TRASH_DIR = ".trash"
SHEETS_DIR = "sheets"  # where the gallery's export writes by default
IMAGE_SUFFIXES = {".png"}
# The data files the sheet exporters write beside a page (TexturePacker/Aseprite, Godot, Unity, Tiled).
SHEET_DATA_SUFFIXES = (".json", ".tres", ".meta", ".tsx", ".tmx", ".tpsheet")
UNDO_DEPTH = 20
SHEETS_RUN = "sheets"
GUESS_GAP_S = 120  # images without a recorded run: same subject and saved this close together = one run
_NAME = re.compile(r"^\d{5,}-\d+-(?P<slug>.+)$")


@dataclass
class LibraryEntry:
    raw: Path | None  # the generated image (carries the job); None for a sprite whose raw is gone
    sprite: Path | None = None  # the finished sprite, OUT/.../sprites/<same name>
    kind: str = "image"  # "image" or "sheet"
    group: str = ""  # the run's folder (a pose set), relative to the output folder; "" at the top
    mtime: float = 0.0
    run: RunInfo | None = None  # the run that made it, as its PNG says (None: made before runs were recorded)
    run_key: str = ""  # what runs() groups by (set by run_keys())

    @property
    def name(self) -> str:
        return (self.raw or self.sprite).stem

    def shown(self, raw: bool = False) -> Path:
        """The file to show: the sprite by default where one exists, else the raw image."""
        if raw and self.raw is not None:
            return self.raw
        return self.sprite or self.raw

    @property
    def before(self) -> Path | None:
        """The picture before the after-passes (hires fix, refiner, tiled upscale), when it was kept."""
        if self.raw is None:
            return None
        path = before_path(self.raw)
        return path if path.is_file() else None

    def files(self) -> list[Path]:
        return [p for p in (self.raw, self.sprite, self.before) if p is not None]


def _is_sheet(path: Path, output_dir: Path, names: set[str]) -> bool:
    """A sheet page: in sheets/, or a PNG with a data file of the same stem (SHEET-1.png: SHEET's)."""
    rel = path.relative_to(output_dir)
    if rel.parts and rel.parts[0] == SHEETS_DIR:
        return True
    stem = path.stem
    base = stem.rsplit("-", 1)[0] if "-" in stem and stem.rsplit("-", 1)[1].isdigit() else stem
    return any(f"{s}{suffix}" in names for s in {stem, base} for suffix in SHEET_DATA_SUFFIXES)


def library_entries(output_dir: Path) -> list[LibraryEntry]:
    """Every asset under the output folder (not the trash, not control images), newest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    raws: dict[Path, LibraryEntry] = {}
    sprites: list[tuple[Path, float]] = []
    for root, dirs, files in os.walk(output_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .trash, .controls and other hidden folders
        root_path = Path(root)
        names = set(files)
        for name in files:
            # control-*.png are ControlNet inputs the CLI writes beside its results, not results
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES or name.startswith((".", "control-")):
                continue
            path = root_path / name
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if root_path.name == SPRITES_DIR:
                sprites.append((path, mtime))
                continue
            rel_parent = root_path.relative_to(output_dir)
            kind = "sheet" if _is_sheet(path, output_dir, names) else "image"
            group = "" if kind == "sheet" or not rel_parent.parts else rel_parent.as_posix()
            run = read_run(path) if kind == "image" and not group else None
            raws[path] = LibraryEntry(raw=path, kind=kind, group=group, mtime=mtime, run=run)
    for path, mtime in sprites:
        owner = raws.get(path.parent.parent / path.name)
        if owner is not None and owner.kind == "image":
            owner.sprite = path
            owner.mtime = max(owner.mtime, mtime)
        else:  # a sprite whose raw image was deleted elsewhere is still an asset
            rel_parent = path.parent.parent.relative_to(output_dir)
            raws[path] = LibraryEntry(raw=None, sprite=path, group=rel_parent.as_posix() if rel_parent.parts else "",
                                      mtime=mtime, run=read_run(path))
    entries = list(raws.values())
    entries.sort(key=lambda e: (e.mtime, str(e.shown())), reverse=True)
    run_keys(entries)
    return entries


def run_keys(entries: list[LibraryEntry]) -> None:
    """Give every entry (newest first) its run key: its folder's, its recorded run's, or for older
    images the neighbours with the same subject saved within GUESS_GAP_S of each other."""
    previous: LibraryEntry | None = None
    for entry in entries:
        if entry.kind == "sheet":
            entry.run_key = SHEETS_RUN  # the exported sheets, together
        elif entry.group:
            entry.run_key = "folder:" + entry.group
        elif entry.run is not None:
            entry.run_key = "run:" + entry.run.id
        else:
            m = _NAME.match(entry.name)
            slug = m.group("slug") if m else entry.name
            same = (previous is not None and previous.run is None and not previous.group and previous.kind == "image"
                    and previous.run_key.startswith("guess:") and previous.run_key.split(":", 2)[1] == slug
                    and abs(previous.mtime - entry.mtime) <= GUESS_GAP_S)
            entry.run_key = previous.run_key if same else f"guess:{slug}:{entry.shown()}"
        previous = entry


@dataclass
class RunGroup:
    """The header of one run in the grid: when, what, how many."""

    key: str
    rows: list[int]  # the entry rows of its images, newest first
    started: float
    subject: str
    collapsed: bool = False

    @property
    def count(self) -> int:
        return len(self.rows)

    def label(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        when = time.localtime(self.started)
        today = time.localtime(now)[:3] == when[:3]
        stamp = time.strftime("%H:%M" if today else "%d %b %H:%M", when)
        what = self.subject or "(no subject)"
        images = "1 image" if self.count == 1 else f"{self.count} images"
        return f"{'▸' if self.collapsed else '▾'} {stamp} · {what} · {images}"


def _subject(entry: LibraryEntry) -> str:
    if entry.kind == "sheet":
        return "exported sprite sheets"
    if entry.run is not None and entry.run.subject:
        return entry.run.subject
    if entry.group:
        return Path(entry.group).name
    m = _NAME.match(entry.name)
    return (m.group("slug") if m else entry.name).replace("-", " ")


def library_images(output_dir: Path) -> list[Path]:
    """The shown file of every asset (sheets left out), newest first."""
    return [e.shown() for e in library_entries(output_dir) if e.kind == "image"]


def move_to_trash(path: Path, output_dir: Path) -> Path:
    """Move a file into the output folder's .trash/, keeping its name unique there."""
    trash = Path(output_dir) / TRASH_DIR
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / path.name
    n = 1
    while target.exists():
        target = trash / f"{path.stem}-{n}{path.suffix}"
        n += 1
    shutil.move(str(path), str(target))
    return target


@dataclass
class _Trashed:
    entry: LibraryEntry
    moves: list[tuple[Path, Path]] = field(default_factory=list)  # (original, in the trash)


class Library(QObject):
    reset = Signal()  # the whole list changed (a rescan, another folder, raw/sprite, sheets shown)
    runs_changed = Signal()  # a run collapsed or expanded (the entries are the same)
    inserted = Signal(int)  # row
    removed = Signal(int)  # row, emitted once per row, highest first
    entry_changed = Signal(int)  # row: the same asset, another file to show
    message = Signal(str)
    undo_available = Signal(bool)

    def __init__(self, output_dir: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.output_dir = Path(output_dir)
        self._all: list[LibraryEntry] = []
        self._entries: list[LibraryEntry] = []  # the rows: _all without sheets unless shown
        self._show_raw = False
        self._show_sheets = False
        self._undo: list[list[_Trashed]] = []
        self._collapsed: set[str] = set()  # run keys, for the session

    # --- reading -------------------------------------------------------------------------------

    def entries(self) -> list[LibraryEntry]:
        return list(self._entries)

    def entry(self, row: int) -> LibraryEntry:
        return self._entries[row]

    def paths(self) -> list[Path]:
        """The file each row shows (the sprite by default)."""
        return [e.shown(self._show_raw) for e in self._entries]

    def path(self, row: int) -> Path:
        return self._entries[row].shown(self._show_raw)

    def export_paths(self, rows: list[int], raw: bool = False) -> list[Path]:
        """The files a sheet packs for ROWS: the sprites (the cut-outs), the raw image where none exists."""
        return [self._entries[r].shown(raw) for r in rows if self._entries[r].kind == "image"]

    def __len__(self) -> int:
        return len(self._entries)

    def row(self, path: Path) -> int:
        path = Path(path)
        return next((i for i, e in enumerate(self._entries) if path in e.files()), -1)

    # --- runs ------------------------------------------------------------------------------------

    def runs(self) -> list[RunGroup]:
        """The entries grouped by run, in the order of each run's newest image."""
        groups: dict[str, RunGroup] = {}
        for row, entry in enumerate(self._entries):
            key = entry.run_key or "row:" + str(entry.shown())
            group = groups.get(key)
            if group is None:
                started = entry.run.started if entry.run is not None else entry.mtime
                groups[key] = group = RunGroup(key, [], started, _subject(entry), key in self._collapsed)
            elif entry.run is None:
                group.started = min(group.started, entry.mtime)
            group.rows.append(row)
        return list(groups.values())

    def view_rows(self) -> list[tuple[RunGroup, int | None]]:
        """What the grid shows, top to bottom: (run, None) for a run's header, (run, row) for each
        image of an expanded run."""
        out: list[tuple[RunGroup, int | None]] = []
        for group in self.runs():
            out.append((group, None))
            if not group.collapsed:
                out += [(group, row) for row in group.rows]
        return out

    def is_collapsed(self, key: str) -> bool:
        return key in self._collapsed

    def set_collapsed(self, key: str, collapsed: bool) -> None:
        if collapsed != (key in self._collapsed):
            (self._collapsed.add if collapsed else self._collapsed.discard)(key)
            self.runs_changed.emit()

    def toggle_run(self, key: str) -> None:
        self.set_collapsed(key, key not in self._collapsed)

    # --- what is shown -------------------------------------------------------------------------

    @property
    def show_raw(self) -> bool:
        return self._show_raw

    def set_show_raw(self, raw: bool) -> None:
        if raw != self._show_raw:
            self._show_raw = bool(raw)
            self.reset.emit()

    @property
    def show_sheets(self) -> bool:
        return self._show_sheets

    def set_show_sheets(self, show: bool) -> None:
        if show != self._show_sheets:
            self._show_sheets = bool(show)
            self._filter()
            self.reset.emit()

    def _filter(self) -> None:
        self._entries = [e for e in self._all if self._show_sheets or e.kind != "sheet"]

    # --- changes -------------------------------------------------------------------------------

    def refresh(self) -> None:
        self._all = library_entries(self.output_dir)
        self._filter()
        self.reset.emit()

    def set_output_dir(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir)
        self._undo.clear()
        self.undo_available.emit(False)
        self.refresh()

    def add(self, path: Path, sprite: Path | None = None) -> None:
        """A freshly saved image (and its sprite) goes to the top."""
        path = Path(path)
        row = self.row(path)
        if row >= 0:
            if sprite is not None and self._entries[row].sprite is None:
                self._entries[row].sprite = Path(sprite)
                self.entry_changed.emit(row)  # the row shows the sprite now
            return
        try:
            group = path.parent.relative_to(self.output_dir).as_posix()
        except ValueError:
            group = ""
        entry = LibraryEntry(raw=path, sprite=Path(sprite) if sprite else None, group="" if group == "." else group,
                             mtime=time.time())
        entry.run = read_run(path) if not entry.group else None
        run_keys([entry])
        self._all.insert(0, entry)
        self._entries.insert(0, entry)
        self.inserted.emit(0)

    def remove_rows(self, rows: list[int]) -> None:
        """Forget rows (the files are left alone)."""
        for row in sorted(set(rows), reverse=True):
            entry = self._entries.pop(row)
            if entry in self._all:
                self._all.remove(entry)
            self.removed.emit(row)

    def trash(self, rows: list[int]) -> list[Path]:
        """Move the rows' files (raw and sprite) into .trash/ and drop them from the list; returns
        the files moved. undo_trash() puts the last batch back."""
        done_rows, moved, batch = [], [], []
        for row in sorted(set(rows)):
            entry = self._entries[row]
            record = _Trashed(entry)
            try:
                for path in entry.files():
                    record.moves.append((path, move_to_trash(path, self.output_dir)))
            except OSError as exc:
                self.message.emit(f"Could not move {path.name} to the trash: {exc.strerror or exc}.")
                self._restore(record)
                continue
            done_rows.append(row)
            moved += [original for original, _ in record.moves]
            batch.append(record)
        self.remove_rows(done_rows)
        if batch:
            self._undo.append(batch)
            del self._undo[:-UNDO_DEPTH]
            self.undo_available.emit(True)
            self.message.emit(f"Moved {len(batch)} image(s) to {TRASH_DIR}/ in the output folder (Ctrl+Z puts them back).")
        return moved

    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo_trash(self) -> list[Path]:
        """Put the last trashed entries back where they were; returns the files restored."""
        if not self._undo:
            return []
        batch = self._undo.pop()
        restored = []
        for record in batch:
            restored += self._restore(record)
        self.undo_available.emit(bool(self._undo))
        self.refresh()
        if restored:
            self.message.emit(f"Restored {len(batch)} image(s) from the trash.")
        return restored

    def _restore(self, record: _Trashed) -> list[Path]:
        back = []
        for original, trashed in record.moves:
            if original.exists():  # something new took the name meanwhile: leave it in the trash
                self.message.emit(f"{original.name} exists again, so its trashed copy stays in {TRASH_DIR}/.")
                continue
            try:
                original.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(trashed), str(original))
                back.append(original)
            except OSError as exc:
                self.message.emit(f"Could not restore {original.name}: {exc.strerror or exc}.")
        return back
