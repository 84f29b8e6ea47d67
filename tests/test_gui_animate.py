"""The Animate tab without a model: its form builds the request `asset-studio animate` builds, and
its player fills the frame strip as a scripted backend's frames arrive, plays them at the job's
fps, keeps them on cancel, and exports the folder as one named animation."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from asset_studio.errors import UserError  # noqa: E402
from gui_fixtures import form, home  # noqa: E402,F401  (shared fixtures)


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "models" / "toon.safetensors"
    adapter = tmp_path / "models" / "mm-sd15"
    lora = tmp_path / "models" / "zoom-in.safetensors"
    cn = tmp_path / "models" / "cn-openpose"
    for folder in (adapter, cn):
        folder.mkdir(parents=True)
    model.write_bytes(b"")
    lora.write_bytes(b"")
    return {"model": model, "adapter": adapter, "lora": lora, "cn": cn}


def _animate_form(form, files):
    from asset_studio.gui.model.animate_form import AnimateForm

    form.subject = "slime bouncing"
    form.model = str(files["model"])
    form.set_size(64, 64)
    form.seed, form.seed_locked = 77, True
    af = AnimateForm(form)
    af.frames, af.fps, af.loop = 12, 10.0, True
    af.motion_adapter = str(files["adapter"])
    af.add_motion_lora(f"{files['lora']}:0.7")
    return af


def test_the_form_builds_the_job_the_animate_command_builds(form, files, tmp_path):
    from asset_studio.cli import build_parser
    from asset_studio.commands.animate import request_for
    from asset_studio.core.animation import animatediff_settings
    from asset_studio.core.request import prepare

    af = _animate_form(form, files)
    af.pose_set, af.controlnet, af.control_scale = "walk-8", str(files["cn"]), 0.8
    af.previews = ("gif", "apng", "webp")
    job = af.build_job(tmp_path / "out")
    a = job.animation
    assert (a.frames, a.fps, a.loop, a.method) == (12, 10.0, True, "animatediff")
    assert a.motion_adapter == str(files["adapter"]) and a.previews == ["gif", "apng", "webp"]
    assert [(Path(m.path).name, m.weight) for m in a.motion_loras] == [("zoom-in.safetensors", 0.7)]
    assert job.output == "animation" and job.init is None and job.sampling.seed == 77
    (unit,) = job.controls
    assert unit.type == "pose" and unit.scale == 0.8 and len(list(Path(unit.image).glob("*.png"))) == 12

    args = build_parser().parse_args([
        "animate", "slime bouncing", "--model", str(files["model"]), "--motion-adapter", str(files["adapter"]),
        "--frames", "12", "--fps", "10", "--loop", "--motion-lora", f"{files['lora']}:0.7", "--pose-set", "walk-8",
        "--controlnet", str(files["cn"]), "--control-scale", "0.8", "--size", "64x64", "--seed", "77",
        "--steps", str(form.steps), "--cfg", str(form.cfg_scale), "--sampler", form.sampler,
        "--preview", "gif", "--preview", "apng", "--preview", "webp"])
    anim = animatediff_settings(motion_adapter=args.motion_adapter, frames=args.frames, fps=args.fps, loop=True,
                                motion_loras=af.motion_loras, pose_set=args.pose_set, controlnets=args.controlnet)
    cli_job = prepare(request_for(args, anim, "animation", model=args.model), tmp_path / "out")
    assert cli_job.animation == job.animation
    assert cli_job.controls == job.controls and cli_job.sampling == job.sampling and cli_job.prompt == job.prompt


def test_choices_that_do_not_go_together_are_one_sentence(form, files, tmp_path):
    af = _animate_form(form, files)
    af.motion_adapter = ""
    with pytest.raises(UserError, match="needs a motion adapter"):
        af.to_request()
    af.motion_adapter = str(files["adapter"])
    af.pose_set = "walk-8"
    with pytest.raises(UserError, match="OpenPose ControlNet"):
        af.to_request()


def test_picture_to_video_takes_the_picture_its_size_and_motion(form, files, tmp_path):
    image = tmp_path / "knight.png"
    Image.new("RGBA", (96, 64), (10, 20, 30, 255)).save(image)
    af = _animate_form(form, files)
    af.mode = "svd"
    af.svd_image, af.svd_model = str(image), str(tmp_path / "svd")
    af.motion, af.noise_aug, af.decode_chunk, af.frames = 0.3, 0.1, 4, 14
    request = af.to_request(seed=5)
    a = request.animation
    assert a.method == "svd" and a.frames == 14 and not a.loop and not a.motion_loras
    assert (a.svd.motion_bucket, a.svd.noise_aug, a.svd.decode_chunk) == (round(0.3 * 255), 0.1, 4)
    o = request.overrides
    assert (o.width, o.height, o.init_image, o.cfg_scale, o.seed) == (512, 344, str(image), 3.0, 5)
    assert request.model == str(tmp_path / "svd") and request.style is None and request.subject == "slime bouncing"


# --- the player, through the window, the worker and a scripted backend -------------------------------


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSET_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    from asset_studio.gui.app import create_app
    from asset_studio.gui.main_window import MainWindow
    from scripted_backend import ScriptedBackend

    create_app([])
    (tmp_path / "models").mkdir(exist_ok=True)
    w = MainWindow(output_dir=tmp_path / "out", models_dir=tmp_path / "models",
                   backend_factory=lambda device: ScriptedBackend(frame_delay=0.04))
    qtbot.addWidget(w)
    yield w
    w.close()


def _start(window, files, frames=8):
    window.form.subject = "slime bouncing"
    window.form.model = str(files["model"])
    window.form.set_size(32, 32)
    window.form.steps = 1
    af = window.animate_form
    af.frames, af.fps, af.loop, af.motion_adapter = frames, 12.0, True, str(files["adapter"])
    return window.animate()


def test_the_strip_fills_as_frames_arrive_then_plays_at_the_jobs_fps(qtbot, window, files):
    player, seen, previews = window.player, [], []
    player.frames_changed.connect(lambda: seen.append((len(player.arrived()), player.current)))
    player.preview_changed.connect(lambda: previews.append((player.image().width(), player.status())))
    with qtbot.waitSignal(window.job_finished, timeout=20_000):
        job_id = _start(window, files)
    assert job_id == player.job_id and player.state == "done"
    assert previews == [(8, "0 / 8 · sampling: a preview of the first frame")], "the step preview until frames come"
    assert player.preview is None, "frames replace the preview"
    arrived = [n for n, _ in seen if n]
    assert arrived == list(range(1, 9)), "one more frame per arrival, in order"
    assert [cur for n, cur in seen if n] == list(range(8)), "while not playing, the newest frame is shown"
    folder = player.folder()
    assert sorted(p.name for p in folder.glob("*.png")) == [f"slime-bouncing-{i:03d}.png" for i in range(8)]
    assert (folder.parent / f"{folder.name}.apng").is_file() and player.name() == "slime-bouncing"
    assert window.animate_tab.export_btn.isEnabled() and "8 / 8 · 12 fps · loop" in window.animate_tab.frame_label.text()

    player.seek(6)
    player.play()
    assert player.playing and player._timer.interval() == round(1000 / 12)
    with qtbot.waitSignal(player.current_changed, timeout=2000) as got:
        pass
    assert got.args == [7]
    with qtbot.waitSignal(player.current_changed, timeout=2000) as got:
        pass
    assert got.args == [0], "playback wraps round"
    window.animate_tab.play_btn.click()  # Pause
    assert not player.playing and window.animate_tab.play_btn.text() == "Play"

    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    strip = window.animate_tab.strip
    strip.resize(400, 22)
    QTest.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(int(400 * 2.5 / 8), 10))  # the third cell
    assert player.current == 2 and not player.follow
    assert window.animate_tab.frame_view._image is player.images[2]


def test_cancel_keeps_the_frames_that_arrived(qtbot, window, files):
    player = window.player
    _start(window, files, frames=40)
    qtbot.waitUntil(lambda: len(player.arrived()) >= 3, timeout=20_000)
    with qtbot.waitSignal(window.job_cancelled, timeout=20_000):
        window.animate_tab.cancel_btn.click()
    have = player.arrived()
    assert player.state == "cancelled" and 3 <= len(have) < 40
    assert have == list(range(len(have)))
    assert len(list(player.folder().glob("*.png"))) == len(have), "every frame shown is on disk"
    player.scrub(39)  # ahead of what arrived: the last frame that is in
    assert player.image() is player.images[have[-1]] and not player.follow


def test_export_to_sheet_names_the_animation_and_sets_its_fps(qtbot, window, files, tmp_path):
    with qtbot.waitSignal(window.job_finished, timeout=20_000):
        _start(window, files, frames=4)
    window.export_animation()
    dialog = window.sheet_dialog
    assert dialog.paths == [window.player.folder()]
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("godot4"))
    dialog.out_edit.setText(str(tmp_path / "sheets" / "slime.png"))
    with qtbot.waitSignal(dialog.model.preview_ready, timeout=20_000):
        dialog.model.refresh_preview()
    (anim,) = dialog.model.animations()  # the tab's name and speed, as if typed in its row
    assert (anim.name, anim.fps) == ("slime-bouncing", 12.0)
    dialog.model.edit_animation(anim.found, name="slime-idle", fps=6.0)
    assert [(a.name, a.fps) for a in dialog.model.animations()] == [("slime-idle", 6.0)]
    with qtbot.waitSignal(dialog.exported, timeout=20_000):
        dialog.start()
    tres = (tmp_path / "sheets" / "slime.tres").read_text()
    assert '&"slime-idle"' in tres and '"speed": 6.0' in tres and '"loop": true' in tres
    dialog.reject()
    window.save_settings()  # the adapter is kept for the next session, as the model is
    from asset_studio.gui.settings import Settings

    assert Settings().last_motion_adapter() == str(files["adapter"])


def test_the_animate_commands_sentences_read_in_the_windows_words(form, files):
    from asset_studio.gui.model.wording import gui_words

    af = _animate_form(form, files)
    cases = [("motion_adapter", "", "the Adapter box of the Animate tab"),
             ("pose_set", "walk-8", "the ControlNet box of the Animate tab")]
    for name, value, words in cases:
        setattr(af, name, value)
        with pytest.raises(UserError) as err:
            af.to_request()
        text = gui_words(str(err.value))
        assert words in text and "--" not in text, text
        af.motion_adapter, af.pose_set = str(files["adapter"]), ""
    af.controlnet = str(files["cn"])
    with pytest.raises(UserError) as err:
        af.to_request()
    assert gui_words(str(err.value)) == "An animation's ControlNet follows a pose sequence here: choose a pose set."
    af.controlnet, af.mode = "", "svd"
    with pytest.raises(UserError) as err:
        af.to_request()
    assert gui_words(str(err.value)) == "Image to video needs both the picture and the SVD model."
