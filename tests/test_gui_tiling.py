"""The Create tab's "Seamless" choice: the form's state → AssetRequest (the field `generate --tile` fills) →
job, the template's value shown without locking the artist out, the engine's refusals said under the
choice, the viewer's repeat preview for a tiled result, and a screenshot at 1280x720."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401  (PySide6 guard first)

from asset_studio.core.job import Transparency, check_transparency  # noqa: E402
from asset_studio.core.request import prepare  # noqa: E402
from asset_studio.errors import UserError  # noqa: E402
from gui_fixtures import form, home  # noqa: E402,F401  (shared fixtures)


def test_choice_fills_the_same_field_as_generate_tile(form, home):
    import argparse

    from asset_studio.commands import generate

    form.subject, form.model = "stone floor", "tiny/model"
    assert form.tiling == "off" and form.to_request().overrides.tiling is None
    assert prepare(form.to_request(), home / "out").tiling == "off"
    parser = argparse.ArgumentParser()
    generate.register(parser.add_subparsers())
    for value in ("x", "y", "both", "off"):
        form.tiling = value
        request = form.to_request()
        args = parser.parse_args(["generate", "stone floor", "--model", "tiny/model", "--tile", value])
        assert request.overrides.tiling == value == args.tile  # the value `generate --tile` passes on
        assert prepare(request, home / "out").tiling == value


def test_template_value_shown_and_the_artists_kept(form, home):
    form.subject, form.model = "mossy stones", "tiny/model"
    form.template_id = "environment-tile"
    assert form.tiling == "both" and "tiling" not in form.artist_set()  # the template's, shown
    assert form.to_request().overrides.tiling is None and prepare(form.to_request()).tiling == "both"

    form.tiling = "x"  # the artist's choice wins over the template's, and survives template and style changes
    assert prepare(form.to_request()).tiling == "x"
    form.template_id = "icon"
    form.template_id = "environment-tile"
    assert form.tiling == "x" and "tiling" in form.artist_set()
    form.tiling = "off"  # not locked out: a tiling template can make a plain picture
    assert prepare(form.to_request()).tiling == "off"

    form.reset_to_style()  # the template's again
    assert form.tiling == "both" and prepare(form.to_request()).tiling == "both"
    form.template_id = "icon"
    assert form.tiling == "off"


def test_refused_combinations_say_the_engines_sentence(form, home):
    form.subject, form.model = "stone floor", "tiny/model"
    form.tiling = "both"
    assert form.tiling_conflict() == ""
    form.transparent = True
    job = prepare(form.to_request(), preview=True)  # the engine's own check, on the job it would refuse
    job.transparency = Transparency()
    with pytest.raises(UserError) as engine:
        check_transparency(job)
    assert form.tiling_conflict() == str(engine.value) and "seamless tiling" in str(engine.value)
    assert form.transparency_conflict() == str(engine.value)  # the Transparent switch says the same
    form.transparent = False

    form.passes.set_on("tiled_upscale", True)
    assert form.tiling_conflict().startswith("A seamless tile cannot take the tiled upscale")
    with pytest.raises(UserError, match="A seamless tile cannot take the tiled upscale"):
        form.build_job(home / "out")  # the same sentence stops Generate
    form.tiling = "off"
    assert form.tiling_conflict() == ""  # off: nothing to say, whatever else is on
    form.tiling = "x"
    form.passes.set_on("tiled_upscale", False)
    assert form.tiling_conflict() == ""

    form.engine = "comfyui"
    assert form.tiling_conflict() == ("Seamless tiling needs custom nodes on a ComfyUI server (stock ComfyUI has "
                                      "none); use the local engine.")
    form.tiling = "off"
    assert form.tiling_conflict() == ""


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    (tmp_path / "models").mkdir()
    from gui_fixtures import studio_window
    from scripted_backend import ScriptedBackend

    w = studio_window(qtbot, tmp_path, ScriptedBackend)
    yield w
    w.close()


def test_window_choice_note_repeat_preview_and_screenshot(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QScrollArea

    w = window
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    panel = w.create_panel
    scroll = panel.findChild(QScrollArea)
    shots = Path(os.environ.get("ASSET_STUDIO_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    w.form.model = "tiny/model"
    panel.subject_edit.setText("mossy stones")

    panel.template_combo.setCurrentIndex(panel.template_combo.findData("environment-tile"))
    assert panel.tiling_combo.currentData() == "both" and "tiling" not in w.form.artist_set()
    assert "tiles both" in panel.tiling_combo.toolTip()  # whose value it is
    panel.tiling_combo.setCurrentIndex(panel.tiling_combo.findData("x"))
    assert w.form.tiling == "x" and w.form.to_request().overrides.tiling == "x"

    # a combination the engine refuses: said under the choice, as the Transparent switch does
    panel.transparent_box.switch.setChecked(True)
    assert not panel.tiling_note.isHidden() and "seamless tiling" in panel.tiling_note.text()
    assert panel.tiling_note.text() == panel.transparent_box.note.text()
    scroll.ensureWidgetVisible(panel.tiling_combo, 0, 80)
    qtbot.wait(60)
    w.grab().save(str(shots / "create-tiling-refused-1280x720.png"))
    panel.transparent_box.switch.setChecked(False)
    assert panel.tiling_note.isHidden()
    w.engine_choice.set("comfyui", ["http://127.0.0.1:1"])  # what a ComfyUI server would refuse
    assert w.form.engine == "comfyui" and "ComfyUI server" in panel.tiling_note.text()
    w.engine_choice.set("local", [])
    assert panel.tiling_note.isHidden()

    # a tiled result: the viewer shows it repeated (three in a row for one axis)
    job_id = w.generate()
    assert job_id is not None
    qtbot.waitUntil(lambda: w.viewer.state.path != "", timeout=10000)
    state = w.viewer.state
    assert state.tiling == "x" and state.repeat and state.repeat_grid() == (3, 1)
    assert w.viewer.repeat_btn.isVisible() and w.viewer.repeat_btn.isChecked()
    scroll.ensureWidgetVisible(panel.tiling_combo, 0, 80)
    qtbot.wait(60)
    top = panel.tiling_combo.mapTo(w, panel.tiling_combo.rect().topLeft())
    assert 0 <= top.y() and top.y() + panel.tiling_combo.height() <= w.height()  # on screen at 1280x720
    assert scroll.widget().width() <= scroll.viewport().width()  # nothing widens the form past the panel
    w.grab().save(str(shots / "create-tiling-1280x720.png"))

    panel.tiling_combo.setCurrentIndex(panel.tiling_combo.findData("off"))  # a plain result: no repeat
    w.generate()
    qtbot.waitUntil(lambda: w.viewer.state.tiling == "off", timeout=10000)
    assert not w.viewer.state.repeat and not w.viewer.repeat_btn.isVisible()
