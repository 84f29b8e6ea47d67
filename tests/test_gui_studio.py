"""The studio window end to end, driving the real Engine with the tiny random SD-1.5 model.

Every test gets its own settings file, styles home and output folder, so nothing touches the
user's real settings and tests do not see each other's files.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer  # noqa: E402

from asset_studio.core.library import read_job  # noqa: E402

JOB_TIMEOUT_MS = 120_000  # the first job loads the model; on 2 busy cores that can take a while


@pytest.fixture
def studio_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    (tmp_path / "models").mkdir()
    return tmp_path


def _open_window(qtbot, env: Path, folders: bool = True):
    from asset_studio.gui.app import create_app
    from asset_studio.gui.main_window import MainWindow

    create_app([])
    # folders=False opens it as a plain restart would: the folders come from the settings
    window = MainWindow(output_dir=env / "out" if folders else None, models_dir=env / "models" if folders else None)
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.fixture
def window(qtbot, studio_env, tiny_sd15_dir):
    w = _open_window(qtbot, studio_env)
    w.select_style("")  # prompt only: the tiny model is no style's recommended model
    w.select_template("")
    w.set_model(str(tiny_sd15_dir))
    w.create_panel.width_spin.setValue(64)
    w.create_panel.height_spin.setValue(64)
    w.create_panel.steps_spin.setValue(3)
    w.create_panel.seed_lock.setChecked(True)
    w.create_panel.seed_spin.setValue(1234)
    yield w
    w.close()


def _generate(qtbot, w, subject: str) -> tuple[int, list[str]]:
    w.create_panel.subject_edit.setText(subject)
    with qtbot.waitSignal(w.job_finished, timeout=JOB_TIMEOUT_MS) as blocker:
        w.create_panel.generate_btn.click()
    return blocker.args


def test_generate_shows_image_in_gallery_and_on_disk_and_reruns(qtbot, window):
    w = window
    steps = []
    w.worker.step.connect(lambda jid, s, t, img: steps.append((s, t, img.isNull())))
    job_id, paths = _generate(qtbot, w, "red potion")
    assert len(paths) == 1
    path = Path(paths[0])
    assert path.is_file() and path.parent == w.output_dir
    job = read_job(path)
    s = job.sampling
    assert "red potion" in job.prompt.text and s.seed == 1234 and (s.width, s.height) == (64, 64)
    # the gallery shows it, its job is in the details panel, and the progress bar finished
    assert w.gallery.model.rowCount() == 1 and w.gallery.model.path(0) == path
    assert [s for s, *_ in steps] == [1, 2, 3] and not steps[-1][2], "every step reports, with a preview"
    assert w.create_panel.progress.value() == w.create_panel.progress.maximum()
    assert not w.preview.image().isNull()
    w.gallery.select_row(0)
    assert "Seed: 1234" in w.gallery.details.toPlainText()

    # re-run the same seed from the gallery: the same pixels again
    with qtbot.waitSignal(w.job_finished, timeout=JOB_TIMEOUT_MS) as blocker:
        w.gallery.rerun_btn.click()
    again = Path(blocker.args[1][0])
    assert again != path and read_job(again).sampling.seed == 1234
    from PIL import Image, ImageChops

    with Image.open(path) as a, Image.open(again) as b:
        assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
    assert w.gallery.model.rowCount() == 2

    # re-roll and variations: new seeds, as many as the Create tab's batch
    w.create_panel.batch_spin.setValue(2)
    w.gallery.select_row(0)
    with qtbot.waitSignal(w.job_finished, timeout=JOB_TIMEOUT_MS) as blocker:
        w.gallery.reroll_btn.click()
    seeds = {read_job(p).sampling.seed for p in blocker.args[1]}
    assert len(blocker.args[1]) == 2 and len(seeds) == 2 and read_job(blocker.args[1][0]).init is None
    assert w.gallery.model.rowCount() == 4
    w.gallery.view.clearSelection()
    w.gallery.select_row(3)  # the first image
    # by seed (the default): its own seed, nudged toward new variation seeds at 0.15
    with qtbot.waitSignal(w.job_finished, timeout=JOB_TIMEOUT_MS) as blocker:
        w.gallery.vary_btn.click()
    made = [read_job(p) for p in blocker.args[1]]
    assert len(made) == 2 and {j.sampling.seed for j in made} == {1234}
    assert len({j.sampling.subseed for j in made}) == 2 and all(j.sampling.subseed_strength == 0.15 for j in made)
    assert all(j.init is None for j in made)
    w.gallery.view.clearSelection()
    w.gallery.select_row(5)  # the first image again
    w.gallery.vary_mode.setCurrentIndex(w.gallery.vary_mode.findData("img2img"))
    with qtbot.waitSignal(w.job_finished, timeout=JOB_TIMEOUT_MS) as blocker:
        w.gallery.vary_btn.click()
    made = [read_job(p) for p in blocker.args[1]]
    assert len(made) == 2 and len({j.sampling.seed for j in made}) == 2
    assert all(j.init is not None and Path(j.init.image).name == path.name and j.init.denoise == 0.35 for j in made), \
        "img2img variations start from the selected image at a low denoise"
    assert w.gallery.model.rowCount() == 8


def _tick_gaps(qtbot, during) -> list[float]:
    """Gaps in ms between ticks of a 5 ms GUI timer while DURING() runs."""
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    try:
        during()
    finally:
        timer.stop()
    assert len(ticks) > 10
    return [(b - a) * 1000 for a, b in zip(ticks, ticks[1:])]


def test_gui_thread_stays_responsive_while_generating(qtbot, window):
    """The GUI timer's worst gap while the worker runs a job stays near its worst gap while idle.

    A GIL held by our worker would stretch gaps in every run; the bound is relative to the same
    timer measured idle in the same run (a busy machine stretches both), and the job is measured
    up to three times, the best run counting.
    """
    w = window
    _generate(qtbot, w, "warm up")  # loads the model; the bound is about running jobs
    w.create_panel.steps_spin.setValue(12)
    w.create_panel.width_spin.setValue(128)
    w.create_panel.height_spin.setValue(128)
    runs = []
    for attempt in range(3):
        idle = max(_tick_gaps(qtbot, lambda: qtbot.wait(500)))
        busy = _tick_gaps(qtbot, lambda: _generate(qtbot, w, f"blue shield {attempt}"))
        runs.append((max(busy), sorted(busy)[len(busy) // 2], idle))
        if max(busy) < max(50.0, 4 * idle):
            break
    print("\nGUI timer during a job: " + "; ".join(
        f"worst gap {worst:.1f} ms (idle {idle:.1f} ms), median {median:.1f} ms" for worst, median, idle in runs))
    assert any(worst < max(50.0, 4 * idle) for worst, _, idle in runs), (
        f"the GUI thread waited {min(r[0] for r in runs):.1f} ms between ticks at best, idle {runs[-1][2]:.1f} ms")


def test_cancel_stops_within_a_step_and_next_job_runs(qtbot, window):
    w = window
    _generate(qtbot, w, "warm up")
    w.create_panel.steps_spin.setValue(150)
    w.create_panel.subject_edit.setText("long job")
    w.create_panel.generate_btn.click()
    qtbot.waitUntil(lambda: "step" in w.create_panel.progress_text.full_text().lower(), timeout=JOB_TIMEOUT_MS)
    assert w.create_panel.cancel_btn.isEnabled()
    steps = []
    w.worker.step.connect(lambda jid, s, t, img: steps.append(s))
    with qtbot.waitSignal(w.job_cancelled, timeout=10_000):
        w.create_panel.cancel_btn.click()
    assert len(steps) <= 2, "cancel stops within a step"
    assert w.viewer.state.preview and w.viewer.state.stale and "cancelled" in w.viewer.state.caption(), \
        "the half-made preview stays marked"
    assert w.create_panel.progress_text.full_text().startswith("Cancelled")
    assert w.gallery.model.rowCount() == 1  # only the warm-up image
    w.create_panel.steps_spin.setValue(2)
    _, paths = _generate(qtbot, w, "after cancel")
    assert Path(paths[0]).is_file()


def test_failing_job_shows_its_message_and_the_next_job_runs(qtbot, window, tiny_sd15_dir, studio_env):
    w = window
    w.set_model(str(studio_env / "models" / "missing-model"))
    w.create_panel.subject_edit.setText("doomed")
    with qtbot.waitSignal(w.job_failed, timeout=JOB_TIMEOUT_MS) as blocker:
        w.create_panel.generate_btn.click()
    message = blocker.args[1]
    assert "missing-model" in message and "Traceback" not in message
    assert w.last_error == message
    boxes = [b for b in w._dialogs if b.isVisible()]
    assert boxes and boxes[-1].text() == message, "a non-blocking dialog shows the sentence"
    assert message in w.statusBar().currentMessage()
    w.set_model(str(tiny_sd15_dir))
    _, paths = _generate(qtbot, w, "recovered")
    assert Path(paths[0]).is_file()


def test_bad_form_input_is_one_sentence_not_a_job(qtbot, window):
    w = window
    w.create_panel.subject_edit.setText("")
    w.create_panel.prompt_edit.setPlainText("")
    submitted = []
    w.job_submitted.connect(lambda *a: submitted.append(a))
    assert w.generate() is None
    assert not submitted and "prompt is empty" in w.last_error  # no style: the subject is the whole prompt


def test_devices_offered_are_the_ones_found_and_controlnets_are_one_click_away(qtbot, window):
    w = window
    w.set_available_devices(["cpu"])  # what the worker reports after warm-up on a machine without GPUs
    assert not w.device_actions["cuda"].isEnabled() and not w.device_actions["mps"].isEnabled()
    assert w.device_actions["cpu"].isEnabled() and w.device_actions["auto"].isEnabled()
    w.set_available_devices(["cuda", "cpu"])
    assert w.device_actions["cuda"].isEnabled() and not w.device_actions["mps"].isEnabled()
    if w.layout_tab is not None:
        w.layout_tab.get_btn.click()  # "Get one…" beside the ControlNet box
        assert w.tabs.currentWidget() is w.model_manager
        entry = w.model_manager._selected_entry()
        assert entry is not None and entry.kind == "controlnet" and w.layout_state.control_type in entry.id
        assert entry.description in w.model_manager.description.text() or entry.name in w.model_manager.description.text()


def test_settings_survive_a_restart(qtbot, studio_env):
    w = _open_window(qtbot, studio_env)
    w.resize(790, 700)  # inside the offscreen screen (800 x 800): restoring clamps to it
    w.select_style("pixel-art")
    w.select_template("icon")
    w.set_model("my/model-repo")
    w.create_panel.subject_edit.setText("health potion")
    w.create_splitter.setSizes([450, 600])
    w.set_output_dir(studio_env / "elsewhere")
    w.set_device("cpu")
    w.tabs.setCurrentWidget(w.style_editor)
    sizes = w.create_splitter.sizes()
    w.close()

    w2 = _open_window(qtbot, studio_env, folders=False)
    try:
        assert (w2.width(), w2.height()) == (790, 700)
        assert w2.current_style_id() == "pixel-art"
        assert w2.current_template_id() == "icon"
        assert w2.current_model() == "my/model-repo"
        assert w2.form.subject == "health potion" and w2.create_panel.subject_edit.text() == "health potion"
        assert w2.output_dir == studio_env / "elsewhere"
        assert w2.models_dir == studio_env / "models"
        assert w2.worker.output_dir == studio_env / "elsewhere"
        assert w2.settings.device() == "cpu" and w2.device_actions["cpu"].isChecked()
        assert w2.tabs.currentWidget() is w2.style_editor
        w2.tabs.setCurrentIndex(0)
        qtbot.waitUntil(lambda: w2.create_splitter.sizes()[0] == sizes[0], timeout=2000)
    finally:
        w2.close()


def test_style_and_template_fill_the_parameters(qtbot, studio_env):
    w = _open_window(qtbot, studio_env)
    try:
        w.select_style("pixel-art")
        w.select_template("ui-button")
        assert (w.create_panel.steps_spin.value(), w.create_panel.cfg_spin.value(), w.create_panel.sampler_combo.currentText()) == (25, 7.5, "Euler a")
        assert w.create_panel.width_spin.value() / w.create_panel.height_spin.value() == pytest.approx(3.0, rel=0.05)
        edit = w.create_panel._field_edits["text"]
        label = w.create_panel.fields_layout.labelForField(edit)
        assert label.text() == "Text" and label.parentWidget() is w.create_panel.subject_edit.parentWidget(), \
            "the template's fields are rows of the Asset form, aligned with it"
        w.create_panel.subject_edit.setText("wooden")
        w.create_panel._field_edits["text"].setText("PLAY")
        w.create_panel.steps_spin.setValue(9)  # the user's override wins
        w.set_model("some/model")
        job = w.build_job()
        assert "PLAY" in job.prompt.text and "pixel art" in job.prompt.text and job.sampling.steps == 9
        assert job.source.style == "pixel-art" and job.source.template == "ui-button"
    finally:
        w.close()


def test_first_run_without_models_opens_the_model_manager(qtbot, studio_env, monkeypatch):
    monkeypatch.setattr("asset_studio.core.models.scan_hf_cache", lambda cache_dir=None: [])
    w = _open_window(qtbot, studio_env)
    try:
        w.create_panel.model_combo.setEditText("")
        w.first_run_check()
        qtbot.waitUntil(lambda: w.tabs.currentWidget() is w.model_manager, timeout=10_000)
        assert "No model" in w.statusBar().currentMessage()
    finally:
        w.close()


def test_generate_follows_the_layout_tab_through_controlnet(qtbot, window, tiny_sd15_dir, tmp_path):
    """Draw text in the Layout tab, pick a ControlNet, generate: the job carries the control image."""
    import diffusers

    from tiny_controlnet import save_tiny_controlnet

    w = window
    if w.layout_tab is None:
        pytest.skip("the layout editor (issue 4) is not in this build")
    cn_dir = save_tiny_controlnet(diffusers.UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet"),
                                  tmp_path / "tiny-cn")
    tab = w.layout_tab
    w.tabs.setCurrentWidget(tab)
    tab.editor.add_text("PLAY")
    tab.use_box.setChecked(True)
    tab.model_combo.setEditText(str(cn_dir))
    tab.scale_spin.setValue(0.8)
    w.create_panel.width_spin.setValue(64)
    w.create_panel.height_spin.setValue(64)
    w.create_panel.subject_edit.setText("button")
    # Create shows that it follows the layout, with a one-click fix for the size
    assert w.create_panel.layout_badge.isVisibleTo(w.create_panel) and "512×256" in w.create_panel.layout_label.text()
    assert w.create_panel.layout_fix_btn.text() == "Use 128×64"
    # 512x256 layout, 64x64 image: the error names the size, and its button sets it and generates
    assert w.generate() is None and "use the size 128x64 (the layout's shape)" in w.last_error
    box = w.size_fix_box
    use = next(b for b in box.buttons() if "128×64" in b.text())
    w.create_panel.subject_edit.setText("wooden button")
    with qtbot.waitSignal(w.job_finished, timeout=JOB_TIMEOUT_MS) as blocker:
        use.click()
    assert (w.create_panel.width_spin.value(), w.create_panel.height_spin.value()) == (128, 64)
    paths = blocker.args[1]
    job = read_job(paths[0])
    assert len(job.controls) == 1
    unit = job.controls[0]
    assert unit.model == str(cn_dir) and unit.scale == 0.8 and unit.type == tab.editor.control_type()
    control = Path(unit.image)
    assert control.is_file() and control.parent == w.output_dir / ".controls"
    from PIL import Image

    with Image.open(control) as im:
        assert im.size == (job.sampling.width, job.sampling.height) and im.convert("L").getextrema()[1] > 0  # strokes
    w.gallery.refresh()
    assert control not in w.gallery.model.paths()  # inputs are not results


def test_main_views_render(qtbot, window):
    """Every page paints at a usual window size (set ASSET_STUDIO_SHOTS=DIR to keep the screenshots)."""
    import os

    w = window
    w.resize(1280, 800)
    _generate(qtbot, w, "green gem")
    shots = os.environ.get("ASSET_STUDIO_SHOTS")
    pages = {"main": 0, "style_editor": w.tabs.indexOf(w.style_editor), "model_manager": w.tabs.indexOf(w.model_manager)}
    if w.layout_tab is not None:
        pages["layout"] = w.tabs.indexOf(w.layout_tab)
    for name, index in pages.items():
        w.tabs.setCurrentIndex(index)
        qtbot.wait(30)
        pix = w.grab()
        assert (pix.width(), pix.height()) == (w.width(), w.height())
        image = pix.toImage()
        # not a blank page: many distinct colours
        colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}
        assert len(colours) > 8, name
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            pix.save(str(Path(shots) / f"{name}.png"))
    w.gallery.select_row(0)
    if shots:
        w.gallery.grab().save(str(Path(shots) / "gallery.png"))


def test_window_opens_on_the_existing_library_and_keyboard_drives_it(qtbot, studio_env, tiny_sd15_dir):
    from PIL import Image
    from PySide6.QtCore import Qt

    from asset_studio.core.library import save_image

    from jobs import make_job

    job = make_job(model="m", prompt="old work", width=32, height=32)
    for seed in (1, 2):
        save_image(Image.new("RGB", (32, 32), "red"), job, studio_env / "out", seed=seed)
    w = _open_window(qtbot, studio_env)
    try:
        assert w.gallery.model.rowCount() == 2
        w.set_model(str(tiny_sd15_dir))
        w.select_style("")
        w.select_template("")
        w.create_panel.width_spin.setValue(64)
        w.create_panel.height_spin.setValue(64)
        w.create_panel.steps_spin.setValue(150)
        w.create_panel.subject_edit.setText("keyboard")
        w.activateWindow()
        qtbot.waitUntil(w.isActiveWindow, timeout=5000)  # window shortcuts need the active window
        w.create_panel.subject_edit.setFocus()
        qtbot.keyClick(w.create_panel.subject_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: "step" in w.create_panel.progress_text.full_text().lower(), timeout=60_000)
        with qtbot.waitSignal(w.job_cancelled, timeout=10_000):
            qtbot.keyClick(w.create_panel.subject_edit, Qt.Key.Key_Escape)
    finally:
        w.close()


def test_cli_without_a_command_opens_the_studio(monkeypatch, tmp_path):
    from asset_studio import cli

    calls = []
    monkeypatch.setattr("asset_studio.gui.app.run_app",
                        lambda argv, output_dir=None, models_dir=None: calls.append((output_dir, models_dir)) or 0)
    assert cli.main([]) == 0 and calls == [(None, None)]
    assert cli.main(["gui", "--output", str(tmp_path / "o"), "--models", str(tmp_path / "m")]) == 0
    assert calls[-1] == ((tmp_path / "o").resolve(), (tmp_path / "m").resolve())


def test_a_model_on_disk_is_chosen_when_none_was_picked_before(qtbot, studio_env, tiny_sd15_dir, monkeypatch):
    """Regression: with a model in models/ and no saved choice, the Model box must not stay empty."""
    import shutil

    monkeypatch.setattr("asset_studio.core.models.scan_hf_cache", lambda cache_dir=None: [])
    shutil.copytree(tiny_sd15_dir, studio_env / "models" / "tiny-sd15")
    w = _open_window(qtbot, studio_env)
    try:
        qtbot.waitUntil(lambda: w.model_manager.scanned, timeout=10_000)
        w.first_run_check()
        assert Path(w.current_model()).name == "tiny-sd15"
        assert w.tabs.currentWidget() is not w.model_manager
    finally:
        w.close()
