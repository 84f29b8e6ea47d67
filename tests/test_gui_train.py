"""The Train page: a run on its own thread (never the GUI thread), progress as signals, cancel and
resume, and the new pack in the Create tab in one click."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_and_a_private_cache")]
FAST = dict(rank=4, resolution=64, bucket_step=16, learning_rate=1e-2, sample_steps=1, device="cpu")


@pytest.fixture()
def sprites(tmp_path) -> Path:
    folder = tmp_path / "my sprites"
    folder.mkdir()
    for i, colour in enumerate(["red", "blue", "green", "gold"]):
        image = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
        ImageDraw.Draw(image).ellipse((8, 8, 40, 40), fill=colour)
        image.save(folder / f"{colour}_orb.png")
    (folder / "gold_orb.txt").write_text("a shiny gold orb")
    return folder


@pytest.fixture()
def run(qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    from asset_studio.gui.model.training import TrainingRun

    run = TrainingRun(styles_dir=tmp_path / "home" / "styles")
    yield run
    run.shutdown()


def test_training_runs_off_the_gui_thread_and_makes_a_usable_pack(run, sprites, tiny_sd15_dir, qtbot):
    import threading

    from asset_studio.core.stylepack import find_style

    run.settings.data_dir, run.settings.model, run.settings.steps = str(sprites), str(tiny_sd15_dir), 4
    assert [name for name, _ in run.dataset_preview()] == ["blue_orb.png", "gold_orb.png", "green_orb.png", "red_orb.png"]
    assert dict(run.dataset_preview())["gold_orb.png"] == "my-sprites, a shiny gold orb"
    steps, threads = [], set()
    run.progress.connect(lambda step, total, loss, left: steps.append((step, total)))
    run._runner.event.connect(lambda _e: threads.add(threading.current_thread() is threading.main_thread()),
                              type=__import__("PySide6.QtCore", fromlist=["Qt"]).Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(run.finished, timeout=300_000) as done:
        run.start(**FAST)
    assert done.args == ["my-sprites"] and run.state == "finished"
    assert steps[-1] == (4, 4) and len(run.losses) == 4
    assert threads == {False}  # every engine event came from the training thread
    pack = find_style("my-sprites")
    assert pack.loras and pack.prompt.startswith("my-sprites")


def test_cancel_keeps_a_checkpoint_and_resume_finishes(run, sprites, tiny_sd15_dir, qtbot):
    run.settings.data_dir, run.settings.model, run.settings.steps = str(sprites), str(tiny_sd15_dir), 6
    run.progress.connect(lambda step, total, loss, left: run.cancel() if step == 2 else None)
    with qtbot.waitSignal(run.state_changed, timeout=300_000, check_params_cb=lambda s: s == "cancelled"):
        run.start(checkpoint_every=1, **FAST)
    assert (run.out_dir() / ".train").is_dir()
    run.progress.disconnect()
    with qtbot.waitSignal(run.finished, timeout=300_000):
        run.start(resume=True, checkpoint_every=1, **FAST)
    assert run.state == "finished"


def test_bad_settings_are_one_sentence(run, qtbot):
    from asset_studio.errors import UserError

    with pytest.raises(UserError, match="Choose the folder of your images"):
        run.start()
    run.settings.data_dir = "/nowhere"
    with pytest.raises(UserError, match="Choose the base model"):
        run.start()


def test_use_in_create_selects_the_new_style(qtbot, tmp_path, monkeypatch):
    """The page's button makes the trained pack the Create tab's style."""
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    from asset_studio.core.stylepack import StylePack, save_stylepack
    from asset_studio.gui.main_window import MainWindow
    from scripted_backend import ScriptedBackend

    save_stylepack(StylePack(id="my-sprites", name="My sprites", prompt="my-sprites, {subject}"),
                   tmp_path / "home" / "styles" / "my-sprites")
    window = MainWindow(output_dir=tmp_path / "out", models_dir=tmp_path / "models",
                        backend_factory=lambda device: ScriptedBackend())
    qtbot.addWidget(window)
    window.training.pack_dir = tmp_path / "home" / "styles" / "my-sprites"
    window.training._set_state("finished")
    assert window.train_page.use_btn.isEnabled()
    window.train_page.use_btn.click()
    assert window.form.style_id == "my-sprites" and window.tabs.currentWidget() is window.create_splitter
    window.shutdown()
