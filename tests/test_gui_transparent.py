"""The Create tab's "Transparent (from the model, LayerDiffuse)" switch: the form's state → AssetRequest →
job, the weights default per model family, the cut-out shown as skipped, refusals in the window's words,
"Get one…" on the Models page, a transparent picture over the viewer's and the gallery's checkerboard,
and a screenshot at 1280x720."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401  (PySide6 guard first)
from PIL import Image, ImageDraw  # noqa: E402

from asset_studio.core.request import prepare  # noqa: E402
from asset_studio.errors import UserError  # noqa: E402
from gui_fixtures import form, home  # noqa: E402,F401  (shared fixtures)


def pipeline_folder(path: Path, family: str) -> Path:
    """A model folder whose family is read from its files (model_index.json and the text encoder's config)."""
    (path / "text_encoder").mkdir(parents=True)
    name = "StableDiffusionXLPipeline" if family == "sdxl" else "StableDiffusionPipeline"
    (path / "model_index.json").write_text(json.dumps({"_class_name": name}))
    (path / "text_encoder" / "config.json").write_text(json.dumps({"hidden_size": 768}))
    return path


def test_switch_sets_the_request_and_the_job(form, home):
    form.subject, form.model = "glass potion", "tiny/model"
    assert (form.to_request().transparent, form.to_request().layerdiffuse) == (False, None)
    form.layerdiffuse = "layerdiffuse-sdxl-conv"
    assert form.to_request().layerdiffuse is None  # the weights go with the switch only (as on the command line)
    assert prepare(form.to_request(), home / "out").transparency is None

    form.transparent = True
    request = form.to_request()
    assert (request.transparent, request.layerdiffuse) == (True, "layerdiffuse-sdxl-conv")
    assert prepare(request, home / "out").transparency.weights == "layerdiffuse-sdxl-conv"
    form.layerdiffuse = ""  # empty: the catalog's weights for the model's family
    assert prepare(form.to_request(), home / "out").transparency.weights == ""


def test_weights_default_follows_the_model_family(form, home):
    assert form.layerdiffuse_default() == ""  # no model, no style: unknown
    form.model = str(pipeline_folder(home / "xl-model", "sdxl"))
    assert form.layerdiffuse_default() == "layerdiffuse-sdxl"
    form.model = str(pipeline_folder(home / "v15-model", "sd15"))
    assert form.layerdiffuse_default() == "layerdiffuse-sd15"


def test_refused_combinations_are_said_before_generate(form, home):
    from asset_studio.core.job import HiresFix

    form.subject, form.model = "glass potion", str(pipeline_folder(home / "v15-model", "sd15"))
    form.passes.set_on("hires", True)
    assert form.transparency_conflict() == ""  # off: nothing to say
    form.transparent = True
    assert form.transparency_conflict() == ("Transparent generation (LayerDiffuse) cannot be combined with the "
                                            "hires fix yet; leave one of them out.")
    with pytest.raises(UserError, match="hires fix"):  # the same sentence stops Generate
        form.build_job(home / "out")
    form.passes.set_on("hires", False)
    assert isinstance(form.passes.settings["hires"], HiresFix) and form.transparency_conflict() == ""
    picture = home / "start.png"
    Image.new("RGB", (64, 64), (200, 90, 40)).save(picture)
    form.init_image = str(picture)
    assert "a start image (img2img)" in form.transparency_conflict()
    form.init_image = ""
    form.add_references([picture])  # SD 1.5's patch replaces the attention that references use
    assert form.transparency_conflict().startswith("SD 1.5's transparent generation (LayerDiffuse) cannot be "
                                                   "combined with reference images")
    form.model = str(pipeline_folder(home / "xl-model", "sdxl"))
    assert form.transparency_conflict() == ""  # SDXL's patch leaves them room


def test_missing_weights_sentence_in_window_words(monkeypatch, tmp_path):
    from asset_studio.engine.layerdiffuse import resolve_weights
    from asset_studio.gui.model.wording import gui_words

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(UserError) as err:
        resolve_weights("", "sd15")
    worded = gui_words(str(err.value))
    assert "--" not in worded and "asset-studio" not in worded
    assert worded == ("Transparent generation needs LayerDiffuse's SD 1.5 weights, which are not downloaded: "
                      "download layerdiffuse-sd15 on the Models page (about 560 MB), or switch Transparent off "
                      "and tick \"Remove the background\" in Finishing.")
    with pytest.raises(UserError) as err:
        resolve_weights("", "sd2")
    assert gui_words(str(err.value)).endswith("; tick \"Remove the background\" in Finishing instead.")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    (tmp_path / "models").mkdir()
    from gui_fixtures import studio_window
    from scripted_backend import ScriptedBackend

    class TransparentChecking(ScriptedBackend):
        """The scripted backend, with the local engine's check of LayerDiffuse's weights."""

        def check(self, job):
            super().check(job)
            if job.transparency is not None:
                from asset_studio.core.request import model_family
                from asset_studio.engine.layerdiffuse import check_weights

                check_weights(job.transparency.weights, model_family(job.model.checkpoint))

    yield lambda: studio_window(qtbot, tmp_path, TransparentChecking)


def test_window_switch_cutout_refusals_get_one_and_screenshot(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QScrollArea

    w = window()
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    panel, box = w.create_panel, w.create_panel.transparent_box
    scroll = panel.findChild(QScrollArea)
    shots = Path(os.environ.get("ASSET_STUDIO_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    xl = str(pipeline_folder(tmp_path / "xl-model", "sdxl"))
    w.form.model = xl
    panel.subject_edit.setText("glass potion, glowing")
    panel.cutout_box.setChecked(True)
    assert not box.weights_combo.isEnabled()
    assert box.skipped.isHidden() and panel.cutout_box.isEnabled()

    box.switch.setChecked(True)
    assert w.form.transparent and w.form.to_request().transparent
    assert box.weights_combo.isEnabled() and box.weights_combo.lineEdit().placeholderText() == "the model's: SDXL, attention"
    # the cut-out keeps its value and says it is skipped, rather than changing behind the artist's back
    assert w.form.remove_background and panel.cutout_box.isChecked() and not panel.cutout_box.isEnabled()
    assert not box.skipped.isHidden() and "The model makes the alpha" in box.skipped.text()

    box.get_btn.click()  # the family's entry on the Models page
    assert w.tabs.currentWidget() is w.model_manager
    assert w.model_manager._selected_entry().id == "layerdiffuse-sdxl"
    box.weights_combo.setCurrentIndex(box.weights_combo.findData("layerdiffuse-sdxl-conv"))
    assert w.form.layerdiffuse == "layerdiffuse-sdxl-conv"
    box.get_btn.click()  # a chosen catalog entry is the one shown
    assert w.model_manager._selected_entry().id == "layerdiffuse-sdxl-conv"
    w.tabs.setCurrentIndex(0)

    # a combination the engine refuses: said under the switch, and Generate's dialog says the same
    panel.passes_panel.sections["hires"].switch.setChecked(True)
    assert not box.note.isHidden() and "the hires fix" in box.note.text()
    assert w.generate() is None
    assert w.last_error == box.note.text()
    for dialog in list(w._dialogs):
        dialog.close()
    scroll.ensureWidgetVisible(box, 0, 40)
    qtbot.wait(60)
    w.grab().save(str(shots / "create-transparent-refused-1280x720.png"))
    panel.passes_panel.sections["hires"].switch.setChecked(False)
    assert box.note.isHidden()

    # the weights are not downloaded: the engine's check reaches the window in its words
    w.form.model = str(pipeline_folder(tmp_path / "v15-model", "sd15"))
    w.form.layerdiffuse = ""
    heard = []
    w.error_shown.connect(heard.append)
    w.generate()
    qtbot.waitUntil(lambda: bool(heard), timeout=10000)
    assert "download layerdiffuse-sd15 on the Models page" in heard[-1] and "--" not in heard[-1]

    w.form.model = xl
    for dialog in list(w._dialogs):
        dialog.close()
    scroll.ensureWidgetVisible(box, 0, 40)
    qtbot.wait(60)
    top = box.mapTo(w, box.rect().topLeft())
    assert 0 <= top.y() and top.y() + box.height() <= w.height()  # on screen at 1280x720
    assert scroll.widget().width() <= scroll.viewport().width()  # no text widens the form past the panel
    assert box.weights_combo.width() > 120 and box.get_btn.width() > 40  # nothing squeezed away
    pix = w.grab()
    pix.save(str(shots / "create-transparent-1280x720.png"))
    w.form.layerdiffuse = "layerdiffuse-sdxl-conv"
    w.close()

    again = window()  # the weights choice survives a restart; the switch is per run, like Finishing
    assert again.form.layerdiffuse == "layerdiffuse-sdxl-conv" and not again.form.transparent
    assert again.create_panel.transparent_box.weights_combo.currentData() == "layerdiffuse-sdxl-conv"
    again.close()


def sprite_rgba(path: Path) -> Path:
    """A LayerDiffuse-like result: a soft glowing orb on full transparency."""
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse((16, 16, 48, 48), fill=(90, 200, 255, 160))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def test_transparent_image_shows_over_the_checkerboard(qtbot, home):
    from PySide6.QtGui import QColor

    from PySide6.QtCore import Qt

    from asset_studio.gui.gallery import THUMB, LibraryModel
    from asset_studio.gui.model.library import Library
    from asset_studio.gui.ui.viewer import Viewer

    picture = sprite_rgba(home / "out" / "potion_0001.png")
    viewer = Viewer()
    qtbot.addWidget(viewer)
    viewer.resize(256, 256)
    viewer.show()
    qtbot.waitExposed(viewer)
    viewer.state.show_file(picture, picture.name)
    shot = viewer.canvas.grab().toImage()
    rect = viewer.canvas.image_rect()
    assert rect.width() >= 64
    corner = {QColor(shot.pixel(int(rect.left()) + 2 + x, int(rect.top()) + 2 + y)).getRgb()[:3]
              for x in range(0, 16) for y in range(0, 16)}
    assert corner == {(60, 62, 68), (80, 82, 90)}  # the transparent corner is the checkerboard, both squares
    centre = QColor(shot.pixel(int(rect.center().x()), int(rect.center().y()))).getRgb()[:3]
    assert centre not in corner and centre[2] > centre[0]  # the half-transparent orb over it

    library = Library(home / "out")
    library.add(picture)
    model = LibraryModel(library)
    assert model.rowCount() == 1
    model.data(model.index(0), Qt.ItemDataRole.DecorationRole)  # asks for the thumbnail, read off the GUI thread
    qtbot.waitUntil(lambda: str(picture) in model._thumbs, timeout=5000)
    thumb = model._thumbs[str(picture)].pixmap(THUMB, THUMB).toImage()
    edge = {QColor(thumb.pixel(x, 2)).getRgb()[:3] for x in range(0, 32)}
    assert edge == {(60, 62, 68), (80, 82, 90)}  # transparent: the checkerboard shows through
    middle = QColor(thumb.pixel(THUMB // 2, THUMB // 2)).getRgb()[:3]
    assert middle not in edge and middle[2] > middle[0]
