"""Progress and the latest result on every tab: RunStatus follows the queue (loading, image i of n,
time left, what waits behind) and the saved images; the strip below the tabs shows it, and the
Layout tab's "Generate with this layout" runs with its progress and result there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401  (pyside_fix before PySide6)
from PySide6.QtGui import QImage  # noqa: E402

from gui_fixtures import home  # noqa: E402,F401
from jobs import make_job  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_run_status_follows_a_batch_from_loading_to_its_latest_result(home):
    from asset_studio.gui.model.queue import JobQueue
    from asset_studio.gui.model.run_status import RunStatus, describe_progress

    clock = Clock()
    queue = JobQueue(clock=clock)
    status = RunStatus(queue)
    assert not status.has_anything() and status.headline() == "Idle"
    job = make_job(model="m", prompt="health potion", steps=3, width=32, height=32, batch_count=2)
    queue.on_queued(1, job)
    queue.on_queued(2, make_job(model="m", prompt="sword", steps=3, width=32, height=32))
    assert status.job_id is None, "a queued job is not the one shown"
    queue.on_started(1)
    queue.on_loading(1, "Loading tiny-sd15…")
    clock.now += 7
    queue.on_loading(1, "Loading tiny-sd15…")
    assert status.view.maximum == 0 and status.view.text == "Loading tiny-sd15… (7 s)"
    assert status.headline() == "health potion: Loading tiny-sd15… (7 s) · 1 more queued"
    for step in (1, 2, 3, 4):
        clock.now += 2
        queue.on_step(1, step, 6)
    assert status.view.value == 4 and status.view.maximum == 6
    assert status.view.text.startswith("Image 2 of 2 · step 1 / 3 · 4 s left"), status.view.text
    clock.now += 1  # between steps the time left counts down
    status._tick()
    assert "3 s left" in status.view.text

    image = QImage(16, 16, QImage.Format.Format_RGB32)
    image.fill(0x00FF00)
    status.on_image_saved(1, "/out/00001-1-health-potion.png", image, "/out/sprites/00001-1-health-potion.png")
    assert status.latest_path == Path("/out/sprites/00001-1-health-potion.png") and not status.latest_image.isNull()
    assert status.latest_label.startswith("health potion · ")
    assert status.picture()[0].width() == 16 and "open it in the viewer" in status.picture()[1]
    queue.on_finished(1, ["a.png", "b.png"])
    assert status.view.text == "Done: 2 image(s)" and not status.view.ticking
    queue.on_cancelled(2)  # the queued one, cancelled before it ran: the finished job stays shown
    assert status.job_id == 1
    queue.remove(1)
    assert status.job_id is None and status.headline().startswith("Latest: health potion")
    assert describe_progress(queue, queue.entry(2)).text == "Cancelled; finished images were kept."


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    (tmp_path / "models").mkdir()
    from gui_fixtures import studio_window
    from scripted_backend import ScriptedBackend

    w = studio_window(qtbot, tmp_path, lambda: ScriptedBackend(step_delay=0.08))
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def test_generate_from_the_layout_tab_shows_progress_and_result_below_the_tabs(qtbot, window, tmp_path):
    w = window
    if w.layout_tab is None:
        pytest.skip("the layout editor is not in this build")
    w.select_style("")
    w.select_template("")
    w.set_model("scripted-model")
    w.create_panel.width_spin.setValue(64)
    w.create_panel.height_spin.setValue(64)
    w.create_panel.steps_spin.setValue(12)
    w.create_panel.batch_spin.setValue(2)
    w.create_panel.subject_edit.setText("play button")
    w.tabs.setCurrentWidget(w.layout_tab)
    assert not w.status_strip.isVisible(), "nothing has run yet"
    w.layout_tab.editor.add_text("PLAY")
    w.layout_tab.model_combo.setEditText(str(tmp_path / "models" / "control-lineart.safetensors"))
    w.layout_tab.match_size()

    w.layout_tab.generate_btn.click()
    assert w.layout_tab.use_box.isChecked(), "generating with this layout follows it"
    assert not w.last_error, w.last_error
    qtbot.waitUntil(lambda: w.queue.running() is not None and w.queue.running().step >= 3, timeout=20_000)
    assert w.tabs.currentWidget() is w.layout_tab and w.status_strip.isVisible()
    assert "play button: Image 1 of 2 · step" in w.status_strip.text.full_text()
    assert not w.run_status.picture()[0].isNull() and "preview" in w.status_strip.thumb.toolTip(), \
        "the step preview shows until the first image is saved"
    assert w.status_strip.bar.maximum() == 24 and w.status_strip.cancel_btn.isEnabled()
    shots = Path(os.environ.get("ASSET_STUDIO_SHOTS") or "/tmp")
    w.grab().save(str(shots / "layout-generating-1280x720.png"))

    with qtbot.waitSignal(w.job_finished, timeout=30_000) as blocker:
        pass
    paths = blocker.args[1]
    assert len(paths) == 2 and w.run_status.latest_path is not None
    job = w.queue.entry(blocker.args[0]).job
    assert job.controls and job.controls[0].type, "the job followed the layout"
    assert w.status_strip.thumb.isEnabled() and w.status_strip.text.full_text() == "play button: Done: 2 image(s)"
    w.grab().save(str(shots / "layout-done-1280x720.png"))

    w.status_strip.thumb.click()  # the latest result, large
    assert w.tabs.currentWidget() is w.create_splitter and not w.status_strip.isVisible()
    latest = w.run_status.latest_path
    assert w.gallery.current_entry() is not None and latest in w.gallery.current_entry().files()
    assert w.viewer.state.path == str(latest)
    w.tabs.setCurrentWidget(w.style_editor)
    assert w.status_strip.isVisible(), "the latest result stays reachable from every tab"


def test_the_newest_image_on_disk_is_reachable_from_every_tab_at_start(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    from PIL import Image

    from asset_studio.core.library import save_image
    from gui_fixtures import studio_window
    from scripted_backend import ScriptedBackend

    out = tmp_path / "out"
    older = save_image(Image.new("RGB", (32, 32), (200, 0, 0)), make_job(model="m", prompt="old"), out, seed=1)
    newest = save_image(Image.new("RGB", (32, 32), (0, 0, 200)), make_job(model="m", prompt="new"), out, seed=2)
    os.utime(older, (1_000_000, 1_000_000))
    w = studio_window(qtbot, tmp_path, ScriptedBackend, out=out)
    w.show()
    try:
        assert not w.status_strip.isVisible(), "the Create tab shows results itself"
        w.tabs.setCurrentWidget(w.model_manager)
        assert w.status_strip.isVisible() and w.run_status.latest_path == newest
        assert w.status_strip.text.full_text() == f"Latest: {newest.name}" and w.status_strip.thumb.isEnabled()
        w.status_strip.thumb.click()
        assert w.tabs.currentWidget() is w.create_splitter and w.gallery.current_entry().raw == newest
    finally:
        w.close()
