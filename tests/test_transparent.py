"""Transparent generation (LayerDiffuse) on the tiny models: patches of the published key layouts built
for the tiny UNets, the patch's mechanics against the reference formula, RGBA files through the CLI,
the cut-out skipped, the UNet restored bit for bit, and one sentence for every file that does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.core.library import read_job, read_parameters
from asset_studio.engine.layerdiffuse import build_decoder
from asset_studio.engine.layerdiffuse_patch import (
    TEMPORAL, apply_patch, inspect_patch, sharing_order, unet_parameters,
)
from asset_studio.errors import UserError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_and_a_private_cache")]

TINY_WIDTHS = (8, 8, 16, 24, 32, 40, 40)  # the decoder's published layout at a tiny width (test_layerdiffuse.py)
RANK = 4

# The published order of the SD 1.5 patch's 32 layers (ComfyUI-layerdiffuse's module_mapping_sd15, in
# the diffusers names of rootonchair/diffuser_layerdiffuse's sd15_to_diffusers).
PUBLISHED_SD15_ORDER = [
    f"{block}.transformer_blocks.0.{attn}"
    for block in [f"down_blocks.{i}.attentions.{j}" for i in range(3) for j in range(2)]
    + [f"up_blocks.{i}.attentions.{j}" for i in (1, 2, 3) for j in range(3)] + ["mid_block.attentions.0"]
    for attn in ("attn1", "attn2")
]


def tiny_unet(model_dir: Path):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(model_dir / "unet").eval()


def sharing_state(unet, seed: int = 0, scale: float = 0.05) -> dict:
    """A random SD 1.5 attention-sharing patch (hookers.layers.N…) of the published layout for UNET."""
    import torch

    g = torch.Generator().manual_seed(seed)
    modules = dict(unet.named_modules())
    state = {}
    for i, name in enumerate(sharing_order(unet)):
        for lora, proj in (("to_q_lora", "to_q"), ("to_k_lora", "to_k"), ("to_v_lora", "to_v"), ("to_out_lora", "to_out.0")):
            layer = modules[f"{name}.{proj}"]
            state[f"hookers.layers.{i}.{lora}.0.down.weight"] = torch.randn(RANK, layer.in_features, generator=g) * scale
            state[f"hookers.layers.{i}.{lora}.0.up.weight"] = torch.randn(layer.out_features, RANK, generator=g) * scale
        width = modules[f"{name}.to_k"].out_features
        for part in TEMPORAL:
            shape = [width] if part == "temporal_n" else [width, width]
            state[f"hookers.layers.{i}.{part}.weight"] = torch.randn(*shape, generator=g) * scale + (part == "temporal_n")
            state[f"hookers.layers.{i}.{part}.bias"] = torch.randn(width, generator=g) * scale
    return state


def save(state: dict, path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def save_decoder(path: Path, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    return save(build_decoder(TINY_WIDTHS).state_dict(), path)


@pytest.fixture(scope="module")
def sd15_weights(tiny_sd15_dir, tmp_path_factory) -> Path:
    """A folder holding the two published SD 1.5 file names, tiny and random."""
    folder = tmp_path_factory.mktemp("layerdiffuse-sd15")
    save(sharing_state(tiny_unet(tiny_sd15_dir)), folder / "layer_sd15_transparent_attn.safetensors")
    save_decoder(folder / "layer_sd15_vae_transparent_decoder.safetensors")
    return folder


def frozen_state(unet, seed: int = 1, scale: float = 0.05) -> dict:
    """A Forge/ComfyUI frozen-patcher patch (`diffusion_model.<LDM name>::lora|diff::i`) for UNET: LoRA
    factors on every attention projection, plain differences on conv_in, a resnet conv and a norm."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ldm = {key[4:]: getattr(*target) for key, target in unet_parameters(unet).items() if key.startswith("ldm:")}
    state = {}
    for name, weight in ldm.items():
        if name.endswith((".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight")):
            state[f"diffusion_model.{name}::lora::0"] = torch.randn(weight.shape[0], RANK, generator=g) * scale
            state[f"diffusion_model.{name}::lora::1"] = torch.randn(RANK, weight.shape[1], generator=g) * scale
        elif name in ("input_blocks.0.0.weight", "input_blocks.1.0.in_layers.2.weight", "out.0.weight"):
            state[f"diffusion_model.{name}::diff::0"] = torch.randn(*weight.shape, generator=g) * scale
    return state


@pytest.fixture(scope="module")
def sdxl_weights(tiny_sdxl_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("layerdiffuse-sdxl")
    save(frozen_state(tiny_unet(tiny_sdxl_dir)), folder / "layer_xl_transparent_attn.safetensors")
    save_decoder(folder / "vae_transparent_decoder.safetensors", seed=1)
    return folder


def snapshot(unet) -> dict:
    return {k: v.detach().clone() for k, v in unet.state_dict().items()}


def same(unet, before: dict) -> bool:
    import torch

    after = unet.state_dict()
    return after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def unet_out(unet, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(1, 4, 8, 8, generator=g)
    context = torch.randn(1, 5, unet.config.cross_attention_dim, generator=g)
    extra = {}
    if unet.config.addition_embed_type == "text_time":
        extra["added_cond_kwargs"] = {"text_embeds": torch.randn(1, 32, generator=g), "time_ids": torch.zeros(1, 6)}
    with torch.no_grad():
        return unet(sample, 10, encoder_hidden_states=context, **extra).sample


# --- the published layouts ---------------------------------------------------------------------------


def test_sd15_layers_are_numbered_in_the_published_order():
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):  # the real SD 1.5 block structure, nothing allocated
        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8)
    assert sharing_order(unet) == PUBLISHED_SD15_ORDER


def test_the_layouts_built_here_have_the_published_files_sizes():
    """At the published rank (256) and precision (fp16), the tensors this module expects for the real
    SD 1.5 and SDXL UNets add up to the published files' sizes on huggingface.co: 350 MB for
    layer_sd15_transparent_attn (32 layers: 4 LoRAs + the one-image branch each), 743 MB for
    layer_xl_transparent_attn (a LoRA on every q, k, v and out projection)."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        sd15 = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8)
        sdxl = UNet2DConditionModel(
            block_out_channels=(320, 640, 1280), down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 2,
            up_block_types=("CrossAttnUpBlock2D",) * 2 + ("UpBlock2D",), transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816, cross_attention_dim=2048)
    modules = dict(sd15.named_modules())
    count = 0
    for name in sharing_order(sd15):
        for proj in ("to_q", "to_k", "to_v", "to_out.0"):
            count += 256 * (modules[f"{name}.{proj}"].in_features + modules[f"{name}.{proj}"].out_features)
        width = modules[f"{name}.to_k"].out_features
        count += 2 * width + 5 * (width * width + width)
    assert abs(count * 2 / 1e6 - 350) < 1
    params = unet_parameters(sdxl)
    lora = sum(256 * sum(getattr(*target).shape) for key, target in params.items()
               if key.startswith("ldm:") and key.endswith((".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight")))
    assert abs(lora * 2 / 1e6 - 743) < 1


def test_ldm_names_of_the_frozen_patcher_reach_every_sdxl_weight(tiny_sdxl_dir):
    """Every UNet weight under its original Stable Diffusion name (as diffusers' own converter writes
    them, tests/ldm_convert.py) is found: the SDXL patches' keys land on the right weights."""
    from ldm_convert import convert_unet_state_dict

    unet = tiny_unet(tiny_sdxl_dir)
    params = unet_parameters(unet)
    state = unet.state_dict()
    ldm = convert_unet_state_dict({k: k for k in state}, dict(unet.config))  # LDM name -> diffusers name
    for ldm_name, name in ldm.items():
        holder, attr = params[f"ldm:{ldm_name}"]
        assert getattr(holder, attr) is params[name][0]._parameters[attr] is dict(unet.named_parameters())[name]


def test_patch_files_are_told_apart_by_their_header(sd15_weights, sdxl_weights, tmp_path):
    import torch

    assert inspect_patch(sd15_weights / "layer_sd15_transparent_attn.safetensors").layout == "attention-sharing"
    assert inspect_patch(sdxl_weights / "layer_xl_transparent_attn.safetensors").layout == "frozen-patcher"
    offsets = save({"conv_in.weight": torch.zeros(32, 4, 3, 3)}, tmp_path / "ld_diffusers_sdxl_attn.safetensors")
    assert inspect_patch(offsets).layout == "offsets"
    joint = save({"hookers.layers.0.to_q_lora.1.down.weight": torch.zeros(1, 1)}, tmp_path / "joint.safetensors")
    with pytest.raises(UserError, match="several images at once"):
        inspect_patch(joint)
    (tmp_path / "patch.ckpt").write_bytes(b"x")
    with pytest.raises(UserError, match="only .safetensors"):
        inspect_patch(tmp_path / "patch.ckpt")


# --- the mechanics ------------------------------------------------------------------------------------


def reference_attention(attn, state: dict, i: int, h, context=None):
    """The reference formula (Forge's / ComfyUI's AttentionSharingUnit, frames=1) written out by hand:
    projections W + up·down, softmax attention, then the cross-image attention over one image."""
    import torch

    def lora(x, name, layer):
        w = layer.weight + state[f"hookers.layers.{i}.{name}.0.up.weight"] @ state[f"hookers.layers.{i}.{name}.0.down.weight"]
        return torch.nn.functional.linear(x, w, layer.bias)

    def heads_attention(q, k, v, heads):
        b, n, c = q.shape
        q, k, v = (t.reshape(b, -1, heads, c // heads).transpose(1, 2) for t in (q, k, v))
        p = torch.softmax(q @ k.transpose(-1, -2) / (c // heads) ** 0.5, dim=-1)
        return (p @ v).transpose(1, 2).reshape(b, n, c)

    ctx = h if context is None else context
    o = heads_attention(lora(h, "to_q_lora", attn.to_q), lora(ctx, "to_k_lora", attn.to_k),
                        lora(ctx, "to_v_lora", attn.to_v), attn.heads)
    m = h + lora(o, "to_out_lora", attn.to_out[0])

    def lin(x, part):
        return torch.nn.functional.linear(x, state[f"hookers.layers.{i}.{part}.weight"], state[f"hookers.layers.{i}.{part}.bias"])

    x = torch.nn.functional.layer_norm(m, m.shape[-1:], state[f"hookers.layers.{i}.temporal_n.weight"],
                                       state[f"hookers.layers.{i}.temporal_n.bias"], eps=1e-6)
    x = lin(x, "temporal_i")
    b, d, c = x.shape
    x = x.reshape(b * d, 1, c)  # "(b f) d c -> (b d) f c" with one frame
    x = heads_attention(lin(x, "temporal_q"), lin(x, "temporal_k"), lin(x, "temporal_v"), attn.heads)
    x = lin(x, "temporal_o").reshape(b, d, c)
    return m + x - h


def test_sd15_attention_patch_follows_the_reference_formula(tiny_sd15_dir):
    import torch

    unet = tiny_unet(tiny_sd15_dir)
    state = sharing_state(unet, scale=0.2)
    modules = dict(unet.named_modules())
    names = sharing_order(unet)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        expected = {}
        for i in (0, 1, len(names) - 1):  # a self-attention, a cross-attention and the mid block's
            attn = modules[names[i]]
            h = torch.randn(2, 16, attn.to_q.in_features, generator=g)
            ctx = torch.randn(2, 7, attn.to_k.in_features, generator=g) if names[i].endswith("attn2") else None
            expected[i] = (h, ctx, reference_attention(attn, state, i, h, ctx), attn(h, encoder_hidden_states=ctx))
    with torch.no_grad():
        undo = apply_patch(unet, inspect_patch(save(state, Path(tiny_sd15_dir).parent / "ref-patch.safetensors")))
        for i, (h, ctx, ref, plain) in expected.items():
            got = modules[names[i]](h, encoder_hidden_states=ctx)
            assert torch.allclose(got, ref, atol=1e-5), names[i]
            assert not torch.allclose(got, plain, atol=1e-3)
        undo()
        for i, (h, ctx, ref, plain) in expected.items():
            assert torch.equal(modules[names[i]](h, encoder_hidden_states=ctx), plain)


def test_frozen_patcher_adds_lora_products_and_differences_then_restores_exactly(tiny_sdxl_dir, sdxl_weights):
    import torch

    unet = tiny_unet(tiny_sdxl_dir)
    before, out_before = snapshot(unet), unet_out(unet)
    patch = inspect_patch(sdxl_weights / "layer_xl_transparent_attn.safetensors")
    from safetensors.torch import load_file

    state = load_file(str(patch.path))
    undo = apply_patch(unet, patch)
    params = unet_parameters(unet)
    q = "input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight"  # the tiny SDXL's first cross-attention
    holder, attr = params[f"ldm:{q}"]
    want = before["down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"] + \
        state[f"diffusion_model.{q}::lora::0"] @ state[f"diffusion_model.{q}::lora::1"]
    assert torch.allclose(getattr(holder, attr), want, atol=1e-6)
    assert torch.allclose(unet.conv_in.weight, before["conv_in.weight"] + state["diffusion_model.input_blocks.0.0.weight::diff::0"])
    assert not torch.allclose(unet_out(unet), out_before, atol=1e-4)
    undo()
    assert same(unet, before) and torch.equal(unet_out(unet), out_before)


def test_offsets_in_diffusers_names_are_added(tiny_sdxl_dir, tmp_path):
    import torch

    unet = tiny_unet(tiny_sdxl_dir)
    before = snapshot(unet)
    offset = torch.full_like(before["conv_out.bias"], 0.25)
    undo = apply_patch(unet, inspect_patch(save({"conv_out.bias": offset}, tmp_path / "ld_diffusers_sdxl_attn.safetensors")))
    assert torch.equal(unet.conv_out.bias, before["conv_out.bias"] + 0.25)
    undo()
    assert same(unet, before)


def test_patches_that_do_not_fit_the_unet_are_one_sentence(tiny_sd15_dir, tiny_sdxl_dir, sd15_weights, tmp_path):
    import torch
    from safetensors.torch import load_file

    sd15, sdxl = tiny_unet(tiny_sd15_dir), tiny_unet(tiny_sdxl_dir)
    before = snapshot(sdxl)
    sd15_patch = inspect_patch(sd15_weights / "layer_sd15_transparent_attn.safetensors")
    with pytest.raises(UserError, match=r"does not fit this model: its layer 0 to_q_lora"):
        apply_patch(sdxl, sd15_patch)  # the tiny SD 1.5 patch on the tiny SDXL UNet: other widths
    state = load_file(str(sd15_patch.path))
    short = {k: v for k, v in state.items() if not k.startswith("hookers.layers.7.")}
    with pytest.raises(UserError, match=r"patches 7 attention layers but this model's UNet has 8"):
        apply_patch(sd15, inspect_patch(save(short, tmp_path / "short.safetensors")))
    state["hookers.layers.2.to_k_lora.0.down.weight"] = torch.zeros(RANK, 7)
    with pytest.raises(UserError, match=r"does not fit this model: its layer 2 to_k_lora"):
        apply_patch(sd15, inspect_patch(save(state, tmp_path / "bent.safetensors")))
    wrong = save({"diffusion_model.input_blocks.99.0.in_layers.2.weight::diff::0": torch.zeros(1)}, tmp_path / "w.safetensors")
    with pytest.raises(UserError, match=r"the UNet has no weight input_blocks\.99"):
        apply_patch(sdxl, inspect_patch(wrong))
    partly = {"diffusion_model.input_blocks.0.0.weight::diff::0": torch.ones_like(sdxl.conv_in.weight),
              "diffusion_model.out.2.weight::diff::0": torch.zeros(3, 3)}
    with pytest.raises(UserError, match=r"a change of shape \[3, 3\]"):
        apply_patch(sdxl, inspect_patch(save(partly, tmp_path / "partly.safetensors")))
    assert same(sdxl, before)  # nothing stays changed by a refused patch


# --- through the backend and the CLI ---------------------------------------------------------------


def tiny_args(model, out, *extra):
    return ["generate", "a glass potion", "--model", str(model), "--size", "64x64", "--steps", "2", "--device", "cpu",
            "--seed", "5", "--out", str(out), *extra]


def test_transparent_generate_writes_rgba_and_skips_the_cutout(tiny_sd15_dir, sd15_weights, tmp_path, monkeypatch,
                                                               capsys):
    from asset_studio.engine import background

    def no_cutout(*a, **k):
        raise AssertionError("the cut-out ran on a transparent image")

    monkeypatch.setattr(background, "remove_background", no_cutout)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "no-rembg"))  # and its model is not even installed
    out = tmp_path / "out"
    assert main(tiny_args(tiny_sd15_dir, out, "--transparent", "--layerdiffuse", str(sd15_weights), "--remove-bg",
                          "--count", "2")) == 0
    captured = capsys.readouterr()
    assert "rembg" not in captured.err
    raws = sorted(out.glob("*.png"))
    assert [Path(p) for p in captured.out.split()] == raws and len(raws) == 2
    for raw in raws:
        with Image.open(raw) as im:
            assert (im.mode, im.size) == ("RGBA", (64, 64))
            alpha = im.getchannel("A")
            assert alpha.getextrema()[0] < alpha.getextrema()[1]  # per-pixel alpha from the decoder
            sprite = Image.open(out / "sprites" / raw.name)
            assert sprite.mode == "RGBA" and sprite.tobytes() == im.tobytes()  # the sprite is the RGBA image
        job = read_job(raw)
        assert job.transparency.weights == str(sd15_weights.resolve()) and job.finishing.remove_background
        assert f"LayerDiffuse: {sd15_weights.name}" in read_parameters(raw)
    assert Image.open(raws[0]).tobytes() != Image.open(raws[1]).tobytes()

    again = tmp_path / "again"
    assert main(["rerun", str(raws[1]), "--out", str(again), "--device", "cpu"]) == 0
    [rerun] = again.glob("*.png")
    assert Image.open(rerun).tobytes() == Image.open(raws[1]).tobytes()  # rerun repeats the transparent run


def test_the_cached_unet_is_unchanged_bit_for_bit_after_a_transparent_run_with_a_lora(tiny_sd15_dir, sd15_weights,
                                                                                     tmp_path):
    from lora_factory import make_peft_lora

    from asset_studio.core.job import LoraRef
    from asset_studio.core.request import AssetRequest, Overrides, prepare
    from asset_studio.engine.backend import LocalBackend

    lora = make_peft_lora(tmp_path / "style.safetensors", "sd15")
    request = AssetRequest(subject="a lantern", model=str(tiny_sd15_dir), transparent=True,
                           layerdiffuse=str(sd15_weights), loras=[LoraRef(path=str(lora), weight=0.8)],
                           overrides=Overrides(width=64, height=64, steps=2, seed=2))
    job = prepare(request, tmp_path)
    plain = prepare(AssetRequest(subject="a lantern", model=str(tiny_sd15_dir), loras=request.loras,
                                 overrides=Overrides(width=64, height=64, steps=2, seed=2)), tmp_path)
    backend = LocalBackend(device="cpu")
    [rgb] = backend.generate(plain)  # the model as the style LoRA leaves it
    loaded = backend.cache.get(job.model.checkpoint, backend.device, backend.dtype)
    unet = loaded.pipe.unet
    before, processors = snapshot(unet), {k: type(v) for k, v in unet.attn_processors.items()}
    assert any("lora_A" in k for k in before)
    [made] = backend.generate(job)
    assert made.image.mode == "RGBA" and rgb.image.mode == "RGB"
    assert backend.cache.get(job.model.checkpoint, backend.device, backend.dtype) is loaded  # the same model
    assert {k: type(v) for k, v in unet.attn_processors.items()} == processors
    assert same(unet, before)
    [again] = backend.generate(plain)
    assert again.image.tobytes() == rgb.image.tobytes()


def test_sdxl_transparent_run_patches_the_tiny_sdxl_unet(tiny_sdxl_dir, sdxl_weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(tiny_args(tiny_sdxl_dir, out, "--transparent", "--layerdiffuse",
                          str(sdxl_weights / "layer_xl_transparent_attn.safetensors"))) == 0
    [raw] = out.glob("*.png")
    with Image.open(raw) as im:
        assert (im.mode, im.size) == ("RGBA", (64, 64))
    assert read_job(raw).transparency.weights.endswith("layer_xl_transparent_attn.safetensors")


def _bad(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_missing_weights_say_what_to_download_and_the_cutout_fallback(tiny_sd15_dir, tiny_sdxl_dir, tmp_path,
                                                                      monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    err = _bad(capsys, tiny_args(tiny_sd15_dir, tmp_path / "o", "--transparent"))
    assert "`asset-studio models download layerdiffuse-sd15`" in err and "--remove-bg" in err
    err = _bad(capsys, tiny_args(tiny_sdxl_dir, tmp_path / "o", "--transparent", "--layerdiffuse", "layerdiffuse-sdxl-conv"))
    assert "`asset-studio models download layerdiffuse-sdxl-conv`" in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.png"))


def test_bad_transparent_requests_are_one_sentence(tiny_sd15_dir, tiny_sdxl_dir, sd15_weights, sdxl_weights, tmp_path,
                                                   capsys):
    out = tmp_path / "o"
    assert "go with --transparent" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--layerdiffuse", str(sd15_weights)))
    assert "hires fix" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--transparent", "--layerdiffuse", str(sd15_weights),
                                                 "--hires-scale", "2"))
    assert "seamless tiling" in _bad(capsys, tiny_args(tiny_sd15_dir, out, "--transparent", "--layerdiffuse",
                                                       str(sd15_weights), "--tile", "x"))
    # the SD 1.5 files for an SDXL model: the folder has no SDXL patch; the SDXL catalog id for SD 1.5
    assert "no LayerDiffuse UNet patch for SDXL" in _bad(
        capsys, tiny_args(tiny_sdxl_dir, out, "--transparent", "--layerdiffuse", str(sd15_weights)))
    assert "is LayerDiffuse for SDXL models" in _bad(
        capsys, tiny_args(tiny_sd15_dir, out, "--transparent", "--layerdiffuse", "layerdiffuse-sdxl"))
    assert "is LayerDiffuse for SD 1.5 models" in _bad(capsys, tiny_args(
        tiny_sdxl_dir, out, "--transparent", "--layerdiffuse", str(sd15_weights / "layer_sd15_transparent_attn.safetensors")))
    # a patch whose layers do not match the UNet is found once the model is loaded: still one sentence
    from safetensors.torch import load_file

    state = load_file(str(sd15_weights / "layer_sd15_transparent_attn.safetensors"))
    short = tmp_path / "short"
    save({k: v for k, v in state.items() if not k.startswith("hookers.layers.7.")},
         short / "layer_sd15_transparent_attn.safetensors")
    save_decoder(short / "layer_sd15_vae_transparent_decoder.safetensors")
    assert "patches 7 attention layers but this model's UNet has 8" in _bad(
        capsys, tiny_args(tiny_sd15_dir, out, "--transparent", "--layerdiffuse", str(short)))
    assert not list(out.glob("*.png"))


def test_the_job_records_transparency_and_reads_it_back_checked():
    from jobs import make_job

    from asset_studio.core.job import GenerationJob, Transparency

    job = make_job()
    job.transparency = Transparency(weights="layerdiffuse-sdxl")
    again = GenerationJob.from_json(job.to_json())
    assert again.transparency == Transparency(weights="layerdiffuse-sdxl")
    data = job.to_dict()
    data["transparency"] = {"weights": "x", "strength": 2}
    with pytest.raises(UserError, match=r"transparency has unknown field\(s\): strength"):
        GenerationJob.from_dict(data)
    data["transparency"] = "yes"
    with pytest.raises(UserError, match="transparency must be a table or null"):
        GenerationJob.from_dict(data)
    assert GenerationJob.from_dict({**job.to_dict(), "transparency": None}).transparency is None


def test_comfyui_servers_refuse_transparent_jobs():
    from jobs import make_job

    from asset_studio.core.job import Transparency
    from asset_studio.remote.graph import unsupported

    job = make_job()
    job.transparency = Transparency()
    assert "LayerDiffuse" in unsupported(job)
