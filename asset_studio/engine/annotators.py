"""Control images from reference pictures, through controlnet_aux's annotators when their weights are here.

canny and lineart need no model (core/control_image.py). pose is engine/pose_detect's (DWPose, or
the OpenPose body network, drawn by core/pose_render). softedge (HED, PiDiNet), depth (MiDaS, Zoe)
and lineart_anime need weights. They are never downloaded here:
they are looked for in an annotators folder (the argument, $ASSET_STUDIO_ANNOTATORS, or
models/annotators beside the package) and in the local Hugging Face cache of
lllyasviel/Annotators. When one is missing the error names exactly which file and where it goes.
The weights are .pth pickles; torch >= 2.6 loads them with weights_only=True, which refuses code.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from asset_studio.core.control_image import REFERENCE_TYPES_NO_MODEL
from asset_studio.core.control_image import control_from_reference as model_free_control
from asset_studio.errors import UserError

HF_REPO = "lllyasviel/Annotators"


@dataclass(frozen=True)
class Annotator:
    detector: str  # class name in controlnet_aux
    files: tuple[str, ...]
    torch_hub: str | None = None  # a torch.hub repo folder the model also builds from


ANNOTATORS = {
    "softedge": Annotator("HEDdetector", ("ControlNetHED.pth",)),
    "softedge_pidinet": Annotator("PidiNetDetector", ("table5_pidinet.pth",)),
    "depth": Annotator("MidasDetector", ("dpt_hybrid-midas-501f0c75.pt",)),
    "depth_zoe": Annotator("ZoeDetector", ("ZoeD_M12_N.pt",), torch_hub="intel-isl_MiDaS_master"),
    "lineart_anime": Annotator("LineartAnimeDetector", ("netG.pth",)),
}
POSE = "pose"  # detected and drawn by engine/pose_detect, not by a controlnet_aux detector
REFERENCE_TYPES = (*REFERENCE_TYPES_NO_MODEL, POSE, *ANNOTATORS)

_detectors: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def annotator_dirs(annotator_dir: str | os.PathLike | None = None) -> list[Path]:
    dirs = []
    if annotator_dir:
        dirs.append(Path(annotator_dir))
    if os.environ.get("ASSET_STUDIO_ANNOTATORS"):
        dirs.append(Path(os.environ["ASSET_STUDIO_ANNOTATORS"]))
    dirs.append(Path(__file__).resolve().parents[2] / "models" / "annotators")
    return dirs


def find_files(files: tuple[str, ...], label: str, annotator_dir: str | os.PathLike | None = None,
               repo: str = HF_REPO, catalog_id: str = "") -> Path:
    """The folder holding all of FILES (annotator dirs, then REPO in the HF cache), or a UserError naming
    the missing one (and the catalog download that brings it, when there is one)."""
    folder = look_for_files(files, annotator_dir, repo)
    if folder is None:
        dirs = annotator_dirs(annotator_dir)
        present = [f for f in files if any((d / f).is_file() for d in dirs)]
        missing = next(f for f in files if f not in present) if len(present) < len(files) else files[0]
        if catalog_id:
            raise UserError(f"The {label} annotator needs {missing}; run `asset-studio models download {catalog_id}` "
                            f"or put the files in {dirs[0]}.")
        raise UserError(
            f"The {label} annotator needs {missing} (from {repo}); put it in {dirs[0]} "
            f"or in the Hugging Face cache."
        )
    return folder


def look_for_files(files: tuple[str, ...], annotator_dir: str | os.PathLike | None = None,
                   repo: str = HF_REPO) -> Path | None:
    """The folder holding all of FILES, or None."""
    dirs = annotator_dirs(annotator_dir)
    folder = next((d for d in dirs if all((d / f).is_file() for f in files)), None)
    return folder if folder is not None else _hf_cache_folder(files, repo)


def find_weights(control_type: str, annotator_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding every weight file CONTROL_TYPE needs, or a UserError naming the missing one."""
    if control_type == POSE:
        from asset_studio.engine import pose_detect

        return pose_detect.find_weights(None, annotator_dir)[1]
    spec = ANNOTATORS[control_type]
    folder = find_files(spec.files, control_type, annotator_dir)
    if spec.torch_hub:
        import torch

        hub = Path(torch.hub.get_dir()) / spec.torch_hub
        if not hub.is_dir():
            raise UserError(f"The {control_type} annotator needs the torch hub folder {hub} (intel-isl/MiDaS).")
    return folder


def _hf_cache_folder(files: tuple[str, ...], repo: str = HF_REPO) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        return None
    found = [try_to_load_from_cache(repo, f) for f in files]
    if all(isinstance(p, str) for p in found):
        folders = {Path(p).parent for p in found}
        if len(folders) == 1:
            return folders.pop()
    return None


def load_detector(control_type: str, annotator_dir=None):
    import warnings

    folder = find_weights(control_type, annotator_dir)  # before the heavy import: a missing file is quick to say
    with warnings.catch_warnings():  # controlnet_aux imports every annotator, each with its own deprecation notes
        warnings.simplefilter("ignore")
        import controlnet_aux

    key = (control_type, str(folder))
    with _lock:
        if key in _detectors:
            return _detectors[key]
    spec = ANNOTATORS[control_type]
    from asset_studio.engine.loader import load_errors

    with load_errors(f"{control_type} annotator from {folder}"):  # a corrupt or mismatched weight file
        detector = getattr(controlnet_aux, spec.detector).from_pretrained(str(folder))
    with _lock:
        _detectors[key] = detector
    return detector


def control_from_reference(image: Image.Image, control_type: str, annotator_dir=None,
                           detector: str | None = None, **options) -> Image.Image:
    """A control image (RGB, same size as IMAGE) of CONTROL_TYPE from a reference picture. DETECTOR is
    pose's (dwpose or openpose, as `pose from-image --detector`; None: pose_detect chooses)."""
    if control_type in REFERENCE_TYPES_NO_MODEL:
        return model_free_control(image, control_type, **options)
    if control_type == POSE:
        from asset_studio.engine.pose_detect import pose_control

        out = pose_control(image.convert("RGB"), detector, annotator_dir)
    elif control_type not in ANNOTATORS:
        raise UserError(f"Unknown control type {control_type!r}; expected one of {', '.join(REFERENCE_TYPES)}.")
    else:
        model = load_detector(control_type, annotator_dir)
        rgb = image.convert("RGB")
        out = model(rgb)
        if not isinstance(out, Image.Image):
            out = Image.fromarray(out)
        out = out.convert("RGB")
        if out.size != rgb.size:
            out = out.resize(rgb.size, Image.Resampling.BILINEAR)
    if options.get("invert"):
        from PIL import ImageOps

        out = ImageOps.invert(out)
    return out
