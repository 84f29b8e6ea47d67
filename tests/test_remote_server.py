"""The ComfyUI backend against two real ComfyUI 0.3.64 servers (../shared/engines/comfyui) on loopback.

One pair of servers for the module, one random-weight SD 1.5 checkpoint (~465 MB, built here) and a
kohya LoRA; 64x64 images of 1-2 steps. The test that kills a server runs last.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from asset_studio.core.backend import Cancelled, ImageReady, Progress
from asset_studio.core.job import HiresFix, LoraRef, Refiner
from asset_studio.core.library import read_job
from asset_studio.errors import UserError
from asset_studio.remote.backend import ComfyBackend
from asset_studio.remote.client import ComfyClient, JobError
from asset_studio.service import Saved, run_job
from comfy_servers import ComfyServers, unavailable
from jobs import make_job

pytestmark = [pytest.mark.slow, pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))]

CHECKPOINT = "tiny-sd15.safetensors"
LORA = "tiny-kohya-lora.safetensors"
UPSCALER = "2x-tiny-compact.safetensors"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    from comfy_models import build_comfy_sd15, save_comfy_lora, save_comfy_sd15

    with ComfyServers(tmp_path_factory.mktemp("comfyui"), count=2) as pair:
        modules = build_comfy_sd15()  # while the servers start
        save_comfy_sd15(pair.models / "checkpoints" / CHECKPOINT, modules)
        save_comfy_lora(pair.models / "loras" / LORA, modules)
        from test_upscale import save_compact  # a tiny Real-ESRGAN Compact (2x) that spandrel detects

        save_compact(pair.models / "upscale_models" / UPSCALER, scale=2)
        del modules
        pair.wait_ready()
        yield pair


def small_job(**flat):
    settings = dict(width=64, height=64, steps=1, seed=11, sampler="Euler")
    settings.update(flat)
    return make_job(f"/somewhere/else/{CHECKPOINT}", "a red apple", **settings)


def pixels(path_or_image) -> np.ndarray:
    image = path_or_image if isinstance(path_or_image, Image.Image) else Image.open(path_or_image)
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def baseline(servers, tmp_path_factory):
    """txt2img on one server through the service: saved with its job, which names the server."""
    out = tmp_path_factory.mktemp("txt2img")
    events = []
    result = run_job(small_job(), ComfyBackend([servers.urls[0]]), out, on_event=events.append)
    return out, result, events


def test_txt2img_is_saved_with_its_job_and_the_server_that_made_it(servers, baseline):
    _, result, events = baseline
    assert len(result.saved) == 1 and not result.cancelled
    saved = result.saved[0]
    assert Image.open(saved.raw).size == (64, 64)
    job = read_job(saved.raw)
    assert job.made_by == f"comfyui {servers.urls[0]}"
    assert job.sampling.seed == 11 and job.model.checkpoint.endswith(CHECKPOINT)
    assert any(isinstance(e, Progress) and e.total == 1 for e in events)
    assert any(isinstance(e, Progress) and isinstance(e.preview, Image.Image) for e in events)  # binary frames
    assert [type(e).__name__ for e in events][-1] == "Finished"


def test_the_same_seed_gives_the_same_image_on_either_server(servers, baseline, tmp_path):
    _, result, _ = baseline
    again = run_job(small_job(), ComfyBackend([servers.urls[1]]), tmp_path).saved[0]
    assert np.array_equal(pixels(again.raw), pixels(result.saved[0].raw))


def test_img2img_uploads_the_start_picture_and_follows_it(servers, tmp_path):
    backend = ComfyBackend([servers.urls[0]])
    outputs = []
    for colour in ((250, 20, 20), (20, 20, 250)):
        start = tmp_path / f"start-{colour[0]}.png"
        Image.new("RGB", (96, 96), colour).save(start)  # resized to the job's size before upload
        result = run_job(small_job(init_image=str(start), denoise=0.5, steps=2), backend, tmp_path / "out")
        outputs.append(pixels(result.saved[0].raw))
        assert read_job(result.saved[0].raw).init.image == str(start)
    assert np.abs(outputs[0] - outputs[1]).mean() > 1  # the start picture changed the result


def test_a_lora_changes_the_image(servers, baseline, tmp_path):
    job = small_job()
    job.model.loras = [LoraRef(path=f"/my/loras/{LORA}", weight=1.0)]
    result = run_job(job, ComfyBackend([servers.urls[1]]), tmp_path)
    assert np.abs(pixels(result.saved[0].raw) - pixels(baseline[1].saved[0].raw)).mean() > 1
    assert read_job(result.saved[0].raw).model.loras[0].weight == 1.0


def test_a_model_the_server_lacks_is_one_sentence_naming_model_and_server(servers):
    backend = ComfyBackend([servers.urls[0]])
    job = small_job()
    job.model.checkpoint = "/models/not-there.safetensors"
    with pytest.raises(UserError) as caught:
        backend.check(job)
    assert str(caught.value) == f"The checkpoint not-there.safetensors is not on the server {servers.urls[0]}."


def test_a_node_the_server_lacks_is_refused_by_name(servers):
    client = ComfyClient(servers.urls[0])
    assert "KSampler" in client.info().nodes
    graph = {"1": {"class_type": "IPAdapterAdvanced", "inputs": {}}}
    with pytest.raises(JobError, match="IPAdapterAdvanced"):
        client.queue(graph)  # the server's own refusal, as one sentence


def test_hires_fix_in_latent_space_on_a_real_server(servers, baseline, tmp_path):
    job = small_job()
    job.passes.hires = HiresFix(scale=2.0, upscaler="latent", denoise=0.5, steps=1)
    result = run_job(job, ComfyBackend([servers.urls[1]]), tmp_path)
    [saved] = result.saved
    assert Image.open(saved.raw).size == (128, 128)
    again = read_job(saved.raw)
    assert again.passes.hires.upscaler == "latent" and again.made_by == f"comfyui {servers.urls[1]}"
    small = np.asarray(Image.open(saved.raw).convert("RGB").resize((64, 64)), dtype=np.int16)
    assert np.abs(small - pixels(baseline[1].saved[0].raw)).mean() > 1  # redrawn at the new size, not resized


def test_sd15_refiner_redraws_with_the_second_model(servers, baseline, tmp_path):
    job = small_job()
    job.passes.refiner = Refiner(model=f"/elsewhere/{CHECKPOINT}", switch_at=0.5)
    [saved] = run_job(job, ComfyBackend([servers.urls[0]]), tmp_path).saved
    assert Image.open(saved.raw).size == (64, 64)
    assert np.abs(pixels(saved.raw) - pixels(baseline[1].saved[0].raw)).mean() > 1
    assert read_job(saved.raw).passes.refiner.switch_at == 0.5


def test_hires_fix_with_an_upscale_model_from_the_servers_list(servers, tmp_path):
    backend = ComfyBackend(servers.urls[:1])
    job = small_job()
    job.passes.hires = HiresFix(scale=2.0, upscaler="/my/upscalers/4x-absent.safetensors", steps=1)
    with pytest.raises(UserError) as caught:
        backend.check(job)
    assert str(caught.value) == f"The upscale model 4x-absent.safetensors is not on the server {servers.urls[0]}."
    # found by file name in the list of the (v3 API) UpscaleModelLoader, wherever it is here
    job.passes.hires.upscaler = f"/my/upscalers/{UPSCALER}"
    [saved] = run_job(job, backend, tmp_path).saved
    assert Image.open(saved.raw).size == (128, 128)
    assert read_job(saved.raw).passes.hires.upscaler.endswith(UPSCALER)


def test_cancel_stops_the_server_and_saves_nothing(servers, tmp_path):
    client = ComfyClient(servers.urls[0])
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, Progress):
            cancel.set()

    started = time.monotonic()
    result = run_job(small_job(steps=200), ComfyBackend([servers.urls[0]]), tmp_path,
                     should_cancel=cancel.is_set, on_event=on_event)
    assert result.cancelled and result.saved == []
    while time.monotonic() - started < 60:  # interrupted: the server's queue empties
        queue = json.loads(urllib.request.urlopen(client.url + "/queue", timeout=10).read())
        if not queue["queue_running"] and not queue["queue_pending"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the server still runs the cancelled prompt")


def test_servers_check_prints_version_devices_nodes_and_the_jobs_models(servers, baseline, capsys):
    from asset_studio.cli import main

    png = baseline[1].saved[0].raw
    assert main(["servers", "check", *servers.urls, "--job", str(png), "--model", "other.safetensors"]) == 1
    out = capsys.readouterr().out
    assert out.count("version: ComfyUI 0.3.64") == 2 and "devices: cpu" in out
    assert "missing nodes: none" in out
    assert f"checkpoint {CHECKPOINT}: yes ({CHECKPOINT})" in out and "checkpoint other.safetensors: MISSING" in out


def test_generate_and_rerun_on_the_comfyui_engine(servers, baseline, tmp_path, capsys):
    from asset_studio.cli import main

    args = ["generate", "a red apple", "--model", CHECKPOINT, "--engine", "comfyui", "--size", "64x64",
            "--steps", "1", "--sampler", "Euler", "--seed", "11", "--count", "2", "--out", str(tmp_path / "gen")]
    for url in servers.urls:
        args += ["--server", url]
    assert main(args) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.endswith(".png")]
    assert len(printed) == 2 and {read_job(p).sampling.seed for p in printed} == {11, 12}
    assert main(["rerun", printed[0], "--engine", "comfyui", "--server", servers.urls[1],
                 "--out", str(tmp_path / "again")]) == 0
    again = next((tmp_path / "again").glob("*.png"))
    assert read_job(again).made_by == f"comfyui {servers.urls[1]}"
    assert np.array_equal(pixels(again), pixels(printed[0]))


def test_a_pool_shares_a_batch_and_survives_a_server_killed_mid_job(servers, tmp_path):
    """Runs last: it kills server 0."""
    backend = ComfyBackend(servers.urls)
    killed = threading.Event()
    events = []

    def kill_at_first_step():
        while not killed.is_set():
            if any(isinstance(e, Progress) for e in events):
                servers.kill(0)
                killed.set()
            time.sleep(0.05)

    killer = threading.Thread(target=kill_at_first_step, daemon=True)
    killer.start()
    result = run_job(small_job(steps=2, batch_count=2), backend, tmp_path, on_event=events.append)
    killed.set()
    assert sorted(s.seed for s in result.saved) == [11, 12]
    makers = {read_job(s.raw).made_by for s in result.saved}
    assert makers == {f"comfyui {servers.urls[1]}"}  # server 0 died before finishing any image
    assert all(isinstance(e, (Saved, Progress)) or type(e).__name__ in ("Loading", "Finished") for e in events)
