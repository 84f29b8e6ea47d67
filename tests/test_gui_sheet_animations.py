"""The gallery's sheet export lists the animations it found (numbered names, folders) with an
editable name, fps and loop, and the exported data files use them (service.export_sheet)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401  (pyside_fix before PySide6)
from PIL import Image  # noqa: E402

from asset_studio.core.animation import AnimationEdit  # noqa: E402
from asset_studio.errors import UserError  # noqa: E402
from gui_fixtures import home  # noqa: E402,F401


def _frames(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for prefix, n in (("walk", 3), ("idle", 2)):
        for i in range(n):
            path = folder / f"{prefix}_{i}.png"
            Image.new("RGBA", (24, 24), (30 * i, 180 if prefix == "walk" else 60, 90, 255)).save(path)
            paths.append(path)
    return paths


def _model(qtbot, home):
    from asset_studio.gui.model.sheet_export import SheetExportModel

    model = SheetExportModel(_frames(home / "frames"), home / "out" / "sheets" / "sheet.png")
    with qtbot.waitSignal(model.animations_changed, timeout=10_000):
        model.refresh_preview()
    return model


def test_found_animations_are_listed_edited_and_exported_under_their_new_names(qtbot, home):
    model = _model(qtbot, home)
    assert [(a.found, a.name, a.fps, a.loop) for a in model.animations()] == [
        ("idle", "idle", None, True), ("walk", "walk", None, True)]
    model.edit_animation("walk", name="Hero Walk", fps=8, loop=False)
    model.set_option("format", "godot4")
    model.set_option("fps", 12.0)
    with qtbot.waitSignal(model.exported, timeout=20_000) as blocker:
        model.export()
    tres = next(p for p in blocker.args[0] if p.suffix == ".tres").read_text()
    assert re.search(r'"loop": false,\n"name": &"Hero Walk",\n"speed": 8(\.0)?\n', tres)
    assert re.search(r'"loop": true,\n"name": &"idle",\n"speed": 12(\.0)?\n', tres), \
        "an animation left alone keeps the sheet's speed"
    assert '&"walk"' not in tres

    model.set_option("format", "texturepacker-hash")
    model.set_option("out", home / "out" / "sheets" / "tp.png")
    with qtbot.waitSignal(model.exported, timeout=20_000) as blocker:
        model.export()
    doc = json.loads(next(p for p in blocker.args[0] if p.suffix == ".json").read_text())
    assert sorted(doc["animations"]) == ["Hero Walk", "idle"]
    assert len(doc["animations"]["Hero Walk"]) == 3 and len(doc["animations"]["idle"]) == 2


def test_a_repeated_or_empty_name_is_one_sentence_and_nothing_is_written(qtbot, home):
    model = _model(qtbot, home)
    model.edit_animation("idle", name="walk")
    failed = []
    model.failed.connect(failed.append)
    with qtbot.waitSignal(model.failed, timeout=20_000):
        model.export()
    assert "both be called 'walk'" in failed[0]
    assert not (home / "out" / "sheets" / "sheet.png").exists()
    model.edit_animation("idle", name="  ")
    with qtbot.waitSignal(model.failed, timeout=20_000):
        model.export()
    assert "must be 1 to 64 printable characters" in failed[1]
    with pytest.raises(UserError, match="no animation 'run'"):
        model.edit_animation("run", name="x")


def test_the_export_function_applies_edits_like_the_cli_would(home):
    from asset_studio.service import SheetExport, export_sheet

    frames = _frames(home / "f")
    result = export_sheet(SheetExport(inputs=frames, out=home / "s.png", format="aseprite",
                                      animations=[AnimationEdit(found="walk", name="run", fps=20, loop=True)]))
    doc = json.loads(next(p for p in result.data_files if p.suffix == ".json").read_text())
    tags = {tag["name"]: (tag["from"], tag["to"]) for tag in doc["meta"]["frameTags"]}
    assert sorted(tags) == ["idle", "run"]
    durations = [f["duration"] for f in doc["frames"]]
    run, idle = tags["run"], tags["idle"]
    assert set(durations[run[0]:run[1] + 1]) == {50}, "20 fps = 50 ms per frame"
    assert set(durations[idle[0]:idle[1] + 1]) == {100}, "the sheet's 10 fps"


def test_the_dialog_lists_the_animations_and_writes_edits_back(qtbot, home):
    from asset_studio.gui.gallery import SheetExportDialog

    dialog = SheetExportDialog(_frames(home / "frames"), home / "out")
    qtbot.addWidget(dialog)
    dialog.resize(900, 560)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.anim_table.rowCount() == 2, timeout=10_000)
    assert dialog.anim_table.isVisible() and not dialog.anim_hint.isVisible()
    assert dialog.anim_table.item(1, 0).text() == "walk (3)"
    name = dialog.anim_table.cellWidget(1, 1)
    name.selectAll()
    qtbot.keyClicks(name, "attack")
    dialog.anim_table.cellWidget(1, 2).setValue(6)
    dialog.anim_table.cellWidget(0, 3).setChecked(False)
    got = {a.found: (a.name, a.fps, a.loop) for a in dialog.model.animations()}
    assert got == {"walk": ("attack", 6.0, True), "idle": ("idle", None, False)}
    qtbot.wait(300)  # the preview settles
    dialog.grab().save("/tmp/wt-window-sheet-animations.png")


def test_the_sheet_command_takes_the_same_edits(home, capsys):
    from asset_studio.cli import main

    _frames(home / "f")
    out = home / "cli.png"
    assert main(["sheet", str(home / "f"), "--out", str(out), "--format", "godot4",
                 "--animation", "walk=Hero Walk,fps=8,loop=no"]) == 0
    tres = out.with_suffix(".tres").read_text()
    assert re.search(r'"loop": false,\n"name": &"Hero Walk",\n"speed": 8(\.0)?\n', tres)
    for bad, words in (("walk", "takes FOUND=NAME"), ("walk=x,fps=fast", "fps takes a number"),
                       ("walk=x,speed=2", "is not fps=F"), ("run=x", "no animation 'run'")):
        assert main(["sheet", str(home / "f"), "--out", str(home / "bad.png"), "--format", "godot4",
                     "--animation", bad]) == 2
        assert words in capsys.readouterr().err
