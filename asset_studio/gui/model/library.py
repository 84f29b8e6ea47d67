"""The library: every image in the output folder, newest first (the gallery shows this list).

Deleting moves files into `.trash/` inside the output folder; hidden folders (the trash, the
ControlNet inputs in `.controls/`) are not part of the library.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PySide6.QtCore import QObject, Signal

TRASH_DIR = ".trash"
IMAGE_SUFFIXES = {".png"}


def library_images(output_dir: Path) -> list[Path]:
    """Every PNG under the output folder except the trash and control images, newest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for root, dirs, files in os.walk(output_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .trash, .controls and other hidden folders
        for name in files:
            # control-*.png are ControlNet inputs the CLI writes beside its results, not results
            if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith((".", "control-")):
                path = Path(root) / name
                try:
                    found.append((path.stat().st_mtime, path))
                except OSError:
                    pass
    found.sort(key=lambda t: (t[0], str(t[1])), reverse=True)
    return [p for _, p in found]


def move_to_trash(path: Path, output_dir: Path) -> Path:
    """Move an image into the output folder's .trash/, keeping its name unique there."""
    trash = Path(output_dir) / TRASH_DIR
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / path.name
    n = 1
    while target.exists():
        target = trash / f"{path.stem}-{n}{path.suffix}"
        n += 1
    shutil.move(str(path), str(target))
    return target


class Library(QObject):
    reset = Signal()  # the whole list changed (a rescan, another folder)
    inserted = Signal(int)  # row
    removed = Signal(int)  # row, emitted once per row, highest first
    message = Signal(str)

    def __init__(self, output_dir: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.output_dir = Path(output_dir)
        self._paths: list[Path] = []

    def paths(self) -> list[Path]:
        return list(self._paths)

    def path(self, row: int) -> Path:
        return self._paths[row]

    def __len__(self) -> int:
        return len(self._paths)

    def row(self, path: Path) -> int:
        try:
            return self._paths.index(Path(path))
        except ValueError:
            return -1

    def refresh(self) -> None:
        self._paths = library_images(self.output_dir)
        self.reset.emit()

    def set_output_dir(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir)
        self.refresh()

    def add(self, path: Path) -> None:
        """A freshly saved image goes to the top."""
        path = Path(path)
        if path in self._paths:
            return
        self._paths.insert(0, path)
        self.inserted.emit(0)

    def remove_rows(self, rows: list[int]) -> None:
        """Forget rows (the files are left alone)."""
        for row in sorted(set(rows), reverse=True):
            del self._paths[row]
            self.removed.emit(row)

    def trash(self, rows: list[int]) -> list[Path]:
        """Move the rows' files into .trash/ and drop them from the list; returns the files moved."""
        moved, done = [], []
        for row in rows:
            path = self._paths[row]
            try:
                move_to_trash(path, self.output_dir)
            except OSError as exc:
                self.message.emit(f"Could not move {path.name} to the trash: {exc.strerror or exc}.")
                continue
            moved.append(row)
            done.append(path)
        self.remove_rows(moved)
        if done:
            self.message.emit(f"Moved {len(done)} image(s) to {TRASH_DIR}/ in the output folder.")
        return done
