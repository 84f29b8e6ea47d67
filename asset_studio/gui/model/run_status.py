"""What the window says about generation on every tab: the job running (loading, image i of n,
step, time left, a bar) and the latest result (its file and a small picture that opens it).

`describe_progress()` is the one place a queue entry becomes the words and bar values the Create
panel and the status strip show. `RunStatus` follows the JobQueue and the saved images; the
status strip (gui/ui/status_strip) shows it below the tabs, so a job started from the Layout tab,
or still running when the artist moves to Style packs, stays in sight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from asset_studio.gui.model.queue import CANCELLED, DONE, FAILED, RUNNING, JobQueue, QueueEntry

TICK_MS = 1000  # the time left counts down between steps


def fmt_time(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


@dataclass
class ProgressView:
    """A queue entry as words and a bar: maximum 0 is a busy bar (loading has no steps to count)."""

    text: str
    value: int
    maximum: int
    ticking: bool  # the words change with time alone (loading for…, time left)


def describe_progress(queue: JobQueue, entry: QueueEntry) -> ProgressView:
    if entry.state == RUNNING and entry.step == 0:
        what = entry.loading or ("Loading the model…" if entry.status in ("Starting…", "") else entry.status)
        since = entry.loading_since if entry.loading_since is not None else entry.started_at
        waited = f" ({fmt_time(queue.clock() - since)})" if since is not None else ""
        return ProgressView(what + waited, 0, 0, True)
    if entry.state == RUNNING:
        left = queue.seconds_left(entry.job_id)
        extra = f" · {fmt_time(left)} left" if left is not None else ""
        if entry.load_seconds is not None and entry.load_seconds >= 1 and entry.step - entry.first_step < 3:
            extra += f" · loaded in {fmt_time(entry.load_seconds)}"
        if entry.remote:  # which server makes which image (a pool shares the batch)
            extra += f" · {entry.where}"
        return ProgressView(entry.status + extra, entry.step, max(1, entry.total), True)
    if entry.state == DONE:
        return ProgressView(f"Done: {len(entry.paths)} image(s)" + (f" · {entry.where}" if entry.remote else ""),
                            1, 1, False)
    if entry.state == FAILED:
        return ProgressView("Failed: " + entry.status, 0, 1, False)
    if entry.state == CANCELLED:
        return ProgressView("Cancelled; finished images were kept.", 0, 1, False)
    return ProgressView("Waiting…", 0, 1, False)


class RunStatus(QObject):
    changed = Signal()  # the words, the bar or the latest result changed

    def __init__(self, queue: JobQueue, parent: QObject | None = None):
        super().__init__(parent)
        self.queue = queue
        self.job_id: int | None = None  # the job shown: the running one, else the last that ran
        self.view = ProgressView("", 0, 1, False)
        self.label = ""  # what the shown job makes ("health potion")
        self.latest_path: Path | None = None  # the newest saved image (its sprite where there is one)
        self.latest_image = QImage()
        self.latest_label = ""
        self.preview_image = QImage()  # the running job's step preview, until its first image is saved
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        queue.entry_changed.connect(self._entry_changed)
        queue.changed.connect(self._queue_changed)

    # --- reading ---------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.queue.busy()

    @property
    def waiting(self) -> int:
        return len(self.queue.waiting())

    def has_anything(self) -> bool:
        """Whether there is something to show: a job ran or runs this session, or a result."""
        return self.job_id is not None or self.latest_path is not None

    def headline(self) -> str:
        """One line: the job, its progress and the queue behind it."""
        if self.job_id is None:
            return f"Latest: {self.latest_label}" if self.latest_path is not None else "Idle"
        more = f" · {self.waiting} more queued" if self.waiting else ""
        return f"{self.label}: {self.view.text}{more}" if self.label else self.view.text + more

    # --- the queue's and the worker's events -------------------------------------------------------

    def _entry_changed(self, job_id: int) -> None:
        entry = self.queue.entry(job_id)
        if entry is None:
            return
        if entry.state != RUNNING and job_id != self.job_id:
            return  # a queued job changed (moved, cancelled before it ran): the shown one stays
        self.job_id, self.label = job_id, entry.label
        self.view = describe_progress(self.queue, entry)
        if self.view.ticking and not self._timer.isActive():
            self._timer.start()
        elif not self.view.ticking:
            self._timer.stop()
        self.changed.emit()

    def _queue_changed(self) -> None:
        if self.job_id is not None and self.queue.entry(self.job_id) is None:  # removed from the list
            self.job_id, self.label = None, ""
            self._timer.stop()
        self.changed.emit()

    def _tick(self) -> None:
        if self.job_id is not None:
            self._entry_changed(self.job_id)

    def on_preview(self, job_id: int, image: QImage) -> None:
        """The running job's step preview: the strip's picture until a result is saved."""
        if image is not None and not image.isNull():
            self.preview_image = image
            self.changed.emit()

    def picture(self) -> tuple[QImage, str]:
        """What the strip's picture shows: the step preview while a job makes its first image,
        else the latest result; with its words."""
        entry = self.queue.entry(self.job_id) if self.job_id is not None else None
        running = entry is not None and entry.state == RUNNING and not entry.paths
        if running and not self.preview_image.isNull():
            return self.preview_image, "Step preview (not finished yet)"
        if self.latest_path is not None:
            return self.latest_image, f"{self.latest_path.name}: open it in the viewer (Create tab)"
        return QImage(), ""

    def show_latest(self, path: Path, label: str = "") -> None:
        """The newest image of the library as the latest result (at start, before anything ran)."""
        self.latest_path = Path(path)
        self.latest_image = QImage(str(path))
        self.latest_label = label or Path(path).name
        self.changed.emit()

    def on_image_saved(self, job_id: int, path: str, image: QImage, sprite: str | None = None) -> None:
        """A result is on disk: it becomes the latest (the finished sprite where the style makes one)."""
        shown = Path(sprite) if sprite else Path(path)
        entry = self.queue.entry(job_id)
        self.latest_path = shown
        self.latest_image = image if image is not None and not image.isNull() else QImage(str(shown))
        self.latest_label = f"{entry.label} · {shown.name}" if entry is not None else shown.name
        self.preview_image = QImage()
        self.changed.emit()
