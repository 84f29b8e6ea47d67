"""YOLO-format ONNX detectors: tiny networks exported with torch.onnx whose output we control
(one finds the white square in its input, the others emit fixed rows), decoded, NMS'd and mapped
back to image pixels; bad detector files are one sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asset_studio.core.detection import decode, detections, letterbox, nms
from asset_studio.errors import UserError

pytest.importorskip("onnx", reason="onnx (the test extra) writes the tiny detectors")


def save_detector(path: Path, rows, names: dict | None = None, size: int = 64, find_square: bool = False,
                  layout: str = "v8", output_shape=None, dynamic: bool = False) -> Path:
    """A tiny YOLO-format detector as ONNX. ROWS: fixed boxes (cx, cy, w, h, class scores…) in the
    detector's pixels. DYNAMIC leaves the input's sides open and records SIZE as Ultralytics' `imgsz`
    metadata. FIND_SQUARE adds a first row: the box of the white pixels of its input, with
    score 0.9 for class 0. LAYOUT v8 emits (1, 4 + nc, N); v5 emits (1, N, 5 + nc) with objectness 1."""
    import onnx
    import torch

    fixed = torch.tensor(rows, dtype=torch.float32)  # (K, 4 + nc)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("fixed", fixed)

        def forward(self, x):
            if output_shape is not None:
                return x.mean() * 0 + torch.ones(output_shape)
            rows = self.fixed + x.mean() * 0  # the input is used, so the graph keeps it
            if find_square:
                bright = (x[0].min(dim=0).values > 0.9).float()  # (H, W)
                cols, lines = bright.amax(dim=0), bright.amax(dim=1)
                w, h = cols.sum(), lines.sum()
                cx = (cols * torch.arange(cols.shape[0], dtype=torch.float32)).sum() / w.clamp(min=1) + 0.5
                cy = (lines * torch.arange(lines.shape[0], dtype=torch.float32)).sum() / h.clamp(min=1) + 0.5
                scores = torch.zeros(rows.shape[1] - 4)
                scores[0] = 0.9
                rows = torch.cat([torch.cat([torch.stack([cx, cy, w, h]), scores])[None], rows])
            if layout == "v5":
                rows = torch.cat([rows[:, :4], torch.ones(rows.shape[0], 1), rows[:, 4:]], dim=1)
                return rows[None]
            return rows.T[None]

    import io
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Net(), torch.zeros(1, 3, size, size), buffer, dynamo=False,
                          input_names=["images"], output_names=["output0"],
                          dynamic_axes={"images": {2: "height", 3: "width"}} if dynamic else None)
    model = onnx.load_from_string(buffer.getvalue())
    if names is not None:
        model.metadata_props.add(key="names", value=repr(names))
    if dynamic:
        model.metadata_props.add(key="imgsz", value=repr([size, size]))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def square_image(size=(128, 64), box=(40, 16, 72, 48)):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (0, 0, 0))
    ImageDraw.Draw(image).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(255, 255, 255))
    return image


# Fixed rows in the 64x64 detector's pixels (cx, cy, w, h, face score, hand score); the first
# found row (the square) has face 0.9. Row 1 overlaps it (face 0.8: suppressed by NMS), row 2 is the
# same box as a hand (another class: kept), row 3 is a face below the confidence, the rest are empty.
def fixed_rows(square_center=(28, 32), square_size=(16, 16)):
    (cx, cy), (w, h) = square_center, square_size
    return [[cx + 1, cy, w, h, 0.8, 0.0], [cx, cy, w, h, 0.0, 0.7], [10, 10, 6, 6, 0.1, 0.0]] + [[0] * 6] * 5


def test_the_square_is_found_in_image_pixels_and_nms_keeps_one_per_class(tmp_path):
    from asset_studio.engine.detect import load_detector

    path = save_detector(tmp_path / "squares.onnx", fixed_rows(), names={0: "face", 1: "hand"}, find_square=True)
    detector = load_detector(str(path))
    assert detector.size == (64, 64) and detector.names == {0: "face", 1: "hand"}
    # 128x64 → scale 0.5, 16 grey rows above and below: the square (40..72, 16..48) is at 20..36, 24..40.
    found = detector.detect(square_image(), confidence=0.3, classes=[])
    assert [(d.class_id, round(d.score, 2)) for d in found] == [(0, 0.9), (1, 0.7)]
    face = np.array(found[0].box)
    assert np.abs(face - [40, 16, 72, 48]).max() <= 3  # the letterbox blurs the square's edge by a pixel
    assert np.allclose(found[1].box, [40, 16, 72, 48])  # the fixed hand row, mapped back exactly
    # Only faces; by number; a confidence above every score finds nothing.
    assert [d.class_id for d in detector.detect(square_image(), 0.3, ["Face"])] == [0]
    assert [d.class_id for d in detector.detect(square_image(), 0.3, ["1"])] == [1]
    assert detector.detect(square_image(), 0.95, []) == []
    with pytest.raises(UserError, match="has no class 'foot'; its classes are face, hand"):
        detector.detect(square_image(), 0.3, ["foot"])


def test_yolov5_layout_and_a_model_without_names(tmp_path):
    from asset_studio.engine.detect import load_detector

    path = save_detector(tmp_path / "v5.onnx", fixed_rows(), find_square=True, layout="v5", dynamic=True)
    detector = load_detector(str(path))
    assert detector.names == {} and detector.size == (64, 64)  # open sides: the size from `imgsz`
    found = detector.detect(square_image(), 0.3, [])
    assert [(d.class_id, round(d.score, 2)) for d in found] == [(0, 0.9), (1, 0.7)]
    with pytest.raises(UserError, match="does not name its classes; give class numbers"):
        detector.detect(square_image(), 0.3, ["face"])


def test_decode_and_nms_by_hand():
    # YOLOv8: (1, 4 + 2, N); three boxes, two overlapping faces and one far hand.
    rows = np.array([[50, 50, 20, 20, 0.9, 0.0], [52, 50, 20, 20, 0.6, 0.0], [10, 10, 4, 4, 0.0, 0.5],
                     [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.float32)
    boxes, scores, classes = decode(rows.T[None])
    assert boxes[0].tolist() == [40, 40, 60, 60] and classes.tolist()[:3] == [0, 0, 1]
    assert nms(boxes[:3], scores[:3], iou=0.5) == [0, 2]  # IoU(0, 1) = 18*20 / (2*400 - 360) ≈ 0.82
    assert nms(boxes[:3], scores[:3], iou=0.9) == [0, 1, 2]
    assert nms(boxes[:3], scores[:3], iou=0.9, limit=2) == [0, 1]  # Ultralytics' max_det: the best ones
    # YOLOv5: (1, N, 5 + nc): objectness multiplies the class probability.
    v5 = np.concatenate([rows[:, :4], np.full((7, 1), 0.5, np.float32), rows[:, 4:]], axis=1)
    v5 = np.concatenate([v5, np.zeros((5, 7), np.float32)])  # 12 boxes: the long axis is the box axis
    _, scores5, _ = decode(v5[None])
    assert np.allclose(scores5[:3], [0.45, 0.3, 0.25])
    # Boxes map back through the letterbox and are clipped to the image.
    from PIL import Image

    _, fit = letterbox(Image.new("RGB", (200, 100)), (100, 100))
    assert (fit.scale, fit.pad_x, fit.pad_y) == (0.5, 0, 25)
    raw = np.zeros((1, 5, 8), np.float32)  # one box and seven empty ones
    raw[0, :, 0] = [50, 50, 120, 20, 0.9]
    [found] = detections(raw, fit, (200, 100), 0.3)
    assert found.box == (0.0, 30.0, 200.0, 70.0)  # x from -20 to 220 clipped to the image


@pytest.mark.parametrize("shape, words", [((1, 2, 8), "output has the shape \\(1, 2, 8\\)"),
                                          ((4, 6, 8), "output has the shape \\(4, 6, 8\\)")])
def test_a_wrong_output_shape_is_one_sentence(tmp_path, shape, words):
    from asset_studio.engine.detect import load_detector

    detector = load_detector(str(save_detector(tmp_path / "odd.onnx", [[0] * 6], output_shape=shape)))
    with pytest.raises(UserError, match=words):
        detector.detect(square_image(), 0.3, [])


def test_bad_detector_files_are_one_sentence(tmp_path):
    from asset_studio.engine.detect import load_detector

    garbage = tmp_path / "face.onnx"
    garbage.write_bytes(b"\x08\x07 this is not protobuf" * 20)
    pickle = tmp_path / "face_yolov8n.pt"
    pickle.write_bytes(b"\x80\x04K\x01.")
    flat = save_detector(tmp_path / "flat.onnx", [[0] * 6], output_shape=(1, 6))
    for path, words in ((garbage, "face.onnx is not a readable ONNX model"),
                        (pickle, "face_yolov8n.pt is a pickle file, which can run code when loaded; export"),
                        (tmp_path / "missing.onnx", "is not a file"),
                        (flat, "output is not a YOLO box list"),
                        (Path(__file__), "is not an ONNX file")):
        with pytest.raises(UserError, match=words):
            load_detector(str(path))
    named_badly = save_detector(tmp_path / "names.onnx", [[0] * 6] * 8, names={0: "face", 2: "hand"})
    with pytest.raises(UserError, match="class names are not readable"):
        load_detector(str(named_badly))
