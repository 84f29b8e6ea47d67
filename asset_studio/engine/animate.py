"""Animations as base passes of the plan: AnimateDiff (text to animation, and video to video),
Stable Video Diffusion (image to video).

Each pass makes one animation per seed and hands every frame to ctx.on_frame as soon as it is
decoded (frame by frame, so memory holds one decoded frame, and the service has it on disk at
once). The AnimateDiff passes run over the loaded SD 1.5 model: its modules are converted once
into a UNetMotionModel with the motion adapter (cached beside the model, like img2img's
from_pipe), then the style's LoRAs and the motion LoRAs are attached as peft adapters. SDXL
models take SDXL motion adapters through diffusers' AnimateDiffSDXLPipeline (no ControlNet,
video to video or context windows there yet: those are refused by name).

Longer than the adapter's window: diffusers' FreeNoise (context windows over the motion
modules). Loops: see circular_motion().
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from asset_studio.core.job import GenerationJob
from asset_studio.engine.plan import (
    Cancelled, Item, RunContext, Stage, load_image, prompt_notices, run_pipeline, step_callback,
)
from asset_studio.errors import UserError

DEFAULT_WINDOW = 16  # the frames AnimateDiff's motion modules were trained on at once
MAX_ADAPTER_BYTES = 4 * 1024**3

_adapters: dict = {}  # (path, mtime, size) -> MotionAdapter; the last one only
_svd: dict = {}  # (path, device, dtype) -> StableVideoDiffusionPipeline; the last one only
_lock = threading.Lock()


# --- motion adapters -----------------------------------------------------------------------------


def resolve_adapter(ref: str) -> Path:
    """A motion adapter's folder or single .safetensors file, from a path or a cached repo id;
    pickles are refused."""
    from asset_studio.core.model_files import REPO_ID, hub_snapshots, is_pickle, pickle_refusal

    ref = str(ref or "").strip()
    if not ref:
        raise UserError("An AnimateDiff animation needs a motion adapter (--motion-adapter).")
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"The folder {path} is not a motion adapter: it has no config.json.")
        if not list(path.glob("*.safetensors")):
            raise UserError(f"The motion adapter folder {path} has no .safetensors weights (pickled weights are refused).")
        return path
    if path.is_file():
        if is_pickle(path):
            raise UserError(pickle_refusal(path))
        if path.suffix.lower() != ".safetensors":
            raise UserError(f"{path.name} is not a motion adapter; use a .safetensors file or a diffusers folder.")
        return path
    entry = _catalog_entry(ref, "motion_adapter")
    if entry is not None:
        return _downloaded(entry, "motion adapter")[0].parent
    if REPO_ID.match(ref) and not path.suffix:
        for snapshot in hub_snapshots(ref):
            if (snapshot / "config.json").is_file() and list(snapshot.glob("*.safetensors")):
                return snapshot
        raise UserError(f"The motion adapter {ref} is not in the local Hugging Face cache (with .safetensors weights).")
    raise UserError(f"The motion adapter {ref} was not found.")


def _catalog_entry(ref: str, kind: str):
    """The models/catalog.toml entry REF names (an id such as animatediff-v1-5-2), or None."""
    from asset_studio.core.models import catalog_entry_of_kind

    return catalog_entry_of_kind(ref, (kind,))


def _downloaded(entry, what: str) -> list[Path]:
    """A catalog entry's files in the Hugging Face cache; nothing is downloaded unless asked (--download)."""
    from asset_studio.core.models import cached_entry_files

    files = cached_entry_files(entry)
    if files is None:
        raise UserError(f"The {what} {entry.id} is not downloaded yet: run `asset-studio models download {entry.id}` "
                        f"(about {entry.size_hint}).")
    return files


def resolve_motion_lora(ref: str) -> Path:
    """A motion LoRA's .safetensors file, from a path or a downloaded catalog id (motion-lora-zoom-in …)."""
    path = Path(str(ref)).expanduser()
    if path.is_file():
        return path
    entry = _catalog_entry(str(ref), "motion_lora")
    if entry is not None:
        return _downloaded(entry, "motion LoRA")[0]
    raise UserError(f"The motion LoRA {ref} does not exist; give a .safetensors file or a catalog id "
                    "(`asset-studio models list` shows them).")


def with_motion_lora_files(loras) -> list:
    """LORAS with catalog ids swapped for their cached files (the job itself keeps the ids)."""
    import dataclasses

    return [dataclasses.replace(lora, path=str(resolve_motion_lora(lora.path)), name=lora.name or Path(lora.path).stem)
            for lora in loras]


def fetch_catalog_motion_models(a) -> None:
    """Download the catalog motion adapter and motion LoRAs animation A names that are not cached yet
    (only when the artist asked: `animate --download`)."""
    from asset_studio.core.models import cached_entry_files, download_entry

    wanted = [_catalog_entry(a.motion_adapter, "motion_adapter")]
    wanted += [_catalog_entry(lora.path, "motion_lora") for lora in a.motion_loras if not Path(lora.path).is_file()]
    for entry in wanted:
        if entry is not None and cached_entry_files(entry) is None:
            download_entry(entry)


def check_adapter(ref: str) -> dict:
    """The adapter's config, from its config.json or its header (no weights read)."""
    path = resolve_adapter(ref)
    if path.is_dir():
        from asset_studio.engine.loader import read_json

        return read_json(path / "config.json")
    from asset_studio.core.safetensors_header import read_header_file

    header = read_header_file(path, MAX_ADAPTER_BYTES)
    return adapter_config({k: tuple(v.shape) for k, v in header.tensors.items()}, path.name)


def adapter_config(shapes: dict[str, tuple], label: str) -> dict:
    """A MotionAdapter config from a single file's tensor names and shapes (AnimateDiff's own
    names, or diffusers'). The attention heads are not in the weights: every AnimateDiff release uses 8."""
    import re

    def motion(k):
        return re.match(r"down_blocks\.(\d+)\.motion_modules\.(\d+)\.", k)

    downs = {}
    for k in shapes:
        m = motion(k)
        if m:
            downs.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not downs:
        raise UserError(f"{label} is not a motion adapter (it has no motion modules).")
    channels = []
    for i in sorted(downs):
        proj = next((shapes[k] for k in shapes if re.match(rf"down_blocks\.{i}\.motion_modules\.0\.proj_in\.weight$", k)), None)
        if proj is None:
            raise UserError(f"{label} is not a motion adapter this version reads (no proj_in in block {i}).")
        channels.append(proj[0])
    blocks = {int(m.group(1)) for k in shapes if (m := re.match(r"down_blocks\.0\.motion_modules\.0\.(?:temporal_transformer\.)?transformer_blocks\.(\d+)\.", k))}
    pe = next((s for k, s in shapes.items() if k.endswith(("pos_encoder.pe", "pos_embed.pe"))), None)
    config = {
        "block_out_channels": channels,
        "motion_layers_per_block": len(downs[min(downs)]),
        "motion_transformer_layers_per_block": max(1, len(blocks)),
        "motion_mid_block_layers_per_block": 1,
        "use_motion_mid_block": any(k.startswith("mid_block.") for k in shapes),
        "motion_num_attention_heads": 8,
        "motion_norm_num_groups": 32,
        "motion_max_seq_length": int(pe[1]) if pe else 32,
    }
    if "conv_in.weight" in shapes:
        config["conv_in_channels"] = int(shapes["conv_in.weight"][1])
    return config


def load_adapter(ref: str, device, dtype):
    """The MotionAdapter of REF on DEVICE in DTYPE (the last one stays in memory)."""
    from diffusers import MotionAdapter

    from asset_studio.engine.loader import load_errors, quiet_loading

    path = resolve_adapter(ref)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(device), str(dtype))
    with _lock:
        if key in _adapters:
            return _adapters[key]
    with load_errors(f"motion adapter {path.name}"), quiet_loading():
        if path.is_dir():
            adapter = MotionAdapter.from_pretrained(str(path), use_safetensors=True)
        else:
            import safetensors.torch
            from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

            state = safetensors.torch.load_file(str(path))
            adapter = MotionAdapter(**adapter_config({k: tuple(v.shape) for k, v in state.items()}, path.name))
            state = {k.replace(".pos_embed.pe", ".pos_encoder.pe"): v for k, v in state.items()}
            state = convert_animatediff_checkpoint_to_diffusers(state)  # drops positional tables: they are fixed sinusoids
            missing, unexpected = adapter.load_state_dict(state, strict=False)
            if unexpected or [k for k in missing if not k.endswith(".pe")]:
                raise UserError(f"{path.name} does not fit the motion adapter its shapes describe "
                                f"({len(missing)} missing, {len(unexpected)} unexpected tensors).")
        adapter = adapter.to(device=device, dtype=dtype)
    with _lock:
        _adapters.clear()
        _adapters[key] = adapter
    return adapter


ANIMATED_FAMILIES = ("sd15", "sdxl")  # the families AnimateDiff has motion adapters for


def adapter_family(config: dict) -> str:
    from asset_studio.core.models import motion_adapter_family

    return motion_adapter_family(config)


def check_family(model_family: str, config: dict, ref: str, model_name: str) -> None:
    """One sentence when the model cannot animate, or the adapter was made for another family."""
    from asset_studio.core import families

    if model_family not in ANIMATED_FAMILIES:
        raise UserError(f"AnimateDiff motion adapters exist for SD 1.5 and SDXL models; {model_name} is "
                        f"{families.label(model_family)}.")
    made_for = adapter_family(config)
    if made_for != model_family:
        raise UserError(f"The motion adapter {Path(ref).name} is made for {families.label(made_for)} models and "
                        f"{model_name} is {families.label(model_family)}: use an {families.label(model_family)} "
                        "motion adapter.")


def motion_pipeline(loaded, adapter_ref: str, device, dtype):
    """An AnimateDiffPipeline (AnimateDiffSDXLPipeline for SDXL) over LOADED's text encoders, VAE
    and a UNetMotionModel made from its UNet and the adapter; kept beside the model
    (loaded.derived) for the next animation."""
    from diffusers import AnimateDiffPipeline, AnimateDiffSDXLPipeline

    from asset_studio.engine.loader import quiet_loading
    from asset_studio.engine.plan import _has_adapters

    check_family(loaded.family, check_adapter(adapter_ref), adapter_ref, "this model")
    key = ("animatediff", str(resolve_adapter(adapter_ref).resolve()))
    pipe = loaded.derived.get(key)
    if pipe is None:
        adapter = load_adapter(adapter_ref, device, dtype)
        check_pairing(adapter.config, loaded.pipe.unet.config, adapter_ref)
        base = loaded.pipe
        if _has_adapters(base):
            # The UNet's layers are peft-wrapped by an image job's LoRAs: the motion UNet copies
            # plain layers, so the LoRAs come off first (the image plan loads them again when needed).
            from asset_studio.engine.lora import forget_all

            forget_all(base)
        cls = AnimateDiffSDXLPipeline if loaded.family == "sdxl" else AnimateDiffPipeline
        with quiet_loading():
            pipe = cls.from_pipe(base, motion_adapter=adapter)
            pipe.unet.to(device=device, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        for old in [k for k in loaded.derived if isinstance(k, tuple) and k[0] == "animatediff"]:
            del loaded.derived[old]  # one motion UNet per model: each is a full UNet copy
        loaded.derived[key] = pipe
    for name in ("vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2"):  # the job's VAE may have been swapped in since
        if hasattr(pipe, name) and getattr(pipe, name) is not getattr(loaded.pipe, name, None):
            setattr(pipe, name, getattr(loaded.pipe, name))
    return pipe


def check_pairing(adapter_config_: dict, unet_config: dict, ref: str) -> None:
    blocks = list(adapter_config_.get("block_out_channels", []))
    if blocks != list(unet_config.get("block_out_channels", [])):
        raise UserError(f"The motion adapter {Path(ref).name} was made for a UNet with channels {blocks}, "
                        f"not {list(unet_config.get('block_out_channels', []))}: use a motion adapter made for this model.")


# --- loops ---------------------------------------------------------------------------------------------


def loop_padding(frames: int, window: int) -> int:
    """Frames borrowed from the other end on each side for a loop: a quarter window, so the seam
    sits well inside the temporal attention's view; never more than half the animation."""
    return max(1, min(window // 4, frames // 2))


def motion_modules(unet):
    for block in [*unet.down_blocks, unet.mid_block, *unet.up_blocks]:
        yield from getattr(block, "motion_modules", None) or []


@contextlib.contextmanager
def circular_motion(unet, pad: int):
    """Make the motion modules see time as a circle. Only the motion modules mix frames (all
    other layers work on each frame alone), so wrapping their input is enough: each gets its
    frames with the last PAD frames put before the first and the first PAD after the last, and
    returns the middle. Frame 0 then attends to the animation's end as its past and the last
    frame to the start as its future, in every layer at every step: the seam is denoised like
    any other pair of neighbours (the circular context windows of AnimateDiff-Evolved, for a
    whole animation), not mirrored as a ping-pong would be. With FreeNoise the wrapped sequence
    is what its windows slide over."""
    import torch

    patched = []
    for module in motion_modules(unet):
        original = module.forward

        def forward(hidden_states, encoder_hidden_states=None, timestep=None, class_labels=None, num_frames=1,
                    cross_attention_kwargs=None, _original=original):
            bf, c, h, w = hidden_states.shape
            b = bf // num_frames
            x = hidden_states.reshape(b, num_frames, c, h, w)
            x = torch.cat([x[:, -pad:], x, x[:, :pad]], dim=1)
            n = num_frames + 2 * pad
            out = _original(x.reshape(b * n, c, h, w), encoder_hidden_states, timestep, class_labels, n,
                            cross_attention_kwargs)
            return out.reshape(b, n, c, h, w)[:, pad:pad + num_frames].reshape(bf, c, h, w)

        module.forward = forward
        patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward  # the class's own forward again


def temporal_plan(frames: int, loop: bool, context: int, max_seq: int) -> tuple[int, int, bool]:
    """(window, loop padding, FreeNoise on?) for FRAMES frames, or one sentence when the adapter
    cannot make them: its positional table (max_seq) bounds what one window can see."""
    window = context or min(DEFAULT_WINDOW, max_seq)
    if window > max_seq:
        raise UserError(f"The motion adapter sees at most {max_seq} frames at once; a context of {window} "
                        f"is not possible: lower it (0 = the adapter's {min(DEFAULT_WINDOW, max_seq)}).")
    pad = loop_padding(frames, window) if loop else 0
    seen = frames + 2 * pad
    return window, pad, seen > window


# --- the AnimateDiff passes ----------------------------------------------------------------------------


class AnimateDiff(Stage):
    """Text to animation: AnimateDiff over the loaded SD 1.5 model; with ControlNets, one control
    picture per frame (a pose sequence); with a video, video to video in overlapping batches."""

    name = "AnimateDiff"

    def __init__(self, download: bool = False):
        self.download = download  # --download: catalog motion models not in the cache yet are fetched first

    def check(self, job):
        from asset_studio.core.animation import control_frame_files

        if self.download:
            fetch_catalog_motion_models(job.animation)
        from asset_studio.engine.controlnet import check_controlnet_ref

        from asset_studio.engine.loader import detect_family, resolve_model

        a = job.animation
        family = detect_family(resolve_model(job.model.checkpoint))  # a header read: refused before any load
        config = check_adapter(a.motion_adapter)
        check_family(family, config, a.motion_adapter, Path(job.model.checkpoint).name)
        if family == "sdxl":
            missing = [name for name, used in (("ControlNet (pose sequences)", bool(job.controls)),
                                               ("video to video", a.video is not None)) if used]
            if missing:
                raise UserError(f"SDXL animations cannot use {' or '.join(missing)} yet (diffusers has no SDXL "
                                "AnimateDiff pipeline for it): use an SD 1.5 model and motion adapter.")
        if job.references:
            from asset_studio.engine.plan import References

            References().check(job)
        frames = min(a.video.batch_frames, a.frames) if a.video is not None else a.frames
        temporal_plan(frames, a.loop, a.context, int(config.get("motion_max_seq_length", 32)))
        with_motion_lora_files(a.motion_loras)
        for i, unit in enumerate(job.controls, start=1):
            check_controlnet_ref(unit.model)
            if a.video is None:
                control_frame_files(unit.image, a.frames)
            elif unit.image:
                raise UserError(f"ControlNet {i} of a video to video job draws its control images from the video; "
                                "give no control image.")
            else:
                from asset_studio.engine.annotators import REFERENCE_TYPES, REFERENCE_TYPES_NO_MODEL, find_weights

                if unit.type not in REFERENCE_TYPES:
                    raise UserError(f"Control images of type {unit.type} cannot be drawn from video frames; use one "
                                    f"of {', '.join(REFERENCE_TYPES)}.")
                if unit.type not in REFERENCE_TYPES_NO_MODEL:
                    find_weights(unit.type)  # a missing annotator is said now, not after the model loads
        if a.video is not None:
            from asset_studio.engine.video_io import read_frames

            if not Path(a.video.path).exists():
                raise UserError(f"The video {a.video.path} does not exist.")
            if a.loop:
                raise UserError("Video to video follows the video's own motion: leave out --loop.")
            read_frames(a.video.path, 1)  # a file that is no video is said now, not after the model loads

    def prepare(self, ctx):
        from asset_studio.engine.lora import apply_loras

        job, a = ctx.job, ctx.job.animation
        ctx.notices += prompt_notices(ctx.loaded.pipe, job)
        motion = motion_pipeline(ctx.loaded, a.motion_adapter, ctx.device, ctx.dtype)
        apply_loras(motion, list(job.model.loras) + with_motion_lora_files(a.motion_loras), ctx.loaded.family)
        if job.references:  # IP-Adapter on the motion UNet: every frame sees the same reference embeddings
            from asset_studio.engine import ip_adapter

            info = ip_adapter.load_ip_adapter(motion, job.model.ip_adapter, job.model.image_encoder, len(job.references))
            ip_adapter.set_reference_scales(motion, job.references)
            ctx.inputs["ip_adapter_image_embeds"] = ip_adapter.reference_embeds(
                motion, job.references, info, do_cfg=job.sampling.cfg_scale > 1)
            ctx.undo.append(lambda: ip_adapter.unload_ip_adapter(motion))
        self.pipe = self._wrapped(ctx, motion)  # after the IP-Adapter: the wrapped pipeline shares its modules
        s = job.sampling
        ctx.inputs.update(width=s.width, height=s.height)
        if a.video is not None:
            self._prepare_video(ctx)
        elif job.controls:
            from asset_studio.core.animation import control_frame_files

            units = [[load_image(str(p), "control frame", s.width, s.height) for p in control_frame_files(u.image, a.frames)]
                     for u in job.controls]
            ctx.inputs["conditioning_frames"] = units[0] if len(units) == 1 else units
        frames = min(a.video.batch_frames, a.frames) if a.video is not None else a.frames
        window, pad, free_noise = temporal_plan(frames, a.loop, a.context, int(motion.unet.config.motion_max_seq_length))
        if free_noise:
            if not hasattr(self.pipe, "enable_free_noise"):
                seen = f"{frames} frames" + (f" (with the {2 * pad} a loop borrows)" if pad else "")
                raise UserError(f"{seen} are more than the motion adapter's window of {window}, and this pipeline "
                                f"has no context windows: make at most {window - 2 * pad} frames"
                                f"{' with a loop' if pad else ''}.")
            self.pipe.enable_free_noise(context_length=window, context_stride=max(1, window // 4))
            ctx.undo.append(self.pipe.disable_free_noise)
        if pad:
            patch = circular_motion(motion.unet, pad)
            patch.__enter__()
            ctx.undo.append(lambda: patch.__exit__(None, None, None))

    def _wrapped(self, ctx, motion):
        """The pipeline the pass calls: plain, with ControlNets, or video to video."""
        import diffusers

        job = ctx.job
        if not job.controls and job.animation.video is None:
            return motion
        from asset_studio.engine.loader import quiet_loading

        kwargs = {}
        if job.controls:
            from asset_studio.engine.controlnet import check_family, load_controlnet

            models = []
            for unit in job.controls:
                model = load_controlnet(unit.model, ctx.device, ctx.dtype)
                check_family(model, ctx.loaded.pipe.unet, unit.model)
                models.append(model)
            kwargs["controlnet"] = models[0] if len(models) == 1 else diffusers.MultiControlNetModel(models)
            one = len(job.controls) == 1
            pick = (lambda v: v[0]) if one else (lambda v: v)
            ctx.inputs.update(controlnet_conditioning_scale=pick([float(u.scale) for u in job.controls]),
                              control_guidance_start=pick([float(u.start) for u in job.controls]),
                              control_guidance_end=pick([float(u.end) for u in job.controls]))
        if job.animation.video is not None:
            cls = (diffusers.AnimateDiffVideoToVideoControlNetPipeline if job.controls
                   else diffusers.AnimateDiffVideoToVideoPipeline)
        else:
            cls = diffusers.AnimateDiffControlNetPipeline
        with quiet_loading():
            pipe = cls.from_pipe(motion, **kwargs)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _prepare_video(self, ctx):
        from PIL import Image

        from asset_studio.engine.video_io import read_frames

        job, v = ctx.job, ctx.job.animation.video
        s = job.sampling
        frames = read_frames(v.path, job.animation.frames)
        if len(frames) < job.animation.frames:
            raise UserError(f"The video {Path(v.path).name} has {len(frames)} frames, fewer than the "
                            f"{job.animation.frames} asked for.")
        self.source = [f.resize((s.width, s.height), Image.Resampling.LANCZOS) for f in frames]
        self.controls = []
        if job.controls:
            from asset_studio.engine.annotators import control_from_reference

            self.controls = [[control_from_reference(f, u.type) for f in self.source] for u in job.controls]

    def run(self, ctx, item):
        a = ctx.job.animation
        if a.video is not None:
            return self._run_video(ctx, item)
        latents = _call(ctx, self.pipe, item, dict(ctx.inputs, num_frames=a.frames), ctx.job.sampling.steps)
        with _vae_in_float32(self.pipe, ctx.loaded.family == "sdxl") as latents_dtype:
            latents = latents.to(latents_dtype)
            for i in range(a.frames):
                if ctx.should_cancel is not None and ctx.should_cancel():
                    raise Cancelled()
                ctx.on_frame(i, _decode_one(self.pipe, latents, i))
        return item

    def _run_video(self, ctx, item):
        """Batches of at most batch_frames frames, neighbours sharing `overlap` frames that are
        cross-faded where they join; each frame is handed on once no later batch changes it."""
        import numpy as np
        from PIL import Image

        from asset_studio.core.animation import BatchJoiner
        from asset_studio.engine.plan import _img2img_steps

        v = ctx.job.animation.video
        total = len(self.source)
        joiner = BatchJoiner(total, min(v.batch_frames, total), v.overlap)
        steps = _img2img_steps(ctx.job.sampling.steps, v.denoise)
        for start, end in joiner.spans:
            inputs = dict(ctx.inputs, video=self.source[start:end], strength=float(v.denoise))
            if self.controls:
                per_unit = [c[start:end] for c in self.controls]
                inputs["conditioning_frames"] = per_unit[0] if len(per_unit) == 1 else per_unit
            latents = _call(ctx, self.pipe, item, inputs, steps)
            decoded = [np.asarray(_decode_one(self.pipe, latents, j), np.float32) for j in range(end - start)]
            for index, pixels in joiner.add(np.stack(decoded)):
                ctx.on_frame(index, Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8)))
        return item


def _call(ctx: RunContext, pipe, item: Item, inputs: dict, steps: int):
    """One AnimateDiff call for one animation, returning its latents (b, c, frames, h, w)."""
    import torch

    result = run_pipeline(ctx, pipe, item, inputs, steps, "latent", preview_latents=lambda lat: lat[:, :, 0],
                          generator=torch.Generator("cpu").manual_seed(int(item.seed)))
    return result.frames


@contextlib.contextmanager
def _vae_in_float32(pipe, sdxl: bool):
    """SDXL's VAE overflows in float16 (its config says force_upcast): decode in float32, as
    diffusers' own SDXL pipelines do, and give the VAE back in float16 after. Yields the dtype
    the latents must have."""
    import torch

    vae = pipe.vae
    if not sdxl or vae.dtype != torch.float16 or not getattr(vae.config, "force_upcast", False):
        yield vae.dtype
        return
    vae.to(dtype=torch.float32)
    try:
        yield torch.float32
    finally:
        vae.to(dtype=torch.float16)


def _decode_one(pipe, latents, frame: int):
    """Frame FRAME of (b, c, f, h, w) latents as a PIL image: one VAE decode, one frame in memory."""
    import inspect

    import torch

    one = latents[:, :, frame:frame + 1]
    with torch.no_grad():  # the SDXL pipeline's decode_latents has no chunk size: one frame is one chunk anyway
        chunked = "decode_chunk_size" in inspect.signature(pipe.decode_latents).parameters
        video = pipe.decode_latents(one, decode_chunk_size=1) if chunked else pipe.decode_latents(one)
    return pipe.video_processor.postprocess_video(video=video, output_type="pil")[0][0]


# --- image to video --------------------------------------------------------------------------------------


def resolve_svd(ref: str, download: bool = False) -> Path:
    from asset_studio.engine.loader import resolve_model

    source = resolve_model(ref, download=download)
    if source.kind == "file":
        raise UserError("Stable Video Diffusion loads from a diffusers folder or a cached repo id, not a single file.")
    from asset_studio.engine.loader import read_json

    if read_json(source.path / "model_index.json").get("_class_name") != "StableVideoDiffusionPipeline":
        raise UserError(f"{source.name} is not a Stable Video Diffusion model (its model_index.json names another pipeline).")
    return source.path


def load_svd(ref: str, device, dtype, download: bool = False):
    from diffusers import StableVideoDiffusionPipeline

    from asset_studio.engine.loader import load_errors, quiet_loading

    folder = resolve_svd(ref, download)
    key = (str(folder.resolve()), str(device), str(dtype))
    with _lock:
        if key in _svd:
            return _svd[key]
    with load_errors(f"Stable Video Diffusion model {folder.name}"), quiet_loading():
        pipe = StableVideoDiffusionPipeline.from_pretrained(str(folder), torch_dtype=dtype, use_safetensors=True)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    with _lock:
        _svd.clear()
        _svd[key] = pipe
    return pipe


class ImageToVideo(Stage):
    """Stable Video Diffusion: frames that move out of one picture (an idle loop from a sprite).
    The model's own scheduler runs (SVD is trained for its EDM Euler schedule); the temporal VAE
    decodes decode_chunk frames at a time, and each chunk's frames are handed on at once."""

    name = "image to video"

    def __init__(self, download: bool = False):
        self.download = download

    def check(self, job):
        a = job.animation
        if a.loop:
            raise UserError("Stable Video Diffusion cannot make loops; use AnimateDiff (--motion-adapter) with --loop.")
        if job.controls or job.references or job.model.loras:
            raise UserError("Stable Video Diffusion takes no ControlNets, references or LoRAs.")
        resolve_svd(job.model.checkpoint, self.download)
        load_image(job.init.image, "start image", job.sampling.width, job.sampling.height)

    def prepare(self, ctx):
        self.pipe = load_svd(ctx.job.model.checkpoint, ctx.device, ctx.dtype, ctx.download)
        s = ctx.job.sampling
        self.image = load_image(ctx.job.init.image, "start image", s.width, s.height)

    def run(self, ctx, item):
        import torch

        from asset_studio.core.job import ImageToVideo as Settings

        job, a = ctx.job, ctx.job.animation
        v = a.svd or Settings()
        result = self.pipe(
            image=self.image, height=job.sampling.height, width=job.sampling.width, num_frames=a.frames,
            num_inference_steps=job.sampling.steps, min_guidance_scale=float(v.min_cfg),
            max_guidance_scale=float(job.sampling.cfg_scale), fps=max(1, round(a.fps)),
            motion_bucket_id=int(v.motion_bucket), noise_aug_strength=float(v.noise_aug),
            decode_chunk_size=int(v.decode_chunk), output_type="latent",
            generator=torch.Generator("cpu").manual_seed(int(item.seed)),
            callback_on_step_end=step_callback(ctx, item.index, lambda lat: lat[:, 0]),
            callback_on_step_end_tensor_inputs=["latents"],
        )
        latents = result.frames  # (b, frames, c, h, w)
        chunk = int(v.decode_chunk)
        for start in range(0, a.frames, chunk):
            if ctx.should_cancel is not None and ctx.should_cancel():
                raise Cancelled()
            end = min(a.frames, start + chunk)
            with torch.no_grad():
                frames = self.pipe.decode_latents(latents[:, start:end], end - start, end - start)
            for offset, image in enumerate(self.pipe.video_processor.postprocess_video(video=frames, output_type="pil")[0]):
                ctx.on_frame(start + offset, image)
        return item


def animation_stages(job: GenerationJob, download: bool = False) -> list[Stage]:
    """The stages of an animation job (plan() calls this): what animations cannot do yet is refused by name."""
    from asset_studio.core.job import check_animation
    from asset_studio.engine.plan import LoadModel

    check_animation(job)  # also for a job that skipped check_limits: its settings exist and agree
    a = job.animation
    unsupported = [name for name, used in (
        ("reference images (IP-Adapter)", bool(job.references) and a.method == "svd"),
        ("seamless tiling", job.tiling != "off"),
        ("the hires fix", job.passes.hires is not None), ("a refiner", job.passes.refiner is not None),
        ("a start image", job.init is not None and a.method == "animatediff"),
    ) if used]
    if unsupported:
        raise UserError(f"Animations cannot use {', '.join(unsupported)} yet.")
    if a.method == "svd":
        return [ImageToVideo(download)]
    return [LoadModel(download), AnimateDiff(download)]
