"""Detailing an EXISTING image (`asset-studio detail`, the viewer's "Detail a region…"): the picture
is kept as it is (job.init at denoise 0), only the padded regions change, the style's finishing
makes the sprite, and the new PNG re-runs bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.job import Box, DetailPass, Finishing, HiresFix, InitImage, Passes, check_limits
from asset_studio.errors import UserError
from jobs import make_job


def changed(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).sum(axis=-1) > 0


def outside(mask: np.ndarray, rect) -> np.ndarray:
    out = mask.copy()
    out[rect[1]:rect[3], rect[0]:rect[2]] = False
    return out


@pytest.fixture(scope="module")
def source(tiny_sd15_dir, tmp_path_factory):
    """A 64x64 image made by the tiny model and saved as the service saves it: the raw PNG (job
    inside) and its sprite, cut out by colour key (the style's finishing)."""
    from asset_studio.engine.backend import LocalBackend
    from asset_studio.engine.loader import PipelineCache
    from asset_studio.service import save_result

    out = tmp_path_factory.mktemp("out")
    job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=4, seed=3)
    job.finishing = Finishing(remove_background=True, method="key")
    [made] = LocalBackend(device="cpu", cache=PipelineCache(capacity=1)).generate(job)
    saved = save_result(made.image, made.job, out, made.seed)
    assert saved.sprite is not None
    return saved.raw


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_detailing_an_existing_image_changes_only_the_padded_box_and_reruns_exactly(source, tmp_path, capsys):
    from asset_studio.cli import main
    from asset_studio.core.library import SPRITES_DIR, read_job

    before = set(source.parent.glob("*.png"))
    # The sprite stands for its raw image: the detailer redraws the picture with its background.
    sprite = source.parent / SPRITES_DIR / source.name
    assert main(["detail", str(sprite), "--box", "16,16,16,16", "--denoise", "0.7", "--padding", "6",
                 "--blur", "0", "--dilate", "2", "--seed", "9", "--device", "cpu"]) == 0
    [new] = set(source.parent.glob("*.png")) - before  # beside the source, a new name: nothing overwritten
    assert capsys.readouterr().out.strip() == str(new)
    raw, out = Image.open(source).convert("RGB"), Image.open(new).convert("RGB")
    assert out.size == raw.size == (64, 64)
    diff = changed(raw, out)
    # mask = box grown by 2 (14..34), crop = mask + 6 of context (8..40): nothing else moves
    assert not outside(diff, (8, 8, 40, 40)).any()
    assert diff[14:34, 14:34].mean() > 0.9
    assert (new.parent / SPRITES_DIR / new.name).is_file()  # the style's cut-out ran on the result
    job = read_job(new)
    assert job.init == InitImage(image=str(source.resolve()), denoise=0.0) and job.init.kept
    [d] = job.passes.detail
    assert (d.boxes, d.denoise, d.padding, d.mask_blur, d.dilate) == ([Box(16, 16, 16, 16)], 0.7, 6, 0, 2)
    assert job.prompt.text == read_job(source).prompt.text and job.sampling.seed == 9
    assert job.model.checkpoint == read_job(source).model.checkpoint  # the image's own model by default
    assert main(["rerun", str(new), "--out", str(tmp_path / "again"), "--device", "cpu"]) == 0
    [again] = (tmp_path / "again").glob("*.png")
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(new)))
    assert (tmp_path / "again" / SPRITES_DIR / again.name).is_file()


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_a_picture_without_a_job_takes_the_model_given(tiny_sd15_dir, tmp_path, capsys):
    from asset_studio.cli import main

    picture = tmp_path / "drawn.png"
    Image.new("RGB", (40, 24), (200, 40, 40)).save(picture)  # not a multiple of 8: kept at its own size
    assert main(["detail", str(picture), "--box", "0,0,8,8", "--denoise", "0.5", "--padding", "0", "--blur", "0",
                 "--dilate", "0", "--steps", "1", "--model", str(tiny_sd15_dir), "--device", "cpu",
                 "--out", str(tmp_path / "out"), "--prompt", "a shiny gem"]) == 0
    [new] = (tmp_path / "out").glob("*.png")
    diff = changed(Image.open(picture), Image.open(new).convert("RGB"))
    assert Image.open(new).size == (40, 24) and not outside(diff, (0, 0, 8, 8)).any() and diff[:8, :8].any()
    assert "seed:" in capsys.readouterr().err  # a random seed is announced, so it can be locked next time


def test_the_detail_command_says_what_is_wrong_in_one_sentence(tmp_path, capsys):
    from asset_studio.cli import main
    from asset_studio.core.library import save_image

    made = save_image(Image.new("RGB", (64, 64)), make_job("/m/model.safetensors", "a coin", width=64, height=64),
                      tmp_path, seed=1)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (64, 64)).save(plain)
    (tmp_path / "notes.png").write_text("not a picture")
    for argv, words in (
        ([str(made), "--box", "10,10,20"], "--box takes a region x,y,w,h"),
        ([str(made), "--box", "face"], "--box takes a region x,y,w,h"),
        ([str(made), "--box", "50,50,20,20"], "region 50,50,20,20 (x,y,w,h) is not inside the 64x64 image"),
        ([str(made)], "--box x,y,w,h (repeatable) or --detector MODEL.onnx, not neither"),
        ([str(made), "--box", "0,0,8,8", "--denoise", "0"], "denoise must be above 0"),
        ([str(tmp_path / "notes.png"), "--box", "0,0,8,8"], "is not a readable image"),
        ([str(tmp_path / "gone.png"), "--box", "0,0,8,8"], "does not exist"),
        ([str(plain), "--box", "0,0,8,8"], "plain.png carries no Asset Studio job, so it names no model: pass --model"),
        ([str(made), "--box", "0,0,8,8", "--classes", "face"], "--classes goes with --detector"),
    ):
        assert main(["detail", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_a_kept_start_image_is_only_for_the_detailer():
    job = make_job("/m/model.safetensors", "a coin", width=64, height=64, steps=20, seed=1)
    job.init = InitImage(image="/i/coin.png", denoise=0.0)
    with pytest.raises(UserError, match="Denoise 0 keeps the start image as it is.*add a detailer pass"):
        check_limits(job)
    job.passes = Passes(detail=[DetailPass(boxes=[Box(900, 900, 50, 50)])])
    check_limits(job)  # the picture's own size is known once it is read (the engine checks it then)
    job.passes.hires = HiresFix()
    job.tiling = "x"
    with pytest.raises(UserError, match="it takes no a hires fix or seamless tiling"):
        check_limits(job)


def test_the_job_keeps_the_images_settings_and_drops_what_made_it(tmp_path):
    from asset_studio.core.detail_job import DetailRequest, detail_job
    from asset_studio.core.job import ControlUnit, LoraRef
    from asset_studio.core.library import save_image

    job = make_job("/m/model.safetensors", "a coin", width=64, height=64, steps=20, seed=1, sampler="DPM++ 2M",
                   batch_count=4)
    job.model.loras = [LoraRef(path="/l/gold.safetensors", weight=0.8)]
    job.controls = [ControlUnit(model="/c/lineart", image="/c/control.png")]
    job.passes = Passes(hires=HiresFix(scale=2))
    job.finishing = Finishing(remove_background=True)
    raw = save_image(Image.new("RGB", (128, 128)), job, tmp_path, seed=2)
    out = detail_job(DetailRequest(image=str(raw), boxes=[Box(100, 100, 20, 20)], seed=7))  # hires-sized picture
    assert out.model == job.model and out.prompt == job.prompt and out.finishing == job.finishing
    s = out.sampling
    assert (s.sampler, s.steps, s.width, s.height, s.seed, s.count) == ("DPM++ 2M", 20, 64, 64, 7, 1)
    assert out.controls == [] and out.passes.hires is None and out.passes.detail[0].boxes == [Box(100, 100, 20, 20)]
    assert out.init.image == str(raw.resolve())
    no_finish = detail_job(DetailRequest(image=str(raw), boxes=[Box(0, 0, 8, 8)], finishing=False, model="/m/other"))
    assert not no_finish.finishing.active and no_finish.model.checkpoint == "/m/other"


def test_detector_passes_and_where_results_go(tmp_path):
    import argparse

    from asset_studio.commands.detail import build_request, register
    from asset_studio.core.detail_job import beside, detail_job
    from asset_studio.core.library import save_image

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    job = make_job("/m/model.safetensors", "a coin", width=64, height=64)
    raw = save_image(Image.new("RGB", (64, 64)), job, tmp_path, seed=1)
    args = parser.parse_args(["detail", str(raw), "--detector", "parts.onnx", "--classes", "0,1,2,3", "--seed", "4"])
    [d] = detail_job(build_request(args)).passes.detail
    assert (d.detector, d.classes, d.boxes) == ("parts.onnx", ["0", "1", "2", "3"], [])  # four numbers, not a box
    bad = parser.parse_args(["detail", str(raw), "--detector", "parts.onnx", "--classes", "face;hand"])
    with pytest.raises(UserError, match="--classes takes the detector's class names"):
        build_request(bad)
    frame = make_job("/m/model.safetensors", "a coin")
    frame.source.frame = 3
    assert beside(tmp_path / "00002-1-coin" / "coin-003.png", frame) == tmp_path  # not among the frames
    assert beside(raw, job) == tmp_path
