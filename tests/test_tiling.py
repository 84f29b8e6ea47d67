"""Seamless tiling on the tiny SD 1.5 pipeline: exact wrap-around, per axis, with LoRAs, and a clean exit.

The exactness test: with circular padding everywhere, the whole pipeline commutes with a circular
shift, so rolling the initial latents by K latent pixels rolls the decoded image by K x the VAE
factor. K must be a multiple of 2 ** (UNet downsamplers): the tiny UNet has one, so K = 2.
"""

from __future__ import annotations

import numpy as np
import pytest

from asset_studio.engine.tiling import check_tile_size, parse_axes, seamless, tile_multiple
from asset_studio.errors import UserError

pytestmark = pytest.mark.slow

SIZE = 64
K = 2
ROLL_TOLERANCE = 1e-4  # float32 round-off through the whole pipeline; a broken wrap is ~0.1 and more
AXIS = {"x": (3, 1), "y": (2, 0)}  # latent dim (N, C, H, W) and image axis (H, W, C) of each axis


def load(tiny_sd15_dir):
    import torch

    from asset_studio.engine.loader import load_pipeline, resolve_model

    return load_pipeline(resolve_model(str(tiny_sd15_dir)), "sd15", torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module")
def pipe(tiny_sd15_dir, one_thread_and_a_private_cache):
    return load(tiny_sd15_dir)


def initial_latents(seed: int = 0):
    import torch

    return torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=torch.Generator().manual_seed(seed))


def render(pipe, latents) -> np.ndarray:
    # EulerDiscreteScheduler (non-ancestral): the result depends on the latents alone
    out = pipe(prompt="grass texture", negative_prompt="text", latents=latents.clone(), num_inference_steps=2,
               guidance_scale=3.0, height=SIZE, width=SIZE, output_type="np")
    return out.images[0]


def roll_error(pipe, axis: str, base: np.ndarray | None = None) -> float:
    """Max abs difference between the render of the rolled latents and the rolled render."""
    import torch

    lat = initial_latents()
    base = render(pipe, lat) if base is None else base
    dim, image_axis = AXIS[axis]
    rolled = render(pipe, torch.roll(lat, K, dims=dim))
    return float(np.abs(rolled - np.roll(base, K * pipe.vae_scale_factor, axis=image_axis)).max())


@pytest.mark.parametrize("axes", ["both", "x", "y"])
def test_rolled_latents_roll_the_image_along_tiled_axes_only(pipe, axes):
    with seamless(pipe, axes):
        base = render(pipe, initial_latents())
        for axis in ("x", "y"):
            err = roll_error(pipe, axis, base)
            if axis in parse_axes(axes):
                assert err < ROLL_TOLERANCE, f"{axis}: {err}"
            else:  # the other axis keeps zero padding: its edges are edges, a roll is not a roll
                assert err > 0.01, f"{axis} wraps although only {axes} is tiled"


def test_without_tiling_a_roll_is_not_a_roll(pipe):
    """The control for the test above: ordinary zero padding breaks the shift."""
    assert roll_error(pipe, "x") > 0.01 and roll_error(pipe, "y") > 0.01


@pytest.mark.parametrize("axes", ["both", "x", "y"])
def test_each_conv_pads_circularly_along_tiled_axes_and_with_zeros_along_the_others(axes):
    import copy
    from types import SimpleNamespace

    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    x = torch.randn(1, 3, 6, 7)
    pad_x = "circular" if "x" in parse_axes(axes) else "constant"
    pad_y = "circular" if "y" in parse_axes(axes) else "constant"
    expected = F.conv2d(F.pad(F.pad(x, (1, 1, 0, 0), mode=pad_x), (0, 0, 1, 1), mode=pad_y), conv.weight, conv.bias)
    with seamless(SimpleNamespace(unet=conv), axes):
        got = conv(x)
    assert torch.allclose(got, expected, atol=1e-6)
    if axes == "both":  # the same as torch's own circular mode
        ref = copy.deepcopy(conv)
        ref.padding_mode = "circular"
        assert torch.allclose(got, ref(x), atol=1e-6)


def test_leaving_restores_the_model_bit_for_bit(pipe):
    import torch

    lat = initial_latents(3)
    pipe.vae.enable_tiling()
    try:
        before_state = {k: v.clone() for k, v in {**pipe.unet.state_dict(), **pipe.vae.state_dict()}.items()}
        before = render(pipe, lat)
        convs = [m for model in (pipe.unet, pipe.vae) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        with seamless(pipe, "both"):
            assert not pipe.vae.use_tiling  # tiled decoding would cut the wrap-around
            assert all("_conv_forward" in c.__dict__ for c in convs)
            assert not np.array_equal(render(pipe, lat), before)
        assert pipe.vae.use_tiling
        assert not any("_conv_forward" in c.__dict__ for c in convs)
        after_state = {**pipe.unet.state_dict(), **pipe.vae.state_dict()}
        assert after_state.keys() == before_state.keys()
        assert all(torch.equal(after_state[k], v) for k, v in before_state.items())
        assert np.array_equal(render(pipe, lat), before)

        with pytest.raises(RuntimeError, match="stopped"), seamless(pipe, "x"):
            raise RuntimeError("stopped")  # a failed generation restores too
        assert pipe.vae.use_tiling and not any("_conv_forward" in c.__dict__ for c in convs)
    finally:
        pipe.vae.disable_tiling()


def test_no_axes_leave_the_pipeline_alone(pipe):
    import torch

    with seamless(pipe, None), seamless(pipe, ""):
        assert not any("_conv_forward" in m.__dict__ for m in pipe.unet.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize("bad", ["z", "diagonal", ["x", "w"]])
def test_bad_axes_are_one_sentence(bad):
    with pytest.raises(UserError, match="x, y|x and y"):
        parse_axes(bad)


def test_lora_convolutions_wrap_too(tiny_sd15_dir, tmp_path, one_thread_and_a_private_cache):
    """A LoRA on the UNet's 3x3 convolutions (lora_A is a 3x3 conv beside the base one) keeps tiling exact."""
    import torch
    from lora_factory import make_peft_lora

    from asset_studio.core.job import LoraRef
    from asset_studio.engine.lora import apply_loras

    pipe = load(tiny_sd15_dir)
    plain = render(pipe, initial_latents())
    path = make_peft_lora(tmp_path / "conv-lora.safetensors", "sd15", strength=1.0, pipe=pipe, text_encoder=False,
                          unet_targets=("conv1", "conv2", "conv_in"))
    apply_loras(pipe, [LoraRef(str(path), 1.0)], "sd15")
    lora_convs = [m for name, m in pipe.unet.named_modules()
                  if ".lora_A." in name + "." and isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert lora_convs, "the LoRA put no adapters on convolutions"
    assert not np.allclose(render(pipe, initial_latents()), plain, atol=1e-3)  # the LoRA is active
    with seamless(pipe, "both"):
        assert all("_conv_forward" in c.__dict__ for c in lora_convs)
        base = render(pipe, initial_latents())
        assert roll_error(pipe, "x", base) < ROLL_TOLERANCE
        assert roll_error(pipe, "y", base) < ROLL_TOLERANCE
    assert not any("_conv_forward" in c.__dict__ for c in lora_convs)


def test_sizes_off_the_downsampling_grid_are_refused_on_tiled_axes_only(pipe):
    assert tile_multiple(pipe) == 16  # VAE factor 8 x one UNet downsampler
    check_tile_size(pipe, 64, 72, "x")  # 72 is not tiled
    check_tile_size(pipe, 48, 64, "both")
    with pytest.raises(UserError, match="along y needs a height that is a multiple of 16 pixels for this model \\(64 or 80, not 72\\)"):
        check_tile_size(pipe, 64, 72, "both")
    with pytest.raises(UserError, match="along x needs a width"):
        check_tile_size(pipe, 8, 64, "x")


def test_extra_decoders_wrap_and_are_restored(pipe):
    """A preview decoder (TAESD in the app) passed as extra gets the same padding."""
    import torch

    preview = torch.nn.Sequential(torch.nn.Conv2d(4, 3, 3, padding=1))
    with seamless(pipe, "x", extra=[preview]):
        assert "_conv_forward" in preview[0].__dict__
    assert "_conv_forward" not in preview[0].__dict__
