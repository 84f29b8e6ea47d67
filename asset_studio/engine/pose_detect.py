"""A pose (keypoints, not a picture) from a picture the artist drops in: DWPose or OpenPose's body network.

DWPose (engine/dwpose: two ONNX networks, Apache-2.0, catalog entry annotator-dwpose) is the default
when its weights are here; otherwise the OpenPose body network is used when the artist has it (CMU
licenses it for non-commercial use only, so the catalog does not offer it). OpenPose needs only
body_pose_model.pth (lllyasviel/Annotators). Both are found where engine/annotators finds every
annotator weight and are never downloaded here. The .pth is a pickle; torch >= 2.6 reads it with
weights_only=True, which refuses code. The keypoints come back as a core Pose, so the artist can fix
them in the editor before they drive ControlNet. Every pose control image made from a picture
(`layout reference --control pose`, video to video's pose frames) goes through here too and is drawn
by core/pose_render, so one place picks the detector and one draws the skeleton.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from asset_studio.core.pose import Person, Pose
from asset_studio.engine.annotators import find_files
from asset_studio.errors import UserError

BODY_FILE = "body_pose_model.pth"
DETECTORS = ("dwpose", "openpose")
DETECT_SIDE = 512  # the annotator's own detect_resolution

_bodies: dict[str, object] = {}
_lock = threading.Lock()


def choose_detector(annotator_dir=None) -> str:
    """dwpose when its weights are here, else openpose when the body network is, else dwpose (whose
    missing-weights sentence names the catalog download)."""
    from asset_studio.engine import dwpose
    from asset_studio.engine.annotators import look_for_files

    if look_for_files(dwpose.FILES, annotator_dir, dwpose.HF_REPO) is None \
            and look_for_files((BODY_FILE,), annotator_dir) is not None:
        return "openpose"
    return "dwpose"


def find_weights(detector: str | None = None, annotator_dir=None) -> tuple[str, Path]:
    """(the detector, the folder of its weights) for DETECTOR (None: choose_detector), or the UserError
    naming the missing file (for DWPose, with the catalog download)."""
    detector = detector or choose_detector(annotator_dir)
    if detector == "dwpose":
        from asset_studio.engine import dwpose

        return detector, find_files(dwpose.FILES, "DWPose", annotator_dir, repo=dwpose.HF_REPO,
                                    catalog_id=dwpose.CATALOG_ID)
    if detector != "openpose":
        raise UserError(f"Unknown pose detector {detector!r}; expected one of {', '.join(DETECTORS)}.")
    return detector, find_files((BODY_FILE,), "pose (OpenPose body)", annotator_dir)


def detect_pose(image: Image.Image, detector: str | None = None, annotator_dir=None) -> Pose:
    """Every person DETECTOR (None: choose_detector) finds in IMAGE, on a canvas the size of IMAGE."""
    detector, folder = find_weights(detector, annotator_dir)
    if detector == "dwpose":
        return _detect_dwpose(image, folder)
    body = _load_body(str(folder / BODY_FILE))
    from controlnet_aux.open_pose import OpenposeDetector

    rgb = image.convert("RGB")
    small = rgb.copy()
    small.thumbnail((DETECT_SIDE * 2, DETECT_SIDE * 2))  # the network scales to 368 px anyway
    import torch

    with torch.inference_mode():
        results = OpenposeDetector(body).detect_poses(np.asarray(small))
    w, h = rgb.size
    people = []
    for result in results:
        # Keypoints come as 0-1 fractions; clamp the odd one a pixel outside after rounding.
        pts = [(min(max(k.x, 0.0), 1.0) * w, min(max(k.y, 0.0), 1.0) * h) if k is not None else None
               for k in result.body.keypoints]
        people.append(Person(pts))
    return Pose(w, h, people)


def pose_control(image: Image.Image, detector: str | None = None, annotator_dir=None) -> Image.Image:
    """The OpenPose control image of IMAGE (RGB, same size): the detected skeletons drawn by core/pose_render
    (black where nobody was found, as controlnet-aux's annotator gives)."""
    from asset_studio.core.pose_render import render_pose

    return render_pose(detect_pose(image, detector, annotator_dir))


def _detect_dwpose(image: Image.Image, folder) -> Pose:
    from asset_studio.engine import dwpose

    rgb = image.convert("RGB")
    w, h = rgb.size
    people = []
    for skeleton in dwpose.detect(np.asarray(rgb), folder):
        # A joint a little outside the picture (the crop is larger than the box) goes on its edge.
        people.append(Person([(min(max(p[0], 0.0), w), min(max(p[1], 0.0), h)) if p is not None else None
                              for p in skeleton.points]))
    return Pose(w, h, people)


def _load_body(path: str):
    import warnings

    with _lock:
        if path in _bodies:
            return _bodies[path]
    with warnings.catch_warnings():  # controlnet_aux imports every annotator, each with its own deprecation notes
        warnings.simplefilter("ignore")
        from controlnet_aux.open_pose.body import Body
    from asset_studio.engine.loader import load_errors

    with load_errors(f"OpenPose body annotator from {path}"):
        body = Body(path)
    with _lock:
        _bodies[path] = body
    return body
