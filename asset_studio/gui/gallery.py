"""The output library: a grid of every image made, newest first, with each image's job beside it.

Thumbnails load lazily on a thread pool (QImageReader scales while decoding) the first time a
row is painted, so a library of thousands of images opens at once. Deleting moves files to
`.trash/` inside the output folder; dragging an image out hands the file manager its path.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel, QMimeData, QModelIndex, QObject, QRunnable, QSize, Qt, QThreadPool, QUrl, Signal,
)
from PySide6.QtGui import QColor, QDesktopServices, QIcon, QImage, QImageReader, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QHBoxLayout,
    QHeaderView, QLabel, QLineEdit, QListView, QMessageBox, QPlainTextEdit, QPushButton, QSizePolicy, QSpinBox,
    QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError
from asset_studio.gui.model import variations as runs
from asset_studio.gui.model.library import TRASH_DIR, Library, LibraryEntry
from asset_studio.gui.model.queue import where_label
from asset_studio.gui.model.sheet_export import SheetExportModel, SheetPlan
from asset_studio.gui.ui.run_groups import RunDelegate, RunsModel

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
        library.entry_changed.connect(self._entry_changed)

    # model API
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._paths)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._paths):
            return None
        path = self._paths[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            entry = self._entry(index.row())
            if entry is not None and entry.kind == "sheet":
                return f"▦ sheet · {path.stem}"  # badged: a result of the export, not of generation
            if entry is not None and entry.group:
                return f"{Path(entry.group).name} / {path.stem}"  # a run of its own (a pose set)
            return path.stem
        if role == Qt.ItemDataRole.DecorationRole:
            key = str(path)
            icon = self._thumbs.get(key)
            if icon is None:
                self._request(key)
                return self._placeholder
            return icon
        if role == Qt.ItemDataRole.ToolTipRole:
            entry = self._entry(index.row())
            if entry is not None and entry.raw is not None and entry.sprite is not None:
                return f"Sprite: {entry.sprite}\nRaw image: {entry.raw}"
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

    def _entry(self, row: int):
        lib = self.library
        if row < len(lib) and lib.path(row) == self._paths[row]:
            return lib.entry(row)
        return None

    def _entry_changed(self, row: int) -> None:
        self._paths[row] = self.library.path(row)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)

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
    if s.subseed is not None:
        rows.append(("Variation seed", f"{s.subseed}, strength {s.subseed_strength:g}"))
    for label, value in (("Style", job.source.style), ("Template", job.source.template),
                         ("Subject", job.source.subject)):
        if value:
            rows.append((label, value))
    for lora in job.model.loras:
        rows.append(("LoRA", f"{Path(lora.path).name} × {lora.weight:g}"))
    for unit in job.controls:
        rows.append(("ControlNet", f"{unit.type} {Path(unit.model).name} × {unit.scale:g}"))
    if job.init is not None and job.init.kept:
        rows.append(("Detailed from", Path(job.init.image).name))
    elif job.init is not None:
        rows.append(("Init image", f"{Path(job.init.image).name}, denoise {job.init.denoise:g}"))
    for d in job.passes.detail:
        regions = " ".join(f"{b.x},{b.y},{b.width},{b.height}" for b in d.boxes) or Path(d.detector).name
        rows.append(("Detailer", f"{regions}, denoise {d.denoise:g}"))
    if job.tiling != "off":
        rows.append(("Tiling", job.tiling))
    from asset_studio.gui.model.passes_form import SECTIONS, TITLES, pass_summary

    for section in SECTIONS:  # the after-passes (the detailer's regions are listed by the detail panel's branch)
        part = getattr(job.passes, section)
        if part is not None and section != "detail":
            rows.append((TITLES[section], pass_summary(section, part)))
    f = job.finishing
    done = [name for name, on in ((f"cut-out ({f.method})", f.remove_background),
                                  (f"pixel grid {f.pixel_grid}", f.pixel_grid > 0),
                                  (f"palette of {f.palette_size}", f.palette_size > 0),
                                  ("trim", f.trim), ("exact text", bool(f.crisp_text))) if on]
    if done:
        rows.append(("Finishing", ", ".join(done)))
    if job.made_by:  # a server's image; "" means the computer that made it, not necessarily this one
        rows.append(("Made on", where_label(job.made_by)))
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
    """The library grid plus a details panel; emits jobs to run, the entry to view, and selections to export."""

    rerun_requested = Signal(object)  # GenerationJob
    export_requested = Signal(list)  # [Path]: the files to pack (the sprites by default)
    current_changed = Signal(object)  # the LibraryEntry selected alone, or None
    style_preview_requested = Signal(object)  # Path: make this image the current style's preview
    detail_requested = Signal(object)  # Path: the viewer's Detail a region… on this image (its raw one)
    message = Signal(str)

    def __init__(self, library: Library | Path, parent=None):
        super().__init__(parent)
        self.library = library if isinstance(library, Library) else Library(Path(library), self)
        self.library.message.connect(self.message)
        self.model = LibraryModel(self.library, self)
        self.view = HintListView("No images yet. What you generate is saved here at once, "
                                 "with its settings inside the PNG.")
        # The grid's rows are runs (a header each, collapsible) and their images: RunsModel maps
        # them to the entry rows of self.model, which the rest of the gallery works with.
        spacing = 4
        self.runs_model = RunsModel(self.library, self.model,
                                    lambda: self.view.viewport().width() - 2 * spacing - 2,
                                    QSize(THUMB + 16, THUMB + 24), self)
        self.view.setModel(self.runs_model)
        self.view.setItemDelegate(RunDelegate(self.view))
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setSpacing(spacing)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(False)  # headers span the grid
        self.view.setMouseTracking(True)
        self.view.clicked.connect(self._clicked)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.view.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.view.setToolTip("Your results, newest first: the finished sprite where the style makes one. "
                             "Drag images out to a folder; Delete moves them to the trash (Ctrl+Z undoes).")
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)

        # What the grid shows: sprites (the cut-outs) unless Raw; sheets kept out unless asked for.
        self.raw_box = QCheckBox("Raw images")
        self.raw_box.setToolTip("Show the raw generated images (with their background) instead of the finished sprites.")
        self.sheets_box = QCheckBox("Sheets")
        self.sheets_box.setToolTip("Also list the sprite sheets you exported (badged ▦).")
        self.undo_btn = QPushButton("Undo delete")
        self.undo_btn.setToolTip("Put the last deleted images back (Ctrl+Z).")
        self.undo_btn.setEnabled(False)
        self.raw_box.toggled.connect(self.library.set_show_raw)
        self.sheets_box.toggled.connect(self.library.set_show_sheets)
        self.undo_btn.clicked.connect(self.undo_delete)
        self.library.undo_available.connect(self.undo_btn.setEnabled)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 2)
        top.addWidget(self.raw_box)
        top.addWidget(self.sheets_box)
        top.addStretch(1)
        top.addWidget(self.undo_btn)

        self.title = QLabel("No image selected")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: 600;")
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("Select an image to see how it was made.")
        self.rerun_btn = QPushButton("Re-run")
        self.rerun_btn.setToolTip("Make this exact image again (same job, same seed).")
        self.reroll_btn = QPushButton("Re-roll")
        self.reroll_btn.setToolTip("The same job with new random seeds (as many images as the Create tab's batch).")
        self.vary_btn = QPushButton("Variations")
        self.vary_btn.setToolTip("Variations of this image, as many as the Create tab's batch: by variation seed "
                                 "(its own seed nudged toward new ones) or by img2img from it.")
        # Two kinds of variation, each with its own strength scale (and default).
        self.vary_mode = QComboBox()
        self.vary_mode.addItem("by seed", "subseed")
        self.vary_mode.addItem("by img2img", "img2img")
        self.vary_mode.setToolTip("By seed: the same seed, its noise nudged toward new variation seeds (text to "
                                  "image only). By img2img: this picture repainted at a low denoise.")
        self.vary_strength = QDoubleSpinBox()
        self.vary_strength.setRange(0.05, 0.95)
        self.vary_strength.setSingleStep(0.05)
        self.vary_strength.setValue(runs.SUBSEED_STRENGTH)
        self.vary_strength.setToolTip("Variation strength: by seed 0.1-0.2 is a close variation; "
                                      "by img2img (denoise) 0.2 changes small details, 0.5 repaints more.")
        self.vary_mode.currentIndexChanged.connect(self._vary_mode_changed)
        self.export_btn = QPushButton("Export sheet…")
        self.export_btn.setToolTip("Pack the selected sprites into a sprite sheet for a game engine.")
        self.delete_btn = QPushButton("Delete")
        self.delete_btn.setToolTip(f"Move the selected images (raw and sprite) to {TRASH_DIR}/ inside the output "
                                   "folder; Undo delete puts them back.")
        self.preview_btn = QPushButton("Style preview")
        self.preview_btn.setToolTip("Use this image as a preview picture of the Create tab's style pack "
                                    "(your own packs; duplicate a bundled one first).")
        self.preview_btn.clicked.connect(
            lambda: self._current_entry and self.style_preview_requested.emit(self._current_entry.shown()))
        self.folder_btn = QPushButton("Open folder")
        self.folder_btn.setToolTip("Show the output folder in the file manager.")
        self.batch_count = lambda: 4  # the window points this at the Create tab's batch count

        self.rerun_btn.clicked.connect(self.rerun_same_seed)
        self.reroll_btn.clicked.connect(self.reroll)
        self.vary_btn.clicked.connect(self.run_variations)
        self.export_btn.clicked.connect(lambda: self.export_requested.emit(self.export_paths()))
        self.delete_btn.clicked.connect(self.delete_selected)
        self.folder_btn.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.model.output_dir))))
        QShortcut(QKeySequence.StandardKey.Delete, self.view, self.delete_selected)
        QShortcut(QKeySequence.StandardKey.Undo, self.view, self.undo_delete)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(6, 0, 0, 0)
        side_layout.addWidget(self.title)
        side_layout.addWidget(self.details, 1)
        row1 = QHBoxLayout()
        for w in (self.rerun_btn, self.reroll_btn, self.vary_btn, self.vary_mode, self.vary_strength):
            row1.addWidget(w)
        side_layout.addLayout(row1)
        row2 = QHBoxLayout()
        row2.addWidget(self.export_btn)
        row2.addWidget(self.delete_btn)
        row2.addWidget(self.preview_btn)
        row2.addWidget(self.folder_btn)
        side_layout.addLayout(row2)

        grid = QWidget()
        gl = QVBoxLayout(grid)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.setSpacing(0)
        gl.addLayout(top)
        gl.addWidget(self.view, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(grid)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([700, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self._current_job: GenerationJob | None = None
        self._current_entry: LibraryEntry | None = None
        self.model.modelReset.connect(self._selection_changed)
        self._selection_changed()

    # content
    def refresh(self) -> None:
        self.library.refresh()

    def set_output_dir(self, path: Path) -> None:
        self.library.set_output_dir(path)

    def add_image(self, path: str | Path) -> None:
        self.library.add(Path(path))

    def selected_rows(self) -> list[int]:
        """The entry rows selected (headers are never selected)."""
        rows = (self.runs_model.entry_row(i.row()) for i in self.view.selectionModel().selectedIndexes())
        return sorted(r for r in rows if r is not None)

    def selected_paths(self) -> list[Path]:
        return [self.model.path(r) for r in self.selected_rows()]

    def selected_entries(self) -> list[LibraryEntry]:
        return [self.library.entry(r) for r in self.selected_rows() if r < len(self.library)]

    def export_paths(self) -> list[Path]:
        """What Export sheet packs: the selected sprites (raw images only where no sprite exists,
        or when the grid shows raw images); sheets are never packed again."""
        return self.library.export_paths(self.selected_rows(), raw=self.library.show_raw)

    def select_row(self, row: int) -> None:
        """Select entry ROW (opening its run when it is collapsed)."""
        if self.runs_model.view_row(row) < 0:
            key = self.library.entry(row).run_key
            for group in self.library.runs():
                if row in group.rows:
                    key = group.key
            self.library.set_collapsed(key, False)
        self.view.setCurrentIndex(self.runs_model.index(self.runs_model.view_row(row)))

    def _clicked(self, index) -> None:
        key = self.runs_model.run_key(index.row())
        if key is not None:
            self.library.toggle_run(key)

    # details and actions
    def _selection_changed(self, *_args) -> None:
        entries = self.selected_entries()
        has = bool(entries)
        for btn in (self.export_btn, self.delete_btn):
            btn.setEnabled(has)
        self._current_job = None
        self._current_entry = entries[0] if len(entries) == 1 else None
        if len(entries) != 1:
            self.title.setText(f"{len(entries)} images selected" if entries else "No image selected")
            self.details.setPlainText("")
        else:
            entry = entries[0]
            path = entry.shown(self.library.show_raw)
            kinds = "sprite + raw image" if entry.sprite and entry.raw else ("sheet" if entry.kind == "sheet" else "")
            self.title.setText(path.name + (f"  ({kinds})" if kinds else ""))
            job = read_image_job(entry.raw or entry.sprite)
            self._current_job = job
            if entry.kind == "sheet":
                self.details.setPlainText("A sprite sheet you exported (it is not packed again).")
            elif job is None:
                self.details.setPlainText("This PNG carries no Asset Studio job, so it cannot be re-run.")
            else:
                self.details.setPlainText("\n".join(f"{k}: {v}" for k, v in describe_job(job)))
        for btn in (self.rerun_btn, self.reroll_btn):
            btn.setEnabled(self._current_job is not None)
        self._update_vary_button()
        self.preview_btn.setEnabled(self._current_entry is not None and self._current_entry.kind == "image")
        self.current_changed.emit(self._current_entry)

    def current_job(self) -> GenerationJob | None:
        return self._current_job

    def current_entry(self) -> LibraryEntry | None:
        return self._current_entry

    def rerun_same_seed(self) -> None:
        if self._current_job is not None:
            self.rerun_requested.emit(runs.rerun(self._current_job))

    def reroll(self) -> None:
        if self._current_job is not None:
            self.rerun_requested.emit(runs.reroll(self._current_job, self.batch_count()))

    def _vary_mode_changed(self) -> None:
        by_seed = self.vary_mode.currentData() == "subseed"
        self.vary_strength.setValue(runs.SUBSEED_STRENGTH if by_seed else runs.VARIATION_DENOISE)
        self._update_vary_button()

    def _update_vary_button(self) -> None:
        job, entry = self._current_job, self._current_entry
        if self.vary_mode.currentData() == "subseed":
            ok = job is not None and runs.can_vary_by_subseed(job)
        else:
            ok = job is not None and entry is not None and entry.raw is not None
        self.vary_btn.setEnabled(ok)

    def run_variations(self) -> None:
        entry, job = self._current_entry, self._current_job
        strength = round(self.vary_strength.value(), 2)
        if job is None or entry is None:
            return
        if self.vary_mode.currentData() == "subseed":
            if runs.can_vary_by_subseed(job):
                self.rerun_requested.emit(runs.subseed_variations(job, self.batch_count(), strength))
        elif entry.raw is not None:
            # From the raw image: img2img over a cut-out's transparent background would paint a new one.
            self.rerun_requested.emit(runs.variations(job, entry.raw, self.batch_count(), strength))

    def _menu(self, pos) -> None:
        """Right-click: the selected image's file in other programs (the viewer shows it here)."""
        from PySide6.QtWidgets import QMenu

        entry = self._current_entry
        menu = QMenu(self)
        if entry is not None:
            path = entry.shown(self.library.show_raw)
            menu.addAction("Open in another program",
                           lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))
            menu.addAction("Show in folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent))))
            menu.addAction("Use as style preview", self.preview_btn.click)
            menu.addAction("Detail a region…", lambda: self.detail_requested.emit(entry.raw or entry.shown())
                           ).setEnabled(entry.kind == "image")
            menu.addSeparator()
        for btn in (self.rerun_btn, self.reroll_btn, self.vary_btn, self.export_btn, self.delete_btn):
            menu.addAction(btn.text(), btn.click).setEnabled(btn.isEnabled())
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def delete_selected(self) -> None:
        self.library.trash(self.selected_rows())

    def undo_delete(self) -> None:
        self.library.undo_trash()


# --- sprite sheet export ----------------------------------------------------------------------


class SheetExportDialog(QDialog):
    """Options for one sprite sheet, bound to a SheetExportModel: a live preview of the packed sheet
    (size, occupancy, animations) while options change; packing and writing run off the GUI thread."""

    message = Signal(str)
    exported = Signal(list)

    FORMAT_LABELS = {
        "texturepacker-hash": "TexturePacker JSON (hash) — Phaser, PixiJS",
        "texturepacker-array": "TexturePacker JSON (array) — Phaser",
        "aseprite": "Aseprite JSON",
        "godot4": "Godot 4 (SpriteFrames .tres)",
        "unity": "Unity (sprite sheet + importer)",
    }

    def __init__(self, paths: list[Path], output_dir: Path, parent=None, ask=None,
                 animation: tuple[str, float] | None = None):
        """ANIMATION: (name, fps) when the export is one animation (the Animate tab's Export to
        sheet): its row in the animations table starts with both, editable like any other."""
        super().__init__(parent)
        from asset_studio.core.exporters import FORMATS

        self.setWindowTitle("Export sprite sheet")
        self.resize(820, 480)  # room for the sheet preview
        self.paths = list(paths)
        sheet_name = f"{animation[0]}.png" if animation else "sheet.png"
        self.model = SheetExportModel(self.paths, Path(output_dir) / "sheets" / sheet_name, self, animation=animation)
        if animation:
            self.model.options = replace(self.model.options, fps=float(animation[1]))
        # ask(text) -> bool: the overwrite question (a message box; tests answer it)
        self.ask = ask or (lambda text: QMessageBox.question(self, "Replace files?", text) ==
                           QMessageBox.StandardButton.Yes)
        o = self.model.options
        self.format_combo = QComboBox()
        for fmt in FORMATS:
            self.format_combo.addItem(self.FORMAT_LABELS.get(fmt, fmt), fmt)
        self.out_edit = QLineEdit(str(o.out))
        browse = QPushButton("…")
        browse.setFixedWidth(32)
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse)
        self.trim_box = QCheckBox("Trim transparent borders (offsets are kept)")
        self.trim_box.setChecked(o.trim)
        self.padding_spin = QSpinBox()
        self.padding_spin.setRange(0, 64)
        self.padding_spin.setValue(o.padding)
        self.padding_spin.setToolTip("Transparent pixels between frames, so filtering never bleeds a neighbour in.")
        self.extrude_spin = QSpinBox()
        self.extrude_spin.setRange(0, 16)
        self.extrude_spin.setToolTip("Repeat each frame's edge pixels outward: stops seams on tiles.")
        self.square_box = QCheckBox("Near-square pages (as TexturePacker packs)")
        self.square_box.setChecked(o.square)
        self.pot_box = QCheckBox("Power-of-two page size")
        self.max_spin = QSpinBox()
        self.max_spin.setRange(64, 16384)
        self.max_spin.setSingleStep(512)
        self.max_spin.setValue(o.max_size)
        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(0.5, 120)
        self.fps_spin.setValue(o.fps)
        self.fps_spin.setToolTip("Frames per second of the animations (numbered names: walk_1, walk_2…) "
                                 "that have no speed of their own below.")
        # The animations found (folders, numbered names): the name, speed and loop they get in the data file.
        self.anim_table = QTableWidget(0, 4)
        self.anim_table.setHorizontalHeaderLabels(["Found", "Name in the export", "fps", "Loop"])
        self.anim_table.verticalHeader().setVisible(False)
        header = self.anim_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col in (2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.anim_table.setToolTip("Animations found by folder or numbered frame names (walk_1, walk_2…): "
                                   "rename them, give each its speed and whether it loops.")
        self.anim_hint = QLabel("No animations: numbered names (walk_1, walk_2…) or folders of frames make one.")
        self.anim_hint.setWordWrap(True)
        self.anim_hint.setStyleSheet("color: palette(mid);")
        self.anim_table.hide()  # until the first preview says what it found
        self.anim_hint.hide()
        self.preview = QLabel()
        self.preview.setMinimumSize(240, 200)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.preview.setStyleSheet("background: #2a2b30;")
        self.summary = QLabel("Packing the preview…")
        self.summary.setWordWrap(True)
        shown = "/".join(self.paths[0].parts[-2:]) if self.paths else ""  # a full path would not wrap
        self.status = QLabel(f"The frames in {shown}." if animation else f"{len(self.paths)} image(s) selected.")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("Sheet file", out_row)
        form.addRow(self.trim_box)
        form.addRow("Padding", self.padding_spin)
        form.addRow("Extrude", self.extrude_spin)
        form.addRow(self.square_box)
        form.addRow(self.pot_box)
        form.addRow("Max page size", self.max_spin)
        form.addRow("Animation fps", self.fps_spin)
        form.addRow(self.anim_hint)
        form.addRow(self.anim_table)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_btn = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.reveal_btn = self.buttons.addButton("Reveal", QDialogButtonBox.ButtonRole.ActionRole)
        self.reveal_btn.setToolTip("Show the sheet's folder in the file manager.")
        self.reveal_btn.setEnabled(False)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        self.reveal_btn.clicked.connect(self.reveal)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.status)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.preview, 1)
        right.addWidget(self.summary)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(columns, 1)
        layout.addWidget(self.buttons)
        self.result_paths: list[Path] = []
        self._bind()
        self.model.refresh_preview()

    def _bind(self) -> None:
        m = self.model
        self.format_combo.currentIndexChanged.connect(lambda _i: m.set_option("format", self.format_combo.currentData()))
        self.out_edit.textChanged.connect(lambda t: m.set_option("out", Path(t)))
        self.trim_box.toggled.connect(lambda on: m.set_option("trim", on))
        self.padding_spin.valueChanged.connect(lambda v: m.set_option("padding", v))
        self.extrude_spin.valueChanged.connect(lambda v: m.set_option("extrude", v))
        self.square_box.toggled.connect(lambda on: m.set_option("square", on))
        self.pot_box.toggled.connect(lambda on: m.set_option("pot", on))
        self.max_spin.valueChanged.connect(lambda v: m.set_option("max_size", v))
        self.fps_spin.valueChanged.connect(lambda v: m.set_option("fps", round(v, 2)))
        m.preview_ready.connect(self._show_plan)
        m.preview_failed.connect(self.summary.setText)
        m.animations_changed.connect(self._fill_animations)
        m.exported.connect(self._done)
        m.failed.connect(self._failed)
        m.confirm_overwrite.connect(self._confirm)

    def _fill_animations(self) -> None:
        """One row per animation found: an editable name, its speed (0 = the sheet's) and loop."""
        rows = self.model.animations()
        counts = dict(self.model.plan.animations) if self.model.plan else {}
        self.anim_table.setRowCount(len(rows))
        for r, anim in enumerate(rows):
            found = QTableWidgetItem(f"{anim.found} ({counts.get(anim.found, 0)})")
            found.setFlags(found.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.anim_table.setItem(r, 0, found)
            name = QLineEdit(anim.name)
            name.setFrame(False)
            name.textEdited.connect(lambda text, f=anim.found: self.model.edit_animation(f, name=text))
            fps = QDoubleSpinBox()
            fps.setRange(0, 120)
            fps.setSpecialValueText("sheet's")  # 0: the sheet's speed above
            fps.setValue(anim.fps or 0)
            fps.valueChanged.connect(lambda v, f=anim.found: self.model.edit_animation(f, fps=round(v, 2) or None))
            loop = QCheckBox()
            loop.setChecked(anim.loop)
            loop.toggled.connect(lambda on, f=anim.found: self.model.edit_animation(f, loop=on))
            self.anim_table.setCellWidget(r, 1, name)
            self.anim_table.setCellWidget(r, 2, fps)
            self.anim_table.setCellWidget(r, 3, loop)
        self.anim_table.resizeRowsToContents()
        self.anim_table.setVisible(bool(rows))
        self.anim_hint.setVisible(not rows)
        self.anim_table.setFixedHeight(self.anim_table.horizontalHeader().height() + 4 +
                                       sum(self.anim_table.rowHeight(r) for r in range(min(len(rows), 5))))

    def _show_plan(self, plan: SheetPlan) -> None:
        self.summary.setText(plan.summary())
        if plan.image is not None and not plan.image.isNull():
            pix = QPixmap.fromImage(plan.image)
            box = self.preview.size()
            if pix.width() > box.width() or pix.height() > box.height():
                pix = pix.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            self.preview.setPixmap(pix)

    def _browse(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Sheet file", self.out_edit.text(), "PNG (*.png)")
        if path:
            self.out_edit.setText(path)

    def start(self, force: bool = False) -> None:
        self.export_btn.setEnabled(False)
        self.status.setText("Packing and writing…")
        self.model.export(force=force)

    def _confirm(self, text: str) -> None:
        if self.ask(text):
            self.start(force=True)
        else:
            self.export_btn.setEnabled(True)
            self.status.setText("Not exported: choose another sheet file, or agree to replace the files.")

    def _done(self, files: list, warnings: list) -> None:
        self.result_paths = [Path(f) for f in files]
        text = "Exported " + ", ".join(Path(f).name for f in files) + "".join(f"; warning: {w}" for w in warnings)
        self.status.setText(text)
        self.message.emit(text)
        self.export_btn.setEnabled(True)
        self.reveal_btn.setEnabled(True)
        self.exported.emit(self.result_paths)

    def reveal(self) -> None:
        folder = self.result_paths[0].parent if self.result_paths else self.model.out.parent
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _failed(self, text: str) -> None:
        self.export_btn.setEnabled(True)
        self.status.setText(text)
        self.message.emit(text)
