"""prepare(): what the artist asked for (an AssetRequest) → the GenerationJob that runs. The ONE place.

The CLI's flags and the Create tab both build an AssetRequest and call prepare(), so every rule is
decided here once: the order of precedence (lowest first: defaults, the style pack, the template,
then what the artist set), the negative prompt (the artist's terms are added to the style's, never
replace them), model paths (absolute, so a PNG re-runs from any folder), the size of SDXL models,
the template's ControlNet recommendation, the layout's aspect, and where control images are saved.

prepare(..., preview=True) is the same composition without side effects (no file is written,
nothing is resolved on disk): the live prompt preview calls it.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
from dataclasses import dataclass, field, fields as dc_fields, replace
from pathlib import Path

from asset_studio.core import controls, families
from asset_studio.core.compose import (
    clean_text, compose_negative, compose_prompt, field_values, lora_refs, resolve_model, size_for, style_ip_adapter,
    style_references, style_seed,
)
from asset_studio.core.job import (
    MAX_PROMPT_CHARS, MAX_SEED, Animation, ControlUnit, Finishing, GenerationJob, HiresFix, InitImage, LoraRef, ModelRef,
    Passes, Prompt, Reference, Refiner, Sampling, Source, TiledUpscale, Transparency, check_limits, checked,
)
from asset_studio.core.job import DetailPass  # the detailer's passes
from asset_studio.core.lora_tags import extract_lora_tags, find_lora_by_name
from asset_studio.core.samplers import canonical_name
from asset_studio.core.stylepack import StylePack, find_style
from asset_studio.core.templates import Template, find_template
from asset_studio.errors import UserError

CONTROLS_DIR = ".controls"  # beside the outputs, out of the gallery's and the sheet's way
ASPECT_TOLERANCE = 0.03


@dataclass
class ControlRequest:
    """A ControlNet that follows the request's layout."""

    model: str
    type: str | None = None  # None: the template's recommendation when a layout can be drawn so, else lineart
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0


@dataclass
class Overrides:
    """What the artist set by hand; None = not set (the style, template or model decides)."""

    negative: str | None = None  # added to the style's and template's negative terms
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    seed: int | None = None
    subseed: int | None = None  # A1111's variation seed (random when only a strength is given)
    subseed_strength: float | None = None
    count: int | None = None
    batch: int | None = None  # images per pipeline call (throughput mode)
    init_image: str | None = None
    denoise: float | None = None
    vae: str | None = None
    clip_skip: int | None = None
    model_config: str | None = None
    tiling: str | None = None
    hires: HiresFix | None = None  # the hires fix after-pass
    refiner: Refiner | None = None  # the refiner hand-off
    detail: list[DetailPass] | None = None  # detailer passes (drawn regions or a detector)
    tiled_upscale: TiledUpscale | None = None  # the tiled img2img upscale (Ultimate SD Upscale)
    finishing: dict = field(default_factory=dict)  # Finishing fields; crisp_text=True draws the layout's text
    no_finishing: bool = False  # keep only the raw image, whatever the style asks for


@dataclass
class AssetRequest:
    subject: str  # the asset ("health potion"); with no style or template, the whole prompt
    style: str | StylePack | None = None  # pack id, folder, or a loaded pack
    template: str | Template | None = None  # template id, .toml path, or a loaded template
    fields: dict[str, str] = field(default_factory=dict)
    model: str | None = None  # None = the style's recommended model
    extra_prompt: str = ""  # the artist's own words after the composed prompt
    overrides: Overrides = field(default_factory=Overrides)
    layout: object = None  # a layout file (str / Path) or a core.layout.Layout the editor holds
    controls: list[ControlRequest] = field(default_factory=list)
    control_options: dict = field(default_factory=dict)  # render options (stroke width…) of the layout's controls
    loras: list[LoraRef] = field(default_factory=list)  # LoRAs added to the style's
    lora_scale: float | None = None  # multiplies the style's LoRA weights (the Create tab's style strength)
    pose: object = None  # an OpenPose JSON file or a core.pose.Pose: what "pose" ControlNets follow
    pose_name: str = ""  # the pose's name in a pose set (recorded in the job)
    view: str = ""  # the pose's view words ("side view"): the template's {view} field, else added to the prompt
    references: list[Reference] = field(default_factory=list)  # pictures that steer (IP-Adapter)
    ip_adapter: str | None = None
    image_encoder: str | None = None
    # The style pack's own references come first and the artist's are added after them; False leaves
    # the style's out, so the artist's replace them (--no-style-references, the Create tab's switch).
    style_references: bool = True
    animation: Animation | None = None  # an animation instead of images (output "animation", or "video")
    output: str = "image"
    pose_frames: str = ""  # an animation's pose set (name or folder): one OpenPose control picture per frame
    transparent: bool = False  # RGBA from the model itself (LayerDiffuse) instead of a cut-out
    layerdiffuse: str | None = None  # its weights: catalog id, folder or patch file; None = the catalog's for the family


def prepare(request: AssetRequest, out_dir: str | Path | None = None, *, preview: bool = False,
            download: bool = False) -> GenerationJob:
    """The job REQUEST describes. Raises UserError with the one sentence to show."""
    o = request.overrides
    pack = _style(request.style)
    tpl = _template(request.template)
    layout = _layout(request.layout, preview)
    # <lora:NAME:WEIGHT> typed in the subject or the artist's words (the A1111 / Fooocus habit).
    subject_text, tags = extract_lora_tags(str(request.subject or ""))
    extra_text, more = extract_lora_tags(str(request.extra_prompt or ""))
    tags += more
    request = replace(request, subject=subject_text, extra_prompt=extra_text)

    # Prompt: the template wraps the subject, the style wraps that; the artist's words come last.
    if pack is None and tpl is None:
        if request.fields:
            raise UserError("Template fields need a template: choose one (--template) or leave the fields out.")
        subject = _plain_prompt(request.subject)
        text, negative_terms, values = subject, [], {}
    else:
        subject = clean_text(request.subject, "The subject")
        if not subject:
            raise UserError("The subject is empty; describe the asset, e.g. \"health potion\".")
        given = dict(request.fields)
        declared = {*(pack.fields if pack else {}), *(tpl.fields if tpl else {})}
        if request.view and "view" in declared:
            given.setdefault("view", request.view)
        values = field_values(given, pack, tpl)
        text = compose_prompt(pack, tpl, subject, values)
        negative_terms = [compose_negative(pack, tpl, {**values, "subject": subject})]
    extra = " ".join(str(request.extra_prompt or "").split())
    if request.view and request.view.lower() not in text.lower():
        extra = ", ".join(x for x in (request.view, extra) if x)
    if extra:
        text = f"{text}, {extra}" if text else extra
    negative = _merge_terms([*negative_terms, *(str(o.negative or "").split(","))])

    sampling = Sampling()
    model_ref = ModelRef(checkpoint="")
    if pack is not None:
        d = pack.defaults
        sampling.steps = d.steps if d.steps is not None else sampling.steps
        sampling.cfg_scale = d.cfg_scale if d.cfg_scale is not None else sampling.cfg_scale
        sampling.sampler = d.sampler if d.sampler is not None else sampling.sampler
        model_ref.clip_skip = d.clip_skip if d.clip_skip is not None else model_ref.clip_skip
        model_ref.loras = lora_refs(pack, request.lora_scale, preview=preview)
    model_ref.loras += [LoraRef(path=_path_ref(x.path), weight=x.weight, name=x.name or Path(x.path).stem)
                        for x in request.loras]
    for name, weight in tags:
        path = name if preview else str(find_lora_by_name(name, lora_folders(pack)))
        model_ref.loras.append(LoraRef(path=path, weight=weight, name=Path(name).stem))

    # The model: the artist's, else the first of the style's recommendations on this machine.
    model = request.model or None
    if model is None and not preview:
        model = resolve_model(pack)
    model_ref.checkpoint = _path_ref(model) if model else ""
    model_ref.vae = _path_ref(o.vae) if o.vae else None
    model_ref.config = _path_ref(o.model_config) if o.model_config else None
    if o.clip_skip is not None:
        model_ref.clip_skip = o.clip_skip

    # Size: the style sets the pixel area, the template the aspect, an SDXL model its own default.
    if pack is not None or tpl is not None:
        sampling.width, sampling.height = size_for(pack, tpl)
    elif not preview and model_ref.checkpoint:
        # An SDXL model makes its best images at 1024²; SD 1.x and 2.x at 512² (as the CLI always did).
        sampling.width = sampling.height = 1024 if model_family(model_ref.checkpoint) == "sdxl" else 512
    if o.width is not None:
        sampling.width = o.width
    if o.height is not None:
        sampling.height = o.height
    for name in ("steps", "cfg_scale", "sampler", "count", "batch"):
        if getattr(o, name) is not None:
            setattr(sampling, name, getattr(o, name))
    if not preview:  # "euler_a" or "dpmpp_2m_karras" is recorded as readers expect it: "Euler a"
        sampling.sampler = canonical_name(sampling.sampler)
    if o.seed is not None:
        sampling.seed = o.seed
    elif pack is not None:
        sampling.seed = style_seed(pack, subject)
    else:
        sampling.seed = random.randrange(2**32)
    if o.subseed is not None or o.subseed_strength is not None:
        if o.subseed_strength is None:
            raise UserError("A variation seed needs a variation strength between 0 and 1 (e.g. 0.15).")
        sampling.subseed = o.subseed if o.subseed is not None else random.randrange(2**32)
        sampling.subseed_strength = float(o.subseed_strength)
    _check_seed_room(sampling)

    job = GenerationJob(model=model_ref, prompt=Prompt(text=text, negative=negative), sampling=sampling)
    if o.init_image:
        job.init = InitImage(image=_path_ref(o.init_image), denoise=o.denoise if o.denoise is not None else 0.75)
    elif o.denoise is not None and not preview:
        raise UserError("A denoise strength needs a start image (img2img): add one, or leave denoise out.")
    job.tiling = o.tiling if o.tiling is not None else (tpl.tiling if tpl is not None else "off")
    job.passes = Passes(hires=o.hires, refiner=None if o.refiner is None else
                        Refiner(model=_path_ref(o.refiner.model), switch_at=o.refiner.switch_at))
    if o.hires is not None and not o.hires.upscaler.startswith(("latent", "lanczos", "nearest")):
        job.passes.hires.upscaler = _path_ref(o.hires.upscaler)
    job.passes.detail = [_detail_pass(d) for d in o.detail or []]
    if o.tiled_upscale is not None:
        t = job.passes.tiled_upscale = replace(o.tiled_upscale)
        if t.upscaler not in ("lanczos", "nearest"):
            t.upscaler = _path_ref(t.upscaler)
        t.controlnet = _path_ref(t.controlnet) if t.controlnet else ""
    job.finishing = _finishing(pack, tpl, o, layout, out_dir, preview)
    job.source = Source(style=pack.id if pack else "", template=tpl.id if tpl else "",
                        subject=subject if (pack or tpl) else "",
                        fields={k: v for k, v in values.items() if k != "subject"}, pose=request.pose_name)
    job.references = [Reference(image=_path_ref(r.image), scale=r.scale, mode=r.mode) for r in request.references]
    job.model.ip_adapter = _path_ref(request.ip_adapter) if request.ip_adapter else None
    job.model.image_encoder = _path_ref(request.image_encoder) if request.image_encoder else None
    if pack is not None:
        _add_style_references(job, pack, request)
    if request.animation is not None:
        job.output, job.animation = request.output, _animation(request.animation)
    if request.transparent:
        job.transparency = Transparency(weights=_path_ref(request.layerdiffuse) if request.layerdiffuse else "")
    elif request.layerdiffuse:
        raise UserError("LayerDiffuse weights (--layerdiffuse) go with --transparent.")
    if request.pose_frames:
        job.controls = _pose_frames(request, job, out_dir, preview)
    elif request.animation is not None and request.animation.video is not None:
        # video to video: the engine draws each unit's control images from the video's frames
        job.controls = [ControlUnit(model=_path_ref(c.model), image="", type=c.type or "lineart", scale=float(c.scale),
                                    start=float(c.start), end=float(c.end)) for c in request.controls]
    else:
        job.controls = _controls(request, layout, tpl, job, out_dir, preview)
    if not preview:
        check_limits(job)
    return job


def lora_folders(pack: StylePack | None) -> list[Path]:
    """Where <lora:NAME> looks, first to last: the style pack's loras/, the models folders' loras/, then
    the LoRA folders of the AUTOMATIC1111 / ComfyUI / InvokeAI installs the artist added."""
    from asset_studio.core.compose import model_dirs

    from asset_studio.core.model_folders import folders_of_kind, registered_roots

    folders = [Path(pack.folder) / "loras"] if pack is not None and pack.folder is not None else []
    return folders + [d / "loras" for d in model_dirs()] + folders_of_kind(registered_roots(), "lora")


def model_family(ref: str) -> str | None:
    """The family of a model reference from its files (header or config only); None when unknown here."""
    from asset_studio.core.model_files import REPO_ID, hub_snapshots
    from asset_studio.core.safetensors_header import read_header_file

    path = Path(ref).expanduser()
    try:
        if path.is_dir():
            return families.family_of_pipeline_folder(path)
        if path.is_file() and path.suffix.lower() == ".safetensors":
            shapes = {k: list(v.shape) for k, v in read_header_file(path).tensors.items()}
            return families.family_of_checkpoint_keys(shapes)
    except UserError:
        return None  # the backend's check says what is wrong with the file
    if REPO_ID.match(str(ref)):
        snapshots = hub_snapshots(str(ref))
        return families.family_of_pipeline_folder(snapshots[0]) if snapshots else None
    return None


def layout_size(layout_width: int, layout_height: int, width: int, height: int) -> tuple[int, int]:
    """An image size with the layout's aspect at about the pixel count of WIDTH x HEIGHT (multiples
    of 8, the shorter side at least 64): what 'Image size from layout' sets."""
    area, ratio = width * height, layout_width / layout_height
    w, h = math.sqrt(area * ratio), math.sqrt(area / ratio)
    grow = max(1.0, 64 / min(w, h))
    return max(8, round(w * grow / 8) * 8), max(8, round(h * grow / 8) * 8)


# --- the pieces ------------------------------------------------------------------------------------


def _style(style) -> StylePack | None:
    return style if isinstance(style, StylePack) or style is None else find_style(style)


def _template(template) -> Template | None:
    return template if isinstance(template, Template) or template is None else find_template(template)


def _layout(layout, preview: bool):
    if layout is None or layout == "":
        return None
    if isinstance(layout, (str, Path)):
        if preview:
            return str(layout)  # read only when the job is really made
        from asset_studio.core.layout import load_layout

        if not Path(layout).is_file():
            raise UserError(f"The layout file {layout} does not exist.")
        loaded = load_layout(layout)
        loaded.source_path = str(Path(layout).expanduser().resolve())
        return loaded
    return layout


def _plain_prompt(text) -> str:
    if not isinstance(text, str):
        raise UserError("The prompt must be text.")
    if len(text) > MAX_PROMPT_CHARS:
        raise UserError(f"The prompt is longer than {MAX_PROMPT_CHARS} characters.")
    return " ".join(text.split())


def _merge_terms(parts: list[str]) -> str:
    """Comma-separated terms, each once (style, template and artist often share some)."""
    seen: dict[str, str] = {}
    for part in parts:
        for term in str(part).split(","):
            term = " ".join(term.split())
            if term and term.lower() not in seen:
                seen[term.lower()] = term
    return ", ".join(seen.values())


def _path_ref(ref: str) -> str:
    """Local paths become absolute, so the embedded job re-runs from any folder; repo ids stay."""
    path = Path(str(ref)).expanduser()
    return str(path.resolve()) if ref and path.exists() else str(ref)


def _detail_pass(d: DetailPass) -> DetailPass:
    """A detailer pass with its model files as absolute paths (a copy: the request stays as it was)."""
    d = copy.deepcopy(d)
    d.detector = _path_ref(d.detector) if d.detector else ""
    d.inpaint_model = _path_ref(d.inpaint_model) if d.inpaint_model else ""
    return d


def _check_seed_room(sampling: Sampling) -> None:
    if not 0 <= sampling.seed <= MAX_SEED:
        raise UserError(f"The seed {sampling.seed} is out of range (0 to 2^64-1).")
    if sampling.seed + max(1, sampling.count) - 1 > MAX_SEED:
        raise UserError(f"The seed {sampling.seed} leaves no room for {sampling.count} images "
                        "(image i uses seed + i; the last would pass 2^64-1).")


FINISHING_FIELDS = {f.name for f in dc_fields(Finishing)}


def _finishing(pack, tpl, o: Overrides, layout, out_dir, preview: bool) -> Finishing:
    if o.no_finishing:
        if o.finishing:
            raise UserError("Keeping only the raw image (--no-postprocess) cannot be combined with other "
                            "post-processing settings.")
        return Finishing()
    data = {**(pack.postprocess.to_dict() if pack else {}), **(tpl.postprocess.to_dict() if tpl else {})}
    wanted = dict(o.finishing)
    crisp = wanted.pop("crisp_text", None)
    data.update(wanted)
    unknown = sorted(set(data) - FINISHING_FIELDS)
    if unknown:
        raise UserError(f"Unknown post-processing setting(s): {', '.join(map(str, unknown))}.")
    if crisp:
        if layout is None:
            raise UserError("Crisp text needs a layout: the text is drawn from the layout (--layout).")
        data["crisp_text"] = "" if preview else _layout_file(layout, out_dir)
    finishing = checked(Finishing, data, "finishing.")
    return finishing


def _controls(request: AssetRequest, layout, tpl, job: GenerationJob, out_dir, preview: bool) -> list[ControlUnit]:
    """The ControlNet units: each follows the layout (drawn as line art, scribble…) or the pose
    (drawn as ControlNet's OpenPose models saw skeletons in training); their images are saved in
    OUT/.controls."""
    pose = _pose(request.pose, preview)
    kinds = [_control_type(c, tpl, pose is not None and layout is None) for c in request.controls]
    if any(k == "pose" for k in kinds) and pose is None:
        raise UserError("A pose ControlNet needs a pose to follow (--pose or --pose-set).")
    if any(k != "pose" for k in kinds) and layout is None:
        raise UserError("A ControlNet needs a layout to follow: the control image is drawn from it (--layout).")
    if layout is not None and all(k == "pose" for k in kinds) and not job.finishing.crisp_text and not preview:
        raise UserError("The layout is only followed through a ControlNet: choose one (--controlnet), "
                        "or use the layout for crisp text only (--crisp-text), or leave it out.")
    if pose is not None and "pose" not in kinds and not preview:
        raise UserError("A pose is only followed through an OpenPose ControlNet: choose one (--controlnet).")
    if preview:
        return [ControlUnit(model=c.model, image="", type=k) for c, k in zip(request.controls, kinds)]
    if not request.controls:
        return []
    from asset_studio.core.control_image import render_control
    from asset_studio.core.library import save_control_image

    w, h = job.sampling.width, job.sampling.height
    if layout is not None and any(k != "pose" for k in kinds):
        _check_aspect(layout, w, h)
    folder = Path(out_dir or "output") / CONTROLS_DIR
    units, rendered = [], {}
    for c, kind in zip(request.controls, kinds):
        if kind not in rendered:
            if kind == "pose":
                from asset_studio.core.pose import scaled
                from asset_studio.core.pose_render import render_pose

                image = render_pose(scaled(pose, w, h))
            elif kind in controls.LAYOUT_TYPES:
                image = render_control(layout, kind, size=(w, h), **request.control_options)
            else:
                raise UserError(f"A layout cannot be drawn as a {kind} control image; use one of "
                                f"{', '.join(controls.LAYOUT_TYPES)} (or pose with a pose).")
            rendered[kind] = save_control_image(image, folder, kind)
        units.append(ControlUnit(model=_path_ref(c.model), image=str(rendered[kind]), type=kind,
                                 scale=float(c.scale), start=float(c.start), end=float(c.end)))
    return units


def _add_style_references(job: GenerationJob, pack: StylePack, request: AssetRequest) -> None:
    """The style's character references before the artist's, and the IP-Adapter the style names when
    the artist chose none (its encoder only with its own adapter: another adapter may need another)."""
    if request.style_references:
        job.references[:0] = style_references(pack)
    if job.references and not request.ip_adapter:
        adapter, encoder = style_ip_adapter(pack)
        if adapter:
            job.model.ip_adapter = adapter
            job.model.image_encoder = job.model.image_encoder or encoder


def _animation(a: Animation) -> Animation:
    """The request's animation with its files as absolute paths (the job re-runs from anywhere)."""
    out = copy.deepcopy(a)
    if out.motion_adapter:
        out.motion_adapter = _path_ref(out.motion_adapter)
    out.motion_loras = [LoraRef(path=_path_ref(x.path), weight=x.weight, name=x.name or Path(x.path).stem)
                        for x in out.motion_loras]
    if out.video is not None:
        out.video.path = _path_ref(out.video.path)
    return out


def _pose_frames(request: AssetRequest, job: GenerationJob, out_dir, preview: bool) -> list[ControlUnit]:
    """An animation that walks as a pose set is drawn: every OpenPose ControlNet follows one
    skeleton per frame (the set repeated as a cycle), drawn into OUT/.controls/<set>-WxH-N/."""
    if request.animation is None:
        raise UserError("A pose sequence drives an animation's frames; for one image per pose use --pose-set of generate.")
    kinds = [c.type or "pose" for c in request.controls]
    if not kinds:
        raise UserError("A pose sequence is followed through an OpenPose ControlNet: choose one (--controlnet).")
    if any(k != "pose" for k in kinds):
        raise UserError("An animation's pose sequence is followed by OpenPose ControlNets only (--control pose).")
    folder = ""
    if not preview:
        from asset_studio.core.animation import pose_control_frames
        from asset_studio.core.pose_sets import pose_name

        w, h, n = job.sampling.width, job.sampling.height, request.animation.frames
        name = f"{pose_name(Path(str(request.pose_frames)).name)}-{w}x{h}-{n}"
        folder = str(pose_control_frames(str(request.pose_frames), n, w, h, Path(out_dir or "output") / CONTROLS_DIR / name))
    return [ControlUnit(model=_path_ref(c.model) if not preview else c.model, image=folder, type="pose",
                        scale=float(c.scale), start=float(c.start), end=float(c.end)) for c in request.controls]


def _pose(pose, preview: bool):
    if pose is None or pose == "":
        return None
    if isinstance(pose, (str, Path)):
        if preview:
            return str(pose)
        from asset_studio.core.pose import load_pose

        return load_pose(pose)
    return pose


def _control_type(c: ControlRequest, tpl, pose_only: bool = False) -> str:
    if c.type:
        kind = controls.canonical(c.type)
        if kind not in controls.CONTROL_TYPES:
            raise UserError(f"Unknown control type {c.type!r}; expected one of {', '.join(controls.CONTROL_TYPES)}.")
        return kind
    if pose_only:  # a pose and no layout: the ControlNet follows the pose
        return "pose"
    return controls.layout_type_for(tpl.controlnet if tpl is not None else None)


def _check_aspect(layout, width: int, height: int) -> None:
    ratio = layout.width / layout.height
    if abs(ratio - width / height) > ASPECT_TOLERANCE * ratio:
        w, h = layout_size(layout.width, layout.height, width, height)
        raise UserError(f"The layout is {layout.width}x{layout.height} but the image is {width}x{height}; "
                        f"use the size {w}x{h} (the layout's shape) so the text is not stretched.")


def _layout_file(layout, out_dir) -> str:
    """A file holding LAYOUT: its own file when it came from one, else a copy beside the control images."""
    source = getattr(layout, "source_path", None)
    if source:
        return source
    text = layout.to_json()
    folder = Path(out_dir or "output") / CONTROLS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"layout-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}.json"
    if not path.is_file():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return str(path.resolve())
