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
from pathlib import Path
from typing import Any, Callable

from asset_studio.core.job import HIRES_IMAGE_UPSCALERS, GenerationJob
from asset_studio.errors import UserError


@dataclass
class Item:
    """One image of the batch as it goes through the stages: a picture, or latents when the next
    stage works on latents (the SDXL refiner, a latent hires fix)."""

    index: int
    seed: int
    image: Any = None  # PIL.Image
    latents: Any = None  # torch tensor (1, 4, h/8, w/8)
    before: Any = None  # the picture as the base pass made it, kept when after-passes change it


@dataclass
class RunContext:
    job: GenerationJob
    device: Any
    dtype: Any
    cache: Any  # engine.loader.PipelineCache
    download: bool = False
    on_progress: Callable | None = None  # (step, total, image_index, latents) per denoising step
    should_cancel: Callable[[], bool] | None = None
    on_frame: Callable | None = None  # (frame_index, image) as each frame of an animation is decoded
    loaded: Any = None  # engine.loader.LoadedModel
    pipe: Any = None  # the pipeline the base pass calls
    inputs: dict = field(default_factory=dict)  # call arguments every image of the batch shares
    undo: list = field(default_factory=list)  # callables release() runs, last first
    notices: list[str] = field(default_factory=list)  # told to the artist once, before the first image
    base_output: str = "pil"  # "latent" when an after-pass continues from the base pass's latents
    stage_label: str = ""  # what the steps reported now belong to ("tile 3 of 12"), when not the base pass


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

    def run_many(self, ctx: RunContext, items: list[Item]) -> list[Item]:
        """Make or change a batch of images (throughput mode); one at a time unless a stage can do better."""
        return [self.run(ctx, item) for item in items]

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
        self._fit_memory(ctx)

    def _fit_memory(self, ctx):
        """On a CUDA card, the memory policy this run needs (engine/memory.py), said when it costs speed."""
        from asset_studio.engine.memory import apply_policy, choose_policy, free_memory

        free = free_memory(ctx.device)
        if free is None:
            return
        s = ctx.job.sampling
        from asset_studio.core.job import hires_size

        w, h = hires_size(ctx.job)  # the largest image the run decodes
        tiled = ctx.job.passes.tiled_upscale
        if tiled is not None:  # its crops: a tile and its context, whatever the final size
            w, h = max(w, tiled.tile + 2 * tiled.padding), max(h, tiled.tile + 2 * tiled.padding)
        dtype_bytes = 2 if "16" in str(ctx.dtype) else 4
        policy = choose_policy(free, ctx.loaded.family, max(w, s.width), max(h, s.height), s.batch, dtype_bytes)
        apply_policy(ctx.loaded.pipe, policy, ctx.device)
        if policy.reason:
            ctx.notices.append(policy.reason)


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
        return self.run_many(ctx, [item])[0]

    def run_many(self, ctx, items):
        """One pipeline call for the whole batch, each image with its own generator: image i of a
        batch starts from the same noise as image i made alone."""
        outs = _call(ctx, ctx.pipe, items, ctx.inputs, sampling_steps(ctx.job), ctx.base_output,
                     latents=variation_noise(ctx, ctx.pipe, items))
        for item, out in zip(items, outs):
            item.image, item.latents = (None, out[None]) if ctx.base_output == "latent" else (out, None)
        return items


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


class References(Stage):
    """IP-Adapter: reference pictures steer the image, each with its own strength; the adapter comes
    off the model again in release(), so the next job finds it as loaded."""

    name = "references"

    def check(self, job):
        from asset_studio.engine import ip_adapter

        info = ip_adapter.inspect_adapter(ip_adapter.resolve_adapter(job.model.ip_adapter))
        ip_adapter.check_pairing(info, ip_adapter.resolve_encoder(job.model.image_encoder, info))
        for ref in job.references:
            load_image(ref.image, "reference image", 64, 64)

    def prepare(self, ctx):
        from asset_studio.engine import ip_adapter

        base, refs = ctx.loaded.pipe, ctx.job.references
        info = ip_adapter.load_ip_adapter(base, ctx.job.model.ip_adapter, ctx.job.model.image_encoder, len(refs))
        ip_adapter.set_reference_scales(base, refs)
        ctx.inputs["ip_adapter_image_embeds"] = ip_adapter.reference_embeds(
            base, refs, info, do_cfg=ctx.job.sampling.cfg_scale > 1)
        ctx.undo.append(lambda: ip_adapter.unload_ip_adapter(base))


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


class Transparent(Stage):
    """LayerDiffuse: the latent-transparency patch goes on the UNet after the LoRAs (release() takes it
    off: the cached model is unchanged bit for bit); the base pass hands on latents, which the
    transparent decoder turns into RGBA."""

    name = "transparent (LayerDiffuse)"

    def __init__(self, download: bool = False):
        self.download = download

    def check(self, job):
        from asset_studio.engine.layerdiffuse import check_weights
        from asset_studio.engine.loader import detect_family, resolve_model

        files = check_weights(job.transparency.weights,
                              detect_family(resolve_model(job.model.checkpoint, download=self.download)))
        if job.references and files.layout == "attention-sharing":  # both replace the attention processors
            from asset_studio.core.job import TRANSPARENT_WITH_REFERENCES

            raise UserError(TRANSPARENT_WITH_REFERENCES)

    def prepare(self, ctx):
        import torch

        from asset_studio.engine.layerdiffuse import cached_decoder, check_weights
        from asset_studio.engine.layerdiffuse_patch import apply_patch, inspect_patch

        files = check_weights(ctx.job.transparency.weights, ctx.loaded.family)
        ctx.undo.append(apply_patch(ctx.loaded.pipe.unet, inspect_patch(files.patch)))
        dtype = torch.float32 if getattr(ctx.device, "type", str(ctx.device)) == "cpu" else ctx.dtype
        self.decoder = cached_decoder(files.decoder, ctx.device, dtype)
        ctx.base_output = "latent"

    def run_many(self, ctx, items):
        for item in items:
            [item.image] = self.decoder.decode_latents(ctx.loaded.pipe.vae, item.latents)
            item.latents = None
        return items


# --- after-passes ------------------------------------------------------------------------------------


class RefinerPass(Stage):
    """SDXL: the base model runs the first `switch_at` of the schedule and hands its latents to the
    refiner for the rest (diffusers' denoising_end / denoising_start, A1111's "switch at").
    SD 1.x/2.x: the second model refines the decoded picture by img2img over the last part."""

    name = "refiner"
    after_pass = True  # changes a finished picture: the backend keeps the picture before it

    def __init__(self, hands_on_latents: bool):
        self.hands_on_latents = hands_on_latents  # the next pass continues from latents

    def check(self, job):
        from asset_studio.engine.loader import detect_family, resolve_model

        detect_family(resolve_model(job.passes.refiner.model, download=False))

    def prepare(self, ctx):
        from asset_studio.engine.loader import detect_family, resolve_model

        ref = ctx.job.passes.refiner
        family = detect_family(resolve_model(ref.model))
        if (family == "sdxl") != (ctx.loaded.family == "sdxl"):
            from asset_studio.core import families

            raise UserError(f"The refiner {Path(ref.model).name} is an {families.label(family)} model but the "
                            f"model is {families.label(ctx.loaded.family)}; use a refiner of the same family.")
        # Base and refiner both stay loaded, as in A1111: reloading one per image would cost seconds.
        ctx.cache.capacity = max(ctx.cache.capacity, 2)
        self.loaded = ctx.cache.get(ref.model, ctx.device, ctx.dtype, download=ctx.download)
        self.pipe = derived_pipeline(self.loaded, "img2img")
        self.latent_handoff = ctx.loaded.family == "sdxl"
        if self.latent_handoff:
            ctx.inputs["denoising_end"] = float(ref.switch_at)
            ctx.base_output = "latent"

    def run(self, ctx, item):
        ref = ctx.job.passes.refiner
        output = "latent" if self.hands_on_latents else "pil"
        if self.latent_handoff:
            inputs = {"image": item.latents, "denoising_start": float(ref.switch_at)}
            steps = ctx.job.sampling.steps
        else:
            inputs = {"image": item.image, "strength": 1.0 - float(ref.switch_at)}
            steps = _img2img_steps(ctx.job.sampling.steps, 1.0 - float(ref.switch_at))
        [out] = _call(ctx, self.pipe, [item], inputs, steps, output, scheduler_config=self.loaded.scheduler_config)
        item.image, item.latents = (None, out[None]) if output == "latent" else (out, None)
        return item


class HiresFix(Stage):
    """Enlarge the image (its latents, or the picture with a resampler or an upscale model), then
    run img2img at a denoise over the same loaded modules: details at the new size, no reload."""

    name = "hires fix"
    after_pass = True

    def check(self, job):
        from asset_studio.core.job import HIRES_IMAGE_UPSCALERS, HIRES_LATENT_UPSCALERS

        upscaler = job.passes.hires.upscaler
        if upscaler not in HIRES_LATENT_UPSCALERS + HIRES_IMAGE_UPSCALERS:
            from asset_studio.engine.upscale import resolve_upscaler

            resolve_upscaler(upscaler)  # a .safetensors file or a downloaded catalog upscaler

    def __init__(self, upscaler: str):
        self.upscaler = upscaler

    @property
    def wants_latents(self) -> bool:
        from asset_studio.core.job import HIRES_LATENT_UPSCALERS

        return self.upscaler in HIRES_LATENT_UPSCALERS

    def prepare(self, ctx):
        from asset_studio.core.job import hires_size

        self.pipe = derived_pipeline(ctx.loaded, "img2img")
        if self.wants_latents and ctx.job.passes.refiner is None:
            ctx.base_output = "latent"  # else the refiner hands its latents on
        self.size = hires_size(ctx.job)
        hires = ctx.job.passes.hires
        self.steps = _img2img_steps(hires.steps or sampling_steps(ctx.job), hires.denoise, explicit=bool(hires.steps))

    def run(self, ctx, item):
        import torch.nn.functional as F
        from PIL import Image

        hires = ctx.job.passes.hires
        w, h = self.size
        if self.wants_latents:
            mode = "nearest-exact" if hires.upscaler == "latent-nearest" else "bilinear"
            image = F.interpolate(item.latents, size=(h // 8, w // 8), mode=mode)
        elif hires.upscaler in ("lanczos", "nearest"):
            resample = Image.Resampling.NEAREST if hires.upscaler == "nearest" else Image.Resampling.LANCZOS
            image = item.image.resize((w, h), resample)
        else:
            from asset_studio.engine.upscale import UpscaleSettings, upscale_image

            image = upscale_image(item.image, hires.upscaler, UpscaleSettings(scale=hires.scale), device=ctx.device)
            image = image.resize((w, h), Image.Resampling.LANCZOS)  # to the exact multiple of 8
        inputs = {"image": image, "strength": float(hires.denoise), **reference_inputs(ctx)}
        if ctx.loaded.family == "sdxl":
            inputs.update(original_size=(h, w), target_size=(h, w))
        [item.image] = _call(ctx, self.pipe, [item], inputs, self.steps, "pil")
        item.latents = None
        return item


class TiledUpscale(Stage):
    """Ultimate SD Upscale: enlarge the picture (a resampler or an upscale model), then redraw it
    tile by tile with img2img over the same loaded modules (a tile ControlNet keeps each tile to
    its content), each tile with its neighbours as context and pasted with a feathered edge, then
    optionally redraw the joins (core/tiled_redraw says where). Every tile has its own seed, the
    image's seed + its number, so a PNG re-runs exactly."""

    name = "tiled upscale"
    after_pass = True

    def check(self, job):
        t = job.passes.tiled_upscale
        if t.upscaler not in HIRES_IMAGE_UPSCALERS:
            from asset_studio.engine.upscale import resolve_upscaler

            resolve_upscaler(t.upscaler)
        if t.controlnet:
            from asset_studio.engine.controlnet import check_controlnet_ref

            check_controlnet_ref(tile_controlnet_ref(t.controlnet))

    def prepare(self, ctx):
        t = ctx.job.passes.tiled_upscale
        xl = ctx.loaded.family == "sdxl"
        if t.controlnet:
            from asset_studio.engine.controlnet import check_family, load_controlnet, wrap_pipeline

            ref = tile_controlnet_ref(t.controlnet)
            model = load_controlnet(ref, ctx.device, ctx.dtype)
            check_family(model, ctx.loaded.pipe.unet, ref)
            self.pipe = wrap_pipeline(ctx.loaded.pipe, [model], xl, True, ctx.dtype)
        else:
            self.pipe = derived_pipeline(ctx.loaded, "img2img")
        # steps 0: the base pass's steps, of which a tile runs steps x denoise (as A1111's img2img)
        self.steps = {d: _img2img_steps(t.steps or ctx.job.sampling.steps, d, explicit=bool(t.steps))
                      for d in (t.denoise, t.seams_denoise) if d > 0}

    def run(self, ctx, item):
        import numpy as np

        from asset_studio.core import tiled_redraw
        from asset_studio.core.job import upscaled_size

        t = ctx.job.passes.tiled_upscale
        picture = np.array(self._enlarge(ctx, item.image.convert("RGB"), upscaled_size(ctx.job)))
        pieces = [] if t.denoise == 0 else tiled_redraw.redraws(
            picture.shape[1], picture.shape[0], t.tile, t.padding, t.mask_blur, t.seams, t.seams_width)
        tiles = sum(p.kind == "tile" for p in pieces)
        try:
            for number, piece in enumerate(pieces):
                denoise = t.denoise if piece.kind == "tile" else t.seams_denoise
                ctx.stage_label = (f"tile {number + 1} of {tiles}" if piece.kind == "tile"
                                   else f"seam {number - tiles + 1} of {len(pieces) - tiles}")
                crop = tiled_redraw.crop(picture, piece)
                inputs = {"image": crop, "strength": float(denoise), **reference_inputs(ctx)}
                if t.controlnet:  # the tile model follows the crop itself
                    inputs.update(control_image=crop, controlnet_conditioning_scale=float(t.controlnet_scale))
                if ctx.loaded.family == "sdxl":
                    h, w = crop.height, crop.width
                    inputs.update(original_size=(h, w), target_size=(h, w))
                seed = (int(item.seed) + 1 + number) % 2**64
                [redrawn] = _call(ctx, self.pipe, [Item(index=item.index, seed=seed)], inputs, self.steps[denoise])
                tiled_redraw.paste(picture, redrawn, piece)
        finally:
            ctx.stage_label = ""
        from PIL import Image

        item.image, item.latents = Image.fromarray(picture), None
        return item

    @staticmethod
    def _enlarge(ctx, image, size):
        from PIL import Image

        upscaler = ctx.job.passes.tiled_upscale.upscaler
        if upscaler in HIRES_IMAGE_UPSCALERS:
            resample = Image.Resampling.NEAREST if upscaler == "nearest" else Image.Resampling.LANCZOS
            return image.resize(size, resample)
        from asset_studio.engine.upscale import UpscaleSettings, upscale_image

        scale = size[0] / image.width
        image = upscale_image(image, upscaler, UpscaleSettings(scale=scale), device=ctx.device)
        return image.convert("RGB").resize(size, Image.Resampling.LANCZOS) if image.size != size else image.convert("RGB")


def reference_inputs(ctx: RunContext) -> dict:
    """What a pass over the base model must hand on from the base pass: the references' image
    embeddings (the UNet carries the IP-Adapter for the whole job and refuses a call without them)."""
    return {k: ctx.inputs[k] for k in ("ip_adapter_image_embeds",) if k in ctx.inputs}


def tile_controlnet_ref(ref: str) -> str:
    """A ControlNet reference, or the downloaded file of a catalog ControlNet shipped as one file
    (the tile model is published as .safetensors only as a single file)."""
    from asset_studio.core.models import load_catalog

    entry = next((e for e in load_catalog() if e.kind == "controlnet" and ref in (e.id, e.name)), None)
    if entry is None:
        return ref
    if len(entry.allow_patterns) == 1 and entry.allow_patterns[0].endswith(".safetensors"):
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(entry.repo, entry.allow_patterns[0])
        if not isinstance(found, str):
            raise UserError(f"The ControlNet {entry.id} is not downloaded yet; run "
                            f"`asset-studio models download {entry.id}`.")
        return found
    return entry.repo


# --- the plan ----------------------------------------------------------------------------------------


def plan(job: GenerationJob, download: bool = False) -> list[Stage]:
    """The stages JOB needs, in order. Refuses, by name, a part of the job no stage implements."""
    if job.sampling.subseed is not None and (job.output != "image" or job.init is not None):
        raise UserError("Variation seeds work on text to image only; for variations of a start image, "
                        "lower its denoise instead.")
    if job.output != "image":  # animations and videos: their own base passes (engine/animate.py)
        from asset_studio.engine.animate import animation_stages

        return animation_stages(job, download)
    stages: list[Stage] = [LoadModel(download), Loras()]
    if job.init is not None and job.init.kept:  # an existing picture, detailed as it is
        from asset_studio.engine.detail import KeptImage

        stages.append(KeptImage())
    else:
        stages.append(Img2Img() if job.init is not None else Txt2Img())
    if job.controls:
        stages.append(ControlNet())
    if job.references:
        stages.append(References())
    if job.tiling != "off":
        stages.append(SeamlessTiling())
    if job.transparency is not None:
        stages.append(Transparent(download))
    hires = HiresFix(job.passes.hires.upscaler) if job.passes.hires is not None else None
    if job.passes.refiner is not None:
        stages.append(RefinerPass(hands_on_latents=hires is not None and hires.wants_latents))
    if hires is not None:
        stages.append(hires)
    if job.passes.detail:
        from asset_studio.engine.detail import Detail

        stages.append(Detail())
    if job.passes.tiled_upscale is not None:
        stages.append(TiledUpscale())
    return stages


# --- shared pieces ---------------------------------------------------------------------------------


def sampling_steps(job: GenerationJob) -> int:
    """Steps to ask diffusers for. img2img runs steps x denoise of them; like A1111, never zero."""
    if job.init is not None:
        return _img2img_steps(job.sampling.steps, job.init.denoise)
    return job.sampling.steps


def _img2img_steps(steps: int, denoise: float, explicit: bool = False) -> int:
    """num_inference_steps for an img2img call, which runs int(n x denoise) of them: with EXPLICIT,
    STEPS is what must actually run (A1111's "Hires steps"); else at least one runs."""
    if explicit:
        return math.ceil(steps / denoise)
    if int(steps * denoise) < 1:
        return math.ceil(1 / denoise)
    return steps


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


def _call(ctx: RunContext, pipe, items: list[Item], inputs: dict, steps: int, output: str = "pil",
          scheduler_config: dict | None = None, latents=None) -> list:
    """One pipeline call for ITEMS: a fresh scheduler and one CPU generator per image, so a seed
    means the same starting noise on every device and in any batch, and each image re-runs alone
    from its embedded job. Returns PIL images, or latents (one per item) when OUTPUT is "latent"."""
    import torch

    result = run_pipeline(ctx, pipe, items[0], inputs, steps, output, scheduler_config,
                          generator=[torch.Generator("cpu").manual_seed(int(item.seed)) for item in items],
                          num_images_per_prompt=len(items),
                          **({} if latents is None else {"latents": latents}))
    return list(result.images)


def variation_noise(ctx: RunContext, pipe, items: list[Item]):
    """A1111's variation seed: each image's starting noise is its seed's noise slerped toward its
    subseed's (subseed + the image's index) by the strength; None when the job has no subseed
    (diffusers draws the noise itself). Both draws are exactly diffusers' own (randn_tensor, one
    CPU generator per image), so strength 0 is the seed's image and 1 the subseed's, bit for bit."""
    s = ctx.job.sampling
    if s.subseed is None:
        return None
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    shape = (1, pipe.unet.config.in_channels, s.height // pipe.vae_scale_factor, s.width // pipe.vae_scale_factor)
    device, dtype = pipe._execution_device, pipe.unet.dtype

    def noise(seed: int):
        return randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(int(seed)), device=device, dtype=dtype)

    return torch.cat([slerp(float(s.subseed_strength), noise(item.seed), noise(s.subseed + item.index))
                      for item in items])


def slerp(val: float, low, high):
    """A1111's spherical interpolation of two noises across the channels of each latent pixel, in
    float32; pixels whose two vectors are (nearly) parallel are interpolated linearly."""
    import torch

    a, b = low.float(), high.float()
    dot = ((a / a.norm(dim=1, keepdim=True)) * (b / b.norm(dim=1, keepdim=True))).sum(1).clamp(-1, 1)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    safe = so.abs() > 1e-6
    so = torch.where(safe, so, torch.ones_like(so))
    w_low = torch.where(safe, torch.sin((1.0 - val) * omega) / so, torch.full_like(so, 1.0 - val)).unsqueeze(1)
    w_high = torch.where(safe, torch.sin(val * omega) / so, torch.full_like(so, val)).unsqueeze(1)
    return (w_low * a + w_high * b).to(low.dtype)


def run_pipeline(ctx: RunContext, pipe, item: Item, inputs: dict, steps: int, output: str,
                 scheduler_config: dict | None = None, preview_latents=None, prompt=None, **call):
    """The call every base and after-pass shares (images and animations alike): a fresh scheduler
    for the job's sampler, the job's prompt, CFG and clip skip, the step callback (cancel and
    progress), and diffusers' own truncation warning silenced (prompt_notices says it once).
    CALL adds the generator(s); PREVIEW_LATENTS picks what the step preview shows; PROMPT (a core
    Prompt) replaces the job's for a pass that has its own (the detailer's)."""
    from diffusers.utils import logging as dlog

    from asset_studio.engine.samplers import build_scheduler

    job = ctx.job
    prompt = prompt or job.prompt
    pipe.scheduler = build_scheduler(job.sampling.sampler, scheduler_config or ctx.loaded.scheduler_config,
                                     seed=item.seed)
    level = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        return pipe(
            prompt=prompt.text,
            negative_prompt=prompt.negative or None,
            num_inference_steps=steps,
            guidance_scale=float(job.sampling.cfg_scale),
            # A1111's clip skip 1 is the last layer; diffusers counts layers skipped beyond it.
            clip_skip=(job.model.clip_skip - 1) if job.model.clip_skip > 1 else None,
            output_type=output,
            callback_on_step_end=step_callback(ctx, item.index, preview_latents),
            callback_on_step_end_tensor_inputs=["latents"],
            **call,
            **inputs,
        )
    finally:
        dlog.set_verbosity(level)


def step_callback(ctx: RunContext, index: int, preview_latents=None):
    """diffusers' step-end callback: stop at once on cancel, report progress with the latents the
    preview shows (PREVIEW_LATENTS picks them, e.g. an animation's first frame)."""
    def callback(pipe, step_index, timestep, tensors):
        if ctx.should_cancel is not None and ctx.should_cancel():
            raise Cancelled()
        if ctx.on_progress is not None:
            total = getattr(pipe, "_num_timesteps", None) or ctx.job.sampling.steps
            latents = tensors["latents"]
            ctx.on_progress(step_index + 1, int(total), index,
                            preview_latents(latents) if preview_latents is not None else latents)
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
            ("inpaint", "sdxl"): diffusers.StableDiffusionXLInpaintPipeline,
            ("inpaint", "sd15"): diffusers.StableDiffusionInpaintPipeline,
            ("inpaint", "sd2"): diffusers.StableDiffusionInpaintPipeline,
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
