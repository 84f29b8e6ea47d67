"""DWPose through onnxruntime: tiny ONNX stand-ins with the real files' names and shapes, the user's path."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.core.pose import KEYPOINTS

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from dwpose_standins import (  # noqa: E402  (after the skips: the stand-ins need torch and onnx)
    COCO, IMAGE_SIZE, LOW, TARGETS, Constant, export, expected_openpose, only_named_folders, simcc, write_weights)


@pytest.fixture
def no_other_weights(monkeypatch):
    only_named_folders(monkeypatch)


def test_from_image_with_dwpose_gives_the_openpose_18(tmp_path, capsys, no_other_weights):
    folder = write_weights(tmp_path / "annotators")
    Image.new("RGB", IMAGE_SIZE, (90, 120, 160)).save(tmp_path / "photo.png")
    # No --detector: DWPose is the default when its weights are there.
    code = main(["pose", "from-image", str(tmp_path / "photo.png"), "--out", str(tmp_path / "pose.json"),
                 "--annotators", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "(1 person)" in out
    data = json.loads((tmp_path / "pose.json").read_text(encoding="utf-8"))
    assert (data["canvas_width"], data["canvas_height"]) == IMAGE_SIZE and len(data["people"]) == 1
    flat = data["people"][0]["pose_keypoints_2d"]
    got = {KEYPOINTS[k]: (flat[3 * k], flat[3 * k + 1]) for k in range(18) if flat[3 * k + 2] > 0}
    want = expected_openpose()
    assert set(got) == set(want)  # left ear and right ankle hidden, the neck made from the shoulders
    for name, point in want.items():
        assert math.dist(got[name], point) <= 1.0, (name, got[name], point)


def test_dwpose_hides_the_neck_when_a_shoulder_is_unsure():
    from asset_studio.engine.dwpose import to_openpose

    points = np.array([TARGETS[n] for n in COCO], np.float32)
    scores = np.full(17, 0.9, np.float32)
    scores[6] = 0.25  # right shoulder
    skeleton = to_openpose(points, scores)
    assert skeleton[KEYPOINTS.index("neck")] is None and skeleton[KEYPOINTS.index("right shoulder")] is None
    assert skeleton[KEYPOINTS.index("left shoulder")] == TARGETS["left shoulder"]


def test_dwpose_finds_nobody_in_an_empty_picture(tmp_path, capsys, no_other_weights):
    folder = tmp_path / "annotators"
    folder.mkdir()
    export(Constant(np.zeros((1, 8400, 85), np.float32)), (1, 3, 640, 640), folder / "yolox_l.onnx",
           "input", ["output"])
    sx, sy = simcc()
    export(Constant(sx, sy), (1, 3, 384, 288), folder / "dw-ll_ucoco_384.onnx", "input", ["simcc_x", "simcc_y"])
    Image.new("RGB", (64, 48), "white").save(tmp_path / "a.png")
    code = main(["pose", "from-image", str(tmp_path / "a.png"), "--out", str(tmp_path / "a.json"),
                 "--annotators", str(folder), "--detector", "dwpose"])
    _, err = capsys.readouterr()
    assert code == 2 and "found no person" in err and not (tmp_path / "a.json").exists()


def test_missing_dwpose_weights_name_the_download(tmp_path, capsys, no_other_weights):
    Image.new("RGB", (64, 64), "white").save(tmp_path / "a.png")
    for extra in ([], ["--detector", "dwpose"]):
        code = main(["pose", "from-image", str(tmp_path / "a.png"), "--out", str(tmp_path / "a.json"),
                     "--annotators", str(tmp_path / "none"), *extra])
        _, err = capsys.readouterr()
        assert code == 2 and "asset-studio models download annotator-dwpose" in err, err
        assert "yolox_l.onnx" in err and err.count("\n") == 1
    # One of the two files is not enough; the sentence names the other.
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "yolox_l.onnx").write_bytes(b"x")
    code = main(["pose", "from-image", str(tmp_path / "a.png"), "--out", str(tmp_path / "a.json"),
                 "--annotators", str(folder)])
    _, err = capsys.readouterr()
    assert code == 2 and "dw-ll_ucoco_384.onnx" in err


def test_a_broken_onnx_file_is_one_sentence(tmp_path, capsys, no_other_weights):
    folder = tmp_path / "annotators"
    folder.mkdir()
    (folder / "yolox_l.onnx").write_bytes(b"not an onnx file")
    (folder / "dw-ll_ucoco_384.onnx").write_bytes(b"not an onnx file")
    Image.new("RGB", (64, 64), "white").save(tmp_path / "a.png")
    code = main(["pose", "from-image", str(tmp_path / "a.png"), "--out", str(tmp_path / "a.json"),
                 "--annotators", str(folder)])
    _, err = capsys.readouterr()
    assert code == 2 and "Could not load the DWPose network" in err


def test_openpose_is_chosen_when_only_its_weights_are_there(tmp_path, no_other_weights):
    from asset_studio.engine.pose_detect import choose_detector

    folder = tmp_path / "annotators"
    folder.mkdir()
    assert choose_detector(folder) == "dwpose"  # nothing there: DWPose's sentence names the download
    (folder / "body_pose_model.pth").write_bytes(b"x")
    assert choose_detector(folder) == "openpose"
    write_weights(folder)
    assert choose_detector(folder) == "dwpose"


def test_no_default_catalog_entry_is_non_commercial():
    from asset_studio.core.models import load_catalog

    entries = load_catalog()
    for entry in entries:
        licence = entry.license.lower().replace("-", "").replace(" ", "")
        assert "noncommercial" not in licence and not licence.startswith("ccby-nc"), entry.id
        assert "cc-by-nc" not in entry.license.lower(), entry.id
    dwpose = next(e for e in entries if e.id == "annotator-dwpose")
    assert dwpose.repo == "yzd-v/DWPose" and dwpose.license == "apache-2.0"
    assert sorted(dwpose.allow_patterns) == sorted(dwpose.sha256) == ["dw-ll_ucoco_384.onnx", "yolox_l.onnx"]
    assert "annotator-openpose-body" not in {e.id for e in entries}


# ---- stand-ins that look at the picture: colour order, letterbox, crop and normalisation -------------

BLUE_RECT = (120, 50, 260, 280)  # on a 400x300 picture: letterboxed by 1.6, grey below
# Each COCO body point as a fraction of the blue rectangle (the pose stand-in puts it there in its crop).
FRACTIONS = [(0.5, 0.08), (0.56, 0.05), (0.44, 0.05), (0.62, 0.07), (0.38, 0.07), (0.75, 0.2), (0.25, 0.2),
             (0.85, 0.35), (0.15, 0.35), (0.9, 0.5), (0.1, 0.5), (0.65, 0.55), (0.35, 0.55),
             (0.66, 0.75), (0.34, 0.75), (0.67, 0.95), (0.33, 0.95)]


def _span(mask_1d, n):
    """(first, one past the last) index where MASK_1D is set."""
    first = torch.argmax(mask_1d)
    last = n - torch.argmax(torch.flip(mask_1d, [0]))
    return first.float(), last.float()


class FindBlueYolox(torch.nn.Module):
    """YOLOX-shaped output whose one person box is the pure blue area: blue is channel 0 in BGR."""

    def forward(self, x):
        mask = ((x[0, 0] > 200) & (x[0, 1] < 50) & (x[0, 2] < 50)).float()
        x0, x1 = _span(mask.amax(0), 640)
        y0, y1 = _span(mask.amax(1), 640)
        stride, g = 32.0, 10.0
        head = torch.stack([(x0 + x1) / 2 / stride - g, (y0 + y1) / 2 / stride - g,
                            torch.log((x1 - x0) / stride), torch.log((y1 - y0) / stride),
                            0.95 * mask.amax(), torch.tensor(0.9)])  # no blue: nobody
        row = torch.cat([head, torch.zeros(79)])[None]
        index = 8000 + 10 * 20 + 10
        return torch.cat([torch.zeros(index, 85), row, torch.zeros(8400 - index - 1, 85)])[None] + x.mean() * 0


class FindBluePose(torch.nn.Module):
    """SimCC peaks at FRACTIONS of the blue area in the crop: blue is channel 2 of normalised RGB."""

    def forward(self, x):
        mask = ((x[0, 2] > 2.0) & (x[0, 0] < -1.5) & (x[0, 1] < -1.5)).float()
        x0, x1 = _span(mask.amax(0), 288)
        y0, y1 = _span(mask.amax(1), 384)
        fx = torch.tensor([f[0] for f in FRACTIONS] + [0.5] * 116)
        fy = torch.tensor([f[1] for f in FRACTIONS] + [0.5] * 116)
        px = torch.round((x0 + fx * (x1 - x0)) * 2)  # SimCC bins: half a crop pixel each
        py = torch.round((y0 + fy * (y1 - y0)) * 2)
        sx = (torch.arange(576).float()[None] == px[:, None]).float() * 0.9
        sy = (torch.arange(768).float()[None] == py[:, None]).float() * 0.9
        return sx[None], sy[None]


def test_dwpose_reads_the_picture_in_the_networks_colour_order_and_frames(tmp_path, capsys, no_other_weights):
    from PIL import ImageDraw

    folder = tmp_path / "annotators"
    folder.mkdir()
    export(FindBlueYolox(), (1, 3, 640, 640), folder / "yolox_l.onnx", "input", ["output"])
    export(FindBluePose(), (1, 3, 384, 288), folder / "dw-ll_ucoco_384.onnx", "input", ["simcc_x", "simcc_y"])
    image = Image.new("RGB", (400, 300), (128, 128, 128))
    ImageDraw.Draw(image).rectangle((BLUE_RECT[0], BLUE_RECT[1], BLUE_RECT[2] - 1, BLUE_RECT[3] - 1), fill=(0, 0, 255))
    image.save(tmp_path / "photo.png")
    code = main(["pose", "from-image", str(tmp_path / "photo.png"), "--out", str(tmp_path / "pose.json"),
                 "--annotators", str(folder), "--detector", "dwpose"])
    _, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads((tmp_path / "pose.json").read_text(encoding="utf-8"))
    assert (data["canvas_width"], data["canvas_height"]) == (400, 300) and len(data["people"]) == 1
    flat = data["people"][0]["pose_keypoints_2d"]
    got = {KEYPOINTS[k]: (flat[3 * k], flat[3 * k + 1]) for k in range(18) if flat[3 * k + 2] > 0}
    x0, y0, x1, y1 = BLUE_RECT
    want = {name: (x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)) for name, (fx, fy) in zip(COCO, FRACTIONS)}
    want["neck"] = tuple((a + b) / 2 for a, b in zip(want["left shoulder"], want["right shoulder"]))
    assert set(got) == set(KEYPOINTS)
    for name, point in want.items():
        assert math.dist(got[name], point) <= 2.0, (name, got[name], point)
