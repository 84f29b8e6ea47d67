"""A1111's variation seed (subseed + strength): the job fields and their checks, the starting noise
slerped in the engine (0 = the seed's image, 1 = the subseed's, bit for bit), the PNG's parameters,
the CLI flags, rerun, and the gallery's "variations of this image" by subseed."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.core.job import GenerationJob, InitImage
from asset_studio.core.library import a1111_parameters, parse_parameters, read_job, read_parameters
from asset_studio.errors import UserError
from jobs import make_job

pytestmark = [
    pytest.mark.usefixtures("one_thread_and_a_private_cache"),  # see conftest
    pytest.mark.filterwarnings("ignore::DeprecationWarning:diffusers.*"),
]


@pytest.fixture(scope="module")
def engine():
    from asset_studio.engine.backend import LocalBackend
    from asset_studio.engine.loader import PipelineCache

    return LocalBackend(device="cpu", cache=PipelineCache(capacity=4))


def job_for(model, seed=11, subseed=None, strength=0.0, count=1) -> GenerationJob:
    # "Euler" is not ancestral: the starting noise is the only randomness, as in A1111's comparisons.
    job = make_job(model, prompt="a red health potion", width=64, height=64, steps=3, seed=seed,
                   sampler="Euler", batch_count=count)
    job.sampling.subseed, job.sampling.subseed_strength = subseed, strength
    return job


def pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


def test_old_jobs_are_unchanged_and_the_fields_are_checked():
    job = make_job("m", width=64, height=64)
    assert (job.sampling.subseed, job.sampling.subseed_strength) == (None, 0.0)
    data = job.to_dict()
    data["sampling"].pop("subseed")
    data["sampling"].pop("subseed_strength")
    assert GenerationJob.from_dict(data) == job  # a job written before the fields existed
    data["sampling"].update(subseed="7", subseed_strength=0.1)
    with pytest.raises(UserError, match="subseed must be a whole number or null"):
        GenerationJob.from_dict(data)
    data["sampling"].update(subseed=7, subseed_strength=1.5)
    with pytest.raises(UserError, match="variation strength must be between 0 and 1"):
        GenerationJob.from_dict(data)
    data["sampling"].update(subseed=None, subseed_strength=0.2)
    with pytest.raises(UserError, match="needs a variation seed"):
        GenerationJob.from_dict(data)
    data["sampling"].update(subseed=2**64 - 1, subseed_strength=0.2, count=2)
    with pytest.raises(UserError, match="variation seed .* out of range"):
        GenerationJob.from_dict(data)


def test_each_image_carries_its_own_subseed_and_the_parameters_name_it():
    job = job_for("m", seed=40, subseed=900, strength=0.25, count=3)
    one = job.for_seed(42)
    assert (one.sampling.seed, one.sampling.subseed, one.sampling.count) == (42, 902, 1)
    same_seed = job_for("m", seed=5, subseed=100, strength=0.25)
    same_seed.sampling.seeds, same_seed.sampling.count = [5, 5, 5], 3
    assert same_seed.for_seed(5, index=2).sampling.subseed == 102  # the index decides, not the seed
    params = parse_parameters(a1111_parameters(one))
    assert (params["Seed"], params["Variation seed"], params["Variation seed strength"]) == ("42", "902", "0.25")
    assert "Variation seed" not in parse_parameters(a1111_parameters(job_for("m")))


def test_strength_zero_is_the_seed_one_is_the_subseed_and_small_is_close(engine, tiny_sd15_dir):
    plain = engine.generate(job_for(tiny_sd15_dir, seed=11))[0]
    other = engine.generate(job_for(tiny_sd15_dir, seed=77))[0]
    zero = engine.generate(job_for(tiny_sd15_dir, seed=11, subseed=77, strength=0.0))[0]
    one = engine.generate(job_for(tiny_sd15_dir, seed=11, subseed=77, strength=1.0))[0]
    small = engine.generate(job_for(tiny_sd15_dir, seed=11, subseed=77, strength=0.1))[0]
    assert np.array_equal(pixels(zero), pixels(plain))
    assert np.array_equal(pixels(one), pixels(other))
    near = np.abs(pixels(small) - pixels(plain)).mean()
    far = np.abs(pixels(other) - pixels(plain)).mean()
    assert 0 < near < far / 3, (near, far)
    assert small.job.sampling.subseed == 77 and small.job.sampling.subseed_strength == 0.1


def test_a_batch_uses_seed_plus_i_and_subseed_plus_i(engine, tiny_sd15_dir):
    batch = engine.generate(job_for(tiny_sd15_dir, seed=20, subseed=300, strength=0.5, count=2))
    assert [(r.seed, r.job.sampling.subseed) for r in batch] == [(20, 300), (21, 301)]
    alone = engine.generate(batch[1].job)[0]  # image 2's own job, as its PNG carries it
    assert np.array_equal(pixels(alone), pixels(batch[1]))


def test_img2img_and_comfyui_refuse_variation_seeds_by_name(tiny_sd15_dir, tmp_path):
    from asset_studio.engine.plan import plan
    from asset_studio.remote.graph import unsupported

    job = job_for(tiny_sd15_dir, subseed=3, strength=0.2)
    job.init = InitImage(image=str(tmp_path / "x.png"))
    with pytest.raises(UserError, match="Variation seeds work on text to image only"):
        plan(job)
    assert "Variation seeds" in unsupported(job_for(tiny_sd15_dir, subseed=3, strength=0.2))


def test_cli_subseed_flags_and_rerun_from_the_png(tiny_sd15_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "a gold coin", "--model", str(tiny_sd15_dir), "--size", "64x64", "--steps", "2",
                 "--sampler", "Euler", "--device", "cpu", "--out", str(out), "--seed", "5", "--count", "2",
                 "--subseed", "70", "--subseed-strength", "0.3"]) == 0
    files = [Path(p) for p in capsys.readouterr().out.split()]
    assert [read_job(f).sampling.subseed for f in files] == [70, 71]
    params = parse_parameters(read_parameters(files[1]))
    assert (params["Seed"], params["Variation seed"], params["Variation seed strength"]) == ("6", "71", "0.3")
    again = tmp_path / "again"
    assert main(["rerun", str(files[1]), "--out", str(again), "--device", "cpu"]) == 0
    rerun = Path(capsys.readouterr().out.strip())
    assert np.array_equal(np.asarray(Image.open(rerun)), np.asarray(Image.open(files[1])))
    # A subseed without a strength is one sentence, exit 2.
    assert main(["generate", "x", "--model", str(tiny_sd15_dir), "--subseed", "3", "--out", str(out)]) == 2
    assert "needs a variation strength" in capsys.readouterr().err


def test_gallery_variations_by_subseed_honour_the_batch_count():
    from asset_studio.gui.model import variations as runs

    job = job_for("m", seed=9, subseed=None).for_seed(9)
    vary = runs.subseed_variations(job, 3, 0.15, random.Random(2))
    assert vary.image_seeds() == [9, 9, 9] and vary.init is None
    assert vary.sampling.subseed is not None and vary.sampling.subseed_strength == 0.15
    subseeds = [vary.for_seed(9, i).sampling.subseed for i in range(3)]
    assert len(set(subseeds)) == 3
    assert job.sampling.subseed is None, "the source job is left alone"
    import asset_studio.gui  # noqa: F401  (pyside_fix before PySide6)
    from asset_studio.gui.gallery import describe_job

    details = dict(describe_job(vary.for_seed(9, 1)))
    assert details["Variation seed"] == f"{subseeds[1]}, strength 0.15" and details["Seed"] == "9"
    img2img = make_job("m", width=64, height=64, init_image="a.png")
    assert not runs.can_vary_by_subseed(img2img) and runs.can_vary_by_subseed(job)
    with pytest.raises(ValueError):
        runs.subseed_variations(img2img, 2)
