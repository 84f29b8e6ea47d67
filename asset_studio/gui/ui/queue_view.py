"""The job queue under the Generate button: one row per queued or running job and the last few
finished ones, each saying where its images are made (this computer, or which ComfyUI server of a
pool makes which image); right-click to cancel, remove or reorder. Hidden while it has one row."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu

from asset_studio.gui.model.queue import DONE, FINAL, QUEUED, RUNNING, JobQueue

ROWS_SHOWN = 4
FINISHED_SHOWN = 3  # the last finished jobs stay listed, with who made their images


class QueueView(QListWidget):
    def __init__(self, queue: JobQueue):
        super().__init__()
        self.queue = queue
        self.setToolTip("Jobs waiting to run, running and just finished, with where their images are made. "
                        "Right-click one to cancel it or change its place.")
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        queue.changed.connect(self.refresh)
        queue.entry_changed.connect(self._entry_changed)
        self._states: dict[int, str] = {}
        self.refresh()

    def _entry_changed(self, job_id: int) -> None:
        entry = self.queue.entry(job_id)
        if entry is None or self._states.get(job_id) != entry.state:
            self.refresh()  # a job started or ended: rows come and go
            return
        for row in range(self.count()):  # a step: only the running row's text changes
            if self.job_id_at(row) == job_id:
                self.item(row).setText(self._text(entry))
                self.item(row).setToolTip(self._text(entry))

    @staticmethod
    def _text(e) -> str:
        if e.state == QUEUED:
            return f"#{e.job_id}  {e.label}  —  waiting"
        where = e.where if e.state in (RUNNING, DONE) or e.made else ""
        return f"#{e.job_id}  {e.label}  —  {e.status}" + (f"  ·  {where}" if where else "")

    def refresh(self) -> None:
        finished = [e for e in self.queue.entries() if e.state in FINAL][-FINISHED_SHOWN:]
        entries = [e for e in self.queue.entries() if e.state in (QUEUED, RUNNING) or e in finished]
        self.clear()
        self._states = {e.job_id: e.state for e in self.queue.entries()}
        for e in entries:
            item = QListWidgetItem(self._text(e))
            item.setToolTip(self._text(e))  # the whole line, where a narrow panel cuts it
            item.setData(Qt.ItemDataRole.UserRole, e.job_id)
            self.addItem(item)
        # Only worth the room when something waits behind the running job.
        self.setVisible(len(entries) > 1)
        rows = min(ROWS_SHOWN, max(1, len(entries)))
        self.setFixedHeight(rows * (self.fontMetrics().height() + 6) + 6)

    def job_id_at(self, row: int) -> int | None:
        item = self.item(row)
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _menu(self, pos) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        job_id = item.data(Qt.ItemDataRole.UserRole)
        waiting = [e.job_id for e in self.queue.waiting()]
        menu = QMenu(self)
        entry = self.queue.entry(job_id)
        if entry is not None and entry.state in FINAL:
            menu.addAction("Remove", lambda: self.queue.remove(job_id))
            menu.addAction("Clear finished", self.queue.clear_finished)
            menu.exec(self.mapToGlobal(pos))
            return
        menu.addAction("Cancel", lambda: self.queue.cancel(job_id))
        if job_id in waiting:
            at = waiting.index(job_id)
            menu.addAction("Run next", lambda: self.queue.move(job_id, 0)).setEnabled(at > 0)
            menu.addAction("Move up", lambda: self.queue.move(job_id, at - 1)).setEnabled(at > 0)
            menu.addAction("Move down", lambda: self.queue.move(job_id, at + 1)).setEnabled(at < len(waiting) - 1)
            menu.addAction("Remove", lambda: self.queue.remove(job_id))
        menu.exec(self.mapToGlobal(pos))
