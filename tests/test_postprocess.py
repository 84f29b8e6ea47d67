"""From generated image to sprite: cut-out, pixel grid, palette, trim, crisp text; saved in sprites/."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from asset_studio.cli import main
from asset_studio.core.job import Finishing, GenerationJob, ModelRef, Prompt, check_limits
from asset_studio.core.library import read_job
from asset_studio.engine.postprocess import apply_postprocess
from asset_studio.errors import UserError


def potion_on_white(size: int = 128) -> tuple[Image.Image, np.ndarray]:
    """A red disc on a plain white backdrop, and its true coverage mask."""
    image = Image.new("RGB", (size, size), "white")
    box = (size // 4, size // 4, 3 * size // 4, 3 * size // 4)
    ImageDraw.Draw(image).ellipse(box, fill=(200, 30, 40))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return image, np.asarray(mask) > 127


def test_cut_out_on_a_plain_background_matches_the_shape():
    image, truth = potion_on_white()
    sprite = apply_postprocess(image, Finishing(remove_background=True, method="key"))
    alpha = np.asarray(sprite.getchannel("A")) > 127
    iou = (alpha & truth).sum() / (alpha | truth).sum()
    assert sprite.size == image.size and sprite.mode == "RGBA"
    assert iou > 0.97


def test_pixel_grid_palette_and_trim_make_a_crisp_small_sprite():
    image, _ = potion_on_white()
    spec = Finishing(remove_background=True, method="key", pixel_grid=16, palette_size=4, trim=True)
    sprite = apply_postprocess(image, spec)
    px = np.asarray(sprite)
    assert set(np.unique(px[..., 3])) <= {0, 255}  # pixel art: hard alpha
    visible = px[px[..., 3] == 255][:, :3]
    assert len(np.unique(visible, axis=0)) <= 4
    # trimmed to the disc (64 px across, snapped to 8 px blocks) instead of the 128 px canvas
    assert 56 <= sprite.width <= 72 and 56 <= sprite.height <= 72
    # every 8x8 block of the (untrimmed) grid is one colour
    full = apply_postprocess(image, Finishing(remove_background=True, method="key", pixel_grid=16))
    blocks = np.asarray(full).reshape(16, 8, 16, 8, 4)
    assert (blocks == blocks[:, :1, :, :1]).all()


def test_bad_postprocess_values_are_one_sentence():
    with pytest.raises(UserError, match="palette"):
        check_limits(GenerationJob(model=ModelRef("m"), prompt=Prompt("p"), finishing=Finishing(palette_size=999)))
    data = GenerationJob(model=ModelRef("m"), prompt=Prompt("p")).to_dict()
    data["finishing"] = {"sharpen": True}
    with pytest.raises(UserError, match="sharpen"):
        GenerationJob.from_dict(data)


def tiny_args(model, out, *extra):
    return ["generate", "a gold coin", "--model", str(model), "--size", "64x64", "--steps", "2", "--device", "cpu",
            "--seed", "3", "--out", str(out), *extra]


def test_generate_saves_the_raw_image_and_its_sprite(tiny_sd15_dir, tmp_path, capsys):
    assert main(tiny_args(tiny_sd15_dir, tmp_path, "--pixel-grid", "16", "--palette", "6")) == 0
    out = capsys.readouterr()
    raw = sorted(tmp_path.glob("*.png"))
    assert [str(p) for p in raw] == out.out.split()  # stdout stays the raw paths, one per image
    sprite_path = tmp_path / "sprites" / raw[0].name
    assert f"sprite: {sprite_path}" in out.err
    sprite = Image.open(sprite_path)
    assert sprite.mode == "RGBA" and sprite.size == (64, 64)
    assert len(np.unique(np.asarray(sprite)[..., :3].reshape(-1, 3), axis=0)) <= 6
    job = read_job(sprite_path)  # the sprite carries its job, so it re-runs too
    assert (job.finishing.pixel_grid, job.finishing.palette_size, job.finishing.remove_background) == (16, 6, False)
    assert job.sampling.seed == 3
    assert not np.array_equal(np.asarray(Image.open(raw[0]).convert("RGBA")), np.asarray(sprite))


def test_no_postprocess_overrides_the_style_and_crisp_text_needs_a_layout(tiny_sd15_dir, tmp_path, capsys):
    args = ["generate", "health potion", "--style", "pixel-art", "--model", str(tiny_sd15_dir), "--size", "64x64",
            "--steps", "2", "--device", "cpu", "--out", str(tmp_path), "--no-postprocess"]
    assert main(args) == 0
    assert len(list(tmp_path.glob("*.png"))) == 1 and not (tmp_path / "sprites").exists()
    capsys.readouterr()
    assert main(tiny_args(tiny_sd15_dir, tmp_path, "--crisp-text")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Crisp text needs a layout" in err[0] and "--layout" in err[0]


def test_crisp_text_draws_the_layout_text_into_the_sprite(tiny_sd15_dir, tmp_path, capsys):
    layout = {
        "width": 64, "height": 64, "background": "#000000",
        "elements": [{"type": "text", "text": "GO", "size": 28, "fill": "#ffffff", "box": [4, 14, 56, 36]}],
    }
    path = tmp_path / "go.json"
    path.write_text(json.dumps(layout))
    from asset_studio.core.layout import load_layout

    load_layout(path)  # the layout itself is valid
    assert main(tiny_args(tiny_sd15_dir, tmp_path / "out", "--layout", str(path), "--crisp-text")) == 0
    raw = sorted((tmp_path / "out").glob("*.png"))[0]
    sprite = np.asarray(Image.open(tmp_path / "out" / "sprites" / raw.name).convert("RGB")).astype(int)
    before = np.asarray(Image.open(raw).convert("RGB")).astype(int)
    changed = np.abs(sprite - before).sum(axis=2) > 30
    assert changed[14:50, 4:60].sum() > 100  # the text landed inside its box
    assert changed[:8].sum() + changed[56:].sum() < 20  # and not elsewhere (bar a thin shadow)


@pytest.mark.parametrize("bad", [{"pixel_grid": "x"}, {"remove_background": "yes"}, {"palette_size": True}, None])
def test_postprocess_from_an_untrusted_png_is_type_checked(bad):
    data = GenerationJob(model=ModelRef("m"), prompt=Prompt("p")).to_dict()
    data["finishing"] = bad if bad is not None else ["not", "a", "table"]
    with pytest.raises(UserError):
        GenerationJob.from_dict(data)


def test_without_the_cutout_model_the_raw_image_is_kept_and_finish_makes_the_sprite_later(
        tiny_sd15_dir, tmp_path, capsys, monkeypatch):
    from conftest import REMBG_HOME

    import asset_studio.engine.background as background

    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "no-models"))
    monkeypatch.setattr(background, "_SESSIONS", {})
    assert main(tiny_args(tiny_sd15_dir, tmp_path / "out", "--remove-bg")) == 0
    out = capsys.readouterr()
    [raw] = (tmp_path / "out").glob("*.png")
    assert not (tmp_path / "out" / "sprites").exists()
    assert "u2netp.onnx" in out.err and "asset-studio finish" in out.err  # said once, with the way out
    assert main(["finish", str(tmp_path / "out")]) == 2  # still missing: the same sentence
    assert "u2netp.onnx" in capsys.readouterr().err
    if not (REMBG_HOME / "u2netp.onnx").is_file():
        pytest.skip("../shared/models/rembg is absent: the second half needs rembg's real model")
    monkeypatch.setenv("U2NET_HOME", str(REMBG_HOME))
    assert main(["finish", str(tmp_path / "out")]) == 0
    sprite = tmp_path / "out" / "sprites" / raw.name
    assert capsys.readouterr().out.split() == [str(sprite)]
    assert Image.open(sprite).mode == "RGBA" and read_job(sprite).finishing.remove_background
