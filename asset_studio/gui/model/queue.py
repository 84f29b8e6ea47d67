"""The jobs of this session: queued, running, done, failed or cancelled, in the order they run.

The worker's signals feed it (queued, started, loading, step, placed, image_saved, finished, failed,
cancelled); `placed` says which backend and server makes each image, so a pool's rows read
"ComfyUI: image 1 on gpu-1:8188, image 2 on gpu-2:8188" while running and name who made them when
done. The artist's actions (cancel, remove, move) go to the worker through `controller`, anything with cancel(job_id) and move(job_id, position) — the GenerationWorker in the app.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINAL = (DONE, FAILED, CANCELLED)


@dataclass
class QueueEntry:
    job_id: int
    job: object
    state: str = QUEUED
    step: int = 0
    total: int = 0
    status: str = ""  # "Loading the model…", "Image 2 of 4 · step 3 / 20", the failure's sentence
    paths: list[str] = field(default_factory=list)
    image_index: int = 0  # 1-based image of the batch being made (0 before the first step)
    image_count: int = 1
    loading: str = ""  # what is loading now ("" once steps run)
    loading_since: float | None = None
    load_seconds: float | None = None  # how long loading took before the first step
    started_at: float | None = None
    notices: list[str] = field(default_factory=list)
    first_step: int = 0  # the step (and time) the rate is measured from: loading does not skew it
    first_step_at: float | None = None
    last_step_at: float | None = None
    making: dict[int, str] = field(default_factory=dict)  # image index → who makes it now (job.made_by words)
    made: dict[int, str] = field(default_factory=dict)  # image index → who made it (saved)

    @property
    def label(self) -> str:
        init = self.job.init
        if init is not None and init.kept:  # an existing image detailed
            return f"Detail {Path(init.image).name}"
        return self.job.source.subject or self.job.prompt.text[:60]

    @property
    def remote(self) -> bool:
        """Some image of this job runs or ran on a server (then the progress line says where)."""
        return any(self.making.values()) or any(self.made.values())

    @property
    def where(self) -> str:
        """Where the running images are made ("ComfyUI: image 1 on gpu-2:8188, image 2 on gpu-1:8188"),
        or, once none runs, who made the saved ones ("made by ComfyUI: gpu-2:8188 ×1, gpu-1:8188 ×1",
        "made on this computer"); "" before the first step."""
        if self.making:
            groups: dict[str, list[str]] = {}
            for index, maker in sorted(self.making.items()):
                engine, place = _engine_and_place(maker)
                groups.setdefault(engine, []).append(f"image {index + 1} on {place}" if self.image_count > 1 else
                                                     f"on {place}")
            return " · ".join((f"{engine}: " if engine else "") + ", ".join(items) for engine, items in groups.items())
        if self.made:
            counts: dict[str, dict[str, int]] = {}
            for maker in self.made.values():
                engine, place = _engine_and_place(maker)
                counts.setdefault(engine, {}).setdefault(place, 0)
                counts[engine][place] += 1
            parts = []
            for engine, places in counts.items():
                if not engine:
                    parts.append("made on this computer")
                elif len(places) == 1 and len(self.made) == 1:
                    parts.append(f"made by {engine}: {next(iter(places))}")
                else:
                    parts.append(f"made by {engine}: " + ", ".join(f"{p} ×{n}" for p, n in places.items()))
            return " · ".join(parts)
        return ""


def _engine_and_place(made_by: str) -> tuple[str, str]:
    """("ComfyUI", "gpu-2:8188") for "comfyui http://gpu-2:8188"; ("", "this computer") for ""."""
    if not made_by:
        return "", "this computer"
    backend, _, server = made_by.partition(" ")
    if backend == "comfyui" and server:
        return "ComfyUI", server.split("://", 1)[-1].rstrip("/")
    return backend, server or backend


def where_label(made_by: str) -> str:
    """job.made_by in the window's words: "" (this machine) → "this computer",
    "comfyui http://gpu-2:8188" → "gpu-2:8188 (ComfyUI)"."""
    engine, place = _engine_and_place(made_by)
    if engine == "ComfyUI":
        return f"{place} (ComfyUI)"
    return made_by or place


class JobQueue(QObject):
    changed = Signal()  # entries added, removed or reordered
    entry_changed = Signal(int)  # job_id: its state or progress changed

    def __init__(self, controller=None, parent: QObject | None = None, clock=time.perf_counter):
        super().__init__(parent)
        self.controller = controller
        self.clock = clock  # tests pass a fake clock
        self._entries: list[QueueEntry] = []

    # --- reading -------------------------------------------------------------------------------

    def entries(self) -> list[QueueEntry]:
        return list(self._entries)

    def entry(self, job_id: int) -> QueueEntry | None:
        return next((e for e in self._entries if e.job_id == job_id), None)

    def waiting(self) -> list[QueueEntry]:
        return [e for e in self._entries if e.state == QUEUED]

    def running(self) -> QueueEntry | None:
        return next((e for e in self._entries if e.state == RUNNING), None)

    def busy(self) -> bool:
        return any(e.state in (QUEUED, RUNNING) for e in self._entries)

    # --- the worker's events -------------------------------------------------------------------

    def on_queued(self, job_id: int, job) -> None:
        # Steps of every image together: the progress bar spans the batch.
        self._entries.append(QueueEntry(job_id, job, total=job.sampling.steps * len(job.image_seeds())))
        self.changed.emit()

    def on_started(self, job_id: int) -> None:
        self._update(job_id, state=RUNNING, status="Starting…", started_at=self.clock())

    def on_loading(self, job_id: int, text: str) -> None:
        entry = self.entry(job_id)
        since = entry.loading_since if entry is not None and entry.loading_since is not None else self.clock()
        self._update(job_id, status=text, loading=text, loading_since=since)

    def on_notice(self, job_id: int, text: str) -> None:
        entry = self.entry(job_id)
        if entry is not None:
            entry.notices.append(text)
            self.entry_changed.emit(job_id)

    def on_step(self, job_id: int, step: int, total: int, *_preview) -> None:
        entry = self.entry(job_id)
        if entry is None:
            return
        # The worker counts the steps of the whole batch; each image has total / count of them.
        count = max(1, len(entry.job.image_seeds()))
        per = max(1, total // count)
        index = min(count, (max(1, step) - 1) // per + 1)
        now = self.clock()
        values = dict(step=step, total=total, image_index=index, image_count=count, loading="", last_step_at=now)
        if entry.first_step_at is None:
            values.update(first_step=step, first_step_at=now)
        if entry.loading_since is not None and entry.load_seconds is None:
            values["load_seconds"] = self.clock() - entry.loading_since
        within = step - (index - 1) * per
        batch = f"Image {index} of {count} · " if count > 1 else ""
        values["status"] = f"{batch}step {within} / {per}" if batch else f"Step {step} / {total}"
        self._update(job_id, **values)

    def on_placed(self, job_id: int, index: int, made_by: str, saved: bool) -> None:
        """Image INDEX is being made (or, SAVED, was made) by MADE_BY ("" = this computer)."""
        entry = self.entry(job_id)
        if entry is None:
            return
        if saved:
            entry.making.pop(index, None)
            entry.made[index] = made_by
        elif index not in entry.made:  # a late step of an image already saved changes nothing
            entry.making[index] = made_by  # a re-queued image moves to its new server
        self.entry_changed.emit(job_id)

    def on_image_saved(self, job_id: int, path: str, *_image) -> None:
        entry = self.entry(job_id)
        if entry is not None:
            entry.paths.append(str(path))
            self.entry_changed.emit(job_id)

    def on_finished(self, job_id: int, paths: list) -> None:
        self._update(job_id, state=DONE, paths=[str(p) for p in paths], status=f"Done: {len(paths)} image(s)",
                     making={})

    def on_failed(self, job_id: int, message: str) -> None:
        self._update(job_id, state=FAILED, status=message, making={})

    def on_cancelled(self, job_id: int) -> None:
        self._update(job_id, state=CANCELLED, status="Cancelled", making={})

    def seconds_left(self, job_id: int, now: float | None = None) -> float | None:
        """Time left of a running job: the rate of its steps so far, counted down between steps
        (so the estimate moves every second, not only when a step lands). None until two steps."""
        e = self.entry(job_id)
        if e is None or e.state != RUNNING or e.first_step_at is None or e.step <= e.first_step:
            return None
        now = self.clock() if now is None else now
        rate = (e.last_step_at - e.first_step_at) / (e.step - e.first_step)
        return max(0.0, rate * (e.total - e.step) - (now - e.last_step_at))

    def _update(self, job_id: int, **values) -> None:
        entry = self.entry(job_id)
        if entry is None:
            return
        for key, value in values.items():
            setattr(entry, key, value)
        self.entry_changed.emit(job_id)

    # --- the artist's actions ------------------------------------------------------------------

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one queued or running job; with no id, the running one and everything queued."""
        if self.controller is not None:
            self.controller.cancel(job_id)

    def remove(self, job_id: int) -> None:
        """Take a job off the list: a finished one is forgotten, a queued or running one cancelled first."""
        entry = self.entry(job_id)
        if entry is None:
            return
        if entry.state not in FINAL:
            self.cancel(job_id)
        self._entries.remove(entry)
        self.changed.emit()

    def clear_finished(self) -> None:
        before = len(self._entries)
        self._entries = [e for e in self._entries if e.state not in FINAL]
        if len(self._entries) != before:
            self.changed.emit()

    def move(self, job_id: int, position: int) -> bool:
        """Move a queued job to POSITION among the waiting ones (0 = runs next). False if it already started."""
        waiting = self.waiting()
        entry = self.entry(job_id)
        if entry is None or entry not in waiting:
            return False
        position = max(0, min(position, len(waiting) - 1))
        pending = None
        if self.controller is not None:
            if not self.controller.move(job_id, position):
                return False  # the worker took it meanwhile
            pending = self.controller.pending_ids() if hasattr(self.controller, "pending_ids") else None
        if pending is None:
            waiting.remove(entry)
            waiting.insert(position, entry)
        else:
            # The worker's order is the truth; a job it has just taken (its 'started' still on the
            # way to this thread) stays ahead of the ones still waiting.
            by_id = {e.job_id: e for e in waiting}
            waiting = [e for e in waiting if e.job_id not in pending] + [by_id[i] for i in pending if i in by_id]
        slots = [i for i, e in enumerate(self._entries) if e.state == QUEUED]
        for i, e in zip(slots, waiting):
            self._entries[i] = e
        self.changed.emit()
        return True
