"""The Pose tab through its models (no window): drag, mirror, hide, people, presets, undo, files, the
pose-set strip, and "Use this pose / pose set" filling the Create tab's request as --pose / --pose-set do."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

import asset_studio.gui  # noqa: E402,F401  (before PySide6: the refcount guard)
from asset_studio.core.pose import load_pose, preset  # noqa: E402
from asset_studio.errors import UserError  # noqa: E402
from gui_fixtures import form, home  # noqa: E402,F401

def flat(keypoints) -> list[float]:
    """Keypoints as numbers for pytest.approx (a hidden joint as -1, -1)."""
    return [v for p in keypoints for v in (p if p is not None else (-1.0, -1.0))]


NECK, R_WRIST, L_WRIST, R_SHOULDER, L_SHOULDER, NOSE = 1, 4, 7, 2, 5, 0


@pytest.fixture
def editor(qapp):
    from asset_studio.gui.model.pose_editor import PoseEditor

    return PoseEditor()


def test_a_drag_is_one_undo_step_and_stays_on_the_canvas(editor):
    start = editor.point(0, R_WRIST)
    hit = editor.joint_at(start[0] + 3, start[1] - 2)
    assert hit == (0, R_WRIST)
    editor.begin_drag(*hit)
    for x in range(0, 900, 50):  # many mouse moves, the last one far off the canvas
        editor.drag_to(start[0] + x, start[1] - x)
    editor.end_drag()
    assert editor.point(0, R_WRIST) == (512.0, 0.0), "clamped to the 512x512 canvas"
    assert editor.joint == R_WRIST and editor.can_undo()
    assert editor.undo() and editor.point(0, R_WRIST) == start, "one undo takes back the whole drag"
    assert not editor.can_undo()
    assert editor.redo() and editor.point(0, R_WRIST) == (512.0, 0.0)
    # A click without a move records nothing.
    editor.undo()
    editor.begin_drag(0, NECK)
    editor.end_drag()
    assert not editor.can_undo() and editor.can_redo() is False


def test_mirror_swaps_left_and_right_in_place(editor):
    editor.apply_preset("walk-2")
    before = editor.pose.people[0]
    editor.mirror()
    after = editor.pose.people[0]
    xs = [p[0] for p in before.keypoints if p]
    mid = (min(xs) + max(xs)) / 2
    # the right wrist is where the left wrist was, reflected about the figure's own middle
    lx, ly = before.keypoints[L_WRIST]
    assert after.keypoints[R_WRIST] == pytest.approx((2 * mid - lx, ly))
    assert after.keypoints[NECK][0] == pytest.approx(2 * mid - before.keypoints[NECK][0])
    editor.mirror()
    assert flat(editor.pose.people[0].keypoints) == pytest.approx(flat(before.keypoints)), "twice is the identity"
    editor.undo()
    editor.undo()
    assert editor.pose.people[0].keypoints == before.keypoints


def test_hide_and_show_a_joint(editor):
    where = editor.point(0, L_WRIST)
    editor.select(0, L_WRIST)
    editor.toggle_joint()
    assert editor.point(0, L_WRIST) is None
    assert editor.joint_at(*where) != (0, L_WRIST), "a hidden joint cannot be picked up"
    with pytest.raises(UserError, match="left wrist is hidden"):
        editor.begin_drag(0, L_WRIST)
    import numpy as np

    hidden = np.asarray(editor.render())
    editor.toggle_joint()
    assert editor.point(0, L_WRIST) == where, "shown again where it was"
    assert not np.array_equal(hidden, np.asarray(editor.render())), "the control image draws it again"
    # A joint that was never placed (the back view has no face) appears on the figure, on the canvas.
    editor.apply_preset("back")
    assert editor.point(0, NOSE) is None
    editor.set_joint_visible(NOSE, True)
    x, y = editor.point(0, NOSE)
    assert 0 <= x <= 512 and y < editor.point(0, NECK)[1], "above the neck"


def test_people_and_presets(editor):
    editor.add_person("left")
    assert editor.people == 2 and editor.person == 1
    a, b = editor.pose.people
    assert all(0 <= p[0] <= 512 and 0 <= p[1] <= 512 for p in b.keypoints if p)
    height = lambda person: max(p[1] for p in person.keypoints if p) - min(p[1] for p in person.keypoints if p)  # noqa: E731
    # With several people a preset changes the selected one only, keeping its height and place.
    before_b = height(b)
    editor.apply_preset("run-3")
    a2, b2 = editor.pose.people
    assert a2.keypoints == a.keypoints
    assert height(b2) == pytest.approx(before_b, rel=0.02)
    editor.set_joint_visible(R_WRIST, False)  # person 2's wrist, remembered under its new index
    editor.remove_person(0)
    assert editor.people == 1 and editor.pose.people[0].keypoints[R_WRIST] is None
    editor.set_joint_visible(R_WRIST, True)
    assert editor.pose.people[0].keypoints == b2.keypoints
    # With one person the canvas becomes the preset.
    editor.apply_preset("three-quarter-left")
    assert editor.pose.people[0].keypoints == preset("three-quarter-left").people[0].keypoints
    for _ in range(5):
        editor.undo()
    assert editor.people == 2 and editor.pose.people[0].keypoints == a.keypoints
    assert editor.undo() and editor.people == 1 and not editor.can_undo()


def test_canvas_size_keeps_proportions(editor):
    editor.set_canvas_size(768, 384)
    pose = editor.pose
    assert (pose.width, pose.height) == (768, 384)
    ys = [p[1] for p in pose.people[0].keypoints if p]
    assert max(ys) <= 384 and max(ys) - min(ys) > 300
    with pytest.raises(UserError, match="8 to 4096"):
        editor.set_canvas_size(5, 100)


def test_json_round_trip_and_a_bad_file_is_one_sentence(editor, tmp_path):
    editor.apply_preset("walk-5")
    editor.add_person("front")
    editor.set_joint_visible(R_WRIST, False)
    path = editor.save_file(tmp_path / "two.json")
    data = json.loads(path.read_text())
    assert data["canvas_width"] == 512 and len(data["people"]) == 2
    assert data["people"][1]["pose_keypoints_2d"][3 * R_WRIST + 2] == 0, "hidden = confidence 0"
    from asset_studio.gui.model.pose_editor import PoseEditor

    other = PoseEditor()
    other.open_file(path)
    assert other.pose == load_pose(path) and other.name == "two" and not other.can_undo()
    for x, y in zip(other.pose.people[0].keypoints, editor.pose.people[0].keypoints):
        assert x == pytest.approx(y, abs=0.01)
    bad = tmp_path / "bad.json"
    bad.write_text('{"canvas_width": 512, "canvas_height": 512, "people": [{"pose_keypoints_2d": [1, 2, 3]}]}')
    with pytest.raises(UserError) as err:
        other.open_file(bad)
    message = str(err.value)
    assert "54 numbers" in message and "\n" not in message and message.count(". ") == 0
    assert other.pose == load_pose(path), "a bad file leaves the pose as it was"


@pytest.fixture
def pose_set(editor):
    from asset_studio.gui.model.pose_editor import PoseSet

    return PoseSet(editor)


def test_the_strip_loads_a_set_and_edits_stay_in_their_frame(editor, pose_set, tmp_path):
    pose_set.load("walk-8")
    assert [f.name for f in pose_set.frames] == [f"walk-{i}" for i in range(8)] and pose_set.current == 0
    pose_set.select(3)
    assert editor.pose == preset("walk-3") and editor.name == "walk-3" and not editor.can_undo()
    x, y = editor.point(0, NOSE)
    editor.move_joint(0, NOSE, x + 20, y)
    assert pose_set.frames[3].pose.people[0].keypoints[NOSE] == (x + 20, y), "the frame keeps the edit"
    pose_set.select(4)
    assert not editor.can_undo(), "undo never crosses frames"
    # Saved to a folder: names and order kept, read back by the CLI's reader.
    pose_set.load("turnaround-4")
    pose_set.select(2)
    editor.mirror()
    written = pose_set.save(tmp_path / "turn")
    assert {p.name for p in written} == {"front.json", "three-quarter.json", "side.json", "back.json", "order.txt"}
    from asset_studio.core.pose_sets import load_pose_set

    again = load_pose_set(tmp_path / "turn")
    assert [f.name for f in again] == ["front", "three-quarter", "side", "back"], "the set's order, not a-z"
    assert flat(again[2].pose.people[0].keypoints) == pytest.approx(flat(pose_set.frames[2].pose.people[0].keypoints),
                                                                     abs=0.01)
    with pytest.raises(UserError, match="agree to replace"):
        pose_set.save(tmp_path / "turn")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "stranger.json").write_text("{}")
    with pytest.raises(UserError, match="other pose files"):
        pose_set.save(tmp_path / "other")
    pose_set.load(str(tmp_path / "turn"))
    assert pose_set.label == "turn" and [f.name for f in pose_set.frames][1] == "three-quarter"
    # Opening a single file leaves the set's frame alone.
    pose_set.select(3)
    editor.open_file(tmp_path / "turn" / "front.json")
    assert pose_set.current == -1 and editor.pose == load_pose(tmp_path / "turn" / "front.json")
    editor.apply_preset("front")
    assert pose_set.frames[3].pose == load_pose(tmp_path / "turn" / "back.json")


def _request_form(form, tmp_path):
    form.model = str(tmp_path / "model")  # never loaded: prepare only records it
    form.subject = "knight"
    form.set_size(64, 64)
    form.seed_locked, form.seed = True, 7
    return form


def test_use_this_pose_fills_the_request_like_the_cli(form, editor, tmp_path):
    from asset_studio.gui.model.pose_link import NO_CONTROLNET

    _request_form(form, tmp_path)
    editor.apply_preset("right")
    form.pose.use_pose(editor.pose, editor.name)
    with pytest.raises(UserError) as err:
        form.build_job(tmp_path / "out")
    assert str(err.value) == NO_CONTROLNET
    form.pose.offer_controlnets([str(tmp_path / "canny.safetensors"), str(tmp_path / "control_v11p_sd15_openpose")])
    assert form.pose.controlnet.endswith("openpose")
    request = form.to_request()
    assert request.pose == editor.pose and request.pose_name == "right"
    [unit] = request.controls
    assert (unit.type, unit.model) == ("pose", form.pose.controlnet)
    [run] = form.build_runs(tmp_path / "out")
    [control] = run.job.controls
    assert control.type == "pose" and run.job.source.pose == "right" and run.folder is None
    from PIL import Image

    import numpy as np
    from asset_studio.core.pose import scaled
    from asset_studio.core.pose_render import render_pose

    drawn = np.asarray(Image.open(control.image).convert("RGB"))
    assert np.array_equal(drawn, np.asarray(render_pose(scaled(editor.pose, 64, 64))))
    assert form.pose.summary() == "Pose right (1 person) through the ControlNet control_v11p_sd15_openpose"
    form.pose.clear()
    assert form.to_request().pose is None and form.to_request().controls == []


def test_use_this_pose_set_makes_the_cli_s_jobs(form, editor, pose_set, tmp_path):
    _request_form(form, tmp_path)
    form.seed_locked = False
    form.pose.controlnet = str(tmp_path / "openpose")
    pose_set.load("turnaround-4")
    form.pose.use_set(pose_set.frames, pose_set.label)
    runs = form.build_runs(tmp_path / "out")
    assert [r.name for r in runs] == ["knight-front.png", "knight-three-quarter.png", "knight-side.png", "knight-back.png"]
    assert len({r.folder for r in runs}) == 1 and runs[0].folder == tmp_path / "out" / "knight-turnaround-4"
    assert len({r.job.sampling.seed for r in runs}) == 1, "one character: one seed"
    assert [r.job.source.pose for r in runs] == ["front", "three-quarter", "side", "back"]
    assert "side view" in runs[2].job.prompt.text
    assert len({r.job.controls[0].image for r in runs}) == 4
    again = form.build_runs(tmp_path / "out")
    assert again[0].folder.name == "knight-turnaround-4-2", "a second press never mixes with the first"
    form.count = 3
    with pytest.raises(UserError, match="one image per pose"):
        form.build_runs(tmp_path / "out")


@pytest.fixture
def studio(qtbot, home):
    from asset_studio.gui.app import create_app
    from asset_studio.gui.main_window import MainWindow
    from scripted_backend import ScriptedBackend

    (home / "models").mkdir()
    create_app([])
    w = MainWindow(output_dir=home / "out", models_dir=home / "models", backend_factory=lambda d: ScriptedBackend())
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def test_an_installed_openpose_controlnet_is_chosen_for_the_badge(qtbot, studio):
    from types import SimpleNamespace

    badge = studio.create_panel.pose_badge
    models = [SimpleNamespace(kind="controlnet", name=n, ref=f"/models/{n}", family_label="SD 1.5")
              for n in ("control_v11p_sd15_canny", "control_v11p_sd15_openpose")]
    badge.set_controlnets(models)
    assert studio.pose_link.controlnet == "/models/control_v11p_sd15_openpose"
    assert badge.picker.combo.currentText() == "control_v11p_sd15_openpose  (SD 1.5)"
    badge.set_controlnets(models)  # the Models page rescans: the choice stays the installed entry
    assert studio.pose_link.controlnet == "/models/control_v11p_sd15_openpose"
    badge.picker.combo.setCurrentIndex(0)  # the artist's choice is theirs
    badge.set_controlnets(models)
    assert studio.pose_link.controlnet == "/models/control_v11p_sd15_canny"


def test_the_window_drags_on_the_canvas_and_shows_bad_files_in_a_dialog(qtbot, studio, tmp_path):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QMessageBox

    w = studio
    tab = w.pose_tab
    w.tabs.setCurrentWidget(tab)
    w.resize(1280, 720)
    qtbot.wait(20)
    canvas, editor = tab.canvas, tab.editor
    start = editor.point(0, R_WRIST)
    at = canvas.to_widget(*start).toPoint()
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    for dx in (5, 15, 30):
        QTest.mouseMove(canvas, at + QPoint(dx, -dx))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at + QPoint(30, -30))
    moved = editor.point(0, R_WRIST)
    assert moved[0] > start[0] + 20 and moved[1] < start[1] - 20
    assert tab.undo_btn.isEnabled() and tab.joint_list.currentRow() == R_WRIST
    tab.undo_btn.click()
    assert editor.point(0, R_WRIST) == start and not tab.undo_btn.isEnabled(), "the drag was one step"
    # Arrows nudge the selected joint, one undo step each; H hides it and shows it again.
    QTest.keyClick(canvas, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClick(canvas, Qt.Key.Key_Up)
    assert editor.point(0, R_WRIST) == (start[0] + 10, start[1] - 1)
    QTest.keyClick(canvas, Qt.Key.Key_H)
    assert editor.point(0, R_WRIST) is None and tab.joint_list.item(R_WRIST).checkState() == Qt.CheckState.Unchecked
    QTest.keyClick(canvas, Qt.Key.Key_H)
    assert editor.point(0, R_WRIST) == (start[0] + 10, start[1] - 1)
    for _ in range(4):
        tab.undo_btn.click()
    assert editor.point(0, R_WRIST) == start
    # The joint list hides and shows.
    tab.joint_list.item(L_WRIST).setCheckState(Qt.CheckState.Unchecked)
    assert editor.point(0, L_WRIST) is None
    bad = tmp_path / "nan.json"
    bad.write_text('{"canvas_width": 512, "canvas_height": 512, "people": [{"pose_keypoints_2d": [NaN]}]}')
    assert not tab.open_pose(str(bad))
    assert w.last_error == "The pose nan.json is not valid JSON (NaN is not a number JSON allows)."
    assert any(isinstance(d, QMessageBox) and d.isVisible() and d.text() == w.last_error for d in w._dialogs)
    assert editor.point(0, L_WRIST) is None, "the pose is as it was"
    # A picture dropped in is the reference; a broken one is a sentence.
    from PIL import Image

    Image.new("RGB", (40, 60), (200, 100, 50)).save(tmp_path / "ref.png")
    tab.drop_file(str(tmp_path / "ref.png"))
    assert editor.reference == str(tmp_path / "ref.png") and tab.canvas.reference.width() == 40
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert not tab.set_reference(str(tmp_path / "broken.png"))
    assert "broken.png is not a picture" in w.last_error and editor.reference == str(tmp_path / "ref.png")


def test_use_this_pose_set_from_the_strip_generates_one_named_image_per_pose(qtbot, studio, tmp_path):
    from asset_studio.core.library import read_job

    w = studio
    tab, badge = w.pose_tab, w.create_panel.pose_badge
    w.set_model(str(tmp_path / "tiny-model"))  # the scripted backend never loads it
    w.create_panel.width_spin.setValue(64)
    w.create_panel.height_spin.setValue(64)
    w.create_panel.steps_spin.setValue(2)
    w.create_panel.subject_edit.setText("knight")
    tab.set_combo.setCurrentIndex(tab.set_combo.findData("walk-8"))
    tab.set_combo.activated.emit(tab.set_combo.currentIndex())
    assert tab.strip.count() == 8 and tab.strip.currentRow() == 0
    tab.strip.setCurrentRow(5)  # a click on a thumbnail
    assert tab.editor.name == "walk-5" and tab.pose_set.current == 5
    tab.mirror_btn.click()  # an edit of frame 5 stays in the set
    tab.use_set_btn.click()
    assert w.tabs.currentWidget() is w.create_splitter, "Use takes the artist to Create"
    assert badge.isVisibleTo(w.create_panel) and "Pose set walk-8: one image per pose (8)" in badge.label.text()
    assert "No OpenPose ControlNet yet" in badge.label.text()
    assert w.generate() is None and "OpenPose ControlNet" in w.last_error
    badge.picker.get_btn.click()  # "Get one…": the Models page with the OpenPose ControlNet selected
    assert w.tabs.currentWidget() is w.model_manager
    assert w.model_manager._selected_entry().id == "controlnet-openpose-sd15"
    badge.picker.combo.setEditText(str(tmp_path / "control_openpose"))
    assert w.pose_link.controlnet == str(tmp_path / "control_openpose")
    assert "through the ControlNet control_openpose" in badge.label.text()
    badge.scale_spin.setValue(0.75)
    assert w.form.to_request().controls[0].scale == 0.75
    done = []
    w.job_finished.connect(lambda job_id, paths: done.extend(paths))
    w.generate()
    qtbot.waitUntil(lambda: len(done) == 8, timeout=60_000)
    folder = w.output_dir / "knight-walk-8"
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(f"knight-walk-{i}.png" for i in range(8))
    jobs = [read_job(folder / f"knight-walk-{i}.png") for i in range(8)]
    assert len({j.sampling.seed for j in jobs}) == 1 and jobs[5].source.pose == "walk-5"
    assert all(j.controls[0].type == "pose" and j.controls[0].scale == 0.75 for j in jobs)
    from PIL import Image

    import numpy as np
    from asset_studio.core.pose import scaled
    from asset_studio.core.pose_render import render_pose

    drawn = np.asarray(Image.open(jobs[5].controls[0].image).convert("RGB"))
    assert np.array_equal(drawn, np.asarray(render_pose(scaled(tab.pose_set.frames[5].pose, 64, 64)))), \
        "frame 5 as the artist edited it"
    # Create keeps what it was handed; the Pose tab says when the artist has edited since.
    assert tab.link_label.text().startswith("Create follows: Pose set walk-8")
    tab.editor.move_joint(0, NECK, 100, 100)
    qtbot.waitUntil(lambda: "as it was when you pressed Use" in tab.link_label.text(), timeout=2000)
    assert w.pose_link.frames[5].pose != tab.pose_set.frames[5].pose
    tab.use_set_btn.click()
    assert tab.link_label.text().startswith("Create follows:") and w.pose_link.frames[5].pose == tab.pose_set.frames[5].pose
    badge.remove_btn.click()
    assert not badge.isVisibleTo(w.create_panel) and w.form.to_request().controls == []
    assert tab.link_label.text() == "Create does not follow a pose now."


def test_pose_file_dialogs_start_in_the_output_and_models_folders(qtbot, studio, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    asked = {}

    def capture(parent, title, start="", *rest, **kw):
        asked[title] = str(start)
        return ("", "")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(capture))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(capture))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda p, t, s="", *a, **k: capture(p, t, s)[0]))
    tab = studio.pose_tab
    tab._open_dialog()
    tab._save_dialog()
    tab._open_reference_dialog()
    tab._open_set_dialog()
    studio.create_panel.pose_badge.picker.browse()
    out = str(studio.output_dir)
    assert asked["Open pose"] == asked["Reference picture"] == asked["Open pose set folder"] == out
    assert asked["Save pose"] == str(studio.output_dir / "front.json")
    assert asked["ControlNet model"] == str(studio.models_dir)
