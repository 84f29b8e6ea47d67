"""After-passes in the stage plan: hires fix (latent, resampler) and the refiner hand-off, recorded
in the job so the PNG re-runs the whole chain."""

from __future__ import annotations

import numpy as np
import pytest

from asset_studio.core.job import HiresFix, Passes, Refiner
from asset_studio.core.library import a1111_parameters, parse_parameters
from asset_studio.errors import UserError
from jobs import make_job, steps_per_call

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_and_a_private_cache")]


@pytest.fixture(scope="module")
def engine():
    from asset_studio.engine.backend import LocalBackend
    from asset_studio.engine.loader import PipelineCache

    return LocalBackend(device="cpu", cache=PipelineCache(capacity=2))


@pytest.mark.parametrize("upscaler", ["latent", "latent-nearest", "lanczos", "nearest"])
def test_hires_fix_enlarges_and_re_runs_exactly(engine, tiny_sd15_dir, upscaler):
    job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=4, seed=3)
    job.passes = Passes(hires=HiresFix(scale=2, upscaler=upscaler, denoise=0.5, steps=3))
    steps = []
    [first] = engine.generate(job, on_step=steps.append)
    assert first.image.size == (128, 128)
    assert steps_per_call(steps) == [4, 3]  # the base pass, then exactly the hires steps asked for
    assert first.job.passes == job.passes  # the image's own job carries the pass
    [again] = engine.generate(first.job)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))


def test_hires_fix_changes_the_picture_and_denoise_matters(engine, tiny_sd15_dir):
    from PIL import Image

    base = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=4, seed=3)
    [plain] = engine.generate(base)
    enlarged = np.asarray(plain.image.resize((128, 128), Image.Resampling.LANCZOS), dtype=float)
    diffs = {}
    for denoise in (0.2, 0.9):
        job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=4, seed=3)
        job.passes = Passes(hires=HiresFix(scale=2, upscaler="lanczos", denoise=denoise))
        [out] = engine.generate(job)
        diffs[denoise] = np.abs(np.asarray(out.image, dtype=float) - enlarged).mean()
    assert 0 < diffs[0.2] < diffs[0.9]


@pytest.fixture(scope="module")
def other_sdxl(tmp_path_factory):
    from tiny_models import build_tiny_sdxl, save_diffusers

    return save_diffusers(build_tiny_sdxl(seed=7), tmp_path_factory.mktemp("refiner") / "tiny-sdxl-refiner")


def test_sdxl_refiner_takes_over_at_the_switch(engine, tiny_sdxl_dir, other_sdxl):
    job = make_job(tiny_sdxl_dir, "a red potion", width=64, height=64, steps=10, seed=5, sampler="Euler")
    job.passes = Passes(refiner=Refiner(model=str(tiny_sdxl_dir), switch_at=0.8))
    steps = []
    [out] = engine.generate(job, on_step=steps.append)
    assert out.image.size == (64, 64)
    assert steps_per_call(steps) == [8, 2]  # diffusers' denoising_end / denoising_start split the 10 steps
    # The same model as its own refiner continues the very same schedule: the split is exact.
    [plain] = engine.generate(make_job(tiny_sdxl_dir, "a red potion", width=64, height=64, steps=10, seed=5,
                                       sampler="Euler"))
    assert np.abs(np.asarray(out.image, dtype=float) - np.asarray(plain.image, dtype=float)).max() <= 1
    # Another model takes the last 20 %: the picture changes.
    job.passes.refiner.model = str(other_sdxl)
    [refined] = engine.generate(job)
    assert np.abs(np.asarray(refined.image, dtype=float) - np.asarray(plain.image, dtype=float)).mean() > 0.5
    job.passes.refiner.model = str(tiny_sdxl_dir)
    # With a latent hires fix after it, the refiner hands on latents and the chain still ends in a picture.
    job.passes.hires = HiresFix(scale=1.5, upscaler="latent", denoise=0.5, steps=2)
    steps.clear()
    [chained] = engine.generate(job, on_step=steps.append)
    assert chained.image.size == (96, 96) and steps_per_call(steps) == [8, 2, 2]


def test_sd15_refiner_refines_the_decoded_picture(engine, tiny_sd15_dir):
    job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=10, seed=5)
    job.passes = Passes(refiner=Refiner(model=str(tiny_sd15_dir), switch_at=0.7))
    steps = []
    [out] = engine.generate(job, on_step=steps.append)
    assert out.image.size == (64, 64) and steps_per_call(steps) == [10, 3]


def test_passes_are_written_the_way_a1111_writes_them():
    job = make_job("/m/model.safetensors", "a coin", steps=20, seed=1)
    job.passes = Passes(hires=HiresFix(scale=2, upscaler="/u/4x-UltraSharp.safetensors", denoise=0.45, steps=12),
                        refiner=Refiner(model="/m/sdxl_refiner.safetensors", switch_at=0.75))
    parsed = parse_parameters(a1111_parameters(job))
    assert parsed["Hires upscale"] == "2" and parsed["Hires steps"] == "12"
    assert parsed["Hires upscaler"] == "4x-UltraSharp" and parsed["Denoising strength"] == "0.45"
    assert parsed["Refiner"] == "sdxl_refiner" and parsed["Refiner switch at"] == "0.75"


def test_bad_passes_are_one_sentence(engine, tiny_sd15_dir, tiny_sdxl_dir):
    from asset_studio.core.job import check_limits

    job = make_job(tiny_sd15_dir, "p", width=64, height=64, steps=2)
    for passes, words in ((Passes(hires=HiresFix(scale=5)), "scale must be above 1 and at most 4"),
                          (Passes(hires=HiresFix(denoise=0)), "denoise must be above 0"),
                          (Passes(refiner=Refiner("x", switch_at=1.0)), "refiner switch must be between 0 and 1")):
        job.passes = passes
        with pytest.raises(UserError, match=words):
            check_limits(job)
    job.passes = Passes(hires=HiresFix(upscaler="bicubic-ish"))
    with pytest.raises(UserError, match="The upscale model bicubic-ish was not found"):
        engine.check(job)
    job.passes = Passes(refiner=Refiner(str(tiny_sdxl_dir)))
    with pytest.raises(UserError, match="is an SDXL model but the model is SD 1.5"):
        engine.generate(job)


def test_cli_flags_make_the_passes(tiny_sd15_dir, tmp_path, capsys):
    from PIL import Image

    from asset_studio.cli import main
    from asset_studio.core.library import read_job

    assert main(["generate", "a coin", "--model", str(tiny_sd15_dir), "--size", "64x64", "--steps", "2",
                 "--device", "cpu", "--seed", "1", "--out", str(tmp_path), "--hires-scale", "1.5",
                 "--hires-upscaler", "nearest", "--hires-steps", "1"]) == 0
    [png] = tmp_path.glob("*.png")
    assert Image.open(png).size == (96, 96)
    assert read_job(png).passes.hires == HiresFix(scale=1.5, upscaler="nearest", denoise=0.5, steps=1)
    capsys.readouterr()
    assert main(["generate", "a coin", "--model", str(tiny_sd15_dir), "--hires-steps", "3"]) == 2
    assert "go with --hires-scale" in capsys.readouterr().err


def test_hires_fix_with_an_upscale_model(engine, tiny_sd15_dir, tmp_path):
    from test_upscale import save_compact  # the tiny Compact network the upscaler tests build

    path = save_compact(tmp_path / "2x-tiny-compact.safetensors", scale=2)
    job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=2, seed=3)
    job.passes = Passes(hires=HiresFix(scale=2, upscaler=str(path), denoise=0.3, steps=1))
    [out] = engine.generate(job)
    assert out.image.size == (128, 128)
    assert parse_parameters(a1111_parameters(out.job))["Hires upscaler"] == "2x-tiny-compact"
