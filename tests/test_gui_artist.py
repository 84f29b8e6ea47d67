"""Issue 19, the window an artist lives in, through the GUI models (no window): one library entry
per asset, the gallery's sheet export, seeds, values the artist set, the layout link, variations,
the viewer's state, progress and the token counter."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from asset_studio.core.layout import Box, Layout, TextElement  # noqa: E402
from asset_studio.errors import UserError  # noqa: E402
from gui_fixtures import form, home  # noqa: E402,F401  (shared fixtures)


def _asset(out: Path, seed: int, colour="red", sprite=True, folder: Path | None = None, size=64) -> tuple[Path, Path | None]:
    """A raw image with its job, and (like service.save_result) its sprite under sprites/ by the same name."""
    from asset_studio.core.library import SPRITES_DIR, save_image
    from jobs import make_job

    job = make_job(model="m", prompt="gem", width=size, height=size)
    raw = save_image(Image.new("RGB", (size, size), colour), job, folder or out, seed=seed)
    if not sprite:
        return raw, None
    (raw.parent / SPRITES_DIR).mkdir(exist_ok=True)
    cut = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    cut.paste(Image.new("RGBA", (size // 2, size // 2), colour), (size // 4, size // 4))
    path = raw.parent / SPRITES_DIR / raw.name
    cut.save(path)
    return raw, path


# --- the library: one entry per asset ---------------------------------------------------------


def test_library_has_one_entry_per_asset_sprite_first_sheets_apart_and_undoable_trash(home):
    from asset_studio.gui.model.library import TRASH_DIR, Library

    out = home / "out"
    out.mkdir()
    a_raw, a_sprite = _asset(out, 1)
    b_raw, _ = _asset(out, 2, "blue", sprite=False)
    run = out / "knight-walk"
    run.mkdir()
    c_raw, c_sprite = _asset(out, 3, "green", folder=run)
    for i, p in enumerate([a_raw, a_sprite, b_raw, c_raw, c_sprite]):
        os.utime(p, (1_000_000 + i, 1_000_000 + i))
    (out / "sheets").mkdir()
    Image.new("RGBA", (32, 32)).save(out / "sheets" / "sheet.png")
    Image.new("RGBA", (32, 32)).save(out / "atlas.png")
    (out / "atlas.json").write_text("{}")  # a page with its engine data beside it
    (out / ".controls").mkdir()
    Image.new("RGB", (8, 8)).save(out / ".controls" / "lineart.png")

    library = Library(out)
    library.refresh()
    assert len(library) == 3, "raw image and sprite are one entry; sheets and control images are not in the grid"
    assert library.paths() == [c_sprite, b_raw, a_sprite], "the sprite is shown where one exists"
    entry = library.entry(2)
    assert (entry.raw, entry.sprite, entry.kind) == (a_raw, a_sprite, "image")
    assert library.entry(0).group == "knight-walk" and library.entry(2).group == ""
    assert library.export_paths([0, 1, 2]) == [c_sprite, b_raw, a_sprite], "a sheet packs the sprites"

    library.set_show_raw(True)
    assert library.paths() == [c_raw, b_raw, a_raw]
    assert library.export_paths([2], raw=True) == [a_raw]
    library.set_show_raw(False)

    library.set_show_sheets(True)
    kinds = {p.name: library.entry(i).kind for i, p in enumerate(library.paths())}
    assert kinds["sheet.png"] == "sheet" and kinds["atlas.png"] == "sheet" and len(library) == 5
    sheet_rows = [i for i in range(len(library)) if library.entry(i).kind == "sheet"]
    assert library.export_paths(sheet_rows) == [], "a sheet is never packed into another"
    library.set_show_sheets(False)

    # delete moves raw and sprite to the trash; undo puts both back
    moved = library.trash([2])
    assert set(moved) == {a_raw, a_sprite} and not a_raw.exists() and not a_sprite.exists()
    assert len(list((out / TRASH_DIR).iterdir())) == 2 and len(library) == 2 and library.can_undo()
    restored = library.undo_trash()
    assert set(restored) == {a_raw, a_sprite} and a_raw.is_file() and a_sprite.is_file()
    assert len(library) == 3 and a_sprite in library.paths() and not library.can_undo()

    # a new image and its sprite arrive as one entry at the top
    d_raw, d_sprite = _asset(out, 4, "yellow")
    library.add(d_raw)
    library.add(d_raw, d_sprite)
    assert library.path(0) == d_sprite and len(library) == 4


# --- the sheet export -----------------------------------------------------------------------


def _sprites(folder: Path, n: int = 4, side: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        im.paste(Image.new("RGBA", (side - 8, side - 8), (40 * i, 200, 90, 255)), (4, 4))
        path = folder / f"walk_{i}.png"
        im.save(path)
        paths.append(path)
    return paths


def test_sheet_export_previews_a_near_square_sheet_and_asks_before_replacing(qtbot, home):
    from asset_studio.gui.model.sheet_export import SheetExportModel, foreign_files

    sprites = _sprites(home / "sprites")
    out = home / "out" / "sheets" / "sheet.png"
    model = SheetExportModel(sprites, out)
    with qtbot.waitSignal(model.preview_ready, timeout=10_000) as blocker:
        model.refresh_preview()
    plan = blocker.args[0]
    (w, h), = plan.pages
    assert plan.frames == 4 and max(w, h) <= 2 * min(w, h), f"near-square, not a single column: {w}x{h}"
    assert 0.3 < plan.occupancy <= 1.0 and plan.image is not None and not plan.image.isNull()
    assert plan.animations == [("walk", 4)] and "4 frames on 1 page" in plan.summary()

    # options repack through the debounce; power of two shows in the size
    with qtbot.waitSignal(model.preview_ready, timeout=10_000) as blocker:
        model.set_option("pot", True)
    pw, ph = blocker.args[0].pages[0]
    assert pw & (pw - 1) == 0 and ph & (ph - 1) == 0

    model.set_option("format", "godot4")
    model.set_option("fps", 12.0)
    with qtbot.waitSignal(model.exported, timeout=20_000) as blocker:
        model.export()
    files, _warnings = blocker.args
    assert out.is_file() and any(p.suffix == ".tres" for p in files)
    assert "12" in next(p for p in files if p.suffix == ".tres").read_text()

    # a file the export did not write: the artist is asked, and yes replaces it
    foreign = home / "out" / "sheets" / "mine.png"
    Image.new("RGB", (4, 4)).save(foreign)
    model.set_option("out", foreign)
    assert foreign_files(foreign) == [foreign]
    asked = []
    model.confirm_overwrite.connect(asked.append)
    with qtbot.waitSignal(model.confirm_overwrite, timeout=20_000):
        model.export()
    assert "mine.png" in asked[0] and Image.open(foreign).size == (4, 4), "nothing replaced before the yes"
    with qtbot.waitSignal(model.exported, timeout=20_000):
        model.export(force=True)
    assert Image.open(foreign).size != (4, 4)

    # another format over the same name: the earlier format's files are named, not left silently
    model.set_option("out", out)
    model.set_option("format", "texturepacker-hash")
    with qtbot.waitSignal(model.exported, timeout=20_000) as blocker:
        model.export()
    files, warnings = blocker.args
    assert any("sheet.tres" in w for w in warnings)
    assert len(json.loads(next(p for p in files if p.suffix == ".json").read_text())["frames"]) == 4


def test_duplicate_frames_are_reported_in_the_preview(qtbot, home):
    from asset_studio.gui.model.sheet_export import SheetOptions, plan_sheet

    a, b = _sprites(home / "s", 2)
    copy = home / "s" / "copy.png"
    copy.write_bytes(a.read_bytes())
    plan = plan_sheet([a, b, copy], SheetOptions(out=home / "x.png"), with_image=False)
    assert len(plan.duplicates) == 1 and sorted(plan.duplicates[0]) == ["copy.png", "walk_0.png"]
    assert "1 duplicate" in plan.summary()


# --- seeds ------------------------------------------------------------------------------------


def test_unlocked_means_a_new_seed_every_press_and_the_policy_is_shown(form, home):
    form.style_id = "pixel-art"  # per-asset policy
    form.subject = "health potion"
    assert form.style_seed_policy() == "per-asset"
    assert form.seed_mode == "new" and "new random seed on every press" in form.seed_rule()
    assert "(per-asset) is not used" in form.seed_rule()
    seeds = {form.to_request(seed=form.press_seed()).overrides.seed for _ in range(3)}
    assert len(seeds) == 3, "three presses, three seeds"

    form.seed_mode = "style"
    assert "same subject always gets the same seed" in form.seed_rule()
    from asset_studio.core.request import prepare

    jobs = [prepare(form.to_request(seed=form.press_seed()), preview=True) for _ in range(2)]
    assert jobs[0].sampling.seed == jobs[1].sampling.seed == form.seed, "the style's per-asset seed, shown"

    form.seed, form.seed_locked = 99, True
    assert form.press_seed() == 99 and form.seed_rule().startswith("Locked")

    form.seed_locked = False
    form.style_id = ""  # no style: no policy, a new seed every press
    assert form.style_seed_policy() == "" and form.press_seed() != form.press_seed()


def test_template_and_style_changes_keep_what_the_artist_set(form):
    form.style_id = "pixel-art"
    form.template_id = "icon"
    style_steps = form.steps
    form.steps = style_steps + 7  # the artist's
    form.set_size(320, 192)
    form.template_id = "ui-button"
    form.style_id = "cel-shaded"
    assert form.steps == style_steps + 7 and (form.width, form.height) == (320, 192)
    assert form.artist_set() == {"steps"}
    cfg_before = form.cfg_scale
    form.style_id = "pixel-art"
    assert form.cfg_scale != cfg_before or form.cfg_scale == 7.5, "values the artist did not set follow the style"
    form.reset_to_style()
    assert form.artist_set() == set() and form.steps == style_steps and form.size_auto


# --- the layout and the Create tab -------------------------------------------------------------


def test_the_layout_text_fills_the_template_and_a_size_fix_is_offered(form, home):
    form.style_id = "pixel-art"
    form.template_id = "ui-button"
    form.subject = "wooden"
    state = form.layout
    state.set_layout(Layout(512, 256, "#000000", [TextElement("PLAY", Box(32, 32, 448, 192), size=96)]))
    state.controlnet = "some/controlnet"
    assert form.field_values() == {}, "not followed: the layout does not fill anything"
    state.follow = True
    assert form.field_values() == {"text": "PLAY"} and form.to_request().fields == {"text": "PLAY"}
    form.set_field("text", "QUIT")
    assert form.field_values() == {"text": "QUIT"}, "the artist's own text wins"
    form.set_field("text", "")

    form.set_size(512, 512)
    form.model = "some/model"
    fix = form.layout_size_fix()
    assert fix is not None and abs(fix[0] / fix[1] - 2.0) < 0.05
    from asset_studio.core.request import prepare

    with pytest.raises(UserError, match=f"{fix[0]}x{fix[1]}"):  # the error names the size the fix sets
        prepare(form.to_request(), home / "out")
    form.set_size(*fix)
    assert form.layout_size_fix() is None
    job = prepare(form.to_request(), home / "out")  # the fixed size passes the aspect check
    assert (job.sampling.width, job.sampling.height) == fix and "PLAY" in job.prompt.text


# --- variations --------------------------------------------------------------------------------


def test_reroll_and_variations_honour_the_batch_count(home):
    from asset_studio.gui.model import variations as runs
    from jobs import make_job

    job = make_job(model="m", prompt="gem", width=64, height=64, seed=5)
    rng = random.Random(1)
    assert runs.rerun(job).image_seeds() == [5]
    again = runs.reroll(job, 3, rng)
    assert len(again.image_seeds()) == 3 and len(set(again.image_seeds())) == 3 and again.init is None
    image = home / "raw.png"
    Image.new("RGB", (64, 64)).save(image)
    vary = runs.variations(job, image, 2, 0.3, rng)
    assert vary.sampling.count == 2 and len(vary.image_seeds()) == 2
    assert vary.init.image == str(image.resolve()) and vary.init.denoise == 0.3
    assert job.init is None, "the source job is left alone"
    with pytest.raises(ValueError):
        runs.variations(job, image, 2, 1.0)


# --- the viewer ---------------------------------------------------------------------------------


def test_viewer_state_zoom_compare_preview_and_tile_repeat(qapp):
    from PySide6.QtGui import QImage

    from asset_studio.gui.model.viewer_state import ViewerState

    state = ViewerState()
    small = QImage(32, 16, QImage.Format.Format_RGBA8888)
    state.show_image(small, "a.png", "a.png", tiling="x")
    assert state.nearest, "small images (pixel art) are enlarged nearest-neighbour"
    assert state.fit_zoom(320, 320) == 10 and state.effective_zoom(320, 320) == 10
    state.set_grid(True)
    assert state.grid_visible(320, 320)
    state.zoom_step(+1, 320, 320, anchor=(20.0, 0.0))
    assert state.zoom == 12 and state.pan == pytest.approx((20 - 20 * 1.2, 0.0)), "the point under the pointer stays"
    state.set_zoom(None)
    assert state.zoom is None and state.pan == (0.0, 0.0)

    assert state.can_repeat() and state.repeat_grid() == (1, 1)
    state.set_repeat(True)
    assert state.repeat_grid() == (3, 1), "one axis: three in a row"
    state.show_image(small, "b.png", tiling="both")
    state.set_repeat(True)
    assert state.repeat_grid() == (2, 2)
    state.show_image(small, "c.png")
    assert not state.can_repeat() and state.repeat_grid() == (1, 1)

    other = QImage(32, 16, QImage.Format.Format_RGBA8888)
    state.set_compare(other, "raw", "sprite", "s.png")
    assert state.compare and "A: raw" in state.caption() and "B: sprite" in state.caption()
    state.set_split(1.5)
    assert state.split == 1.0

    state.show_step(small, "Image 1 of 2 · step 3 / 4")
    assert state.preview and not state.compare and state.caption().startswith("Preview")
    state.end_preview("cancelled")
    assert state.stale and "cancelled" in state.caption()
    state.show_image(small, "d.png", "d.png")
    assert not state.preview and not state.stale and state.caption() == "d.png"


# --- progress ---------------------------------------------------------------------------------


def test_progress_names_what_loads_counts_images_and_the_time_left_moves(qapp):
    from asset_studio.gui.model.queue import JobQueue
    from jobs import make_job

    now = [100.0]
    queue = JobQueue(clock=lambda: now[0])
    queue.on_queued(1, make_job(model="m", prompt="gem", width=64, height=64, steps=10, batch_count=2))
    queue.on_started(1)
    queue.on_loading(1, "Loading the model tiny-sd15…")
    e = queue.entry(1)
    assert e.loading == "Loading the model tiny-sd15…" and e.loading_since == 100.0
    now[0] = 130.0
    queue.on_step(1, 1, 20)
    assert e.load_seconds == 30.0 and e.loading == "" and e.status == "Image 1 of 2 · step 1 / 10"
    assert queue.seconds_left(1) is None, "no rate from one step"
    now[0] = 132.0
    queue.on_step(1, 3, 20)
    assert queue.seconds_left(1) == pytest.approx(17.0)  # 1 s a step, 17 steps left
    now[0] = 135.0
    assert queue.seconds_left(1) == pytest.approx(14.0), "the estimate counts down between steps"
    queue.on_step(1, 12, 20)
    assert e.status == "Image 2 of 2 · step 2 / 10"
    queue.on_notice(1, "The prompt is 91 tokens long; CLIP reads the first 75.")
    assert e.notices == ["The prompt is 91 tokens long; CLIP reads the first 75."]


def test_token_counter_is_clips_count_without_torch():
    import sys

    from asset_studio.gui.model.tokens import CLIP_READS, count_tokens, estimate

    transformers = pytest.importorskip("transformers")
    from asset_studio.engine.clip_vocab import write_clip_tokenizer

    folder = write_clip_tokenizer(Path(__import__("tempfile").mkdtemp()) / "tok")
    clip = transformers.CLIPTokenizer.from_pretrained(str(folder))
    for text in ("pixel art, 16-bit game sprite of a health potion, crisp pixels",
                 "Hello WORLD!!! it's 1234 naïve café, <lora:x:0.8>", "한국어 텍스트 PLAY"):
        exact = count_tokens(text)
        assert exact.exact and exact.count == len(clip(text).input_ids) - 2, text  # as the pipeline counts
    assert "estimate" not in exact.label()
    long = count_tokens("gold " * 80)
    assert long.count == 80 and long.over and CLIP_READS == 75
    assert estimate("a red potion, glowing") > 0
    import subprocess  # the counter itself imports neither torch nor transformers

    code = ("import sys; from asset_studio.gui.model.tokens import count_tokens; count_tokens('a b'); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.split() == ["False", "False"]


def test_finishing_is_the_styles_until_the_artist_changes_it_for_a_run(form):
    from asset_studio.core.request import prepare

    form.style_id = "pixel-art"  # removes the background
    form.template_id = "icon"
    form.subject = "gem"
    assert form.remove_background and form.to_request().overrides.finishing == {}, "the style decides"
    form.remove_background = False  # this run: keep the background
    form.palette_size = 16
    request = form.to_request()
    assert request.overrides.finishing == {"remove_background": False, "palette_size": 16}
    job = prepare(request, preview=True)
    assert not job.finishing.remove_background and job.finishing.palette_size == 16
    form.style_id = "cel-shaded"
    assert not form.remove_background, "a style change keeps the artist's choice"
    form.reset_to_style()
    assert form.remove_background and form.palette_size == 0 and form.to_request().overrides.finishing == {}


def test_a_style_of_another_family_than_the_model_is_named(form, tiny_sd15_dir):
    form.style_id = "hand-painted-fantasy"  # an SDXL style
    form.model = str(tiny_sd15_dir)
    warning = form.family_warning()
    assert "SDXL" in warning and "SD 1.5" in warning
    form.style_id = "pixel-art"  # SD 1.5
    assert form.family_warning() == ""
    form.model = "not/on-this-computer"
    form.style_id = "hand-painted-fantasy"
    assert form.family_warning() == "", "an unknown model is the backend's to check, not guessed at"


def test_a_gallery_image_becomes_a_preview_of_the_artists_own_style(home):
    from asset_studio.core.stylepack import find_style, save_stylepack, user_styles_dir
    from asset_studio.gui.model.style_previews import add_preview

    image = home / "gem.png"
    Image.new("RGBA", (512, 512), (200, 40, 40, 255)).save(image)
    bundled = find_style("pixel-art")
    with pytest.raises(UserError, match="bundled and read-only"):
        add_preview(bundled, image)
    with pytest.raises(UserError, match="Choose a style pack"):
        add_preview(None, image)
    import copy

    mine = copy.deepcopy(bundled)
    mine.id, mine.name, mine.previews = "my-pixels", "My pixels", []
    folder = user_styles_dir() / "my-pixels"
    save_stylepack(mine, folder)
    mine.folder = folder
    saved = add_preview(mine, image)
    assert saved.previews == ["previews/gem.png"]
    with Image.open(folder / "previews" / "gem.png") as im:
        assert max(im.size) == 256, "stored small: a preview, not an asset"
    assert find_style("my-pixels").previews == ["previews/gem.png"]


def test_the_cores_sentences_use_the_windows_words(form):
    from asset_studio.gui.model.wording import gui_words

    form.style_id = "pixel-art"
    form.template_id = "ui-button"  # its text field is required
    form.subject = "wooden"
    from asset_studio.core.request import prepare

    with pytest.raises(UserError) as err:
        prepare(form.to_request(), preview=True)
    shown = gui_words(str(err.value))
    assert "text" in shown and "--" not in shown and "command line" not in shown, shown
    assert gui_words("A ControlNet needs a layout to follow: the control image is drawn from it (--layout).") == \
        "A ControlNet needs a layout to follow: the control image is drawn from it (the Layout tab)."
    assert "--" not in gui_words("None of the models the style 'x' recommends is installed (a, b); pass --model PATH_OR_ID.")
