"""Character references carried by a style pack: style.toml's [[references]], the files' checks,
.stylepack export/import, prepare() putting them in the job, and `style add-reference`."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
import tomli_w
from PIL import Image, PngImagePlugin

from asset_studio.cli import main
from asset_studio.core import stylepack
from asset_studio.core.job import Reference
from asset_studio.core.pack_references import add_reference
from asset_studio.core.packfile import export_stylepack, import_stylepack
from asset_studio.core.request import AssetRequest, prepare
from asset_studio.core.stylepack import (
    ReferenceEntry, StylePack, find_style, load_stylepack, parse_stylepack_text, save_stylepack, user_styles_dir,
)
from asset_studio.errors import UserError

BASE = 'id = "knight"\nname = "Knight"\nfamily = "sd15"\nprompt = "{subject}, knight character"\n'


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def png(path: Path, size=(16, 24), color=(40, 90, 200), fmt="PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt)
    return path


def knight_pack(folder: Path, **extra) -> Path:
    png(folder / "references" / "front.png")
    png(folder / "references" / "side.jpg", color=(200, 40, 40), fmt="JPEG")
    save_stylepack(StylePack(id="knight", name="Knight", prompt="{subject}, knight character",
                             references=[ReferenceEntry("references/front.png", 0.8),
                                         ReferenceEntry("references/side.jpg", 0.4, "style")],
                             ip_adapter="ip-adapter-plus-sd15", **extra), folder)
    return folder


# --- style.toml ----------------------------------------------------------------------------------


def test_references_parse_with_defaults_and_write_back():
    pack = parse_stylepack_text(BASE + 'ip_adapter = "ip-adapter-plus-sd15"\n'
                                       'image_encoder = "ip-adapter-image-encoder-vit-h"\n'
                                       '[[references]]\nfile = "references/hero.png"\n'
                                       '[[references]]\nfile = "references/b.webp"\nscale = 1.5\nmode = "style"\n')
    assert pack.references == [ReferenceEntry("references/hero.png", 0.6, "full"),
                               ReferenceEntry("references/b.webp", 1.5, "style")]
    assert (pack.ip_adapter, pack.image_encoder) == ("ip-adapter-plus-sd15", "ip-adapter-image-encoder-vit-h")
    again = stylepack.parse_stylepack(pack.to_toml_dict())
    assert again.references == pack.references and again.ip_adapter == pack.ip_adapter


@pytest.mark.parametrize("toml, message", [
    ('[[references]]\nfile = "../elsewhere/hero.png"\n', "style.toml: references[0].file must be a path inside the pack (no '..')."),
    ('[[references]]\nfile = "/home/me/hero.png"\n', "style.toml: references[0].file must be a path inside the pack, not an absolute path."),
    ('[[references]]\nfile = "C:/hero.png"\n', "style.toml: references[0].file must use / between folders and no backslash or colon."),
    ('[[references]]\nfile = "references/hero.gif"\n', "style.toml: references[0].file must be a .png or .jpg or .jpeg or .webp file."),
    ('[[references]]\nfile = "hero.png"\nscale = 3\n', "style.toml: references[0].scale must be a number from 0 to 2."),
    ('[[references]]\nfile = "hero.png"\nmode = "pose"\n', 'style.toml: references[0].mode must be one of "full", "style".'),
    ('[[references]]\nfile = "hero.png"\nweight = 1\n', "style.toml: references[0].weight is not a known setting."),
    ('references = [' + ', '.join(['{file = "a.png"}'] * 5) + ']\n', "style.toml: references must be a list of at most 4 tables."),
    ('ip_adapter = "../ip.safetensors"\n', "style.toml: ip_adapter must be a path inside the pack (no '..')."),
    ('ip_adapter = "h94/IP-Adapter"\n', "style.toml: ip_adapter must be a catalog id (like ip-adapter-plus-sd15) or a "
                                         ".safetensors file in the pack."),
    ('ip_adapter = "adapters/ip.bin"\n', "style.toml: ip_adapter must be a catalog id (like ip-adapter-plus-sd15) or a "
                                          ".safetensors file in the pack."),
    ('image_encoder = "ip-adapter-image-encoder-vit-h"\n', "style.toml: image_encoder needs ip_adapter: an image encoder "
                                                           "belongs to an IP-Adapter."),
])
def test_bad_references_are_one_sentence_naming_the_field(toml, message):
    with pytest.raises(UserError) as err:
        parse_stylepack_text(BASE + toml)
    assert str(err.value) == message


def test_load_checks_the_reference_files(tmp_path, monkeypatch):
    folder = knight_pack(tmp_path / "knight")
    pack = load_stylepack(folder)
    assert [r.file for r in pack.references] == ["references/front.png", "references/side.jpg"]

    def refused(message: str):
        with pytest.raises(UserError) as err:
            load_stylepack(folder)
        assert str(err.value) == message

    (folder / "references" / "front.png").unlink()
    refused("style.toml: references[0].file names references/front.png, which is not in the pack.")
    outside = png(tmp_path / "outside.png")
    os.symlink(outside, folder / "references" / "front.png")
    refused("style.toml: references[0].file points outside the pack.")
    (folder / "references" / "front.png").unlink()
    (folder / "references" / "front.png").write_text("not a picture")
    refused("style.toml: references[0].file (references/front.png) is not a readable image.")
    Image.new("RGB", (8, 8)).save(folder / "references" / "front.png", "GIF")
    refused("style.toml: references[0].file (references/front.png) is a GIF picture; a pack's pictures are PNG, JPEG or WebP.")
    png(folder / "references" / "front.png", size=(5000, 2))
    refused("style.toml: references[0].file (references/front.png) is 5000x2 pixels, over the limit of 4096 pixels per side.")
    png(folder / "references" / "front.png")
    monkeypatch.setattr(stylepack, "MAX_IMAGE_BYTES", 50)
    size = (folder / "references" / "front.png").stat().st_size
    refused(f"style.toml: references[0].file (references/front.png) is {size:,} bytes, over the limit of 50 bytes "
            "for a pack's picture.")


def test_an_adapter_shipped_in_the_pack_must_be_there(tmp_path):
    folder = knight_pack(tmp_path / "knight")
    raw = load_stylepack(folder).to_toml_dict()
    raw["ip_adapter"] = "adapters/ip.safetensors"
    (folder / "style.toml").write_text(tomli_w.dumps(raw))
    with pytest.raises(UserError, match=r"^style.toml: ip_adapter names adapters/ip.safetensors, which is not in the pack\.$"):
        load_stylepack(folder)


# --- .stylepack ----------------------------------------------------------------------------------


def test_export_import_round_trip_carries_the_pictures(tmp_path):
    folder = knight_pack(tmp_path / "src" / "knight")
    out = export_stylepack(str(folder), tmp_path / "knight.stylepack")
    with zipfile.ZipFile(out) as zf:
        assert zf.read("references/front.png") == (folder / "references" / "front.png").read_bytes()
    result = import_stylepack(out)
    assert result.folder == user_styles_dir() / "knight"
    for name in ("front.png", "side.jpg"):
        assert (result.folder / "references" / name).read_bytes() == (folder / "references" / name).read_bytes()
    assert result.pack.references == load_stylepack(folder).references
    assert result.pack.ip_adapter == "ip-adapter-plus-sd15"


def _rezip(source: Path, target: Path, change) -> Path:
    """SOURCE's entries with CHANGE(files) applied, and a manifest that matches them."""
    import hashlib
    import json

    with zipfile.ZipFile(source) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
        manifest = json.loads(zf.read("manifest.json"))
    change(files)
    manifest["files"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()}
    with zipfile.ZipFile(target, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            zf.writestr(name, data)
    return target


@pytest.mark.parametrize("change, message", [
    (lambda f: f.pop("references/front.png"), "style.toml: references[0].file names references/front.png, which is not in the pack."),
    (lambda f: f.update({"references/front.png": b"#!/bin/sh\necho hi\n"}), "The pack's file references/front.png is not a PNG image."),
    (lambda f: f.update({"references/front.png": _png_bytes((6000, 1))}),
     "The pack's image references/front.png is 6000x1 pixels, over the limit of 4096 pixels per side."),
    (lambda f: f.update({"references/hero.exe": b"MZ"}),
     "The pack contains references/hero.exe, a file type style packs may not hold; allowed: "
     ".toml .safetensors .png .jpg .jpeg .webp .txt .md .json."),
])
def test_import_refuses_bad_reference_pictures_in_one_sentence(tmp_path, change, message):
    folder = knight_pack(tmp_path / "src" / "knight")
    good = export_stylepack(str(folder), tmp_path / "knight.stylepack")
    bad = _rezip(good, tmp_path / "bad.stylepack", change)
    with pytest.raises(UserError) as err:
        import_stylepack(bad)
    assert str(err.value) == message
    assert not user_styles_dir().exists() or not any(user_styles_dir().iterdir())


def _png_bytes(size) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size).save(buf, "PNG")
    return buf.getvalue()


# --- prepare() -----------------------------------------------------------------------------------


def test_prepare_puts_the_style_references_first_and_the_artist_can_add_or_replace(tmp_path):
    folder = knight_pack(tmp_path / "knight")
    pack = load_stylepack(folder)
    mine = png(tmp_path / "pose-ref.png")
    front, side = (str((folder / "references" / n).resolve()) for n in ("front.png", "side.jpg"))

    job = prepare(AssetRequest("sword swing", style=pack, model="tiny/model"), tmp_path / "out")
    assert job.references == [Reference(front, 0.8, "full"), Reference(side, 0.4, "style")]
    assert (job.model.ip_adapter, job.model.image_encoder) == ("ip-adapter-plus-sd15", None)

    job = prepare(AssetRequest("sword swing", style=pack, model="tiny/model",
                               references=[Reference(str(mine), 1.2)]), tmp_path / "out")
    assert [r.image for r in job.references] == [front, side, str(mine.resolve())]
    assert job.references[2].scale == 1.2

    job = prepare(AssetRequest("sword swing", style=pack, model="tiny/model", style_references=False,
                               references=[Reference(str(mine))]), tmp_path / "out")
    assert job.references == [Reference(str(mine.resolve()), 0.6, "full")]
    assert job.model.ip_adapter == "ip-adapter-plus-sd15"  # the style's adapter still serves the artist's picture

    job = prepare(AssetRequest("sword swing", style=pack, model="tiny/model", style_references=False), tmp_path / "out")
    assert job.references == [] and job.model.ip_adapter is None  # nothing to steer: no adapter loads


def test_the_style_adapter_and_encoder_and_the_artists_own(tmp_path):
    folder = knight_pack(tmp_path / "knight", image_encoder="ip-adapter-image-encoder-vit-h")
    (folder / "adapters").mkdir()
    from safetensors.numpy import save_file
    import numpy as np

    save_file({"image_proj.proj.weight": np.zeros((4, 4), np.float32)}, str(folder / "adapters" / "ip.safetensors"))
    raw = load_stylepack(folder).to_toml_dict()
    raw["ip_adapter"] = "adapters/ip.safetensors"
    (folder / "style.toml").write_text(tomli_w.dumps(raw))
    pack = load_stylepack(folder)

    job = prepare(AssetRequest("x", style=pack, model="tiny/model"), tmp_path / "out")
    assert job.model.ip_adapter == str((folder / "adapters" / "ip.safetensors").resolve())
    assert job.model.image_encoder == "ip-adapter-image-encoder-vit-h"
    # The artist's adapter wins, and the style's encoder (made for the style's adapter) is left out.
    job = prepare(AssetRequest("x", style=pack, model="tiny/model", ip_adapter="ip-adapter-sd15"), tmp_path / "out")
    assert (job.model.ip_adapter, job.model.image_encoder) == ("ip-adapter-sd15", None)


def test_a_style_without_an_adapter_needs_one_from_the_artist(tmp_path):
    folder = knight_pack(tmp_path / "knight")
    raw = load_stylepack(folder).to_toml_dict()
    del raw["ip_adapter"]
    (folder / "style.toml").write_text(tomli_w.dumps(raw))
    with pytest.raises(UserError, match=r"Reference images need an IP-Adapter model \(--ip-adapter\)"):
        prepare(AssetRequest("x", style=load_stylepack(folder), model="tiny/model"), tmp_path / "out")


# --- add-reference -------------------------------------------------------------------------------


def test_add_reference_copies_a_small_clean_png_and_refuses_bundled_packs(tmp_path):
    folder = user_styles_dir() / "knight"
    save_stylepack(StylePack(id="knight", name="Knight", prompt="{subject}"), folder)
    source = tmp_path / "Hero Front.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("asset-studio-job", '{"model": "/home/me/secret/model.safetensors"}')
    Image.new("RGBA", (2048, 1024), (10, 20, 30, 128)).save(source, "PNG", pnginfo=info)

    pack = add_reference(find_style("knight"), source, scale=0.9, mode="style", ip_adapter="ip-adapter-sd15")
    assert pack.references == [ReferenceEntry("references/hero-front.png", 0.9, "style")]
    assert pack.ip_adapter == "ip-adapter-sd15"
    with Image.open(folder / "references" / "hero-front.png") as im:
        assert im.size == (1024, 512) and im.mode == "RGBA" and "asset-studio-job" not in im.info
    again = add_reference(pack, source)
    assert [r.file for r in again.references] == ["references/hero-front.png", "references/hero-front-2.png"]
    assert again.ip_adapter == "ip-adapter-sd15"

    with pytest.raises(UserError, match=r"^The style Pixel Art is bundled and read-only: copy its folder into "):
        add_reference(find_style("pixel-art"), source)
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(UserError, match=r"^The reference image .*notes\.png is not a readable image\.$"):
        add_reference(again, tmp_path / "notes.png")
    with pytest.raises(UserError, match=r"^A reference's strength must be between 0 and 2, not 2\.5\.$"):
        add_reference(again, source, scale=2.5)
    with pytest.raises(UserError, match=r"catalog id .* not 'h94/IP-Adapter'"):
        add_reference(again, source, ip_adapter="h94/IP-Adapter")
    pack = add_reference(add_reference(again, source), source)
    with pytest.raises(UserError, match=r"already has 4 references, the most a job takes"):
        add_reference(pack, source)
    assert len(list((folder / "references").iterdir())) == 4  # refusals wrote nothing


def test_cli_add_reference_show_and_generate_flag(tmp_path, capsys):
    folder = user_styles_dir() / "knight"
    save_stylepack(StylePack(id="knight", name="Knight", prompt="{subject}"), folder)
    image = png(tmp_path / "front.png")
    assert main(["style", "add-reference", "knight", str(image), "--scale", "0.7", "--ip-adapter",
                 "ip-adapter-plus-sd15"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Added references/front.png to knight at 0.7 (full); it has 1 reference(s)."
    assert main(["style", "show", "knight"]) == 0
    out = capsys.readouterr().out
    assert "  reference:   references/front.png at 0.7 (full)" in out and "  IP-Adapter:  ip-adapter-plus-sd15" in out
    assert main(["style", "add-reference", "knight", str(image), "--scale", "3"]) == 2
    assert capsys.readouterr().err == "asset-studio: error: A reference's strength must be between 0 and 2, not 3.\n"
    assert main(["style", "add-reference", "knight", str(tmp_path / "none.png")]) == 2
    assert capsys.readouterr().err.endswith("does not exist.\n")

    import argparse

    from asset_studio.commands import generate

    parser = argparse.ArgumentParser()
    generate.register(parser.add_subparsers())
    args = parser.parse_args(["generate", "a knight", "--style", "knight", "--model", "tiny/model",
                              "--no-style-references", "--reference", str(image)])
    request = generate.build_request(args)
    assert request.style_references is False
    job = prepare(request, tmp_path / "out")
    assert [r.image for r in job.references] == [str(image.resolve())]
    args = parser.parse_args(["generate", "a knight", "--style", "knight", "--model", "tiny/model"])
    job = prepare(generate.build_request(args), tmp_path / "out")
    assert [Path(r.image).name for r in job.references] == ["front.png"]
    assert job.model.ip_adapter == "ip-adapter-plus-sd15"


# --- end to end on the tiny model ------------------------------------------------------------------


@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_an_imported_pack_steers_with_its_reference_and_its_own_adapter(tmp_path, tiny_sd15_dir):
    """A pack that ships its reference and its (tiny) IP-Adapter: exported, imported, then used with no
    reference flag at all; switching the style's references off gives the plain image back."""
    import numpy as np

    from asset_studio.engine.backend import LocalBackend
    from test_ip_adapter import save_adapter, save_encoder
    from tiny_models import build_tiny_sd15

    src = tmp_path / "src" / "knight"
    rng = np.random.default_rng(0)
    (src / "references").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(src / "references" / "front.png")
    (src / "adapters").mkdir()
    save_adapter(build_tiny_sd15().unet, src / "adapters" / "ip-tiny.safetensors")
    save_stylepack(StylePack(id="knight", name="Knight", prompt="{subject}, knight",
                             references=[ReferenceEntry("references/front.png", 1.0)],
                             ip_adapter="adapters/ip-tiny.safetensors"), src)
    installed = import_stylepack(export_stylepack(str(src), tmp_path / "knight.stylepack")).pack
    encoder = save_encoder(tmp_path / "image_encoder")  # tiny: no catalog encoder matches it

    def run(**kw):
        request = AssetRequest("a knight", style="knight", model=str(tiny_sd15_dir), image_encoder=str(encoder), **kw)
        request.overrides.width = request.overrides.height = 64
        request.overrides.steps, request.overrides.seed, request.overrides.cfg_scale = 2, 7, 2.0
        job = prepare(request, tmp_path / "out")
        [result] = LocalBackend(device="cpu").generate(job)
        return job, np.asarray(result.image, dtype=float)

    job, steered = run()
    assert job.references == [Reference(str((installed.folder / "references" / "front.png").resolve()), 1.0)]
    assert job.model.ip_adapter == str((installed.folder / "adapters" / "ip-tiny.safetensors").resolve())
    off, plain = run(style_references=False)
    assert off.references == [] and off.model.ip_adapter is None
    assert np.abs(steered - plain).mean() > 0.5  # the pack's picture changed the image
