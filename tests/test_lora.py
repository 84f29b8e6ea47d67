"""LoRA adapters on the tiny pipelines: both layouts, weights, switching, family refusal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from asset_studio.core.job import LoraRef
from asset_studio.errors import UserError

# One torch thread: tiny models gain nothing from more, and the test machine is shared.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_and_a_private_cache")]


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


# --- every layout applied exactly: the studio's image equals the hand-merged base model's --------

TOLERANCE = 1 / 255  # mean absolute difference of the decoded images, values in [0, 1]


def image(pipe) -> np.ndarray:
    import torch

    generator = torch.Generator().manual_seed(0)
    return pipe("a red potion", num_inference_steps=2, height=64, width=64, generator=generator,
                output_type="np").images[0]


@pytest.fixture(scope="module")
def refs():
    """Untouched twins of the module's pipelines (same seeds, same weights) to merge LoRAs into by hand."""
    from tiny_models import build_tiny_sd15, build_tiny_sdxl

    out = {"sd15": build_tiny_sd15(), "sdxl": build_tiny_sdxl()}
    for pipe in out.values():
        pipe.set_progress_bar_config(disable=True)
    return out


def build_tiny_sd2():
    """SD 2.x's shape: linear proj_in / proj_out and a wider text encoder than SD 1.x's (here 40 vs 32)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from tiny_models import _scheduler, _text_config, _vae
    from transformers import CLIPTextModel, CLIPTokenizer

    from asset_studio.engine.clip_vocab import write_clip_tokenizer
    import tempfile

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=40, attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=32,
    )
    vae, text_encoder = _vae(), CLIPTextModel(_text_config(hidden_size=40, projection_dim=40))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp)))
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=_scheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def check_exact(pipe, ref, family, merges, name_weights):
    """apply_loras on ``pipe`` vs the hand merge on ``ref``: equal within 1/255, and visibly not the base."""
    from lora_factory import apply_by_hand

    from asset_studio.engine.lora import apply_loras

    apply_loras(pipe, [LoraRef(str(m.path), w) for m, w in name_weights], family)
    studio = image(pipe)
    undo = apply_by_hand(ref, merges)
    try:
        by_hand = image(ref)
    finally:
        undo()
    base = image(ref)
    apply_loras(pipe, [], family)
    mismatch, effect = diff(studio, by_hand), diff(by_hand, base)
    assert effect > 5 * TOLERANCE, f"the LoRA barely changes the image ({effect * 255:.2f}/255)"
    assert mismatch <= TOLERANCE, f"studio vs hand merge: {mismatch * 255:.4f}/255"
    return mismatch


SD15_LAYOUTS = {
    # name: (layout, make_layout_lora options, weight)
    "kohya-attn-mlp-proj-locon": ("kohya", dict(unet_targets="all"), 0.7),
    "kohya-ldm-names-no-alpha": ("kohya", dict(unet_targets="all", ldm=True, alpha=None), 0.7),
    "kohya-te-only-q-v-fc1": ("kohya", dict(unet_targets=(), te_targets=("q_proj", "v_proj", "fc1")), 1.0),
    "kohya-unet-only": ("kohya", dict(te_targets=()), 1.3),
    "peft-diffusers": ("peft", dict(unet_targets="all"), 0.7),
    "peft-te-only": ("peft", dict(unet_targets=()), 1.0),
    "dora-weight-1": ("dora", dict(), 1.0),
    "dora-weight-0.5": ("dora", dict(), 0.5),
    "loha": ("loha", dict(unet_targets="all"), 0.7),
    "lokr": ("lokr", dict(unet_targets="all"), 0.7),
    "lokr-te-only": ("lokr", dict(unet_targets=()), 1.0),
    "lokr-w1-decomposed-w2-full": ("lokr", dict(unet_targets="all", w1_decomposed=True), 0.7),
    "loha-with-dora-scale": ("loha", dict(dora=True), 0.8),
    "kohya-with-dora-scale": ("kohya", dict(unet_targets="all", dora=True), 1.0),
    "diffusers-old-processor-names": ("diffusers-old", dict(unet_targets="all"), 0.7),
}


def _options(options):
    from lora_factory import ATTN_TARGETS, CONV_TARGETS

    options = dict(options)
    if options.get("unet_targets") == "all":
        options["unet_targets"] = ATTN_TARGETS + CONV_TARGETS
    return options


@pytest.mark.parametrize("case", list(SD15_LAYOUTS))
def test_each_sd15_layout_equals_the_hand_merge(case, sd15, refs, tmp_path, clean):
    from lora_factory import make_layout_lora

    layout, options, weight = SD15_LAYOUTS[case]
    merge = make_layout_lora(tmp_path / f"{case}.safetensors", sd15, layout, **_options(options))
    check_exact(sd15, refs["sd15"], "sd15", [(merge, weight)], [(merge, weight)])


@pytest.mark.parametrize("case", ["kohya-ldm", "kohya-te1-te2-only", "peft", "loha"])
def test_sdxl_layouts_equal_the_hand_merge(case, sdxl, refs, tmp_path):
    from lora_factory import make_layout_lora

    options = {"kohya-ldm": ("kohya", dict(unet_targets="all", ldm=True)),
               "kohya-te1-te2-only": ("kohya", dict(unet_targets=())),
               "peft": ("peft", dict(unet_targets="all")),
               "loha": ("loha", dict())}[case]
    merge = make_layout_lora(tmp_path / f"{case}.safetensors", sdxl, options[0], **_options(options[1]))
    keys = {c for c, _ in merge.deltas}
    assert ("text_encoder_2" in keys) and ("text_encoder" in keys)
    check_exact(sdxl, refs["sdxl"], "sdxl", [(merge, 0.8)], [(merge, 0.8)])


@pytest.mark.parametrize("layout", ["kohya", "peft"])
def test_sd2_layouts_equal_the_hand_merge(layout, tmp_path):
    from lora_factory import make_layout_lora

    pipe, ref = build_tiny_sd2(), build_tiny_sd2()
    merge = make_layout_lora(tmp_path / "sd2.safetensors", pipe, layout, **_options({"unet_targets": "all"}))
    check_exact(pipe, ref, "sd2", [(merge, 0.9)], [(merge, 0.9)])


def test_two_loras_at_once_with_different_weights_equal_the_hand_merge(sd15, refs, tmp_path, clean):
    from lora_factory import make_layout_lora

    a = make_layout_lora(tmp_path / "a.safetensors", sd15, "kohya", seed=11, **_options({"unet_targets": "all"}))
    b = make_layout_lora(tmp_path / "b.safetensors", sd15, "loha", seed=12)
    check_exact(sd15, refs["sd15"], "sd15", [(a, 0.6), (b, -0.4)], [(a, 0.6), (b, -0.4)])
    # and after a switch to another weight, the same adapters give the new merge
    check_exact(sd15, refs["sd15"], "sd15", [(a, 1.2), (b, 0.3)], [(a, 1.2), (b, 0.3)])


# --- refusals: never applied in part, never a traceback ---------------------------------------------


def _rewrite(src: Path, dst: Path, change) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    save_file(change(tensors), str(dst), metadata=metadata)
    return dst


def test_a_partly_matching_file_is_refused_with_the_count(sd15, tmp_path, clean):
    from lora_factory import make_layout_lora

    from asset_studio.engine.lora import apply_loras, loaded_adapters

    merge = make_layout_lora(tmp_path / "ok.safetensors", sd15, "kohya")
    total = len(merge.deltas)

    def rename(tensors):  # a third of the UNet modules named for blocks this model does not have
        out, moved = {}, set()
        for key, value in tensors.items():
            module = key.split(".")[0]
            if module.startswith("lora_unet_up_blocks_1"):
                moved.add(module)
                key = key.replace("up_blocks_1", "up_blocks_7")
            out[key] = value
        assert moved
        rename.count = len(moved)
        return out

    bad = _rewrite(merge.path, tmp_path / "partial.safetensors", rename)
    before = loaded_adapters(sd15)
    with pytest.raises(UserError) as err:
        apply_loras(sd15, [LoraRef(str(bad))], "sd15")
    assert str(err.value).startswith(
        f"{rename.count} of {total} modules of partial.safetensors match no layer of this SD 1.5 model")
    assert loaded_adapters(sd15) == before


def test_nan_weights_and_unknown_layouts_are_refused_before_anything_is_applied(sd15, tmp_path, clean):
    import torch
    from lora_factory import make_layout_lora

    from asset_studio.engine.lora import apply_loras, loaded_adapters

    merge = make_layout_lora(tmp_path / "ok.safetensors", sd15, "kohya")
    first = next(k for k in _keys(merge.path) if k.endswith("lora_up.weight"))

    def poison(tensors):
        tensors[first] = tensors[first].clone()
        tensors[first][0, 0] = float("nan")
        return tensors

    nan = _rewrite(merge.path, tmp_path / "nan.safetensors", poison)
    before = loaded_adapters(sd15)
    with pytest.raises(UserError, match=r"^The LoRA nan.safetensors has NaN or infinite weights"):
        apply_loras(sd15, [LoraRef(str(nan))], "sd15")
    assert loaded_adapters(sd15) == before

    oft = _rewrite(merge.path, tmp_path / "oft.safetensors",
                   lambda t: {"lora_unet_mid_block_attentions_0_proj_in.oft_blocks": torch.zeros(4, 8, 8)})
    with pytest.raises(UserError, match=r"^oft.safetensors is a LyCORIS OFT / BOFT file, a layout the studio cannot apply\.$"):
        apply_loras(sd15, [LoraRef(str(oft))], "sd15")
    tucker = _rewrite(merge.path, tmp_path / "tucker.safetensors", lambda t: {
        **t, first.replace("lora_up", "lora_mid"): torch.zeros(4, 4, 3, 3)})
    with pytest.raises(UserError, match="Tucker"):
        apply_loras(sd15, [LoraRef(str(tucker))], "sd15")
    assert loaded_adapters(sd15) == before


def _keys(path: Path) -> list[str]:
    from asset_studio.core.safetensors_header import read_header_file

    return list(read_header_file(path).tensors)


@pytest.mark.parametrize("shape", ["sd15", "sdxl"])
def test_ldm_layer_names_agree_with_diffusers_single_file_converter(shape):
    """Real SD 1.5 / SDXL block structure (small widths): every UNet weight, renamed to its LDM
    (input_blocks …) name by the engine, is put back in its place by diffusers' own converter."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    from asset_studio.engine.lora import _ldm_name, _ldm_prefixes

    common = dict(layers_per_block=2, norm_num_groups=32, sample_size=8)
    if shape == "sd15":
        unet = UNet2DConditionModel(block_out_channels=(32, 32, 64, 64), cross_attention_dim=32,
                                    attention_head_dim=8, **common)
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), transformer_layers_per_block=(1, 2, 3),
            use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=80, cross_attention_dim=80, attention_head_dim=(2, 4, 8), **common)
    prefixes, state = _ldm_prefixes(unet), unet.state_dict()
    ldm = {}
    for name, value in state.items():
        module, _, leaf = name.rpartition(".")
        ldm[f"model.diffusion_model.{_ldm_name(module, prefixes)}.{leaf}"] = value
    back = convert_ldm_unet_checkpoint(ldm, dict(unet.config))
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_a_layer_of_another_size_is_refused_before_anything_is_applied(sd15, tmp_path, clean):
    import torch
    from lora_factory import make_layout_lora

    from asset_studio.engine.lora import apply_loras, loaded_adapters

    merge = make_layout_lora(tmp_path / "ok.safetensors", sd15, "kohya", te_targets=())
    key = next(k for k in _keys(merge.path) if "attn1_to_q.lora_down" in k)

    def widen(tensors):
        tensors[key] = torch.zeros(tensors[key].shape[0], tensors[key].shape[1] + 8)
        return tensors

    bad = _rewrite(merge.path, tmp_path / "wide.safetensors", widen)
    before = loaded_adapters(sd15)
    with pytest.raises(UserError, match=r"^The LoRA wide.safetensors does not fit this model: its layer '.*attn1_to_q' "
                                        r"is 32x40, the model's is 32x32\.$"):
        apply_loras(sd15, [LoraRef(str(bad))], "sd15")
    assert loaded_adapters(sd15) == before
    assert not any(getattr(m, "peft_config", None) and any("wide" in n for n in m.peft_config)
                   for m in (sd15.unet, sd15.text_encoder))
