"""SDXL animations on tiny random models of the real classes (a three-block SDXL UNet and an
SDXL MotionAdapter, shaped as in diffusers' AnimateDiff SDXL test), through the command line the
artist uses: the right pipeline, every frame written, and one sentence for an adapter made for
the other family or for what SDXL animations cannot do."""

from __future__ import annotations

import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread_and_a_private_cache")


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    from tiny_models import save_diffusers
    from tiny_video_models import build_sdxl_motion_adapter, build_tiny_animatable_sdxl, save_motion_adapter

    root = tmp_path_factory.mktemp("sdxl-anim")
    return {"model": save_diffusers(build_tiny_animatable_sdxl(), root / "tiny-sdxl-3"),
            "adapter": save_motion_adapter(build_sdxl_motion_adapter(), root / "mm-sdxl")}


@pytest.fixture(scope="module")
def sd15_adapter(tmp_path_factory):
    from tiny_video_models import build_motion_adapter, save_motion_adapter

    return save_motion_adapter(build_motion_adapter(), tmp_path_factory.mktemp("mm15") / "mm-sd15")


def test_an_sdxl_model_animates_with_an_sdxl_adapter_and_writes_every_frame(sdxl, tmp_path, capsys, monkeypatch):
    import diffusers

    from asset_studio.core.library import read_job

    made = []
    original = diffusers.AnimateDiffSDXLPipeline.from_pipe.__func__

    def spy(cls, *args, **kwargs):
        pipe = original(cls, *args, **kwargs)
        made.append(type(pipe).__name__)
        return pipe

    monkeypatch.setattr(diffusers.AnimateDiffSDXLPipeline, "from_pipe", classmethod(spy))
    rc = main(["animate", "a lantern swinging", "--model", str(sdxl["model"]), "--motion-adapter",
               str(sdxl["adapter"]), "--frames", "5", "--fps", "10", "--loop", "--size", "32x32", "--steps", "1",
               "--seed", "4", "--out", str(tmp_path), "--device", "cpu"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert made == ["AnimateDiffSDXLPipeline"]
    folder = tmp_path / "00001-4-a-lantern-swinging"
    assert out.out.strip().splitlines() == [str(folder)]
    frames = sorted(folder.glob("*.png"))
    assert [p.name for p in frames] == [f"a-lantern-swinging-{i:03d}.png" for i in range(5)]
    job = read_job(frames[3])
    assert job.source.frame == 3 and job.animation.loop and job.animation.fps == 10.0
    with Image.open(tmp_path / f"{folder.name}.apng") as im:
        assert im.n_frames == 5 and im.size == (32, 32)


def test_an_adapter_of_the_other_family_is_one_sentence_before_loading(sdxl, sd15_adapter, tiny_sd15_dir, capsys):
    from asset_studio.engine import animate

    rc = main(["animate", "a lantern", "--model", str(sdxl["model"]), "--motion-adapter", str(sd15_adapter),
               "--frames", "4", "--size", "32x32", "--steps", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().splitlines()[-1] == ("asset-studio: error: The motion adapter mm-sd15 is made for SD 1.5 models "
                                            "and tiny-sdxl-3 is SDXL: use an SDXL motion adapter.")
    with pytest.raises(UserError, match="mm-sdxl is made for SDXL models and tiny-sd15 is SD 1.5: use an SD 1.5"):
        animate.check_family("sd15", animate.check_adapter(str(sdxl["adapter"])), str(sdxl["adapter"]), "tiny-sd15")
    assert not any("mm-sd15" in key[0] for key in animate._adapters), "refused before the adapter loaded"


def test_sdxl_animations_refuse_pose_controlnets_by_name(sdxl, tmp_path):
    from asset_studio.core.job import Animation, ControlUnit, GenerationJob, ModelRef, Prompt, Sampling
    from asset_studio.engine.backend import LocalBackend

    job = GenerationJob(model=ModelRef(str(sdxl["model"])), prompt=Prompt("a knight walking"),
                        sampling=Sampling(steps=1, width=32, height=32, seed=1), output="animation",
                        animation=Animation(frames=4, motion_adapter=str(sdxl["adapter"])),
                        controls=[ControlUnit(model=str(tmp_path / "cn"), type="pose", image=str(tmp_path / "poses"))])
    with pytest.raises(UserError, match="SDXL animations cannot use ControlNet"):
        LocalBackend(device="cpu").check(job)
