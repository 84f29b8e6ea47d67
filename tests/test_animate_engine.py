"""Animations end to end on tiny random models of the real classes (AnimateDiff's MotionAdapter
and UNetMotionModel, Stable Video Diffusion's spatio-temporal UNet and temporal VAE): frame
counts, loop wiring, context windows, frames and previews on disk, a frame's PNG re-running its
animation, video to video in overlapping batches, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.job import Animation, GenerationJob, ImageToVideo, InitImage, ModelRef, Prompt, Sampling, VideoSource
from asset_studio.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread_and_a_private_cache")


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    from tiny_video_models import build_motion_adapter, save_motion_adapter, save_motion_adapter_file

    root = tmp_path_factory.mktemp("motion")
    return {
        "folder": save_motion_adapter(build_motion_adapter(), root / "mm"),
        "file": save_motion_adapter_file(build_motion_adapter(), root / "mm_sd_v15_tiny.safetensors"),
        "short": save_motion_adapter(build_motion_adapter(max_seq=8), root / "mm-short"),
    }


@pytest.fixture(scope="module")
def backend():
    from asset_studio.engine.backend import LocalBackend

    return LocalBackend(device="cpu")


def job_for(model, adapter, frames=4, cfg=7.0, **animation) -> GenerationJob:
    return GenerationJob(model=ModelRef(str(model)), prompt=Prompt("a knight walking"),
                         sampling=Sampling(steps=1, width=32, height=32, seed=11, cfg_scale=cfg), output="animation",
                         animation=Animation(frames=frames, fps=6.0, motion_adapter=str(adapter), **animation))


def test_text_to_animation_saves_every_frame_with_its_job_then_previews(tiny_sd15_dir, adapters, backend, tmp_path):
    from asset_studio.core.library import read_job
    from asset_studio.service import run_job

    events = []
    result = run_job(job_for(tiny_sd15_dir, adapters["folder"]), backend, tmp_path, on_event=events.append)
    [folder] = result.animations
    assert [s.frame for s in result.saved] == [0, 1, 2, 3]
    assert [s.raw.name for s in result.saved] == [f"a-knight-walking-{i:03d}.png" for i in range(4)]
    assert all(s.raw.parent == folder for s in result.saved)
    for i, saved in enumerate(result.saved):
        job = read_job(saved.raw)
        assert job.source.frame == i and job.animation.frames == 4 and job.output == "animation"
    assert result.saved[-1].previews == [tmp_path / f"{folder.name}.gif", tmp_path / f"{folder.name}.apng"]
    assert not any(s.previews for s in result.saved[:-1])  # previews come with the last frame
    with Image.open(result.saved[-1].previews[0]) as gif:
        assert gif.n_frames == 4
    # The PNG of frame 2 re-runs its whole animation, and that frame comes out the same.
    again = run_job(read_job(result.saved[2].raw), backend, tmp_path / "again")
    assert np.array_equal(np.asarray(Image.open(again.saved[2].raw)), np.asarray(Image.open(result.saved[2].raw)))


def test_a_single_file_adapter_in_animatediffs_names_loads_as_the_folder(adapters):
    import torch

    from asset_studio.engine.animate import load_adapter

    a = load_adapter(str(adapters["folder"]), "cpu", torch.float32).state_dict()
    a = {k: v.clone() for k, v in a.items()}
    b = load_adapter(str(adapters["file"]), "cpu", torch.float32).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loop_puts_the_end_before_the_start_in_every_motion_module(tiny_sd15_dir, adapters, backend, tmp_path):
    from asset_studio.engine import animate
    from asset_studio.service import run_job

    motion = animate.motion_pipeline(backend.load(job_for(tiny_sd15_dir, adapters["folder"])), str(adapters["folder"]),
                                     backend.device, backend.dtype)
    modules = list(animate.motion_modules(motion.unet))

    def inputs_of_motion_modules(job, out):
        seen = []

        def hook(module, args, kwargs):
            seen.append((args[0] if args else next(iter(kwargs.values()))).detach().clone())

        hooks = [m.proj_in.register_forward_pre_hook(hook, with_kwargs=True) for m in modules]
        try:
            run_job(job, backend, out)
        finally:
            for h in hooks:
                h.remove()
        return seen

    looped = inputs_of_motion_modules(job_for(tiny_sd15_dir, adapters["folder"], frames=6, loop=True), tmp_path / "a")
    pad = animate.loop_padding(6, 16)
    assert pad == 3 and len(looped) == len(modules)  # one step: each module once
    for x in looped:  # (pixels, frames, channels): f3 f4 f5 | f0 … f5 | f0 f1 f2
        assert x.shape[1] == 6 + 2 * pad
        assert torch_equal(x[:, :pad], x[:, 6:6 + pad])  # the end leads into the start
        assert torch_equal(x[:, pad + 6:], x[:, pad:2 * pad])  # and the start follows the end
    assert all("forward" not in vars(m) for m in modules)  # released: the class's forward again
    plain = inputs_of_motion_modules(job_for(tiny_sd15_dir, adapters["folder"], frames=6), tmp_path / "b")
    assert {x.shape[1] for x in plain} == {6}


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.allclose(a, b))


def test_more_frames_than_the_window_slide_context_windows(tiny_sd15_dir, adapters, backend, tmp_path):
    from asset_studio.service import run_job

    # This adapter's positional table holds 8 frames: 12 frames run through FreeNoise windows of 8.
    result = run_job(job_for(tiny_sd15_dir, adapters["short"], frames=12), backend, tmp_path)
    assert [s.frame for s in result.saved] == list(range(12))
    motion = backend.load(job_for(tiny_sd15_dir, adapters["short"]))
    from diffusers.models.attention import FreeNoiseTransformerBlock

    unet = next(p for k, p in motion.derived.items() if isinstance(k, tuple)).unet
    assert not any(isinstance(m, FreeNoiseTransformerBlock) for m in unet.modules())  # off again after the job


def test_a_context_beyond_the_adapter_is_refused_before_loading(tiny_sd15_dir, adapters, backend):
    job = job_for(tiny_sd15_dir, adapters["short"], frames=24, context=16)
    with pytest.raises(UserError, match="at most 8 frames at once"):
        backend.check(job)


def test_missing_and_pickled_adapters_are_one_sentence(tiny_sd15_dir, backend, tmp_path):
    (tmp_path / "mm.ckpt").write_bytes(b"x")
    for ref, words in ((tmp_path / "nope", "not found"), (tmp_path / "mm.ckpt", "pickle"),
                       ("someone/not-cached-adapter", "not in the local Hugging Face cache")):
        with pytest.raises(UserError, match=words):
            backend.check(job_for(tiny_sd15_dir, ref))


def test_animations_refuse_what_they_cannot_do_yet(tiny_sd15_dir, tiny_sdxl_dir, adapters, backend):
    job = job_for(tiny_sd15_dir, adapters["folder"])
    job.tiling = "x"
    with pytest.raises(UserError, match="seamless tiling"):
        backend.check(job)
    with pytest.raises(UserError, match="made for SD 1.5 models and tiny-sdxl is SDXL: use an SDXL motion adapter"):
        backend.check(job_for(tiny_sdxl_dir, adapters["folder"]))


def test_a_cancel_keeps_the_frames_already_saved(tiny_sd15_dir, adapters, backend, tmp_path):
    from asset_studio.service import run_job

    asked = []

    def should_cancel():  # asked before the run, before each animation, at each step and before each frame's decode
        asked.append(1)
        return len(asked) >= 6

    result = run_job(job_for(tiny_sd15_dir, adapters["folder"], frames=6), backend, tmp_path, should_cancel=should_cancel)
    assert result.cancelled and 0 < len(result.saved) < 6
    assert all(s.raw.is_file() for s in result.saved) and not any(s.previews for s in result.saved)


def test_pose_sequence_steers_every_frame_through_controlnet(tiny_sd15_dir, adapters, backend, tmp_path):
    from diffusers import UNet2DConditionModel
    from tiny_controlnet import save_tiny_controlnet

    from asset_studio.core.request import AssetRequest, ControlRequest, Overrides, prepare
    from asset_studio.service import run_job

    cn = save_tiny_controlnet(UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet"), tmp_path / "cn")
    request = AssetRequest(subject="a knight walking", model=str(tiny_sd15_dir),
                           overrides=Overrides(width=32, height=32, steps=1, seed=3),
                           controls=[ControlRequest(model=str(cn), type="pose")],
                           animation=Animation(frames=8, fps=8.0, motion_adapter=str(adapters["folder"])),
                           output="animation", pose_frames="walk-8")
    job = prepare(request, tmp_path)
    [unit] = job.controls
    controls = sorted((tmp_path / ".controls").glob("walk-8-32x32-8/*.png"))
    assert unit.image == str(controls[0].parent) and len(controls) == 8
    assert len({Image.open(p).tobytes() for p in controls}) == 8  # eight different skeletons
    result = run_job(job, backend, tmp_path)
    assert len(result.saved) == 8


def test_video_to_video_in_overlapping_batches_cut_out_per_frame(tiny_sd15_dir, adapters, backend, tmp_path):
    from asset_studio.engine.video_io import gif_bytes
    from asset_studio.service import run_job

    src = tmp_path / "walk.gif"
    # a white background with a dark figure moving across (a GIF merges identical frames)
    frames = []
    for i in range(7):
        im = Image.new("RGB", (40, 40), (255, 255, 255))
        im.paste((30, 30, 90), (5 + 3 * i, 10, 15 + 3 * i, 30))
        frames.append(im)
    src.write_bytes(gif_bytes(frames, 8.0))
    job = job_for(tiny_sd15_dir, adapters["folder"], frames=7,
                  video=VideoSource(path=str(src), denoise=0.5, batch_frames=4, overlap=2))
    job.output = "video"
    job.finishing.remove_background, job.finishing.method = True, "key"
    result = run_job(job, backend, tmp_path / "out")
    assert [s.frame for s in result.saved] == list(range(7))
    assert all(s.sprite is not None and s.sprite.parent.name == "sprites" for s in result.saved)
    assert Image.open(result.saved[0].sprite).mode == "RGBA"
    assert sorted(p.suffix for p in result.saved[-1].previews) == [".apng", ".gif", ".mp4", ".webm"]


def test_video_to_video_refuses_bad_files_and_short_videos(tiny_sd15_dir, adapters, backend, tmp_path):
    from asset_studio.service import run_job

    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00" * 64)
    job = job_for(tiny_sd15_dir, adapters["folder"], frames=4, video=VideoSource(path=str(bad), batch_frames=4, overlap=1))
    with pytest.raises(UserError, match="clip.mp4 is not a readable video"):
        backend.check(job)
    from asset_studio.engine.video_io import gif_bytes

    short = tmp_path / "short.gif"
    short.write_bytes(gif_bytes([Image.new("RGB", (32, 32), (i * 50, 0, 0)) for i in range(3)], 8.0))
    job.animation.video.path = str(short)
    with pytest.raises(UserError, match="has 3 frames, fewer than the 4"):
        run_job(job, backend, tmp_path / "out")


@pytest.fixture(scope="module")
def tiny_svd_dir(tmp_path_factory):
    from tiny_video_models import build_tiny_svd

    folder = tmp_path_factory.mktemp("svd") / "tiny-svd"
    build_tiny_svd().save_pretrained(folder, safe_serialization=True)
    return folder


def test_image_to_video_decodes_in_chunks_and_saves_each_frame(tiny_svd_dir, backend, tmp_path):
    from asset_studio.service import run_job

    sprite = tmp_path / "sprite.png"
    Image.new("RGB", (32, 32), (200, 120, 40)).save(sprite)
    job = GenerationJob(model=ModelRef(str(tiny_svd_dir)), prompt=Prompt(""), init=InitImage(str(sprite)),
                        sampling=Sampling(steps=1, width=32, height=32, seed=2, cfg_scale=2.0), output="animation",
                        animation=Animation(frames=3, fps=6.0, method="svd", svd=ImageToVideo(decode_chunk=2)))
    result = run_job(GenerationJob.from_json(job.to_json()), backend, tmp_path / "out")
    assert [s.frame for s in result.saved] == [0, 1, 2]
    assert Image.open(result.saved[0].raw).size == (32, 32)
    job.animation.loop = True
    with pytest.raises(UserError, match="cannot make loops"):
        backend.check(job)


def test_a_reference_steers_every_frame_through_the_ip_adapter(tiny_sd15_dir, adapters, backend, tmp_path):
    from diffusers import UNet2DConditionModel
    from test_ip_adapter import save_adapter, save_encoder

    from asset_studio.core.job import Reference
    from asset_studio.service import run_job

    unet = UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet")
    ip = save_adapter(unet, tmp_path / "ip-adapter_tiny.safetensors")
    encoder = save_encoder(tmp_path / "image_encoder")
    ref = tmp_path / "ref.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(ref)
    plain = run_job(job_for(tiny_sd15_dir, adapters["folder"]), backend, tmp_path / "plain")
    job = job_for(tiny_sd15_dir, adapters["folder"])
    job.references = [Reference(image=str(ref), scale=1.0)]
    job.model.ip_adapter, job.model.image_encoder = str(ip), str(encoder)
    steered = run_job(job, backend, tmp_path / "ref")
    assert len(steered.saved) == 4
    for a, b in zip(plain.saved, steered.saved):
        assert np.abs(np.asarray(Image.open(a.raw), np.float32) - np.asarray(Image.open(b.raw), np.float32)).max() > 1
    # released: the next animation without a reference is the plain one again
    again = run_job(job_for(tiny_sd15_dir, adapters["folder"]), backend, tmp_path / "again")
    assert np.array_equal(np.asarray(Image.open(again.saved[0].raw)), np.asarray(Image.open(plain.saved[0].raw)))


def test_video_to_video_pose_frames_come_from_pose_detect(tiny_sd15_dir, adapters, backend, tmp_path, monkeypatch):
    """Each video frame's pose control image is found by engine/pose_detect (DWPose stand-ins here) and
    drawn by core/pose_render; without DWPose's weights the check says which download brings them."""
    from diffusers import UNet2DConditionModel
    from dwpose_standins import only_named_folders, write_weights
    from tiny_controlnet import save_tiny_controlnet

    import asset_studio.engine.annotators as annotators
    from asset_studio.core.job import ControlUnit
    from asset_studio.engine import pose_detect
    from asset_studio.engine.video_io import gif_bytes
    from asset_studio.service import run_job

    only_named_folders(monkeypatch)
    src = tmp_path / "walk.gif"
    src.write_bytes(gif_bytes([Image.new("RGB", (40, 40), (40 * i, 90, 160)) for i in range(4)], 8.0))
    cn = save_tiny_controlnet(UNet2DConditionModel.from_pretrained(tiny_sd15_dir / "unet"), tmp_path / "cn")
    video = VideoSource(path=str(src), batch_frames=4, overlap=1)
    job = job_for(tiny_sd15_dir, adapters["folder"], frames=4, video=video)
    job.controls = [ControlUnit(model=str(cn), image="", type="pose")]
    with pytest.raises(UserError, match="asset-studio models download annotator-dwpose"):
        backend.check(job)
    folder = write_weights(tmp_path / "annotators")
    monkeypatch.setattr(annotators, "annotator_dirs", lambda d=None: [folder])
    seen = []
    detect = pose_detect.detect_pose

    def counted(image, *args, **kwargs):
        seen.append(image.size)
        return detect(image, *args, **kwargs)

    monkeypatch.setattr(pose_detect, "detect_pose", counted)
    result = run_job(job, backend, tmp_path / "out")
    assert len(result.saved) == 4 and seen == [(32, 32)] * 4  # one detection per frame, at the job's size
