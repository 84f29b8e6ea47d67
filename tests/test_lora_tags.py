"""<lora:NAME:WEIGHT> prompt tags and the LoRA folder lookup (pure; no model)."""

from __future__ import annotations

import pytest

from asset_studio.core.lora_tags import extract_lora_tags, find_lora_by_name
from asset_studio.errors import UserError


def test_tags_are_taken_out_with_their_weights_in_order():
    clean, tags = extract_lora_tags("a red potion, <lora:pixelArt_v2:0.8>, glowing <LORA:Outline> <lyco:hada-ink:-.5>")
    assert clean == "a red potion, glowing"
    assert tags == [("pixelArt_v2", 0.8), ("Outline", 1.0), ("hada-ink", -0.5)]
    assert extract_lora_tags("no tags here") == ("no tags here", [])
    assert extract_lora_tags("<lora:a:1.25>") == ("", [("a", 1.25)])
    assert extract_lora_tags("x <lora:my style v2:1> y") == ("x y", [("my style v2", 1.0)])


@pytest.mark.parametrize("prompt, message", [
    ("<lora:style:0.8:0.5>", "separate text-encoder and UNet weights"),
    ("<lora:style:heavy>", "is not a number"),
    ("<lora: :1>", "names no LoRA"),
])
def test_malformed_tags_are_one_clear_error(prompt, message):
    with pytest.raises(UserError, match=message):
        extract_lora_tags(prompt)


def test_names_resolve_in_folder_order_and_sub_folders(tmp_path):
    models, pack = tmp_path / "models" / "loras", tmp_path / "style" / "loras"
    (models / "ink").mkdir(parents=True)
    pack.mkdir(parents=True)
    for path in (models / "PixelArt.safetensors", models / "ink" / "outline.safetensors",
                 pack / "pixelart.safetensors", models / "old.ckpt"):
        path.write_bytes(b"x")
    assert find_lora_by_name("pixelart", [pack, models]) == pack / "pixelart.safetensors"
    assert find_lora_by_name("PixelArt", [models, pack]) == models / "PixelArt.safetensors"
    assert find_lora_by_name("pixelart.safetensors", [models]) == models / "PixelArt.safetensors"
    assert find_lora_by_name("outline", [models]) == models / "ink" / "outline.safetensors"
    assert find_lora_by_name("ink/outline", [models]) == models / "ink" / "outline.safetensors"
    with pytest.raises(UserError, match=r"^No LoRA named 'pixelrat' was found in .*\. Did you mean 'PixelArt'\?$"):
        find_lora_by_name("pixelrat", [models])
    with pytest.raises(UserError, match="old.ckpt, a pickle file"):
        find_lora_by_name("old", [models])
    with pytest.raises(UserError, match="not a path"):
        find_lora_by_name("../secret", [models])
    (models / "two").mkdir()
    (models / "two" / "outline.safetensors").write_bytes(b"x")
    with pytest.raises(UserError, match="Several LoRAs are named 'outline'"):
        find_lora_by_name("outline", [models])


def test_lora_flag_values():
    from asset_studio.core.lora_tags import parse_lora_arg

    assert parse_lora_arg("loras/ink.safetensors:0.8") == ("loras/ink.safetensors", 0.8)
    assert parse_lora_arg("loras/ink.safetensors") == ("loras/ink.safetensors", 1.0)
    assert parse_lora_arg("C:\\loras\\ink.safetensors:-0.5") == ("C:\\loras\\ink.safetensors", -0.5)
    assert parse_lora_arg("C:\\loras\\ink.safetensors") == ("C:\\loras\\ink.safetensors", 1.0)
    with pytest.raises(UserError, match="--lora needs a file"):
        parse_lora_arg(" ")
