"""The fully resolved, JSON-serialisable description of one generation: a small typed tree.

A GenerationJob is what core/request.prepare() produces and a backend runs. It is embedded in
every PNG, so an image re-runs exactly, and it arrives from strangers inside PNGs: `from_dict`
checks every name, type and closed vocabulary against the dataclasses below (one checker, driven
by their annotations), and `check_limits` bounds every number, before anything runs. Jobs written
by older versions (schema 1, a flat record) are migrated on read.
"""

from __future__ import annotations

import copy
import json
import math
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Literal

from asset_studio.core.controls import ControlType
from asset_studio.errors import UserError

JOB_SCHEMA_VERSION = 2
MAX_SIDE = 4096
MAX_STEPS = 1000
MAX_IMAGES = 10000
MAX_BATCH = 64
MAX_SEED = 2**64 - 1
MAX_LORA_WEIGHT = 10.0  # A1111 lets a slider reach ±2; far beyond ±10 only makes NaNs
MAX_PROMPT_CHARS = 20000
MAX_REFERENCES = 4
MAX_FRAMES = 1024  # one animation; FreeNoise windows make long ones possible, memory is the real bound
MAX_FPS = 120.0
MAX_DETAIL_PASSES = 8
MAX_DETAIL_BOXES = 64

Tiling = Literal["off", "x", "y", "both"]
OutputKind = Literal["image", "animation", "video"]
BackgroundMethod = Literal["auto", "model", "key"]
ReferenceMode = Literal["full", "style"]
AnimationMethod = Literal["animatediff", "svd"]
PreviewFormat = Literal["gif", "apng", "webp"]
# GIF plays everywhere but has 256 colours and on/off transparency; APNG keeps full colour and
# true alpha and plays in every browser and most viewers. WebP (also true alpha) on request.
DEFAULT_PREVIEWS = ("gif", "apng")


@dataclass
class LoraRef:
    """One LoRA applied to the base model: a .safetensors file and its strength."""

    path: str
    weight: float = 1.0
    name: str = ""  # adapter name; derived from the file name when empty


@dataclass
class ModelRef:
    """The base model and what changes its weights or decoding."""

    checkpoint: str  # diffusers folder, single-file .safetensors or repo id
    vae: str | None = None
    config: str | None = None  # local diffusers config folder for single-file checkpoints
    clip_skip: int = 1  # 1 = last CLIP layer, as in AUTOMATIC1111
    loras: list[LoraRef] = field(default_factory=list)
    ip_adapter: str | None = None  # for the job's references: a .safetensors file or a catalog id
    image_encoder: str | None = None  # its CLIP image encoder; None = the one the adapter was trained with


@dataclass
class Prompt:
    text: str
    negative: str = ""


@dataclass
class Sampling:
    sampler: str = "Euler a"
    steps: int = 25
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    seed: int = 0
    count: int = 1
    seeds: list[int] = field(default_factory=list)  # each image's seed; empty = seed, seed+1, …
    batch: int = 1  # images per pipeline call (throughput); each is still saved as its batch decodes
    # A1111's "Variation seed": image i's starting noise is seed+i's slerped toward subseed+i's by
    # the strength (0 = the seed's picture, 1 = the subseed's). None/0: plain seeds, as before.
    subseed: int | None = None
    subseed_strength: float = 0.0


@dataclass
class InitImage:
    """img2img: start from this picture instead of noise. Denoise 0 keeps the picture as it is, at
    its own size, for the detailer to work on (an existing image detailed without regenerating it);
    the job's width x height is then the size the model works at, the size crops are redrawn at."""

    image: str
    denoise: float = 0.75

    @property
    def kept(self) -> bool:
        return self.denoise == 0


@dataclass
class ControlUnit:
    """One ControlNet: its model, the control image it follows, and how strongly."""

    model: str
    image: str  # path to the control image (already preprocessed)
    type: ControlType = "lineart"
    scale: float = 1.0
    start: float = 0.0  # fraction of the steps after which it starts to steer
    end: float = 1.0


@dataclass
class Reference:
    """An image prompt (IP-Adapter)."""

    image: str
    scale: float = 0.6
    mode: ReferenceMode = "full"  # style: only the style-carrying attention listens (InstantStyle)


HIRES_LATENT_UPSCALERS = ("latent", "latent-nearest")  # resize the latents, as A1111's "Latent" modes
HIRES_IMAGE_UPSCALERS = ("lanczos", "nearest")  # resize the decoded picture; else a path to an upscale model


@dataclass
class HiresFix:
    """Generate at the base size, enlarge, then img2img over the same loaded model (A1111's hires fix)."""

    scale: float = 2.0
    upscaler: str = "latent"  # latent, latent-nearest, lanczos, nearest, an upscale model file or catalog id
    denoise: float = 0.5
    steps: int = 0  # steps of the second pass actually run; 0 = as many as the base pass


@dataclass
class Refiner:
    """Hand the image to a second model for the end of the schedule (SDXL's refiner, A1111's
    "Refiner switch at"); with SD 1.x/2.x models the second model refines the decoded image."""

    model: str
    switch_at: float = 0.8  # fraction of the steps the base model runs


SeamsFix = Literal["none", "band", "half-tile"]
MAX_UPSCALED_SIDE = 16384  # the tiled upscale's output; each tile is still at the model's own size
MAX_UPSCALED_PIXELS = 128 * 1024 * 1024  # as engine/upscale: ~0.5 GB as RGBA in memory


@dataclass
class TiledUpscale:
    """Enlarge the finished picture, then redraw it tile by tile with img2img over the same loaded
    model (Ultimate SD Upscale): big backgrounds at any size, each tile at the model's own size with
    its neighbours as context, pasted with feathered edges; a seams pass redraws the joins."""

    scale: float = 2.0
    upscaler: str = "lanczos"  # lanczos, nearest, an upscale model file or catalog id
    tile: int = 512  # tile side in output pixels: the model's native size
    padding: int = 32  # context around each tile the model sees (output pixels)
    mask_blur: int = 8  # feather of each pasted tile's edge, laid into the padding
    denoise: float = 0.35  # 0: enlarge only
    steps: int = 0  # steps each tile actually runs; 0 = as the base pass
    seams: SeamsFix = "none"
    seams_width: int = 64  # band mode: width of the band redrawn along each join
    seams_denoise: float = 0.35
    controlnet: str = ""  # a ControlNet tile model (folder, .safetensors or catalog id); "" = none
    controlnet_scale: float = 1.0


@dataclass
class Box:
    """A rectangle in image pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int


@dataclass
class DetailPass:
    """One detailer pass (ADetailer's "inpaint only masked"): find regions, redraw each crop at the
    job's base size by inpainting over the loaded modules, paste it back through a blurred mask."""

    boxes: list[Box] = field(default_factory=list)  # drawn regions, in pixels of the image the pass sees
    detector: str = ""  # or a YOLO-format .onnx detector that finds them
    classes: list[str] = field(default_factory=list)  # the detector's classes to keep (names or numbers); empty = all
    confidence: float = 0.3  # the detector's lowest score kept
    max_regions: int = 0  # only the N largest regions; 0 = all
    dilate: int = 4  # grow the mask by this many pixels (negative: shrink it), ADetailer's "dilate erode"
    mask_blur: int = 4  # the pasted crop fades out over this radius
    denoise: float = 0.4
    padding: int = 32  # pixels of context around the mask that the crop takes in
    steps: int = 0  # steps actually run; 0 = the base pass's count x denoise
    prompt: str = ""  # empty = the job's; [PROMPT] stands for the job's prompt
    negative: str = ""  # empty = the job's
    inpaint_model: str = ""  # an inpainting model of the same family; empty = the base model's own modules


@dataclass
class Passes:
    """After-passes, in the order they run: refiner hand-off, hires fix, the detailer, then the tiled upscale."""

    refiner: Refiner | None = None
    hires: HiresFix | None = None
    detail: list[DetailPass] = field(default_factory=list)
    tiled_upscale: TiledUpscale | None = None


@dataclass
class ImageToVideo:
    """Stable Video Diffusion settings: the job's model is the SVD model, job.init.image the start picture."""

    motion_bucket: int = 127  # more = more motion (SVD's micro-conditioning, 0 to 255)
    noise_aug: float = 0.02  # noise added to the start picture: more = freer from it
    decode_chunk: int = 8  # frames the temporal VAE decodes at once (memory)
    min_cfg: float = 1.0  # guidance rises from min_cfg on the first frame to the job's CFG on the last


@dataclass
class VideoSource:
    """Video to video: the frames of this file (MP4, WebM, GIF or a folder of frames) are redrawn
    at DENOISE, each followed by the job's ControlNets through a control image drawn from it."""

    path: str
    denoise: float = 0.6
    batch_frames: int = 16  # frames generated together; memory grows with it
    overlap: int = 4  # frames shared by neighbouring batches, blended where they join
    # the animation's `frames` are the video's first frames that are redrawn


@dataclass
class Animation:
    """An animation instead of a picture: how many frames, how fast, and what moves them."""

    frames: int = 16
    fps: float = 8.0
    loop: bool = False  # the last frame leads into the first (circular temporal context)
    method: AnimationMethod = "animatediff"
    motion_adapter: str = ""  # AnimateDiff: a folder, a .safetensors file or a repo id
    motion_loras: list[LoraRef] = field(default_factory=list)  # camera moves and the like, on the motion modules
    context: int = 0  # frames the motion modules see at once; 0 = the adapter's window (16)
    svd: ImageToVideo | None = None  # method "svd"
    video: VideoSource | None = None  # video to video (AnimateDiff)
    previews: list[PreviewFormat] = field(default_factory=lambda: list(DEFAULT_PREVIEWS))  # written beside the folder


@dataclass
class Transparency:
    """LayerDiffuse: the UNet makes "transparent latents" and a second decoder turns them into RGBA,
    so the image comes out with real alpha (glass, hair, glow) instead of being cut out afterwards."""

    # A catalog id (layerdiffuse-sd15, layerdiffuse-sdxl, layerdiffuse-sdxl-conv), a folder holding the
    # published files, or the UNet patch's .safetensors file (its decoder beside it); "" = the
    # catalog's weights for the model's family.
    weights: str = ""


@dataclass
class Finishing:
    """What turns the raw image into the finished sprite (saved in sprites/ beside the raw one)."""

    remove_background: bool = False
    method: BackgroundMethod = "auto"
    bg_model: str = "u2netp"
    pixel_grid: int = 0  # logical pixels on the longer side; 0 = off
    palette_size: int = 0  # 0 = off
    trim: bool = False
    crisp_text: str = ""  # a layout file whose exact text is drawn over the image first

    @property
    def active(self) -> bool:
        return bool(self.remove_background or self.pixel_grid > 0 or self.palette_size > 0 or self.trim
                    or self.crisp_text)


@dataclass
class Source:
    """Where the prompt came from. Not needed to re-run; the gallery shows it."""

    style: str = ""
    template: str = ""
    subject: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    pose: str = ""  # the pose of a pose set this image was made for ("walk-3")
    frame: int | None = None  # the frame of an animation this picture is; its job makes the whole animation


@dataclass
class GenerationJob:
    model: ModelRef
    prompt: Prompt
    sampling: Sampling = field(default_factory=Sampling)
    init: InitImage | None = None
    controls: list[ControlUnit] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    passes: Passes = field(default_factory=Passes)
    tiling: Tiling = "off"
    output: OutputKind = "image"
    animation: Animation | None = None  # required when output is animation or video
    transparency: Transparency | None = None  # RGBA straight from the model (LayerDiffuse); None = RGB
    finishing: Finishing = field(default_factory=Finishing)
    source: Source = field(default_factory=Source)
    # Which backend and server made this image ("comfyui http://gpu-3:8188"); empty = this machine.
    # Not needed to re-run: the gallery and the queue show it. A new optional field of schema 2.
    made_by: str = ""
    schema: int = JOB_SCHEMA_VERSION

    def image_seeds(self) -> list[int]:
        """The seed of every image in the batch."""
        s = self.sampling
        return list(s.seeds) if s.seeds else [s.seed + i for i in range(s.count)]

    def for_seed(self, seed: int, index: int | None = None) -> "GenerationJob":
        """This job for one image alone: what its PNG carries, so that image re-runs by itself.
        INDEX (the image's place in the batch; else found from SEED) picks its subseed."""
        one = copy.deepcopy(self)
        if self.sampling.subseed is not None:
            if index is None:
                seeds = self.image_seeds()
                index = seeds.index(int(seed)) if int(seed) in seeds else 0
            one.sampling.subseed = self.sampling.subseed + int(index)
        one.sampling.seed, one.sampling.count, one.sampling.seeds, one.sampling.batch = int(seed), 1, [], 1
        return one

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "GenerationJob":
        """A job from plain data, every field checked: jobs also arrive inside PNGs from strangers."""
        if not isinstance(data, dict):
            raise UserError("The job is not a JSON object.")
        schema = data.get("schema", 1)
        if type(schema) is not int or not 1 <= schema <= JOB_SCHEMA_VERSION:
            raise UserError(f"The job has schema {schema!r:.20}; this version of Asset Studio reads schemas "
                            f"1 to {JOB_SCHEMA_VERSION} (a newer version wrote it?).")
        if schema == 1:
            data = migrate_v1(data)
        job = checked(cls, data, "")
        check_limits(job)
        return job

    @classmethod
    def from_json(cls, text: str) -> "GenerationJob":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise UserError("The job is not valid JSON.") from None
        return cls.from_dict(data)


# --- checking -----------------------------------------------------------------------------------


def _hints(cls) -> dict:
    return typing.get_type_hints(cls, globalns=globals())


def _describe(kind) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is str:
        return "text"
    if kind is int:
        return "a whole number"
    if kind is float:
        return "a finite number"
    if kind is bool:
        return "true or false"
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is list:
        return "a list"
    if origin is dict or kind is dict:
        return "a table"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if is_dataclass(kind):
        return "a table"
    return str(kind)


def _convert(value, kind, where: str):
    """VALUE as KIND (a type annotation), or a UserError naming WHERE."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
    elif origin is not None and type(None) in args:  # X | None
        inner = next(a for a in args if a is not type(None))
        if value is None:
            return None
        if not is_dataclass(inner) or isinstance(value, dict):  # else: "must be a table or null"
            try:
                return _convert(value, inner, where)
            except UserError:
                if is_dataclass(inner):
                    raise  # a field inside the table is wrong: that sentence names it
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind is bool:
        if type(value) is bool:
            return value
    elif kind is int:
        if type(value) is int:
            return value
    elif kind is float:
        if type(value) in (int, float) and math.isfinite(value):
            return float(value) if type(value) is int else value
    elif origin is list:
        if isinstance(value, list):
            return [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            return {_convert(k, args[0], where): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    elif kind is dict:
        if isinstance(value, dict):
            return value
    elif is_dataclass(kind):
        if isinstance(value, dict):
            return checked(kind, value, where + ".")
    else:  # pragma: no cover - a new annotation this checker does not know yet
        raise TypeError(f"no check for {kind!r}")
    raise UserError(f"The job's {where} must be {_describe(kind)}, not {value!r:.60}.")


def checked(cls, data: dict, where: str):
    """CLS(**DATA) after checking names, types and closed vocabularies against CLS's annotations
    (recursively), so a malformed job, or a part of one, is one clear sentence."""
    spec = {f.name: f for f in fields(cls) if f.init}
    hints = _hints(cls)
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise UserError(f"The job's {where.rstrip('.') or 'data'} has unknown field(s): {', '.join(map(str, unknown))}.")
    values = {}
    for name, f in spec.items():
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise UserError(f"The job's {where}{name} is missing.")
            continue
        values[name] = _convert(data[name], hints[name], f"{where}{name}")
    return cls(**values)


def check_limits(job: GenerationJob) -> None:
    """Every number in range, before anything runs: one sentence for the first that is not."""
    s = job.sampling
    for label, value in (("width", s.width), ("height", s.height)):
        if value <= 0 or value % 8 or value > MAX_SIDE:
            raise UserError(f"The {label} {value} is not allowed; sizes must be multiples of 8 between 8 and {MAX_SIDE}.")
    if not 1 <= s.steps <= MAX_STEPS:
        raise UserError(f"Steps must be between 1 and {MAX_STEPS}, not {s.steps}.")
    if not 0 <= s.cfg_scale <= 100:
        raise UserError(f"The CFG scale must be between 0 and 100, not {s.cfg_scale}.")
    if not 1 <= s.count <= MAX_IMAGES:
        raise UserError(f"The image count must be between 1 and {MAX_IMAGES}, not {s.count}.")
    if not 1 <= s.batch <= MAX_BATCH:
        raise UserError(f"Images per batch must be between 1 and {MAX_BATCH}, not {s.batch}.")
    if len(s.seeds) > MAX_IMAGES:
        raise UserError(f"The job lists {len(s.seeds)} seeds; at most {MAX_IMAGES} images run in one job.")
    for seed in [s.seed, *s.seeds]:
        if not 0 <= seed <= MAX_SEED:
            raise UserError(f"The seed {seed} is out of range (0 to 2^64-1).")
    if not s.seeds and s.seed + s.count - 1 > MAX_SEED:
        raise UserError(f"The seed {s.seed} leaves no room for {s.count} images (the last seed would pass 2^64-1).")
    if s.subseed is not None and not 0 <= s.subseed <= MAX_SEED - (len(s.seeds) or s.count) + 1:
        raise UserError(f"The variation seed {s.subseed} is out of range (0 to 2^64-1 for every image).")
    if not 0 <= s.subseed_strength <= 1:
        raise UserError(f"The variation strength must be between 0 and 1, not {s.subseed_strength:g}.")
    if s.subseed is None and s.subseed_strength:
        raise UserError("A variation strength needs a variation seed (subseed).")
    if not 1 <= job.model.clip_skip <= 12:
        raise UserError(f"Clip skip must be between 1 and 12, not {job.model.clip_skip}.")
    for lora in job.model.loras:
        if abs(lora.weight) > MAX_LORA_WEIGHT:
            raise UserError(f"The LoRA weight {lora.weight:g} of {lora.name or lora.path} is outside "
                            f"-{MAX_LORA_WEIGHT:g} to {MAX_LORA_WEIGHT:g}.")
    if job.init is not None and not 0 <= job.init.denoise <= 1:
        raise UserError(f"The denoise strength must be above 0 and at most 1, not {job.init.denoise:g}.")
    if job.init is not None and job.init.kept:
        check_kept_image(job)
    for i, unit in enumerate(job.controls):
        if not 0 <= unit.scale <= 5:
            raise UserError(f"ControlNet {i + 1}'s scale must be between 0 and 5, not {unit.scale:g}.")
        if not 0 <= unit.start < unit.end <= 1:
            raise UserError(f"ControlNet {i + 1} must start before it ends, both between 0 and 1 "
                            f"(start {unit.start:g}, end {unit.end:g}).")
    if len(job.references) > MAX_REFERENCES:
        raise UserError(f"A job takes at most {MAX_REFERENCES} reference images, not {len(job.references)}.")
    for ref in job.references:
        if not 0 <= ref.scale <= 2:
            raise UserError(f"A reference's strength must be between 0 and 2, not {ref.scale:g}.")
    if job.references and not job.model.ip_adapter:
        raise UserError("Reference images need an IP-Adapter model (--ip-adapter): it is what lets a picture steer.")
    hires = job.passes.hires
    if hires is not None:
        if not 1 < hires.scale <= 4:
            raise UserError(f"The hires fix scale must be above 1 and at most 4, not {hires.scale:g}.")
        if not 0 < hires.denoise <= 1:
            raise UserError(f"The hires fix denoise must be above 0 and at most 1, not {hires.denoise:g}.")
        if not 0 <= hires.steps <= MAX_STEPS:
            raise UserError(f"Hires steps must be between 0 (as many as the base pass) and {MAX_STEPS}, not {hires.steps}.")
        w, h = hires_size(job)
        if max(w, h) > MAX_SIDE:
            raise UserError(f"The hires fix would make {w}x{h}; the largest side is {MAX_SIDE}: lower the scale.")
        if not hires.upscaler.strip():
            raise UserError("The hires fix needs an upscaler: latent, latent-nearest, lanczos, nearest, "
                            "an upscale model's .safetensors file or a catalog upscaler.")
    refiner = job.passes.refiner
    if refiner is not None and not 0 < refiner.switch_at < 1:
        raise UserError(f"The refiner switch must be between 0 and 1 (the fraction of steps the base model runs), "
                        f"not {refiner.switch_at:g}.")
    check_detail(job)
    if job.passes.tiled_upscale is not None:
        check_tiled_upscale(job)
    check_animation(job)
    check_transparency(job)
    f = job.finishing
    if not 0 <= f.pixel_grid <= MAX_SIDE or not 0 <= f.palette_size <= 256:
        raise UserError("Finishing needs a pixel grid of 0 to 4096 and a palette of 0 to 256 colours.")
    if len(job.prompt.text) > MAX_PROMPT_CHARS or len(job.prompt.negative) > MAX_PROMPT_CHARS:
        raise UserError(f"The prompt is longer than {MAX_PROMPT_CHARS} characters.")
    if not job.prompt.text.strip() and not job.prompt.negative.strip() and not job.controls and job.init is None:
        raise UserError("The prompt is empty.")


def check_tiled_upscale(job: GenerationJob) -> None:
    """The tiled upscale's numbers in range, and a size Asset Studio can hold."""
    t = job.passes.tiled_upscale
    if not 1 < t.scale <= 8:
        raise UserError(f"The tiled upscale's scale must be above 1 and at most 8, not {t.scale:g}.")
    if not 64 <= t.tile <= 2048 or t.tile % 8:
        raise UserError(f"The tiled upscale's tile must be a multiple of 8 from 64 to 2048 pixels, not {t.tile}.")
    if not 0 <= t.padding <= t.tile // 2:
        raise UserError(f"The tiled upscale's padding must be between 0 and half the tile ({t.tile // 2}), "
                        f"not {t.padding}.")
    if not 0 <= 2 * t.mask_blur <= t.padding:
        raise UserError(f"The tiled upscale's mask blur must be between 0 and half the padding ({t.padding // 2}): "
                        f"the feather lies in the padding; not {t.mask_blur}.")
    if not 0 <= t.denoise <= 1:
        raise UserError(f"The tiled upscale's denoise must be between 0 (enlarge only) and 1, not {t.denoise:g}.")
    if not 0 <= t.steps <= MAX_STEPS:
        raise UserError(f"The tiled upscale's steps must be between 0 (as many as the base pass) and {MAX_STEPS}, "
                        f"not {t.steps}.")
    if t.seams == "band" and not 8 <= t.seams_width <= t.tile:
        raise UserError(f"The seams band must be 8 to {t.tile} pixels wide (the tile), not {t.seams_width}.")
    if t.seams != "none" and not 0 < t.seams_denoise <= 1:
        raise UserError(f"The seams pass's denoise must be above 0 and at most 1, not {t.seams_denoise:g}.")
    if not 0 <= t.controlnet_scale <= 2:
        raise UserError(f"The tile ControlNet's strength must be between 0 and 2, not {t.controlnet_scale:g}.")
    if not t.upscaler.strip():
        raise UserError("The tiled upscale needs an upscaler: lanczos, nearest, an upscale model's .safetensors "
                        "file or a catalog upscaler.")
    if t.upscaler in HIRES_LATENT_UPSCALERS:
        raise UserError("The tiled upscale enlarges the picture, not latents: use lanczos, nearest or an upscale model.")
    if job.tiling != "off":
        raise UserError("A seamless tile cannot take the tiled upscale (its tiles would break the wrap); "
                        "use the hires fix or `asset-studio upscale` instead.")
    w, h = upscaled_size(job)
    if max(w, h) > MAX_UPSCALED_SIDE or w * h > MAX_UPSCALED_PIXELS:
        raise UserError(f"The tiled upscale would make {w}x{h}; the largest is {MAX_UPSCALED_SIDE} pixels a side "
                        f"and {MAX_UPSCALED_PIXELS // 1024**2} megapixels: lower the scale.")


def upscaled_size(job: GenerationJob) -> tuple[int, int]:
    """The final size: after the hires fix, times the tiled upscale's scale (any whole number of pixels)."""
    w, h = hires_size(job) if job.passes.hires is not None else (job.sampling.width, job.sampling.height)
    t = job.passes.tiled_upscale
    if t is None:
        return w, h
    return max(1, round(w * t.scale)), max(1, round(h * t.scale))


def check_animation(job: GenerationJob) -> None:
    """The animation's numbers in range, and its parts consistent with the job's output."""
    a = job.animation
    if job.output == "image":
        if a is not None:
            raise UserError("The job describes an animation but its output is an image: set output to animation.")
        return
    if a is None:
        raise UserError(f"The job's output is {job.output} but it has no animation settings.")
    if not 1 <= a.frames <= MAX_FRAMES:
        raise UserError(f"An animation has 1 to {MAX_FRAMES} frames, not {a.frames}.")
    if not 0 < a.fps <= MAX_FPS:
        raise UserError(f"The animation speed must be above 0 and at most {MAX_FPS:g} fps, not {a.fps:g}.")
    if a.context and not 2 <= a.context <= MAX_FRAMES:
        raise UserError(f"The motion context must be 0 (the adapter's window) or 2 to {MAX_FRAMES} frames, not {a.context}.")
    for lora in a.motion_loras:
        if abs(lora.weight) > MAX_LORA_WEIGHT:
            raise UserError(f"The motion LoRA weight {lora.weight:g} of {lora.path} is outside "
                            f"-{MAX_LORA_WEIGHT:g} to {MAX_LORA_WEIGHT:g}.")
    if a.method == "animatediff":
        if not a.motion_adapter:
            raise UserError("An AnimateDiff animation needs a motion adapter (--motion-adapter).")
        if a.svd is not None:
            raise UserError("Stable Video Diffusion settings belong to method svd, not animatediff.")
    else:
        if job.init is None:
            raise UserError("Stable Video Diffusion animates a picture: give the start image (--image).")
        if a.motion_adapter or a.motion_loras or a.video is not None:
            raise UserError("Stable Video Diffusion takes no motion adapter, motion LoRAs or video.")
        v = a.svd or ImageToVideo()
        if not 0 <= v.motion_bucket <= 255:
            raise UserError(f"The motion amount must be between 0 and 255, not {v.motion_bucket}.")
        if not 0 <= v.noise_aug <= 1:
            raise UserError(f"The noise augmentation must be between 0 and 1, not {v.noise_aug:g}.")
        if not 1 <= v.decode_chunk <= MAX_FRAMES:
            raise UserError(f"The decode chunk must be 1 to {MAX_FRAMES} frames, not {v.decode_chunk}.")
        if not 0 <= v.min_cfg <= 100:
            raise UserError(f"The first frame's CFG must be between 0 and 100, not {v.min_cfg:g}.")
    v = a.video
    if v is not None:
        if not 0 < v.denoise <= 1:
            raise UserError(f"The denoise strength must be above 0 and at most 1, not {v.denoise:g}.")
        if not 2 <= v.batch_frames <= MAX_FRAMES:
            raise UserError(f"A batch holds 2 to {MAX_FRAMES} frames, not {v.batch_frames}.")
        if not 0 <= v.overlap < v.batch_frames:
            raise UserError(f"The overlap must be at least 0 and fewer than the batch's {v.batch_frames} frames, "
                            f"not {v.overlap}.")
    elif a.loop and a.frames < 3:
        raise UserError(f"A loop needs at least 3 frames, not {a.frames}.")


def check_kept_image(job: GenerationJob) -> None:
    """A start image kept as it is (denoise 0) is there to be detailed, and only that."""
    others = [name for name, used in (("a refiner", job.passes.refiner is not None),
                                      ("a hires fix", job.passes.hires is not None), ("ControlNets", bool(job.controls)),
                                      ("seamless tiling", job.tiling != "off"), ("an animation", job.output != "image"))
              if used]
    if not job.passes.detail or others:
        raise UserError("Denoise 0 keeps the start image as it is, for the detailer to redraw regions of it: "
                        + (f"it takes no {' or '.join(others)}." if others else "add a detailer pass, or raise the denoise."))


def check_detail(job: GenerationJob, size: tuple[int, int] | None = None) -> None:
    """Each detailer pass: one source of regions, boxes inside the image it sees (SIZE; for a kept
    start image the engine passes the file's size once it has read it), numbers in range."""
    passes = job.passes.detail
    if len(passes) > MAX_DETAIL_PASSES:
        raise UserError(f"A job takes at most {MAX_DETAIL_PASSES} detailer passes, not {len(passes)}.")
    kept = job.init is not None and job.init.kept
    # A kept start image has its own size, known once the file is read: only the signs are checked here.
    width, height = size or ((2**31, 2**31) if kept else hires_size(job))
    for n, d in enumerate(passes, start=1):
        where = f"Detailer pass {n}" if len(passes) > 1 else "The detailer"
        if bool(d.boxes) == bool(d.detector.strip()):
            raise UserError(f"{where} needs either drawn regions or a detector model, not "
                            f"{'both' if d.boxes else 'neither'}.")
        if len(d.boxes) > MAX_DETAIL_BOXES:
            raise UserError(f"{where} has {len(d.boxes)} regions; at most {MAX_DETAIL_BOXES} are allowed.")
        for b in d.boxes:
            if b.width <= 0 or b.height <= 0 or b.x < 0 or b.y < 0 or b.x + b.width > width or b.y + b.height > height:
                raise UserError(f"{where}'s region {b.x},{b.y},{b.width},{b.height} (x,y,w,h) is not inside the "
                                + (f"{width}x{height} image." if width < 2**31 else "image."))
        if d.classes and not d.detector:
            raise UserError(f"{where} names classes ({', '.join(d.classes)[:60]}) but has no detector model.")
        checks = ((0 < d.denoise <= 1, f"denoise must be above 0 and at most 1, not {d.denoise:g}"),
                  (0 <= d.confidence <= 1, f"confidence must be between 0 and 1, not {d.confidence:g}"),
                  (0 <= d.max_regions <= MAX_DETAIL_BOXES,
                   f"largest-regions count must be 0 (all) to {MAX_DETAIL_BOXES}, not {d.max_regions}"),
                  (-MAX_SIDE // 4 <= d.dilate <= MAX_SIDE // 4,
                   f"dilate/erode must be between {-MAX_SIDE // 4} and {MAX_SIDE // 4} pixels, not {d.dilate}"),
                  (0 <= d.mask_blur <= 256, f"mask blur must be between 0 and 256 pixels, not {d.mask_blur}"),
                  (0 <= d.padding <= MAX_SIDE, f"padding must be between 0 and {MAX_SIDE} pixels, not {d.padding}"),
                  (0 <= d.steps <= MAX_STEPS, f"steps must be between 0 (as the base pass) and {MAX_STEPS}, not {d.steps}"),
                  (len(d.classes) <= 64 and all(0 < len(c) <= 64 for c in d.classes),
                   "classes must be at most 64 names of 1 to 64 characters"),
                  (len(d.prompt) <= MAX_PROMPT_CHARS and len(d.negative) <= MAX_PROMPT_CHARS,
                   f"prompt is longer than {MAX_PROMPT_CHARS} characters"))
        for ok, text in checks:
            if not ok:
                raise UserError(f"{where}'s {text}.")


# SD 1.5's LayerDiffuse patch and IP-Adapter both replace the UNet's attention processors; the engine
# refuses the pair once it knows the weights' layout, the Create tab as soon as the switch is on.
TRANSPARENT_WITH_REFERENCES = ("SD 1.5's transparent generation (LayerDiffuse) cannot be combined with reference "
                               "images yet; leave one of them out.")


def check_transparency(job: GenerationJob) -> None:
    """What LayerDiffuse's transparent images cannot be combined with (yet), in one sentence."""
    if job.transparency is None:
        return
    other = [name for name, used in (
        ("animations", job.output != "image"), ("a start image (img2img)", job.init is not None),
        ("the hires fix", job.passes.hires is not None), ("the refiner", job.passes.refiner is not None),
        ("seamless tiling", job.tiling != "off"), ("the detailer", bool(job.passes.detail)),
        ("the tiled upscale", job.passes.tiled_upscale is not None),
    ) if used]
    if other:
        raise UserError(f"Transparent generation (LayerDiffuse) cannot be combined with {other[0]} yet; "
                        "leave one of them out.")


def hires_size(job: GenerationJob) -> tuple[int, int]:
    """The size after the hires fix: the base size times its scale, in multiples of 8."""
    scale = job.passes.hires.scale if job.passes.hires is not None else 1.0
    return (max(8, round(job.sampling.width * scale / 8) * 8), max(8, round(job.sampling.height * scale / 8) * 8))


# --- schema 1 (a flat record, Asset Studio 0.1) ----------------------------------------------------

_V1_SAMPLING = {"sampler": "sampler", "steps": "steps", "cfg_scale": "cfg_scale", "width": "width",
                "height": "height", "seed": "seed", "batch_count": "count", "seeds": "seeds"}
_V1_MODEL = {"model": "checkpoint", "vae": "vae", "model_config": "config", "clip_skip": "clip_skip", "loras": "loras"}
_V1_SOURCE = {"style_id": "style", "template": "template", "subject": "subject", "fields": "fields"}
_V1_CONTROL = {"model": "model", "image": "image", "control_type": "type", "scale": "scale",
               "guidance_start": "start", "guidance_end": "end"}
_V1_FINISHING = {"remove_background": "remove_background", "method": "method", "model": "bg_model",
                 "pixel_grid": "pixel_grid", "palette_size": "palette_size", "trim": "trim", "crisp_text": "crisp_text"}
_V1_OTHER = {"prompt", "negative_prompt", "init_image", "denoise", "controlnets", "postprocess", "schema"}


def _renamed(data, names: dict, where: str) -> dict:
    if not isinstance(data, dict):
        raise UserError(f"The job's {where} must be a table.")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise UserError(f"The job's {where} has unknown field(s): {', '.join(map(str, unknown))}.")
    return {names[k]: v for k, v in data.items()}


def migrate_v1(data: dict) -> dict:
    """A schema-1 job (the flat record of Asset Studio 0.1) as schema-2 data; unknown names are refused."""
    known = set(_V1_SAMPLING) | set(_V1_MODEL) | set(_V1_SOURCE) | _V1_OTHER
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"The job has unknown field(s): {', '.join(map(str, unknown))}.")
    controls = data.get("controlnets", [])
    if not isinstance(controls, list):
        raise UserError("The job's controlnets must be a list of objects.")
    out = {
        "model": {new: data[old] for old, new in _V1_MODEL.items() if old in data},
        "prompt": {"text": data.get("prompt"), "negative": data.get("negative_prompt", "")},
        "sampling": {new: data[old] for old, new in _V1_SAMPLING.items() if old in data},
        "controls": [_renamed(c, _V1_CONTROL, f"controlnets[{i}]") for i, c in enumerate(controls)],
        "finishing": _renamed(data.get("postprocess", {}), _V1_FINISHING, "postprocess"),
        "source": {new: data[old] for old, new in _V1_SOURCE.items() if old in data},
        "schema": JOB_SCHEMA_VERSION,
    }
    if "model" not in data:
        raise UserError("The job's model is missing.")
    if data.get("init_image") is not None:
        out["init"] = {"image": data["init_image"], **({"denoise": data["denoise"]} if "denoise" in data else {})}
    elif "denoise" in data:
        _convert(data["denoise"], float, "denoise")  # unused without a start image, but still data from a stranger
    return out
