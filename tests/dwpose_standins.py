"""Tiny ONNX stand-ins for DWPose's two networks (the real files' names, inputs and output shapes) and a
way to make a test see only the annotator folder it names. Used by tests/test_dwpose.py and by every
test that makes a pose from a picture (layout reference, engine/annotators)."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

IMAGE_SIZE = (320, 320)  # letterboxed to 640: ratio 2
BOX = (80.0, 40.0, 240.0, 280.0)  # the person the detector finds, image pixels
COCO = ("nose", "left eye", "right eye", "left ear", "right ear", "left shoulder", "right shoulder",
        "left elbow", "right elbow", "left wrist", "right wrist", "left hip", "right hip",
        "left knee", "right knee", "left ankle", "right ankle")
# Where the pose network puts each COCO body point (image pixels), and how sure it is.
TARGETS = {
    "nose": (160, 70), "left eye": (166, 64), "right eye": (154, 64), "left ear": (172, 68),
    "right ear": (148, 68), "left shoulder": (190, 100), "right shoulder": (130, 100),
    "left elbow": (200, 150), "right elbow": (120, 150), "left wrist": (205, 195), "right wrist": (115, 195),
    "left hip": (178, 180), "right hip": (142, 180), "left knee": (182, 230), "right knee": (138, 230),
    "left ankle": (185, 270), "right ankle": (135, 270),
}
LOW = {"left ear": 0.2, "right ankle": 0.1}  # under 0.3: hidden


def export(module, shape, path, input_name, output_names):
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice, constants in the trace
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, torch.zeros(*shape), buffer, dynamo=False,
                          input_names=[input_name], output_names=output_names)
    onnx.save(onnx.load_from_string(buffer.getvalue()), str(path))


class Constant(torch.nn.Module):
    """Fixed outputs that still read the input (so the input stays in the graph)."""

    def __init__(self, *outputs):
        super().__init__()
        self.count = len(outputs)
        for n, o in enumerate(outputs):
            self.register_buffer(f"out{n}", torch.as_tensor(o, dtype=torch.float32))

    def forward(self, x):
        zero = x.mean() * 0
        outs = tuple(getattr(self, f"out{n}") + zero for n in range(self.count))
        return outs if len(outs) > 1 else outs[0]


def yolox_rows() -> np.ndarray:
    """[1, 8400, 85] as YOLOX-L at 640 gives them: one sure person at BOX, a weaker copy NMS drops,
    a box of another class and one under the score threshold."""
    rows = np.zeros((8400, 85), np.float32)

    def put(stride, gx, gy, box_in, obj, cls, cls_id=0):
        offset = {8: 0, 16: 6400, 32: 8000}[stride]
        side = 640 // stride
        x0, y0, x1, y1 = box_in
        row = rows[offset + gy * side + gx]
        row[0], row[1] = (x0 + x1) / 2 / stride - gx, (y0 + y1) / 2 / stride - gy
        row[2], row[3] = math.log((x1 - x0) / stride), math.log((y1 - y0) / stride)
        row[4], row[5 + cls_id] = obj, cls

    scaled = [v * 2 for v in BOX]  # image -> letterboxed input
    put(32, 10, 10, scaled, 0.95, 0.9)
    put(16, 20, 20, [v + 6 for v in scaled], 0.8, 0.7)  # overlaps the first: NMS removes it
    put(8, 5, 5, (10, 10, 60, 90), 0.9, 0.9, cls_id=3)  # not a person
    put(8, 70, 70, (500, 500, 620, 620), 0.5, 0.5)  # a person at 0.25 < 0.3
    return rows[None]


def crop_bins(point) -> tuple[int, int]:
    """SimCC bins (x over 576, y over 768) that land on POINT for BOX (1.25x, aspect 288/384)."""
    cx, cy = (BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2
    w, h = (BOX[2] - BOX[0]) * 1.25, (BOX[3] - BOX[1]) * 1.25
    sw, sh = (w, w / 0.75) if w > h * 0.75 else (h * 0.75, h)
    bx = (point[0] - cx + sw / 2) / sw * 288 * 2
    by = (point[1] - cy + sh / 2) / sh * 384 * 2
    return round(bx), round(by)


def simcc() -> tuple[np.ndarray, np.ndarray]:
    sx = np.zeros((1, 133, 576), np.float32)
    sy = np.zeros((1, 133, 768), np.float32)
    for k, name in enumerate(COCO):
        bx, by = crop_bins(TARGETS[name])
        sx[0, k, bx] = sy[0, k, by] = LOW.get(name, 0.9)
    for k in range(17, 133):  # feet, face and hands: somewhere, sure, and not used
        sx[0, k, 10] = sy[0, k, 10] = 0.9
    return sx, sy


def write_weights(folder):
    folder.mkdir(parents=True, exist_ok=True)
    export(Constant(yolox_rows()), (1, 3, 640, 640), folder / "yolox_l.onnx", "input", ["output"])
    sx, sy = simcc()
    export(Constant(sx, sy), (1, 3, 384, 288), folder / "dw-ll_ucoco_384.onnx", "input", ["simcc_x", "simcc_y"])
    return folder


def expected_openpose():
    out = {name: TARGETS[name] for name in COCO if name not in LOW}
    out["neck"] = tuple((a + b) / 2 for a, b in zip(TARGETS["left shoulder"], TARGETS["right shoulder"]))
    return out


def only_named_folders(monkeypatch):
    """Weights only from the folder a test names (not the HF cache, $ASSET_STUDIO_ANNOTATORS or
    models/annotators beside the package, which may hold real weights)."""
    import asset_studio.engine.annotators as annotators

    monkeypatch.setattr(annotators, "_hf_cache_folder", lambda *a: None)
    monkeypatch.delenv("ASSET_STUDIO_ANNOTATORS", raising=False)
    monkeypatch.setattr(annotators, "annotator_dirs", lambda d=None: [Path(d or "/nonexistent-annotators")])
