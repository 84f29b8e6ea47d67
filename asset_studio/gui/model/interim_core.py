"""The request API of notes/CORE_API.md (issue #9), adapted onto today's compose() until the
restructured core (core/request.py, service.py) lands on main.

Only core_link imports this module; at the merge it is deleted and core_link imports the real
modules. It follows the contract's names and meanings so the GUI code above it does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from asset_studio.core.job import GenerationJob, LoraRef
from asset_studio.errors import UserError

CONTROL_DIR = ".controls"  # hidden inside the output folder: the gallery lists results, not inputs


@dataclass
class ControlRequest:
    model: str
    type: str | None = None  # None: the template's hint, else lineart
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0


@dataclass
class Overrides:
    """What the artist set; None = not set (the style, template or model decides)."""

    negative: str | None = None  # appended to the style's negative
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    seed: int | None = None
    count: int | None = None
    init_image: str | None = None
    denoise: float | None = None
    vae: str | None = None
    clip_skip: int | None = None
    model_config: str | None = None
    tiling: str | None = None
    finishing: dict | None = None
    no_finishing: bool = False


@dataclass
class AssetRequest:
    subject: str
    style: object = None
    template: object = None
    fields: dict = field(default_factory=dict)
    model: str | None = None
    extra_prompt: str = ""
    overrides: Overrides = field(default_factory=Overrides)
    layout: object = None
    controls: list = field(default_factory=list)
    control_options: dict = field(default_factory=dict)
    loras: list = field(default_factory=list)
    lora_scale: float | None = None


_JOB_NAMES = {"width": "width", "height": "height", "steps": "steps", "cfg_scale": "cfg_scale",
              "sampler": "sampler", "seed": "seed", "count": "batch_count", "denoise": "denoise",
              "vae": "vae", "clip_skip": "clip_skip", "model_config": "model_config"}


def layout_size(layout, width: int, height: int) -> tuple[int, int]:
    """The layout's aspect at about the pixel count of width x height (sides multiples of 8, at least 64)."""
    area = width * height
    ratio = layout.width / layout.height
    w, h = (area * ratio) ** 0.5, (area / ratio) ** 0.5
    grow = max(1.0, 64 / min(w, h))
    return round(w * grow / 8) * 8, round(h * grow / 8) * 8


def _absolute(ref: str) -> str:
    path = Path(ref).expanduser()
    return str(path.resolve()) if ref and path.exists() else ref


def prepare(request: AssetRequest, out_dir: Path | None = None, *, preview: bool = False,
            download: bool = False) -> GenerationJob:
    from asset_studio.core import compose as c

    o = request.overrides
    mapped = {_JOB_NAMES[k]: getattr(o, k) for k in _JOB_NAMES if getattr(o, k) is not None}
    if o.init_image:
        if not preview and not Path(o.init_image).expanduser().is_file():
            raise UserError(f"The start image {o.init_image} does not exist.")
        mapped["init_image"] = o.init_image if preview else _absolute(o.init_image)
    else:
        mapped.pop("denoise", None)
    model = request.model or ("-" if preview else None)
    job = c.compose(c.AssetRequest(subject=request.subject, style=request.style, template=request.template,
                                   fields=dict(request.fields), model=model, overrides=mapped))
    extra = " ".join(request.extra_prompt.split())
    if extra:
        job.prompt = f"{job.prompt}, {extra}"
    if o.negative:
        job.negative_prompt = f"{job.negative_prompt}, {o.negative}" if job.negative_prompt else o.negative
    if request.lora_scale is not None:
        for lora in job.loras:
            lora.weight = round(lora.weight * request.lora_scale, 3)
    job.loras += [LoraRef(l.path, l.weight, l.name) for l in request.loras]
    if o.no_finishing:
        job.postprocess = {}
    elif o.finishing:
        job.postprocess = {**job.postprocess, **o.finishing}
    if preview:
        return job
    job.model = _absolute(job.model)
    if request.controls:
        _add_controls(job, request, Path(out_dir or "output"))
    return job


def _add_controls(job: GenerationJob, request: AssetRequest, out_dir: Path) -> None:
    from asset_studio.core.control_image import render_control
    from asset_studio.core.job import ControlUnit
    from asset_studio.core.layout import Layout, load_layout
    from asset_studio.core.library import save_control_image
    from asset_studio.core.templates import Template, find_template

    if request.layout is None:
        raise UserError("A ControlNet needs a layout: the control image is drawn from it.")
    layout = request.layout if isinstance(request.layout, Layout) else load_layout(request.layout)
    ratio = layout.width / layout.height
    if abs(ratio - job.width / job.height) > 0.03 * ratio:
        raise UserError(f"The layout is {layout.width}x{layout.height} but the image is {job.width}x{job.height}; "
                        "press 'Image size from layout' so the text is not stretched.")
    tpl = request.template
    if isinstance(tpl, str) and tpl:
        tpl = find_template(tpl)
    hint = tpl.controlnet if isinstance(tpl, Template) and tpl.controlnet != "none" else "lineart"
    for unit in request.controls:
        kind = unit.type or hint
        image = render_control(layout, kind, size=(job.width, job.height), **request.control_options)
        path = save_control_image(image, out_dir / CONTROL_DIR, kind)
        job.controlnets.append(ControlUnit(model=unit.model, image=str(path), control_type=kind,
                                           scale=round(unit.scale, 3), guidance_start=round(unit.start, 3),
                                           guidance_end=round(unit.end, 3)))


def export_sheet(inputs: list[Path], out_png: Path, fmt: str, trim: bool = True, padding: int = 2,
                 extrude: int = 0, pot: bool = False, max_size: int = 4096, fps: float = 10.0) -> list[Path]:
    """Pack the images into out_png (+ pages) and write the format's data file; returns every file written.
    (service.export_sheet, shared with `asset-studio sheet`, replaces this at the merge.)"""
    from asset_studio.core.exporters import ExportOptions, export
    from asset_studio.core.sheet import SheetOptions, load_sprites, pack_sheet, save_pages

    if not inputs:
        raise UserError("Select at least one image to put on the sheet.")
    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        out_png = out_png.with_suffix(".png")
    opts = SheetOptions(trim=trim, padding=padding, extrude=extrude, pot=pot, max_size=max_size)
    sheet = pack_sheet(load_sprites([Path(p) for p in inputs], trim=opts.trim), opts)
    if fmt == "aseprite" and len(sheet.pages) > 1:
        raise UserError("The Aseprite format holds a single image: raise the maximum size so every frame fits.")
    pngs = save_pages(sheet, out_png)
    return pngs + export(sheet, pngs, fmt, out_png, ExportOptions(fps=fps))


# --- core/backend.py and service.py of the contract ------------------------------------------


@dataclass
class Queued:
    job_id: int


@dataclass
class Loading:
    what: str


@dataclass
class Progress:
    step: int
    total: int
    image_index: int
    image_count: int
    preview: object = None


@dataclass
class ImageReady:
    image: object
    job: GenerationJob
    index: int
    seed: int


@dataclass
class Finished:
    pass


@dataclass
class Failed:
    message: str


@dataclass
class Cancelled:
    pass


@dataclass
class Saved:
    raw: Path
    sprite: Path | None
    image: object
    index: int
    seed: int


@dataclass
class RunResult:
    saved: list
    cancelled: bool


class LocalBackend:
    """Today's Engine behind the backend protocol: run() yields its events. The engine's callbacks
    run in a helper thread and reach the generator through a queue."""

    name = "local"

    def __init__(self, device: str | None = None):
        from asset_studio.engine.generate import Engine

        self.engine = Engine(device=None if device in (None, "", "auto") else device)

    def capabilities(self) -> set[str]:
        return {"txt2img", "img2img", "controlnet", "lora"}

    def check(self, job) -> None:
        from asset_studio.engine.generate import validate_job

        validate_job(job)

    def run(self, job, should_cancel):
        import queue
        import threading

        events: queue.Queue = queue.Queue()
        count = len(job.image_seeds())
        done = object()

        def work():
            try:
                self.engine.run(job, should_cancel=should_cancel,
                                on_step=lambda i: events.put(Progress(i.step, i.total, i.image_index, count, i.preview)),
                                on_image=lambda g: events.put(ImageReady(g.image, g.job, g.index, g.seed)))
                events.put(Cancelled() if self.engine.cancelled else Finished())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                events.put(exc)
            events.put(done)

        yield Loading("Loading the model…")
        thread = threading.Thread(target=work, name="asset-studio-engine", daemon=True)
        thread.start()
        while (event := events.get()) is not done:
            if isinstance(event, BaseException):
                thread.join()
                raise event
            yield event
        thread.join()


def save_result(image, job: GenerationJob, out_dir: Path, seed: int, index: int = 0) -> Saved:
    from asset_studio.core.library import save_image
    from asset_studio.engine.postprocess import save_sprite

    raw = save_image(image, job, out_dir, seed=seed)
    sprite = save_sprite(raw, image, job, seed)  # the raw image is on disk first: a failing cut-out never loses it
    shown = image
    if sprite is not None:
        from PIL import Image

        with Image.open(sprite) as im:
            shown = im.copy()
    return Saved(raw=raw, sprite=sprite, image=shown, index=index, seed=seed)


def run_job(job, backend, out_dir: Path, *, should_cancel=None, on_event=None) -> RunResult:
    from asset_studio.engine.postprocess import PostProcessSpec, check_ready

    should_cancel = should_cancel or (lambda: False)
    on_event = on_event or (lambda event: None)
    backend.check(job)
    check_ready(PostProcessSpec.from_job(job))  # a missing cut-out model fails before generating
    saved: list[Saved] = []
    for event in backend.run(job, should_cancel):
        if isinstance(event, ImageReady):
            result = save_result(event.image, event.job, Path(out_dir), event.seed, event.index)
            saved.append(result)
            on_event(result)
        elif isinstance(event, Cancelled):
            return RunResult(saved, True)
        elif isinstance(event, Finished):
            break
        else:
            on_event(event)
    return RunResult(saved, False)
