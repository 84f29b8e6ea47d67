"""A GenerationJob as a ComfyUI graph in the API format (what POST /prompt takes). Pure data.

    graph = job_graph(job.for_seed(seed), ServerFiles(models={...}, images={...}))

One graph makes one image: the pool hands images to servers one at a time. Only stock ComfyUI
nodes are used (nodes.py of ComfyUI 0.3.x), so any server runs it without custom nodes; a job part
no stock node implements is refused by `unsupported(job)` with its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from asset_studio.core.job import HIRES_IMAGE_UPSCALERS, HIRES_LATENT_UPSCALERS, GenerationJob, hires_size
from asset_studio.core.samplers import comfyui_sampler
from asset_studio.errors import UserError

OUTPUT_PREFIX = "asset-studio"
# Every node job_graph() may use: a server lacking one cannot run some jobs (`servers check` says which).
STUDIO_NODES = frozenset({
    "CheckpointLoaderSimple", "LoraLoader", "CLIPSetLastLayer", "VAELoader", "CLIPTextEncode", "LoadImage",
    "VAEEncode", "EmptyLatentImage", "ControlNetLoader", "ControlNetApplyAdvanced", "KSampler", "VAEDecode",
    "SaveImage", "KSamplerAdvanced", "LatentUpscale", "ImageScale", "UpscaleModelLoader", "ImageUpscaleWithModel",
})
# Resize methods of the stock LatentUpscale / ImageScale nodes for the hires fix's resamplers
# (the local engine resizes latents bilinearly or nearest, pictures with Lanczos or nearest).
HIRES_METHODS = {"latent": "bilinear", "latent-nearest": "nearest-exact", "lanczos": "lanczos",
                 "nearest": "nearest-exact"}

# The model folders of a ComfyUI server, as /object_info lists them: (node, input) naming the files.
MODEL_LISTS = {
    "checkpoint": ("CheckpointLoaderSimple", "ckpt_name"),
    "LoRA": ("LoraLoader", "lora_name"),
    "VAE": ("VAELoader", "vae_name"),
    "ControlNet": ("ControlNetLoader", "control_net_name"),
    "upscale model": ("UpscaleModelLoader", "model_name"),
}


@dataclass
class ServerFiles:
    """How the server names the job's files: model reference → file name in its model lists,
    local image path → name of the uploaded copy. A reference not listed goes by its file name."""

    models: dict[str, str] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    # The checkpoint's family ("sdxl", "sd15"…) where known: an SDXL refiner takes the base's
    # latents mid-schedule; any other (or unknown) refiner redraws the decoded picture (img2img).
    family: str = ""

    def model(self, ref: str) -> str:
        return self.models.get(ref) or file_name(ref)

    def image(self, path: str) -> str:
        return self.images.get(path) or file_name(path)


def file_name(ref: str) -> str:
    """The file name a model reference goes by on a server (servers have their own folders)."""
    return PurePath(str(ref).replace("\\", "/")).name


def unsupported(job: GenerationJob) -> str | None:
    """The first part of JOB stock ComfyUI nodes cannot do, as a sentence; None when all can."""
    if job.output != "image":  # animations: remote/video_graph.py
        from asset_studio.remote.video_graph import video_unsupported

        return video_unsupported(job)
    if job.references:
        return ("ComfyUI servers cannot use reference images (IP-Adapter needs custom nodes that stock "
                "ComfyUI lacks); remove them (a style pack's own: --no-style-references).")
    passes = [name for name, part in (("the detailer", job.passes.detail or None),
                                      ("the tiled upscale", job.passes.tiled_upscale))
              if part is not None]
    if passes:
        return f"ComfyUI servers cannot run {' or '.join(passes)} for Asset Studio yet; use the local engine."
    if job.transparency is not None:
        return ("Transparent generation (LayerDiffuse) needs custom nodes on a ComfyUI server (stock ComfyUI has "
                "none); use the local engine.")
    if job.sampling.subseed is not None:
        return "Variation seeds need custom nodes on a ComfyUI server (stock ComfyUI has none); use the local engine."
    if job.tiling != "off":
        return "Seamless tiling needs custom nodes on a ComfyUI server (stock ComfyUI has none); use the local engine."
    try:
        comfyui_sampler(job.sampling.sampler)
    except UserError as exc:
        return str(exc)
    return None


def models_of(job: GenerationJob) -> list[tuple[str, str]]:
    """(kind, reference) of every model file the job needs, kinds as in MODEL_LISTS."""
    if job.animation is not None:
        from asset_studio.remote.video_graph import video_models

        return video_models(job)
    refs = [("checkpoint", job.model.checkpoint)]
    refs += [("LoRA", lora.path) for lora in job.model.loras]
    if job.model.vae:
        refs.append(("VAE", job.model.vae))
    refs += [("ControlNet", unit.model) for unit in job.controls]
    if job.passes.refiner is not None:
        refs.append(("checkpoint", job.passes.refiner.model))
    upscaler = hires_model(job)
    if upscaler:
        refs.append(("upscale model", upscaler))
    return refs


def hires_model(job: GenerationJob) -> str | None:
    """The upscale model file (or catalog id) the job's hires fix enlarges with, or None."""
    hires = job.passes.hires
    if hires is None or hires.upscaler in HIRES_METHODS:
        return None
    return hires.upscaler


def images_of(job: GenerationJob) -> list[str]:
    """Local paths of the pictures the server needs a copy of (start image, control images)."""
    if job.animation is not None:
        from asset_studio.remote.video_graph import video_images

        return video_images(job)
    paths = [job.init.image] if job.init is not None else []
    return paths + [unit.image for unit in job.controls]


def nodes_of(job: GenerationJob, files: ServerFiles | None = None) -> set[str]:
    """The node classes job_graph(JOB) uses: a server missing one cannot run it."""
    return {node["class_type"] for node in job_graph(job, files).values()}


def job_graph(job: GenerationJob, files: ServerFiles | None = None) -> dict:
    """The API-format graph of JOB's first image (callers pass job.for_seed(seed))."""
    problem = unsupported(job)
    if problem:
        raise UserError(problem)
    files = files or ServerFiles()
    if job.animation is not None:  # an animation's frames come back as one batch of images
        from asset_studio.remote.video_graph import svd_graph

        return svd_graph(job, files, OUTPUT_PREFIX)
    graph: dict[str, dict] = {}

    def add(class_type: str, **inputs) -> str:
        node_id = str(len(graph) + 1)
        graph[node_id] = {"class_type": class_type, "inputs": inputs}
        return node_id

    s = job.sampling
    ckpt = add("CheckpointLoaderSimple", ckpt_name=files.model(job.model.checkpoint))
    model, clip, vae = [ckpt, 0], [ckpt, 1], [ckpt, 2]
    for lora in job.model.loras:
        node = add("LoraLoader", model=model, clip=clip, lora_name=files.model(lora.path),
                   strength_model=float(lora.weight), strength_clip=float(lora.weight))
        model, clip = [node, 0], [node, 1]
    if job.model.clip_skip > 1:  # A1111's clip skip N is ComfyUI's "stop at layer -N"
        clip = [add("CLIPSetLastLayer", clip=clip, stop_at_clip_layer=-int(job.model.clip_skip)), 0]
    if job.model.vae:
        vae = [add("VAELoader", vae_name=files.model(job.model.vae)), 0]
    positive = [add("CLIPTextEncode", text=job.prompt.text, clip=clip), 0]
    negative = [add("CLIPTextEncode", text=job.prompt.negative, clip=clip), 0]
    prompts = positive, negative  # the hires fix redraws with the prompts alone (no ControlNet), as locally
    if job.init is not None:
        # The upload is already at the job's size (the client resizes as the local engine does).
        pixels = add("LoadImage", image=files.image(job.init.image))
        latent = [add("VAEEncode", pixels=[pixels, 0], vae=vae), 0]
        denoise = float(job.init.denoise)
        # KSampler runs all `steps` over the last part of the schedule; A1111 and diffusers run
        # steps x denoise of them: ask for that many, so a job costs the same on either backend.
        steps = max(1, int(s.steps * denoise))
    else:
        latent = [add("EmptyLatentImage", width=s.width, height=s.height, batch_size=1), 0]
        denoise, steps = 1.0, s.steps
    for unit in job.controls:
        net = add("ControlNetLoader", control_net_name=files.model(unit.model))
        hint = add("LoadImage", image=files.image(unit.image))
        node = add("ControlNetApplyAdvanced", positive=positive, negative=negative, control_net=[net, 0],
                   image=[hint, 0], strength=float(unit.scale), start_percent=float(unit.start),
                   end_percent=float(unit.end))
        positive, negative = [node, 0], [node, 1]
    sampler_name, scheduler = comfyui_sampler(s.sampler)
    sample = dict(cfg=float(s.cfg_scale), sampler_name=sampler_name, scheduler=scheduler)
    refiner = job.passes.refiner
    base_vae = vae
    if refiner is not None and files.family == "sdxl":
        # SDXL hand-off, as A1111 and ComfyUI's own SDXL workflow: one schedule of s.steps; the
        # base runs up to the switch step and returns its latents with the noise left in them, the
        # refiner runs the rest. img2img starts that schedule later, as its denoise says.
        start = s.steps - steps if job.init is not None else 0
        switch = min(s.steps, max(start, round(s.steps * float(refiner.switch_at))))
        base = add("KSamplerAdvanced", model=model, add_noise="enable", noise_seed=int(s.seed), steps=int(s.steps),
                   **sample, positive=positive, negative=negative, latent_image=latent, start_at_step=int(start),
                   end_at_step=int(switch), return_with_leftover_noise="enable")
        r_model, r_clip, r_vae = _checkpoint(add, files.model(refiner.model))
        samples = [add("KSamplerAdvanced", model=r_model, add_noise="disable", noise_seed=int(s.seed),
                       steps=int(s.steps), **sample, positive=_encode(add, job.prompt.text, r_clip),
                       negative=_encode(add, job.prompt.negative, r_clip), latent_image=[base, 0],
                       start_at_step=int(switch), end_at_step=10000, return_with_leftover_noise="disable"), 0]
        vae = r_vae
    else:
        samples = [add("KSampler", model=model, seed=int(s.seed), steps=int(steps), **sample, positive=positive,
                       negative=negative, latent_image=latent, denoise=denoise), 0]
        if refiner is not None:
            # SD 1.x/2.x (or a family not known here): the second model redraws the decoded
            # picture over the last 1 - switch_at of the schedule, as the local engine does.
            r_model, r_clip, r_vae = _checkpoint(add, files.model(refiner.model))
            pixels = add("VAEDecode", samples=samples, vae=vae)
            r_denoise = round(1.0 - float(refiner.switch_at), 6)
            r_steps = max(1, int(round(s.steps * r_denoise, 6)))
            samples = [add("KSampler", model=r_model, seed=int(s.seed), steps=r_steps, **sample,
                           positive=_encode(add, job.prompt.text, r_clip),
                           negative=_encode(add, job.prompt.negative, r_clip),
                           latent_image=[add("VAEEncode", pixels=[pixels, 0], vae=r_vae), 0], denoise=r_denoise), 0]
            vae = r_vae
    hires = job.passes.hires
    if hires is not None:
        # Enlarge to the local engine's exact size (multiples of 8), then img2img over the base
        # model at the hires denoise. KSampler runs `steps` over the end of the schedule: the
        # hires steps when given (A1111's "Hires steps"), else steps x denoise as img2img does.
        width, height = hires_size(job)
        if hires.upscaler in HIRES_LATENT_UPSCALERS:
            latent = [add("LatentUpscale", samples=samples, upscale_method=HIRES_METHODS[hires.upscaler],
                          width=width, height=height, crop="disabled"), 0]
        else:
            pixels = [add("VAEDecode", samples=samples, vae=vae), 0]
            if hires.upscaler not in HIRES_IMAGE_UPSCALERS:
                loader = add("UpscaleModelLoader", model_name=files.model(hires.upscaler))
                pixels = [add("ImageUpscaleWithModel", upscale_model=[loader, 0], image=pixels), 0]
            method = HIRES_METHODS.get(hires.upscaler, "lanczos")  # a model's output: Lanczos to the exact size
            pixels = [add("ImageScale", image=pixels, upscale_method=method, width=width, height=height,
                          crop="disabled"), 0]
            latent = [add("VAEEncode", pixels=pixels, vae=base_vae), 0]
        h_denoise = float(hires.denoise)
        h_steps = int(hires.steps) if hires.steps else max(1, int(round(s.steps * h_denoise, 6)))
        samples = [add("KSampler", model=model, seed=int(s.seed), steps=h_steps, **sample, positive=prompts[0],
                       negative=prompts[1], latent_image=latent, denoise=h_denoise), 0]
        vae = base_vae  # the base model's pass is the last: its VAE decodes
    image = add("VAEDecode", samples=samples, vae=vae)
    add("SaveImage", images=[image, 0], filename_prefix=OUTPUT_PREFIX)
    return graph


def _checkpoint(add, name: str) -> tuple[list, list, list]:
    node = add("CheckpointLoaderSimple", ckpt_name=name)
    return [node, 0], [node, 1], [node, 2]


def _encode(add, text: str, clip: list) -> list:
    return [add("CLIPTextEncode", text=text, clip=clip), 0]


def output_node(graph: dict) -> str:
    """The id of the node whose images are the result."""
    return next(node_id for node_id, node in graph.items() if node["class_type"] == "SaveImage")
