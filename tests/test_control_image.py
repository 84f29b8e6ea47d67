"""Control images follow the layout: strokes where its text and shapes are, none elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.control_image import CONTROL_TYPES, control_from_reference, render_control
from asset_studio.core.layout import Box, Layout, ShapeElement, TextElement
from asset_studio.errors import UserError


def gray(image) -> np.ndarray:
    return np.asarray(image.convert("L")).astype(np.int32)


def inside(arr, box: Box, grow: int = 0) -> np.ndarray:
    x0, y0 = max(0, int(box.x) - grow), max(0, int(box.y) - grow)
    return arr[y0:int(box.y + box.h) + grow, x0:int(box.x + box.w) + grow]


def outside_mask(shape, boxes, grow: int) -> np.ndarray:
    mask = np.ones(shape, bool)
    for b in boxes:
        mask[max(0, int(b.y) - grow):int(b.y + b.h) + grow, max(0, int(b.x) - grow):int(b.x + b.w) + grow] = False
    return mask


def scene(text: str) -> Layout:
    return Layout(256, 128, elements=[
        TextElement(text, Box(8, 8, 150, 60), size=40, weight="bold", align="left"),
        ShapeElement("rect", box=Box(180, 20, 60, 40), fill="#808080"),
        ShapeElement("ellipse", box=Box(20, 80, 200, 40), fill=None, stroke="#ffffff", stroke_width=3),
    ])


@pytest.mark.parametrize("text", ["PLAY", "시작하기"])
@pytest.mark.parametrize("control_type", ["lineart", "scribble", "canny", "mask"])
def test_strokes_inside_each_element_and_nowhere_else(text, control_type):
    layout = scene(text)
    arr = gray(render_control(layout, control_type))
    boxes = [e.box for e in layout.elements]
    for box in boxes:
        region = inside(arr, box, grow=3)
        assert (region > 128).mean() > 0.02, f"no strokes for the element at {box}"
    assert arr[outside_mask(arr.shape, boxes, grow=6)].max() == 0


def test_hangul_renders_real_glyphs_not_boxes():
    def text_lines(text):
        layout = Layout(200, 80, elements=[TextElement(text, Box(0, 0, 200, 80), size=48)])
        return gray(render_control(layout, "mask")) > 128

    a, b = text_lines("한글"), text_lines("게임")
    assert (a != b).mean() > 0.02  # different words, different shapes
    tofu = text_lines("\ue000\ue000")
    assert (a != tofu).mean() > 0.02 and (b != tofu).mean() > 0.02
    # A filled Hangul glyph is not a hollow rectangle: its ink is not just a frame round its box.
    glyph = text_lines("한")
    ys, xs = np.nonzero(glyph)
    core = glyph[ys.min() + 4:ys.max() - 3, xs.min() + 4:xs.max() - 3]
    assert core.mean() > 0.1


def test_deterministic_and_options_change_pixels():
    layout = scene("PLAY")
    for control_type in CONTROL_TYPES:
        first = np.asarray(render_control(layout, control_type))
        assert np.array_equal(first, np.asarray(render_control(layout, control_type)))
        assert first.shape == (128, 256, 3)
    thin = gray(render_control(layout, "lineart", stroke_width=1))
    thick = gray(render_control(layout, "lineart", stroke_width=5))
    assert (thick > 128).sum() > 2 * (thin > 128).sum()
    inverted = gray(render_control(layout, "lineart", stroke_width=1, invert=True))
    assert np.array_equal(inverted, 255 - thin)
    layout.elements.append(ShapeElement("rect", box=Box(200, 70, 40, 40), fill="#101010"))  # a faint edge
    loose = gray(render_control(layout, "canny", low_threshold=10, high_threshold=20))
    strict = gray(render_control(layout, "canny", low_threshold=200, high_threshold=250))
    assert (loose > 0).sum() > (strict > 0).sum()


def test_upper_elements_hide_the_lines_below():
    under = ShapeElement("rect", box=Box(10, 10, 100, 100), fill="#ffffff")
    over = ShapeElement("rect", box=Box(30, 30, 60, 60), fill="#000000")
    lines = gray(render_control(Layout(128, 128, elements=[over, under]), "lineart", stroke_width=1))
    hidden = gray(render_control(Layout(128, 128, elements=[under, over]), "lineart", stroke_width=1))
    assert lines[30:90, 30:90].max() == 0  # the small rect is hidden under the big one
    assert hidden[30:90, 30:90].max() == 255


def test_control_size_and_bad_options():
    layout = scene("PLAY")
    assert render_control(layout, "lineart", size=(512, 256)).size == (512, 256)
    with pytest.raises(UserError, match="Unknown control type"):
        render_control(layout, "depth")
    with pytest.raises(UserError, match="thresholds"):
        render_control(layout, "canny", low_threshold=200, high_threshold=100)


def test_reference_pictures_without_a_model():
    picture = Image.new("RGB", (96, 96), "white")
    picture.paste((0, 0, 0), (30, 30, 34, 70))  # one dark vertical stroke
    for control_type in ("canny", "lineart"):
        arr = gray(control_from_reference(picture, control_type))
        assert arr[25:75, 25:40].max() > 100
        assert arr[:, 60:].max() < 30
    with pytest.raises(UserError, match="needs an annotator model"):
        control_from_reference(picture, "depth")


def test_model_annotators_name_the_missing_file_and_load_local_weights(tmp_path):
    pytest.importorskip("controlnet_aux")
    import torch

    from asset_studio.engine.annotators import control_from_reference as annotate

    picture = Image.new("RGB", (64, 48), "white")
    picture.paste((0, 0, 0), (20, 10, 26, 40))
    for control_type, filename in [("softedge", "ControlNetHED.pth"),
                                   ("depth", "dpt_hybrid-midas-501f0c75.pt"), ("lineart_anime", "netG.pth")]:
        with pytest.raises(UserError, match=filename.replace(".", r"\.")):
            annotate(picture, control_type, annotator_dir=tmp_path)
    # Random HED weights of the real architecture, saved where an artist would put the real ones.
    from controlnet_aux.hed import ControlNetHED_Apache2

    torch.manual_seed(0)
    torch.save(ControlNetHED_Apache2().state_dict(), tmp_path / "ControlNetHED.pth")
    out = annotate(picture, "softedge", annotator_dir=tmp_path)
    assert out.size == picture.size and out.mode == "RGB"
    assert np.asarray(out).std() > 0  # the network ran and drew something
    assert np.array_equal(np.asarray(annotate(picture, "canny")), np.asarray(control_from_reference(picture, "canny")))


def test_a_pose_control_image_is_detected_by_pose_detect_and_drawn_by_pose_render(tmp_path, monkeypatch):
    """A picture's pose control image runs the detector `pose from-image` chooses (DWPose stand-ins here)
    and is core/pose_render's drawing of the keypoints found; missing weights are one sentence."""
    from dwpose_standins import IMAGE_SIZE, TARGETS, only_named_folders, write_weights

    from asset_studio.core.pose_render import COLORS, render_pose
    from asset_studio.engine.annotators import control_from_reference as annotate
    from asset_studio.engine.annotators import find_weights
    from asset_studio.engine.pose_detect import detect_pose

    only_named_folders(monkeypatch)
    picture = Image.new("RGB", IMAGE_SIZE, (90, 120, 160))
    for detector in (None, "dwpose"):
        with pytest.raises(UserError, match="asset-studio models download annotator-dwpose"):
            annotate(picture, "pose", annotator_dir=tmp_path / "none", detector=detector)
    with pytest.raises(UserError, match="asset-studio models download annotator-dwpose"):
        find_weights("pose", tmp_path / "none")  # video to video's early check
    with pytest.raises(UserError, match=r"body_pose_model\.pth"):
        annotate(picture, "pose", annotator_dir=tmp_path / "none", detector="openpose")
    folder = write_weights(tmp_path / "annotators")
    assert find_weights("pose", folder) == folder
    out = annotate(picture, "pose", annotator_dir=folder)
    assert out.size == picture.size and out.mode == "RGB"
    pose = detect_pose(picture, "dwpose", annotator_dir=folder)
    assert np.array_equal(np.asarray(out), np.asarray(render_pose(pose)))
    arr = np.asarray(out)
    x, y = TARGETS["nose"]
    assert tuple(arr[y, x]) == COLORS[0]  # the nose's joint dot, in OpenPose's first colour
    assert (arr.sum(axis=2) == 0).mean() > 0.5  # on black, as ControlNet's OpenPose models saw skeletons
    inverted = np.asarray(annotate(picture, "pose", annotator_dir=folder, invert=True))
    assert np.array_equal(inverted, 255 - arr)
