"""`asset-studio animate` and `asset-studio video2video` on tiny models: the folder printed, the
frames and previews in it, a sheet from it, motion LoRAs reaching the motion modules, and the
refusals that come before any model loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main

pytestmark = pytest.mark.usefixtures("one_thread_and_a_private_cache")


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from tiny_video_models import build_motion_adapter, save_motion_adapter

    return save_motion_adapter(build_motion_adapter(), tmp_path_factory.mktemp("mm") / "mm")


@pytest.fixture(scope="module")
def motion_lora(tmp_path_factory, tiny_sd15_dir, adapter):
    """A LoRA on the motion modules only (what camera-move LoRAs are), random so it changes the motion."""
    from tiny_video_models import save_motion_lora

    return save_motion_lora(tiny_sd15_dir / "unet", adapter, tmp_path_factory.mktemp("lora") / "zoom-in.safetensors")


def animate(capsys, *args) -> tuple[int, str, str]:
    rc = main(["animate", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def frames_of(folder):
    return [np.asarray(Image.open(p), np.float32) for p in sorted(folder.glob("*.png"))]


def test_animate_prints_the_folder_that_sheet_packs_as_one_animation(tiny_sd15_dir, adapter, tmp_path, capsys):
    rc, out, err = animate(capsys, "a slime bouncing", "--model", tiny_sd15_dir, "--motion-adapter", adapter,
                           "--frames", 4, "--fps", 5, "--loop", "--size", "32x32", "--steps", 1, "--seed", 9,
                           "--out", tmp_path)
    assert rc == 0, err
    folder = tmp_path / "00001-9-a-slime-bouncing"
    assert out.strip().splitlines() == [str(folder)]
    assert sorted(p.name for p in folder.iterdir()) == [f"a-slime-bouncing-{i:03d}.png" for i in range(4)]
    assert (tmp_path / f"{folder.name}.gif").is_file() and (tmp_path / f"{folder.name}.apng").is_file()
    assert main(["sheet", str(folder), "--format", "godot4", "--out", str(tmp_path / "slime.png")]) == 0
    tres = (tmp_path / "slime.tres").read_text()
    assert tres.count('"name": &') == 1 and '&"a-slime-bouncing"' in tres
    assert '"speed": 5.0' in tres and '"loop": true' in tres
    # rerun of one frame's PNG: the whole animation again, in a new folder beside the first
    capsys.readouterr()
    assert main(["rerun", str(folder / "a-slime-bouncing-002.png")]) == 0
    again = tmp_path / "00002-9-a-slime-bouncing"
    assert capsys.readouterr().out.strip() == str(again)
    assert (again / "a-slime-bouncing-002.png").read_bytes() != b"" and len(list(again.glob("*.png"))) == 4
    assert np.array_equal(frames_of(again)[2], frames_of(folder)[2])


def test_preview_picks_the_files_written_beside_the_frames(tiny_sd15_dir, adapter, tmp_path, capsys):
    from asset_studio.core.library import read_job

    rc, out, err = animate(capsys, "a bat", "--model", tiny_sd15_dir, "--motion-adapter", adapter, "--frames", 2,
                           "--size", "32x32", "--steps", 1, "--seed", 3, "--out", tmp_path, "--preview", "webp",
                           "--preview", "apng")
    assert rc == 0, err
    folder = tmp_path / "00001-3-a-bat"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [f"{folder.name}.apng", f"{folder.name}.webp"]
    assert read_job(folder / "a-bat-001.png").animation.previews == ["webp", "apng"]


def test_motion_loras_reach_the_motion_modules_with_their_weight(tiny_sd15_dir, adapter, motion_lora, tmp_path, capsys):
    common = ["a slime", "--model", tiny_sd15_dir, "--motion-adapter", adapter, "--frames", 4, "--size", "32x32",
              "--steps", 1, "--seed", 4]
    results = {}
    for label, extra in (("none", []), ("full", ["--motion-lora", f"{motion_lora}:1.0"]),
                         ("off", ["--motion-lora", f"{motion_lora}:0"])):
        rc, out, err = animate(capsys, *common, *extra, "--out", tmp_path / label)
        assert rc == 0, err
        results[label] = frames_of(tmp_path / label / out.strip())
    diff = max(np.abs(a - b).max() for a, b in zip(results["none"], results["full"]))
    same = max(np.abs(a - b).max() for a, b in zip(results["none"], results["off"]))
    assert diff > 1 and same <= 1


@pytest.mark.parametrize("args, words", [
    (["a slime", "--model", "m"], "motion adapter"),
    (["--image", "sprite.png"], "--svd"),
    (["a slime", "--model", "m", "--motion-adapter", "a", "--motion", "0.5"], "--motion is Stable Video"),
    (["a slime", "--model", "m", "--motion-adapter", "a", "--controlnet", "cn"], "--pose-set"),
    (["a slime", "--model", "m", "--motion-adapter", "a", "--motion-lora", "x.safetensors:strong"], "PATH:WEIGHT"),
])
def test_animate_refusals_are_one_sentence(args, words, tmp_path, capsys):
    rc, out, err = animate(capsys, *args, "--out", tmp_path)
    assert rc == 2 and words in err and "Traceback" not in err


def test_impossible_frame_counts_are_refused(tiny_sd15_dir, adapter, tmp_path, capsys):
    rc, _, err = animate(capsys, "a slime", "--model", tiny_sd15_dir, "--motion-adapter", adapter, "--frames", 5000,
                         "--out", tmp_path)
    assert rc == 2 and "1 to 1024 frames" in err
    rc, _, err = animate(capsys, "a slime", "--model", tiny_sd15_dir, "--motion-adapter", adapter, "--frames", 40,
                         "--context", 64, "--out", tmp_path)
    assert rc == 2 and "at most 32 frames at once" in err


def test_video2video_redraws_a_gif_into_a_frames_folder_and_videos(tiny_sd15_dir, adapter, tmp_path, capsys):
    from diffusers import UNet2DConditionModel
    from tiny_controlnet import save_tiny_controlnet

    from asset_studio.engine.video_io import gif_bytes

    cn = save_tiny_controlnet(UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet"), tmp_path / "cn")
    frames = []
    for i in range(5):
        im = Image.new("RGB", (48, 32), (250, 250, 250))
        im.paste((20, 20, 20), (4 + 5 * i, 8, 14 + 5 * i, 28))
        frames.append(im)
    (tmp_path / "run.gif").write_bytes(gif_bytes(frames, 10.0))
    rc = main(["video2video", str(tmp_path / "run.gif"), "a knight running", "--model", str(tiny_sd15_dir),
               "--motion-adapter", str(adapter), "--controlnet", str(cn), "--control", "lineart",
               "--batch-frames", "4", "--overlap", "2", "--steps", "2", "--seed", "1", "--size", "48x32",
               "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    folder = tmp_path / "out" / out.strip()
    assert len(list(folder.glob("*.png"))) == 5
    assert Image.open(next(folder.glob("*.png"))).size == (48, 32)
    assert {p.suffix for p in (tmp_path / "out").iterdir() if p.is_file()} == {".gif", ".apng", ".mp4", ".webm"}
    from asset_studio.core.library import read_job

    job = read_job(next(folder.glob("*.png")))
    assert job.animation.video.batch_frames == 4 and job.animation.fps == 10.0 and job.controls[0].type == "lineart"


def test_frames_default_to_the_videos_aspect_512_on_the_longer_side():
    from asset_studio.core.animation import fit_size

    assert fit_size(48, 32) == (512, 344) and fit_size(1080, 1920) == (288, 512)


def test_video2video_refuses_a_broken_video_before_loading(tmp_path, capsys):
    (tmp_path / "clip.webm").write_bytes(b"\x1aE\xdf\xa3 broken")
    rc = main(["video2video", str(tmp_path / "clip.webm"), "a knight", "--model", "m", "--motion-adapter", "a",
               "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "clip.webm is not a readable video" in err
