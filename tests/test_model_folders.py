"""Existing AUTOMATIC1111 / Forge / ComfyUI / InvokeAI model folders, read in place (no torch)."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from asset_studio.core.model_folders import detect_roots, list_models, read_extra_model_paths
from asset_studio.errors import UserError


def weights(path, keys):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.zeros(2, np.float32) for k in keys}, str(path))
    return path


SDXL_CKPT = ["conditioner.embedders.1.model.ln_final.weight", "model.diffusion_model.out.2.weight"]
SD15_CKPT = ["cond_stage_model.transformer.text_model.final_layer_norm.weight", "model.diffusion_model.out.2.weight"]
SD2_CKPT = ["cond_stage_model.model.ln_final.weight", "model.diffusion_model.out.2.weight"]
XL_LORA = ["lora_unet_x.lora_down.weight", "lora_te2_y.lora_down.weight"]
LORA15 = ["lora_unet_x.lora_down.weight", "lora_te_y.lora_down.weight"]
VAE = ["encoder.down.0.block.0.conv1.weight"]
CN = ["control_model.input_blocks.0.0.weight"]


def found(models):
    return sorted((m.path.name, m.kind, m.family, m.tool) for m in models)


def test_automatic1111_and_forge_installs(tmp_path):
    webui = tmp_path / "stable-diffusion-webui"
    weights(webui / "models" / "Stable-diffusion" / "xl" / "juggernaut.safetensors", SDXL_CKPT)
    weights(webui / "models" / "Lora" / "pixel.safetensors", XL_LORA)
    weights(webui / "models" / "LyCORIS" / "ink.safetensors", LORA15)
    weights(webui / "models" / "VAE" / "sdxl_vae.safetensors", VAE)
    weights(webui / "extensions" / "sd-webui-controlnet" / "models" / "canny.safetensors", CN)
    (webui / "models" / "Lora" / "old.ckpt").write_bytes(b"pickle")  # never listed
    (webui / "models" / "Lora" / "broken.safetensors").write_bytes(b"\xff" * 20)
    models = list_models(detect_roots(webui))
    assert found(m for m in models if not m.error) == [
        ("canny.safetensors", "controlnet", "sd15", "AUTOMATIC1111"),
        ("ink.safetensors", "lora", "sd15", "AUTOMATIC1111"),
        ("juggernaut.safetensors", "checkpoint", "sdxl", "AUTOMATIC1111"),
        ("pixel.safetensors", "lora", "sdxl", "AUTOMATIC1111"),
        ("sdxl_vae.safetensors", "vae", "", "AUTOMATIC1111"),
    ]
    broken = [m for m in models if m.error]
    assert [m.path.name for m in broken] == ["broken.safetensors"] and "not a valid .safetensors" in broken[0].error
    (webui / "modules_forge").mkdir()
    assert detect_roots(webui)[0].tool == "Forge"
    assert detect_roots(webui / "models")[0].tool == "AUTOMATIC1111"  # its models folder alone


def test_comfyui_and_invokeai_installs(tmp_path):
    comfy = tmp_path / "ComfyUI"
    weights(comfy / "models" / "checkpoints" / "sd21.safetensors", SD2_CKPT)
    weights(comfy / "models" / "loras" / "a.safetensors", LORA15)
    weights(comfy / "models" / "controlnet" / "depth.safetensors", CN)
    assert found(list_models(detect_roots(comfy))) == [
        ("a.safetensors", "lora", "sd15", "ComfyUI"),
        ("depth.safetensors", "controlnet", "sd15", "ComfyUI"),
        ("sd21.safetensors", "checkpoint", "sd2", "ComfyUI"),
    ]
    invoke = tmp_path / "invokeai"
    (invoke / "invokeai.yaml").parent.mkdir(parents=True)
    (invoke / "invokeai.yaml").write_text("schema_version: 4.0.2\n")
    weights(invoke / "models" / "sdxl" / "main" / "dream.safetensors", SDXL_CKPT)
    weights(invoke / "models" / "sd-2" / "lora" / "unet_only.safetensors", ["lora_unet_x.lora_down.weight"])
    weights(invoke / "models" / "sd-1" / "vae" / "ft.safetensors", VAE)
    assert found(list_models(detect_roots(invoke))) == [
        ("dream.safetensors", "checkpoint", "sdxl", "InvokeAI"),
        ("ft.safetensors", "vae", "sd15", "InvokeAI"),
        ("unet_only.safetensors", "lora", "sd2", "InvokeAI"),  # the base-model folder says what the header cannot
    ]
    with pytest.raises(UserError, match="is not an AUTOMATIC1111, Forge, ComfyUI or InvokeAI folder"):
        detect_roots(tmp_path / "ComfyUI" / "models" / "loras")


def test_comfyui_extra_model_paths_yaml(tmp_path, monkeypatch):
    webui = tmp_path / "webui"
    weights(webui / "models" / "Stable-diffusion" / "v15.safetensors", SD15_CKPT)
    weights(webui / "models" / "Lora" / "p.safetensors", XL_LORA)
    weights(webui / "models" / "LyCORIS" / "q.safetensors", LORA15)
    shared = tmp_path / "shared-vae"
    weights(shared / "v.safetensors", VAE)
    monkeypatch.setenv("SHARED_VAE", str(shared))
    comfy = tmp_path / "ComfyUI"
    comfy.mkdir()
    (comfy / "extra_model_paths.yaml").write_text(
        "a111:\n"
        "    base_path: ../webui/\n"  # relative to the yaml file, as ComfyUI reads it
        "    checkpoints: models/Stable-diffusion\n"
        "    configs: models/Stable-diffusion\n"
        "    loras: |\n"
        "         models/Lora\n"
        "         models/LyCORIS\n"
        "    upscale_models: models/ESRGAN\n"
        "other:\n"
        "    vae: $SHARED_VAE\n"
    )
    roots = read_extra_model_paths(comfy / "extra_model_paths.yaml")
    assert [r.tool for r in roots] == ["ComfyUI extra_model_paths (a111)", "ComfyUI extra_model_paths (other)"]
    assert [(n, k, f) for n, k, f, _ in found(list_models(roots))] == [
        ("p.safetensors", "lora", "sdxl"), ("q.safetensors", "lora", "sd15"),
        ("v.safetensors", "vae", ""), ("v15.safetensors", "checkpoint", "sd15")]
    assert len(list_models(detect_roots(comfy))) == 4  # found through the install folder as well
    from asset_studio.core.lora_tags import find_lora_by_name
    from asset_studio.core.model_folders import folders_of_kind

    loras = folders_of_kind(roots, "lora")
    assert loras == [webui / "models" / "Lora", webui / "models" / "LyCORIS"]
    assert find_lora_by_name("q", loras) == webui / "models" / "LyCORIS" / "q.safetensors"
    (comfy / "extra_model_paths.yaml").write_text("a111:\n  base_path: [unclosed\n")
    with pytest.raises(UserError, match=r"^extra_model_paths.yaml is not valid YAML \(line \d+\)\.$"):
        read_extra_model_paths(comfy / "extra_model_paths.yaml")


def test_an_added_install_is_listed_and_used_in_place(tmp_path, monkeypatch, capsys):
    """`models add-folder` remembers the install; its models are listed beside the studio's own,
    and <lora:NAME> finds LoRAs in it, without copying a byte."""
    from asset_studio.cli import main
    from asset_studio.core.models import scan_all
    from asset_studio.core.request import AssetRequest, prepare

    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    webui = tmp_path / "stable-diffusion-webui"
    weights(webui / "models" / "Stable-diffusion" / "dream.safetensors", SD15_CKPT)
    lora = weights(webui / "models" / "Lora" / "pixel.safetensors", LORA15)
    assert main(["models", "add-folder", str(webui)]) == 0
    assert "1 checkpoints, 1 loras" in capsys.readouterr().out
    listed = {m.name: m for m in scan_all(tmp_path / "empty-models")}
    assert listed["dream"].ref == str(webui / "models" / "Stable-diffusion" / "dream.safetensors")
    assert listed["dream"].source == "AUTOMATIC1111 folder" and listed["pixel"].kind == "lora"
    job = prepare(AssetRequest("a coin <lora:pixel:0.7>", model="m"))
    assert job.model.loras[0].path == str(lora) and job.model.loras[0].weight == 0.7
    assert main(["models", "add-folder", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
