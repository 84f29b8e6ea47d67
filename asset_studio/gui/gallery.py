"""The output library: a grid of every image made, newest first, with each image's job beside it.

Thumbnails load lazily on a thread pool (QImageReader scales while decoding) the first time a
row is painted, so a library of thousands of images opens at once. Deleting moves files to
`.trash/` inside the output folder; dragging an image out hands the file manager its path.
"""

from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel, QMimeData, QModelIndex, QObject, QRunnable, QSize, Qt, QThreadPool, QUrl, Signal,
)
from PySide6.QtGui import QColor, QDesktopServices, QIcon, QImage, QImageReader, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel,
    QLineEdit, QListView, QPlainTextEdit, QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget,
)

from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError
from asset_studio.gui.model.library import TRASH_DIR, Library

THUMB = 128


def read_image_job(path: Path) -> GenerationJob | None:
    """The job embedded in a library PNG, or None for a PNG without one."""
    from asset_studio.core.library import read_job

    try:
        return read_job(path)
    except UserError:
        return None


class _ThumbSignals(QObject):
    done = Signal(str, QImage)


class _ThumbTask(QRunnable):
    def __init__(self, path: str, signals: _ThumbSignals):
        super().__init__()
        self.path = path
        self.signals = signals

    def run(self) -> None:
        reader = QImageReader(self.path)
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > THUMB:
            reader.setScaledSize(size.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()  # QImage, not QPixmap: safe off the GUI thread
        side = max(image.width(), image.height())
        if 0 < side <= THUMB // 2:
            # Small sprites are enlarged by a whole factor, pixel-crisp, rather than lost in the tile.
            factor = THUMB // side
            image = image.scaled(image.width() * factor, image.height() * factor,
                                 Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
        self.signals.done.emit(self.path, image)


def checkerboard(size: int) -> QPixmap:
    """A checkerboard behind thumbnails, so transparent sprites read as transparent."""
    pix = QPixmap(size, size)
    pix.fill(QColor(60, 62, 68))
    p = QPainter(pix)
    cell = 8
    for y in range(0, size, cell):
        for x in range((y // cell % 2) * cell, size, 2 * cell):
            p.fillRect(x, y, cell, cell, QColor(80, 82, 90))
    p.end()
    return pix


class LibraryModel(QAbstractListModel):
    """The Library (gui.model.library) as rows for the grid; thumbnails arrive asynchronously."""

    PathRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, library: Library, parent=None):
        super().__init__(parent)
        self.library = library
        self._paths: list[Path] = library.paths()  # the rows as the view knows them, kept in step
        self._thumbs: dict[str, QIcon] = {}
        self._loading: set[str] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one decoder: the GPU worker and the GUI get the rest
        self._signals = _ThumbSignals()
        self._signals.done.connect(self._thumb_done)
        self._placeholder = QIcon(checkerboard(THUMB))
        library.reset.connect(self._reset)
        library.inserted.connect(self._inserted)
        library.removed.connect(self._removed)

    # model API
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._paths)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._paths):
            return None
        path = self._paths[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return path.stem
        if role == Qt.ItemDataRole.DecorationRole:
            key = str(path)
            icon = self._thumbs.get(key)
            if icon is None:
                self._request(key)
                return self._placeholder
            return icon
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(path)
        if role == self.PathRole:
            return str(path)
        return None

    def flags(self, index: QModelIndex):
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:
        """Dragging out gives the file manager (or any app) the files themselves."""
        mime = QMimeData()
        rows = sorted({i.row() for i in indexes if i.isValid()})
        mime.setUrls([QUrl.fromLocalFile(str(self._paths[r])) for r in rows])
        return mime

    def supportedDragActions(self):
        return Qt.DropAction.CopyAction

    # content
    @property
    def output_dir(self) -> Path:
        return self.library.output_dir

    def path(self, row: int) -> Path:
        return self._paths[row]

    def paths(self) -> list[Path]:
        return list(self._paths)

    def _reset(self) -> None:
        self.beginResetModel()
        self._paths = self.library.paths()
        keep = {str(p) for p in self._paths}
        self._thumbs = {k: v for k, v in self._thumbs.items() if k in keep}
        self.endResetModel()

    def _inserted(self, row: int) -> None:
        self.beginInsertRows(QModelIndex(), row, row)
        self._paths.insert(row, self.library.path(row))
        self.endInsertRows()

    def _removed(self, row: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row)
        path = self._paths.pop(row)
        self._thumbs.pop(str(path), None)
        self.endRemoveRows()

    def wait_for_thumbnails(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)

    # thumbnails
    def _request(self, key: str) -> None:
        if key in self._loading:
            return
        self._loading.add(key)
        self._pool.start(_ThumbTask(key, self._signals))

    def _thumb_done(self, key: str, image: QImage) -> None:
        self._loading.discard(key)
        pix = checkerboard(THUMB)
        if not image.isNull():
            p = QPainter(pix)
            x, y = (THUMB - image.width()) // 2, (THUMB - image.height()) // 2
            p.drawImage(x, y, image)
            p.end()
        self._thumbs[key] = QIcon(pix)
        try:
            row = self._paths.index(Path(key))
        except ValueError:
            return
        idx = self.index(row)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


def describe_job(job: GenerationJob) -> list[tuple[str, str]]:
    """The rows of the details panel: what an artist needs to know to make this image again."""
    s = job.sampling
    rows = [
        ("Prompt", job.prompt.text),
        ("Negative", job.prompt.negative or "—"),
        ("Model", job.model.checkpoint),
        ("Size", f"{s.width} × {s.height}"),
        ("Steps", str(s.steps)),
        ("CFG", f"{s.cfg_scale:g}"),
        ("Sampler", s.sampler),
        ("Seed", ", ".join(str(x) for x in job.image_seeds()) if s.seeds else str(s.seed)),
    ]
    for label, value in (("Style", job.source.style), ("Template", job.source.template),
                         ("Subject", job.source.subject)):
        if value:
            rows.append((label, value))
    for lora in job.model.loras:
        rows.append(("LoRA", f"{Path(lora.path).name} × {lora.weight:g}"))
    for unit in job.controls:
        rows.append(("ControlNet", f"{unit.type} {Path(unit.model).name} × {unit.scale:g}"))
    if job.init is not None:
        rows.append(("Init image", f"{Path(job.init.image).name}, denoise {job.init.denoise:g}"))
    if job.tiling != "off":
        rows.append(("Tiling", job.tiling))
    return rows


class HintListView(QListView):
    """A list view that says what belongs in it while it is empty."""

    def __init__(self, hint: str):
        super().__init__()
        self.hint = hint

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            p = QPainter(self.viewport())
            p.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            p.drawText(self.viewport().rect().adjusted(24, 24, -24, -24),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.hint)
            p.end()


class GalleryWidget(QWidget):
    """The library grid plus a details panel; emits jobs to run and selection to export."""

    rerun_requested = Signal(object)  # GenerationJob
    export_requested = Signal(list)  # [Path]
    message = Signal(str)

    def __init__(self, library: Library | Path, parent=None):
        super().__init__(parent)
        self.library = library if isinstance(library, Library) else Library(Path(library), self)
        self.library.message.connect(self.message)
        self.model = LibraryModel(self.library, self)
        self.view = HintListView("No images yet. What you generate is saved here at once, "
                                 "with its settings inside the PNG.")
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setGridSize(QSize(THUMB + 20, THUMB + 28))
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.view.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.view.setToolTip("Your results, newest first. Drag images out to a folder; Delete moves them to the trash.")
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.doubleClicked.connect(self._open)

        self.title = QLabel("No image selected")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: 600;")
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("Select an image to see how it was made.")
        self.rerun_btn = QPushButton("Re-run same seed")
        self.rerun_btn.setToolTip("Make this exact image again (same job, same seed).")
        self.vary_btn = QPushButton("Variations")
        self.vary_btn.setToolTip("Run this image's job with new random seeds (the batch count of the form).")
        self.export_btn = QPushButton("Export sheet…")
        self.export_btn.setToolTip("Pack the selected images into a sprite sheet for a game engine.")
        self.delete_btn = QPushButton("Delete")
        self.delete_btn.setToolTip(f"Move the selected images to {TRASH_DIR}/ inside the output folder.")
        self.folder_btn = QPushButton("Open folder")
        self.folder_btn.setToolTip("Show the output folder in the file manager.")
        self.variation_count = 4

        self.rerun_btn.clicked.connect(self.rerun_same_seed)
        self.vary_btn.clicked.connect(self.run_variations)
        self.export_btn.clicked.connect(lambda: self.export_requested.emit(self.selected_paths()))
        self.delete_btn.clicked.connect(self.delete_selected)
        self.folder_btn.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.model.output_dir))))
        QShortcut(QKeySequence.StandardKey.Delete, self.view, self.delete_selected)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(6, 0, 0, 0)
        side_layout.addWidget(self.title)
        side_layout.addWidget(self.details, 1)
        row1 = QHBoxLayout()
        row1.addWidget(self.rerun_btn)
        row1.addWidget(self.vary_btn)
        side_layout.addLayout(row1)
        row2 = QHBoxLayout()
        row2.addWidget(self.export_btn)
        row2.addWidget(self.delete_btn)
        row2.addWidget(self.folder_btn)
        side_layout.addLayout(row2)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([700, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self._current_job: GenerationJob | None = None
        self._selection_changed()

    # content
    def refresh(self) -> None:
        self.library.refresh()

    def set_output_dir(self, path: Path) -> None:
        self.library.set_output_dir(path)

    def add_image(self, path: str | Path) -> None:
        self.library.add(Path(path))

    def selected_rows(self) -> list[int]:
        return sorted(i.row() for i in self.view.selectionModel().selectedIndexes())

    def selected_paths(self) -> list[Path]:
        return [self.model.path(r) for r in self.selected_rows()]

    def select_row(self, row: int) -> None:
        self.view.setCurrentIndex(self.model.index(row))

    # details and actions
    def _selection_changed(self, *_args) -> None:
        paths = self.selected_paths()
        has = bool(paths)
        for btn in (self.export_btn, self.delete_btn):
            btn.setEnabled(has)
        self._current_job = None
        if len(paths) != 1:
            self.title.setText(f"{len(paths)} images selected" if paths else "No image selected")
            self.details.setPlainText("")
        else:
            path = paths[0]
            self.title.setText(path.name)
            job = read_image_job(path)
            self._current_job = job
            if job is None:
                self.details.setPlainText("This PNG carries no Asset Studio job, so it cannot be re-run.")
            else:
                self.details.setPlainText("\n".join(f"{k}: {v}" for k, v in describe_job(job)))
        self.rerun_btn.setEnabled(self._current_job is not None)
        self.vary_btn.setEnabled(self._current_job is not None)

    def current_job(self) -> GenerationJob | None:
        return self._current_job

    def rerun_same_seed(self) -> None:
        job = self._current_job
        if job is not None:
            # A PNG holds one image of a batch; its own seed is the one it was made with.
            self.rerun_requested.emit(job.for_seed(job.image_seeds()[0]))

    def run_variations(self) -> None:
        job = self._current_job
        if job is None:
            return
        seeds = [random.randrange(2**32) for _ in range(max(1, self.variation_count))]
        variations = job.for_seed(seeds[0])
        variations.sampling.seeds, variations.sampling.count = seeds, len(seeds)
        self.rerun_requested.emit(variations)

    def delete_selected(self) -> None:
        self.library.trash(self.selected_rows())

    def _open(self, index: QModelIndex) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.model.path(index.row()))))


# --- sprite sheet export ----------------------------------------------------------------------


class _ExportSignals(QObject):
    done = Signal(list, list)  # files written, warnings
    failed = Signal(str)


class _ExportTask(QRunnable):
    def __init__(self, kwargs: dict, signals: _ExportSignals):
        super().__init__()
        self.kwargs = kwargs
        self.signals = signals

    def run(self) -> None:
        try:
            from asset_studio.service import SheetExport, export_sheet

            result = export_sheet(SheetExport(**self.kwargs))  # the one export, as `asset-studio sheet`
            self.signals.done.emit(result.pages + result.data_files, result.warnings)
        except UserError as exc:
            self.signals.failed.emit(str(exc))
        except OSError as exc:
            from asset_studio.errors import describe_os_error

            self.signals.failed.emit(describe_os_error(exc, self.kwargs.get("out")))


class SheetExportDialog(QDialog):
    """Options for one sprite sheet; packing and writing run off the GUI thread."""

    message = Signal(str)
    exported = Signal(list)

    FORMAT_LABELS = {
        "texturepacker-hash": "TexturePacker JSON (hash) — Phaser, PixiJS",
        "texturepacker-array": "TexturePacker JSON (array) — Phaser",
        "aseprite": "Aseprite JSON",
        "godot4": "Godot 4 (SpriteFrames .tres)",
        "unity": "Unity (sprite sheet + importer)",
    }

    def __init__(self, paths: list[Path], output_dir: Path, parent=None):
        super().__init__(parent)
        from asset_studio.core.exporters import FORMATS

        self.setWindowTitle("Export sprite sheet")
        self.paths = list(paths)
        self.format_combo = QComboBox()
        for fmt in FORMATS:
            self.format_combo.addItem(self.FORMAT_LABELS.get(fmt, fmt), fmt)
        self.out_edit = QLineEdit(str(Path(output_dir) / "sheets" / "sheet.png"))
        browse = QPushButton("…")
        browse.setFixedWidth(32)
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse)
        self.trim_box = QCheckBox("Trim transparent borders (offsets are kept)")
        self.trim_box.setChecked(True)
        self.padding_spin = QSpinBox()
        self.padding_spin.setRange(0, 64)
        self.padding_spin.setValue(2)
        self.padding_spin.setToolTip("Transparent pixels between frames, so filtering never bleeds a neighbour in.")
        self.extrude_spin = QSpinBox()
        self.extrude_spin.setRange(0, 16)
        self.extrude_spin.setToolTip("Repeat each frame's edge pixels outward: stops seams on tiles.")
        self.pot_box = QCheckBox("Power-of-two page size")
        self.max_spin = QSpinBox()
        self.max_spin.setRange(64, 16384)
        self.max_spin.setSingleStep(512)
        self.max_spin.setValue(4096)
        self.status = QLabel(f"{len(self.paths)} image(s) selected.")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("Sheet file", out_row)
        form.addRow(self.trim_box)
        form.addRow("Padding", self.padding_spin)
        form.addRow("Extrude", self.extrude_spin)
        form.addRow(self.pot_box)
        form.addRow("Max page size", self.max_spin)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_btn = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self._signals = _ExportSignals()
        self._signals.done.connect(self._done)
        self._signals.failed.connect(self._failed)
        self.result_paths: list[Path] = []

    def _browse(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Sheet file", self.out_edit.text(), "PNG (*.png)")
        if path:
            self.out_edit.setText(path)

    def start(self) -> None:
        self.export_btn.setEnabled(False)
        self.status.setText("Packing…")
        out = Path(self.out_edit.text()).expanduser()
        kwargs = dict(inputs=self.paths, out=out if out.suffix.lower() == ".png" else out.with_suffix(".png"),
                      format=self.format_combo.currentData(), trim=self.trim_box.isChecked(),
                      padding=self.padding_spin.value(), extrude=self.extrude_spin.value(),
                      pot=self.pot_box.isChecked(), max_size=self.max_spin.value())
        QThreadPool.globalInstance().start(_ExportTask(kwargs, self._signals))

    def _done(self, files: list, warnings: list) -> None:
        self.result_paths = [Path(f) for f in files]
        text = "Exported " + ", ".join(Path(f).name for f in files) + "".join(f"; warning: {w}" for w in warnings)
        self.message.emit(text)
        self.exported.emit(self.result_paths)
        self.accept()

    def _failed(self, text: str) -> None:
        self.export_btn.setEnabled(True)
        self.status.setText(text)
        self.message.emit(text)
