"""The Create tab's references: the form's state (no window) → AssetRequest → job, the References
box's rows, drops and controls, the window's settings and "Get one…", and a screenshot at 1280x720."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401  (PySide6 guard first)
from PIL import Image, ImageDraw  # noqa: E402

from asset_studio.core.job import Reference  # noqa: E402
from asset_studio.core.request import prepare  # noqa: E402
from asset_studio.core.stylepack import ReferenceEntry, StylePack, save_stylepack, user_styles_dir  # noqa: E402
from gui_fixtures import form, home  # noqa: E402,F401  (shared fixtures)


def character(path: Path, colour=(150, 160, 180)) -> Path:
    im = Image.new("RGB", (96, 144), (235, 230, 215))
    d = ImageDraw.Draw(im)
    d.ellipse((36, 10, 60, 34), fill=colour)
    d.rectangle((32, 38, 64, 96), fill=colour)
    d.rectangle((34, 96, 44, 136), fill=(60, 60, 70))
    d.rectangle((52, 96, 62, 136), fill=(60, 60, 70))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def knight_style() -> Path:
    folder = user_styles_dir() / "knight"
    character(folder / "references" / "knight-front.png")
    save_stylepack(StylePack(id="knight", name="Knight Hero", prompt="{subject}, knight",
                             references=[ReferenceEntry("references/knight-front.png", 0.7)],
                             ip_adapter="ip-adapter-plus-sd15"), folder)
    return folder


def test_form_adds_changes_removes_references_and_the_request_carries_them(form, home):
    a, b = character(home / "a.png"), character(home / "b.png", (180, 40, 40))
    (home / "notes.png").write_text("not a picture")
    heard = []
    form.message.connect(heard.append)
    changes = []
    form.changed.connect(changes.append)

    assert form.add_references([a, home / "notes.png", b]) == 2
    assert heard == ["notes.png is not a picture Asset Studio can read; it was not added."]
    assert form.references == [Reference(str(a)), Reference(str(b))] and changes.count("references") == 1
    form.set_reference_scale(0, 1.25)
    form.set_reference_mode(1, "style")
    form.references[0].scale = 2.0  # a copy: the form changes only through its methods
    assert form.references == [Reference(str(a), 1.25), Reference(str(b), 0.6, "style")]
    form.ip_adapter, form.image_encoder = "ip-adapter-sd15", "ip-adapter-image-encoder-vit-h"

    request = form.to_request()
    assert request.references == form.references and request.style_references is True
    assert (request.ip_adapter, request.image_encoder) == ("ip-adapter-sd15", "ip-adapter-image-encoder-vit-h")
    form.model, form.subject = "tiny/model", "knight"
    job = prepare(form.to_request(), home / "out")
    assert job.references == [Reference(str(a), 1.25, "full"), Reference(str(b), 0.6, "style")]
    assert (job.model.ip_adapter, job.model.image_encoder) == ("ip-adapter-sd15", "ip-adapter-image-encoder-vit-h")

    form.remove_reference(0)
    assert form.references == [Reference(str(b), 0.6, "style")]
    form.remove_reference(5)  # nothing there: nothing happens
    form.ip_adapter = ""
    assert form.to_request().ip_adapter is None
    from asset_studio.errors import UserError
    from asset_studio.gui.model.wording import gui_words

    with pytest.raises(UserError) as err:
        form.build_job(home / "out")
    assert gui_words(str(err.value)) == ("Reference images need an IP-Adapter model (the Adapter box under References): "
                                         "it is what lets a picture steer.")


def test_the_styles_references_come_first_and_can_be_switched_off(form, home):
    knight_style()
    form.reload_styles()
    form.style_id = "knight"
    form.model, form.subject = "tiny/model", "knight"
    mine = character(home / "mine.png")
    style_ref = str((user_styles_dir() / "knight" / "references" / "knight-front.png").resolve())
    assert form.style_references() == [Reference(style_ref, 0.7)]
    assert form.style_ip_adapter() == ("ip-adapter-plus-sd15", None)
    form.add_references([mine])
    job = prepare(form.to_request(), home / "out")
    assert [r.image for r in job.references] == [style_ref, str(mine)]
    assert job.model.ip_adapter == "ip-adapter-plus-sd15"  # the style's, with no flag and no choice
    from asset_studio.gui.model.wording import gui_words
    from asset_studio.remote.graph import unsupported

    assert gui_words(unsupported(job)).endswith("remove them (a style pack's own: untick \"Use the style's references\").")

    form.use_style_references = False
    assert form.active_references() == [Reference(str(mine))]
    job = prepare(form.to_request(), home / "out")
    assert job.references == [Reference(str(mine))]

    # the most a job takes counts the style's picture while it is on
    form.use_style_references = True
    heard = []
    form.message.connect(heard.append)
    assert form.add_references([mine] * 4) == 2
    assert heard == ["A job takes at most 4 reference images; mine.png was not added."]


def test_references_box_rows_drop_and_controls(qtbot, form, home):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    from asset_studio.gui.ui.references_box import ReferencesBox

    knight_style()
    form.reload_styles()
    box = ReferencesBox(form)
    qtbot.addWidget(box)
    assert box.rows == [] and box.style_switch.isHidden()
    form.style_id = "knight"
    assert len(box.rows) == 1 and not box.rows[0].remove.isVisibleTo(box) and not box.rows[0].spin.isEnabled()
    assert box.rows[0].name.plain_text() == "knight-front.png · style's"
    assert not box.style_switch.isHidden() and box.style_switch.isChecked()
    assert box.adapter_combo.lineEdit().placeholderText() == "style's: ip-adapter-plus-sd15"

    pictures = [character(home / "a.png"), character(home / "b.png")]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in pictures] + [QUrl.fromLocalFile(str(home / "notes.txt"))])
    from PySide6.QtGui import QDragEnterEvent

    hint = box.hint.text()
    box.dragEnterEvent(QDragEnterEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                       Qt.KeyboardModifier.NoModifier))
    assert box.hint.text() == "Release to add 2 pictures."  # the text file is not counted
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    box.dropEvent(drop)
    assert box.hint.text() == hint
    assert [r.image for r in form.references] == [str(p) for p in pictures]  # the text file is not a picture
    assert len(box.rows) == 3 and box.rows[1].remove.isVisibleTo(box)

    row = box.rows[1]
    row.slider.setValue(150)  # the slider and the spin box move together
    assert form.references[0].scale == 1.5 and row.spin.value() == 1.5
    assert box.rows[1] is row  # a strength change keeps the row (a dragged slider keeps its grip)
    row.spin.setValue(0.35)
    assert form.references[0].scale == 0.35 and row.slider.value() == 35
    box.rows[2].mode.setCurrentIndex(box.rows[2].mode.findData("style"))
    assert form.references[1].mode == "style"
    box.rows[1].remove.click()
    assert [r.image for r in form.references] == [str(pictures[1])] and len(box.rows) == 2
    assert box.rows[1].mode.currentData() == "style"

    box.style_switch.setChecked(False)
    assert form.use_style_references is False and not box.rows[0].isEnabled()
    assert form.to_request().style_references is False

    box.adapter_combo.setCurrentIndex(box.adapter_combo.findData("ip-adapter-sd15"))
    assert form.ip_adapter == "ip-adapter-sd15"
    box.encoder_combo.setEditText("/models/my-encoder")
    assert form.image_encoder == "/models/my-encoder"
    form.ip_adapter = "/models/ip.safetensors"
    assert box.adapter_combo.currentText() == "/models/ip.safetensors"
    form.style_id = ""
    assert len(box.rows) == 1 and box.style_switch.isHidden()


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    (tmp_path / "models").mkdir()
    from gui_fixtures import studio_window
    from scripted_backend import ScriptedBackend

    knight_style()
    yield lambda: studio_window(qtbot, tmp_path, ScriptedBackend)


def test_window_keeps_the_adapter_offers_one_and_shows_two_references(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QScrollArea

    w = window()
    w.select_style("knight")
    w.create_panel.subject_edit.setText("knight swinging a sword")
    w.form.add_references([character(tmp_path / "red-cape-character-sheet.png", (180, 40, 40))], 0.9, "style")
    w.form.image_encoder = "ip-adapter-image-encoder-vit-h"
    box = w.create_panel.references_box
    assert len(box.rows) == 2

    box.get_btn.click()
    assert w.tabs.currentWidget() is w.model_manager
    assert w.model_manager._selected_entry().id == "ip-adapter-plus-sd15"
    w.tabs.setCurrentIndex(0)

    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    w.create_panel.findChild(QScrollArea).ensureWidgetVisible(box, 0, 0)
    qtbot.wait(60)
    top = box.mapTo(w, box.rect().topLeft())
    assert 0 <= top.y() and top.y() + box.height() <= w.height()  # the whole box is on screen at 1280x720
    for row in box.rows:
        assert row.name.width() > 60 and row.spin.width() > 40  # nothing squeezed away
    shots = Path(os.environ.get("ASSET_STUDIO_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    pix = w.grab()
    pix.save(str(shots / "create-references-1280x720.png"))
    image = pix.toImage()
    assert len({image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}) > 8
    w.close()

    again = window()  # the adapter and encoder choice survive a restart
    assert again.form.image_encoder == "ip-adapter-image-encoder-vit-h"
    assert again.create_panel.references_box.encoder_combo.currentData() == "ip-adapter-image-encoder-vit-h"
    again.close()


def test_style_editor_keeps_the_references_when_it_saves(qtbot, home):
    from asset_studio.core.stylepack import find_style
    from asset_studio.gui.style_editor import StyleEditor

    knight_style()
    editor = StyleEditor()
    qtbot.addWidget(editor)
    editor.reload(select_id="knight")
    assert editor.pack is not None and editor.pack.id == "knight"
    editor.name_edit.setText("Knight Hero II")
    assert editor.save() == user_styles_dir() / "knight"
    pack = find_style("knight")
    assert pack.name == "Knight Hero II"
    assert pack.references == [ReferenceEntry("references/knight-front.png", 0.7)]
    assert pack.ip_adapter == "ip-adapter-plus-sd15"


def test_keep_a_reference_in_the_style_pack(qtbot, form, home):
    from asset_studio.gui.ui.references_box import ReferencesBox

    knight_style()
    form.reload_styles()
    form.style_id = "pixel-art"  # bundled: read-only
    mine = character(home / "red-cape.png", (180, 40, 40))
    form.add_references([mine], 1.1, "style")
    heard = []
    form.message.connect(heard.append)
    assert not form.keep_in_style(0)
    assert heard[-1].startswith("The style Pixel Art is bundled and read-only") and len(form.references) == 1

    form.style_id = "knight"
    form.use_style_references = False
    box = ReferencesBox(form)
    qtbot.addWidget(box)
    assert len(box.rows) == 2
    box.rows[1].actions()[0].trigger()  # right-click ▸ Keep in the style pack
    assert heard[-1] == "red-cape.png is now a reference of the style Knight Hero."
    assert form.references == [] and form.use_style_references
    kept = user_styles_dir() / "knight" / "references" / "red-cape.png"
    assert kept.is_file()
    assert form.style_references()[1] == Reference(str(kept.resolve()), 1.1, "style")
    assert len(box.rows) == 2 and box.rows[1].name.plain_text() == "red-cape.png · style's"
