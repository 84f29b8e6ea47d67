"""`asset-studio style …` and generation from a style pack, end to end on the tiny model."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pytest

from asset_studio.cli import main


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_show(capsys):
    code, out, _ = run(capsys, "style", "list")
    assert code == 0
    for pack_id in ("pixel-art", "flat-vector-icon", "hand-painted-fantasy", "cel-shaded"):
        line = next(line for line in out.splitlines() if line.startswith(pack_id + " "))
        assert "prompt-only" in line and "bundled" in line
    code, out, _ = run(capsys, "style", "show", "pixel-art")
    assert code == 0 and "Pixel Art  (pixel-art 1.0.0, bundled)" in out
    assert "pixel_grid=64" in out and "LoRA:        none (prompt-only)" in out
    code, out, err = run(capsys, "style", "show", "nope")
    assert code == 2 and out == ""
    assert err == "asset-studio: error: No style pack 'nope' is installed; `asset-studio style list` shows the installed ones.\n"


def test_export_import_replace(capsys, tmp_path, home):
    code, out, _ = run(capsys, "style", "export", "cel-shaded", "--out", str(tmp_path / "cel"))
    packfile = tmp_path / "cel.stylepack"
    assert code == 0 and out.strip() == str(packfile) and zipfile.is_zipfile(packfile)

    code, out, _ = run(capsys, "style", "import", str(packfile))
    assert code == 0 and "Imported 'Cel-shaded (2)' as cel-shaded-2: a pack with the id cel-shaded is already installed" in out
    code, out, _ = run(capsys, "style", "import", str(packfile), "--replace")
    assert code == 0 and "replacing the installed pack" in out
    assert (home / "styles" / "cel-shaded" / "style.toml").read_bytes() == \
        (Path(__file__).resolve().parents[1] / "styles" / "cel-shaded" / "style.toml").read_bytes()
    code, out, _ = run(capsys, "style", "list")
    assert "cel-shaded-2" in out and "user" in out


def test_bad_import_is_one_line_and_exit_2(capsys, tmp_path, home):
    bad = tmp_path / "bad.stylepack"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "asset-studio.stylepack", "format_version": 1,
                                                 "id": "x", "version": "1", "files": {"../x.txt": {"sha256": "0" * 64, "size": 1}}}))
        zf.writestr("../x.txt", "x")
    code, out, err = run(capsys, "style", "import", str(bad))
    assert code == 2 and out == ""
    assert err.startswith("asset-studio: error: The pack contains a path that leaves the pack") and err.count("\n") == 1
    assert not (home / "styles").exists() or not any((home / "styles").iterdir())


@pytest.fixture
def ink_pack(tmp_path, tiny_sd15_dir) -> Path:
    """A style pack with a tiny kohya LoRA for the tiny SD 1.5 model."""
    from lora_factory import make_kohya_lora

    from asset_studio.core.stylepack import LoraEntry, StylePack, save_stylepack

    folder = tmp_path / "ink"
    make_kohya_lora(folder / "loras" / "ink.safetensors", "sd15", strength=1.0)
    save_stylepack(StylePack(id="ink", name="Ink", prompt="ink drawing of {subject}", family="sd15",
                             recommended_models=[str(tiny_sd15_dir)],
                             loras=[LoraEntry(file="loras/ink.safetensors", weight=1.0, trigger_words=["inky"])]),
                   folder)
    return folder


@pytest.mark.slow
def test_compose_then_engine_applies_the_style_lora(ink_pack, tiny_sd15_dir):
    import numpy as np

    from asset_studio.core.request import AssetRequest, Overrides, prepare
    from asset_studio.engine.backend import LocalBackend

    job = prepare(AssetRequest("health potion", style=str(ink_pack), template="icon",
                               overrides=Overrides(steps=1, width=64, height=64)))
    assert job.model.checkpoint == str(Path(tiny_sd15_dir).resolve())  # the style's recommended model
    assert job.prompt.text.startswith("inky, ink drawing of health potion, game icon")
    engine = LocalBackend(device="cpu")
    [styled] = engine.generate(job)
    pipe = engine.load(job).pipe
    job.model.loras = []
    [plain] = engine.generate(job)
    assert engine.load(job).pipe is pipe  # the same base pipeline, LoRA on and off
    difference = np.abs(np.asarray(styled.image, dtype=float) - np.asarray(plain.image, dtype=float)).mean()
    assert difference > 0.5


def _generate_supports_styles() -> bool:
    if importlib.util.find_spec("asset_studio.commands.generate") is None:
        return False
    from asset_studio.commands import generate

    return "--style" in Path(generate.__file__).read_text()


@pytest.mark.slow
@pytest.mark.skipif(not _generate_supports_styles(), reason="the generate command has no --style option in this build")
def test_generate_with_a_bundled_style_end_to_end(capsys, tmp_path, tiny_sd15_dir):
    from PIL import Image

    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "generate", "health potion", "--style", "pixel-art", "--model", str(tiny_sd15_dir),
                         "--steps", "2", "--size", "64x64", "--out", str(out_dir))
    from asset_studio.engine.background import model_file

    if model_file("u2netp") is None:  # without rembg's model the raw image is made and the artist told how
        assert code == 0 and "u2netp.onnx" in err and "asset-studio finish" in err
        assert list(out_dir.glob("*.png")) and not (out_dir / "sprites").exists()
        return
    assert code == 0, err
    [png] = sorted(out_dir.glob("*.png"))
    with Image.open(out_dir / "sprites" / png.name) as sprite:  # the pack's pixel-art cut-out
        assert sprite.mode == "RGBA" and set(sprite.getchannel("A").tobytes()) <= {0, 255}
    assert str(png) in out
    with Image.open(png) as image:
        assert image.size == (64, 64)
        text = dict(image.text)
    job = json.loads(next(v for v in text.values() if v.lstrip().startswith("{")))
    assert job["source"]["style"] == "pixel-art" and job["source"]["subject"] == "health potion"
    assert job["prompt"]["text"].startswith("pixel art, health potion, 16-bit")
    s = job["sampling"]
    assert (s["steps"], s["width"], s["height"], s["sampler"]) == (2, 64, 64, "Euler a")
