"""GenerationJob schema 2: a typed tree, one checker driven by the dataclasses, schema-1 PNGs migrated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asset_studio.core.job import (
    JOB_SCHEMA_VERSION, ControlUnit, Finishing, GenerationJob, InitImage, LoraRef, ModelRef, Prompt, Reference,
    Sampling, Source, check_limits,
)
from asset_studio.core.library import a1111_parameters, read_job
from asset_studio.errors import UserError

SCHEMA1_PNG = Path(__file__).parent / "data" / "schema1-job.png"  # written by Asset Studio 0.1's save_image


def full_job() -> GenerationJob:
    return GenerationJob(
        model=ModelRef("/m/model.safetensors", vae="/m/vae.safetensors", clip_skip=2,
                       loras=[LoraRef("/l/ink.safetensors", 0.7, "ink")], ip_adapter="ip-adapter-sd15"),
        prompt=Prompt("a gold coin", "blurry"),
        sampling=Sampling(sampler="DDIM", steps=12, cfg_scale=6.5, width=64, height=96, seed=3, count=2),
        init=InitImage("/i/start.png", 0.4),
        controls=[ControlUnit("/c/lineart", "/c/ctl.png", "scribble", 0.8, 0.1, 0.9)],
        references=[Reference("/r/hero.png", 0.6, "style")],
        tiling="x",
        finishing=Finishing(remove_background=True, method="key", pixel_grid=32, palette_size=8, trim=True),
        source=Source("pixel-art", "icon", "gold coin", {"colour": "gold"}),
    )


def test_round_trip_is_exact_and_plain_json():
    job = full_job()
    data = json.loads(job.to_json())
    assert data["schema"] == JOB_SCHEMA_VERSION == 2
    assert GenerationJob.from_json(job.to_json()) == job
    assert job.image_seeds() == [3, 4]
    one = job.for_seed(4)
    assert (one.sampling.seed, one.sampling.count, one.image_seeds()) == (4, 1, [4]) and job.sampling.count == 2


@pytest.mark.parametrize("path, value, words", [
    (("tiling",), "diagonal", "tiling must be one of off, x, y, both"),
    (("controls", 0, "type"), "pose-ish", "controls[0].type must be one of lineart"),
    (("finishing", "method"), "magic", "finishing.method must be one of auto, model, key"),
    (("references", 0, "mode"), "half", "references[0].mode must be one of full, style"),
    (("output",), "hologram", "output must be one of image, animation, video"),
    (("sampling", "steps"), 2.5, "sampling.steps must be a whole number"),
    (("model", "loras", 0, "weight"), float("inf"), "model.loras[0].weight must be a finite number"),
    (("init",), "start.png", "init must be a table or null"),
])
def test_closed_vocabularies_and_types_are_one_sentence(path, value, words):
    data = full_job().to_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(UserError, match=words.replace("[", r"\[").replace("]", r"\]")):
        GenerationJob.from_dict(data)


def test_unknown_fields_and_future_schemas_are_refused():
    data = full_job().to_dict()
    data["sampling"]["eta"] = 0.5
    with pytest.raises(UserError, match=r"sampling has unknown field\(s\): eta"):
        GenerationJob.from_dict(data)
    data = full_job().to_dict()
    data["schema"] = 99
    with pytest.raises(UserError, match="schema 99; this version of Asset Studio reads schemas 1 to 2"):
        GenerationJob.from_dict(data)


def test_limits_bound_every_number_including_forged_seed_lists():
    job = full_job()
    job.sampling.seeds = list(range(10001))
    with pytest.raises(UserError, match="lists 10001 seeds; at most 10000"):
        check_limits(job)
    job = full_job()
    job.model.loras[0].weight = 1e30
    with pytest.raises(UserError, match="LoRA weight 1e\\+30 of ink is outside -10 to 10"):
        check_limits(job)
    job = full_job()
    job.sampling.seed = 2**64 - 1
    with pytest.raises(UserError, match="leaves no room for 2 images"):
        check_limits(job)
    data = full_job().to_dict()
    data["sampling"]["seeds"] = list(range(20000))
    with pytest.raises(UserError, match="at most 10000"):
        GenerationJob.from_dict(data)  # from a PNG: refused on read, before anything is written


def test_a_png_written_by_asset_studio_0_1_migrates_on_read():
    job = read_job(SCHEMA1_PNG)
    assert job.schema == 2
    assert job.model == ModelRef("/models/tiny-sd15", clip_skip=2, loras=[LoraRef("/loras/ink.safetensors", 0.7, "ink")])
    assert job.prompt == Prompt("pixel art, gold coin, game icon", "blurry, text")
    assert job.sampling == Sampling(sampler="DPM++ 2M Karras", steps=3, cfg_scale=6.5, width=64, height=64, seed=8)
    assert job.init is None  # 0.1 wrote a denoise even without a start image
    assert job.controls == [ControlUnit("/cn/lineart", "/out/.controls/control-lineart-abc.png", "lineart", 0.8, 0.1, 0.9)]
    assert job.finishing == Finishing(remove_background=True, pixel_grid=32, palette_size=16, trim=True)
    assert job.source == Source("pixel-art", "icon", "gold coin", {"colour": "gold"})
    # The A1111 text the old version wrote is what the new one writes for the migrated job.
    from asset_studio.core.library import read_parameters

    old = read_parameters(SCHEMA1_PNG).replace("asset-studio 0.1.0", "")
    assert a1111_parameters(job).replace("asset-studio 0.1.0", "") == old


def test_schema_1_rerun_through_the_cli(tiny_sd15_dir, tmp_path, capsys):
    """An old PNG re-runs: its job migrates, the model is pointed at one on this machine."""
    from asset_studio.cli import main

    from jobs import make_job
    from asset_studio.core.library import save_image
    from PIL import Image
    import asset_studio.core.library as library

    # A schema-1 job with a model that exists here, written as 0.1 wrote it (a flat record).
    job = make_job(tiny_sd15_dir, "a red potion", width=64, height=64, steps=2, seed=5)
    flat = {"model": str(tiny_sd15_dir), "prompt": "a red potion", "negative_prompt": "", "steps": 2,
            "cfg_scale": 7.0, "sampler": "Euler a", "width": 64, "height": 64, "seed": 5, "batch_count": 1,
            "seeds": [], "vae": None, "clip_skip": 1, "init_image": None, "denoise": 0.75, "model_config": None,
            "loras": [], "controlnets": [], "style_id": "", "template": "", "subject": "", "fields": {},
            "postprocess": {}, "schema": 1}
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(library.JOB_CHUNK, json.dumps(flat))
    old = tmp_path / "old.png"
    Image.new("RGB", (64, 64)).save(old, pnginfo=info)
    assert main(["rerun", str(old), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    [new] = (tmp_path / "out").glob("*.png")
    assert read_job(new) == job
    assert save_image is not None
