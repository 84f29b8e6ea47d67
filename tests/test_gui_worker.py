"""The QThread worker's queue semantics, with the scripted backend so each case is fast and exact."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from asset_studio.core.backend import Backend  # noqa: E402
from jobs import make_job  # noqa: E402
from scripted_backend import ScriptedBackend  # noqa: E402


def _relay_class():
    """A GUI-thread QObject re-emitting the worker's signals, so tests wait as the window does
    (a QObject slot runs on its own thread; a plain callable would run on the worker's)."""
    from PySide6.QtCore import QObject, Signal, Slot

    class Relay(QObject):
        started = Signal(int)
        finished = Signal(int, list)
        failed = Signal(int, str)
        cancelled = Signal(int)
        idle = Signal()

        def __init__(self, worker):
            super().__init__()
            worker.started.connect(self._started)
            worker.finished.connect(self._finished)
            worker.failed.connect(self._failed)
            worker.cancelled.connect(self._cancelled)
            worker.idle.connect(self._idle)

        @Slot(int)
        def _started(self, job_id):
            self.started.emit(job_id)

        @Slot(int, list)
        def _finished(self, job_id, paths):
            self.finished.emit(job_id, paths)

        @Slot(int, str)
        def _failed(self, job_id, message):
            self.failed.emit(job_id, message)

        @Slot(int)
        def _cancelled(self, job_id):
            self.cancelled.emit(job_id)

        @Slot()
        def _idle(self):
            self.idle.emit()

    return Relay


@pytest.fixture
def worker(qtbot, tmp_path):
    from asset_studio.gui.worker import GenerationWorker

    backend = ScriptedBackend(step_delay=0.01)
    assert isinstance(backend, Backend)
    w = GenerationWorker(tmp_path / "out", backend_factory=lambda device: backend)
    w.backend_for_test = backend
    w.relay = _relay_class()(w)
    yield w
    w.shutdown()


def _job(prompt="a potion", steps=3, batch=1, seed=5):
    return make_job(model="fake", prompt=prompt, steps=steps, width=16, height=16, seed=seed, batch_count=batch)


def test_finished_after_images_are_on_disk(qtbot, worker):
    from asset_studio.core.library import read_job

    steps, saved, loading = [], [], []
    worker.loading.connect(lambda jid, text: loading.append(text))
    worker.step.connect(lambda jid, s, t, img: steps.append((s, t, img.isNull(), img.width())))
    worker.image_saved.connect(lambda jid, path, img: saved.append(Path(path).is_file() and img.width() == 16))
    with qtbot.waitSignal(worker.relay.finished, timeout=10000) as blocker:
        job_id = worker.submit(_job(batch=2))
    got_id, paths = blocker.args
    assert got_id == job_id
    assert len(paths) == 2 and all(Path(p).is_file() for p in paths)
    assert saved == [True, True]
    assert sorted(read_job(p).sampling.seed for p in paths) == [5, 6], "saved by the service, the job inside each PNG"
    assert "Loading the scripted model…" in loading
    # one bar across the batch: 6 steps in all, with previews converted to QImage
    assert [s for s, *_ in steps] == [1, 2, 3, 4, 5, 6] and {t for _, t, *_ in steps} == {6}
    assert all(not null and width == 8 for *_, null, width in steps)
    # the backend ran in the worker thread, never the GUI's
    assert worker.backend_for_test.threads and threading.main_thread().name not in worker.backend_for_test.threads


def test_failure_then_next_job_runs(qtbot, worker):
    failures = []
    worker.relay.failed.connect(lambda jid, msg: failures.append(msg))
    with qtbot.waitSignal(worker.relay.finished, timeout=10000):
        worker.submit(_job(prompt="fail"))
        worker.submit(_job(prompt="oom"))
        worker.submit(_job())
    assert failures[0] == "The model file is corrupt."
    assert "GPU ran out of memory" in failures[1]


def test_cancel_running_and_queued(qtbot, worker):
    cancelled, steps = [], []
    worker.relay.cancelled.connect(cancelled.append)
    worker.step.connect(lambda jid, s, t, img: steps.append(s))  # called on the worker's thread
    with qtbot.waitSignal(worker.relay.started, timeout=5000):
        first = worker.submit(_job(steps=400))
        second = worker.submit(_job(steps=400))
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=5000)  # the first job is under way
    made = len(steps)
    with qtbot.waitSignal(worker.relay.idle, timeout=5000):
        worker.cancel()
    assert len(steps) - made <= 2  # within a step or two, not 400 (counted in steps, not seconds)
    assert sorted(cancelled) == sorted([first, second])
    # it keeps serving
    with qtbot.waitSignal(worker.relay.finished, timeout=10000):
        worker.submit(_job())


def test_move_reorders_queued_jobs_and_the_queue_model_follows(qtbot, worker):
    from asset_studio.gui.model.queue import JobQueue

    queue = JobQueue(worker)
    worker.queued.connect(queue.on_queued)
    worker.started.connect(queue.on_started)
    worker.cancelled.connect(queue.on_cancelled)
    order = []
    worker.relay.started.connect(order.append)
    with qtbot.waitSignal(worker.relay.started, timeout=5000):
        first = worker.submit(_job(steps=400))
    second, third, fourth = (worker.submit(_job(prompt=p)) for p in ("b", "c", "d"))
    qtbot.waitUntil(lambda: len(queue.entries()) == 4, timeout=5000)
    assert not worker.move(first, 0), "the running job has left the queue"
    assert queue.move(fourth, 0)
    assert worker.pending_ids() == [fourth, second, third]
    queue.remove(second)  # cancelled at the worker, gone from the list
    qtbot.waitUntil(lambda: worker.pending_ids() == [fourth, third], timeout=5000)
    with qtbot.waitSignal(worker.relay.idle, timeout=10000):
        queue.cancel(first)
    assert order == [first, fourth, third]
    assert [e.job_id for e in queue.entries()] == [first, fourth, third]


def test_a_job_the_backend_refuses_fails_before_it_runs(qtbot, worker):
    with qtbot.waitSignal(worker.relay.failed, timeout=10000) as blocker:
        job_id = worker.submit(_job(prompt="refuse"))
    assert blocker.args == [job_id, "The scripted backend cannot run this job."]
    assert worker.backend_for_test.checked == ["refuse"] and not worker.backend_for_test.threads


def test_notices_reach_the_queue_and_the_window(qtbot, tmp_path):
    """A backend's Notice (a prompt CLIP cuts) becomes the worker's notice signal and a queue note."""
    from asset_studio.core.backend import Notice
    from asset_studio.gui.model.queue import JobQueue
    from asset_studio.gui.worker import GenerationWorker

    class Noticing(ScriptedBackend):
        def run(self, job, should_cancel):
            yield Notice("The prompt is 91 tokens long; CLIP reads the first 75.")
            yield from super().run(job, should_cancel)

    w = GenerationWorker(tmp_path / "out", backend_factory=lambda device: Noticing())
    relay = _relay_class()(w)
    queue = JobQueue(w)
    w.queued.connect(queue.on_queued)
    w.notice.connect(queue.on_notice)
    notices = []
    w.notice.connect(lambda jid, text: notices.append(text))
    try:
        with qtbot.waitSignal(relay.finished, timeout=10000) as blocker:
            job_id = w.submit(_job())
        qtbot.waitUntil(lambda: bool(queue.entry(job_id) and queue.entry(job_id).notices), timeout=5000)
        assert blocker.args[0] == job_id and notices == ["The prompt is 91 tokens long; CLIP reads the first 75."]
        assert queue.entry(job_id).notices == notices
    finally:
        w.shutdown()


def test_a_cutout_that_removed_almost_everything_is_reported():
    from PIL import Image

    from asset_studio.gui.worker import cutout_warning

    empty = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    empty.paste(Image.new("RGBA", (1, 1), (255, 0, 0, 255)), (50, 50))
    assert "kept 0.0%" in cutout_warning(empty, "00001-gem.png") and "00001-gem.png" in cutout_warning(empty, "00001-gem.png")
    kept = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    kept.paste(Image.new("RGBA", (30, 30), (255, 0, 0, 255)), (10, 10))
    assert cutout_warning(kept, "x.png") == "" and cutout_warning(Image.new("RGB", (4, 4)), "x.png") == ""
