"""`asset-studio layout ...` and `asset-studio generate --layout --controlnet` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_new_then_render_every_control_type(tmp_path, capsys):
    layout = tmp_path / "button.json"
    code, out, _ = cli(capsys, "layout", "new", layout, "--template", "button", "--text", "시작", "--size", "256x128")
    assert code == 0 and out.strip() == str(layout)
    data = json.loads(layout.read_text(encoding="utf-8"))
    assert (data["width"], data["height"]) == (256, 128)
    assert [e["text"] for e in data["elements"] if e["type"] == "text"] == ["시작"]
    arrays = {}
    for control in ("lineart", "scribble", "canny", "mask", "fill"):
        png = tmp_path / f"{control}.png"
        code, out, err = cli(capsys, "layout", "render", layout, "--control", control, "--out", png)
        assert code == 0, err
        with Image.open(png) as im:
            assert im.size == (256, 128)
            arrays[control] = np.asarray(im.convert("L"))
    assert arrays["lineart"][0:10, :].max() == 0 and arrays["lineart"].max() == 255
    code, _, _ = cli(capsys, "layout", "render", layout, "--control", "lineart", "--invert", "--stroke-width", "1",
                     "--size", "512x256", "--out", tmp_path / "inv.png")
    with Image.open(tmp_path / "inv.png") as im:
        assert im.size == (512, 256) and np.asarray(im.convert("L"))[0:10, :].min() == 255


def test_bad_layout_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"width": 64, "height": 64, "elements": [{"type": "text", "text": "x", "box": [0, 0, 8, 8],
                                                                         "font": "Nope Sans 3000"}]}))
    code, _, err = cli(capsys, "layout", "render", bad, "--out", tmp_path / "x.png")
    assert code == 2 and "Nope Sans 3000" in err and "Traceback" not in err and err.count("\n") == 1
    code, _, err = cli(capsys, "layout", "new", tmp_path / "n.json", "--template", "castle")
    assert code == 2 and "no layout template 'castle'" in err


def test_reference_pictures(tmp_path, capsys):
    picture = tmp_path / "ref.png"
    im = Image.new("RGB", (64, 64), "white")
    im.paste((0, 0, 0), (20, 10, 24, 54))
    im.save(picture)
    code, _, err = cli(capsys, "layout", "reference", picture, "--control", "canny", "--out", tmp_path / "c.png")
    assert code == 0, err
    code, _, err = cli(capsys, "layout", "reference", picture, "--control", "canny", "--detector", "dwpose",
                       "--out", tmp_path / "c2.png")
    assert code == 2 and "--control pose" in err and not (tmp_path / "c2.png").exists()


def test_reference_pose_is_the_pose_from_image_drawn(tmp_path, capsys, monkeypatch):
    """`layout reference --control pose` finds the pose as `pose from-image` does (DWPose stand-ins) and draws
    it as `pose render` does: the same picture gives the same PNG either way."""
    from dwpose_standins import IMAGE_SIZE, only_named_folders, write_weights

    only_named_folders(monkeypatch)
    picture = tmp_path / "photo.png"
    Image.new("RGB", IMAGE_SIZE, (90, 120, 160)).save(picture)
    for extra in ([], ["--detector", "dwpose"]):
        code, _, err = cli(capsys, "layout", "reference", picture, "--control", "pose", "--annotators",
                           tmp_path / "none", *extra, "--out", tmp_path / "p.png")
        assert code == 2 and "asset-studio models download annotator-dwpose" in err and err.count("\n") == 1, err
    code, _, err = cli(capsys, "layout", "reference", picture, "--control", "pose", "--annotators", tmp_path / "none",
                       "--detector", "openpose", "--out", tmp_path / "p.png")
    assert code == 2 and "body_pose_model.pth" in err and "Traceback" not in err
    assert not (tmp_path / "p.png").exists()
    folder = write_weights(tmp_path / "annotators")
    code, _, err = cli(capsys, "layout", "reference", picture, "--control", "pose", "--annotators", folder,
                       "--out", tmp_path / "p.png")
    assert code == 0, err
    for argv in (["pose", "from-image", picture, "--out", tmp_path / "p.json", "--annotators", folder],
                 ["pose", "render", tmp_path / "p.json", "--out", tmp_path / "rendered.png"]):
        code, _, err = cli(capsys, *argv)
        assert code == 0, err
    with Image.open(tmp_path / "p.png") as ref, Image.open(tmp_path / "rendered.png") as rendered:
        a, b = np.asarray(ref.convert("RGB")), np.asarray(rendered.convert("RGB"))
    from asset_studio.core.pose_render import render_pose
    from asset_studio.engine.pose_detect import detect_pose

    with Image.open(picture) as im:
        drawn = np.asarray(render_pose(detect_pose(im.convert("RGB"), annotator_dir=folder)))
    assert a.shape == (IMAGE_SIZE[1], IMAGE_SIZE[0], 3) and a.any()
    assert np.array_equal(a, drawn)
    # Through the JSON (which keeps 0.01 px) a joint may truncate to the next pixel: a few edge pixels at most.
    assert (a != b).any(axis=2).sum() <= 0.01 * a.any(axis=2).sum()


def test_crisp_text_draws_the_layout_text_on_top(tmp_path, capsys):
    layout = tmp_path / "l.json"
    cli(capsys, "layout", "new", layout, "--template", "button", "--text", "OK")
    generated = tmp_path / "gen.png"
    Image.new("RGB", (256, 128), (90, 140, 60)).save(generated)  # half the layout's size
    code, _, err = cli(capsys, "layout", "crisp", generated, layout, "--out", tmp_path / "crisp.png")
    assert code == 0, err
    with Image.open(tmp_path / "crisp.png") as im:
        arr = np.asarray(im.convert("RGB")).astype(int)
    assert im.size == (256, 128)
    centre = arr[40:90, 90:170]
    assert (centre.min(axis=2) > 230).mean() > 0.1  # white letters in the middle
    assert (arr[:, :20] == [90, 140, 60]).all()  # the edges are untouched


@pytest.mark.slow
def test_generate_follows_a_layout_through_controlnet(tmp_path, capsys, tiny_sd15_dir):
    import diffusers

    from tiny_controlnet import save_tiny_controlnet

    if not (tiny_sd15_dir / "unet").is_dir():
        pytest.skip("the tiny SD1.5 folder has no unet")
    unet = diffusers.UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet")
    cn_dir = save_tiny_controlnet(unet, tmp_path / "tiny-cn")
    layout = tmp_path / "play.json"
    cli(capsys, "layout", "new", layout, "--template", "button", "--size", "128x64")
    outputs = {}
    for scale in ("1.0", "0.0"):
        out_dir = tmp_path / f"out-{scale}"
        code, out, err = cli(capsys, "generate", "PLAY", "--layout", layout, "--controlnet", cn_dir, "--control", "lineart",
                             "--control-scale", scale, "--model", tiny_sd15_dir, "--size", "128x64", "--steps", "2",
                             "--seed", "3", "--out", out_dir)
        assert code == 0, err
        pngs = [line for line in out.split() if line.endswith(".png") and "control-" not in line]
        assert pngs, out
        with Image.open(pngs[0]) as im:
            outputs[scale] = np.asarray(im.convert("RGB")).astype(int)
        assert list((out_dir / ".controls").glob("control-lineart-*.png"))  # beside the outputs, out of the gallery
    code, out, err = cli(capsys, "generate", "PLAY", "--model", tiny_sd15_dir, "--size", "128x64", "--steps", "2",
                         "--seed", "3", "--out", tmp_path / "plain")
    assert code == 0, err
    plain = [line for line in out.split() if line.endswith(".png")][0]
    with Image.open(plain) as im:
        plain = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(outputs["0.0"] - plain).mean() < 1.0  # scale 0: as if there were no ControlNet
    assert np.abs(outputs["1.0"] - plain).mean() > 1.0
