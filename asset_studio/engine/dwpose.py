"""DWPose without mmpose: a YOLOX person detector and the RTMPose whole-body network, both ONNX.

The weights are yzd-v/DWPose's yolox_l.onnx and dw-ll_ucoco_384.onnx (Apache-2.0), run by
onnxruntime. The steps follow the DWPose ControlNet annotator (IDEA-Research/DWPose and
controlnet-aux's dwpose): letterbox to 640 and decode YOLOX's grid output, NMS the person boxes,
crop each box (1.25x, aspect fixed to the pose network's input) with an affine warp, read the
keypoints from the SimCC argmax and map them back, then turn COCO's 17 body points into
OpenPose's 18 (the neck is the shoulders' midpoint). An ONNX file is data here: it is read into
memory (size-capped) and handed over as bytes, so it cannot point at files outside its folder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DET_FILE = "yolox_l.onnx"
POSE_FILE = "dw-ll_ucoco_384.onnx"
FILES = (DET_FILE, POSE_FILE)
CATALOG_ID = "annotator-dwpose"
HF_REPO = "yzd-v/DWPose"
MAX_ONNX_BYTES = 1024**3

DET_SIZE = (640, 640)  # (h, w), used when the file leaves its input size open
DET_PAD = 114  # YOLOX's letterbox grey
DET_STRIDES = (8, 16, 32)  # p6=False
NMS_IOU = 0.45
PERSON_SCORE = 0.3
POSE_SIZE = (384, 288)  # (h, w)
BOX_PADDING = 1.25
SIMCC_SPLIT = 2.0
MEAN = np.array([123.675, 116.28, 103.53], np.float32)  # RGB
STD = np.array([58.395, 57.12, 57.375], np.float32)
KEYPOINT_SCORE = 0.3
MAX_PEOPLE = 64  # core/pose's limit

# OpenPose-18 order from COCO-17 (NECK is the shoulders' midpoint, not a COCO point).
NECK = -1
OPENPOSE_FROM_COCO = (0, NECK, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)

_sessions: dict[tuple[str, int, int], object] = {}
_lock = threading.Lock()


@dataclass
class Skeleton:
    """One person: 18 OpenPose points in image pixels, None where the score is under KEYPOINT_SCORE."""

    points: list[tuple[float, float] | None]
    box: tuple[float, float, float, float]


def session(path: Path):
    """An onnxruntime session for PATH, cached while the file is unchanged."""
    from asset_studio.engine.loader import load_errors
    from asset_studio.errors import UserError

    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key in _sessions:
            return _sessions[key]
    if stat.st_size > MAX_ONNX_BYTES:
        raise UserError(f"{path} is larger than {MAX_ONNX_BYTES // 1024**3} GB, too large for a DWPose network.")
    import onnxruntime as ort

    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    with load_errors(f"DWPose network from {path}"):
        sess = ort.InferenceSession(path.read_bytes(), providers=providers)
    with _lock:
        _sessions[key] = sess
    return sess


def _input_hw(sess, default: tuple[int, int]) -> tuple[int, int]:
    shape = sess.get_inputs()[0].shape
    h, w = shape[2:4] if len(shape) == 4 else (None, None)
    return (h, w) if isinstance(h, int) and isinstance(w, int) else default


# ---- the person detector -------------------------------------------------------------------------


def letterbox(bgr: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """BGR scaled to fit SIZE (h, w), top-left, grey elsewhere; float32 CHW with no normalisation."""
    import cv2

    h, w = bgr.shape[:2]
    r = min(size[0] / h, size[1] / w)
    out = np.full((size[0], size[1], 3), DET_PAD, np.uint8)
    nh, nw = max(1, int(h * r)), max(1, int(w * r))
    out[:nh, :nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32), r


def decode_yolox(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """YOLOX's [N, 5 + classes] rows (grid offsets, log sizes) as centre/size boxes in input pixels."""
    grids, strides = [], []
    for stride in DET_STRIDES:
        hs, ws = size[0] // stride, size[1] // stride
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((hs * ws, 1), stride))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    if raw.shape[0] != grid.shape[0]:
        from asset_studio.errors import UserError

        raise UserError(f"The DWPose person detector gave {raw.shape[0]} boxes where a {size[1]}x{size[0]} "
                        f"YOLOX gives {grid.shape[0]}; {DET_FILE} is not the YOLOX detector DWPose uses.")
    out = raw.astype(np.float32).copy()
    out[:, :2] = (out[:, :2] + grid) * stride
    out[:, 2:4] = np.exp(out[:, 2:4]) * stride
    return out


def detect_people(det_sess, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes (x0, y0, x1, y1 in image pixels) and their scores, best first, after NMS."""
    import cv2

    size = _input_hw(det_sess, DET_SIZE)
    blob, ratio = letterbox(bgr, size)
    raw = det_sess.run(None, {det_sess.get_inputs()[0].name: blob[None]})[0]
    rows = decode_yolox(np.asarray(raw)[0], size)
    scores = rows[:, 4] * rows[:, 5]  # objectness x class 0 (person)
    keep = scores > PERSON_SCORE
    rows, scores = rows[keep], scores[keep]
    if not len(rows):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    boxes = np.stack([rows[:, 0] - rows[:, 2] / 2, rows[:, 1] - rows[:, 3] / 2,
                      rows[:, 0] + rows[:, 2] / 2, rows[:, 1] + rows[:, 3] / 2], 1) / ratio
    xywh = [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in boxes]
    idx = np.asarray(cv2.dnn.NMSBoxes(xywh, scores.tolist(), PERSON_SCORE, NMS_IOU), int).reshape(-1)
    idx = idx[np.argsort(-scores[idx])][:MAX_PEOPLE]
    return boxes[idx], scores[idx]


# ---- the pose network ----------------------------------------------------------------------------


def crop_transform(box, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(affine matrix image -> crop, centre, scale): BOX grown BOX_PADDING times, aspect fixed to SIZE (h, w)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
    w, h = (x1 - x0) * BOX_PADDING, (y1 - y0) * BOX_PADDING
    aspect = size[1] / size[0]
    scale = np.array([w, w / aspect] if w > h * aspect else [h * aspect, h], np.float32)
    # No rotation: the warp is a scale and a shift, so its inverse maps the crop's points back exactly.
    sx, sy = size[1] / scale[0], size[0] / scale[1]
    matrix = np.array([[sx, 0, size[1] / 2 - center[0] * sx], [0, sy, size[0] / 2 - center[1] * sy]], np.float32)
    return matrix, center, scale


def estimate(pose_sess, rgb: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """The 133 whole-body keypoints (image pixels) and their scores for the person in BOX."""
    import cv2

    size = _input_hw(pose_sess, POSE_SIZE)
    matrix, center, scale = crop_transform(box, size)
    crop = cv2.warpAffine(rgb, matrix, (size[1], size[0]), flags=cv2.INTER_LINEAR).astype(np.float32)
    blob = ((crop - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
    outputs = pose_sess.run(None, {pose_sess.get_inputs()[0].name: blob})
    names = [o.name for o in pose_sess.get_outputs()]
    by_name = dict(zip(names, outputs))
    simcc_x, simcc_y = (by_name["simcc_x"], by_name["simcc_y"]) if {"simcc_x", "simcc_y"} <= set(names) \
        else outputs[:2]
    simcc_x, simcc_y = np.asarray(simcc_x)[0], np.asarray(simcc_y)[0]
    xy = np.stack([simcc_x.argmax(1), simcc_y.argmax(1)], 1).astype(np.float32) / SIMCC_SPLIT
    scores = np.minimum(simcc_x.max(1), simcc_y.max(1))
    points = xy / np.array([size[1], size[0]], np.float32) * scale + center - scale / 2
    return points, scores


def to_openpose(points: np.ndarray, scores: np.ndarray) -> list[tuple[float, float] | None]:
    """COCO-17 body points (the first 17 of the whole body) as OpenPose's 18, hidden under KEYPOINT_SCORE."""
    out: list[tuple[float, float] | None] = []
    for k in OPENPOSE_FROM_COCO:
        if k == NECK:
            ok = scores[5] > KEYPOINT_SCORE and scores[6] > KEYPOINT_SCORE
            out.append(tuple(float(v) for v in (points[5] + points[6]) / 2) if ok else None)
        else:
            out.append((float(points[k][0]), float(points[k][1])) if scores[k] >= KEYPOINT_SCORE else None)
    return out


def detect(rgb: np.ndarray, folder: Path) -> list[Skeleton]:
    """Every person in RGB (H x W x 3 uint8) with at least one visible body point."""
    det = session(Path(folder) / DET_FILE)
    pose = session(Path(folder) / POSE_FILE)
    boxes, _scores = detect_people(det, np.ascontiguousarray(rgb[:, :, ::-1]))  # YOLOX was trained on BGR
    people = []
    for box in boxes:
        points, scores = estimate(pose, rgb, box)
        skeleton = to_openpose(points, scores)
        if any(p is not None for p in skeleton):
            people.append(Skeleton(skeleton, tuple(float(v) for v in box)))
    return people
