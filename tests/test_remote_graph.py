"""Jobs as ComfyUI graphs, against golden graphs written once by hand-checking (no server here)."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from PIL import Image

from asset_studio.core.job import Box, ControlUnit, DetailPass, HiresFix, LoraRef, Reference, Refiner, TiledUpscale
from asset_studio.core.samplers import COMFYUI_SAMPLERS, SAMPLERS, comfyui_sampler
from asset_studio.errors import UserError
from asset_studio.remote.client import ServerInfo, _execution_error, _preview, _prompt_error, JobError, ServerError
from asset_studio.remote.graph import STUDIO_NODES, ServerFiles, job_graph, models_of, nodes_of, unsupported
from jobs import make_job

DATA = Path(__file__).parent / "data"


def golden(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def txt2img_job():
    return make_job("/models/sd15/dreamshaper_8.safetensors", "a red apple, game icon", negative_prompt="blurry",
                    width=512, height=768, steps=25, cfg_scale=6.5, seed=1234, sampler="DPM++ 2M Karras")


def full_job():
    return make_job(
        "C:\\models\\anything.safetensors", "a stone wall", negative_prompt="text", width=512, height=512, steps=20,
        seed=7, sampler="Euler a", init_image="/work/in/start.png", denoise=0.5, clip_skip=2,
        vae="/v/kl-f8.safetensors",
        loras=[LoraRef(path="/l/pixel.safetensors", weight=0.8), LoraRef(path="/l/outline.safetensors", weight=-0.5)],
        controls=[ControlUnit(model="/c/control_v11p_sd15_lineart.safetensors", image="/work/out/.controls/line.png",
                              type="lineart", scale=0.9, start=0.1, end=0.8)])


def test_txt2img_graph_matches_the_golden_one():
    assert job_graph(txt2img_job()) == golden("comfyui-txt2img.json")


def test_img2img_lora_vae_clip_skip_controlnet_graph_matches_the_golden_one():
    files = ServerFiles(models={"/l/pixel.safetensors": "sd15/pixel.safetensors"},
                        images={"/work/in/start.png": "asset-studio-abc.png"})
    graph = job_graph(full_job(), files)
    assert graph == golden("comfyui-img2img-lora-controlnet.json")
    sampler = next(n for n in graph.values() if n["class_type"] == "KSampler")["inputs"]
    # img2img at denoise 0.5 runs half the steps, as A1111 and the local engine do
    assert (sampler["steps"], sampler["denoise"]) == (10, 0.5)


def test_every_graph_link_points_at_an_existing_node():
    graph = job_graph(full_job())
    for node in graph.values():
        for value in node["inputs"].values():
            if isinstance(value, list):
                assert value[0] in graph and isinstance(value[1], int)


@pytest.mark.parametrize("name, expected", [
    ("DPM++ 2M Karras", ("dpmpp_2m", "karras")), ("Euler a", ("euler_ancestral", "normal")),
    ("euler_ancestral", ("euler_ancestral", "normal")), ("DDIM", ("ddim", "ddim_uniform")),
    ("DPM++ SDE Karras", ("dpmpp_sde", "karras")), ("UniPC", ("uni_pc", "normal")),
])
def test_artists_sampler_names_map_to_comfyui_sampler_and_scheduler(name, expected):
    assert comfyui_sampler(name) == expected


def test_every_comfyui_mapping_names_a_known_sampler():
    assert set(COMFYUI_SAMPLERS) <= set(SAMPLERS)


def test_samplers_without_a_stock_comfyui_equivalent_are_refused_by_name():
    with pytest.raises(UserError, match="PLMS"):
        comfyui_sampler("PLMS")
    assert "PLMS" in unsupported(make_job(sampler="PLMS"))


@pytest.mark.parametrize("change, word", [
    (lambda j: j.references.append(Reference(image="r.png")), "IP-Adapter"),
    (lambda j: setattr(j.passes, "hires", HiresFix()), "hires fix"),
    (lambda j: setattr(j.passes, "refiner", Refiner(model="r.safetensors")), "refiner"),
    (lambda j: setattr(j.passes, "tiled_upscale", TiledUpscale()), "tiled upscale"),
    (lambda j: j.passes.detail.append(DetailPass(boxes=[Box(0, 0, 8, 8)])), "detailer"),
    (lambda j: setattr(j, "output", "animation"), "animation"),
    (lambda j: setattr(j, "tiling", "x"), "tiling"),
])
def test_what_stock_comfyui_cannot_do_is_refused_by_name(change, word):
    job = make_job()
    change(job)
    assert word in unsupported(job)
    with pytest.raises(UserError, match=word):
        job_graph(job)


def test_models_and_nodes_a_job_needs():
    job = full_job()
    assert [kind for kind, _ in models_of(job)] == ["checkpoint", "LoRA", "LoRA", "VAE", "ControlNet"]
    assert {"ControlNetApplyAdvanced", "VAEEncode", "LoadImage", "CLIPSetLastLayer"} <= nodes_of(job)
    assert "EmptyLatentImage" in nodes_of(txt2img_job())
    assert nodes_of(full_job()) | nodes_of(txt2img_job()) == STUDIO_NODES


def test_server_info_matches_models_by_file_name_and_names_what_is_missing():
    info = ServerInfo(url="http://127.0.0.1:1", version="0.3.64", devices=[],
                      nodes=nodes_of(txt2img_job()) | {"LoraLoader"},
                      models={"checkpoint": ["sd15/DreamShaper_8.safetensors"], "LoRA": []})
    assert info.find_model("checkpoint", "/models/dreamshaper_8.safetensors") == "sd15/DreamShaper_8.safetensors"
    assert info.missing(txt2img_job()) == []
    job = txt2img_job()
    job.model.loras = [LoraRef(path="/l/pixel.safetensors")]
    assert info.missing(job) == ["The LoRA pixel.safetensors is not on the server http://127.0.0.1:1."]
    assert "lacks the node ControlNetApplyAdvanced, which this job needs." in " ".join(info.missing(full_job()))


def test_binary_preview_frames_become_pictures():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="JPEG")
    frame = struct.pack(">II", 1, 1) + buf.getvalue()
    assert _preview(frame).getpixel((4, 4))[0] > 150
    assert _preview(struct.pack(">II", 3, 0) + b"text") is None  # another binary event: ignored
    assert _preview(b"\x00") is None


def test_server_errors_become_one_sentence_and_the_right_kind():
    answer = json.dumps({"error": {"message": "Prompt outputs failed validation"}, "node_errors": {
        "1": {"class_type": "CheckpointLoaderSimple", "errors": [
            {"message": "Value not in list", "details": "ckpt_name: 'x.safetensors' not in []"}]}}}).encode()
    assert _prompt_error(answer).startswith("CheckpointLoaderSimple: Value not in list ckpt_name")
    failed = _execution_error("http://h:1", {"node_type": "KSampler", "exception_message": "bad shape\nmore",
                                             "exception_type": "RuntimeError"})
    assert isinstance(failed, JobError) and str(failed) == "The server http://h:1 failed in KSampler: bad shape."
    memory = _execution_error("http://h:1", {"node_type": "KSampler", "exception_message": "CUDA out of memory",
                                             "exception_type": "torch.OutOfMemoryError"})
    assert isinstance(memory, ServerError)  # another server may have the memory: the pool re-queues
