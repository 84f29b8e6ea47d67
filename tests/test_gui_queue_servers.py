"""The queue says where each image is made: this computer, or which ComfyUI server of a pool.

A scripted pool backend (two made-up servers, one image each, an image re-queued from one to the
other) runs through the real GenerationWorker and the service, so the PNGs carry job.made_by as
they would from ComfyBackend; the queue model, its list view and the gallery's details read it.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401 - before PySide6 (gui/pyside_fix.py)
from asset_studio.core.backend import Finished, ImageReady, Loading, Progress  # noqa: E402
from jobs import make_job  # noqa: E402
from scripted_backend import ScriptedBackend  # noqa: E402

from gui_fixtures import home  # noqa: E402,F401  (shared fixtures)

A, B = "comfyui http://gpu-1:8188", "comfyui http://gpu-2:8188"


class ScriptedPool(ScriptedBackend):
    """Image 0 starts on gpu-1, which 'fails'; it is made on gpu-2. Image 1 is made on gpu-1."""

    name = "comfyui"

    def __init__(self, gate=None):
        super().__init__()
        self.gate = gate  # waited on mid-batch, so the test sees the running rows

    def run(self, job, should_cancel):
        from PIL import Image

        s, seeds = job.sampling, job.image_seeds()
        if len(seeds) != 2:
            yield from super().run(job, should_cancel)
            return
        yield Loading("Sending 2 image(s) to http://gpu-1:8188, http://gpu-2:8188…")
        yield Progress(1, s.steps, 0, 2, None, made_by=A)
        yield Progress(1, s.steps, 0, 2, None, made_by=B)  # re-queued on the other server
        yield Progress(1, s.steps, 1, 2, None, made_by=A)
        if self.gate is not None:
            self.gate.wait(10)
        for index, maker in ((0, B), (1, A)):
            done = job.for_seed(seeds[index])
            done.made_by = maker
            yield Progress(s.steps, s.steps, index, 2, None, made_by=maker)
            yield ImageReady(Image.new("RGB", (s.width, s.height), (0, 90, 0)), done, index, seeds[index])
        yield Finished()


def run_through_worker(qtbot, tmp_path, backend):
    from asset_studio.gui.model.queue import JobQueue
    from asset_studio.gui.worker import GenerationWorker

    worker = GenerationWorker(tmp_path / "out", backend_factory=lambda device: backend)
    queue = JobQueue(worker)
    for signal, slot in ((worker.queued, queue.on_queued), (worker.started, queue.on_started),
                         (worker.step, queue.on_step), (worker.placed, queue.on_placed),
                         (worker.image_saved, queue.on_image_saved), (worker.finished, queue.on_finished)):
        signal.connect(slot)
    return worker, queue


def test_the_queue_shows_which_server_makes_which_image_and_who_made_them(qtbot, tmp_path):
    import threading

    from asset_studio.core.library import read_job
    from asset_studio.gui.gallery import describe_job
    from asset_studio.gui.model.queue import DONE
    from asset_studio.gui.ui.queue_view import QueueView

    gate = threading.Event()
    worker, queue = run_through_worker(qtbot, tmp_path, ScriptedPool(gate))
    view = QueueView(queue)
    try:
        job_id = worker.submit(make_job("m", "a potion", steps=2, width=16, height=16, seed=5, batch_count=2))
        waiting = worker.submit(make_job("m", "a shield", steps=2, width=16, height=16, seed=9))
        qtbot.waitUntil(lambda: queue.entry(job_id).making == {0: B, 1: A}, timeout=10000)
        entry = queue.entry(job_id)
        # image 0 moved from gpu-1 to gpu-2 when it was re-queued: the row follows it
        assert entry.where == "ComfyUI: image 1 on gpu-2:8188, image 2 on gpu-1:8188"
        assert entry.remote
        rows = [view.item(r).text() for r in range(view.count())]
        assert rows[0].endswith("·  ComfyUI: image 1 on gpu-2:8188, image 2 on gpu-1:8188")
        assert rows[1] == f"#{waiting}  a shield  —  waiting"
        view.resize(620, view.height())
        view.grab().save(str(tmp_path / "queue-running.png"))
        gate.set()
        qtbot.waitUntil(lambda: queue.entry(waiting).state == DONE, timeout=10000)
        assert (entry.state, entry.making, entry.made) == (DONE, {}, {0: B, 1: A})
        assert entry.where == "made by ComfyUI: gpu-2:8188 ×1, gpu-1:8188 ×1"
        # finished jobs stay listed with who made their images
        rows = [view.item(r).text() for r in range(view.count())]
        assert rows[0] == f"#{job_id}  a potion  —  Done: 2 image(s)  ·  {entry.where}"
        assert view.count() == 2 and not view.isHidden()  # two finished rows: worth the room
        view.resize(620, view.height())
        view.grab().save(str(tmp_path / "queue-done.png"))
        # each PNG carries its maker, and the gallery's details show it
        makers = {read_job(p).sampling.seed: read_job(p).made_by for p in entry.paths}
        assert makers == {5: B, 6: A}
        rows = dict(describe_job(read_job(entry.paths[0])))
        assert rows["Made on"] in ("gpu-1:8188 (ComfyUI)", "gpu-2:8188 (ComfyUI)")
    finally:
        gate.set()
        worker.shutdown()


def test_local_jobs_read_this_computer_and_keep_the_progress_line_short(qtbot, tmp_path):
    from asset_studio.gui.gallery import describe_job
    from asset_studio.gui.model.queue import DONE
    from asset_studio.core.library import read_job

    worker, queue = run_through_worker(qtbot, tmp_path, ScriptedBackend())
    try:
        job_id = worker.submit(make_job("m", "a potion", steps=2, width=16, height=16, seed=5, batch_count=2))
        qtbot.waitUntil(lambda: queue.entry(job_id).state == DONE, timeout=10000)
        entry = queue.entry(job_id)
        assert entry.made == {0: "", 1: ""} and entry.where == "made on this computer" and not entry.remote
        assert "Made on" not in dict(describe_job(read_job(entry.paths[0])))
    finally:
        worker.shutdown()


def test_where_labels_and_late_events(qapp):
    from asset_studio.gui.model.queue import JobQueue, where_label

    assert where_label("") == "this computer"
    assert where_label("comfyui https://farm.example:443/") == "farm.example:443 (ComfyUI)"
    assert where_label("other thing") == "other thing"
    queue = JobQueue()
    queue.on_queued(1, make_job("m", "p", steps=2))
    assert queue.entry(1).where == ""
    queue.on_started(1)
    queue.on_placed(1, 0, A, False)
    assert queue.entry(1).where == "ComfyUI: on gpu-1:8188"
    queue.on_placed(1, 0, A, True)
    queue.on_placed(1, 0, B, False)  # a late step of an image already saved: still made by gpu-1
    assert queue.entry(1).made == {0: A} and queue.entry(1).where == "made by ComfyUI: gpu-1:8188"
    queue.on_placed(9, 0, A, False)  # a job the queue forgot: ignored


def test_the_progress_line_names_the_server_and_stays_short_for_this_computer(qtbot, home):
    from asset_studio.gui.model.create_form import CreateForm
    from asset_studio.gui.model.queue import JobQueue
    from asset_studio.gui.ui.create_panel import CreatePanel

    queue = JobQueue()
    panel = CreatePanel(CreateForm(), queue)
    qtbot.addWidget(panel)
    queue.on_queued(1, make_job("m", "a potion", steps=4))
    queue.on_started(1)
    queue.on_placed(1, 0, B, False)
    queue.on_step(1, 2, 4)
    assert panel.progress_text.full_text().startswith("Step 2 / 4")
    assert panel.progress_text.full_text().endswith("· ComfyUI: on gpu-2:8188")
    queue.on_placed(1, 0, B, True)
    queue.on_finished(1, ["/out/1.png"])
    assert panel.progress_text.full_text() == "Done: 1 image(s) · made by ComfyUI: gpu-2:8188"
    queue.on_queued(2, make_job("m", "a shield", steps=4))
    queue.on_started(2)
    queue.on_placed(2, 0, "", False)
    queue.on_step(2, 1, 4)
    assert panel.progress_text.full_text().startswith("Step 1 / 4") and "computer" not in panel.progress_text.full_text()
    queue.on_placed(2, 0, "", True)
    queue.on_finished(2, ["/out/2.png"])
    assert panel.progress_text.full_text() == "Done: 1 image(s)"
