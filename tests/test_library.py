"""The output library: A1111 metadata, the embedded job, naming, atomic never-overwriting writes."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from asset_studio.core.job import ControlUnit, GenerationJob, LoraRef
from asset_studio.core.library import (
    a1111_parameters,
    parse_parameters,
    read_job,
    read_parameters,
    save_image,
    slugify,
)
from asset_studio.errors import UserError
from jobs import make_job as flat_job


def make_job(**kw) -> GenerationJob:
    base = dict(
        prompt="a red health potion, pixel art",
        negative_prompt="blurry, text", steps=20, cfg_scale=7.0, sampler="Euler a", width=512, height=512,
        seed=1, batch_count=4,
    )
    base.update(kw)
    return flat_job("/models/dreamshaper_8.safetensors", **base)


def test_parameters_follow_a1111_exactly():
    text = a1111_parameters(make_job())
    assert text == (
        "a red health potion, pixel art\n"
        "Negative prompt: blurry, text\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: dreamshaper_8, "
        "Version: asset-studio 0.1.0"
    )


def test_parameters_extras_and_quoting():
    job = make_job(
        negative_prompt="", cfg_scale=7.5, clip_skip=2, init_image="/tmp/x.png", denoise=0.6, vae="/v/sdxl_vae.safetensors",
        loras=[LoraRef(path="/l/pixel.safetensors", weight=0.8, name="pixel")],
        controls=[ControlUnit(model="/c/lineart.safetensors", image="/tmp/c.png", scale=0.9)],
    )
    text = a1111_parameters(job, seed=42)
    lines = text.split("\n")
    assert lines[0] == "a red health potion, pixel art <lora:pixel:0.8>"
    assert not any(line.startswith("Negative prompt:") for line in lines)  # A1111 omits an empty one
    assert "CFG scale: 7.5, Seed: 42," in lines[1]
    assert "VAE: sdxl_vae, Denoising strength: 0.6, Clip skip: 2" in lines[1]
    parsed = parse_parameters(text)
    assert parsed["ControlNet 0"].startswith("Module: lineart, Model: lineart, Weight: 0.9")
    assert parsed["Seed"] == "42" and parsed["Clip skip"] == "2"


def test_parse_parameters_round_trip_multiline():
    job = make_job(prompt="line one\nline two", negative_prompt="bad\nworse")
    parsed = parse_parameters(a1111_parameters(job))
    assert parsed["prompt"] == "line one\nline two"
    assert parsed["negative_prompt"] == "bad\nworse"
    assert parsed["Steps"] == "20" and parsed["Sampler"] == "Euler a" and parsed["Size"] == "512x512"
    assert parsed["Model"] == "dreamshaper_8"


def test_save_writes_both_chunks_and_the_images_own_seed(tmp_path):
    job = make_job(prompt="Héros — épée magique", seeds=[])
    path = save_image(Image.new("RGB", (16, 8), "red"), job, tmp_path, seed=3)
    assert path.name == "00001-3-heros-epee-magique.png"
    back = read_job(path)
    assert back.sampling.seed == 3 and back.sampling.count == 1 and back.sampling.seeds == []
    assert back.prompt == job.prompt and back.model == job.model
    assert "Seed: 3," in read_parameters(path)
    with Image.open(path) as im:
        assert im.size == (16, 8)
        assert json.loads(im.text["asset_studio_job"])["sampling"]["seed"] == 3


def test_names_count_up_and_never_overwrite(tmp_path):
    job = make_job()
    (tmp_path / "00007-9-something.png").write_bytes(b"keep me")
    first = save_image(Image.new("RGB", (8, 8)), job, tmp_path, seed=1)
    second = save_image(Image.new("RGB", (8, 8)), job, tmp_path, seed=1)
    assert first.name.startswith("00008-1-") and second.name.startswith("00009-1-")
    assert (tmp_path / "00007-9-something.png").read_bytes() == b"keep me"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]  # no temp file left behind


def test_a_taken_name_is_skipped_not_replaced(tmp_path, monkeypatch):
    import asset_studio.core.library as library

    job = make_job(prompt="coin")
    taken = tmp_path / "00001-5-coin.png"
    taken.write_bytes(b"someone else's")
    monkeypatch.setattr(library, "next_number", lambda folder: 1)  # a racing writer took 00001
    path = save_image(Image.new("RGB", (8, 8)), job, tmp_path, seed=5)
    assert path.name == "00002-5-coin.png"
    assert taken.read_bytes() == b"someone else's"


def test_slugify():
    assert slugify("A <lora:pixel:1> Big, RED potion!!") == "a-big-red-potion"
    assert slugify("") == "image"
    assert slugify("水") == "image"
    assert len(slugify("word " * 40)) <= 40


def test_reading_foreign_or_broken_files_is_one_sentence(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    with pytest.raises(UserError, match="carries no Asset Studio job"):
        read_job(plain)
    with pytest.raises(UserError, match="carries no generation parameters"):
        read_parameters(plain)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(UserError, match="not a readable PNG"):
        read_job(junk)
    with pytest.raises(UserError, match="does not exist"):
        read_job(tmp_path / "missing.png")
