"""The detailer after-pass: regions drawn or detected are redrawn by inpainting over the loaded
modules and pasted back; only their crops change, the job records the passes and re-runs exactly."""

from __future__ import annotations

import numpy as np
import pytest

from asset_studio.core.job import Box, DetailPass, GenerationJob, Passes, check_limits
from asset_studio.core.library import a1111_parameters, parse_parameters
from asset_studio.errors import UserError
from jobs import make_job, steps_per_call

@pytest.fixture(scope="module")
def cache():
    from asset_studio.engine.loader import PipelineCache

    return PipelineCache(capacity=1)


@pytest.fixture(scope="module")
def engine(cache):
    from asset_studio.engine.backend import LocalBackend

    return LocalBackend(device="cpu", cache=cache)


def changed(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).sum(axis=-1) > 0


def outside(mask: np.ndarray, rect) -> np.ndarray:
    """MASK with RECT (left, top, right, bottom) cleared: what lies outside it."""
    out = mask.copy()
    out[rect[1]:rect[3], rect[0]:rect[2]] = False
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_a_drawn_region_changes_only_its_crop_and_re_runs_exactly(engine, tiny_sd15_dir):
    job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=4, seed=3)
    [plain] = engine.generate(job)
    job.passes = Passes(detail=[DetailPass(boxes=[Box(16, 16, 16, 16)], dilate=4, mask_blur=2, padding=8,
                                           denoise=0.6)])
    steps = []
    [first] = engine.generate(job, on_step=steps.append)
    assert first.image.size == (64, 64)
    assert steps_per_call(steps) == [4, 2]  # the base pass, then int(4 x 0.6) steps for the one region
    diff = changed(plain.image, first.image)
    # The mask is the box grown by 4 (12..36); the crop adds 8 of context (4..44): nothing else moves.
    assert not outside(diff, (4, 4, 44, 44)).any()
    assert diff[12:36, 12:36].mean() > 0.9  # the masked region itself is redrawn
    assert first.job.passes == job.passes  # the image's own job carries the pass
    [again] = engine.generate(first.job)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    # Without blur the paste stops exactly at the mask.
    job.passes.detail[0].mask_blur = 0
    [sharp] = engine.generate(job)
    assert not outside(changed(plain.image, sharp.image), (12, 12, 36, 36)).any()


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_the_inpaint_pipeline_shares_the_loaded_modules(engine, cache, tiny_sd15_dir, tmp_path):
    import torch

    from lora_factory import make_peft_lora

    lora = make_peft_lora(tmp_path / "style.safetensors", "sd15", seed=4, strength=2.0)
    job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=4, seed=3)
    job.passes = Passes(detail=[DetailPass(boxes=[Box(8, 8, 24, 24)], padding=4, denoise=0.75)])
    [plain_detail] = engine.generate(job)
    loads = cache.loads
    from asset_studio.core.job import LoraRef

    job.model.loras = [LoraRef(path=str(lora), weight=1.0, name="style")]
    [styled] = engine.generate(job)
    loaded = cache.get(str(tiny_sd15_dir), engine.device, torch.float32)
    assert cache.loads == loads  # no second model was loaded for the detailer
    inpaint = loaded.derived["inpaint"]
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        assert id(inpaint.components[name]) == id(loaded.pipe.components[name]), name
    assert [n for n in inpaint.unet.peft_config if n.startswith("style")]  # on the very UNet the detailer runs
    assert not np.array_equal(np.asarray(plain_detail.image), np.asarray(styled.image))
    [again] = engine.generate(styled.job)
    assert np.array_equal(np.asarray(styled.image), np.asarray(again.image))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_sdxl_regions_are_redrawn_too(engine, tiny_sdxl_dir):
    job = make_job(tiny_sdxl_dir, "a red potion", width=64, height=64, steps=2, seed=5, sampler="Euler")
    [plain] = engine.generate(job)
    job.passes = Passes(detail=[DetailPass(boxes=[Box(40, 8, 16, 24)], dilate=0, mask_blur=0, padding=4,
                                           denoise=1.0, prompt="[PROMPT], shiny")])
    steps = []
    [out] = engine.generate(job, on_step=steps.append)
    assert steps_per_call(steps) == [2, 2]
    diff = changed(plain.image, out.image)
    assert not outside(diff, (40, 8, 56, 32)).any() and diff[8:32, 40:56].any()


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_detected_regions_from_the_cli_are_recorded_and_rerun_exactly(tiny_sd15_dir, tmp_path, capsys):
    from PIL import Image

    from asset_studio.cli import main
    from asset_studio.core.library import read_job
    from test_detection import save_detector

    # A face at 16..32 x 16..32 and a hand at 44..52 x 44..52, in the 64x64 image's own pixels.
    detector = save_detector(tmp_path / "parts.onnx", [[24, 24, 16, 16, 0.9, 0.0], [48, 48, 8, 8, 0.0, 0.8]]
                             + [[0] * 6] * 6, names={0: "face", 1: "hand"})
    base = ["generate", "a knight", "--model", str(tiny_sd15_dir), "--size", "64x64", "--steps", "4",
            "--device", "cpu", "--seed", "1"]
    assert main(base + ["--out", str(tmp_path / "plain")]) == 0
    assert main(base + ["--out", str(tmp_path / "face"), "--detail", "face", "--detector", str(detector),
                        "--detail-denoise", "0.5", "--detail-padding", "4", "--detail-blur", "0",
                        "--detail-dilate", "0", "--detail-prompt", "[PROMPT], detailed face"]) == 0
    [plain] = (tmp_path / "plain").glob("*.png")
    [face] = (tmp_path / "face").glob("*.png")
    diff = changed(Image.open(plain).convert("RGB"), Image.open(face).convert("RGB"))
    assert diff[16:32, 16:32].mean() > 0.9 and not outside(diff, (16, 16, 32, 32)).any()  # the hand is left alone
    job = read_job(face)
    [d] = job.passes.detail
    assert (d.detector, d.classes, d.denoise, d.padding) == (str(detector.resolve()), ["face"], 0.5, 4)
    params = parse_parameters(Image.open(face).text["parameters"])
    assert params["ADetailer model"] == "parts.onnx" and params["ADetailer model classes"] == "face"
    assert params["ADetailer denoising strength"] == "0.5" and params["ADetailer inpaint padding"] == "4"
    assert params["ADetailer prompt"] == "[PROMPT], detailed face" and params["ADetailer mask blur"] == "0"
    assert main(["rerun", str(face), "--out", str(tmp_path / "again"), "--device", "cpu"]) == 0
    [again] = (tmp_path / "again").glob("*.png")
    assert np.array_equal(np.asarray(Image.open(face)), np.asarray(Image.open(again)))
    capsys.readouterr()
    assert main(base + ["--detail", "face"]) == 2
    assert "needs --detector" in capsys.readouterr().err
    assert main(base + ["--detail-denoise", "0.3"]) == 2
    assert "go with --detail" in capsys.readouterr().err
    assert main(base + ["--detail", "hand", "--detector", str(tmp_path / "nope.pt")]) == 2
    assert "is a pickle file" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_an_unknown_class_or_a_bad_detector_is_refused_before_loading(engine, tiny_sd15_dir, tmp_path):
    from test_detection import save_detector

    detector = save_detector(tmp_path / "faces.onnx", [[0] * 5] * 8, names={0: "face"})
    job = make_job(tiny_sd15_dir, "p", width=64, height=64, steps=2)
    job.passes = Passes(detail=[DetailPass(detector=str(detector), classes=["hand"])])
    with pytest.raises(UserError, match="has no class 'hand'; its classes are face"):
        engine.check(job)
    (tmp_path / "junk.onnx").write_text("not a model")
    job.passes.detail[0].detector = str(tmp_path / "junk.onnx")
    with pytest.raises(UserError, match="junk.onnx is not a readable ONNX model"):
        engine.check(job)


def test_detail_passes_are_checked_and_bounded():
    job = make_job("/m/model.safetensors", "a coin", width=64, height=64, steps=20, seed=1)
    for d, words in ((DetailPass(), "needs either drawn regions or a detector model, not neither"),
                     (DetailPass(boxes=[Box(0, 0, 8, 8)], detector="f.onnx"), "not both"),
                     (DetailPass(boxes=[Box(60, 0, 8, 8)]), "region 60,0,8,8 \\(x,y,w,h\\) is not inside the 64x64"),
                     (DetailPass(boxes=[Box(0, 0, 8, 8)], denoise=0), "denoise must be above 0"),
                     (DetailPass(detector="f.onnx", confidence=1.5), "confidence must be between 0 and 1"),
                     (DetailPass(boxes=[Box(0, 0, 8, 8)], mask_blur=-1), "mask blur must be between 0"),
                     (DetailPass(boxes=[Box(0, 0, 8, 8)], classes=["face"]), "names classes \\(face\\) but has no detector")):
        job.passes = Passes(detail=[d])
        with pytest.raises(UserError, match=words):
            check_limits(job)
    # Boxes are in pixels of the image the pass sees: after the hires fix.
    from asset_studio.core.job import HiresFix

    job.passes = Passes(hires=HiresFix(scale=2), detail=[DetailPass(boxes=[Box(100, 100, 20, 20)])])
    check_limits(job)
    # The passes travel in the job's JSON and are checked on the way back in.
    again = GenerationJob.from_json(job.to_json())
    assert again.passes == job.passes
    data = job.to_dict()
    data["passes"]["detail"][0]["boxes"][0]["x"] = "left"
    with pytest.raises(UserError, match="passes.detail\\[0\\].boxes\\[0\\].x must be a whole number"):
        GenerationJob.from_dict(data)


def test_detail_passes_are_written_the_way_adetailer_writes_them():
    job = make_job("/m/model.safetensors", "a coin", steps=20, seed=1)
    job.passes = Passes(detail=[
        DetailPass(detector="/d/face_yolov8n.onnx", classes=["face"], confidence=0.35, denoise=0.45, prompt="a, b"),
        DetailPass(boxes=[Box(1, 2, 30, 40)], dilate=-2, mask_blur=8, padding=16, steps=12,
                   inpaint_model="/m/sd15-inpainting.safetensors"),
    ])
    parsed = parse_parameters(a1111_parameters(job))
    assert parsed["ADetailer model"] == "face_yolov8n.onnx" and parsed["ADetailer confidence"] == "0.35"
    assert parsed["ADetailer prompt"] == "a, b" and parsed["ADetailer denoising strength"] == "0.45"
    assert parsed["ADetailer dilate erode"] == "4" and parsed["ADetailer inpaint only masked"] == "True"
    assert parsed["ADetailer model 2nd"] == "None" and parsed["ADetailer regions 2nd"] == "1,2,30,40"
    assert parsed["ADetailer dilate erode 2nd"] == "-2" and parsed["ADetailer mask blur 2nd"] == "8"
    assert parsed["ADetailer steps 2nd"] == "12" and parsed["ADetailer checkpoint 2nd"] == "sd15-inpainting"


def test_region_specs_and_crop_geometry():
    from asset_studio.core.detail import crop_rect, inpaint_size, mask_rect, parse_region_spec, pick_regions

    assert parse_region_spec("96, 40,64,64") == Box(96, 40, 64, 64)
    assert parse_region_spec("face,hand") == ["face", "hand"] and parse_region_spec("all") == []
    with pytest.raises(UserError, match="takes a region x,y,w,h"):
        parse_region_spec("x=1;y=2")
    assert parse_region_spec("0+1+2+3") == ["0", "1", "2", "3"]  # four class numbers, not a box
    assert mask_rect((10, 10, 20, 20), 4, (64, 64)) == (6, 6, 24, 24)
    assert mask_rect((10, 10, 20, 20), -5, (64, 64)) is None  # eroded away
    assert crop_rect((6, 6, 24, 24), 32, (64, 48)) == (0, 0, 56, 48)
    assert inpaint_size(100, 50, 512 * 512) == (728, 360)  # 512² pixels at 2:1, multiples of 8
    assert inpaint_size(2, 4000, 1024 * 1024) == (8, 4096)  # a sliver stops at the largest side
    regions = [(0, 0, 4, 4), (50, 0, 70, 20), (10, 30, 20, 40)]
    assert pick_regions(regions, 2) == [(10, 30, 20, 40), (50, 0, 70, 20)]  # the two largest, left to right


@pytest.fixture(scope="module")
def tiny_inpaint_dir(tmp_path_factory):
    """An SD-1.5-shaped inpainting model: its UNet also takes the mask and the masked picture (9 channels)."""
    from diffusers import UNet2DConditionModel

    from tiny_models import build_tiny_sd15, save_diffusers

    pipe = build_tiny_sd15(seed=9)
    pipe.unet = UNet2DConditionModel(**{**pipe.unet.config, "in_channels": 9})
    pipe.register_modules(unet=pipe.unet)
    return save_diffusers(pipe, tmp_path_factory.mktemp("inpaint") / "tiny-sd15-inpainting")


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_a_separate_inpainting_model_redraws_the_region(engine, cache, tiny_sd15_dir, tiny_inpaint_dir, tiny_sdxl_dir):
    job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=4, seed=3)
    [plain] = engine.generate(job)
    job.passes = Passes(detail=[DetailPass(boxes=[Box(16, 16, 16, 16)], dilate=0, mask_blur=0, padding=8,
                                           denoise=1.0, inpaint_model=str(tiny_inpaint_dir))])
    [out] = engine.generate(job)
    diff = changed(plain.image, out.image)
    assert diff[16:32, 16:32].mean() > 0.9 and not outside(diff, (16, 16, 32, 32)).any()
    import torch

    inpainting = cache.get(str(tiny_inpaint_dir), engine.device, torch.float32)
    assert inpainting.derived["inpaint"].unet.config.in_channels == 9
    [again] = engine.generate(out.job)
    assert np.array_equal(np.asarray(out.image), np.asarray(again.image))
    job.passes.detail[0].inpaint_model = str(tiny_sdxl_dir)
    with pytest.raises(UserError, match="inpainting model tiny-sdxl is an SDXL model but the model is SD 1.5"):
        engine.check(job)
