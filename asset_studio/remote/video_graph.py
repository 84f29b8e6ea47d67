"""Animation jobs as ComfyUI graphs (API format), pure data like graph.py, which hands them here.

    graph = svd_graph(job.for_seed(seed), ServerFiles(models={...}, images={...}))

Stable Video Diffusion maps to the stock nodes of comfy_extras/nodes_video_model.py: one graph
makes one animation, its SaveImage holds the frames as one batch, in frame order. AnimateDiff
(text to animation, video to video) needs the AnimateDiff-Evolved custom nodes, which stock
ComfyUI lacks; it is refused by name before anything is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asset_studio.core.job import GenerationJob, ImageToVideo

if TYPE_CHECKING:
    from asset_studio.remote.graph import ServerFiles

# Every node svd_graph() uses (stock ComfyUI 0.3.x).
SVD_NODES = frozenset({
    "ImageOnlyCheckpointLoader", "LoadImage", "SVD_img2vid_Conditioning", "VideoLinearCFGGuidance", "KSampler",
    "VAEDecode", "SaveImage",
})
# The custom-node pack AnimateDiff needs on a server, and the node that tells it is installed.
ANIMATEDIFF_PACK = "AnimateDiff-Evolved"
ANIMATEDIFF_NODE = "ADE_AnimateDiffLoaderGen1"
# SVD runs its own EDM Euler schedule with Karras sigmas whatever the job's sampler (the local
# engine uses the model's scheduler too): ComfyUI's names for it.
SVD_SAMPLER = ("euler", "karras")


def video_unsupported(job: GenerationJob) -> str | None:
    """The first part of animation JOB a ComfyUI server cannot run for us, as a sentence; None when all can."""
    a = job.animation
    if a is None:
        return f"The job's output is {job.output} but it has no animation settings."
    if a.method != "svd":
        return animatediff_refusal({})
    parts = [name for name, used in (
        ("loops", a.loop), ("ControlNets", bool(job.controls)), ("references", bool(job.references)),
        ("LoRAs", bool(job.model.loras)), ("seamless tiling", job.tiling != "off"),
        ("the hires fix", job.passes.hires is not None), ("a refiner", job.passes.refiner is not None),
        ("the detailer", bool(job.passes.detail)),
    ) if used]
    if parts:
        return f"Stable Video Diffusion on a ComfyUI server takes no {', '.join(parts)}; leave them out."
    if job.init is None:
        return "Stable Video Diffusion animates a picture: give the start image (--image)."
    return None


def animatediff_refusal(server_nodes: dict[str, set[str]]) -> str:
    """Why an AnimateDiff job is not sent: the servers lack AnimateDiff-Evolved, or (when one of
    SERVER_NODES, url → its node classes, has it) Asset Studio does not map it yet."""
    having = [url for url, nodes in server_nodes.items() if ANIMATEDIFF_NODE in nodes]
    if having:
        return (f"The server {having[0]} has the {ANIMATEDIFF_PACK} nodes, but Asset Studio cannot send AnimateDiff "
                "animations to ComfyUI servers yet; use the local engine (--engine local).")
    return (f"AnimateDiff animations need the {ANIMATEDIFF_PACK} custom nodes ({ANIMATEDIFF_NODE} …), which stock "
            "ComfyUI lacks; use the local engine (--engine local), or Stable Video Diffusion (--image, --svd).")


def is_animatediff(job: GenerationJob) -> bool:
    return job.animation is not None and job.animation.method != "svd"


def video_models(job: GenerationJob) -> list[tuple[str, str]]:
    """(kind, reference) of the model files: the SVD checkpoint lives in the server's checkpoints."""
    return [("checkpoint", job.model.checkpoint)]


def video_images(job: GenerationJob) -> list[str]:
    """The start picture, uploaded at the job's frame size (as the local engine resizes it)."""
    return [job.init.image] if job.init is not None else []


def svd_graph(job: GenerationJob, files: "ServerFiles", output_prefix: str) -> dict:
    """The API-format graph of JOB's first animation (callers pass job.for_seed(seed))."""
    s, a = job.sampling, job.animation
    v = a.svd or ImageToVideo()
    graph: dict[str, dict] = {}

    def add(class_type: str, **inputs) -> str:
        node_id = str(len(graph) + 1)
        graph[node_id] = {"class_type": class_type, "inputs": inputs}
        return node_id

    ckpt = add("ImageOnlyCheckpointLoader", ckpt_name=files.model(job.model.checkpoint))  # MODEL, CLIP_VISION, VAE
    picture = add("LoadImage", image=files.image(job.init.image))
    cond = add("SVD_img2vid_Conditioning", clip_vision=[ckpt, 1], init_image=[picture, 0], vae=[ckpt, 2],
               width=int(s.width), height=int(s.height), video_frames=int(a.frames),
               # the node's bucket starts at 1; both ComfyUI and diffusers condition on fps - 1
               motion_bucket_id=max(1, int(v.motion_bucket)), fps=max(1, round(a.fps)),
               # the local noise_aug, the number the model is conditioned on (ComfyUI adds the noise to
               # 0-1 pixels, diffusers to -1-1 ones: ComfyUI's convention, kept as its users know it)
               augmentation_level=float(v.noise_aug))
    # guidance rises from min_cfg on the first frame to the job's CFG on the last, as locally
    model = add("VideoLinearCFGGuidance", model=[ckpt, 0], min_cfg=float(v.min_cfg))
    sampler_name, scheduler = SVD_SAMPLER
    samples = add("KSampler", model=[model, 0], seed=int(s.seed), steps=int(s.steps), cfg=float(s.cfg_scale),
                  sampler_name=sampler_name, scheduler=scheduler, positive=[cond, 0], negative=[cond, 1],
                  latent_image=[cond, 2], denoise=1.0)
    # decode_chunk is the local engine's: ComfyUI sizes its decode batches by its free memory
    frames = add("VAEDecode", samples=[samples, 0], vae=[ckpt, 2])
    add("SaveImage", images=[frames, 0], filename_prefix=output_prefix)
    return graph
