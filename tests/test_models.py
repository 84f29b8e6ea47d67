"""core/models.py and `asset-studio models`: finding, classifying, importing and downloading models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from asset_studio.core import models
from asset_studio.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def _single_file(path: Path, keys: list[str]) -> Path:
    save_file({k: np.zeros((2, 2), dtype=np.float16) for k in keys}, str(path))
    return path


SD15_KEYS = ["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.transformer.text_model.x.weight"]
SDXL_KEYS = ["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.1.model.ln_final.weight"]
SD2_KEYS = ["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.model.ln_final.weight"]
LORA_KEYS = ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
             "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"]


def test_classify_single_files():
    assert models.classify_safetensors(SD15_KEYS) == ("checkpoint", "sd15")
    assert models.classify_safetensors(SDXL_KEYS) == ("checkpoint", "sdxl")
    assert models.classify_safetensors(SD2_KEYS) == ("checkpoint", "sd2")
    assert models.classify_safetensors(LORA_KEYS) == ("lora", "sd15")
    assert models.classify_safetensors(["lora_te2_x.lora_down.weight"]) == ("lora", "sdxl")
    assert models.classify_safetensors(["control_model.input_blocks.0.0.weight"]) == ("controlnet", "sd15")
    assert models.classify_safetensors(["something.else"]) == ("unknown", "")


def test_scan_models_folder(tmp_path, tiny_sd15_dir, tiny_sdxl_dir):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copytree(tiny_sd15_dir, folder / "tiny-sd15")
    (folder / "tiny-sdxl").symlink_to(tiny_sdxl_dir, target_is_directory=True)
    _single_file(folder / "civitai-xl.safetensors", SDXL_KEYS)
    (folder / "loras").mkdir()
    _single_file(folder / "loras" / "shiny.safetensors", LORA_KEYS)
    (folder / "broken.safetensors").write_bytes(b"not a model")
    (folder / "catalog.toml").write_text("")
    found = {m.name: m for m in models.scan_models_dir(folder)}
    assert set(found) == {"tiny-sd15", "tiny-sdxl", "civitai-xl", "shiny"}
    assert (found["tiny-sd15"].kind, found["tiny-sd15"].family) == ("checkpoint", "sd15")
    assert (found["tiny-sdxl"].kind, found["tiny-sdxl"].family) == ("checkpoint", "sdxl")
    assert (found["civitai-xl"].kind, found["civitai-xl"].family_label) == ("checkpoint", "SDXL")
    assert found["shiny"].kind == "lora"
    assert found["tiny-sd15"].size_bytes > 100_000 and found["tiny-sd15"].ref == str(folder / "tiny-sd15")
    assert models.scan_models_dir(tmp_path / "absent") == []


def test_scan_hugging_face_cache(tmp_path, tiny_sd15_dir):
    """A cache laid out as huggingface_hub writes it: blobs, a snapshot of links, a ref."""
    repo = tmp_path / "hub" / "models--someone--tiny-sd"
    snap = repo / "snapshots" / ("a" * 40)
    for src in tiny_sd15_dir.rglob("*"):
        if src.is_file():
            blob = repo / "blobs" / f"{abs(hash(str(src))):x}"
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, blob)
            link = snap / src.relative_to(tiny_sd15_dir)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(blob)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    found = models.scan_hf_cache(tmp_path / "hub")
    assert [(m.ref, m.kind, m.family, m.source) for m in found] == [
        ("someone/tiny-sd", "checkpoint", "sd15", "Hugging Face cache")]
    assert found[0].size_bytes > 100_000
    assert models.scan_hf_cache(tmp_path / "no-cache-here") == []


def test_import_checkpoint(tmp_path):
    src = _single_file(tmp_path / "dreamy.safetensors", SD15_KEYS)
    dest = tmp_path / "models"
    model = models.import_checkpoint(src, dest)
    assert Path(model.ref) == dest / "dreamy.safetensors" and (dest / "dreamy.safetensors").read_bytes() == src.read_bytes()
    assert (model.kind, model.family) == ("checkpoint", "sd15")
    lora = models.import_checkpoint(_single_file(tmp_path / "ink.safetensors", LORA_KEYS), dest)
    assert Path(lora.ref) == dest / "loras" / "ink.safetensors"
    with pytest.raises(UserError, match="already exists"):
        models.import_checkpoint(src, dest)
    (tmp_path / "evil.ckpt").write_bytes(b"\x80\x04pickle")
    with pytest.raises(UserError, match="pickle"):
        models.import_checkpoint(tmp_path / "evil.ckpt", dest)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(UserError, match="safetensors"):
        models.import_checkpoint(tmp_path / "junk.safetensors", dest)
    with pytest.raises(UserError, match="no Stable Diffusion weights"):
        models.import_checkpoint(_single_file(tmp_path / "odd.safetensors", ["x.y"]), dest)
    assert not list(dest.rglob("*.part"))


def test_catalog_lists_the_models_artists_need():
    entries = {e.id: e for e in models.load_catalog()}
    wanted = {"sd15", "sdxl", "sd-turbo", "sdxl-turbo", "lcm-lora-sd15", "lcm-lora-sdxl", "taesd", "taesdxl",
              "controlnet-canny-sd15", "controlnet-lineart-sd15", "controlnet-scribble-sd15",
              "controlnet-canny-sdxl", "controlnet-lineart-sdxl", "controlnet-scribble-sdxl"}
    assert wanted <= set(entries)
    assert entries["sdxl"].repo == "stabilityai/stable-diffusion-xl-base-1.0"
    for e in entries.values():
        assert "/" in e.repo and e.allow_patterns, e.id
        # safetensors only: no pickle weights are ever fetched
        assert not any(p.endswith((".bin", ".ckpt", ".pt")) for p in e.allow_patterns), e.id
    assert models.find_catalog_entry("stabilityai/sd-turbo").id == "sd-turbo"
    with pytest.raises(UserError, match="No catalog model"):
        models.find_catalog_entry("nope")


def test_bad_catalog_is_one_sentence(tmp_path):
    bad = tmp_path / "catalog.toml"
    bad.write_text("[[model]]\nid = 'x'\n")
    with pytest.raises(UserError, match="missing or unknown fields"):
        models.load_catalog(bad)
    bad.write_text("not = [toml")
    with pytest.raises(UserError, match="not valid TOML"):
        models.load_catalog(bad)


def test_download_offline_fails_with_a_clear_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    entry = models.find_catalog_entry("taesd")
    with pytest.raises(UserError) as info:
        models.download_entry(entry, cache_dir=tmp_path)
    text = str(info.value)
    assert text.startswith("Cannot download TAESD") and "\n" not in text
    assert not list(tmp_path.rglob("*.safetensors"))


def test_download_progress_resume_and_cancel(monkeypatch, tmp_path):
    """The download loop against a stand-in hub: bytes add up, cached files are skipped, cancel stops."""
    import threading
    from types import SimpleNamespace

    import huggingface_hub

    files = {"config.json": 10, "diffusion_pytorch_model.safetensors": 1000, "README.md": 5}
    fetched = []

    def model_info(self, repo, files_metadata=False):
        return SimpleNamespace(sha="b" * 40, siblings=[SimpleNamespace(rfilename=n, size=s) for n, s in files.items()])

    def hf_hub_download(repo, filename, revision=None, cache_dir=None, tqdm_class=None):
        target = tmp_path / "snap" / filename
        if not target.exists():  # what the real cache does: a finished file is not fetched again
            bar = tqdm_class(total=files[filename])
            for _ in range(files[filename] // 5):
                bar.update(5)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x" * files[filename])
            fetched.append(filename)
        return str(target)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    entry = models.find_catalog_entry("taesd")  # allow_patterns drop the README
    cancel = threading.Event()
    seen = []

    def stop_midway(done, total, name):
        seen.append((done, total))
        if done >= 500:
            cancel.set()

    with pytest.raises(models.Cancelled):
        models.download_entry(entry, on_progress=stop_midway, cancel=cancel)
    assert fetched == ["config.json"] and seen[-1][1] == 1010
    cancel.clear()
    seen.clear()
    folder = models.download_entry(entry, on_progress=lambda d, t, n: seen.append((d, t)), cancel=cancel)
    assert folder == str(tmp_path / "snap")
    assert fetched == ["config.json", "diffusion_pytorch_model.safetensors"]  # config.json was not fetched again
    assert seen[-1] == (1010, 1010)


def test_cli_models_list_and_download(capsys, tmp_path, monkeypatch):
    from asset_studio.cli import main

    monkeypatch.setattr(models, "scan_hf_cache", lambda cache_dir=None: [])
    (tmp_path / "m").mkdir()
    _single_file(tmp_path / "m" / "dreamy.safetensors", SD15_KEYS)
    shutil.copy(REPO / "models" / "catalog.toml", tmp_path / "m" / "catalog.toml")
    assert main(["models", "--models", str(tmp_path / "m"), "list"]) == 0
    out = capsys.readouterr().out
    assert "dreamy" in out and "SD 1.x" in out and "sdxl-turbo" in out
    assert main(["models", "download", "no-such-model"]) == 2
    assert "No catalog model is called 'no-such-model'" in capsys.readouterr().err


def test_a_pipeline_folder_without_its_unet_is_listed_as_incomplete(tmp_path, tiny_sd15_dir):
    folder = tmp_path / "models"
    shutil.copytree(tiny_sd15_dir, folder / "half-copied")
    shutil.rmtree(folder / "half-copied" / "unet")
    [model] = models.scan_models_dir(folder)
    assert (model.name, model.kind) == ("half-copied", "incomplete")
