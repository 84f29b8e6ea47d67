"""LoRAs without a style pack: <lora:NAME:WEIGHT> typed in the prompt, and --lora PATH[:WEIGHT]."""

from __future__ import annotations

import numpy as np
import pytest

from asset_studio.cli import main
from asset_studio.core.library import read_job
from asset_studio.core.request import AssetRequest, prepare
from asset_studio.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread_and_a_private_cache")


@pytest.fixture()
def home_lora(tmp_path, monkeypatch):
    from lora_factory import make_kohya_lora

    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    return make_kohya_lora(tmp_path / "home" / "models" / "loras" / "inky.safetensors", "sd15")


def test_a_lora_tag_picks_the_file_and_leaves_the_prompt(home_lora, tiny_sd15_dir):
    job = prepare(AssetRequest("a castle, <lora:inky:0.5>, at night", model=str(tiny_sd15_dir), ))
    assert job.prompt.text == "a castle, at night"
    [lora] = job.model.loras
    assert (lora.path, lora.weight, lora.name) == (str(home_lora), 0.5, "inky")
    with pytest.raises(UserError, match="No LoRA named 'inkk'.*Did you mean 'inky'"):
        prepare(AssetRequest("a castle <lora:inkk:1>", model=str(tiny_sd15_dir)))


def test_the_tag_and_the_flag_change_the_image_through_the_cli(home_lora, tiny_sd15_dir, tmp_path, capsys):
    from PIL import Image

    common = ["--model", str(tiny_sd15_dir), "--size", "64x64", "--steps", "2", "--device", "cpu", "--seed", "2"]
    assert main(["generate", "a castle", *common, "--out", str(tmp_path / "plain")]) == 0
    assert main(["generate", "a castle <lora:inky:1>", *common, "--out", str(tmp_path / "tag")]) == 0
    assert main(["generate", "a castle", *common, "--lora", f"{home_lora}:1", "--out", str(tmp_path / "flag")]) == 0
    images = {name: np.asarray(Image.open(next((tmp_path / name).glob("*.png"))), dtype=float)
              for name in ("plain", "tag", "flag")}
    assert np.abs(images["tag"] - images["plain"]).mean() > 0.5
    assert np.abs(images["tag"] - images["flag"]).max() <= 1  # the same LoRA at the same weight
    job = read_job(next((tmp_path / "tag").glob("*.png")))
    assert job.prompt.text == "a castle" and job.model.loras[0].path == str(home_lora)
