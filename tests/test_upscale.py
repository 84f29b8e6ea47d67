"""Upscalers: tiny spandrel-detected models (ESRGAN's RRDBNet, Real-ESRGAN's Compact) saved as
.safetensors and loaded through the path a user's file takes; the CLI; the catalog entries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from asset_studio.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread_and_a_private_cache")


def save_esrgan(path: Path, scale: int = 4) -> Path:
    """ESRGAN (old-arch RRDBNet) with 8 features and one block: random weights, real key names."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def save_compact(path: Path, scale: int = 2, residual: float = 0.2, seed: int = 0) -> Path:
    """Real-ESRGAN's SRVGGNetCompact, 8 features, 2 convs. The network adds its output to a nearest
    upscale of the input, so scaling the last conv by `residual` gives a model that is near the
    identity (colours and alpha survive) yet still changes every pixel."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    net = Compact(num_feat=8, num_conv=2, upscale=scale)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    last = max((k for k in state if k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))
    state[last] = state[last] * residual
    state[last.replace("weight", "bias")] = state[last.replace("weight", "bias")] * residual
    save_file(state, str(path))
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("upscalers")
    save_esrgan(folder / "tiny-esrgan.safetensors")
    save_compact(folder / "tiny-compact.safetensors")
    save_compact(folder / "wild-compact.safetensors", residual=1.0, seed=1)
    return folder


@pytest.fixture()
def cache():
    from asset_studio.engine.upscale import UpscalerCache

    return UpscalerCache()


def smooth(w: int, h: int) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin((xx + yy) / 9)], -1)
    return Image.fromarray((rgb * 255).round().astype(np.uint8), "RGB")


def sprite(size: int = 32, border: int = 6, soft: bool = True) -> Image.Image:
    """A red disc on black-under-transparent, as generators and cut-outs leave sprites."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    r = size / 2 - border
    dist = np.hypot(xx - size / 2, yy - size / 2)
    alpha = np.clip(r - dist + 0.5, 0, 1) if soft else (dist <= r).astype(np.float32)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 60, 40
    rgba[..., :3] = (rgba[..., :3] * (alpha[..., None] > 0)).astype(np.uint8)  # black where transparent
    rgba[..., 3] = (alpha * 255).round().astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


# --- the engine ------------------------------------------------------------------------------


def test_output_size_is_the_models_scale_and_architectures_are_detected(model_dir, cache):
    from asset_studio.engine.upscale import UpscaleSettings

    esrgan = cache.get(str(model_dir / "tiny-esrgan.safetensors"), device="cpu")
    compact = cache.get(str(model_dir / "tiny-compact.safetensors"), device="cpu")
    assert (esrgan.architecture, esrgan.scale) == ("ESRGAN", 4)
    assert (compact.architecture, compact.scale) == ("RealESRGAN Compact", 2)
    image = smooth(24, 16)
    out = esrgan.upscale(image)
    assert (out.size, out.mode) == ((96, 64), "RGB")  # opaque in, opaque out
    assert compact.upscale(image).size == (48, 32)
    # --scale differs from the model's: Lanczos down after one x4 pass; x2 model run twice then down to x3
    assert esrgan.upscale(image, UpscaleSettings(scale=2)).size == (48, 32)
    assert compact.upscale(image, UpscaleSettings(scale=3)).size == (72, 48)


def test_scale_above_the_model_runs_it_again(model_dir, cache, monkeypatch):
    from asset_studio.engine.upscale import ModelUpscaler, UpscaleSettings

    compact = cache.get(str(model_dir / "tiny-compact.safetensors"), device="cpu")
    calls = []
    real = ModelUpscaler.run_model
    monkeypatch.setattr(ModelUpscaler, "run_model", lambda self, arr, *a: calls.append(arr.shape) or real(self, arr, *a))
    assert compact.upscale(smooth(10, 8), UpscaleSettings(scale=8)).size == (80, 64)
    assert calls == [(8, 10, 3), (16, 20, 3), (32, 40, 3)]  # x2 three times reaches x8 exactly


def test_alpha_keeps_transparent_border_opaque_interior_and_no_dark_fringe(model_dir, cache):
    up = cache.get(str(model_dir / "tiny-compact.safetensors"), device="cpu")
    out = np.asarray(up.upscale(sprite(soft=True)))
    assert out.shape == (64, 64, 4)
    alpha = out[..., 3]
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    dist = np.hypot(xx - 32, yy - 32)  # the disc's edge is at 10 source pixels = 20 output pixels
    # More than a source pixel away from the edge, transparent stays exactly transparent and
    # opaque exactly opaque; only the band along the edge is the model's to shape.
    assert (alpha[dist > 25] == 0).all()
    assert (alpha[dist < 15] == 255).all()
    edge = alpha[(dist > 18) & (dist < 22)]
    assert ((edge > 0) & (edge < 255)).any()  # an anti-aliased edge stays anti-aliased
    # The colour under the visible edge is the sprite's, not the black hidden under transparency.
    visible_edge = out[(alpha > 0) & (alpha < 255)]
    assert visible_edge[:, 0].min() > 120, visible_edge[:, 0].min()


def test_hard_alpha_stays_hard(model_dir, cache):
    up = cache.get(str(model_dir / "tiny-compact.safetensors"), device="cpu")
    alpha = np.asarray(up.upscale(sprite(soft=False)))[..., 3]
    assert set(np.unique(alpha)) == {0, 255}


@pytest.mark.parametrize("name", ["wild-compact.safetensors", "tiny-esrgan.safetensors"])
def test_tiles_leave_no_seams(model_dir, cache, name):
    """Tiled output matches the whole-image output on a smooth input; tiles cut without overlap
    (what the feathered overlap prevents) would not, so the comparison can see seams."""
    from asset_studio.engine.upscale import UpscaleSettings

    up = cache.get(str(model_dir / name), device="cpu")
    image = smooth(72, 48)  # 3 x 2 tiles
    whole = np.asarray(up.upscale(image, UpscaleSettings(tile=0))).astype(int)
    tiled = np.asarray(up.upscale(image, UpscaleSettings(tile=32, overlap=8))).astype(int)
    butted = np.asarray(up.upscale(image, UpscaleSettings(tile=32, overlap=0))).astype(int)
    assert tiled.shape == whole.shape == (48 * up.scale, 72 * up.scale, 3)
    seam = np.abs(tiled - whole).max()
    assert seam <= 2, seam
    assert np.abs(butted - whole).max() > seam


def test_tiling_without_a_model_is_exact():
    """The blending itself: an exact x2 nearest 'model' gives the same result tiled and whole."""
    from asset_studio.engine.upscale import run_tiled, tile_spans

    assert tile_spans(100, 40, 10) == [(0, 40), (30, 70), (60, 100)]
    assert tile_spans(30, 40, 10) == [(0, 30)]
    rng = np.random.default_rng(0)
    image = rng.random((37, 53, 3), dtype=np.float32)
    double = lambda t: t.repeat(2, axis=0).repeat(2, axis=1)  # noqa: E731
    expected = np.clip(double(image) * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(run_tiled(double, image, 2, 16, 5), expected)


def test_nearest_is_an_exact_integer_upscale(cache):
    from asset_studio.engine.upscale import UpscaleSettings

    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    nearest = cache.get("nearest")
    out = np.asarray(nearest.upscale(Image.fromarray(src, "RGBA"), UpscaleSettings(scale=3)))
    assert np.array_equal(out, src.repeat(3, axis=0).repeat(3, axis=1))
    with pytest.raises(UserError, match="whole factor"):
        nearest.upscale(Image.fromarray(src, "RGBA"), UpscaleSettings(scale=2.5))
    with pytest.raises(UserError, match="--scale"):
        nearest.upscale(Image.fromarray(src, "RGBA"))


def test_unknown_architecture_and_bad_files_are_one_sentence(tmp_path, cache):
    import torch
    from safetensors.torch import save_file

    odd = tmp_path / "odd.safetensors"
    save_file({"encoder.layer.weight": torch.zeros(4, 4)}, str(odd))
    with pytest.raises(UserError, match="not an upscale model architecture") as info:
        cache.get(str(odd), device="cpu")
    assert "\n" not in str(info.value)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(UserError, match="not a valid .safetensors"):
        cache.get(str(junk), device="cpu")
    with pytest.raises(UserError, match="was not found"):
        cache.get(str(tmp_path / "missing.safetensors"), device="cpu")
    with pytest.raises(UserError, match="folder"):
        cache.get(str(tmp_path), device="cpu")


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt", ".bin"])
def test_pickles_are_refused_before_reading(tmp_path, cache, suffix):
    path = tmp_path / f"RealESRGAN_x4plus{suffix}"
    path.write_bytes(b"\x80\x04 not even read")
    with pytest.raises(UserError, match="pickle file, which can run code"):
        cache.get(str(path), device="cpu")


def test_loaded_models_are_cached_until_the_file_changes(cache, tmp_path):
    import os

    path = save_compact(tmp_path / "c.safetensors")
    first = cache.get(str(path), device="cpu")
    assert cache.get(str(path), device="cpu") is first and cache.loads == 1
    import torch

    assert cache.get(str(path), device=torch.device("cpu")) is first  # callers holding a torch.device
    save_compact(path, seed=3)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert cache.get(str(path), device="cpu") is not first and cache.loads == 2


def test_half_precision_only_on_cuda_and_where_the_architecture_allows(monkeypatch):
    from types import SimpleNamespace

    import torch

    from asset_studio.engine.upscale import pick_dtype

    both = SimpleNamespace(supports_half=True, supports_bfloat16=True)
    bf16_only = SimpleNamespace(supports_half=False, supports_bfloat16=True)
    neither = SimpleNamespace(supports_half=False, supports_bfloat16=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_dtype(both, cpu, torch.float16) == torch.float32
    assert pick_dtype(both, torch.device("mps"), torch.float16) == torch.float32
    assert pick_dtype(both, cuda, torch.float16) == torch.float16
    assert pick_dtype(both, cuda, torch.float32) == torch.float32
    assert pick_dtype(bf16_only, cuda, torch.float16) == torch.bfloat16
    assert pick_dtype(neither, cuda, torch.float16) == torch.float32


def test_settings_are_checked():
    from asset_studio.engine.upscale import UpscaleSettings, output_size

    for bad in (UpscaleSettings(scale=0), UpscaleSettings(scale=100), UpscaleSettings(tile=8),
                UpscaleSettings(tile=64, overlap=40), UpscaleSettings(overlap=-1)):
        with pytest.raises(UserError):
            bad.check()
    with pytest.raises(UserError, match="megapixels"):
        output_size((8000, 8000), 4)


# --- the catalog -------------------------------------------------------------------------------


def test_catalog_upscalers_are_bsd_safetensors_and_found_in_the_cache(model_dir, cache, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants as hf_constants

    from asset_studio.core.models import load_catalog

    entries = {e.id: e for e in load_catalog() if e.kind == "upscaler"}
    assert set(entries) >= {"realesrgan-x4plus", "realesrgan-x4plus-anime"}
    for entry in entries.values():
        assert entry.license == "BSD-3-Clause"
        assert len(entry.allow_patterns) == 1 and entry.allow_patterns[0].endswith(".safetensors")
        assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in entry.sha256.values())
    assert entries["realesrgan-x4plus"].sha256  # pinned; the anime file is not (see the catalog)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError, match="models download realesrgan-x4plus"):
        cache.get("realesrgan-x4plus", device="cpu")
    # After `models download`, the file sits in the Hub cache; the id finds it offline.
    entry = entries["realesrgan-x4plus"]
    repo_dir = tmp_path / "hub" / f"models--{entry.repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text("a" * 40)
    (repo_dir / "snapshots" / ("a" * 40)).mkdir(parents=True)
    shutil.copy(model_dir / "tiny-esrgan.safetensors", repo_dir / "snapshots" / ("a" * 40) / entry.allow_patterns[0])
    assert cache.get("realesrgan-x4plus", device="cpu").scale == 4


def test_download_stops_when_the_hub_file_differs_from_the_catalog(monkeypatch, tmp_path):
    from types import SimpleNamespace

    import huggingface_hub

    from asset_studio.core import models

    entry = models.find_catalog_entry("realesrgan-x4plus")
    fetched = []

    def model_info(self, repo, files_metadata=False):
        lfs = SimpleNamespace(sha256="0" * 64)
        return SimpleNamespace(sha="b" * 40, siblings=[SimpleNamespace(rfilename=entry.allow_patterns[0], size=10, lfs=lfs)])

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: fetched.append(a))
    with pytest.raises(UserError, match="sha256 differs"):
        models.download_entry(entry, cache_dir=tmp_path)
    assert fetched == []


# --- the command -------------------------------------------------------------------------------


def test_cli_upscales_files_and_folders_keeping_the_job(model_dir, tmp_path, capsys):
    from asset_studio.cli import main
    from asset_studio.core.library import JOB_CHUNK, PARAMETERS_CHUNK

    src = tmp_path / "in"
    (src / "icons").mkdir(parents=True)
    info = PngInfo()
    info.add_text(PARAMETERS_CHUNK, "a potion\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 24x16")
    info.add_text(JOB_CHUNK, json.dumps({"prompt": "a potion", "seed": 5}))
    smooth(24, 16).save(src / "potion.png", pnginfo=info)
    sprite(16, 3).save(src / "icons" / "coin.png")
    out = tmp_path / "out"
    model = str(model_dir / "tiny-compact.safetensors")

    assert main(["upscale", str(src), "--model", model, "--out", str(out), "--tile", "32", "--overlap", "8"]) == 0
    with Image.open(out / "potion.png") as im:
        im.load()
        assert (im.size, im.mode) == ((48, 32), "RGB")
        assert im.text[PARAMETERS_CHUNK].startswith("a potion")  # outside readers still see the prompt
        assert json.loads(im.text[JOB_CHUNK]) == {"prompt": "a potion", "seed": 5}
        assert im.text["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: tiny-compact"
    with Image.open(out / "icons" / "coin.png") as im:
        assert (im.size, im.mode) == ((32, 32), "RGBA")

    # Nothing is overwritten without --force; the check comes before any work.
    assert main(["upscale", str(src), "--model", model, "--out", str(out)]) == 2
    assert "already exist" in capsys.readouterr().err
    assert main(["upscale", str(out / "potion.png"), "--model", "nearest", "--scale", "2",
                 "--out", str(tmp_path / "px"), "--force"]) == 0
    with Image.open(tmp_path / "px" / "potion.png") as im:
        im.load()
        assert im.size == (96, 64)
        assert im.text["postprocessing"].splitlines() == [
            "Postprocess upscale by: 2, Postprocess upscaler: tiny-compact",
            "Postprocess upscale by: 2, Postprocess upscaler: nearest",
        ]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "RealESRGAN_x4plus.pth"], "pickle file"),
        (["--model", "nearest"], "--scale N"),
        (["--model", "nearest", "--scale", "1.5"], "whole factor"),
        (["--model", "nearest", "--scale", "2", "--tile", "4"], "tile size"),
    ],
)
def test_cli_errors_are_one_sentence(tmp_path, capsys, extra, message):
    from asset_studio.cli import main

    smooth(8, 8).save(tmp_path / "a.png")
    if "RealESRGAN_x4plus.pth" in extra:
        (tmp_path / "RealESRGAN_x4plus.pth").write_bytes(b"\x80\x04")
        extra = ["--model", str(tmp_path / "RealESRGAN_x4plus.pth")]
    assert main(["upscale", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "a.png").exists()
