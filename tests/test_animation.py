"""Animations without torch: the job's animation settings and their checks, the batches of a
video-to-video run and how they join, frame names and the sheet an animation folder becomes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.animation import BatchJoiner, batch_spans, frame_name, join_batches, timing_from_jobs
from asset_studio.core.job import Animation, GenerationJob, ImageToVideo, InitImage, ModelRef, Prompt, Sampling, VideoSource
from asset_studio.errors import UserError


def anim_job(**animation) -> GenerationJob:
    return GenerationJob(model=ModelRef("m"), prompt=Prompt("a knight"), sampling=Sampling(width=64, height=64),
                         output="animation", animation=Animation(**{"motion_adapter": "mm", **animation}))


def test_animation_round_trips_through_the_png_json():
    job = anim_job(frames=24, fps=12.0, loop=True, context=8)
    job.source.frame = 5
    again = GenerationJob.from_json(job.to_json())
    assert again.animation == job.animation and again.source.frame == 5 and again.output == "animation"


def test_a_job_of_an_earlier_version_reads_without_frame_or_animation():
    data = anim_job().to_dict()
    data.pop("animation"), data["source"].pop("frame")
    data["output"] = "image"
    job = GenerationJob.from_dict(data)
    assert job.animation is None and job.source.frame is None


@pytest.mark.parametrize("change, words", [
    (dict(frames=0), "1 to 1024 frames"),
    (dict(frames=5000), "1 to 1024 frames"),
    (dict(fps=0.0), "animation speed"),
    (dict(loop=True, frames=2), "at least 3 frames"),
    (dict(motion_adapter=""), "motion adapter"),
    (dict(video=VideoSource(path="v.mp4", batch_frames=8, overlap=8)), "overlap"),
    (dict(video=VideoSource(path="v.mp4", denoise=0.0)), "denoise"),
])
def test_bad_animation_settings_are_one_sentence(change, words):
    job = anim_job()
    for key, value in change.items():
        setattr(job.animation, key, value)
    with pytest.raises(UserError, match=words):
        GenerationJob.from_dict(job.to_dict())


def test_output_and_animation_must_agree():
    job = anim_job()
    job.output = "image"
    with pytest.raises(UserError, match="output is an image"):
        GenerationJob.from_dict(job.to_dict())
    job.output, job.animation = "video", None
    with pytest.raises(UserError, match="no animation settings"):
        GenerationJob.from_dict(job.to_dict())


def test_svd_needs_its_start_picture_and_no_motion_adapter():
    job = anim_job(method="svd", motion_adapter="")
    with pytest.raises(UserError, match="start image"):
        GenerationJob.from_dict(job.to_dict())
    job.init = InitImage("sprite.png")
    job.animation.svd = ImageToVideo(motion_bucket=300)
    with pytest.raises(UserError, match="motion amount"):
        GenerationJob.from_dict(job.to_dict())
    job.animation.svd.motion_bucket = 40
    assert GenerationJob.from_dict(job.to_dict()).animation.svd.motion_bucket == 40


# --- batches and joins ---------------------------------------------------------------------------------


@pytest.mark.parametrize("total, batch, overlap", [(17, 8, 4), (10, 8, 2), (40, 16, 4), (200, 16, 10), (9, 8, 7), (5, 8, 2)])
def test_batches_cover_every_frame_in_full_batches_with_at_least_the_overlap(total, batch, overlap):
    spans = batch_spans(total, batch, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == total
    assert all(e - s == min(batch, total) for s, e in spans)
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s0 < s1 and e0 - s1 >= overlap


def test_joined_length_is_exact_and_overlaps_cross_fade():
    total, batch, overlap = 12, 8, 4
    spans = batch_spans(total, batch, overlap)
    assert spans == [(0, 8), (4, 12)]
    batches = [np.zeros((8, 2, 2, 3)), np.full((8, 2, 2, 3), 100.0)]
    out = join_batches(total, batch, overlap, batches)
    assert out.shape == (12, 2, 2, 3)
    # before the join: the first batch; after it: the second; across the 4 shared frames a linear cross-fade
    assert out[:4].max() == 0 and (out[8:] == 100).all()
    assert out[4:8, 0, 0, 0].tolist() == pytest.approx([20, 40, 60, 80])


def test_the_joiner_hands_out_each_frame_once_and_only_when_final():
    joiner = BatchJoiner(10, 4, 2)
    seen = []
    for i, (start, end) in enumerate(joiner.spans):
        given = joiner.add(np.full((end - start, 1, 1, 1), float(i)))
        seen += [index for index, _ in given]
        if i + 1 < len(joiner.spans):  # nothing the next batch still blends into is handed out
            assert max(index for index, _ in given) < joiner.spans[i + 1][0]
    assert seen == list(range(10))
    with pytest.raises(ValueError):
        joiner.add(np.zeros((4, 1, 1, 1)))


def test_impossible_batches_are_refused():
    with pytest.raises(UserError, match="overlap"):
        batch_spans(10, 4, 4)
    with pytest.raises(UserError, match="no frames"):
        batch_spans(0, 4, 1)


# --- frames folder to sheet ------------------------------------------------------------------------------


def test_a_frames_folder_becomes_one_animation_with_the_jobs_speed_and_loop(tmp_path):
    from asset_studio.core.library import save_image
    from asset_studio.service import SheetExport, export_sheet

    folder = tmp_path / "00001-7-knight"
    folder.mkdir()
    job = anim_job(frames=12, fps=12.5, loop=False)
    for i in range(12):  # written out of order: the order comes from the index in the name
        k = (i * 5) % 12
        one = GenerationJob.from_json(job.to_json())
        one.source.frame = k
        save_image(Image.new("RGBA", (16, 16), (k * 20, 0, 0, 255)), one, folder, name=frame_name("knight", k))
    result = export_sheet(SheetExport(inputs=[folder], out=tmp_path / "sheet.png", format="aseprite"))
    [anim] = result.sheet.animations
    assert anim.name == "knight" and anim.frames == [frame_name("knight", i) for i in range(12)]
    data = json.loads((tmp_path / "sheet.json").read_text())
    assert data["meta"]["frameTags"] == [{"name": "knight", "from": 0, "to": 11, "direction": "forward",
                                          "color": "#000000ff"}]
    assert {f["duration"] for f in data["frames"]} == {80}  # 1000 ms / 12.5 fps
    export_sheet(SheetExport(inputs=[folder], out=tmp_path / "godot.png", format="godot4"))
    tres = (tmp_path / "godot.tres").read_text()
    assert '"loop": false' in tres and '"speed": 12.5' in tres and '&"knight"' in tres
    export_sheet(SheetExport(inputs=[folder], out=tmp_path / "tp.png", format="texturepacker-hash"))
    assert json.loads((tmp_path / "tp.json").read_text())["animations"] == {"knight": anim.frames}


def test_the_export_can_rename_one_animation_and_set_its_speed(tmp_path):
    from asset_studio.core.library import save_image
    from asset_studio.service import SheetExport, export_sheet

    folders = []
    for slug in ("slime", "bat"):
        folder = tmp_path / f"00001-7-{slug}"
        folder.mkdir()
        job = anim_job(frames=3, fps=8.0, loop=True)
        for k in range(3):
            save_image(Image.new("RGBA", (8, 8), (k * 60, 0, 0, 255)), job, folder, name=frame_name(slug, k))
        folders.append(folder)
    from asset_studio.core.animation import AnimationEdit

    export_sheet(SheetExport(inputs=[folders[0]], out=tmp_path / "a.png", format="godot4",
                             animations=[AnimationEdit(found="slime", name="slime-idle", fps=6.0)]))
    tres = (tmp_path / "a.tres").read_text()
    assert '&"slime-idle"' in tres and '&"slime"' not in tres and '"speed": 6.0' in tres and '"loop": true' in tres
    export_sheet(SheetExport(inputs=[folders[0]], out=tmp_path / "b.png", format="godot4"))
    assert '"speed": 8.0' in (tmp_path / "b.tres").read_text(), "no override: the job's own speed"
    with pytest.raises(UserError, match="no animation 'x'"):
        export_sheet(SheetExport(inputs=folders, out=tmp_path / "c.png", format="godot4",
                                 animations=[AnimationEdit(found="x", name="y")]))
    with pytest.raises(UserError, match="quote"):
        export_sheet(SheetExport(inputs=[folders[0]], out=tmp_path / "d.png", format="godot4",
                                 animations=[AnimationEdit(found="slime", name='say "hi"')]))
    assert not (tmp_path / "c.png").exists() and not (tmp_path / "d.png").exists()


def test_frames_made_elsewhere_keep_the_exports_speed(tmp_path):
    from asset_studio.core.sheet import Animation as SheetAnimation

    Image.new("RGBA", (4, 4)).save(tmp_path / "walk-0.png")

    class Sheet:
        animations = [SheetAnimation("walk", ["walk-0.png"])]

    timing_from_jobs(Sheet, {"walk-0.png": tmp_path / "walk-0.png"})
    assert Sheet.animations[0].fps is None and Sheet.animations[0].loop is True


# --- previews and video files ----------------------------------------------------------------------------


def test_previews_and_videos_carry_every_frame(tmp_path):
    from asset_studio.engine.video_io import read_frames, video_fps, write_previews

    frames = [Image.new("RGBA", (32, 32), (i * 40, 255 - i * 40, 0, 255)) for i in range(5)]
    paths = write_previews(frames, 10.0, tmp_path / "anim", video=True, formats=("gif", "apng", "webp"))
    assert sorted(p.suffix for p in paths) == [".apng", ".gif", ".mp4", ".webm", ".webp"]
    for path in paths:
        assert len(read_frames(path)) == 5, path
    assert video_fps(tmp_path / "anim.mp4") == 10.0
    with Image.open(tmp_path / "anim.webp") as im:
        assert im.n_frames == 5 and im.info["loop"] == 0


def test_the_apng_preview_keeps_every_frame_its_timing_and_soft_alpha(tmp_path):
    import numpy as np

    from asset_studio.engine.video_io import write_previews

    frames = []
    for i in range(6):  # a sprite moving right on a clear background, with a half-transparent glow
        im = Image.new("RGBA", (40, 24), (0, 0, 0, 0))
        im.paste((200, 40, 40, 255), (2 + 4 * i, 4, 12 + 4 * i, 20))
        im.paste((250, 220, 90, 96), (14 + 4 * i, 8, 18 + 4 * i, 16))
        frames.append(im)
    paths = write_previews(frames, 12.0, tmp_path / "00001-7-imp", video=False)
    assert paths == [tmp_path / "00001-7-imp.gif", tmp_path / "00001-7-imp.apng"], "default: GIF and APNG"
    with Image.open(paths[1]) as im:
        assert im.format == "PNG" and im.is_animated and im.n_frames == 6 and im.info["loop"] == 0
        for i in range(6):
            im.seek(i)
            assert im.info["duration"] == round(1000 / 12)
            got = np.asarray(im.convert("RGBA"))
            assert np.array_equal(got, np.asarray(frames[i])), f"frame {i}: exact colours and alpha, no trail"
    assert set(np.unique(np.asarray(frames[0])[..., 3])) == {0, 96, 255}  # what GIF cannot hold
    with Image.open(paths[0]) as gif:
        gif.seek(3)
        assert 96 not in set(np.unique(np.asarray(gif.convert("RGBA"))[..., 3])), "GIF has on/off alpha only"


@pytest.mark.parametrize("name, data", [("bad.mp4", b"not a video at all" * 20), ("bad.gif", b"GIF89a broken"),
                                        ("empty.webm", b"")])
def test_bad_video_files_are_one_sentence(tmp_path, name, data):
    from asset_studio.engine.video_io import read_frames

    (tmp_path / name).write_bytes(data)
    with pytest.raises(UserError, match=name):
        read_frames(tmp_path / name)


def test_a_missing_video_or_an_empty_frame_folder_is_one_sentence(tmp_path):
    from asset_studio.engine.video_io import read_frames

    with pytest.raises(UserError, match="does not exist"):
        read_frames(tmp_path / "nope.mp4")
    (tmp_path / "frames").mkdir()
    with pytest.raises(UserError, match="holds no pictures"):
        read_frames(tmp_path / "frames")
