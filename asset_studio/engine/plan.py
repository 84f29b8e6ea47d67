"""The stage plan of the local backend: which stages a job needs, in the order they run.

    stages = plan(job)            # e.g. [LoadModel, Loras, Txt2Img, ControlNet, SeamlessTiling]
    for s in stages: s.check(job)     # instant, no torch (backend.check)
    for s in stages: s.prepare(ctx)   # load and attach: model, adapters, pipeline, shared inputs
    for each image:  for s in stages: item = s.run(ctx, item)   # the base pass makes it, passes change it
    for s in reversed(stages): s.release(ctx)   # undo what prepare attached (the model stays loaded)

A job part that no stage implements is refused by plan() with its name, so nothing ships that
cannot run. There is no registry: adding a stage is adding a class here and a line to plan().
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError


@dataclass
class Item:
    """One image of the batch as it goes through the stages."""

    index: int
    seed: int
    image: Any = None  # PIL.Image once the base pass has made it


@dataclass
class RunContext:
    job: GenerationJob
    device: Any
    dtype: Any
    cache: Any  # engine.loader.PipelineCache
    download: bool = False
    on_progress: Callable | None = None  # (step, total, image_index, latents) per denoising step
    should_cancel: Callable[[], bool] | None = None
    loaded: Any = None  # engine.loader.LoadedModel
    pipe: Any = None  # the pipeline the base pass calls
    inputs: dict = field(default_factory=dict)  # call arguments every image of the batch shares
    undo: list = field(default_factory=list)  # callables release() runs, last first
    notices: list[str] = field(default_factory=list)  # told to the artist once, before the first image


class Cancelled(Exception):
    """Raised inside the step callback to stop a pipeline at once; the backend catches it."""


class Stage:
    """A step of the plan. Each method is optional; the defaults do nothing."""

    name = "stage"

    def check(self, job: GenerationJob) -> None:
        """Refuse what this stage cannot do, by name. Instant: reads headers and files only."""

    def prepare(self, ctx: RunContext) -> None:
        """Load and attach what every image needs."""

    def run(self, ctx: RunContext, item: Item) -> Item:
        """Make or change one image."""
        return item

    def release(self, ctx: RunContext) -> None:
        """Undo what prepare() attached to shared modules."""


# --- the base model and its modifiers --------------------------------------------------------------


class LoadModel(Stage):
    name = "model"

    def __init__(self, download: bool = False):
        self.download = download

    def check(self, job):
        from asset_studio.core.samplers import lookup
        from asset_studio.engine.loader import check_vae_ref, detect_family, resolve_model

        # Reads a header or model_index.json: a wrong path, a corrupt file, a LoRA or a pickle is
        # one sentence before anything heavy loads.
        detect_family(resolve_model(job.model.checkpoint, download=self.download))
        if job.model.vae:
            check_vae_ref(job.model.vae)
        lookup(job.sampling.sampler)

    def prepare(self, ctx):
        from asset_studio.engine.loader import use_vae

        m = ctx.job.model
        ctx.loaded = ctx.cache.get(m.checkpoint, ctx.device, ctx.dtype, model_config=m.config, download=ctx.download)
        use_vae(ctx.loaded, m.vae, ctx.device, ctx.dtype, download=ctx.download)
        ctx.pipe = ctx.loaded.pipe


class Loras(Stage):
    """Makes exactly the job's LoRAs active (none: every adapter off). Adapters swap; the model stays."""

    name = "LoRAs"

    def check(self, job):
        from pathlib import Path

        for lora in job.model.loras:
            if not Path(lora.path).is_file():
                raise UserError(f"The LoRA {lora.path} does not exist.")

    def prepare(self, ctx):
        pipe = ctx.loaded.pipe
        if not ctx.job.model.loras and not _has_adapters(pipe):
            return
        from asset_studio.engine.lora import apply_loras

        apply_loras(pipe, list(ctx.job.model.loras), ctx.loaded.family)


class Txt2Img(Stage):
    """The base pass from noise (text to image)."""

    name = "text to image"

    def prepare(self, ctx):
        ctx.inputs.update(width=ctx.job.sampling.width, height=ctx.job.sampling.height)
        ctx.notices += prompt_notices(ctx.loaded.pipe, ctx.job)

    def run(self, ctx, item):
        item.image = _call(ctx, item)
        return item


class Img2Img(Txt2Img):
    """The base pass from a start image, over the same loaded modules (diffusers' from_pipe)."""

    name = "image to image"

    def check(self, job):
        load_image(job.init.image, "start image", job.sampling.width, job.sampling.height)

    def prepare(self, ctx):
        ctx.notices += prompt_notices(ctx.loaded.pipe, ctx.job)
        ctx.pipe = derived_pipeline(ctx.loaded, "img2img")
        s = ctx.job.sampling
        ctx.inputs.update(image=load_image(ctx.job.init.image, "start image", s.width, s.height),
                          strength=float(ctx.job.init.denoise))


class ControlNet(Stage):
    """Wraps the base pass's pipeline so it follows the job's control images (one or several units)."""

    name = "ControlNet"

    def check(self, job):
        from asset_studio.engine.controlnet import check_controlnet_ref

        for i, unit in enumerate(job.controls, start=1):
            if not unit.image:
                raise UserError(f"ControlNet {i} has no control image.")
            load_image(unit.image, "control image", job.sampling.width, job.sampling.height)
            check_controlnet_ref(unit.model)

    def prepare(self, ctx):
        from asset_studio.engine.controlnet import check_family, load_controlnet, wrap_pipeline

        job, units = ctx.job, ctx.job.controls
        models = []
        for unit in units:
            model = load_controlnet(unit.model, ctx.device, ctx.dtype)
            check_family(model, ctx.loaded.pipe.unet, unit.model)
            models.append(model)
        xl = ctx.loaded.family == "sdxl"
        img2img = job.init is not None
        ctx.pipe = wrap_pipeline(ctx.loaded.pipe, models, xl, img2img, ctx.dtype)
        s = job.sampling
        images = [load_image(u.image, "control image", s.width, s.height) for u in units]
        one = len(units) == 1
        pick = (lambda values: values[0]) if one else (lambda values: values)  # diffusers: scalars for one unit
        ctx.inputs.update(
            controlnet_conditioning_scale=pick([float(u.scale) for u in units]),
            control_guidance_start=pick([float(u.start) for u in units]),
            control_guidance_end=pick([float(u.end) for u in units]),
        )
        if img2img:
            # The ControlNet img2img pipelines take the start picture as `image` and the control as `control_image`.
            ctx.inputs["control_image"] = pick(images)
            if xl:  # XL img2img sizes from the start image; the micro-conditioning wants the size too
                ctx.inputs.update(target_size=(s.height, s.width), original_size=(s.height, s.width))
        else:
            ctx.inputs["image"] = pick(images)


class SeamlessTiling(Stage):
    """Circular padding on the chosen axes of the UNet's and VAE's convolutions, after the LoRAs
    are attached; release() restores the padding, so the loaded model is unchanged afterwards."""

    name = "seamless tiling"

    def prepare(self, ctx):
        from asset_studio.engine.tiling import check_tile_size, seamless

        s = ctx.job.sampling
        check_tile_size(ctx.pipe, s.width, s.height, ctx.job.tiling)
        patch = seamless(ctx.pipe, ctx.job.tiling)
        patch.__enter__()
        ctx.undo.append(lambda: patch.__exit__(None, None, None))


# --- the plan ----------------------------------------------------------------------------------------


def plan(job: GenerationJob, download: bool = False) -> list[Stage]:
    """The stages JOB needs, in order. Refuses, by name, a part of the job no stage implements."""
    if job.output != "image":
        raise UserError(f"The local engine cannot make {job.output}s yet; generate images.")
    if job.references:
        raise UserError("The local engine cannot use reference images (IP-Adapter) yet; remove them.")
    if job.passes:
        kinds = ", ".join(sorted({str(p.get("kind", "?")) for p in job.passes}))
        raise UserError(f"The local engine cannot run these after-passes yet: {kinds}.")
    stages: list[Stage] = [LoadModel(download), Loras()]
    stages.append(Img2Img() if job.init is not None else Txt2Img())
    if job.controls:
        stages.append(ControlNet())
    if job.tiling != "off":
        stages.append(SeamlessTiling())
    return stages


# --- shared pieces ---------------------------------------------------------------------------------


def sampling_steps(job: GenerationJob) -> int:
    """Steps to ask diffusers for. img2img runs steps x denoise of them; like A1111, never zero."""
    if job.init is not None and int(job.sampling.steps * job.init.denoise) < 1:
        return math.ceil(1 / job.init.denoise)
    return job.sampling.steps


def prompt_notices(pipe, job: GenerationJob) -> list[str]:
    """One line for each prompt longer than CLIP reads (77 tokens): the rest is ignored, as in
    diffusers, whose own warning (the whole cut text, per image) is silenced in _call."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None:
        return []
    limit = tokenizer.model_max_length
    out = []
    for label, text in (("prompt", job.prompt.text), ("negative prompt", job.prompt.negative)):
        count = len(tokenizer(text, truncation=False).input_ids) if text else 0
        if count > limit:
            out.append(f"The {label} is {count - 2} tokens long; CLIP reads the first {limit - 2}, "
                       "so the words after that are ignored.")
    return out


def _call(ctx: RunContext, item: Item):
    """One pipeline call for one image: its own scheduler and CPU generator, so a seed means the
    same starting noise on every device, and each image re-runs alone from its embedded job."""
    from diffusers.utils import logging as dlog

    from asset_studio.engine.samplers import build_scheduler

    job = ctx.job
    ctx.pipe.scheduler = build_scheduler(job.sampling.sampler, ctx.loaded.scheduler_config, seed=item.seed)
    level = dlog.get_verbosity()
    dlog.set_verbosity_error()  # the truncation warning is said once, by prompt_notices
    try:
        output = _pipe_call(ctx, item, job)
    finally:
        dlog.set_verbosity(level)
    return output.images[0]


def _pipe_call(ctx: RunContext, item: Item, job: GenerationJob):
    import torch

    return ctx.pipe(
        prompt=job.prompt.text,
        negative_prompt=job.prompt.negative or None,
        num_inference_steps=sampling_steps(job),
        guidance_scale=float(job.sampling.cfg_scale),
        # A1111's clip skip 1 is the last layer; diffusers counts layers skipped beyond it.
        clip_skip=(job.model.clip_skip - 1) if job.model.clip_skip > 1 else None,
        output_type="pil",
        generator=torch.Generator("cpu").manual_seed(int(item.seed)),
        callback_on_step_end=_step_callback(ctx, item.index),
        callback_on_step_end_tensor_inputs=["latents"],
        **ctx.inputs,
    )


def _step_callback(ctx: RunContext, index: int):
    def callback(pipe, step_index, timestep, tensors):
        if ctx.should_cancel is not None and ctx.should_cancel():
            raise Cancelled()
        if ctx.on_progress is not None:
            total = getattr(pipe, "_num_timesteps", None) or ctx.job.sampling.steps
            ctx.on_progress(step_index + 1, int(total), index, tensors["latents"])
        return {}

    return callback


def _has_adapters(pipe) -> bool:
    return any(getattr(getattr(pipe, name, None), "peft_config", None)
               for name in ("unet", "text_encoder", "text_encoder_2"))


def derived_pipeline(loaded, kind: str):
    """A pipeline of another kind over the same loaded modules (diffusers' from_pipe: no copy, no reload)."""
    import diffusers

    pipe = loaded.derived.get(kind)
    if pipe is None:
        cls = {
            ("img2img", "sdxl"): diffusers.StableDiffusionXLImg2ImgPipeline,
            ("img2img", "sd15"): diffusers.StableDiffusionImg2ImgPipeline,
            ("img2img", "sd2"): diffusers.StableDiffusionImg2ImgPipeline,
        }[(kind, loaded.family)]
        from asset_studio.engine.loader import quiet_loading

        with quiet_loading():
            pipe = cls.from_pipe(loaded.pipe)
        pipe.set_progress_bar_config(disable=True)
        loaded.derived[kind] = pipe
    share_modules(loaded.pipe, pipe)
    return pipe


def share_modules(base, pipe) -> None:
    """Point PIPE at BASE's current modules: the base may have had its VAE (or LoRA-wrapped
    modules) swapped since PIPE was built from it."""
    for name, module in base.components.items():
        if name != "scheduler" and name in pipe.components and pipe.components[name] is not module:
            setattr(pipe, name, module)


def load_image(path: str, what: str, width: int, height: int):
    """An RGB picture at the job's size (every file mode, 16-bit included), or one sentence naming
    WHAT is wrong with it."""
    from pathlib import Path

    from PIL import Image

    from asset_studio.core.images import read_image

    if not Path(path).is_file():
        raise UserError(f"The {what} {path} is not a file.")
    image = read_image(path, "RGB", what=f"The {what}")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image
