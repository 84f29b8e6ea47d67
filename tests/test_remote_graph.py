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
from asset_studio.remote.client import (JobError, ServerError, ServerInfo, _choices, _execution_error, _preview,
                                       _prompt_error, local_family, refiner_mismatch)
from asset_studio.remote.backend import ComfyBackend
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


def hires_job(upscaler="latent", **hires):
    job = make_job("/m/dreamshaper_8.safetensors", "a red apple, game icon", negative_prompt="blurry", width=512,
                   height=512, steps=20, seed=5, sampler="Euler a")
    job.passes.hires = HiresFix(**{"scale": 1.5, "upscaler": upscaler, "denoise": 0.5, **hires})
    return job


def sdxl_refiner_job():
    job = make_job("/m/sd_xl_base_1.0.safetensors", "a castle", negative_prompt="text", width=1024, height=1024,
                   steps=25, seed=9, sampler="DPM++ 2M Karras")
    job.passes.refiner = Refiner(model="/m/sd_xl_refiner_1.0.safetensors", switch_at=0.8)
    return job


def nodes(graph: dict, class_type: str) -> list[dict]:
    return [n["inputs"] for n in graph.values() if n["class_type"] == class_type]


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


def test_every_graph_link_points_at_an_existing_node(graph=None):
    graph = graph or job_graph(full_job())
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
    passes = [nodes_of(hires_job(upscaler)) for upscaler in ("latent", "/u/4x.safetensors")]
    passes.append(nodes_of(sdxl_refiner_job(), ServerFiles(family="sdxl")))
    assert set().union(nodes_of(full_job()), nodes_of(txt2img_job()), *passes) == STUDIO_NODES


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


# --- after-passes: hires fix and refiner ----------------------------------------------------------


def test_hires_latent_graph_matches_the_golden_one():
    graph = job_graph(hires_job("latent"))
    assert graph == golden("comfyui-hires-latent.json")
    [upscale] = nodes(graph, "LatentUpscale")
    # the local engine's size (base x scale in multiples of 8) and its bilinear latent resize
    assert (upscale["width"], upscale["height"], upscale["upscale_method"]) == (768, 768, "bilinear")
    base, second = nodes(graph, "KSampler")
    assert (base["steps"], base["denoise"]) == (20, 1.0)
    assert (second["steps"], second["denoise"], second["latent_image"][0]) == (10, 0.5, "6")  # 20 x 0.5 run
    assert nodes(job_graph(hires_job("latent-nearest")), "LatentUpscale")[0]["upscale_method"] == "nearest-exact"


def test_hires_with_an_upscale_model_graph_matches_the_golden_one():
    graph = job_graph(hires_job("/u/4x-UltraSharp.safetensors", scale=2, denoise=0.4, steps=8))
    assert graph == golden("comfyui-hires-model.json")
    assert nodes(graph, "UpscaleModelLoader") == [{"model_name": "4x-UltraSharp.safetensors"}]
    [scale] = nodes(graph, "ImageScale")  # the model's 4x brought to the exact 2x size
    assert (scale["width"], scale["height"], scale["upscale_method"]) == (1024, 1024, "lanczos")
    assert nodes(graph, "KSampler")[1]["steps"] == 8  # hires steps given: exactly that many run


def test_hires_with_a_resampler_scales_the_decoded_picture():
    graph = job_graph(hires_job("nearest", scale=2))
    assert not nodes(graph, "UpscaleModelLoader") and not nodes(graph, "LatentUpscale")
    [scale] = nodes(graph, "ImageScale")
    assert (scale["width"], scale["upscale_method"]) == (1024, "nearest-exact")
    assert len(nodes(graph, "VAEDecode")) == 2 and len(nodes(graph, "VAEEncode")) == 1


def test_sdxl_refiner_graph_hands_latents_over_at_the_switch_step():
    graph = job_graph(sdxl_refiner_job(), ServerFiles(family="sdxl"))
    assert graph == golden("comfyui-refiner-sdxl.json")
    base, refiner = nodes(graph, "KSamplerAdvanced")
    assert (base["start_at_step"], base["end_at_step"], base["return_with_leftover_noise"], base["add_noise"]) == (
        0, 20, "enable", "enable")
    assert (refiner["start_at_step"], refiner["add_noise"], refiner["return_with_leftover_noise"]) == (
        20, "disable", "disable")
    assert base["steps"] == refiner["steps"] == 25 and base["noise_seed"] == refiner["noise_seed"] == 9
    loaders = {n["ckpt_name"] for n in nodes(graph, "CheckpointLoaderSimple")}
    assert loaders == {"sd_xl_base_1.0.safetensors", "sd_xl_refiner_1.0.safetensors"}
    refiner_ckpt = next(k for k, n in graph.items() if n["inputs"].get("ckpt_name") == "sd_xl_refiner_1.0.safetensors")
    assert refiner["model"] == [refiner_ckpt, 0]
    assert nodes(graph, "VAEDecode")[0]["vae"] == [refiner_ckpt, 2]  # the refiner's VAE decodes, as locally


def test_sdxl_refiner_on_img2img_starts_where_the_denoise_says():
    job = sdxl_refiner_job()
    job.init = full_job().init  # denoise 0.5 of 25 steps
    base, refiner = nodes(job_graph(job, ServerFiles(family="sdxl")), "KSamplerAdvanced")
    assert (base["start_at_step"], base["end_at_step"], refiner["start_at_step"]) == (13, 20, 20)


def test_sd15_refiner_graph_redraws_the_decoded_picture_with_the_second_model():
    job = hires_job()
    job.passes.hires = None
    job.passes.refiner = Refiner(model="/m/anything.safetensors", switch_at=0.7)
    graph = job_graph(job, ServerFiles(family="sd15"))
    assert graph == golden("comfyui-refiner-sd15.json")
    assert job_graph(job) == graph  # a family not known here takes the img2img path, which suits any
    base, refine = nodes(graph, "KSampler")
    assert (refine["denoise"], refine["steps"]) == (0.3, 6)  # the last 30% of 20 steps
    assert not nodes(graph, "KSamplerAdvanced")


def test_refiner_then_latent_hires_decodes_with_the_base_models_vae():
    job = sdxl_refiner_job()
    job.passes.hires = HiresFix(scale=1.25, upscaler="latent", denoise=0.3)
    graph = job_graph(job, ServerFiles(family="sdxl"))
    [upscale] = nodes(graph, "LatentUpscale")
    assert upscale["samples"][0] == next(k for k, n in graph.items() if n["class_type"] == "KSamplerAdvanced"
                                         and n["inputs"]["start_at_step"] == 20)
    hires = nodes(graph, "KSampler")[-1]
    assert hires["model"] == ["1", 0] and hires["steps"] == 7  # int(25 x 0.3), the base model
    assert nodes(graph, "VAEDecode")[-1]["vae"] == ["1", 2]
    test_every_graph_link_points_at_an_existing_node(graph)


def test_hires_redraws_without_the_controlnet_as_the_local_engine_does():
    job = full_job()
    job.passes.hires = HiresFix(scale=2, upscaler="latent", denoise=0.5)
    graph = job_graph(job)
    apply = next(k for k, n in graph.items() if n["class_type"] == "ControlNetApplyAdvanced")
    base, hires = nodes(graph, "KSampler")
    assert base["positive"] == [apply, 0] and hires["positive"][0] != apply


def test_a_server_without_the_hires_upscale_model_refuses_it_by_name():
    job = hires_job("/u/4x-UltraSharp.safetensors")
    files = ServerFiles()
    info = ServerInfo(url="http://gpu-1:8188", version="0.3.64", devices=[], nodes=nodes_of(job, files),
                      models={"checkpoint": ["dreamshaper_8.safetensors"], "upscale model": ["RealESRGAN_x4.pth"]})
    assert info.missing(job) == ["The upscale model 4x-UltraSharp.safetensors is not on the server http://gpu-1:8188."]
    info.models["upscale model"].append("4x-UltraSharp.safetensors")
    assert info.missing(job) == []
    info.nodes.discard("ImageUpscaleWithModel")
    assert info.missing(job) == ["The server http://gpu-1:8188 lacks the node ImageUpscaleWithModel, which this job needs."]
    refiner = sdxl_refiner_job()
    info.nodes |= nodes_of(refiner, ServerFiles(family="sdxl"))
    info.models["checkpoint"].append("sd_xl_base_1.0.safetensors")
    assert info.missing(refiner) == ["The checkpoint sd_xl_refiner_1.0.safetensors is not on the server http://gpu-1:8188."]


def test_model_lists_of_v3_nodes_are_read():
    objects = {"UpscaleModelLoader": {"input": {"required": {"model_name": ["COMBO", {"options": ["4x.safetensors"]}]}}},
               "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors"], {}]}}}}
    assert _choices(objects, "UpscaleModelLoader", "model_name") == ["4x.safetensors"]
    assert _choices(objects, "CheckpointLoaderSimple", "ckpt_name") == ["a.safetensors"]


def test_the_family_of_a_checkpoint_on_this_computer_picks_the_refiner_path(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    sdxl = tmp_path / "base.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": np.zeros(4, np.float32)}, str(sdxl))
    sd15 = tmp_path / "sd15.safetensors"
    save_file({"cond_stage_model.transformer.text_model.final_layer_norm.weight": np.zeros(4, np.float32)}, str(sd15))
    assert (local_family(str(sdxl)), local_family(str(sd15))) == ("sdxl", "sd15")
    assert local_family(str(tmp_path / "absent.safetensors")) == "" and local_family("org/repo") == ""
    job = sdxl_refiner_job()
    job.model.checkpoint = str(sdxl)
    info = ServerInfo(url="http://h:1", version="", devices=[], nodes=set())
    assert info.files_for(job).family == "sdxl"
    # a refiner of another family is refused before anything is sent, as the local engine does
    job.passes.refiner.model = str(sd15)
    assert refiner_mismatch(job) == ("The refiner sd15.safetensors is an SD 1.5 model but the model is SDXL; "
                                     "use a refiner of the same family.")
    with pytest.raises(UserError, match="same family"):
        ComfyBackend(["http://127.0.0.1:9"]).check(job)
    job.passes.refiner.model = "/elsewhere/refiner.safetensors"  # not here: the server finds out
    assert refiner_mismatch(job) is None
