"""Style packs: the bundled packs, strict style.toml schema, save/load, where packs live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asset_studio.core.placeholders import PlaceholderError, fill, names
from asset_studio.core.stylepack import (
    Defaults, FieldSpec, LoraEntry, PostProcess, StylePack, bundled_styles_dir, find_style, list_styles,
    load_stylepack, parse_stylepack_text, save_stylepack,
)
from asset_studio.errors import UserError

BUNDLED = ("pixel-art", "flat-vector-icon", "hand-painted-fantasy", "cel-shaded")

GOOD = """
id = "test-style"
name = "Test"
family = "sd15"
prompt = "test art, {subject}, {mood}"
[fields.mood]
default = "calm"
[defaults]
steps = 20
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_bundled_packs_load_and_are_honest_about_being_prompt_only(home):
    packs = {p.id: p for p in list_styles()}
    for pack_id in BUNDLED:
        pack = packs[pack_id]
        assert pack.loras == []
        assert "prompt-only" in pack.description.lower()
        assert "{subject}" in pack.prompt
        assert Path(pack.folder).parent == bundled_styles_dir()
        assert pack.recommended_models
    assert packs["pixel-art"].postprocess.pixel_grid and packs["pixel-art"].postprocess.palette_size


def test_find_style_by_id_and_by_path(home):
    assert find_style("cel-shaded").name == "Cel-shaded"
    by_path = find_style(str(bundled_styles_dir() / "cel-shaded" / "style.toml"))
    assert by_path.id == "cel-shaded"
    with pytest.raises(UserError, match="No style pack 'no-such-style' is installed"):
        find_style("no-such-style")


@pytest.mark.parametrize(
    "change, message",
    [
        (("[defaults]\nsteps = 20", "[defaults]\nsteps = 0"), "style.toml: defaults.steps must be an integer from 1 to 150."),
        (("[defaults]\nsteps = 20", "[defaults]\nsteps = 2.5"), "style.toml: defaults.steps must be an integer from 1 to 150."),
        (("[defaults]\nsteps = 20", "[defaults]\nwidth = 500"), "style.toml: defaults.width must be a multiple of 8."),
        (("[defaults]\nsteps = 20", "[defaults]\nseed_policy = \"sometimes\""),
         'style.toml: defaults.seed_policy must be one of "fixed", "per-asset", "random".'),
        (("[defaults]\nsteps = 20", "[defaults]\nstpes = 20"), "style.toml: defaults.stpes is not a known setting."),
        (('family = "sd15"', 'family = "sd3"'), 'style.toml: family must be one of "sd15", "sd2", "sdxl".'),
        (('id = "test-style"', 'id = "Bad Id"'), "style.toml: id must be 1 to 64 lower-case"),
        (('id = "test-style"\n', ""), "style.toml: id is required."),
        (('"test art, {subject}, {mood}"', '"test art, {mood}"'), "style.toml: prompt must contain {subject}."),
        (('"test art, {subject}, {mood}"', '"{subject} {0.__class__}"'), "style.toml: prompt has a stray '{'"),
        (('"test art, {subject}, {mood}"', '"{subject} {colour}"'),
         "style.toml: prompt uses {colour}, which is not declared under [fields]."),
        (("[fields.mood]", "[fields.subject]"), "style.toml: fields.subject is not a valid field name"),
        (("[defaults]", '[[loras]]\nfile = "../outside.safetensors"\n[defaults]'),
         "style.toml: loras[0].file must be a path inside the pack (no '..')."),
        (("[defaults]", '[[loras]]\nfile = "/abs/x.safetensors"\n[defaults]'),
         "style.toml: loras[0].file must be a path inside the pack, not an absolute path."),
        (("[defaults]", '[[loras]]\nfile = "x.ckpt"\n[defaults]'), "style.toml: loras[0].file must be a .safetensors file."),
        (("[defaults]", '[[loras]]\nfile = "x.safetensors"\nweight = 9\n[defaults]'),
         "style.toml: loras[0].weight must be a number from -5 to 5."),
        (("[defaults]", '[[loras]]\nrepo = "a/b"\nfilename = "x.safetensors"\nsha256 = "abc"\n[defaults]'),
         "style.toml: loras[0].sha256 must be 64 lower-case hexadecimal digits."),
        (("[defaults]", "[[loras]]\nweight = 1\n[defaults]"), "style.toml: loras[0].file is required"),
        (("[defaults]", "[postprocess]\npalette_size = 999\n[defaults]"),
         "style.toml: postprocess.palette_size must be an integer from 0 to 256."),
        (('name = "Test"', 'name = "Test'), "style.toml is not valid TOML"),
    ],
)
def test_schema_errors_name_the_field(change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(UserError) as err:
        parse_stylepack_text(GOOD.replace(old, new, 1))
    assert message in str(err.value)


def test_save_and_load_round_trip(tmp_path):
    pack = StylePack(
        id="round-trip", name="Round trip", prompt="{subject} in {place}{extra} {must}", family="sdxl", author="me",
        recommended_models=["some/model"], negative="blurry", previews=["preview.png"],
        fields={"place": FieldSpec(description="where", default="a forest"), "extra": FieldSpec(default=""),
                "must": FieldSpec()},
        loras=[LoraEntry(file="loras/a.safetensors", weight=0.7, trigger_words=["rtx"]),
               LoraEntry(repo="owner/name", filename="b.safetensors", sha256="a" * 64, weight=-0.5)],
        defaults=Defaults(steps=12, cfg_scale=5.5, sampler="Euler", width=1024, height=768, seed_policy="fixed", seed=9),
        postprocess=PostProcess(remove_background=True, palette_size=8),
    )
    folder = tmp_path / "round-trip"
    (folder / "loras").mkdir(parents=True)
    (folder / "loras" / "a.safetensors").write_bytes(b"x")
    (folder / "preview.png").write_bytes(b"x")
    save_stylepack(pack, folder)
    loaded = load_stylepack(folder)
    assert loaded.folder == folder
    loaded.folder = None
    assert loaded == pack


def test_save_refuses_a_pack_that_would_not_load(tmp_path):
    pack = StylePack(id="x", name="X", prompt="no subject here")
    with pytest.raises(UserError, match="prompt must contain"):
        save_stylepack(pack, tmp_path / "x")
    assert not (tmp_path / "x" / "style.toml").exists()


def test_load_checks_the_files_it_names(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "style.toml").write_text(GOOD.replace("[defaults]", '[[loras]]\nfile = "l.safetensors"\n[defaults]'))
    with pytest.raises(UserError, match=r"loras\[0\].file names l.safetensors, which is not in the pack"):
        load_stylepack(folder)
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"x")
    os.symlink(outside, folder / "l.safetensors")
    with pytest.raises(UserError, match=r"loras\[0\].file points outside the pack"):
        load_stylepack(folder)
    with pytest.raises(UserError, match="is not a style pack"):
        load_stylepack(tmp_path)


def test_user_pack_shadows_bundled_pack_and_broken_packs_are_reported(home):
    user = home / "styles"
    (user / "mine").mkdir(parents=True)
    (user / "mine" / "style.toml").write_text(
        (bundled_styles_dir() / "pixel-art" / "style.toml").read_text().replace('name = "Pixel Art"', 'name = "Mine"'))
    (user / "broken").mkdir()
    (user / "broken" / "style.toml").write_text('id = "broken"\n')
    errors = []
    packs = {p.id: p for p in list_styles(on_error=lambda folder, exc: errors.append((folder.name, str(exc))))}
    assert packs["pixel-art"].name == "Mine"
    assert find_style("pixel-art").name == "Mine"
    assert errors == [("broken", "style.toml: name is required.")]


def test_placeholders_never_format():
    assert names("{a} {{b}} {c_1} {a}") == ["a", "c_1"]
    assert fill("{a}-{{lit}}-{b}", {"a": "{b}", "b": "{0.__class__}"}) == "{b}-{lit}-{0.__class__}"
    for bad in ("{0}", "{a.b}", "{a:>9}", "{a!r}", "x { y", "x } y", "{}"):
        with pytest.raises(PlaceholderError):
            names(bad)
