"""LoRA adapters on the tiny pipelines: both layouts, weights, switching, family refusal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from asset_studio.core.job import LoraRef
from asset_studio.errors import UserError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sd15():
    from tiny_models import build_tiny_sd15

    pipe = build_tiny_sd15()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def sdxl():
    from tiny_models import build_tiny_sdxl

    pipe = build_tiny_sdxl()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def loras(tmp_path_factory, sd15, sdxl) -> dict[str, Path]:
    from lora_factory import make_kohya_lora, make_peft_lora

    folder = tmp_path_factory.mktemp("loras")
    return {
        "peft15": make_peft_lora(folder / "peft15.safetensors", "sd15", seed=1, pipe=sd15),
        "kohya15": make_kohya_lora(folder / "kohya15.safetensors", "sd15", seed=2, pipe=sd15),
        "peftxl": make_peft_lora(folder / "peftxl.safetensors", "sdxl", seed=3, pipe=sdxl),
        "kohyaxl": make_kohya_lora(folder / "kohyaxl.safetensors", "sdxl", seed=4, pipe=sdxl),
    }


@pytest.fixture
def clean(sd15):
    from asset_studio.engine.lora import apply_loras

    yield
    apply_loras(sd15, [], "sd15")


def render(pipe) -> np.ndarray:
    import torch

    generator = torch.Generator().manual_seed(0)
    # The final latents: what the adapters change, without the VAE decode's cost.
    return pipe("a red potion", num_inference_steps=1, height=64, width=64, generator=generator,
                output_type="latent").images[0].numpy()


def diff(a, b) -> float:
    return float(np.abs(a - b).mean())


def base_weights(pipe) -> dict[int, object]:
    return {id(p): p.detach().clone() for n, p in pipe.unet.named_parameters() if "lora_" not in n}


def test_adapter_changes_output_and_weight_scales_it(sd15, loras, clean):
    from asset_studio.engine.lora import apply_loras

    base = render(sd15)
    out = {}
    for weight in (0.0, 0.5, 1.0, 2.0):
        apply_loras(sd15, [LoraRef(str(loras["peft15"]), weight)], "sd15")
        out[weight] = render(sd15)
    assert diff(out[0.0], base) < 1e-6  # weight 0 is no LoRA
    assert 0.002 < diff(out[0.5], base) < diff(out[1.0], base) < diff(out[2.0], base)


def test_switching_styles_keeps_the_base_pipeline(sd15, loras, clean):
    from asset_studio.engine.lora import apply_loras, loaded_adapters

    base = render(sd15)
    pipe_id, unet, before = id(sd15), sd15.unet, base_weights(sd15)
    a = [LoraRef(str(loras["peft15"]), 1.0)]
    b = [LoraRef(str(loras["kohya15"]), 1.0)]
    apply_loras(sd15, a, "sd15")
    image_a = render(sd15)
    apply_loras(sd15, b, "sd15")
    image_b = render(sd15)
    for _ in range(3):
        apply_loras(sd15, a, "sd15")
        apply_loras(sd15, b, "sd15")
    apply_loras(sd15, a, "sd15")
    assert np.allclose(render(sd15), image_a, atol=1e-6)  # back to style A exactly
    assert diff(image_a, image_b) > 0.002
    assert len(loaded_adapters(sd15)) == 2  # each file loaded once, never again
    apply_loras(sd15, [], "sd15")
    assert np.allclose(render(sd15), base, atol=1e-6)  # no LoRA = the base model

    assert id(sd15) == pipe_id and sd15.unet is unet
    after = {id(p): p for n, p in sd15.unet.named_parameters() if "lora_" not in n}
    assert after.keys() == before.keys()  # the very same tensors …
    assert all(np.array_equal(after[k].numpy(), v.numpy()) for k, v in before.items())  # … with the same values


def test_kohya_layout_loads_into_unet_and_text_encoder_and_several_combine(sd15, loras, clean):
    from asset_studio.engine.lora import apply_loras

    base = render(sd15)
    apply_loras(sd15, [LoraRef(str(loras["kohya15"]), 1.0, name="kohya")], "sd15")
    kohya = render(sd15)
    adapters = sd15.get_list_adapters()
    assert len(adapters["unet"]) >= 1 and adapters["unet"] == adapters["text_encoder"]
    assert diff(kohya, base) > 0.002

    apply_loras(sd15, [LoraRef(str(loras["kohya15"]), 1.0), LoraRef(str(loras["peft15"]), 0.5)], "sd15")
    both = render(sd15)
    assert len(sd15.get_active_adapters()) == 2
    scales = next(m.scaling for m in sd15.unet.modules() if hasattr(m, "scaling") and len(m.scaling) == 2)
    assert sorted(scales.values()) == [0.5, 1.0]
    assert diff(both, kohya) > 0.001


def test_a_changed_file_is_reloaded(tmp_path, sd15, loras, clean):
    from lora_factory import make_kohya_lora

    from asset_studio.engine.lora import apply_loras, loaded_adapters

    path = make_kohya_lora(tmp_path / "edit.safetensors", "sd15", seed=7, pipe=sd15)
    apply_loras(sd15, [LoraRef(str(path))], "sd15")
    first = render(sd15)
    count = len(loaded_adapters(sd15))
    make_kohya_lora(path, "sd15", seed=8, pipe=sd15)
    os.utime(path, ns=(1, 10**18))  # a new mtime, whatever the clock's resolution
    apply_loras(sd15, [LoraRef(str(path))], "sd15")
    assert len(loaded_adapters(sd15)) == count  # the old version was dropped
    assert diff(render(sd15), first) > 0.001


@pytest.mark.parametrize("name", ["peftxl", "kohyaxl"])
def test_sdxl_lora_on_sd15_is_refused_before_loading(sd15, loras, name, clean):
    from asset_studio.engine.lora import apply_loras, loaded_adapters

    before = loaded_adapters(sd15)
    with pytest.raises(UserError) as err:  # refused even after a good LoRA of the same job
        apply_loras(sd15, [LoraRef(str(loras["kohya15"])), LoraRef(str(loras[name]))], "sd15")
    assert str(err.value) == f"This LoRA ({name}.safetensors) is for SDXL, but the loaded model is SD 1.5."
    assert loaded_adapters(sd15) == before


def test_sdxl_loads_both_layouts_and_refuses_sd15_loras(sdxl, loras):
    from asset_studio.engine.lora import apply_loras

    base = render(sdxl)
    for name in ("peftxl", "kohyaxl"):
        apply_loras(sdxl, [LoraRef(str(loras[name]))], "sdxl")
        assert diff(render(sdxl), base) > 0.002
        assert set(sdxl.get_list_adapters()) == {"unet", "text_encoder", "text_encoder_2"}
    with pytest.raises(UserError, match=r"^This LoRA \(kohya15.safetensors\) is for SD 1.x or 2.x, but the loaded model is SDXL\.$"):
        apply_loras(sdxl, [LoraRef(str(loras["kohya15"]))], "sdxl")


def test_only_sound_safetensors_files_are_loaded(tmp_path, sd15, monkeypatch, clean):
    from asset_studio.engine import lora

    pickle = tmp_path / "style.ckpt"
    pickle.write_bytes(b"\x80\x04pickle")
    with pytest.raises(UserError, match="style.ckpt is not a .safetensors file; only .safetensors weights are accepted"):
        lora.apply_loras(sd15, [LoraRef(str(pickle))], "sd15")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 100)
    with pytest.raises(UserError, match="garbage.safetensors is not a valid .safetensors file"):
        lora.apply_loras(sd15, [LoraRef(str(garbage))], "sd15")
    with pytest.raises(UserError, match="does not exist"):
        lora.apply_loras(sd15, [LoraRef(str(tmp_path / "missing.safetensors"))], "sd15")
    from safetensors.numpy import save_file

    big = tmp_path / "big.safetensors"
    save_file({"lora_unet_x.lora_down.weight": np.zeros((64, 64), np.float32)}, str(big))
    monkeypatch.setattr(lora, "MAX_LORA_BYTES", 1024)
    with pytest.raises(UserError, match="over the limit"):
        lora.apply_loras(sd15, [LoraRef(str(big))], "sd15")
    monkeypatch.undo()
    alien = tmp_path / "alien.safetensors"
    save_file({"lora_unet_nothing_here.lora_down.weight": np.zeros((4, 8), np.float32),
               "lora_unet_nothing_here.lora_up.weight": np.zeros((8, 4), np.float32)}, str(alien))
    with pytest.raises(UserError, match="alien.safetensors"):
        lora.apply_loras(sd15, [LoraRef(str(alien))], "sd15")
