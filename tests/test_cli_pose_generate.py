"""`generate --pose` and `--pose-set`: OpenPose ControlNets follow skeletons drawn with no detector;
a pose set makes one image per pose, named by pose, with one seed for the whole character."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.core.library import read_job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_and_a_private_cache")]


@pytest.fixture(scope="module")
def pose_cn(tiny_sd15_dir, tmp_path_factory):
    import diffusers

    from tiny_controlnet import save_tiny_controlnet

    unet = diffusers.UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet")
    return save_tiny_controlnet(unet, tmp_path_factory.mktemp("cn") / "openpose")


def args(model, out, *extra):
    return ["generate", "knight", "--model", str(model), "--size", "64x64", "--steps", "1", "--device", "cpu",
            "--out", str(out), *extra]


def test_a_pose_becomes_the_control_image(tiny_sd15_dir, pose_cn, tmp_path, capsys):
    from asset_studio.core.pose import load_pose, preset, save_pose, scaled
    from asset_studio.core.pose_render import render_pose

    pose_file = save_pose(preset("run-2"), tmp_path / "run.json")
    assert main(args(tiny_sd15_dir, tmp_path / "out", "--pose", str(pose_file), "--controlnet", str(pose_cn),
                     "--seed", "4")) == 0
    [png] = (tmp_path / "out").glob("*.png")
    [unit] = read_job(png).controls
    assert unit.type == "pose"  # a pose and no layout: the ControlNet follows the pose
    drawn = np.asarray(Image.open(unit.image).convert("RGB"))
    assert np.array_equal(drawn, np.asarray(render_pose(scaled(load_pose(pose_file), 64, 64))))
    capsys.readouterr()
    assert main(args(tiny_sd15_dir, tmp_path / "out", "--pose", str(pose_file))) == 2
    assert "only followed through an OpenPose ControlNet" in capsys.readouterr().err


def test_a_pose_set_makes_one_named_image_per_pose_with_one_seed(tiny_sd15_dir, pose_cn, tmp_path, capsys):
    assert main(args(tiny_sd15_dir, tmp_path / "out", "--pose-set", "turnaround-4", "--controlnet", str(pose_cn))) == 0
    err = capsys.readouterr().err
    folder = tmp_path / "out" / "knight-turnaround-4"
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == ["knight-back.png", "knight-front.png", "knight-side.png", "knight-three-quarter.png"]
    jobs = {name: read_job(folder / name) for name in names}
    assert len({j.sampling.seed for j in jobs.values()}) == 1  # the same character in every view
    assert f"seed: {jobs['knight-front.png'].sampling.seed}" in err and str(folder) in err
    assert jobs["knight-side.png"].source.pose == "side" and "side view" in jobs["knight-side.png"].prompt.text
    controls = {j.controls[0].image for j in jobs.values()}
    assert len(controls) == 4  # each view follows its own skeleton
    # A second run never mixes with the first.
    assert main(args(tiny_sd15_dir, tmp_path / "out", "--pose-set", "turnaround-4", "--controlnet", str(pose_cn),
                     "--seed", "1")) == 0
    assert (tmp_path / "out" / "knight-turnaround-4-2" / "knight-front.png").is_file()


def test_walk_cycle_names_group_into_one_animation():
    from asset_studio.core.pose_sets import load_pose_set, output_name
    from asset_studio.core.sheet import find_animations

    names = [output_name("knight", p.name).removesuffix(".png") for p in load_pose_set("walk-8")]
    [animation] = find_animations(names)
    assert animation.frames == names
