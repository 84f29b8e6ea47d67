"""ControlNet: loading like base models, the family check, scales, multi-ControlNet, img2img, SDXL."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.control_image import render_control
from asset_studio.core.job import ControlUnit, GenerationJob, check_limits
from asset_studio.core.layout import Box, Layout, TextElement
from asset_studio.errors import UserError
from jobs import make_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sd15(tiny_sd15_dir):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd15_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def cn_dirs(sd15, tmp_path_factory):
    from tiny_controlnet import save_tiny_controlnet

    root = tmp_path_factory.mktemp("controlnets")
    return save_tiny_controlnet(sd15.unet, root / "cn-a", seed=1), save_tiny_controlnet(sd15.unet, root / "cn-b", seed=2)


@pytest.fixture(scope="module")
def control_png(tmp_path_factory):
    layout = Layout(64, 64, elements=[TextElement("OK", Box(0, 0, 64, 64), size=40, weight="bold")])
    path = tmp_path_factory.mktemp("control") / "control.png"
    render_control(layout, "lineart").save(path)
    return path


def job_with(units, **kw) -> GenerationJob:
    return make_job("tiny", "a shiny button", width=64, height=64, steps=2, controls=units, **kw)


def controlnet_pipeline(base, job, family, device, dtype):
    """(pipeline, call inputs) from the plan's own stages: the base pass, then the ControlNet stage
    over BASE's modules (a loaded model stands in for the cache)."""
    from types import SimpleNamespace

    from asset_studio.engine import plan as stages

    check_limits(job)
    ctx = stages.RunContext(job=job, device=device, dtype=dtype, cache=None)
    ctx.loaded = SimpleNamespace(pipe=base, family=family, derived={})
    ctx.pipe = base
    base_pass, control = [s for s in stages.plan(job) if s.name in ("text to image", "image to image", "ControlNet")]
    for stage in (base_pass, control):
        stage.check(job)
        stage.prepare(ctx)
    return ctx.pipe, ctx.inputs


def run(pipe, **kwargs) -> np.ndarray:
    import torch

    kwargs.setdefault("width", 64)
    kwargs.setdefault("height", 64)
    out = pipe(prompt="a shiny button", num_inference_steps=2, generator=torch.Generator().manual_seed(0),
               output_type="np", **kwargs)
    return out.images[0]


def test_controlnet_changes_the_output_and_its_scale_matters(sd15, cn_dirs, control_png):
    import torch

    base = run(sd15)
    diffs = {}
    for scale in (0.0, 0.5, 1.0):
        job = job_with([ControlUnit(model=str(cn_dirs[0]), image=str(control_png), scale=scale)])
        pipe, extra = controlnet_pipeline(sd15, job, "sd15", "cpu", torch.float32)
        assert type(pipe).__name__ == "StableDiffusionControlNetPipeline"
        assert pipe.unet is sd15.unet and pipe.vae is sd15.vae  # the base's modules, not copies
        diffs[scale] = np.abs(run(pipe, **extra) - base).mean()
    assert diffs[0.0] < 1e-4  # scale 0 is the same as no ControlNet
    assert diffs[1.0] > 0.005
    assert diffs[0.0] < diffs[0.5] < diffs[1.0]


def test_multi_controlnet_with_per_unit_settings(sd15, cn_dirs, control_png):
    import torch
    from diffusers import MultiControlNetModel

    single_job = job_with([ControlUnit(model=str(cn_dirs[0]), image=str(control_png))])
    multi_job = job_with([
        ControlUnit(model=str(cn_dirs[0]), image=str(control_png)),
        ControlUnit(model=str(cn_dirs[1]), image=str(control_png), scale=0.7, start=0.0, end=0.5),
    ])
    pipe1, extra1 = controlnet_pipeline(sd15, single_job, "sd15", "cpu", torch.float32)
    pipe2, extra2 = controlnet_pipeline(sd15, multi_job, "sd15", "cpu", torch.float32)
    assert isinstance(pipe2.controlnet, MultiControlNetModel) and len(pipe2.controlnet.nets) == 2
    assert extra2["controlnet_conditioning_scale"] == [1.0, 0.7]
    assert extra2["control_guidance_end"] == [1.0, 0.5]
    assert np.abs(run(pipe1, **extra1) - run(pipe2, **extra2)).mean() > 1e-3


def test_img2img_with_controlnet(sd15, cn_dirs, control_png, tmp_path):
    import torch

    init = tmp_path / "init.png"
    Image.new("RGB", (96, 80), (200, 40, 40)).save(init)  # another size: resized to the job's
    job = job_with([ControlUnit(model=str(cn_dirs[0]), image=str(control_png))], init_image=str(init), denoise=0.6)
    pipe, extra = controlnet_pipeline(sd15, job, "sd15", "cpu", torch.float32)
    assert type(pipe).__name__ == "StableDiffusionControlNetImg2ImgPipeline"
    assert extra["image"].size == (64, 64) and extra["control_image"].size == (64, 64)
    out = pipe(prompt="x", num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(0),
               **extra).images[0]
    assert out.shape == (64, 64, 3)
    assert abs(extra["strength"] - 0.6) < 1e-9


def test_loading_like_base_models(sd15, cn_dirs, tmp_path):
    import shutil

    import torch

    from asset_studio.engine import controlnet as cn

    cn.clear_cache()
    first = cn.load_controlnet(str(cn_dirs[0]), "cpu", torch.float32)
    before = cn.loads
    assert cn.load_controlnet(str(cn_dirs[0]), "cpu", torch.float32) is first  # cached, not reloaded
    assert cn.loads == before
    # A single .safetensors file with its config beside it (as "<name>.json").
    single = tmp_path / "my-cn.safetensors"
    shutil.copyfile(cn_dirs[0] / "diffusion_pytorch_model.safetensors", single)
    shutil.copyfile(cn_dirs[0] / "config.json", tmp_path / "my-cn.json")
    loaded = cn.load_controlnet(str(single), "cpu", torch.float32)
    for (name, a), b in zip(first.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    (tmp_path / "evil.ckpt").write_bytes(b"not really")
    for ref, words in [(str(tmp_path / "evil.ckpt"), "pickle"), (str(tmp_path / "nope"), "not found"),
                       ("someone/controlnet-not-cached", "not in the local Hugging Face cache"),
                       (str(tmp_path), "no config.json")]:
        with pytest.raises(UserError, match=words):
            cn.load_controlnet(ref, "cpu", torch.float32)


def test_single_file_family_from_tensor_shapes(tmp_path):
    from safetensors.torch import save_file
    import torch

    from asset_studio.engine.controlnet import family_of_controlnet_file, single_file_config

    for width, family in ((768, "sd15"), (2048, "sdxl")):
        path = tmp_path / f"{family}.safetensors"
        save_file({"control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(4, width),
                   "control_model.zero_convs.0.0.weight": torch.zeros(1)}, str(path))
        assert family_of_controlnet_file(path) == family
        assert single_file_config(path).name == family
    lora = tmp_path / "control-lora.safetensors"
    save_file({"lora_controlnet": torch.zeros(1)}, str(lora))
    with pytest.raises(UserError, match="Control-LoRA"):
        family_of_controlnet_file(lora)


def test_sdxl_controlnet_and_family_mismatch(tiny_sdxl_dir, sd15, cn_dirs, control_png, tmp_path):
    import torch
    from diffusers import StableDiffusionXLPipeline

    from tiny_controlnet import save_tiny_controlnet

    xl = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir)
    xl.set_progress_bar_config(disable=True)
    xl_cn = save_tiny_controlnet(xl.unet, tmp_path / "xl-cn")
    job = job_with([ControlUnit(model=str(xl_cn), image=str(control_png))])
    pipe, extra = controlnet_pipeline(xl, job, "sdxl", "cpu", torch.float32)
    assert type(pipe).__name__ == "StableDiffusionXLControlNetPipeline"
    assert run(pipe, **extra).shape == (64, 64, 3)
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (30, 160, 90)).save(init)
    job2 = job_with([ControlUnit(model=str(xl_cn), image=str(control_png))], init_image=str(init), denoise=0.5)
    pipe2, extra2 = controlnet_pipeline(xl, job2, "sdxl", "cpu", torch.float32)
    assert type(pipe2).__name__ == "StableDiffusionXLControlNetImg2ImgPipeline"
    out = pipe2(prompt="x", num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(0),
                **extra2).images[0]
    assert out.shape == (64, 64, 3)
    with pytest.raises(UserError, match="is for SDXL models, but the model is"):
        controlnet_pipeline(sd15, job, "sd15", "cpu", torch.float32)
    wrong = job_with([ControlUnit(model=str(cn_dirs[0]), image=str(control_png))])
    with pytest.raises(UserError, match="but the model is SDXL"):
        controlnet_pipeline(xl, wrong, "sdxl", "cpu", torch.float32)


def test_bad_units_are_clear(sd15, cn_dirs, control_png, tmp_path):
    import torch

    cases = [
        (ControlUnit(model=str(cn_dirs[0]), image=str(control_png), start=0.8, end=0.2), "must start before it ends"),
        (ControlUnit(model=str(cn_dirs[0]), image=str(control_png), scale=-1), "scale must be between 0 and 5"),
        (ControlUnit(model=str(cn_dirs[0]), image=str(tmp_path / "missing.png")), "is not a file"),
    ]
    for unit, words in cases:
        with pytest.raises(UserError, match=words):
            controlnet_pipeline(sd15, job_with([unit]), "sd15", "cpu", torch.float32)
