"""A saved style pack renamed in the pack editor: the id follows the name, the folder moves (never
over another pack), and the settings and the Create form that named the old id follow."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401  (pyside_fix before PySide6)
from gui_fixtures import home  # noqa: E402,F401


def _saved_pack(qtbot, name: str):
    from asset_studio.gui.style_editor import StyleEditor

    editor = StyleEditor()
    qtbot.addWidget(editor)
    editor.new_pack()
    editor.name_edit.clear()
    qtbot.keyClicks(editor.name_edit, name)
    assert editor.save() is not None
    return editor


def test_id_for_name_is_a_unique_slug_and_keeps_the_packs_own_id():
    from asset_studio.gui.model.pack_rename import id_for_name

    assert id_for_name("Retro Icons!", {"pixel"}) == "retro-icons"
    assert id_for_name("Retro Icons", {"retro-icons"}) == "retro-icons-2"
    assert id_for_name("Retro Icons", {"retro-icons"}, current="retro-icons") == "retro-icons"
    assert id_for_name("???", set()) == "style"


def test_renaming_a_saved_pack_moves_its_folder_and_the_settings_follow(qtbot, home):
    from asset_studio.core.stylepack import load_stylepack, user_styles_dir
    from asset_studio.gui.model.create_form import CreateForm
    from asset_studio.gui.model.pack_rename import follow_rename
    from asset_studio.gui.settings import Settings

    editor = _saved_pack(qtbot, "My Pixels")
    old = user_styles_dir() / "my-pixels"
    (old / "preview.png").write_bytes(b"not really a png, but the pack's own file")
    settings = Settings()
    settings.set_last_style("my-pixels")
    form = CreateForm()
    form.style_id = "my-pixels"
    form.set_size(320, 192)  # values the artist set: a rename must not reset them
    renames = []
    editor.pack_renamed.connect(lambda a, b: renames.append((a, b)))
    editor.pack_renamed.connect(lambda a, b: (follow_rename(settings, a, b), form.follow_style_rename(a, b)))

    editor.name_edit.clear()
    qtbot.keyClicks(editor.name_edit, "Retro Icons")
    assert editor.id_edit.text() == "retro-icons", "a saved pack's id follows its new name"
    target = editor.save()
    assert target == user_styles_dir() / "retro-icons" and not old.exists()
    assert (target / "preview.png").read_bytes().startswith(b"not really"), "the pack's files moved with it"
    assert load_stylepack(target).id == "retro-icons" and load_stylepack(target).name == "Retro Icons"
    assert renames == [("my-pixels", "retro-icons")]
    assert settings.last_style() == "retro-icons"
    assert form.style_id == "retro-icons" and (form.width, form.height, form.size_auto) == (320, 192, False)
    assert editor.pack.id == "retro-icons"
    # Editing the name back to the same words keeps the pack's own id (not "retro-icons-2").
    editor.name_edit.clear()
    qtbot.keyClicks(editor.name_edit, "Retro Icons")
    assert editor.id_edit.text() == "retro-icons"


def test_a_rename_onto_another_pack_is_refused_and_nothing_moves(qtbot, home):
    from asset_studio.core.stylepack import load_stylepack, user_styles_dir
    from asset_studio.gui.model.pack_rename import move_pack
    from asset_studio.errors import UserError

    _saved_pack(qtbot, "Taken")
    editor = _saved_pack(qtbot, "Mine")
    said = []
    editor.message.connect(said.append)
    editor.id_edit.clear()
    qtbot.keyClicks(editor.id_edit, "taken")  # typed by hand onto an existing pack
    assert editor.save() is None
    assert "already exists" in said[-1]
    assert load_stylepack(user_styles_dir() / "mine").name == "Mine"
    assert load_stylepack(user_styles_dir() / "taken").name == "Taken"
    with pytest.raises(UserError, match="not a pack id"):
        move_pack(user_styles_dir() / "mine", "../escape")


def test_the_window_keeps_the_renamed_pack_as_the_create_style(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    from asset_studio.gui.app import create_app
    from asset_studio.gui.main_window import MainWindow
    from scripted_backend import ScriptedBackend

    create_app([])
    w = MainWindow(output_dir=tmp_path / "out", models_dir=tmp_path / "models",
                   backend_factory=lambda device: ScriptedBackend())
    qtbot.addWidget(w)
    try:
        editor = w.style_editor
        editor.new_pack()
        editor.name_edit.clear()
        qtbot.keyClicks(editor.name_edit, "My Pixels")
        editor.save()
        w.select_style("my-pixels")
        assert w.settings.last_style() == "my-pixels"
        editor.name_edit.clear()
        qtbot.keyClicks(editor.name_edit, "Retro Icons")
        editor.save()
        assert w.current_style_id() == "retro-icons" and w.settings.last_style() == "retro-icons"
        assert w.create_panel.style_combo.currentData() == "retro-icons"
    finally:
        w.close()
