"""The engine end to end on tiny random models: both families, folder and single file, every
sampler, seeds, img2img, clip skip, VAE override, progress, previews and cancel.

One local backend for the whole module (its own cache, big enough that nothing reloads by eviction);
64x64 images and 2-3 steps keep each run to a few hundredths of a second.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.job import GenerationJob
from jobs import make_job
from asset_studio.core.samplers import SAMPLERS

# diffusers' schedulers call numpy in ways numpy 2.x deprecates, thousands of times per run; not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:diffusers.*"),
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),
]


pytestmark = pytest.mark.usefixtures("one_thread_and_a_private_cache")  # see conftest


@pytest.fixture(scope="session")
def engine():
    from asset_studio.engine.backend import LocalBackend
    from asset_studio.engine.loader import PipelineCache

    return LocalBackend(device="cpu", cache=PipelineCache(capacity=8))


@pytest.fixture(scope="session")
def single_files(tiny_sd15_dir, tiny_sdxl_dir, tmp_path_factory):
    """The tiny pipelines converted to original-LDM single files, as civitai ships checkpoints."""
    from ldm_convert import save_single_file

    out = {}
    for family, folder in (("sd15", tiny_sd15_dir), ("sdxl", tiny_sdxl_dir)):
        target = tmp_path_factory.mktemp(f"single-{family}") / "model.safetensors"
        out[family] = save_single_file(folder, target)
    return out


def job_for(model, **kw) -> GenerationJob:
    base = dict(prompt="a red health potion", negative_prompt="blurry", width=64, height=64, steps=2, seed=11)
    base.update(kw)
    return make_job(model, **base)


def pixels(result) -> np.ndarray:
    return np.asarray(result.image if hasattr(result, "image") else result, dtype=np.int16)


@pytest.fixture(params=["sd15", "sdxl"])
def family_dir(request, tiny_sd15_dir, tiny_sdxl_dir):
    return request.param, {"sd15": tiny_sd15_dir, "sdxl": tiny_sdxl_dir}[request.param]


def test_both_families_generate_reproducible_distinct_batches(engine, family_dir):
    family, folder = family_dir
    job = job_for(folder, batch_count=3, seed=100)
    got = []
    results = engine.generate(job, on_image=got.append)
    assert [r.seed for r in results] == [100, 101, 102]
    assert [r.index for r in results] == [0, 1, 2]
    assert got == results  # each image was handed over as it was decoded
    assert all(r.image.size == (64, 64) and r.image.mode == "RGB" for r in results)
    assert all(r.job.sampling.seed == r.seed and r.job.sampling.count == 1 for r in results)
    # Distinct within the batch, identical on a re-run, and image i alone equals image i of the batch.
    assert not np.array_equal(pixels(results[0]), pixels(results[1]))
    again = engine.generate(job)
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(results, again))
    alone = engine.generate(results[2].job)
    assert np.array_equal(pixels(alone[0]), pixels(results[2]))
    assert engine.load(job).family == family


def test_second_job_on_the_same_model_does_not_reload(engine, tiny_sd15_dir):
    engine.generate(job_for(tiny_sd15_dir))
    loads = engine.cache.loads
    pipe = engine.load(job_for(tiny_sd15_dir)).pipe
    engine.generate(job_for(tiny_sd15_dir, prompt="another prompt", sampler="DDIM"))
    assert engine.cache.loads == loads
    assert engine.load(job_for(tiny_sd15_dir)).pipe is pipe


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_single_file_checkpoint_matches_its_diffusers_folder(engine, single_files, family, tiny_sd15_dir,
                                                             tiny_sdxl_dir):
    folder = {"sd15": tiny_sd15_dir, "sdxl": tiny_sdxl_dir}[family]
    from asset_studio.engine.loader import detect_family

    assert detect_family(single_files[family]) == family
    from_folder = engine.generate(job_for(folder))[0]
    from_file = engine.generate(job_for(single_files[family], model_config=str(folder)))[0]
    pipe = engine.load(job_for(single_files[family], model_config=str(folder))).pipe
    assert type(pipe).__name__ == ("StableDiffusionXLPipeline" if family == "sdxl" else "StableDiffusionPipeline")
    # Same weights through another path: equal up to float rounding of the fused attention weights.
    assert np.abs(pixels(from_folder) - pixels(from_file)).max() <= 2


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_runs_and_is_reproducible(engine, tiny_sd15_dir, name):
    job = job_for(tiny_sd15_dir, sampler=name, steps=3)
    first, second = engine.generate(job)[0], engine.generate(job)[0]
    pipe = engine.load(job).pipe
    assert type(pipe.scheduler).__name__ == SAMPLERS[name].scheduler
    if SAMPLERS[name].options.get("use_karras_sigmas"):
        assert pipe.scheduler.config.use_karras_sigmas
    assert np.array_equal(pixels(first), pixels(second))
    assert np.isfinite(pixels(first)).all() and pixels(first).std() > 0


def test_samplers_differ_from_each_other(engine, tiny_sd15_dir):
    a = engine.generate(job_for(tiny_sd15_dir, sampler="Euler a", steps=3))[0]
    b = engine.generate(job_for(tiny_sd15_dir, sampler="DPM++ 2M Karras", steps=3))[0]
    assert not np.array_equal(pixels(a), pixels(b))


def test_img2img_follows_the_init_image_and_reuses_the_loaded_modules(engine, family_dir, tmp_path):
    _, folder = family_dir
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (96, 80), (230, 40, 40)).save(red)  # another size: resized to the job's
    Image.new("RGB", (64, 64), (30, 40, 220)).save(blue)
    txt2img = engine.generate(job_for(folder, steps=4))[0]
    loads = engine.cache.loads
    from_red = engine.generate(job_for(folder, steps=4, init_image=str(red), denoise=0.5))[0]
    from_blue = engine.generate(job_for(folder, steps=4, init_image=str(blue), denoise=0.5))[0]
    stronger = engine.generate(job_for(folder, steps=4, init_image=str(red), denoise=0.9))[0]
    assert engine.cache.loads == loads  # the img2img pipeline is built over the loaded modules
    assert from_red.image.size == (64, 64)
    assert not np.array_equal(pixels(from_red), pixels(txt2img))
    assert not np.array_equal(pixels(from_red), pixels(from_blue))
    assert not np.array_equal(pixels(from_red), pixels(stronger))
    again = engine.generate(job_for(folder, steps=4, init_image=str(red), denoise=0.5))[0]
    assert np.array_equal(pixels(from_red), pixels(again))
    # A denoise so low that steps x denoise rounds to zero still runs one step, as in A1111.
    assert engine.generate(job_for(folder, steps=2, init_image=str(red), denoise=0.1))[0].image.size == (64, 64)
    base = engine.load(job_for(folder)).pipe
    derived = engine.load(job_for(folder)).derived["img2img"]
    assert derived.unet is base.unet and derived.text_encoder is base.text_encoder


def test_clip_skip_changes_the_conditioning(engine, family_dir):
    _, folder = family_dir
    one = engine.generate(job_for(folder, clip_skip=1))[0]
    two = engine.generate(job_for(folder, clip_skip=2))[0]
    assert not np.array_equal(pixels(one), pixels(two))


@pytest.fixture(scope="module")
def other_vae(tmp_path_factory, tiny_sd15_dir):
    """A different tiny VAE as a diffusers folder and as a single LDM-named file."""
    import torch
    from ldm_convert import vae_single_file
    from tiny_models import _vae

    torch.manual_seed(123)
    folder = tmp_path_factory.mktemp("vae") / "other-vae"
    _vae().save_pretrained(folder)
    return folder, vae_single_file(folder, folder.parent / "other-vae.safetensors")


def test_vae_override_folder_and_file_then_back_to_the_models_own(engine, tiny_sd15_dir, other_vae):
    folder, file = other_vae
    own = engine.generate(job_for(tiny_sd15_dir))[0]
    with_folder = engine.generate(job_for(tiny_sd15_dir, vae=str(folder)))[0]
    with_file = engine.generate(job_for(tiny_sd15_dir, vae=str(file), model_config=None))[0]
    assert not np.array_equal(pixels(own), pixels(with_folder))
    assert np.abs(pixels(with_folder) - pixels(with_file)).max() <= 1
    back = engine.generate(job_for(tiny_sd15_dir))[0]
    assert np.array_equal(pixels(own), pixels(back))


def test_progress_and_previews(engine, family_dir):
    _, folder = family_dir
    steps = []
    engine.generate(job_for(folder, steps=3, batch_count=2), on_step=steps.append)
    assert [(s.image_index, s.step, s.total) for s in steps] == [(i, k, 3) for i in range(2) for k in (1, 2, 3)]
    assert all(isinstance(s.preview, Image.Image) and s.preview.size == (8, 8) for s in steps)
    steps.clear()
    engine.generate(job_for(folder, steps=2), on_step=steps.append, preview=False)
    assert len(steps) == 2 and steps[0].preview is None


def test_linear_preview_matches_the_known_factors():
    import torch

    from asset_studio.engine.preview import LATENT_RGB_FACTORS, linear_preview

    latents = torch.zeros(1, 4, 2, 3)
    latents[0, 0] = 1.0  # channel 0 only: rgb = factors[0], mapped from [-1, 1] to [0, 255]
    image = linear_preview(latents, "sd15")
    expected = [round((f + 1) / 2 * 255) for f in LATENT_RGB_FACTORS["sd15"][0]]
    assert image.size == (3, 2) and list(image.getpixel((0, 0))) == expected


def test_cancel_stops_within_one_step_and_the_engine_stays_usable(engine, family_dir):
    _, folder = family_dir
    job = job_for(folder, steps=3, batch_count=2)
    seen = []
    results = engine.generate(job, on_step=seen.append, should_cancel=lambda: len(seen) >= 2, preview=False)
    assert results == [] and engine.cancelled
    assert len(seen) == 2  # the check after step 2 stopped it before step 3
    # Cancel between images: the first image is kept.
    kept = []
    results = engine.generate(job, on_image=kept.append, should_cancel=lambda: len(kept) >= 1)
    assert len(results) == 1 and kept == results and engine.cancelled
    # The next job runs normally and gives the same pixels as an undisturbed run.
    fine = engine.generate(job)
    assert not engine.cancelled and len(fine) == 2
    assert np.array_equal(pixels(fine[0]), pixels(results[0]))


def test_cancel_before_start_loads_nothing(engine, tmp_path):
    results = engine.generate(job_for(tmp_path / "never-loaded"), should_cancel=lambda: True)
    assert results == [] and engine.cancelled


def test_the_plan_lists_the_stages_a_job_needs_and_refuses_what_none_implements(tiny_sd15_dir):
    from asset_studio.core.job import ControlUnit, InitImage, Reference
    from asset_studio.engine import plan as stages
    from asset_studio.errors import UserError

    names = lambda job: [s.name for s in stages.plan(job)]  # noqa: E731
    job = job_for(tiny_sd15_dir)
    assert names(job) == ["model", "LoRAs", "text to image"]
    job.init = InitImage("start.png", 0.5)
    job.controls = [ControlUnit("cn", "c.png")]
    job.tiling = "x"
    job.references = [Reference("r.png")]
    assert names(job) == ["model", "LoRAs", "image to image", "ControlNet", "references", "seamless tiling"]
    from asset_studio.core.job import Animation

    anim = job_for(tiny_sd15_dir)
    anim.output, anim.animation = "animation", Animation(motion_adapter="mm")
    assert names(anim) == ["model", "AnimateDiff"]  # engine/animate.py's base pass
    for change, words in ((lambda j: setattr(j, "animation", None), "no animation settings"),
                          (lambda j: setattr(j, "tiling", "x"), "cannot use seamless tiling")):
        bad = job_for(tiny_sd15_dir)
        bad.output, bad.animation = "animation", Animation(motion_adapter="mm")
        change(bad)
        with pytest.raises(UserError, match=words):
            stages.plan(bad)


def test_loras_and_controlnets_route_to_their_modules(engine, tiny_sd15_dir, tmp_path, monkeypatch):
    """The LoRA stage hands LoRAs to engine.lora.apply_loras; the ControlNet stage loads each unit
    with engine.controlnet and wraps the base pipeline with wrap_pipeline."""
    import sys
    import types

    from asset_studio.core.job import ControlUnit, LoraRef

    calls = []
    fake_lora = types.ModuleType("asset_studio.engine.lora")
    fake_lora.apply_loras = lambda pipe, loras, family: calls.append(("lora", [l.name for l in loras], family))
    fake_cn = types.ModuleType("asset_studio.engine.controlnet")
    fake_cn.check_controlnet_ref = lambda ref: calls.append(("check", ref))
    fake_cn.load_controlnet = lambda ref, device, dtype: calls.append(("load", ref)) or ref
    fake_cn.check_family = lambda model, unet, ref: None

    class Wrapped:  # stands for the ControlNet pipeline: takes the control inputs, runs the base
        def __init__(self, base):
            self.base, self.scheduler = base, None

        def __call__(self, image, controlnet_conditioning_scale, control_guidance_start, control_guidance_end, **kw):
            calls.append(("call", image.size, controlnet_conditioning_scale, control_guidance_end))
            self.base.scheduler = self.scheduler
            return self.base(**kw)

    def wrap_pipeline(base, models, xl, img2img, dtype):
        calls.append(("wrap", models, xl, img2img))
        return Wrapped(base)

    fake_cn.wrap_pipeline = wrap_pipeline
    monkeypatch.setitem(sys.modules, "asset_studio.engine.lora", fake_lora)
    monkeypatch.setitem(sys.modules, "asset_studio.engine.controlnet", fake_cn)
    lora, control = tmp_path / "x.safetensors", tmp_path / "c.png"
    lora.write_bytes(b"x")
    Image.new("RGB", (64, 64)).save(control)
    job = job_for(tiny_sd15_dir, loras=[LoraRef(path=str(lora), name="pix")],
                  controls=[ControlUnit(model="cn", image=str(control), scale=0.5)])
    assert len(engine.generate(job)) == 1
    assert calls == [("check", "cn"), ("lora", ["pix"], "sd15"), ("load", "cn"), ("wrap", ["cn"], False, False),
                     ("call", (64, 64), 0.5, 1.0)]


def test_taesd_previews_when_a_tiny_autoencoder_is_on_disk(engine, tiny_sd15_dir, tmp_path, monkeypatch):
    from diffusers import AutoencoderTiny

    import asset_studio.engine.preview as preview

    AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1),
    ).save_pretrained(tmp_path / "taesd")
    monkeypatch.setenv("ASSET_STUDIO_TAESD", str(tmp_path / "taesd"))
    monkeypatch.setattr(preview, "_TAESD_CACHE", {})
    assert preview.Previewer("sd15", engine.device, engine.dtype).kind == "taesd"
    steps = []
    engine.generate(job_for(tiny_sd15_dir), on_step=steps.append)
    assert all(s.preview.size == (64, 64) for s in steps)  # a real decode: full size, not 1/8
