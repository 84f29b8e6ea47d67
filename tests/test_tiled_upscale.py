"""The tiled img2img upscale (Ultimate SD Upscale): where it redraws, how pieces paste back, and the
engine pass over the loaded model: sizes, seeds, progress, seams, a tile ControlNet, the record in
the PNG and an exact re-run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asset_studio.core import tiled_redraw
from asset_studio.core.job import HiresFix, Passes, TiledUpscale, check_limits, upscaled_size
from asset_studio.core.library import a1111_parameters, parse_parameters
from asset_studio.errors import UserError
from jobs import make_job


def smooth_picture(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 60 + 120 * x / width
    g = 80 + 100 * y / height
    b = 128 + 60 * np.sin(x / 40) * np.cos(y / 50)
    return np.dstack([r, g, b]).round().astype(np.uint8)


# --- where the pieces go (pure) ---------------------------------------------------------------------


@pytest.mark.parametrize("seams", ["none", "band", "half-tile"])
def test_tiles_own_every_pixel_and_crops_keep_one_size(seams):
    pieces = tiled_redraw.redraws(300, 200, 128, 32, 8, seams, 48)
    tiles = [p for p in pieces if p.kind == "tile"]
    assert len(tiles) == 3 * 2  # ceil(300 / 128) x ceil(200 / 128)
    owned = np.zeros((200, 300), int)
    for p in tiles:
        x0, y0, x1, y1 = p.rect
        owned[y0:y1, x0:x1] += 1
        bx0, by0, bx1, by1 = p.box
        assert bx0 <= x0 and by0 <= y0 and x1 <= bx1 and y1 <= by1
        assert p.size == (min(300, 128 + 64), min(200, 128 + 64))  # shifted inward at the edges, never cut
    assert (owned == 1).all()
    joins = {"none": 0, "band": 2 * 2 + 1 * 3, "half-tile": 2 * 2 + 1 * 3}[seams]
    assert len(pieces) - len(tiles) == joins


def test_masks_are_one_inside_and_fade_out_only_towards_other_pieces():
    [first, second] = tiled_redraw.redraws(256, 128, 128, 32, 8)
    m = first.mask()
    x0, y0, x1, y1 = first.rect
    assert (m[y0:y1, x0:x1] == 1).all()
    assert m[0, 127] == 1 and 0 < m[0, 128] < 1 and m[0, 128 + 16] == 0  # fades over 2 x mask blur
    assert m[0, 0] == 1  # the picture's border does not fade
    half = [p for p in tiled_redraw.redraws(256, 128, 128, 32, 8, "half-tile") if p.kind == "half-tile"][0]
    hm = half.mask()
    join = 128 - half.box[0]
    assert hm[10, join] > 0.95 and hm[10, half.rect[0] - half.box[0]] < 0.05  # peaks on the join


def test_an_unchanged_redraw_pastes_back_exactly():
    picture = smooth_picture(300, 200)
    out = picture.copy()
    for p in tiled_redraw.redraws(300, 200, 128, 32, 8, "band", 48):
        tiled_redraw.paste(out, tiled_redraw.crop(out, p), p)
    assert np.array_equal(out, picture)


def test_feathered_pastes_hide_the_joins_of_tiles_that_disagree():
    """Each tile comes back a little brighter or darker (as a redraw drifts): with the feather, the
    step between neighbouring pixels across a join stays a small part of the tiles' disagreement."""
    picture = smooth_picture(256, 256)
    offsets = [12, -12, -12, 12]

    def run(mask_blur):
        out = picture.copy()
        for p, offset in zip(tiled_redraw.redraws(256, 256, 128, 32, mask_blur), offsets):
            crop = np.asarray(tiled_redraw.crop(out, p), dtype=np.int16) + offset
            tiled_redraw.paste(out, Image.fromarray(crop.clip(0, 255).astype(np.uint8)), p)
        return out.astype(np.int16)

    def worst_step(out):
        across = np.abs(np.diff(out, axis=1))[:, 100:156].max()  # the vertical join at x = 128
        down = np.abs(np.diff(out, axis=0))[100:156, :].max()
        inside = np.abs(np.diff(picture.astype(np.int16), axis=1)).max()
        return max(across, down) - inside

    assert worst_step(run(0)) >= 20  # a hard paste shows the 24-level jump
    assert worst_step(run(8)) <= 4  # spread over 16 pixels: no visible line


# --- the job ---------------------------------------------------------------------------------------


def tiled_job(model, **settings):
    job = make_job(model, "a castle courtyard", width=64, height=64, steps=2, seed=11)
    job.passes = Passes(tiled_upscale=TiledUpscale(**{"scale": 2, "tile": 64, "padding": 16, "mask_blur": 4,
                                                      "denoise": 0.5, "steps": 1, **settings}))
    return job


@pytest.mark.parametrize("settings, words", [
    ({"scale": 1}, "scale must be above 1 and at most 8"),
    ({"tile": 60}, "tile must be a multiple of 8 from 64 to 2048"),
    ({"padding": 40}, "padding must be between 0 and half the tile"),
    ({"mask_blur": 9}, "mask blur must be between 0 and half the padding"),
    ({"denoise": 1.5}, "denoise must be between 0 \\(enlarge only\\) and 1"),
    ({"seams": "band", "seams_width": 4}, "seams band must be 8 to 64 pixels wide"),
    ({"upscaler": "latent"}, "enlarges the picture, not latents"),
    ({"controlnet_scale": 3}, "tile ControlNet's strength must be between 0 and 2"),
    ({"scale": 8, "tile": 64}, None),
])
def test_bad_settings_are_one_sentence(settings, words):
    job = tiled_job("m", **settings)
    if words is None:
        job.sampling.width = job.sampling.height = 4096
        words = "would make 32768x32768"
    with pytest.raises(UserError, match=words):
        check_limits(job)


def test_a_seamless_tile_is_refused():
    job = tiled_job("m")
    job.tiling = "both"
    with pytest.raises(UserError, match="seamless tile cannot take the tiled upscale"):
        check_limits(job)


def test_the_job_records_it_the_way_ultimate_sd_upscale_writes_it():
    job = tiled_job("/m/model.safetensors", upscaler="/u/4x-UltraSharp.safetensors", seams="band", seams_width=48,
                    controlnet="/c/control_v11f1e_sd15_tile.safetensors", controlnet_scale=0.8)
    parsed = parse_parameters(a1111_parameters(job))
    assert parsed["Ultimate SD upscale upscaler"] == "4x-UltraSharp"
    assert parsed["Ultimate SD upscale tile_width"] == parsed["Ultimate SD upscale tile_height"] == "64"
    assert parsed["Ultimate SD upscale mask_blur"] == "4" and parsed["Ultimate SD upscale padding"] == "16"
    assert parsed["Denoising strength"] == "0.5" and parsed["Ultimate SD upscale seams_fix"] == "band"
    assert parsed["Ultimate SD upscale ControlNet"] == "control_v11f1e_sd15_tile"
    assert upscaled_size(job) == (128, 128)


# --- the engine ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine():
    from asset_studio.engine.backend import LocalBackend
    from asset_studio.engine.loader import PipelineCache

    return LocalBackend(device="cpu", cache=PipelineCache(capacity=2))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_tiles_redraw_the_enlarged_picture_and_re_run_exactly(engine, tiny_sd15_dir):
    job = tiled_job(tiny_sd15_dir)
    steps = []
    [out] = engine.generate(job, on_step=steps.append)
    assert out.image.size == (128, 128)  # scale x the base size
    assert [s.stage for s in steps if s.step == 1] == ["", "tile 1 of 4", "tile 2 of 4", "tile 3 of 4", "tile 4 of 4"]
    assert out.job.passes == job.passes
    assert out.before is not None and out.before.size == (64, 64)  # the picture before the pass
    plain = np.asarray(out.before.resize((128, 128), Image.Resampling.LANCZOS), dtype=float)
    assert np.abs(np.asarray(out.image, dtype=float) - plain).mean() > 2  # the tiles were redrawn
    [again] = engine.generate(out.job)
    assert np.array_equal(np.asarray(out.image), np.asarray(again.image))

    job.passes.tiled_upscale.denoise = 0  # enlarge only: no pipeline call, the resampler's picture
    steps.clear()
    [enlarged] = engine.generate(job, on_step=steps.append)
    assert np.array_equal(np.asarray(enlarged.image, dtype=float), plain)
    assert {s.stage for s in steps} == {""}


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_seams_passes_redraw_the_joins(engine, tiny_sd15_dir):
    steps = []
    [band] = engine.generate(tiled_job(tiny_sd15_dir, seams="band", seams_width=16, seams_denoise=0.5),
                             on_step=steps.append)
    labels = [s.stage for s in steps if s.step == 1]
    assert labels[-4:] == ["seam 1 of 4", "seam 2 of 4", "seam 3 of 4", "seam 4 of 4"]  # 2 joins x 2 pieces
    [plain] = engine.generate(tiled_job(tiny_sd15_dir))
    diff = np.abs(np.asarray(band.image, dtype=float) - np.asarray(plain.image, dtype=float)).mean(axis=2)
    assert diff[:, 60:68].mean() > diff[:, 20:40].mean() + 1  # the band along x = 64 changed, the middle not
    [half] = engine.generate(tiled_job(tiny_sd15_dir, seams="half-tile", seams_denoise=0.5))
    assert half.image.size == (128, 128)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_a_tile_controlnet_steers_the_tiles(engine, tiny_sd15_dir, tmp_path):
    from diffusers import UNet2DConditionModel

    from tiny_controlnet import save_tiny_controlnet

    unet = UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet")
    cn = save_tiny_controlnet(unet, tmp_path / "tiny-tile-cn")
    [plain] = engine.generate(tiled_job(tiny_sd15_dir))
    [steered] = engine.generate(tiled_job(tiny_sd15_dir, controlnet=str(cn), controlnet_scale=1.0))
    assert steered.image.size == (128, 128)
    assert np.abs(np.asarray(steered.image, dtype=float) - np.asarray(plain.image, dtype=float)).mean() > 0.5
    [again] = engine.generate(steered.job)
    assert np.array_equal(np.asarray(steered.image), np.asarray(again.image))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_an_upscale_model_enlarges_before_the_tiles(engine, tiny_sd15_dir, tmp_path):
    from test_upscale import save_compact

    model = save_compact(tmp_path / "2x-tiny.safetensors", scale=2)
    [out] = engine.generate(tiled_job(tiny_sd15_dir, upscaler=str(model), scale=1.5))
    assert out.image.size == (96, 96)
    with pytest.raises(UserError, match="The upscale model nowhere.safetensors was not found"):
        engine.check(tiled_job(tiny_sd15_dir, upscaler="nowhere.safetensors"))
    with pytest.raises(UserError, match="ControlNet"):
        engine.check(tiled_job(tiny_sd15_dir, controlnet=str(tmp_path / "missing-cn.safetensors")))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_cli_flags_the_png_and_rerun(tiny_sd15_dir, tmp_path, capsys):
    from asset_studio.cli import main
    from asset_studio.core.library import before_path, read_job
    from asset_studio.gui.model.library import library_entries

    out = tmp_path / "out"
    assert main(["generate", "a castle", "--model", str(tiny_sd15_dir), "--size", "64x64", "--steps", "2",
                 "--device", "cpu", "--seed", "4", "--out", str(out), "--upscale-tiled", "2", "--upscale-tile", "64",
                 "--upscale-padding", "16", "--upscale-mask-blur", "4", "--upscale-denoise", "0.4",
                 "--upscale-steps", "1", "--upscale-seams", "band", "--upscale-seams-width", "16"]) == 0
    png = Path(capsys.readouterr().out.strip())
    assert Image.open(png).size == (128, 128)
    t = read_job(png).passes.tiled_upscale
    assert (t.scale, t.tile, t.padding, t.mask_blur, t.denoise, t.steps, t.seams, t.seams_width) == (
        2, 64, 16, 4, 0.4, 1, "band", 16)
    assert Image.open(before_path(png)).size == (64, 64)  # kept for the viewer's compare
    assert [e.raw for e in library_entries(out)] == [png]  # and out of the gallery
    again = tmp_path / "again"
    assert main(["rerun", str(png), "--out", str(again), "--device", "cpu"]) == 0
    rerun = Path(capsys.readouterr().out.strip())
    assert np.array_equal(np.asarray(Image.open(rerun)), np.asarray(Image.open(png)))
    assert main(["generate", "a castle", "--model", str(tiny_sd15_dir), "--upscale-denoise", "0.3"]) == 2
    assert "go with --upscale-tiled" in capsys.readouterr().err


def test_the_catalog_offers_the_models_the_passes_use():
    from fnmatch import fnmatch

    from asset_studio.core.models import load_catalog

    entries = {e.id: e for e in load_catalog()}
    expected = {"sdxl-refiner": ("stabilityai/stable-diffusion-xl-refiner-1.0", "openrail++", "sdxl"),
                "sd15-inpainting": ("stable-diffusion-v1-5/stable-diffusion-inpainting", "creativeml-openrail-m", "sd15"),
                "sdxl-inpainting": ("diffusers/stable-diffusion-xl-1.0-inpainting-0.1", "openrail++", "sdxl"),
                "controlnet-tile-sd15": ("comfyanonymous/ControlNet-v1-1_fp16_safetensors", "openrail", "sd15")}
    for entry_id, (repo, licence, family) in expected.items():
        e = entries[entry_id]
        assert (e.repo, e.license, e.family) == (repo, licence, family)
        assert all(p.endswith((".json", ".txt", ".safetensors")) for p in e.allow_patterns)
        for name, digest in e.sha256.items():  # every pin names a fetched file and is a full sha256
            assert len(digest) == 64 and int(digest, 16) >= 0
            assert any(fnmatch(name, p) for p in e.allow_patterns)
        assert "non-commercial" not in e.license.lower()


def test_catalog_tile_controlnet_resolves_to_its_downloaded_file(monkeypatch, tmp_path):
    import huggingface_hub

    from asset_studio.engine.plan import tile_controlnet_ref

    assert tile_controlnet_ref("/some/folder/cn") == "/some/folder/cn"  # not a catalog id: as given
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: None)
    with pytest.raises(UserError, match="controlnet-tile-sd15 is not downloaded yet; run `asset-studio models download"):
        tile_controlnet_ref("controlnet-tile-sd15")
    cached = tmp_path / "control_v11f1e_sd15_tile_fp16.safetensors"
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name: str(cached) if (repo, name) == (
                            "comfyanonymous/ControlNet-v1-1_fp16_safetensors", cached.name) else None)
    assert tile_controlnet_ref("controlnet-tile-sd15") == str(cached)


def test_prepare_makes_the_pass_files_absolute(tmp_path, monkeypatch):
    from asset_studio.core.request import AssetRequest, Overrides

    (tmp_path / "4x.safetensors").write_bytes(b"")
    (tmp_path / "tile-cn").mkdir()
    monkeypatch.chdir(tmp_path)
    request = AssetRequest(subject="a courtyard", model="m", overrides=Overrides(
        seed=1, tiled_upscale=TiledUpscale(upscaler="4x.safetensors", controlnet="tile-cn")))
    from asset_studio.core.request import prepare

    t = prepare(request, preview=True).passes.tiled_upscale
    assert (t.upscaler, t.controlnet) == (str(tmp_path / "4x.safetensors"), str(tmp_path / "tile-cn"))
    assert request.overrides.tiled_upscale.upscaler == "4x.safetensors"  # the request itself is left alone


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_sdxl_tiles_take_their_own_size_conditioning(engine, tiny_sdxl_dir):
    job = tiled_job(tiny_sdxl_dir, scale=1.5, tile=64, padding=8, mask_blur=2)
    [out] = engine.generate(job)
    assert out.image.size == (96, 96)
    [again] = engine.generate(out.job)
    assert np.array_equal(np.asarray(out.image), np.asarray(again.image))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
@pytest.mark.parametrize("passes", [Passes(tiled_upscale=TiledUpscale(scale=2, tile=64, padding=16, mask_blur=4, steps=1)),
                                    Passes(hires=HiresFix(scale=2, upscaler="lanczos", steps=1))], ids=["tiled", "hires"])
def test_passes_over_a_model_with_references_hand_on_their_embeddings(engine, tiny_sd15_dir, tmp_path, passes):
    """With an IP-Adapter on the UNet for the job, every call needs the reference embeddings."""
    from diffusers import UNet2DConditionModel

    from asset_studio.core.job import Reference
    from test_ip_adapter import save_adapter, save_encoder

    unet = UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "ref.png")
    job = make_job(tiny_sd15_dir, "a knight", width=64, height=64, steps=2, seed=7, cfg_scale=2.0)
    job.references = [Reference(str(tmp_path / "ref.png"), 1.0)]
    job.model.ip_adapter = str(save_adapter(unet, tmp_path / "ip-adapter_tiny.safetensors"))
    job.model.image_encoder = str(save_encoder(tmp_path / "encoder"))
    job.passes = passes
    [out] = engine.generate(job)
    assert out.image.size == (128, 128)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_cancel_stops_between_tiles(engine, tiny_sd15_dir):
    steps = []
    out = engine.generate(tiled_job(tiny_sd15_dir), on_step=steps.append,
                          should_cancel=lambda: any(s.stage == "tile 2 of 4" for s in steps))
    assert out == [] and engine.cancelled
    assert [s.stage for s in steps][-1] == "tile 2 of 4"  # tiles 3 and 4 never ran


def test_crops_are_taken_by_the_model_as_they_are():
    """Tile + context rounds up to a multiple of 8 (the latent grid), so no crop is resampled."""
    for p in tiled_redraw.redraws(1000, 700, 512, 33, 8, "band", 64):
        assert p.size == tiled_redraw.process_size(p.size) == (584, 584)  # 512 + 2 x 33 = 578, up to 73 x 8
    [p] = tiled_redraw.redraws(100, 90, 512, 33, 8)  # smaller than a tile: the whole picture, resized to 8s
    assert p.size == (100, 90) and tiled_redraw.process_size(p.size) == (104, 96)
