"""Screenshots of every page (Create with the gallery and the viewer, Layout, Pose, Style packs, Models,
the sheet export) at 1280x720 and 1600x1000, saved for a person to look at.

Set ASSET_STUDIO_SHOTS=DIR to keep them; otherwise they go to the test's temporary folder. The
library is made of CC0 sprites from ../shared/data/sprites-dev (drawn shapes where it is absent):
each a raw image on a background, with its job inside, and its cut-out in sprites/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image, ImageDraw  # noqa: E402

SIZES = ((1280, 720), (1600, 1000))
SPRITES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sprites-dev" / "items"


def _cutouts(n: int) -> list[Image.Image]:
    if SPRITES.is_dir():
        files = sorted(SPRITES.glob("*.png"))[:n]
        return [Image.open(f).convert("RGBA") for f in files]
    out = []
    for i in range(n):  # drawn stand-ins: coloured gems
        im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        ImageDraw.Draw(im).polygon([(32, 4), (60, 32), (32, 60), (4, 32)], fill=(60 + 20 * i, 180, 220 - 20 * i, 255))
        out.append(im)
    return out


def _library(out: Path) -> list[Path]:
    import time

    from asset_studio.core.library import SPRITES_DIR, RunInfo, save_image
    from jobs import make_job

    raws = []
    (out / SPRITES_DIR).mkdir(parents=True, exist_ok=True)
    # two presses of Generate: five game items, then three more (the gallery groups them by run)
    runs = [RunInfo(id="run-items", started=time.time() - 900, subject="pixel art game items", count=5),
            RunInfo(id="run-more", started=time.time() - 60, subject="more game items", count=3)]
    for i, cut in enumerate(_cutouts(8)):
        job = make_job(model="tiny-sd15", prompt=f"pixel art game item {i}", width=cut.width, height=cut.height,
                       seed=1000 + i)
        job.finishing.remove_background = True
        raw = Image.new("RGB", cut.size, (222, 214, 190))
        raw.paste(cut, (0, 0), cut)
        path = save_image(raw, job, out, seed=1000 + i, run=runs[0] if i < 5 else runs[1])
        cut.save(out / SPRITES_DIR / path.name)
        raws.append(path)
    return raws


@pytest.fixture
def studio(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    (tmp_path / "models").mkdir()
    from gui_fixtures import studio_window
    from scripted_backend import ScriptedBackend

    raws = _library(tmp_path / "out")
    window = studio_window(qtbot, tmp_path, ScriptedBackend)
    window.show()
    qtbot.waitExposed(window)
    yield window, raws
    window.close()


def _reference_picture(path: Path) -> Path:
    """A drawn stand-in for the artist's character sketch: head, body, legs on a pale backdrop."""
    im = Image.new("RGB", (400, 600), (170, 190, 210))
    d = ImageDraw.Draw(im)
    d.ellipse((160, 40, 240, 130), fill=(230, 200, 170))
    d.rectangle((140, 130, 260, 330), fill=(120, 120, 140))
    d.rectangle((150, 330, 195, 560), fill=(80, 70, 60))
    d.rectangle((205, 330, 250, 560), fill=(80, 70, 60))
    im.save(path)
    return path


def _check_and_save(qtbot, window, folder: Path, name: str) -> None:
    qtbot.wait(60)
    pix = window.grab()
    image = pix.toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}
    assert len(colours) > 8, f"{name} is blank"
    pix.save(str(folder / f"{name}.png"))


def test_screenshots_of_every_page(qtbot, studio, tmp_path):
    from PySide6.QtCore import QPoint

    w, raws = studio
    folder = Path(os.environ.get("ASSET_STUDIO_SHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    w.select_style("pixel-art")
    w.select_template("icon")
    w.create_panel.subject_edit.setText("health potion")
    w.form.flush_preview()
    w.gallery.library.refresh()
    assert w.gallery.model.rowCount() == len(raws), "one entry per asset (raw + sprite)"
    from jobs import make_job

    with qtbot.waitSignal(w.job_finished, timeout=20_000):  # a result for the strip below the other tabs
        w.submit_job(make_job(model="m", prompt="green gem", steps=2, width=64, height=64, seed=3))
    for width, height in SIZES:
        w.resize(width, height)
        w.tabs.setCurrentIndex(0)
        w.gallery.view.clearSelection()
        w.gallery.select_row(w.library.row(raws[-1]))
        entry = w.gallery.current_entry()
        assert entry.sprite is not None and w.viewer.state.path == str(entry.sprite), "the sprite is shown"
        # nothing important is pushed out of the window
        for widget in (w.create_panel.generate_btn, w.viewer.canvas, w.gallery.export_btn):
            top_left = widget.mapTo(w, QPoint(0, 0))
            assert widget.isVisible() and top_left.y() + widget.height() <= w.height(), widget
        _check_and_save(qtbot, w, folder, f"create-{width}x{height}")

        w.viewer.compare_btn.setChecked(True)  # raw vs sprite
        assert w.viewer.state.compare and w.viewer.state.path == str(entry.raw)
        w.viewer.state.set_zoom(8)
        w.viewer.grid_box.setChecked(True)
        _check_and_save(qtbot, w, folder, f"create-compare-{width}x{height}")
        w.viewer.compare_btn.setChecked(False)
        w.viewer.state.set_zoom(None)

        if w.layout_tab is not None:
            w.tabs.setCurrentWidget(w.layout_tab)
            w.layout_tab.editor.add_text("PLAY")
            w.layout_tab.use_box.setChecked(True)
            _check_and_save(qtbot, w, folder, f"layout-{width}x{height}")
            w.tabs.setCurrentIndex(0)
            w.select_template("ui-button")
            assert w.create_panel.layout_badge.isVisible()
            assert "PLAY" in w.create_panel._field_edits["text"].placeholderText(), "the layout's text fills the field"
            fix = w.form.layout_size_fix()
            assert (fix is None) == w.create_panel.layout_fix_btn.isHidden(), "the fix button follows the form's size"
            w.form.flush_preview()
            _check_and_save(qtbot, w, folder, f"create-layout-{width}x{height}")
            w.layout_tab.use_box.setChecked(False)
            w.select_template("icon")
        pose = w.pose_tab
        w.tabs.setCurrentWidget(pose)
        pose.load_set("turnaround-4")
        pose.pose_set.select(1)  # three-quarter, from the strip
        assert pose.set_reference(str(_reference_picture(tmp_path / "sketch.png")))
        pose.editor.select(0, 4)
        _check_and_save(qtbot, w, folder, f"pose-{width}x{height}")
        for widget in (pose.use_btn, pose.use_set_btn, pose.strip, pose.preview):
            top_left = widget.mapTo(w, QPoint(0, 0))
            assert widget.isVisible() and top_left.y() + widget.height() <= w.height(), widget
        pose.use_set()
        assert w.tabs.currentWidget() is w.create_splitter and w.create_panel.pose_badge.isVisible()
        _check_and_save(qtbot, w, folder, f"create-pose-{width}x{height}")
        w.create_panel.pose_badge.remove_btn.click()
        w.tabs.setCurrentWidget(w.style_editor)
        _check_and_save(qtbot, w, folder, f"styles-{width}x{height}")
        w.tabs.setCurrentWidget(w.model_manager)
        _check_and_save(qtbot, w, folder, f"models-{width}x{height}")

    w.tabs.setCurrentIndex(0)
    gem = w.library.runs()[0]
    assert gem.subject == "green gem"
    w.library.set_collapsed(gem.key, True)  # a collapsed run's images are not selected
    w.gallery.view.selectAll()
    w.gallery.export_btn.click()
    dialog = w.sheet_dialog
    with qtbot.waitSignal(dialog.model.preview_ready, timeout=20_000):
        pass
    assert all(p.parent.name == "sprites" for p in dialog.paths), "the sheet packs the sprites"
    qtbot.wait(50)
    dialog.grab().save(str(folder / "export-dialog.png"))
    dialog.reject()
    print(f"\nscreenshots: {folder}")


def test_file_dialogs_start_in_the_output_and_models_folders(qtbot, studio, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    w, _raws = studio
    asked = []

    def capture(parent, title, start="", *rest, **kw):
        asked.append((title, str(start)))
        return ("", "")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(capture))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: (capture(*a, **k)[0] and [], "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(capture))
    w.create_panel._browse_init()
    if w.layout_tab is not None:
        w.layout_tab._browse()
        w.layout_tab.editor._open_dialog()
    w.style_editor._add_lora_dialog()
    starts = dict(asked)
    assert starts["Start from an image"] == str(w.output_dir)
    assert starts["Add a LoRA"] == str(w.models_dir)
    if w.layout_tab is not None:
        assert starts["ControlNet model"] == str(w.models_dir)
        assert starts["Open layout"] == str(w.output_dir)


def test_escape_stops_the_running_job_and_keeps_the_queue(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    from gui_fixtures import studio_window
    from jobs import make_job
    from scripted_backend import ScriptedBackend

    w = studio_window(qtbot, tmp_path, lambda: ScriptedBackend(step_delay=0.05))
    try:
        jobs = [make_job(model="m", prompt=f"gem {i}", steps=40, width=16, height=16, seed=i) for i in range(3)]
        ids = [w.submit_job(j) for j in jobs]
        qtbot.waitUntil(lambda: w.queue.running() is not None and w.queue.running().step > 0, timeout=10_000)
        first = w.queue.running().job_id
        with qtbot.waitSignal(w.job_cancelled, timeout=10_000) as blocker:
            w.cancel()  # Esc
        assert blocker.args[0] == first == ids[0]
        qtbot.waitUntil(lambda: w.queue.running() is not None and w.queue.running().job_id == ids[1], timeout=10_000)
        assert [e.job_id for e in w.queue.waiting()] == [ids[2]], "the queue behind it stays"
        w.cancel_all()  # Shift+Esc
        qtbot.waitUntil(lambda: not w.queue.busy(), timeout=10_000)
        assert {w.queue.entry(i).state for i in ids} == {"cancelled"}
    finally:
        w.close()


def test_the_wheel_over_a_control_made_later_does_not_change_it(qtbot, studio):
    """The layout editor makes its property fields per selection; the application-wide guard covers them."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QAbstractSpinBox, QApplication

    w, _raws = studio
    if w.layout_tab is None:
        pytest.skip("the layout editor is not in this build")
    w.tabs.setCurrentWidget(w.layout_tab)
    editor = w.layout_tab.editor
    editor.add_text("PLAY")
    spins = editor.props_box.findChildren(QAbstractSpinBox)
    assert spins and all(s.property("wheel_guarded") for s in spins), "the new fields are guarded"
    spin = spins[0]
    before = spin.value()
    w.layout_tab.use_box.setFocus()
    event = QWheelEvent(QPointF(5, 5), QPointF(spin.mapToGlobal(QPoint(5, 5))), QPoint(0, 0), QPoint(0, 360),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(spin, event)
    assert spin.value() == before


def test_the_animate_tab_mid_run(qtbot, tmp_path, monkeypatch):
    """The Animate tab at 1280x720 while frames arrive: the strip part filled, the newest frame
    shown, Export to sheet waiting for the end; then the picture-to-video settings."""
    from PySide6.QtCore import QPoint

    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    from gui_fixtures import studio_window
    from scripted_backend import ScriptedBackend

    folder = Path(os.environ.get("ASSET_STUDIO_SHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "toon.safetensors").write_bytes(b"")
    w = studio_window(qtbot, tmp_path, lambda: ScriptedBackend(frame_delay=0.15))
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    try:
        w.tabs.setCurrentWidget(w.animate_tab)
        w.select_style("pixel-art")
        w.form.subject = "slime bouncing"
        w.form.model = str(tmp_path / "models" / "toon.safetensors")
        w.form.set_size(64, 64)
        w.form.steps = 2
        af = w.animate_form
        af.frames, af.fps, af.loop = 12, 10.0, True
        af.motion_adapter = "guoyww/animatediff-motion-adapter-v1-5-2"
        af.add_motion_lora(str(tmp_path / "models" / "zoom-in.safetensors:0.8"))
        assert w.animate() is not None, w.last_error
        qtbot.waitUntil(lambda: len(w.player.arrived()) >= 5, timeout=20_000)
        tab = w.animate_tab
        assert w.player.state == "running" and len(w.player.arrived()) < 12
        assert not tab.export_btn.isEnabled() and tab.cancel_btn.isEnabled() and tab.play_btn.isEnabled()
        for widget in (tab.animate_btn, tab.strip, tab.export_btn, tab.frame_view):
            top_left = widget.mapTo(w, QPoint(0, 0))
            assert widget.isVisible() and top_left.y() + widget.height() <= w.height(), widget
        _check_and_save(qtbot, w, folder, "animate-1280x720")
        with qtbot.waitSignal(w.job_cancelled, timeout=10_000):
            tab.cancel_btn.click()
        tab.svd_mode.setChecked(True)
        assert af.mode == "svd" and tab.svd_box.isVisible() and not tab.motion_box.isVisible()
        assert not tab.style_combo.isVisible() and "cancelled: " in tab.frame_label.text()
        _check_and_save(qtbot, w, folder, "animate-svd-1280x720")
        w.export_animation()  # the frames kept by the cancel, as one named animation
        dialog = w.sheet_dialog
        with qtbot.waitSignal(dialog.model.preview_ready, timeout=20_000):
            pass
        assert [(a.name, a.fps) for a in dialog.model.animations()] == [("slime-bouncing", 10.0)]
        qtbot.wait(50)
        dialog.grab().save(str(folder / "export-animation-dialog.png"))
        dialog.reject()
    finally:
        w.close()
