"""The engine: a GenerationJob in, images out, one at a time, through diffusers.

    engine = Engine()                       # picks CUDA fp16 / MPS / CPU fp32
    for image in engine.run(job, on_step=..., should_cancel=..., on_image=save):
        ...

Image i of a batch is its own pipeline call with seed_i (job.image_seeds()), so each image is
handed to `on_image` (and saved) as soon as it is decoded, a cancel loses at most the image in
flight, and every image re-runs alone from its embedded job. Noise comes from a CPU generator,
so a seed means the same starting noise on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError

MAX_SIDE = 4096
MAX_STEPS = 1000
MAX_BATCH = 10000


@dataclass
class StepInfo:
    step: int  # 1-based, within the current image
    total: int
    image_index: int
    preview: Any = None  # PIL.Image or None


@dataclass
class GeneratedImage:
    image: Any  # PIL.Image
    job: GenerationJob  # this image alone, with its own seed
    index: int
    seed: int


class Cancelled(Exception):
    """Raised inside the step callback to stop a pipeline at once; Engine.run catches it."""


def validate_job(job: GenerationJob) -> None:
    """Reject what cannot run, in one sentence, before any model is loaded."""
    from asset_studio.engine.samplers import lookup

    for label, value in (("width", job.width), ("height", job.height)):
        if not isinstance(value, int) or value <= 0 or value % 8 or value > MAX_SIDE:
            raise UserError(
                f"The {label} {value} is not allowed; sizes must be multiples of 8 between 8 and {MAX_SIDE}."
            )
    if not isinstance(job.steps, int) or not 1 <= job.steps <= MAX_STEPS:
        raise UserError(f"Steps must be between 1 and {MAX_STEPS}, not {job.steps}.")
    if not 0 <= float(job.cfg_scale) <= 100:
        raise UserError(f"The CFG scale must be between 0 and 100, not {job.cfg_scale}.")
    if not job.seeds and not 1 <= int(job.batch_count) <= MAX_BATCH:
        raise UserError(f"The image count must be between 1 and {MAX_BATCH}, not {job.batch_count}.")
    for seed in job.image_seeds():
        if not 0 <= int(seed) < 2**64:
            raise UserError(f"The seed {seed} is out of range (0 to 2^64-1).")
    if not 1 <= int(job.clip_skip) <= 12:
        raise UserError(f"Clip skip must be between 1 and 12, not {job.clip_skip}.")
    if job.init_image is not None:
        if not 0 < float(job.denoise) <= 1:
            raise UserError(f"The denoise strength must be above 0 and at most 1, not {job.denoise}.")
        if not Path(job.init_image).is_file():
            raise UserError(f"The init image {job.init_image} does not exist.")
    if not job.prompt.strip() and not job.negative_prompt.strip() and not job.controlnets and not job.init_image:
        raise UserError("The prompt is empty.")
    lookup(job.sampler)


class Engine:
    """Runs jobs on one device; loaded pipelines stay cached between jobs."""

    def __init__(self, device=None, dtype=None, cache=None):
        from asset_studio.engine.device import choose_device
        from asset_studio.engine.loader import shared_cache

        self.device, self.dtype = choose_device(device, dtype)
        self.cache = cache if cache is not None else shared_cache()
        self.cancelled = False  # whether the last run() stopped because should_cancel() said so

    # --- models -------------------------------------------------------------------------------

    def load(self, job: GenerationJob, download: bool = False):
        """The cached LoadedModel for the job's model, with the job's VAE in place."""
        from asset_studio.engine.loader import use_vae

        loaded = self.cache.get(job.model, self.device, self.dtype, model_config=job.model_config, download=download)
        use_vae(loaded, job.vae, self.device, self.dtype, download=download)
        return loaded

    def pipeline_for(self, job: GenerationJob, download: bool = False):
        """The cached base (text-to-image) pipeline for the job's model."""
        return self.load(job, download).pipe

    def family_for(self, job: GenerationJob, download: bool = False) -> str:
        return self.load(job, download).family

    # --- running ------------------------------------------------------------------------------

    def run(
        self,
        job: GenerationJob,
        on_step: Callable[[StepInfo], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        on_image: Callable[[GeneratedImage], None] | None = None,
        *,
        preview: bool = True,
        download: bool = False,
    ) -> list[GeneratedImage]:
        """Generate every image of the job. On cancel, returns the images finished so far
        (self.cancelled tells the two apart); the engine stays ready for the next job."""
        import torch

        from asset_studio.core.library import image_job
        from asset_studio.engine.preview import Previewer
        from asset_studio.engine.samplers import build_scheduler

        validate_job(job)
        self.cancelled = False
        results: list[GeneratedImage] = []
        if should_cancel is not None and should_cancel():
            self.cancelled = True
            return results

        loaded = self.load(job, download)
        family = loaded.family
        self._apply_loras(loaded.pipe, job, family)
        pipe, extra = self._pipeline_and_inputs(loaded, job)
        previewer = Previewer(family, self.device, self.dtype) if (on_step and preview) else None
        kwargs = dict(
            prompt=job.prompt,
            negative_prompt=job.negative_prompt or None,
            num_inference_steps=sampling_steps(job),
            guidance_scale=float(job.cfg_scale),
            # A1111's clip skip 1 is the last layer; diffusers counts layers skipped beyond it.
            clip_skip=(job.clip_skip - 1) if job.clip_skip > 1 else None,
            output_type="pil",
            **extra,
        )

        for index, seed in enumerate(job.image_seeds()):
            if should_cancel is not None and should_cancel():
                self.cancelled = True
                break
            pipe.scheduler = build_scheduler(job.sampler, loaded.scheduler_config, seed=seed)
            generator = torch.Generator("cpu").manual_seed(int(seed))
            callback = _step_callback(index, job.steps, on_step, should_cancel, previewer)
            try:
                output = pipe(
                    **kwargs,
                    generator=generator,
                    callback_on_step_end=callback,
                    callback_on_step_end_tensor_inputs=["latents"],
                )
            except Cancelled:
                self.cancelled = True
                break
            result = GeneratedImage(image=output.images[0], job=image_job(job, seed), index=index, seed=int(seed))
            results.append(result)
            if on_image is not None:
                on_image(result)
        return results

    # --- the pieces of run() ------------------------------------------------------------------

    def _apply_loras(self, pipe, job: GenerationJob, family: str) -> None:
        if not job.loras and not _has_adapters(pipe):
            return
        try:
            from asset_studio.engine.lora import apply_loras
        except ModuleNotFoundError as exc:
            if exc.name != "asset_studio.engine.lora":
                raise
            raise UserError("This build of Asset Studio cannot apply LoRAs.") from None
        apply_loras(pipe, list(job.loras), family)

    def _pipeline_and_inputs(self, loaded, job: GenerationJob):
        """The pipeline to call (text-to-image, img2img or ControlNet) and its job-specific inputs."""
        base = loaded.pipe
        if job.controlnets:
            from asset_studio.engine.controlnet import controlnet_pipeline

            return controlnet_pipeline(base, job, loaded.family, self.device, self.dtype)
        if job.init_image:
            pipe = _derived(loaded, "img2img")
            return pipe, {"image": load_init_image(job), "strength": float(job.denoise)}
        return base, {"width": job.width, "height": job.height}


def sampling_steps(job: GenerationJob) -> int:
    """Steps to ask diffusers for. img2img runs steps x denoise of them; like A1111, never zero."""
    if job.init_image and int(job.steps * float(job.denoise)) < 1:
        return math.ceil(1 / float(job.denoise))
    return job.steps


def _step_callback(index, steps, on_step, should_cancel, previewer):
    def callback(pipe, step_index, timestep, tensors):
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        if on_step is not None:
            total = getattr(pipe, "_num_timesteps", None) or steps
            image = previewer(tensors["latents"]) if previewer is not None else None
            on_step(StepInfo(step=step_index + 1, total=int(total), image_index=index, preview=image))
        return {}

    return callback


def _has_adapters(pipe) -> bool:
    for name in ("unet", "text_encoder", "text_encoder_2"):
        if getattr(getattr(pipe, name, None), "peft_config", None):
            return True
    return False


def _derived(loaded, kind: str):
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
    # The base may have had its VAE swapped since; keep the modules the same objects.
    for name, module in loaded.pipe.components.items():
        if name != "scheduler" and name in pipe.components and pipe.components[name] is not module:
            setattr(pipe, name, module)
    return pipe


def load_init_image(job: GenerationJob):
    from PIL import Image

    from asset_studio.core.images import read_image

    image = read_image(job.init_image, "RGB", what="The init image")  # every mode, 16-bit included
    if image.size != (job.width, job.height):
        image = image.resize((job.width, job.height), Image.LANCZOS)
    return image
