"""The GUI's state objects (gui/model) driven without a window: the Create form → AssetRequest,
the automatic size, the debounced prompt preview, the job queue, the layout state, the library."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from asset_studio.core.layout import Box, Layout, TextElement  # noqa: E402
from asset_studio.errors import UserError  # noqa: E402
from gui_fixtures import form, home  # noqa: E402,F401  (shared fixtures)


def _play_layout() -> Layout:
    return Layout(512, 256, "#000000", [TextElement("PLAY", Box(32, 32, 448, 192), size=96)])


# --- the Create form -----------------------------------------------------------------------


def test_form_to_request_carries_every_setting_and_prepares_the_job(form):
    from asset_studio.core.request import prepare

    form.style_id = "pixel-art"
    form.template_id = "ui-button"
    assert "text" in form.declared_fields()
    form.subject = "wooden"
    form.set_field("text", "PLAY")
    form.extra_prompt = "gold   trim"
    form.negative = "blurry hands"
    form.steps = 9
    form.cfg_scale = 5.5
    form.sampler = "DPM++ 2M Karras"
    form.count = 2
    form.model = "some/model"
    request = form.to_request()
    assert request.style.id == "pixel-art" and request.template.id == "ui-button"
    assert request.subject == "wooden" and request.fields == {"text": "PLAY"} and request.extra_prompt == "gold trim"
    assert request.model == "some/model"
    o = request.overrides
    assert (o.steps, o.cfg_scale, o.sampler, o.count) == (9, 5.5, "DPM++ 2M Karras", 2)
    assert o.negative == "blurry hands"
    assert o.seed is None, "an unlocked seed is the style's to choose"
    assert o.init_image is None and o.denoise is None
    assert request.layout is None and request.controls == []

    form.seed = 77
    form.seed_locked = True
    form.init_image = "start.png"
    form.denoise = 0.45
    o = form.to_request().overrides
    assert (o.seed, o.init_image, o.denoise) == (77, "start.png", 0.45)

    form.init_image = ""
    job = prepare(form.to_request(), preview=True)
    text = job.prompt.text
    assert "PLAY" in text and "pixel art" in text and text.endswith("gold trim")
    negative = job.prompt.negative
    assert "blurry hands" in negative and "anti-aliasing" in negative, "the artist's negative is added to the style's"


def test_a_plain_prompt_without_style_is_the_subject(form):
    form.extra_prompt = "a red potion"
    request = form.to_request()
    assert (request.subject, request.extra_prompt, request.style, request.template) == ("a red potion", "", None, None)


def test_style_change_fills_parameters_and_keeps_a_locked_seed(form):
    form.seed = 5
    form.seed_locked = True
    form.style_id = "pixel-art"
    form.template_id = "ui-button"
    assert (form.steps, form.cfg_scale, form.sampler) == (25, 7.5, "Euler a")
    assert form.seed == 5
    form.seed_locked = False
    form.seed_mode = "style"
    form.template_id = "icon"
    assert form.seed != 5, "under the style's policy, an unlocked seed shows the style's choice"
    form.style_id = "no-such-style"
    assert form.style_id == "" and form.to_request().style is None


def test_size_is_automatic_until_the_artist_sets_it(form):
    form.style_id = "pixel-art"
    form.template_id = "ui-button"
    assert form.size_auto
    assert form.width / form.height == pytest.approx(3.0, rel=0.05), "the style's size is shown"
    request = form.to_request()
    assert (request.overrides.width, request.overrides.height) == (None, None)

    form.set_size(256, 128)
    assert not form.size_auto
    form.template_id = "icon"  # another template does not undo the artist's size
    assert (form.width, form.height) == (256, 128)
    assert (form.to_request().overrides.width, form.to_request().overrides.height) == (256, 128)

    form.set_size_auto()
    assert form.size_auto and form.width == form.height  # the icon template is square
    assert form.to_request().overrides.width is None


def test_prompt_preview_is_computed_once_per_burst_of_changes(form, qtbot, monkeypatch):
    from asset_studio.gui.model import create_form as module

    form.style_id = "pixel-art"
    form.template_id = "icon"
    calls = []
    real = module.prepare

    def counting(request, out_dir=None, *, preview=False):
        if request.subject.startswith("quokka"[:1]) and request.subject in ("quokka", "quokk", "quok", "quo", "qu", "q"):
            calls.append(preview)  # this form's (another test's form may still have a timer running)
        return real(request, out_dir, preview=preview)

    monkeypatch.setattr(module, "prepare", counting)
    with qtbot.waitSignal(form.prompt_preview_changed, timeout=5000) as blocker:
        for i in range(1, len("quokka") + 1):  # typed, one key at a time
            form.subject = "quokka"[:i]
        form.extra_prompt = "glowing"
        form.steps = 12  # not part of the prompt
    assert calls == [True], "one preview for the whole burst, computed with preview=True"
    assert blocker.args[0] == form.prompt_preview
    assert form.prompt_preview.startswith("→ ") and "quokka" in form.prompt_preview and "glowing" in form.prompt_preview

    form.seed = 99
    form.count = 3
    assert not form.preview_pending(), "seed and batch count do not touch the prompt"
    form.subject = ""
    form.flush_preview()
    assert form.prompt_preview == "" and calls == [True], "no subject: no prompt to show, nothing prepared"


def test_prompt_preview_shows_a_bad_field_as_its_sentence(form):
    form.template_id = "ui-button"
    form.subject = "x" * 600
    form.flush_preview()
    assert "longer than" in form.prompt_preview and not form.prompt_preview.startswith("→")


def test_lora_weight_becomes_a_scale_of_the_style_weights(form, home):
    import numpy as np
    from safetensors.numpy import save_file

    from asset_studio.core.stylepack import user_styles_dir

    folder = user_styles_dir() / "glowing"
    (folder / "loras").mkdir(parents=True)
    save_file({"lora_unet_x.lora_down.weight": np.ones((2, 2), np.float16)}, str(folder / "loras" / "glow.safetensors"))
    (folder / "style.toml").write_text(
        'id = "glowing"\nname = "Glowing"\nfamily = "sd15"\nprompt = "glowing {subject}"\n'
        '[[loras]]\nfile = "loras/glow.safetensors"\nweight = 0.8\n', encoding="utf-8")
    form.reload_styles()
    form.style_id = "glowing"
    assert form.has_lora() and form.lora_weight == 0.8
    form.subject = "orb"
    assert form.to_request().lora_scale is None, "untouched: the style's own weights"
    form.lora_weight = 0.4
    assert form.to_request().lora_scale == pytest.approx(0.5)


# --- the layout state ----------------------------------------------------------------------


def test_layout_state_contributes_layout_and_controlnet_to_the_request(form, home):
    from asset_studio.core.request import prepare

    state = form.layout
    form.subject = "button"
    form.model = "some/model"
    assert form.to_request().controls == [], "not followed: nothing added"
    state.follow = True
    with pytest.raises(UserError, match="ControlNet model"):
        form.to_request()
    state.controlnet = "my/controlnet"
    with pytest.raises(UserError, match="empty"):
        form.to_request()
    state.set_layout(_play_layout())
    state.scale, state.start, state.end = 0.8, 0.1, 0.9
    state.set_control("canny", {"low_threshold": 50, "high_threshold": 150})
    request = form.to_request()
    assert request.layout == _play_layout()
    (unit,) = request.controls
    assert (unit.model, unit.type, unit.scale, unit.start, unit.end) == ("my/controlnet", "canny", 0.8, 0.1, 0.9)
    assert request.control_options == {"low_threshold": 50, "high_threshold": 150}
    assert "follow" not in form.prompt_preview  # the preview never needs the layout

    # The template's ControlNet hint becomes the control type when a layout can draw it.
    form.template_id = "icon"
    assert state.control_type == "lineart"
    form.template_id = "character-sprite"  # "pose" is drawn by a pose editor, not a layout
    assert state.control_type == "lineart"

    # prepare() renders the control image into OUT/.controls at the job's size.
    form.template_id = ""
    form.set_size(128, 64)
    state.set_control("canny", {"low_threshold": 50, "high_threshold": 150})
    job = prepare(form.to_request(), home / "out")
    (unit,) = job.controls
    assert (unit.model, unit.type, unit.scale, unit.start, unit.end) == ("my/controlnet", "canny", 0.8, 0.1, 0.9)
    image = Path(unit.image)
    assert image.parent == home / "out" / ".controls"
    with Image.open(image) as im:
        assert im.size == (job.sampling.width, job.sampling.height) == (128, 64)


# --- the queue -----------------------------------------------------------------------------


class Recorder:
    """Plays the worker's part: records what the queue asks of it."""

    def __init__(self):
        self.calls = []

    def cancel(self, job_id=None):
        self.calls.append(("cancel", job_id))

    def move(self, job_id, position):
        self.calls.append(("move", job_id, position))
        return True


def _job(name="potion"):
    from jobs import make_job

    return make_job(model="m", prompt=name, subject=name, steps=4, batch_count=2)


def test_queue_tracks_states_and_reorders_removes_and_cancels(qapp):
    from asset_studio.gui.model.queue import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobQueue

    worker = Recorder()
    queue = JobQueue(worker)
    changes = []
    queue.changed.connect(lambda: changes.append("list"))
    queue.entry_changed.connect(changes.append)
    for job_id, name in ((1, "a"), (2, "b"), (3, "c"), (4, "d")):
        queue.on_queued(job_id, _job(name))
    assert [e.state for e in queue.entries()] == [QUEUED] * 4 and queue.entry(1).total == 8  # 4 steps x 2 images
    queue.on_started(1)
    queue.on_loading(1, "Loading the model…")
    queue.on_step(1, 3, 8)
    running = queue.running()
    assert (running.job_id, running.state, running.step, running.status) == (1, RUNNING, 3, "Image 1 of 2 · step 3 / 4")
    queue.on_step(1, 6, 8)
    assert (running.image_index, running.image_count, running.status) == (2, 2, "Image 2 of 2 · step 2 / 4")
    assert running.label == "a"

    assert queue.move(4, 0)
    assert [e.job_id for e in queue.waiting()] == [4, 2, 3] and worker.calls[-1] == ("move", 4, 0)
    assert [e.job_id for e in queue.entries()] == [1, 4, 2, 3]
    assert not queue.move(1, 2), "a running job keeps its place"
    assert queue.move(4, 99) and [e.job_id for e in queue.waiting()] == [2, 3, 4]

    # The worker's order wins: a job it has just taken stays ahead while its 'started' is on the way.
    queue.on_queued(5, _job("e"))
    worker.pending_ids = lambda: [5, 3, 4]  # the worker has taken 2 already, and put 5 first
    assert queue.move(5, 0) and [e.job_id for e in queue.waiting()] == [2, 5, 3, 4]
    queue.remove(5)
    del worker.pending_ids

    queue.cancel(2)
    assert worker.calls[-1] == ("cancel", 2)
    queue.on_cancelled(2)
    assert queue.entry(2).state == CANCELLED
    queue.remove(3)  # still queued: cancelled at the worker, gone from the list
    assert worker.calls[-1] == ("cancel", 3) and queue.entry(3) is None
    queue.on_cancelled(3)  # the worker's answer arrives after the removal: ignored
    assert queue.entry(3) is None

    queue.on_image_saved(1, "/out/1.png")
    queue.on_finished(1, ["/out/1.png", "/out/2.png"])
    queue.on_started(4)
    queue.on_failed(4, "The model file is corrupt.")
    assert (queue.entry(1).state, queue.entry(1).paths) == (DONE, ["/out/1.png", "/out/2.png"])
    assert (queue.entry(4).state, queue.entry(4).status) == (FAILED, "The model file is corrupt.")
    assert not queue.busy()
    calls = len(worker.calls)
    queue.remove(1)  # a finished job is forgotten, nothing cancelled
    assert len(worker.calls) == calls and queue.entry(1) is None
    queue.clear_finished()
    assert queue.entries() == []
    assert "list" in changes and 1 in changes


# --- the library ---------------------------------------------------------------------------


def test_library_lists_results_newest_first_and_trashes(home, qapp):
    from asset_studio.core.library import save_image
    from asset_studio.gui.model.library import TRASH_DIR, Library
    from jobs import make_job

    out = home / "out"
    job = make_job(model="m", prompt="gem", width=16, height=16)
    paths = [save_image(Image.new("RGB", (16, 16), "red"), job, out, seed=s) for s in (1, 2, 3)]
    for i, path in enumerate(paths):
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    (out / ".controls").mkdir()
    Image.new("RGB", (8, 8)).save(out / ".controls" / "lineart.png")
    Image.new("RGB", (8, 8)).save(out / "control-lineart.png")
    (out / "notes.txt").write_text("not an image")
    (out / "sprites").mkdir(exist_ok=True)
    sprite = out / "sprites" / "gem.png"
    Image.new("RGBA", (8, 8)).save(sprite)
    os.utime(sprite, (999_999, 999_999))

    library = Library(out)
    events = []
    library.reset.connect(lambda: events.append("reset"))
    library.inserted.connect(lambda row: events.append(("inserted", row)))
    library.removed.connect(lambda row: events.append(("removed", row)))
    library.refresh()
    assert library.paths() == [paths[2], paths[1], paths[0], sprite]
    assert events == ["reset"]

    new = save_image(Image.new("RGB", (16, 16), "blue"), job, out, seed=4)
    library.add(new)
    library.add(new)  # twice: listed once
    assert library.path(0) == new and len(library) == 5 and events[-1] == ("inserted", 0)

    moved = library.trash([0, 2])
    assert moved == [new, paths[1]] and [e for e in events if e[0] == "removed"] == [("removed", 2), ("removed", 0)]
    assert not new.exists() and (out / TRASH_DIR / new.name).is_file()
    assert library.paths() == [paths[2], paths[0], sprite]
    library.refresh()
    assert library.paths() == [paths[2], paths[0], sprite], "the trash is not part of the library"

    library.set_output_dir(home / "empty")
    assert library.paths() == []


# --- the PySide6 guard ---------------------------------------------------------------------


def test_many_signals_do_not_exhaust_true_references():
    """PySide6 6.12.0's emit() drops a reference to True; the gui package guards it, so a long
    session (here 20 000 emits, far more than True's own count) does not abort the interpreter."""
    import subprocess
    import sys

    code = ("import asset_studio.gui\n"
            "from PySide6.QtCore import QObject, Signal\n"
            "class A(QObject):\n    s = Signal(int)\n"
            "a = A()\nfor i in range(20000):\n    a.s.emit(i)\nprint('alive')\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "alive", done.stderr[-400:]


def test_many_void_calls_do_not_exhaust_none_references():
    """PySide6 6.12.0 returns None from every C++ void method without a reference of its own: a
    painted checkerboard or a progress bar makes tens of thousands of such calls. Guarded too."""
    import subprocess
    import sys

    code = ("import sys\n"
            "n = sys.getrefcount(None) + 20000  # more calls than None has references, before the guard\n"
            "import asset_studio.gui\n"
            "from PySide6.QtWidgets import QApplication\n"
            "from PySide6.QtGui import QColor, QImage, QPainter\n"
            "from PySide6.QtCore import QRectF\n"
            "app = QApplication([])\n"
            "image = QImage(64, 64, QImage.Format.Format_RGBA8888)\n"
            "p = QPainter(image)\n"
            "for i in range(n):\n    p.fillRect(QRectF(0, 0, 4, 4), QColor(1, 2, 3))\n"
            "p.end()\nprint('alive')\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "alive", done.stderr[-400:]


def test_extra_loras_from_the_create_tab_reach_the_job(qapp, tmp_path, tiny_sd15_dir):
    """The Create tab's LoRA list does what --lora PATH:WEIGHT does on the command line."""
    from asset_studio.cli import build_parser
    from asset_studio.commands.generate import build_request
    from asset_studio.core.request import prepare
    from asset_studio.gui.model.create_form import CreateForm
    from lora_factory import make_kohya_lora

    lora = make_kohya_lora(tmp_path / "inky.safetensors", "sd15")
    form = CreateForm()
    form.style_id, form.template_id = "", ""
    form.subject, form.model, form.seed, form.seed_locked = "a castle", str(tiny_sd15_dir), 3, True
    seen = []
    form.changed.connect(seen.append)
    form.add_lora(str(lora), 0.8)
    form.add_lora(f"{lora}:0.3")  # as typed on the command line
    form.set_lora_weight(1, 0.4)
    assert [(l.name, l.weight) for l in form.loras] == [("inky", 0.8), ("inky", 0.4)] and "loras" in seen
    form.remove_lora(1)
    job = prepare(form.to_request())
    cli = prepare(build_request(build_parser().parse_args(
        ["generate", "a castle", "--model", str(tiny_sd15_dir), "--seed", "3", "--lora", f"{lora}:0.8"])))
    assert job.model.loras == cli.model.loras and job.model.loras[0].weight == 0.8
