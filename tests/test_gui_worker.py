"""The QThread worker's queue semantics, with an in-test engine so each case is fast and exact."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from asset_studio.core.job import GenerationJob  # noqa: E402
from asset_studio.errors import UserError  # noqa: E402


@dataclass
class Step:
    step: int
    total: int
    image_index: int
    preview: object


@dataclass
class Generated:
    image: object
    job: GenerationJob
    index: int
    seed: int


class ScriptedEngine:
    """Runs `steps` steps per image; a prompt of 'fail' raises, 'oom' raises an OOM-like error."""

    def __init__(self, step_delay: float = 0.0):
        self.step_delay = step_delay
        self.threads: set[str] = set()

    def run(self, job, on_step=None, should_cancel=None, on_image=None):
        self.threads.add(threading.current_thread().name)
        if job.prompt == "fail":
            raise UserError("The model file is corrupt.")
        if job.prompt == "oom":
            raise type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2 GiB")
        out = []
        for index, seed in enumerate(job.image_seeds()):
            for s in range(1, job.steps + 1):
                if should_cancel and should_cancel():
                    return out
                time.sleep(self.step_delay)
                on_step(Step(s, job.steps, index, Image.new("RGB", (8, 8), (s * 20, 0, 0))))
            g = Generated(Image.new("RGB", (job.width, job.height), (0, 128, 0)), job, index, seed)
            on_image(g)
            out.append(g)
        return out


def _saver(generated, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{generated.seed}-{generated.index}.png"
    generated.image.save(path)
    return path


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

    engine = ScriptedEngine(step_delay=0.01)
    w = GenerationWorker(tmp_path / "out", engine_factory=lambda device: engine, saver=_saver)
    w.engine_for_test = engine
    w.relay = _relay_class()(w)
    yield w
    w.shutdown()


def _job(prompt="a potion", steps=3, batch=1, seed=5):
    return GenerationJob(model="fake", prompt=prompt, steps=steps, width=16, height=16, seed=seed, batch_count=batch)


def test_finished_after_images_are_on_disk(qtbot, worker):
    steps, saved = [], []
    worker.step.connect(lambda jid, s, t, img: steps.append((s, t, img.isNull(), img.width())))
    worker.image_saved.connect(lambda jid, path, img: saved.append(Path(path).is_file() and img.width() == 16))
    with qtbot.waitSignal(worker.relay.finished, timeout=10000) as blocker:
        job_id = worker.submit(_job(batch=2))
    got_id, paths = blocker.args
    assert got_id == job_id
    assert len(paths) == 2 and all(Path(p).is_file() for p in paths)
    assert saved == [True, True]
    # one bar across the batch: 6 steps in all, with previews converted to QImage
    assert [s for s, *_ in steps] == [1, 2, 3, 4, 5, 6] and {t for _, t, *_ in steps} == {6}
    assert all(not null and width == 8 for *_, null, width in steps)
    # the engine ran in the worker thread, never the GUI's
    assert worker.engine_for_test.threads and threading.main_thread().name not in worker.engine_for_test.threads


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
    cancelled = []
    worker.relay.cancelled.connect(cancelled.append)
    with qtbot.waitSignal(worker.relay.started, timeout=5000):
        first = worker.submit(_job(steps=400))
        second = worker.submit(_job(steps=400))
    qtbot.waitUntil(lambda: worker.busy(), timeout=5000)
    time.sleep(0.05)
    t0 = time.perf_counter()
    with qtbot.waitSignal(worker.relay.idle, timeout=5000):
        worker.cancel()
    assert time.perf_counter() - t0 < 1.0  # within a step or two, not 400
    assert sorted(cancelled) == sorted([first, second])
    # it keeps serving
    with qtbot.waitSignal(worker.relay.finished, timeout=10000):
        worker.submit(_job())
