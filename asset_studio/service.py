"""The path of one asset, strung together once: prepare → check → run → save → finish.

The CLI commands and the GUI worker both call these functions; neither re-implements a step.

    job = prepare(request, out_dir)                  # core/request.py
    result = run_job(job, backend, out_dir, on_event=show)
    sheet = export_sheet(SheetExport(inputs=[out_dir / "sprites"], out=Path("sheet.png"), format="godot4"))

Every image is on disk, raw first and then the finished sprite, before anyone is told about it
(the Saved event): a crash or a kill loses at most the image in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from asset_studio.core.backend import Backend, Cancelled, ImageReady, Notice
from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError


@dataclass
class Saved:
    """One image on disk: the raw picture and, when the job asks for finishing, the sprite."""

    raw: Path
    sprite: Path | None
    image: Any  # PIL.Image to show: the sprite when there is one, else the raw image
    raw_image: Any
    index: int
    seed: int
    frame: int | None = None  # an animation's frame index; raw.parent is the animation's folder
    previews: list[Path] = field(default_factory=list)  # written with an animation's last frame
    made_by: str = ""  # the backend and server that made it (its job.made_by); "" = this machine


@dataclass
class RunResult:
    saved: list[Saved] = field(default_factory=list)
    cancelled: bool = False
    animations: list[Path] = field(default_factory=list)  # one folder of frames per animation

    @property
    def paths(self) -> list[Path]:
        return [s.raw for s in self.saved]


ENGINES = ("local", "comfyui")
TOKEN_VARIABLE = "ASSET_STUDIO_COMFYUI_TOKEN"  # a proxy's bearer token in front of ComfyUI servers


def make_backend(engine: str = "local", servers: list[str] | tuple = (), *, device: str | None = None,
                 download: bool = False, token: str | None = None) -> Backend:
    """The backend for ENGINE: this machine's diffusers engine, or ComfyUI SERVERS (one or a pool).
    The CLI and the GUI both build backends here."""
    if engine == "local":
        if servers:
            raise UserError("--server goes with --engine comfyui.")
        from asset_studio.engine.backend import LocalBackend

        return LocalBackend(device=device, download=download)
    if engine == "comfyui":
        if device:
            raise UserError("--device chooses this machine's GPU; ComfyUI servers use their own.")
        if not servers:
            raise UserError("The comfyui engine needs at least one server: --server http://HOST:PORT.")
        import os

        from asset_studio.remote.backend import ComfyBackend

        return ComfyBackend(list(servers), token=token or os.environ.get(TOKEN_VARIABLE) or None)
    raise UserError(f"Unknown engine '{engine}'; choose one of: {', '.join(ENGINES)}.")


def check_job(job: GenerationJob, backend: Backend, out_dir: str | Path | None = None) -> None:
    """Everything that can be refused before a model loads: the output folder and the backend's check.
    (A missing cut-out model is not a refusal: see finishing_blocker.)"""
    if out_dir is not None:
        check_output_folder(Path(out_dir))
    backend.check(job)


def finishing_spec(job: GenerationJob):
    """The finishing that runs for JOB. A transparent image (LayerDiffuse) has its alpha already: the
    cut-out is skipped and the sprite is the RGBA image, with the other steps (grid, palette, trim)."""
    if job.transparency is None or not job.finishing.remove_background:
        return job.finishing
    from dataclasses import replace

    return replace(job.finishing, remove_background=False)


def finishing_blocker(job: GenerationJob) -> str | None:
    """Why the sprites cannot be made now (the cut-out's model file is not installed), or None.
    The raw images are made and kept either way; `asset-studio finish` makes the sprites later."""
    if not job.finishing.active:
        return None
    from asset_studio.engine.postprocess import check_ready

    try:
        check_ready(finishing_spec(job))
    except UserError as exc:
        return f"{exc} The raw images are kept; make their sprites afterwards with `asset-studio finish FOLDER`."
    return None


def check_output_folder(folder: Path) -> None:
    """The output folder exists (or can be made) and takes files: said now, not after a model load."""
    import os

    from asset_studio.errors import describe_os_error

    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; the output folder (--out) must be a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(describe_os_error(exc, folder)) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"The output folder {folder} is read-only: choose another one.")


def run_job(job: GenerationJob, backend: Backend, out_dir: str | Path, *,
            should_cancel: Callable[[], bool] | None = None,
            on_event: Callable[[object], None] | None = None, name: str | None = None) -> RunResult:
    """Run JOB on BACKEND and save every image as it comes. Events other than ImageReady are passed
    to ON_EVENT as they are; each ImageReady becomes a Saved once the files are written. Errors
    are raised (readable_error() turns them into the sentence to show). NAME names the file of a
    one-image job (a pose of a pose set)."""
    check_job(job, backend, out_dir)
    result = RunResult()
    blocker = finishing_blocker(job)
    if blocker and on_event is not None:
        on_event(Notice(blocker, missing_model=job.finishing.bg_model))
    from asset_studio.core.library import RunInfo

    run = RunInfo.new(job)  # every image of this run says so: the gallery groups them
    frames: dict[int, list] = {}  # animation index -> the pictures its preview shows
    folders: dict[int, Path] = {}  # animation index -> its folder (a pool's servers interleave animations)
    for event in backend.run(job, should_cancel):
        if isinstance(event, ImageReady) and event.frame is not None:
            if event.index not in frames:
                frames[event.index] = []
                folders[event.index] = animation_folder(event.job, out_dir, event.seed)
                result.animations.append(folders[event.index])
            saved = save_frame(event, folders[event.index], frames[event.index], finish=blocker is None)
            result.saved.append(saved)
            event = saved
        elif isinstance(event, ImageReady):
            saved = save_result(event.image, event.job, out_dir, event.seed, event.index, name=name,
                                finish=blocker is None, run=run, before=event.before)
            result.saved.append(saved)
            event = saved
        elif isinstance(event, Cancelled):
            result.cancelled = True
        if on_event is not None:
            on_event(event)
    return result


def save_result(image, job: GenerationJob, out_dir: str | Path, seed: int, index: int = 0,
                name: str | None = None, finish: bool = True, run=None, before=None) -> Saved:
    """Write the raw image (job inside) at once, then the finished sprite into sprites/ under the
    same name. A failing finishing step never loses the raw image: it is already on disk. BEFORE,
    the picture before the after-passes, goes to .before/ under the same name (the viewer's compare)."""
    from asset_studio.core.library import SPRITES_DIR, before_path, png_info, save_image

    raw = save_image(image, job, out_dir, seed=seed, name=name, run=run)
    if before is not None:
        from asset_studio.core.outputs import png_writer, write_file

        target = before_path(raw)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_file(target, png_writer(before))
    sprite_path, shown = None, image
    if finish and job.finishing.active:
        from asset_studio.engine.postprocess import apply_postprocess

        from asset_studio.core.outputs import png_writer, write_file

        sprite = apply_postprocess(image, finishing_spec(job))
        folder = raw.parent / SPRITES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        # The raw image's name is unique, so this never replaces another sprite.
        sprite_path = write_file(folder / raw.name, png_writer(sprite, pnginfo=png_info(job, seed, run)))
        shown = sprite
    return Saved(raw=raw, sprite=sprite_path, image=shown, raw_image=image, index=index, seed=int(seed),
                 made_by=job.made_by)


def make_sprites(folder: str | Path) -> list[Path]:
    """The sprites a run could not make (its cut-out model was missing then): for every raw image in
    FOLDER whose job asks for finishing and that has no sprite yet. Returns the sprites written."""
    from asset_studio.core.library import SPRITES_DIR, png_info, read_job
    from asset_studio.core.outputs import png_writer, write_file
    from asset_studio.engine.postprocess import apply_postprocess, check_ready

    from PIL import Image

    folder, made = Path(folder), []
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder of generated images.")
    for raw in sorted(folder.glob("*.png")):
        target = folder / SPRITES_DIR / raw.name
        try:
            job = read_job(raw)
        except UserError:
            continue  # not an image made here (a sheet, a picture the artist put there)
        if not job.finishing.active or target.exists():
            continue
        spec = finishing_spec(job)
        check_ready(spec)  # still missing: the same sentence, naming the download
        with Image.open(raw) as im:
            image = im.convert("RGB" if job.transparency is None else "RGBA")
        target.parent.mkdir(parents=True, exist_ok=True)
        made.append(write_file(target, png_writer(apply_postprocess(image, spec),
                                                  pnginfo=png_info(job, job.sampling.seed))))
    return made


def animation_folder(job: GenerationJob, out_dir: str | Path, seed: int) -> Path:
    """A new folder for one animation's frames: `00001-<seed>-<slug>`, numbered like the images."""
    from asset_studio.core.library import next_number, slugify

    out = Path(out_dir)
    slug = slugify(job.source.subject or job.prompt.text)
    number = next_number(out)
    while True:  # another process may take a number first: take the next one
        folder = out / f"{number:05d}-{seed}-{slug}"
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            number = max(number + 1, next_number(out))


def save_frame(event: ImageReady, folder: Path, shown: list, finish: bool = True) -> Saved:
    """One frame of an animation, saved like an image (raw with the job inside, then the sprite)
    as `<slug>-007.png` in its folder; with the last frame, the previews beside the folder."""
    from asset_studio.core.animation import frame_name
    from asset_studio.core.library import slugify

    slug = slugify(event.job.source.subject or event.job.prompt.text)
    saved = save_result(event.image, event.job, folder, event.seed, event.index, name=frame_name(slug, event.frame),
                        finish=finish)
    saved.frame = event.frame
    shown.append(saved.image)
    if event.frame == event.frame_count - 1 and len(shown) == event.frame_count:
        from asset_studio.engine.video_io import write_previews

        a = event.job.animation
        saved.previews = write_previews(shown, a.fps, folder.parent / folder.name, video=event.job.output == "video",
                                        formats=a.previews)
        shown.clear()
    return saved



def readable_error(exc: BaseException) -> str:
    """One sentence for the artist from whatever a run raised."""
    if isinstance(exc, UserError):
        return str(exc)
    name = type(exc).__name__
    text = str(exc)
    if name == "OutOfMemoryError" or "out of memory" in text.lower():
        return ("The GPU ran out of memory; lower the image size or batch count, "
                "or close other programs that use the GPU, then try again.")
    if isinstance(exc, FileNotFoundError):
        return f"A file the job needs is missing: {exc.filename or text}."
    if isinstance(exc, MemoryError):
        return "The computer ran out of memory; lower the image size or batch count and try again."
    first = text.strip().splitlines()[0] if text.strip() else name
    return f"Generation failed ({name}): {first.rstrip('.')}."


# --- sheets ----------------------------------------------------------------------------------------


@dataclass
class SheetExport:
    """What `asset-studio sheet` and the gallery's Export sheet… ask for."""

    inputs: list[Path]
    out: Path  # SHEET.png; more pages are SHEET-1.png, SHEET-2.png …
    format: str
    trim: bool = False
    padding: int = 0
    extrude: int = 0
    pot: bool = False
    square: bool = False
    max_size: int = 4096
    grid: tuple[int, int] | None = None
    rotate: bool = False
    fps: float = 10.0
    force: bool = False  # replace files this command did not write
    animations: list = field(default_factory=list)  # core.animation.AnimationEdit: the artist's names, fps, loop


@dataclass
class SheetResult:
    sheet: Any  # core.sheet.Sheet
    pages: list[Path]
    data_files: list[Path]
    warnings: list[str]

    def summary(self) -> str:
        sizes = ", ".join(f"{p.size[0]}x{p.size[1]}" for p in self.sheet.pages)
        files = ", ".join(str(p) for p in self.pages + self.data_files)
        return f"packed {len(self.sheet.frames)} frames on {len(self.pages)} page(s) ({sizes}): {files}"


def export_sheet(request: SheetExport) -> SheetResult:
    """Pack REQUEST's images into a sheet and write its pages and the format's data file as one
    set (core/outputs: nothing replaced until every file is complete; inputs and files this
    command did not write are never overwritten without force)."""
    from asset_studio.core.exporters import ExportOptions, is_sheet_page, rotation_supported, write_sheet
    from asset_studio.core.sheet import SheetOptions, collect_images, kernels_loaded, load_kernels, pack_sheet, read_sprites

    out = Path(request.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"The sheet must be a .png file (--out), not {out.name}.")
    if request.rotate and not rotation_supported(request.format):
        raise UserError(f"The {request.format} format cannot describe rotated frames: leave out --rotate.")
    export_options = ExportOptions(fps=request.fps)  # checked before any page is written
    opts = SheetOptions(trim=request.trim and request.grid is None, padding=request.padding,
                        extrude=request.extrude, pot=request.pot, square=request.square,
                        max_size=request.max_size, grid=request.grid, rotate=request.rotate)

    def own_page(path: Path) -> bool:  # a sheet written inside its input folder is not packed next time
        return is_sheet_page(path, out)

    found = collect_images(list(request.inputs), exclude=own_page)
    inputs = [path for _, path in found]
    if kernels_loaded():  # by an earlier export
        sprites = read_sprites(found, trim=opts.trim)
    else:  # a child reads while the kernels load
        from asset_studio.core.sprite_reader import read_sprites_beside

        sprites = read_sprites_beside(found, opts.trim, meanwhile=load_kernels)
    sheet = pack_sheet(sprites, opts)
    from asset_studio.core.animation import timing_from_jobs

    timing_from_jobs(sheet, dict(found))
    if request.animations:  # the artist's names and speeds win over the found ones and the jobs'
        from asset_studio.core.animation import apply_animation_edits

        apply_animation_edits(sheet, list(request.animations))
    if request.format == "aseprite" and len(sheet.pages) > 1:  # refuse before writing any page
        raise UserError("The Aseprite format holds a single image: raise the maximum size (--max-size) so every "
                        "frame fits one sheet.")
    pages, data = write_sheet(sheet, out, request.format, export_options, inputs=inputs, force=request.force)
    warnings = []
    if request.format.startswith("texturepacker"):
        split = split_animations(sheet)
        if split:  # a PixiJS page only animates its own frames, so these were left out of the JSON
            warnings.append(f"the animation(s) {', '.join(split)} span several pages and are left out of the "
                            "JSON's animations: raise the maximum size (--max-size) to keep each on one page.")
    return SheetResult(sheet=sheet, pages=pages, data_files=data, warnings=warnings)


def split_animations(sheet) -> list[str]:
    """Names of the animations whose frames landed on more than one page."""
    page_of = {f.name: f.page for f in sheet.frames}
    return [a.name for a in sheet.animations if len({page_of.get(n) for n in a.frames}) > 1]
