"""prepare(): style + template + subject + fields → a fully resolved GenerationJob (core/request.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asset_studio.core.request import AssetRequest, Overrides, prepare
from asset_studio.core.job import GenerationJob
from asset_studio.core.stylepack import LoraEntry, StylePack, find_style, save_stylepack
from asset_studio.errors import UserError


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path / "home"


def req(subject="health potion", **kw) -> AssetRequest:
    kw.setdefault("model", "some/model")
    return AssetRequest(subject=subject, **kw)


def compose(request: AssetRequest):
    return prepare(request, preview=False)


def lora_pack(tmp_path, **defaults) -> StylePack:
    folder = tmp_path / "lora-style"
    (folder / "loras").mkdir(parents=True)
    (folder / "loras" / "ink.safetensors").write_bytes(b"weights")
    pack = StylePack(id="lora-style", name="Ink", prompt="ink drawing of {subject}", negative="color",
                     loras=[LoraEntry(file="loras/ink.safetensors", weight=0.6, trigger_words=["inkstyle"])])
    for key, value in defaults.items():
        setattr(pack.defaults, key, value)
    save_stylepack(pack, folder)
    return find_style(str(folder))


def test_style_and_template_resolve_prompt_parameters_and_postprocess():
    job = compose(req(style="pixel-art", template="icon"))
    assert isinstance(job, GenerationJob)
    assert job.prompt.text.startswith("pixel art, health potion, game icon, single object")
    assert job.prompt.text.endswith("flat shading")
    assert "blurry" in job.prompt.negative and "multiple objects" in job.prompt.negative
    assert (job.sampling.steps, job.sampling.cfg_scale, job.sampling.sampler) == (25, 7.5, "Euler a")
    assert (job.sampling.width, job.sampling.height) == (512, 512)
    f = job.finishing
    assert (f.remove_background, f.pixel_grid, f.palette_size, f.trim) == (True, 64, 16, True)
    assert (job.source.style, job.source.template, job.source.subject, job.model.checkpoint) == \
        ("pixel-art", "icon", "health potion", "some/model")
    assert job.model.loras == []
    GenerationJob.from_json(job.to_json())  # plain data


def test_style_sets_resolution_and_template_sets_aspect():
    banner = compose(req("wooden sign", style="hand-painted-fantasy", template="ui-banner", fields={"text": "SHOP"}))
    b = banner.sampling
    assert b.width % 8 == 0 and b.height % 8 == 0
    assert b.width / b.height == pytest.approx(4, rel=0.05)
    assert b.width * b.height == pytest.approx(1024 * 1024, rel=0.05)
    tile = compose(req("grass", template="environment-tile"))
    assert (tile.sampling.width, tile.sampling.height) == (512, 512) and tile.tiling == "both"
    assert tile.finishing.remove_background is False
    assert tile.prompt.text.startswith("grass, seamless tileable texture")


def test_explicit_settings_win():
    job = compose(req(style="pixel-art", overrides=Overrides(
        steps=2, cfg_scale=3.0, sampler="DDIM", width=64, height=64, seed=5,
        negative="only this", count=3, finishing={"palette_size": 4})))
    s = job.sampling
    assert (s.steps, s.cfg_scale, s.sampler, s.width, s.height, s.seed, s.count) == (2, 3.0, "DDIM", 64, 64, 5, 3)
    # The artist's negative terms are added to the style's (the CLI used to replace them, the GUI to add).
    assert job.prompt.negative.endswith(", only this") and "blurry" in job.prompt.negative
    assert job.finishing.palette_size == 4 and job.finishing.pixel_grid == 64
    with pytest.raises(TypeError, match="stepz"):
        compose(req(style="pixel-art", overrides=Overrides(stepz=2)))
    with pytest.raises(UserError, match="Unknown post-processing setting.*sharpen"):
        compose(req(style="pixel-art", overrides=Overrides(finishing={"sharpen": True})))


def test_per_asset_seed_is_a_stable_hash_of_the_subject():
    a = compose(req("Health  Potion", style="pixel-art")).sampling.seed
    assert a == compose(req("health potion", style="pixel-art", template="icon")).sampling.seed
    assert a != compose(req("mana potion", style="pixel-art")).sampling.seed
    assert a != compose(req("health potion", style="cel-shaded")).sampling.seed  # the style's base seed is mixed in
    assert 0 <= a < 2**32


def test_fixed_and_random_seed_policies(tmp_path):
    assert compose(req(style=lora_pack(tmp_path, seed_policy="fixed", seed=1234))).sampling.seed == 1234
    pack = lora_pack(tmp_path / "r", seed_policy="random")
    seeds = {compose(req(style=pack)).sampling.seed for _ in range(4)}
    assert len(seeds) > 1 and all(0 <= s < 2**32 for s in seeds)


def test_fields_defaults_unknown_and_missing():
    job = compose(req("knight", template="character-sprite"))
    assert "neutral standing pose" in job.prompt.text and job.source.fields == {"pose": "neutral standing pose, facing the viewer"}
    job = compose(req("knight", template="character-sprite", fields={"pose": "running"}))
    assert "knight, full body game character sprite, running," in job.prompt.text
    with pytest.raises(UserError, match=r"Unknown field 'colour'; the fields this style and template accept: pose\."):
        compose(req("knight", template="character-sprite", fields={"colour": "red"}))
    with pytest.raises(UserError, match=r"Unknown field 'text'.*accept: none\."):
        compose(req("knight", style="pixel-art", fields={"text": "x"}))
    with pytest.raises(UserError, match=r"The field 'text' is required by the ui-button template; fill it in \(on the command line, --field text=VALUE\)\."):
        compose(req("stone button", style="pixel-art", template="ui-button"))
    job = compose(req("stone button", style="flat-vector-icon", template="ui-button", fields={"text": "PLAY"}))
    assert 'the label "PLAY"' in job.prompt.text and "bright saturated colors" in job.prompt.text
    with pytest.raises(UserError, match="The subject is empty"):
        compose(req("   ", style="pixel-art"))


@pytest.mark.parametrize("value", ["{0.__class__}", "{subject}", "{text:>99999999}", "{{x}}", "}{", "{__import__}"])
def test_field_values_are_inserted_literally(value):
    job = compose(req(value, style="flat-vector-icon", template="ui-button", fields={"text": value, "palette": value}))
    assert f'the label "{value}"' in job.prompt.text
    assert f"flat vector illustration of {value}, game user interface button" in job.prompt.text
    assert f"{value} colors" in job.prompt.text
    assert len(job.prompt.text) < 1000


def test_loras_resolve_inside_the_pack_with_trigger_words(tmp_path):
    pack = lora_pack(tmp_path)
    job = compose(req("castle", style=pack))
    assert job.prompt.text == "inkstyle, ink drawing of castle"
    [lora] = job.model.loras
    assert Path(lora.path) == (pack.folder / "loras" / "ink.safetensors").resolve() and Path(lora.path).is_absolute()
    assert (lora.weight, lora.name) == (0.6, "ink")
    # a pack whose LoRA path escapes its folder (built in memory, past the schema) is refused
    pack.loras[0].file = "../../escape.safetensors"
    (tmp_path / "escape.safetensors").write_bytes(b"x")
    with pytest.raises(UserError, match="names a LoRA outside its folder"):
        compose(req("castle", style=pack))
    os.remove(pack.folder / "loras" / "ink.safetensors")
    pack.loras[0].file = "loras/ink.safetensors"
    with pytest.raises(UserError, match="missing from its folder"):
        compose(req("castle", style=pack))


def test_hub_lora_must_be_cached_and_match_its_sha256(tmp_path):
    import hashlib

    data = b"lora bytes"
    pack = StylePack(id="hub", name="Hub", prompt="{subject}", folder=tmp_path,
                     loras=[LoraEntry(repo="someone/ink", filename="ink.safetensors",
                                      sha256=hashlib.sha256(data).hexdigest())])
    with pytest.raises(UserError, match="uses the LoRA ink.safetensors from someone/ink, which is not downloaded"):
        compose(req(style=pack))
    snap = tmp_path / "hf" / "models--someone--ink" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "ink.safetensors").write_bytes(data)
    assert compose(req(style=pack)).model.loras[0].path == str(snap / "ink.safetensors")
    (snap / "ink.safetensors").write_bytes(b"tampered!!")
    with pytest.raises(UserError, match="does not match the sha256"):
        compose(req(style=pack))


def test_model_comes_from_the_style_when_not_given(tmp_path):
    with pytest.raises(UserError, match=r"None of the models the style 'pixel-art' recommends is installed .*pass --model"):
        compose(AssetRequest("potion", style="pixel-art"))
    with pytest.raises(UserError, match="No model is chosen.*--model PATH_OR_ID"):
        compose(AssetRequest("potion"))
    (tmp_path / "hf" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5" / "snapshots" / "x").mkdir(parents=True)
    assert compose(AssetRequest("potion", style="pixel-art")).model.checkpoint == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    local = tmp_path / "home" / "models" / "v1-5-pruned-emaonly.safetensors"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"x")
    pack = find_style("pixel-art")
    pack.recommended_models.reverse()  # the file first: a local file name is found in the models folder
    assert compose(AssetRequest("potion", style=pack)).model.checkpoint == str(local.resolve())
    assert compose(AssetRequest("potion", style=pack, model="mine/model")).model.checkpoint == "mine/model"


def test_negative_terms_shared_by_style_and_template_appear_once():
    job = compose(AssetRequest(subject="health potion", style="pixel-art", template="item-sprite", model="m"))
    terms = [t.strip().lower() for t in job.prompt.negative.split(",")]
    assert "watermark" in terms and "blurry" in terms
    assert len(terms) == len(set(terms))


def test_a_pack_cannot_point_its_recommended_model_outside_its_folders(tmp_path, monkeypatch):
    from asset_studio.core.compose import resolve_model
    from asset_studio.core.stylepack import StylePack

    pack_dir = tmp_path / "packs" / "p"
    pack_dir.mkdir(parents=True)
    outside = tmp_path / "secret-model.safetensors"
    outside.write_bytes(b"x")
    pack = StylePack(id="p", name="P", prompt="{subject}", recommended_models=["../../secret-model.safetensors"],
                     folder=pack_dir)
    with pytest.raises(UserError, match="None of the models"):
        resolve_model(pack)
    (pack_dir / "inside.safetensors").write_bytes(b"x")
    pack.recommended_models.append("inside.safetensors")
    assert resolve_model(pack) == str((pack_dir / "inside.safetensors").resolve())
