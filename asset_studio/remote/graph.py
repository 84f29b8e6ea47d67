"""A GenerationJob as a ComfyUI graph in the API format (what POST /prompt takes). Pure data.

    graph = job_graph(job.for_seed(seed), ServerFiles(models={...}, images={...}))

One graph makes one image: the pool hands images to servers one at a time. Only stock ComfyUI
nodes are used (nodes.py of ComfyUI 0.3.x), so any server runs it without custom nodes; a job part
no stock node implements is refused by `unsupported(job)` with its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from asset_studio.core.job import GenerationJob
from asset_studio.core.samplers import comfyui_sampler
from asset_studio.errors import UserError

OUTPUT_PREFIX = "asset-studio"
# Every node job_graph() may use: a server lacking one cannot run some jobs (`servers check` says which).
STUDIO_NODES = frozenset({
    "CheckpointLoaderSimple", "LoraLoader", "CLIPSetLastLayer", "VAELoader", "CLIPTextEncode", "LoadImage",
    "VAEEncode", "EmptyLatentImage", "ControlNetLoader", "ControlNetApplyAdvanced", "KSampler", "VAEDecode",
    "SaveImage",
})

# The model folders of a ComfyUI server, as /object_info lists them: (node, input) naming the files.
MODEL_LISTS = {
    "checkpoint": ("CheckpointLoaderSimple", "ckpt_name"),
    "LoRA": ("LoraLoader", "lora_name"),
    "VAE": ("VAELoader", "vae_name"),
    "ControlNet": ("ControlNetLoader", "control_net_name"),
}


@dataclass
class ServerFiles:
    """How the server names the job's files: model reference → file name in its model lists,
    local image path → name of the uploaded copy. A reference not listed goes by its file name."""

    models: dict[str, str] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)

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
    passes = [name for name, part in (("the refiner", job.passes.refiner), ("the hires fix", job.passes.hires),
                                      ("the detailer", job.passes.detail or None),
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
    return refs


def images_of(job: GenerationJob) -> list[str]:
    """Local paths of the pictures the server needs a copy of (start image, control images)."""
    if job.animation is not None:
        from asset_studio.remote.video_graph import video_images

        return video_images(job)
    paths = [job.init.image] if job.init is not None else []
    return paths + [unit.image for unit in job.controls]


def nodes_of(job: GenerationJob) -> set[str]:
    """The node classes job_graph(JOB) uses: a server missing one cannot run it."""
    return {node["class_type"] for node in job_graph(job).values()}


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
    samples = add("KSampler", model=model, seed=int(s.seed), steps=int(steps), cfg=float(s.cfg_scale),
                  sampler_name=sampler_name, scheduler=scheduler, positive=positive, negative=negative,
                  latent_image=latent, denoise=denoise)
    image = add("VAEDecode", samples=[samples, 0], vae=vae)
    add("SaveImage", images=[image, 0], filename_prefix=OUTPUT_PREFIX)
    return graph


def output_node(graph: dict) -> str:
    """The id of the node whose images are the result."""
    return next(node_id for node_id, node in graph.items() if node["class_type"] == "SaveImage")
