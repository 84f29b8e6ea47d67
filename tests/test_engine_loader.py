"""Model loading without running a model: where files are, which family, what is refused,
the offline single-file configs, devices, sampler names and the pipeline cache."""

from __future__ import annotations

import json
import os
import struct

import pytest

from asset_studio.engine.loader import (
    PipelineCache,
    detect_family,
    family_of_keys,
    resolve_model,
    single_file_config_dir,
)
from asset_studio.core.samplers import SAMPLERS, lookup
from asset_studio.engine.samplers import build_scheduler
from asset_studio.errors import UserError


def write_safetensors(path, shapes: dict[str, list[int]]):
    """A valid .safetensors file with zero-filled F16 tensors of the given shapes (stdlib only)."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2
        for d in shape:
            size *= d
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return path


def test_family_of_folders(tiny_sd15_dir, tiny_sdxl_dir):
    assert detect_family(tiny_sd15_dir) == "sd15"
    assert detect_family(str(tiny_sdxl_dir)) == "sdxl"


@pytest.mark.parametrize(
    "shapes,family",
    [
        ({"cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": [4, 2]}, "sd15"),
        ({"cond_stage_model.model.token_embedding.weight": [4, 2]}, "sd2"),
        ({"conditioner.embedders.1.model.positional_embedding": [4, 2]}, "sdxl"),
        # UNet-only files: told apart by SDXL's label embedding or the cross-attention width
        ({"model.diffusion_model.label_emb.0.0.weight": [2, 2]}, "sdxl"),
        ({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [2, 768]}, "sd15"),
        ({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [2, 1024]}, "sd2"),
    ],
)
def test_family_of_single_files(tmp_path, shapes, family):
    assert family_of_keys(shapes) == family
    assert detect_family(write_safetensors(tmp_path / "m.safetensors", shapes)) == family


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "absent.safetensors", "was not found"),
        (lambda d: (d / "model.ckpt").write_bytes(b"PK pickle") and d / "model.ckpt", "pickle file"),
        (lambda d: (d / "model.bin").write_bytes(b"pickle") and d / "model.bin", "pickle file"),
        (lambda d: (d / "model.gguf").write_bytes(b"x") and d / "model.gguf", "not a model file"),
        (lambda d: d, "has no model_index.json"),
    ],
)
def test_bad_model_paths_are_one_sentence(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        resolve_model(str(make(tmp_path)))


def test_corrupt_truncated_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(UserError, match="not a valid .safetensors file"):
        detect_family(junk)
    good = write_safetensors(tmp_path / "cut.safetensors", {"cond_stage_model.model.x": [64, 64]})
    good.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(UserError, match="not a valid .safetensors file"):
        detect_family(good)
    lora = write_safetensors(tmp_path / "lora.safetensors", {"lora_unet_down_blocks_0.lora_down.weight": [4, 4]})
    with pytest.raises(UserError, match="is a LoRA"):
        detect_family(lora)
    other = write_safetensors(tmp_path / "other.safetensors", {"transformer.blocks.0.weight": [4]})
    with pytest.raises(UserError, match="not a Stable Diffusion"):
        detect_family(other)
    inpaint = write_safetensors(tmp_path / "inpaint.safetensors", {
        "cond_stage_model.transformer.text_model.x": [2], "model.diffusion_model.input_blocks.0.0.weight": [8, 9, 3, 3],
    })
    with pytest.raises(UserError, match="inpainting"):
        detect_family(inpaint)


def test_repo_id_not_in_the_cache_asks_for_download(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="not in the local Hugging Face cache; pass --download"):
        resolve_model("someone/some-model")


def test_repo_id_from_the_local_cache(tiny_sd15_dir, tmp_path, monkeypatch):
    """A repo id resolves to its cached snapshot without touching the network."""
    import shutil

    import huggingface_hub.constants as constants

    repo = tmp_path / "models--artist--tiny-sd15"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_sd15_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    source = resolve_model("artist/tiny-sd15")
    assert source.kind == "repo" and source.path.name == commit and source.name == "tiny-sd15"
    assert detect_family("artist/tiny-sd15") == "sd15"


@pytest.mark.parametrize("family,pads", [
    ("sd15", {"tokenizer": "<|endoftext|>"}),
    ("sd2", {"tokenizer": "!"}),
    ("sdxl", {"tokenizer": "<|endoftext|>", "tokenizer_2": "!"}),
])
def test_offline_single_file_configs(tmp_path, monkeypatch, family, pads):
    from transformers import CLIPTokenizer

    monkeypatch.setenv("ASSET_STUDIO_CACHE", str(tmp_path))
    folder = single_file_config_dir(family)
    assert folder.is_relative_to(tmp_path)
    assert single_file_config_dir(family) == folder  # written once, then reused
    index = json.loads((folder / "model_index.json").read_text())
    for name, spec in index.items():
        if isinstance(spec, list) and spec[0] is not None and name not in pads:
            assert (folder / name).is_dir(), name
    for sub, pad in pads.items():
        tok = CLIPTokenizer.from_pretrained(folder / sub)
        assert tok.pad_token == pad
        assert tok("a red potion").input_ids[0] == 49406 and tok.model_max_length == 77


def test_packaged_unet_configs_describe_the_real_models():
    """Built empty (no memory), each UNet config has the official model's parameter count."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    from asset_studio.engine.loader import CONFIGS_DIR

    expected = {"sd15": 859_520_964, "sd21": 865_910_724, "sdxl": 2_567_463_684}
    for name, count in expected.items():
        with init_empty_weights():
            unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(CONFIGS_DIR / name / "unet"))
        assert sum(p.numel() for p in unet.parameters()) == count, name


def test_devices():
    import torch

    from asset_studio.engine.device import choose_device

    assert choose_device("cpu") == (torch.device("cpu"), torch.float32)
    assert choose_device("cpu", "bf16")[1] == torch.bfloat16
    with pytest.raises(UserError, match="Unknown device"):
        choose_device("tpu9")
    with pytest.raises(UserError, match="Unknown dtype"):
        choose_device("cpu", "fp8")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            choose_device("cuda")


def test_device_from_environment(monkeypatch):
    import torch

    from asset_studio.engine.device import choose_device

    monkeypatch.setenv("ASSET_STUDIO_DEVICE", "cpu")
    monkeypatch.setenv("ASSET_STUDIO_DTYPE", "fp16")
    assert choose_device() == (torch.device("cpu"), torch.float16)


def test_sampler_names():
    for required in ("Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE Karras", "DDIM", "LCM",
                     "UniPC", "Heun", "DPM2"):
        assert required in SAMPLERS
    assert lookup("euler A").name == "Euler a"
    assert lookup("dpmpp_2m_karras").name == "DPM++ 2M Karras"
    with pytest.raises(UserError) as err:
        lookup("Euler b")
    assert "Unknown sampler 'Euler b'" in str(err.value) and "DPM++ 2M Karras" in str(err.value)


def test_sde_sampler_is_seeded_per_image():
    config = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
    scheduler = build_scheduler("DPM++ SDE Karras", config, seed=42)
    assert scheduler.config.noise_sampler_seed == 42 and scheduler.config.use_karras_sigmas


def test_cache_keeps_capacity_models_and_evicts_the_oldest(tiny_sd15_dir, tiny_sdxl_dir):
    import torch

    cache = PipelineCache(capacity=1)
    first = cache.get(str(tiny_sd15_dir), torch.device("cpu"), torch.float32)
    assert cache.get(str(tiny_sd15_dir), torch.device("cpu"), torch.float32) is first
    assert cache.loads == 1 and first.family == "sd15"
    second = cache.get(str(tiny_sdxl_dir), torch.device("cpu"), torch.float32)
    assert cache.loads == 2 and len(cache) == 1 and second.family == "sdxl"
    cache.get(str(tiny_sd15_dir), torch.device("cpu"), torch.float32)
    assert cache.loads == 3  # the evicted model had to load again
