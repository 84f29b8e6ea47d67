"""The model manager page: models on this computer, importing a checkpoint, downloading from the catalog.

Scans and downloads run off the GUI thread. A download goes to the Hugging Face cache through
huggingface_hub; files already there are skipped, so pressing Download again resumes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton,
    QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

from asset_studio.gui.ui.dialogs import start_in
from asset_studio.core import families
from asset_studio.core import models as core_models
from asset_studio.errors import UserError


class _ScanSignals(QObject):
    done = Signal(list)


class _ImportSignals(QObject):
    done = Signal(bool, str)  # imported, the sentence


class _ImportTask(QRunnable):
    """Copying a multi-gigabyte checkpoint takes seconds: never on the GUI thread."""

    def __init__(self, source: Path, models_dir: Path, signals: _ImportSignals):
        super().__init__()
        self.source, self.models_dir, self.signals = source, models_dir, signals

    def run(self) -> None:
        try:
            model = core_models.import_checkpoint(self.source, self.models_dir)
        except UserError as exc:
            self.signals.done.emit(False, str(exc))
            return
        self.signals.done.emit(True, f"Imported {model.name} ({model.kind}, {model.family_label}).")


class _ScanTask(QRunnable):
    def __init__(self, models_dir: Path, signals: _ScanSignals):
        super().__init__()
        self.models_dir = models_dir
        self.signals = signals

    def run(self) -> None:
        try:
            found = core_models.scan_all(self.models_dir)
        except Exception:  # noqa: BLE001 - a broken cache must not take the page down
            found = core_models.scan_models_dir(self.models_dir)
        self.signals.done.emit(found)


class DownloadWorker(QObject):
    """Runs one catalog download at a time in its own thread."""

    progress = Signal(int, int, str)  # bytes done, bytes total, file
    finished = Signal(str, str)  # entry id, local folder
    failed = Signal(str, str)  # entry id, sentence
    cancelled = Signal(str)  # entry id

    _start = Signal(object)

    def __init__(self):
        super().__init__()
        self._cancel = threading.Event()
        self._thread: QThread | None = None  # started with the first download, not before

    def download(self, entry: core_models.CatalogEntry) -> None:
        if self._thread is None:
            self._thread = QThread()
            self._thread.setObjectName("asset-studio-download")
            self.moveToThread(self._thread)
            self._start.connect(self._run)
            self._thread.start()
        self._cancel.clear()
        self._start.emit(entry)

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        self._cancel.set()
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait(10000)

    @Slot(object)
    def _run(self, entry: core_models.CatalogEntry) -> None:
        try:
            folder = core_models.download_entry(
                entry, on_progress=lambda d, t, f: self.progress.emit(d, t, f), cancel=self._cancel)
        except core_models.Cancelled:
            self.cancelled.emit(entry.id)
        except UserError as exc:
            self.failed.emit(entry.id, str(exc))
        except Exception as exc:  # noqa: BLE001 - the page must survive anything a download throws
            self.failed.emit(entry.id, f"Cannot download {entry.name}: {exc}.")
        else:
            self.finished.emit(entry.id, folder)


def _fit_columns(tree: QTreeWidget, columns) -> None:
    """Size columns to their contents with room to breathe, never narrower than their header."""
    metrics = tree.fontMetrics()
    for col in columns:
        tree.resizeColumnToContents(col)
        header = metrics.horizontalAdvance(tree.headerItem().text(col))
        tree.setColumnWidth(col, max(tree.columnWidth(col), header, 70) + 16)


def _kb_progress(done: int, total: int) -> tuple[int, int]:
    """QProgressBar holds ints; count in KiB so multi-GB downloads fit."""
    return done // 1024, max(1, total // 1024)


class ModelManager(QWidget):
    models_changed = Signal(list)  # [LocalModel]
    use_model = Signal(str)  # a model ref chosen for generation
    message = Signal(str)
    imported = Signal(bool, str)  # a background import ended: imported, the sentence

    def __init__(self, models_dir: Path, catalog_path: Path | None = None, parent=None):
        super().__init__(parent)
        self.models_dir = Path(models_dir)
        self.catalog_path = catalog_path
        self.local: list[core_models.LocalModel] = []
        self.scanned = False
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._scan_signals = _ScanSignals()
        self._scan_signals.done.connect(self._scan_done)
        self._import_signals = _ImportSignals()
        self._import_signals.done.connect(self._imported)
        self._downloading: str | None = None
        self.downloader = DownloadWorker()
        self.downloader.progress.connect(self._dl_progress)
        self.downloader.finished.connect(self._dl_finished)
        self.downloader.failed.connect(self._dl_failed)
        self.downloader.cancelled.connect(self._dl_cancelled)

        # local models
        self.local_tree = QTreeWidget()
        self.local_tree.setHeaderLabels(["Name", "Kind", "Family", "Size", "Source"])
        self.local_tree.setRootIsDecorated(False)
        self.local_tree.setAlternatingRowColors(True)
        self.local_tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.local_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        _fit_columns(self.local_tree, range(1, 5))
        self.local_tree.itemDoubleClicked.connect(lambda *_: self._use_selected())
        self.local_empty = QLabel(
            "No model found yet. Download one below (SD-Turbo makes images in 1-4 steps), import a "
            "single-file .safetensors checkpoint, or put a diffusers folder into the models folder.")
        self.local_empty.setWordWrap(True)
        self.local_empty.setVisible(False)
        self.refresh_btn = QPushButton("Refresh")
        self.import_btn = QPushButton("Import model file…")
        self.import_btn.setToolTip("Copy a single-file .safetensors model (as civitai ships them) into the models "
                                   "folder: a checkpoint, a LoRA, a VAE or a ControlNet; its kind is read from the file.")
        self.use_btn = QPushButton("Use for generation")
        self.use_btn.setToolTip("Select this model in the Create tab.")
        self.folder_btn = QPushButton("Open models folder")
        self.refresh_btn.clicked.connect(self.refresh)
        self.import_btn.clicked.connect(self._import_dialog)
        self.use_btn.clicked.connect(self._use_selected)
        self.folder_btn.clicked.connect(self._open_folder)

        local_box = QGroupBox("On this computer")
        lb = QVBoxLayout(local_box)
        self.location = QLabel()
        self.location.setWordWrap(True)
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lb.addWidget(self.location)
        lb.addWidget(self.local_empty)
        lb.addWidget(self.local_tree, 1)
        row = QHBoxLayout()
        for b in (self.refresh_btn, self.import_btn, self.folder_btn):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.use_btn)
        lb.addLayout(row)

        # catalog
        self.catalog_tree = QTreeWidget()
        self.catalog_tree.setHeaderLabels(["Name", "Kind", "Family", "Size", "Repository", "Status"])
        self.catalog_tree.setRootIsDecorated(False)
        self.catalog_tree.setAlternatingRowColors(True)
        self.catalog_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.catalog_tree.itemSelectionChanged.connect(self._update_buttons)
        self.download_btn = QPushButton("Download")
        self.download_btn.setToolTip("Fetch the selected model from huggingface.co into the Hugging Face cache. "
                                     "Pressing it again after a stop resumes: finished files are kept.")
        self.cancel_btn = QPushButton("Cancel download")
        self.download_btn.clicked.connect(self.download_selected)
        self.cancel_btn.clicked.connect(self.cancel_download)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel("Nothing is downloaded unless you press Download.")
        self.status.setWordWrap(True)

        cat_box = QGroupBox("Download (catalog: models/catalog.toml)")
        cb = QVBoxLayout(cat_box)
        cb.addWidget(self.catalog_tree, 1)
        # The selected model's description, in the page (not only as a tooltip).
        self.description = QLabel("Select a model to read what it is for.")
        self.description.setWordWrap(True)
        self.description.setFixedHeight(self.description.fontMetrics().lineSpacing() * 2 + 6)
        self.description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        cb.addWidget(self.description)
        row2 = QHBoxLayout()
        row2.addWidget(self.download_btn)
        row2.addWidget(self.cancel_btn)
        row2.addWidget(self.progress, 1)
        cb.addLayout(row2)
        cb.addWidget(self.status)

        layout = QVBoxLayout(self)
        layout.addWidget(local_box, 1)
        layout.addWidget(cat_box, 1)
        self._load_catalog()
        self._update_location()
        self._update_buttons()

    # --- local ---------------------------------------------------------------------------------

    def set_models_dir(self, path: Path) -> None:
        self.models_dir = Path(path)
        self._update_location()
        self.refresh()

    def _update_location(self) -> None:
        self.location.setText(f"Models folder: {self.models_dir}   ·   plus the Hugging Face cache")

    def refresh(self) -> None:
        """Rescan in the background; models_changed fires when done."""
        self.refresh_btn.setEnabled(False)
        self._pool.start(_ScanTask(self.models_dir, self._scan_signals))

    def wait_for_scan(self, msecs: int = 10000) -> bool:
        return self._pool.waitForDone(msecs)

    def _scan_done(self, found: list) -> None:
        self.local = found
        self.scanned = True
        self.refresh_btn.setEnabled(True)
        self.local_tree.clear()
        for m in found:
            item = QTreeWidgetItem([m.name, m.kind, m.family_label, core_models.human_size(m.size_bytes), m.source])
            item.setData(0, Qt.ItemDataRole.UserRole, m.ref)
            item.setToolTip(0, m.ref)
            self.local_tree.addTopLevelItem(item)
        _fit_columns(self.local_tree, range(1, 5))
        self.local_empty.setVisible(not found)
        self._mark_catalog()
        self._update_buttons()
        self.models_changed.emit(found)

    def checkpoints(self) -> list[core_models.LocalModel]:
        return [m for m in self.local if m.kind == "checkpoint"]

    def _use_selected(self) -> None:
        item = self.local_tree.currentItem()
        if item is not None:
            self.use_model.emit(item.data(0, Qt.ItemDataRole.UserRole))

    def _open_folder(self) -> None:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.models_dir)))

    def _import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model file", start_in(None),
                                              "Safetensors models (*.safetensors)")
        if path:
            self.import_in_background(Path(path))

    def import_in_background(self, path: Path) -> None:
        """Import PATH on the thread pool; `imported(ok, sentence)` follows."""
        self.import_btn.setEnabled(False)
        self.status.setText(f"Copying {Path(path).name} into the models folder…")
        self._pool.start(_ImportTask(Path(path), self.models_dir, self._import_signals))

    def _imported(self, ok: bool, text: str) -> None:
        self.import_btn.setEnabled(True)
        self.status.setText(text)
        self.message.emit(text)
        if ok:
            self.refresh()
        self.imported.emit(ok, text)

    def import_file(self, path: Path) -> bool:
        try:
            model = core_models.import_checkpoint(path, self.models_dir)
        except UserError as exc:
            self.status.setText(str(exc))
            self.message.emit(str(exc))
            return False
        text = f"Imported {model.name} ({model.kind}, {model.family_label})."
        self.status.setText(text)
        self.message.emit(text)
        self.refresh()
        return True

    # --- catalog -------------------------------------------------------------------------------

    def _load_catalog(self) -> None:
        self.catalog_tree.clear()
        try:
            self.catalog = core_models.load_catalog(self.catalog_path)
        except UserError as exc:
            self.catalog = []
            self.status.setText(str(exc))
        for e in self.catalog:
            item = QTreeWidgetItem([e.name, e.kind, families.label(e.family),
                                    e.size_hint, e.repo, ""])
            item.setData(0, Qt.ItemDataRole.UserRole, e.id)
            item.setToolTip(0, e.description)
            self.catalog_tree.addTopLevelItem(item)
        _fit_columns(self.catalog_tree, range(1, 6))

    def _mark_catalog(self) -> None:
        have = {m.ref for m in self.local}
        for i in range(self.catalog_tree.topLevelItemCount()):
            item = self.catalog_tree.topLevelItem(i)
            entry = self.catalog[i]
            if self._downloading == entry.id:
                continue
            item.setText(5, "downloaded" if entry.repo in have else "")

    def _selected_entry(self) -> core_models.CatalogEntry | None:
        item = self.catalog_tree.currentItem()
        if item is None:
            return None
        entry_id = item.data(0, Qt.ItemDataRole.UserRole)
        return next((e for e in self.catalog if e.id == entry_id), None)

    def select_catalog(self, entry_id: str) -> None:
        for i, e in enumerate(self.catalog):
            if e.id == entry_id:
                self.catalog_tree.setCurrentItem(self.catalog_tree.topLevelItem(i))

    def _update_buttons(self) -> None:
        entry = self._selected_entry()
        if entry is not None:
            licence = f" Licence: {entry.license}." if entry.license else ""
            self.description.setText(f"{entry.name}: {entry.description or 'no description.'}{licence}")
        busy = self._downloading is not None
        self.download_btn.setEnabled(not busy and self._selected_entry() is not None)
        self.cancel_btn.setEnabled(busy)
        self.use_btn.setEnabled(bool(self.local))

    def _item(self, entry_id: str) -> QTreeWidgetItem | None:
        for i in range(self.catalog_tree.topLevelItemCount()):
            item = self.catalog_tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == entry_id:
                return item
        return None

    def download_selected(self) -> None:
        entry = self._selected_entry()
        if entry is None or self._downloading:
            return
        self._downloading = entry.id
        self.progress.setRange(0, 0)  # busy until the first byte count arrives
        self.progress.setFormat("")
        self.status.setText(f"Connecting to huggingface.co for {entry.name}…")
        if (item := self._item(entry.id)) is not None:
            item.setText(5, "downloading")
        self._update_buttons()
        self.downloader.download(entry)

    def cancel_download(self) -> None:
        if self._downloading:
            self.status.setText("Stopping the download…")
            self.downloader.cancel()

    def _dl_progress(self, done: int, total: int, name: str) -> None:
        value, maximum = _kb_progress(done, total)
        self.progress.setRange(0, maximum)
        self.progress.setValue(min(value, maximum))
        self.progress.setFormat(f"%p%  {core_models.human_size(done)} / {core_models.human_size(total)}")
        self.status.setText(f"Downloading {name}")

    def _dl_done(self, entry_id: str, status: str, text: str) -> None:
        self._downloading = None
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if status == "downloaded" else 0)
        self.progress.setFormat("")
        if (item := self._item(entry_id)) is not None:
            item.setText(5, status)
        self.status.setText(text)
        self.message.emit(text)
        self._update_buttons()

    def _dl_finished(self, entry_id: str, folder: str) -> None:
        self._dl_done(entry_id, "downloaded", f"Downloaded to {folder}.")
        self.refresh()

    def _dl_failed(self, entry_id: str, message: str) -> None:
        self._dl_done(entry_id, "failed", message)

    def _dl_cancelled(self, entry_id: str) -> None:
        self._dl_done(entry_id, "stopped", "Download stopped; press Download again to resume (finished files are kept).")

    def shutdown(self) -> None:
        self.downloader.shutdown()
        self._pool.waitForDone(5000)
