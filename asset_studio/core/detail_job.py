"""A job that details an EXISTING image (`asset-studio detail`, the viewer's "Detail a region…"):
the picture is kept as it is (job.init at denoise 0, see core/job.InitImage) and the detailer's
pass redraws the regions; nothing else is generated. The new PNG carries this job, so `rerun`
details the same picture again, exactly.

The image's own job, when its PNG carries one, supplies everything a new image would need: the
model and its LoRAs and VAE, prompt, sampler, steps, CFG, the base size (the size crops are
redrawn at) and the finishing of its style (the cut-out). A picture from elsewhere needs a model.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from pathlib import Path

from asset_studio.core.job import (
    Box, DetailPass, Finishing, GenerationJob, InitImage, ModelRef, Passes, Prompt, Sampling, Source, check_detail,
    check_limits,
)
from asset_studio.errors import UserError


@dataclass
class DetailRequest:
    """What the artist asks for: the regions of IMAGE to redraw and how."""

    image: str  # the picture; a sprite in sprites/ stands for the raw image beside its folder
    boxes: list[Box] = field(default_factory=list)  # drawn regions, in the picture's pixels
    detector: str = ""  # or a YOLO-format .onnx detector that finds them
    classes: list[str] = field(default_factory=list)
    denoise: float = 0.4
    prompt: str = ""  # the regions' prompt: empty = the image's ([PROMPT] stands for it)
    negative: str = ""
    padding: int = 32
    mask_blur: int = 4
    dilate: int = 4
    confidence: float = 0.3
    max_regions: int = 0
    steps: int = 0  # steps run per region; 0 = the image's steps x denoise
    model: str = ""  # empty = the model in the image's job
    seed: int | None = None  # None = random (each press of Detail gives another redraw)
    finishing: bool = True  # the image's own finishing (its style's cut-out) on the result


def source_image(path: str | Path) -> Path:
    """The picture to detail: a finished sprite (OUT/…/sprites/NAME) stands for its raw image
    (OUT/…/NAME), which still has the background the model drew: redrawing a cut-out would paint
    over transparency."""
    from asset_studio.core.library import SPRITES_DIR

    path = Path(path).expanduser()
    raw = path.parent.parent / path.name
    if path.parent.name == SPRITES_DIR and raw.is_file():
        return raw.resolve()
    return path.resolve()


def image_job(path: Path) -> GenerationJob | None:
    """The job inside PATH's PNG, or None when it carries none (a picture from elsewhere)."""
    from asset_studio.core.library import JOB_CHUNK, read_job

    try:
        return read_job(path)
    except UserError:
        from PIL import Image

        try:
            with Image.open(path) as im:
                im.load()
                has_job = JOB_CHUNK in (getattr(im, "text", {}) or {})
        except Exception:  # noqa: BLE001 - read_job said what is wrong; the caller reads the picture next
            return None
        if has_job:  # a job that is there but broken is said, not silently replaced by defaults
            raise
        return None


def beside(image: Path, made: GenerationJob | None) -> Path:
    """The folder a detailed IMAGE's result is saved in: its own (its run's, so the gallery groups
    them), but beside an animation's folder for one of its frames (that folder holds only frames)."""
    folder = Path(image).parent
    return folder.parent if made is not None and made.source.frame is not None else folder


def detail_job(request: DetailRequest) -> GenerationJob:
    """The job REQUEST describes, checked (regions inside the picture included). One sentence when not."""
    from asset_studio.core.images import read_image
    from asset_studio.core.request import _detail_pass, _path_ref, model_family

    path = source_image(request.image)
    if not path.is_file():
        raise UserError(f"The image to detail, {request.image}, does not exist.")
    picture = read_image(path, "RGB", what="The image to detail")  # not a picture: one sentence
    made = image_job(path)
    model = request.model or (made.model.checkpoint if made is not None else "")
    if not model:
        raise UserError(f"{path.name} carries no Asset Studio job, so it names no model: "
                        "pass --model PATH_OR_ID.")
    if made is not None:
        job = copy.deepcopy(made)
        if request.model:  # as `rerun --model`: another checkpoint, the same LoRAs and settings
            job.model.checkpoint = _path_ref(request.model)
    else:
        from asset_studio.core import families

        side = families.base_size(model_family(model) or "")
        job = GenerationJob(model=ModelRef(checkpoint=_path_ref(model)), prompt=Prompt(text=""),
                            sampling=Sampling(width=side, height=side))
    s = job.sampling
    # What the picture was made with stays; what made it (the base pass, its ControlNets, tiling,
    # earlier passes) does not run again: the picture itself is the start, kept as it is.
    s.seed = int(request.seed) if request.seed is not None else random.randrange(2**32)
    s.count, s.seeds, s.batch = 1, [], 1
    job.init = InitImage(image=str(path), denoise=0.0)
    job.controls, job.tiling, job.output, job.animation = [], "off", "image", None
    job.passes = Passes(detail=[_detail_pass(DetailPass(
        boxes=list(request.boxes), detector=request.detector, classes=list(request.classes),
        confidence=request.confidence, max_regions=request.max_regions, dilate=request.dilate,
        mask_blur=request.mask_blur, denoise=request.denoise, padding=request.padding, steps=request.steps,
        prompt=request.prompt, negative=request.negative))])
    if not request.finishing:
        job.finishing = Finishing()
    job.source = Source(style=job.source.style, template=job.source.template, subject=job.source.subject,
                        fields=dict(job.source.fields), pose=job.source.pose)
    job.made_by = ""
    check_limits(job)
    check_detail(job, picture.size)
    return job
