"""The detailer after-pass (ADetailer's "inpaint only masked"), a stage of engine/plan.py.

For each pass of job.passes.detail, on the finished picture (after the refiner and hires fix):
regions come from the boxes the artist drew or from a YOLO detector (engine/detect.py); each
region's crop (mask + padding) is redrawn at the job's base size by diffusers' inpaint pipeline
built over the loaded modules (from_pipe: the same UNet, VAE, text encoders and LoRA adapters, no
reload), scaled back and pasted through the blurred mask. Pixels outside the crop are never touched.
The geometry is core/detail.py; each region's seed is the image's seed + its index (ADetailer's).
"""

from __future__ import annotations

from asset_studio.core import detail as geometry
from asset_studio.core.job import DetailPass, Prompt
from asset_studio.engine.plan import Item, Stage, _img2img_steps, derived_pipeline, reference_inputs, run_pipeline
from asset_studio.errors import UserError


class Detail(Stage):
    name = "detailer"
    after_pass = True  # the backend keeps the picture before it for the viewer's before/after

    def check(self, job):
        from asset_studio.engine.detect import load_detector
        from asset_studio.engine.loader import detect_family, resolve_model

        for d in job.passes.detail:
            if d.detector:
                load_detector(d.detector).class_ids(d.classes)  # a bad file or an unknown class: one sentence
            if d.inpaint_model:  # headers only: a model of another family is refused before anything loads
                check_family(detect_family(resolve_model(d.inpaint_model, download=False)),
                             detect_family(resolve_model(job.model.checkpoint, download=False)), d.inpaint_model)

    def prepare(self, ctx):
        from asset_studio.engine.detect import load_detector

        passes = ctx.job.passes.detail
        separate = {d.inpaint_model for d in passes if d.inpaint_model}
        if separate:  # the base, the refiner and the inpainting models all stay loaded
            ctx.cache.capacity = max(ctx.cache.capacity, 1 + (ctx.job.passes.refiner is not None) + len(separate))
        self.pipes = [self._pipeline(ctx, d) for d in passes]
        self.detectors = [load_detector(d.detector) if d.detector else None for d in passes]

    def _pipeline(self, ctx, d: DetailPass):
        """(loaded model, inpaint pipeline over its modules) for pass D."""
        loaded = ctx.loaded
        if d.inpaint_model:
            from asset_studio.engine.loader import detect_family, resolve_model

            check_family(detect_family(resolve_model(d.inpaint_model, download=ctx.download)), loaded.family,
                         d.inpaint_model)
            loaded = ctx.cache.get(d.inpaint_model, ctx.device, ctx.dtype, download=ctx.download)
        return loaded, derived_pipeline(loaded, "inpaint")

    def run(self, ctx, item):
        image = item.image.convert("RGB")  # a copy: the item's picture is replaced, never edited in place
        for d, (loaded, pipe), detector in zip(ctx.job.passes.detail, self.pipes, self.detectors):
            if detector is not None:
                rects = [tuple(round(v) for v in det.box) for det in detector.detect(image, d.confidence, d.classes)]
            else:
                rects = [geometry.box_rect(b) for b in d.boxes]
            for index, rect in enumerate(geometry.pick_regions(rects, d.max_regions)):
                image = self._redraw(ctx, item, d, loaded, pipe, image, rect, geometry.region_seed(item.seed, index))
        item.image, item.latents = image, None
        return item

    def _redraw(self, ctx, item, d: DetailPass, loaded, pipe, image, rect, seed: int):
        """IMAGE with the region RECT redrawn by pass D."""
        import torch
        from PIL import Image, ImageDraw, ImageFilter

        mask_rect = geometry.mask_rect(rect, d.dilate, image.size)
        if mask_rect is None:  # eroded away
            return image
        left, top, right, bottom = geometry.crop_rect(mask_rect, d.padding, image.size)
        width, height = right - left, bottom - top
        job = ctx.job
        tw, th = geometry.inpaint_size(width, height, job.sampling.width * job.sampling.height)
        mask = Image.new("L", (width, height), 0)
        ImageDraw.Draw(mask).rectangle((mask_rect[0] - left, mask_rect[1] - top,
                                        mask_rect[2] - left - 1, mask_rect[3] - top - 1), fill=255)
        crop = image.crop((left, top, right, bottom)).resize((tw, th), Image.Resampling.LANCZOS)
        inputs = {"image": crop, "mask_image": mask.resize((tw, th), Image.Resampling.NEAREST),
                  "strength": float(d.denoise), "width": tw, "height": th}
        if loaded.family == "sdxl":
            inputs.update(original_size=(th, tw), target_size=(th, tw))
        inputs.update(reference_inputs(ctx))  # the job's references steer the redrawn regions too
        prompt = Prompt(text=geometry.pass_prompt(d.prompt, job.prompt.text),
                        negative=geometry.pass_prompt(d.negative, job.prompt.negative))
        steps = _img2img_steps(d.steps or job.sampling.steps, d.denoise, explicit=bool(d.steps))
        result = run_pipeline(ctx, pipe, Item(index=item.index, seed=seed), inputs, steps, "pil",
                              scheduler_config=loaded.scheduler_config, prompt=prompt,
                              generator=torch.Generator("cpu").manual_seed(seed))
        redrawn = result.images[0].convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        if d.mask_blur:
            mask = mask.filter(ImageFilter.GaussianBlur(d.mask_blur))
        out = image.copy()
        out.paste(redrawn, (left, top), mask)
        return out


class KeptImage(Stage):
    """The base pass of a job that details an existing picture (job.init at denoise 0): the
    picture as it is, at its own size; nothing is sampled before the detailer."""

    name = "start image"

    def check(self, job):
        from asset_studio.core.job import check_detail

        check_detail(job, self._read(job.init.image).size)  # drawn regions inside the picture's own size

    def prepare(self, ctx):
        self.image = self._read(ctx.job.init.image)

    def run(self, ctx, item):
        item.image, item.latents = self.image.copy(), None
        return item

    @staticmethod
    def _read(path: str):
        from pathlib import Path

        from asset_studio.core.images import read_image

        if not Path(path).is_file():
            raise UserError(f"The image to detail, {path}, is not a file.")
        return read_image(path, "RGB", what="The image to detail")


def check_family(family: str, base_family: str, ref: str) -> None:
    """An inpainting model must take the base model's latents and prompts: the same family."""
    if family != base_family:
        from pathlib import Path

        from asset_studio.core import families

        raise UserError(f"The inpainting model {Path(ref).name} is an {families.label(family)} model but the "
                        f"model is {families.label(base_family)}; use one of the same family.")
