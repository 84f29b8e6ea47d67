"""Animations on ComfyUI servers: Stable Video Diffusion as a golden graph of stock nodes, and
`animate --engine comfyui` against a loopback stand-in server (comfy_standin.py) that returns the
frames; AnimateDiff refused by name. A real server is not used: SVD's checkpoint (a 1.5 B UNet and a
ViT-H image encoder, which ComfyUI detects by their full sizes) is too big to build for a CPU test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.core.job import Animation, ImageToVideo, LoraRef
from asset_studio.errors import UserError
from asset_studio.remote.graph import ServerFiles, images_of, job_graph, models_of, nodes_of, unsupported
from asset_studio.remote.video_graph import ANIMATEDIFF_NODE, SVD_NODES
from comfy_standin import StandInComfy, solid_frames
from jobs import make_job

pytest.importorskip("aiohttp", reason="the stand-in server runs on aiohttp (pip install -e '.[test]')")

DATA = Path(__file__).parent / "data"


def svd_job():
    job = make_job("/models/svd/svd_xt.safetensors", "", init_image="/work/in/knight.png", width=512, height=320,
                   steps=20, cfg_scale=2.5, seed=42)
    job.output = "animation"
    job.animation = Animation(frames=14, fps=7.0, method="svd",
                              svd=ImageToVideo(motion_bucket=100, noise_aug=0.05, min_cfg=1.0))
    return job


def test_svd_graph_matches_the_golden_one():
    files = ServerFiles(models={"/models/svd/svd_xt.safetensors": "video/svd_xt.safetensors"},
                        images={"/work/in/knight.png": "asset-studio-abc.png"})
    graph = job_graph(svd_job(), files)
    assert graph == json.loads((DATA / "comfyui-svd.json").read_text())
    for node in graph.values():  # every link points at a node that exists
        for value in node["inputs"].values():
            if isinstance(value, list):
                assert value[0] in graph and isinstance(value[1], int)


def test_svd_needs_its_checkpoint_its_picture_and_stock_nodes_only():
    job = svd_job()
    assert unsupported(job) is None
    assert models_of(job) == [("checkpoint", "/models/svd/svd_xt.safetensors")]
    assert images_of(job) == ["/work/in/knight.png"]
    assert nodes_of(job) == SVD_NODES


def test_svd_motion_bucket_zero_is_the_nodes_lowest():
    job = svd_job()
    job.animation.svd.motion_bucket = 0
    cond = next(n["inputs"] for n in job_graph(job).values() if n["class_type"] == "SVD_img2vid_Conditioning")
    assert cond["motion_bucket_id"] == 1


@pytest.mark.parametrize("change, word", [
    (lambda j: setattr(j.animation, "loop", True), "loops"),
    (lambda j: j.model.loras.append(LoraRef(path="l.safetensors")), "LoRAs"),
    (lambda j: setattr(j, "tiling", "x"), "tiling"),
])
def test_what_svd_on_a_server_cannot_take_is_refused_by_name(change, word):
    job = svd_job()
    change(job)
    assert word in unsupported(job)
    with pytest.raises(UserError, match=word):
        job_graph(job)


def test_animatediff_is_refused_naming_the_custom_nodes_stock_comfyui_lacks():
    job = make_job(prompt="a slime bouncing")
    job.output, job.animation = "animation", Animation(frames=8, motion_adapter="/mm/mm_sd15_v3.safetensors")
    problem = unsupported(job)
    assert "AnimateDiff-Evolved" in problem and ANIMATEDIFF_NODE in problem and "--engine local" in problem


@pytest.fixture()
def knight(tmp_path):
    path = tmp_path / "knight.png"
    Image.new("RGB", (96, 64), (40, 90, 200)).save(path)
    return path


def animate(capsys, *args) -> tuple[int, str, str]:
    rc = main(["animate", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_animate_svd_on_a_server_saves_every_frame_in_order_with_its_job(knight, tmp_path, capsys):
    from asset_studio.core.library import read_job

    out = tmp_path / "out"
    with StandInComfy() as server:
        rc, printed, err = animate(capsys, "--image", knight, "--svd", "svd_xt.safetensors", "--frames", 5,
                                   "--size", "48x32", "--steps", 2, "--seed", 7, "--engine", "comfyui",
                                   "--server", server.url, "--out", out)
        assert rc == 0, err
        assert len(server.prompts) == 1
        graph = server.prompts[0]
        assert {n["class_type"] for n in graph.values()} == SVD_NODES
        [uploaded] = server.uploads  # the start picture, at the frame size, named in LoadImage
        assert next(n["inputs"]["image"] for n in graph.values() if n["class_type"] == "LoadImage") == uploaded
        with Image.open(__import__("io").BytesIO(server.uploads[uploaded])) as picture:
            assert picture.size == (48, 32)
    folder = Path(printed.strip())
    assert folder.parent == out and folder.is_dir()
    frames = sorted(folder.glob("*.png"))
    assert [p.name[-7:] for p in frames] == ["000.png", "001.png", "002.png", "003.png", "004.png"]
    for i, path in enumerate(frames):
        pixel = np.asarray(Image.open(path).convert("RGB"))[0, 0]
        assert tuple(pixel) == (10 * i, 7, 0)  # frame i of the animation with seed 7, in its place
        job = read_job(path)
        assert job.source.frame == i and job.sampling.seed == 7
        assert job.made_by == f"comfyui {server.url}"
        assert job.animation.method == "svd" and job.animation.frames == 5
    assert folder.with_suffix(".gif").is_file() and folder.with_suffix(".apng").is_file()  # the default previews


def test_two_animations_on_two_servers_each_get_their_own_folder(knight, tmp_path, capsys):
    out = tmp_path / "out"
    with StandInComfy() as a, StandInComfy() as b:
        rc, printed, err = animate(capsys, "--image", knight, "--svd", "svd_xt.safetensors", "--frames", 3,
                                   "--size", "32x32", "--steps", 1, "--seed", 20, "--count", 4, "--engine", "comfyui",
                                   "--server", a.url, "--server", b.url, "--out", out)
        assert rc == 0, err
        assert len(a.prompts) + len(b.prompts) == 4
    folders = [Path(line) for line in printed.split()]
    assert len(folders) == 4
    for folder in folders:
        seed = int(folder.name.split("-")[1])
        frames = sorted(folder.glob("*.png"))
        assert len(frames) == 3
        # every frame in a folder belongs to that folder's animation, in order
        assert [tuple(np.asarray(Image.open(p).convert("RGB"))[0, 0]) for p in frames] == \
            [(10 * i, seed % 256, 0) for i in range(3)]
    assert sorted(int(f.name.split("-")[1]) for f in folders) == [20, 21, 22, 23]


def test_an_animation_whose_server_breaks_while_sending_frames_is_made_whole_on_another(knight, tmp_path, capsys):
    out = tmp_path / "out"
    with StandInComfy(broken_view=True) as broken, StandInComfy() as good:
        rc, printed, err = animate(capsys, "--image", knight, "--svd", "svd_xt.safetensors", "--frames", 3,
                                   "--size", "32x32", "--steps", 1, "--seed", 5, "--count", 2, "--engine", "comfyui",
                                   "--server", broken.url, "--server", good.url, "--out", out)
        assert rc == 0, err
        assert len(broken.prompts) == 1 and len(good.prompts) == 2  # its thread starts first: it takes one
    folders = [Path(line) for line in printed.split()]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(f.name for f in folders)  # no half animation
    from asset_studio.core.library import read_job

    for folder in folders:
        frames = sorted(folder.glob("*.png"))
        assert len(frames) == 3 and {read_job(p).made_by for p in frames} == {f"comfyui {good.url}"}


def test_a_server_that_sends_the_wrong_number_of_frames_is_one_sentence(knight, tmp_path, capsys):
    with StandInComfy(draw=lambda graph: solid_frames(graph)[:-1]) as server:
        rc, _, err = animate(capsys, "--image", knight, "--svd", "svd_xt.safetensors", "--frames", 3,
                             "--size", "32x32", "--steps", 1, "--engine", "comfyui", "--server", server.url,
                             "--out", tmp_path / "out")
    assert rc == 2 and f"The server {server.url} sent 2 frames instead of 3." in err
    assert not list((tmp_path / "out").rglob("*.png"))


def test_an_svd_checkpoint_the_server_lacks_is_one_sentence_naming_model_and_server(knight, tmp_path, capsys):
    with StandInComfy(checkpoints=["sd15.safetensors"]) as server:
        rc, _, err = animate(capsys, "--image", knight, "--svd", "/models/svd_xt.safetensors", "--frames", 3,
                             "--size", "32x32", "--engine", "comfyui", "--server", server.url, "--out", tmp_path)
        assert rc == 2
        assert f"The checkpoint svd_xt.safetensors is not on the server {server.url}." in err
        assert "Traceback" not in err and server.prompts == [] and server.uploads == {}


@pytest.mark.parametrize("has_animatediff", [False, True])
def test_animatediff_on_a_server_is_refused_before_anything_is_sent(tmp_path, capsys, has_animatediff):
    nodes = {"CheckpointLoaderSimple"} | ({ANIMATEDIFF_NODE} if has_animatediff else set())
    with StandInComfy(checkpoints=["m.safetensors"], nodes=nodes) as server:
        rc, _, err = animate(capsys, "a slime bouncing", "--model", "m.safetensors", "--motion-adapter",
                             "mm.safetensors", "--frames", 4, "--size", "32x32", "--engine", "comfyui",
                             "--server", server.url, "--out", tmp_path)
        assert rc == 2 and "Traceback" not in err
        assert server.prompts == [] and server.uploads == {}
    assert "AnimateDiff" in err and "--engine local" in err
    if has_animatediff:
        assert f"The server {server.url} has the AnimateDiff-Evolved nodes" in err and "yet" in err
    else:
        assert "AnimateDiff-Evolved custom nodes" in err and "stock ComfyUI lacks" in err
    message = err.strip().split("error: ", 1)[1]
    assert "\n" not in message and ". " not in message and message.endswith(".")  # one sentence


def test_video2video_takes_the_engine_flags_and_is_refused_as_animatediff(tmp_path, capsys):
    frames = tmp_path / "walk"
    frames.mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32), (i * 50, 0, 0)).save(frames / f"f-{i}.png")
    with StandInComfy(checkpoints=["m.safetensors"]) as server:
        rc = main(["video2video", str(frames), "a knight", "--model", "m.safetensors", "--motion-adapter",
                   "mm.safetensors", "--controlnet", "lineart.safetensors", "--engine", "comfyui",
                   "--server", server.url, "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert rc == 2 and "AnimateDiff-Evolved" in err and server.prompts == []


def test_rerun_of_a_frame_runs_its_animation_again_on_the_server(knight, tmp_path, capsys):
    from asset_studio.core.library import read_job

    with StandInComfy() as server:
        rc, printed, err = animate(capsys, "--image", knight, "--svd", "svd_xt.safetensors", "--frames", 2,
                                   "--size", "32x32", "--steps", 1, "--seed", 3, "--engine", "comfyui",
                                   "--server", server.url, "--out", tmp_path)
        assert rc == 0, err
        first = sorted(Path(printed.strip()).glob("*.png"))[1]
        assert main(["rerun", str(first), "--engine", "comfyui", "--server", server.url]) == 0
        again = Path(capsys.readouterr().out.strip())
        assert len(server.prompts) == 2 and server.prompts[0] == server.prompts[1]
    assert again != first.parent and len(list(again.glob("*.png"))) == 2
    assert read_job(sorted(again.glob("*.png"))[1]).made_by == f"comfyui {server.url}"


@pytest.mark.slow
@pytest.mark.skipif(__import__("comfy_servers").unavailable() is not None,
                    reason=str(__import__("comfy_servers").unavailable()))
def test_a_real_server_accepts_the_svd_graph_and_fails_only_at_the_checkpoint(tmp_path):
    """ComfyUI 0.3.64 checks every node's inputs (names, linked types, ranges) before it runs a graph:
    with a stand-in file for SVD's multi-gigabyte checkpoint, the graph passes that check and fails
    where the file is read, naming that node; a wrong input anywhere would be refused at /prompt."""
    from safetensors.numpy import save_file

    from asset_studio.remote.backend import ComfyBackend
    from asset_studio.remote.client import JobError
    from asset_studio.service import run_job
    from comfy_servers import ComfyServers

    with ComfyServers(tmp_path / "comfyui", count=1) as server:
        (server.models / "checkpoints").mkdir(parents=True, exist_ok=True)
        save_file({"x": np.zeros(4, np.float32)}, str(server.models / "checkpoints" / "svd_xt.safetensors"))
        picture = tmp_path / "knight.png"
        Image.new("RGB", (64, 64), (40, 90, 200)).save(picture)
        job = svd_job()
        job.init.image, job.sampling.width, job.sampling.height, job.animation.frames = str(picture), 64, 64, 2
        server.wait_ready()
        with pytest.raises(JobError, match=r"failed in ImageOnlyCheckpointLoader: .*detect model type"):
            run_job(job, ComfyBackend(server.urls), tmp_path / "out")


def test_frames_of_animations_that_arrive_interleaved_go_to_their_own_folders(tmp_path):
    """A pool's servers finish animations at the same time: their frames reach the service mixed."""
    from asset_studio.core.backend import Finished, ImageReady
    from asset_studio.service import run_job

    class Interleaving:
        name = "interleaving"

        def capabilities(self):
            return {"image_to_video"}

        def check(self, job):
            pass

        def run(self, job, should_cancel=None):
            for frame in range(2):
                for index, seed in enumerate(job.image_seeds()):
                    one = job.for_seed(seed)
                    one.source.frame = frame
                    yield ImageReady(Image.new("RGB", (16, 16), (10 * frame, seed, 0)), one, index, seed,
                                     frame=frame, frame_count=2)
            yield Finished()

    job = svd_job()
    job.sampling.seed, job.sampling.count, job.animation.frames = 30, 2, 2
    result = run_job(job, Interleaving(), tmp_path)
    assert [int(f.name.split("-")[1]) for f in result.animations] == [30, 31]
    for folder in result.animations:
        seed = int(folder.name.split("-")[1])
        assert [tuple(np.asarray(Image.open(p))[0, 0]) for p in sorted(folder.glob("*.png"))] == \
            [(0, seed, 0), (10, seed, 0)]
