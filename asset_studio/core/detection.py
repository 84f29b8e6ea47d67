"""Boxes from a YOLO-format detector's raw output: letterbox geometry, decoding, NMS (numpy only).

The detector itself runs in engine/detect.py (onnxruntime); this module is the arithmetic around
it, so it is tested without a model. Two output layouts are read:
- YOLOv8 / v11 (Ultralytics export): (1, 4 + nc, N), each column cx, cy, w, h, then nc class scores;
- YOLOv5: (1, N, 5 + nc), each row cx, cy, w, h, objectness, then nc class probabilities.
Segmentation exports add mask coefficients after the scores; with the class count known from the
model's metadata they are ignored (boxes only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asset_studio.errors import UserError

LETTERBOX_FILL = 114  # the grey Ultralytics pads with; the detector was trained on it
NMS_IOU = 0.7  # Ultralytics' predict default, which ADetailer uses
MAX_DETECTIONS = 300  # Ultralytics' max_det: bounds NMS when a poor threshold lets thousands of boxes through


@dataclass
class Detection:
    """One region found: its box in image pixels (left, top, right, bottom), score and class."""

    box: tuple[float, float, float, float]
    score: float
    class_id: int


@dataclass
class Letterbox:
    """How an image was fitted into the detector's square: scaled by `scale`, then padded."""

    scale: float
    pad_x: float
    pad_y: float


def letterbox(image, size: tuple[int, int]):
    """IMAGE (PIL) scaled to fit SIZE (width, height) keeping its aspect, centred on grey: the
    (1, 3, H, W) float32 input in 0-1 and the Letterbox that maps boxes back."""
    from PIL import Image

    width, height = size
    scale = min(width / image.width, height / image.height)
    new_w, new_h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    canvas = Image.new("RGB", (width, height), (LETTERBOX_FILL,) * 3)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    canvas.paste(image.convert("RGB").resize((new_w, new_h), Image.Resampling.BILINEAR), (pad_x, pad_y))
    array = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    return np.ascontiguousarray(array), Letterbox(scale=scale, pad_x=pad_x, pad_y=pad_y)


def decode(raw: np.ndarray, class_count: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAW output → (boxes as x1, y1, x2, y2 in the detector's pixels, scores, class ids).
    The layout is told by orientation: the class axis is the shorter one (N is in the thousands),
    along dimension 1 for YOLOv8, dimension 2 for YOLOv5. CLASS_COUNT comes from the model's names."""
    raw = np.asarray(raw)
    if raw.ndim != 3 or raw.shape[0] != 1 or min(raw.shape[1:]) < 5:
        raise UserError(f"The detector's output has the shape {tuple(raw.shape)}; a YOLO detector gives "
                        "(1, 4 + classes, boxes) (YOLOv8) or (1, boxes, 5 + classes) (YOLOv5).")
    raw = raw[0].astype(np.float32)
    v8 = raw.shape[0] <= raw.shape[1]
    rows = raw.T if v8 else raw  # (N, channels)
    first = 4 if v8 else 5
    nc = rows.shape[1] - first if class_count is None else class_count
    if nc < 1 or first + nc > rows.shape[1]:
        raise UserError(f"The detector's output has {rows.shape[1]} values per box, too few for "
                        f"{nc} classes in the {'YOLOv8' if v8 else 'YOLOv5'} layout.")
    scores_all = rows[:, first:first + nc]
    if not v8:
        scores_all = scores_all * rows[:, 4:5]  # objectness x class probability
    class_ids = scores_all.argmax(axis=1)
    scores = scores_all[np.arange(len(rows)), class_ids]
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    return boxes[finite], scores[finite], class_ids[finite]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU, limit: int = MAX_DETECTIONS) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first (at most LIMIT)."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size and len(keep) < limit:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        order = rest[overlap <= iou]
    return keep


def detections(raw: np.ndarray, fit: Letterbox, image_size: tuple[int, int], confidence: float,
               keep_classes: set[int] | None = None, class_count: int | None = None,
               iou: float = NMS_IOU) -> list[Detection]:
    """The regions in RAW above CONFIDENCE (of KEEP_CLASSES; None = all), NMS'd per class, in
    pixels of the original image (IMAGE_SIZE = width, height), best score first."""
    boxes, scores, class_ids = decode(raw, class_count)
    chosen = scores >= confidence
    if keep_classes is not None:
        chosen &= np.isin(class_ids, sorted(keep_classes))
    boxes, scores, class_ids = boxes[chosen], scores[chosen], class_ids[chosen]
    if not len(boxes):
        return []
    # Per-class NMS in one pass: each class's boxes are shifted apart so they never overlap another's.
    shift = (class_ids.astype(np.float32) * (float(np.abs(boxes).max()) + 1.0))[:, None]
    keep = nms(boxes + shift, scores, iou)
    width, height = image_size
    out = []
    for i in keep:
        x1, y1, x2, y2 = boxes[i]
        x1, x2 = ((v - fit.pad_x) / fit.scale for v in (x1, x2))
        y1, y2 = ((v - fit.pad_y) / fit.scale for v in (y1, y2))
        x1, x2 = float(np.clip(x1, 0, width)), float(np.clip(x2, 0, width))
        y1, y2 = float(np.clip(y1, 0, height)), float(np.clip(y2, 0, height))
        if x2 - x1 >= 1 and y2 - y1 >= 1:
            out.append(Detection(box=(x1, y1, x2, y2), score=float(scores[i]), class_id=int(class_ids[i])))
    return out
