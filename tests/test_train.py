"""Training a style pack (engine/train.py, `asset-studio train-style`) on the tiny models.

A handful of generated sprites at 64 px, a few steps at a high learning rate: enough for the
loss to move and the LoRA to change images, fast on a CPU.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from asset_studio.errors import UserError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_and_a_private_cache")]

FAST = dict(steps=6, rank=4, resolution=64, bucket_step=16, learning_rate=1e-2, sample_steps=1, device="cpu")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Five sprites: coloured shapes on transparency (one tall, one opaque), one with a caption file."""
    folder = tmp_path_factory.mktemp("sprites")
    shapes = [("red_potion", (48, 48)), ("blue_shield", (48, 48)), ("green_gem", (64, 64)),
              ("knight", (48, 72)), ("gold_coin", (40, 40))]
    for i, (name, size) in enumerate(shapes):
        image = Image.new("RGBA", size, (0, 0, 0, 0) if i != 2 else (30, 30, 30, 255))
        draw = ImageDraw.Draw(image)
        colour = (60 * i % 256, 200 - 30 * i, 40 + 50 * i, 255)
        draw.ellipse((4, 4, size[0] - 4, size[1] - 4), fill=colour, outline=(0, 0, 0, 255), width=2)
        draw.rectangle((size[0] // 3, size[1] // 3, size[0] // 2, size[1] // 2), fill=(255, 255, 255, 255))
        image.save(folder / f"{name}.png")
    (folder / "knight.txt").write_text("knight, standing, side view", encoding="utf-8")
    return folder


def config(data_dir, model, out, **changes):
    from asset_studio.engine.train import TrainConfig

    return TrainConfig(data_dir=str(data_dir), model=str(model), out_dir=str(out), **{**FAST, **changes})


def cli(*args) -> tuple[int, str, str]:
    from asset_studio.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_pack(tmp_path_factory, tiny_sd15_dir, data_dir, one_thread_and_a_private_cache) -> Path:
    """A pack written by the CLI into a user styles folder ($ASSET_STUDIO_HOME/styles/pixel-knights)."""
    home = tmp_path_factory.mktemp("home")
    out = home / "styles" / "pixel-knights"
    code, stdout, stderr = cli("train-style", data_dir, "--model", tiny_sd15_dir, "--out", out, "--trigger", "pxk",
                               "--steps", 6, "--rank", 4, "--lr", 1e-2, "--resolution", 64, "--bucket-step", 16,
                               "--sample-steps", 1, "--seed", 5, "--device", "cpu")
    assert code == 0, stderr
    assert stdout.strip() == str(out.resolve())
    assert "step 6/6" in stderr and "loss" in stderr and "ETA" in stderr
    return out


def lora_file(pack: Path) -> Path:
    return next((pack / "loras").glob("*.safetensors"))


def lora_modules(path: Path) -> dict[str, int]:
    """Modules per kohya prefix (lora_unet_, lora_te_, lora_te1_, lora_te2_) in a LoRA file."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    modules = {k.split(".")[0] for k in keys}
    counts: dict[str, int] = {}
    for module in modules:
        prefix = next(p for p in ("lora_unet_", "lora_te1_", "lora_te2_", "lora_te_") if module.startswith(p))
        counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def tuner_layers(model) -> int:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return sum(isinstance(m, BaseTunerLayer) for m in model.modules()) if model is not None else 0


# --- the pack -------------------------------------------------------------------------------------


def test_cli_pack_loads_as_a_style_pack_and_exports(cli_pack, tmp_path, monkeypatch):
    import json

    from safetensors import safe_open

    from asset_studio.core.packfile import export_stylepack, inspect_stylepack
    from asset_studio.core.stylepack import find_style

    monkeypatch.setenv("ASSET_STUDIO_HOME", str(cli_pack.parent.parent))
    pack = find_style("pixel-knights")
    assert pack.folder.resolve() == cli_pack.resolve()
    assert pack.family == "sd15" and pack.prompt == "pxk, {subject}" and pack.trigger_words == ["pxk"]
    assert Path(pack.recommended_models[0]).name == "tiny-sd15"
    assert pack.defaults.width == pack.defaults.height == 64
    assert pack.postprocess.remove_background  # most sprites had transparency
    assert len(pack.previews) == 2 and all(Image.open(cli_pack / p).size == (64, 64) for p in pack.previews)

    with safe_open(str(lora_file(cli_pack)), "pt") as f:
        meta, keys = f.metadata(), list(f.keys())
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_resolution"] == "(64, 64)"
    assert meta["ss_max_train_steps"] == "6" and meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "4"
    assert meta["ss_num_train_images"] == "5" and meta["ss_output_name"] == "pixel-knights"
    tags = json.loads(meta["ss_tag_frequency"])
    assert len(tags) == 1 and next(iter(tags.values()))["pxk"] == 5 and next(iter(tags.values()))["side view"] == 1
    assert all(k.startswith("lora_unet_") and k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha"))
               for k in keys)

    out = export_stylepack(str(cli_pack), tmp_path / "knights")
    inspected, manifest = inspect_stylepack(out)
    assert inspected.id == "pixel-knights"
    assert not any(name.startswith(".train") for name in manifest["files"])  # the checkpoint stays home
    assert "loras/pixel-knights.safetensors" in manifest["files"]


def test_the_trained_lora_changes_images_through_request_and_local_backend(cli_pack, tmp_path):
    from asset_studio.core.request import AssetRequest, Overrides, prepare
    from asset_studio.engine.backend import LocalBackend
    from asset_studio.engine.loader import PipelineCache

    request = AssetRequest(subject="a shield", style=str(cli_pack),
                           overrides=Overrides(steps=2, seed=3, no_finishing=True))
    job = prepare(request, tmp_path)
    assert job.prompt.text.startswith("pxk, ") and len(job.model.loras) == 1
    assert Path(job.model.loras[0].path) == lora_file(cli_pack).resolve()
    backend = LocalBackend(device="cpu", cache=PipelineCache())
    styled = np.asarray(backend.generate(job)[0].image, dtype=np.float32)
    pipe = backend.load(job).pipe
    assert tuner_layers(pipe.unet) == lora_modules(lora_file(cli_pack))["lora_unet_"]  # every module applied
    job.model.loras = []
    plain = np.asarray(backend.generate(job)[0].image, dtype=np.float32)
    assert np.abs(styled - plain).mean() > 0.5


def test_plain_diffusers_applies_every_module(cli_pack, tmp_path, tiny_sd15_dir, tiny_sdxl_dir, data_dir):
    import diffusers

    from asset_studio.core import families
    from asset_studio.core.safetensors_header import read_header_file
    from asset_studio.engine.train import train

    # SDXL with both text encoders trained: lora_unet_, lora_te1_, lora_te2_.
    result = train(config(data_dir, tiny_sdxl_dir, tmp_path / "xl", steps=2, train_text_encoder=True))
    header = read_header_file(result.lora_path)
    assert families.classify_file({k: list(v.shape) for k, v in header.tensors.items()}) == ("lora", "sdxl")
    assert header.metadata["ss_base_model_version"] == "sdxl_base_v1-0"
    counts = lora_modules(result.lora_path)
    assert set(counts) == {"lora_unet_", "lora_te1_", "lora_te2_"}
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(str(tiny_sdxl_dir))
    pipe.load_lora_weights(str(result.lora_path))
    assert tuner_layers(pipe.unet) == counts["lora_unet_"]
    assert tuner_layers(pipe.text_encoder) == counts["lora_te1_"]
    assert tuner_layers(pipe.text_encoder_2) == counts["lora_te2_"]

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(str(tiny_sd15_dir))
    pipe.load_lora_weights(str(lora_file(cli_pack)))
    assert tuner_layers(pipe.unet) == lora_modules(lora_file(cli_pack))["lora_unet_"] > 0


# --- the training -----------------------------------------------------------------------------------


def test_a_few_steps_lower_the_loss_on_the_training_images(tmp_path, tiny_sd15_dir, data_dir):
    from asset_studio.engine.train import Trainer

    # Gradient checkpointing (on by default on CUDA) on the CPU too: the same loop, recomputed activations.
    trainer = Trainer(config(data_dir, tiny_sd15_dir, tmp_path / "pack", steps=8, flip=True,
                             gradient_checkpointing=True))
    trainer.prepare()
    assert trainer.pipe.unet.is_gradient_checkpointing
    before = trainer.fixed_loss()
    assert trainer.fixed_loss() == before  # fixed timesteps and noise: the measure itself does not move
    result = trainer.run()
    after = trainer.fixed_loss()
    assert result.steps == 8 and len(result.losses) == 8
    assert after < before * 0.99, (before, after)


def test_resume_after_cancel_or_crash_equals_an_uninterrupted_run(tmp_path, tiny_sd15_dir, data_dir):
    import torch
    from safetensors.torch import load_file

    from asset_studio.engine.train import CheckpointSaved, StepDone, TrainingCancelled, train

    common = dict(steps=5, checkpoint_every=2, flip=True, batch_size=2, trigger="pxk", sample_prompts=["pxk, a cup"])
    whole = train(config(data_dir, tiny_sd15_dir, tmp_path / "whole", **common))

    # Cancelled after step 3: a checkpoint of step 3 is written, then resumed.
    events = []
    cancelled = train(config(data_dir, tiny_sd15_dir, tmp_path / "cancel", **common), on_event=events.append,
                      should_cancel=lambda: any(isinstance(e, StepDone) and e.step == 3 for e in events))
    assert cancelled.cancelled and cancelled.steps == 3 and cancelled.lora_path is None
    assert isinstance(events[-1], TrainingCancelled) and events[-1].checkpoint.is_file()
    assert not (tmp_path / "cancel" / "style.toml").exists()
    with pytest.raises(UserError, match="unfinished training; pass --resume"):
        train(config(data_dir, tiny_sd15_dir, tmp_path / "cancel", **common))
    resumed = train(config(data_dir, tiny_sd15_dir, tmp_path / "cancel", resume=True, **common))

    # Killed during step 4: the checkpoint of step 2 is what is left.
    def crash(event):
        if isinstance(event, StepDone) and event.step == 4:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        train(config(data_dir, tiny_sd15_dir, tmp_path / "crash", **common), on_event=crash)
    saved = []
    recovered = train(config(data_dir, tiny_sd15_dir, tmp_path / "crash", resume=True, **common),
                      on_event=lambda e: saved.append(e) if isinstance(e, CheckpointSaved) else None)
    assert [e.step for e in saved] == [4, 5]

    assert resumed.losses == whole.losses[3:] and recovered.losses == whole.losses[2:]
    reference = load_file(str(whole.lora_path))
    for result in (resumed, recovered):
        tensors = load_file(str(result.lora_path))
        assert tensors.keys() == reference.keys()
        assert all(torch.equal(tensors[k], reference[k]) for k in reference)
    assert any(reference[k].abs().max() > 0 for k in reference if "lora_up" in k)  # it did train
    for name in ("whole", "cancel", "crash"):  # the same sample image too
        images = [np.asarray(Image.open(tmp_path / name / "previews" / "preview-1.png"))]
        assert np.array_equal(images[0], np.asarray(Image.open(tmp_path / "whole" / "previews" / "preview-1.png")))


def test_refusals_are_one_sentence(tmp_path, tiny_sd15_dir, data_dir, cli_pack):
    from asset_studio.engine.train import train

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="holds no images; a style needs at least 3"):
        train(config(empty, tiny_sd15_dir, tmp_path / "a"))
    with pytest.raises(UserError, match="no training to resume"):
        train(config(data_dir, tiny_sd15_dir, tmp_path / "b", resume=True))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "thesis.docx").write_bytes(b"mine")
    with pytest.raises(UserError, match="not empty and holds no style pack"):
        train(config(data_dir, tiny_sd15_dir, tmp_path / "c"))
    with pytest.raises(UserError, match="already holds a style pack; pass --force"):
        train(config(data_dir, tiny_sd15_dir, cli_pack))
    before = lora_file(cli_pack).read_bytes()
    with pytest.raises(UserError, match="made with other rank"):
        train(config(data_dir, tiny_sd15_dir, cli_pack, resume=True, rank=8, trigger="pxk", seed=5))
    with pytest.raises(UserError, match="holds no images"):
        train(config(empty, tiny_sd15_dir, cli_pack, force=True))
    assert lora_file(cli_pack).read_bytes() == before  # nothing was touched …
    assert (cli_pack / ".train" / "checkpoint.safetensors").is_file()  # … not even by --force on bad input
    with pytest.raises(UserError, match="Mixed precision .fp16. is for CUDA"):
        train(config(data_dir, tiny_sd15_dir, tmp_path / "d", mixed_precision="fp16"))
    with pytest.raises(UserError, match="rank must be from 1"):
        train(config(data_dir, tiny_sd15_dir, tmp_path / "e", rank=0))

    code, stdout, stderr = cli("train-style", empty, "--model", tiny_sd15_dir, "--out", tmp_path / "f")
    assert code == 2 and stdout == ""
    assert stderr.startswith("asset-studio: error: The folder") and "Traceback" not in stderr
    assert not (tmp_path / "f").exists()


def test_v_prediction_models_with_snr_weighting_epochs_and_samples(tmp_path, tiny_sd15_dir, data_dir):
    import json
    import shutil

    from safetensors import safe_open

    from asset_studio.engine.train import SampleReady, Trainer

    model = shutil.copytree(tiny_sd15_dir, tmp_path / "tiny-v")
    scheduler = model / "scheduler" / "scheduler_config.json"
    scheduler.write_text(json.dumps({**json.loads(scheduler.read_text()), "prediction_type": "v_prediction"}))
    samples = []
    trainer = Trainer(config(data_dir, model, tmp_path / "pack", epochs=2, snr_gamma=5.0, sample_every=4),
                      on_event=lambda e: samples.append(e) if isinstance(e, SampleReady) else None)
    trainer.prepare()
    assert trainer.prediction_type == "v_prediction"
    assert trainer.total_steps == 2 * trainer.batches_per_epoch == 10  # five images, one per step
    before = trainer.fixed_loss()
    result = trainer.run()
    assert trainer.fixed_loss() < before
    assert [e.step for e in samples] == [4, 8, 10]  # every 4 steps, then the pack's previews
    assert all(p.is_file() for e in samples[:2] for p in e.paths) and ".train" in str(samples[0].paths[0])
    with safe_open(str(result.lora_path), "pt") as f:
        meta = f.metadata()
    assert meta["ss_v_parameterization"] == "True" and meta["ss_min_snr_gamma"] == "5.0"
    assert meta["ss_num_epochs"] == "2" and meta["ss_max_train_steps"] == "10"

    # --force over the finished pack with another id: the old LoRA file does not linger.
    old_lora = result.lora_path
    again = Trainer(config(data_dir, model, tmp_path / "pack", steps=1, pack_id="renamed", force=True))
    again.prepare()
    new = again.run()
    assert new.lora_path.name == "renamed.safetensors" and not old_lora.exists()


def test_a_single_file_checkpoint_trains_like_its_diffusers_folder(tmp_path, tiny_sd15_dir, data_dir):
    """civitai-style .safetensors checkpoints load through the same loader as for generation."""
    from safetensors.torch import load_file

    from ldm_convert import save_single_file

    from asset_studio.engine.train import train

    single = save_single_file(tiny_sd15_dir, tmp_path / "model.safetensors")
    common = dict(steps=2, trigger="pxk", sample_prompts=["pxk, a cup"])
    from_file = train(config(data_dir, single, tmp_path / "a", model_config=str(tiny_sd15_dir), **common))
    from_folder = train(config(data_dir, tiny_sd15_dir, tmp_path / "b", **common))
    assert np.allclose(from_file.losses, from_folder.losses, rtol=1e-3)
    a, b = load_file(str(from_file.lora_path)), load_file(str(from_folder.lora_path))
    assert a.keys() == b.keys()
    assert all(np.allclose(a[k].float().numpy(), b[k].float().numpy(), atol=1e-3) for k in a)


def test_cli_check_lists_images_with_captions_and_trains_nothing(tmp_path, tiny_sd15_dir, data_dir):
    code, stdout, stderr = cli("train-style", data_dir, "--model", tiny_sd15_dir, "--out", tmp_path / "My Knights",
                               "--check")
    assert code == 0
    lines = dict(line.split("  ", 1) for line in stdout.splitlines())
    assert lines["knight.png"] == "48x72  my-knights, knight, standing, side view"
    assert lines["red_potion.png"] == "48x48  my-knights, red potion"
    assert "note: Only 5 images" in stderr and "different sizes" in stderr
    assert not (tmp_path / "My Knights").exists()
