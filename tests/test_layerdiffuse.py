"""LayerDiffuse's transparent VAE decoder, built from a tiny random state dict of the published key layout."""

from __future__ import annotations

import pytest

from asset_studio.engine.layerdiffuse import PUBLISHED_WIDTHS, build_decoder, load_transparent_decoder
from asset_studio.errors import UserError

pytestmark = pytest.mark.slow

TINY_WIDTHS = (8, 8, 16, 24, 32, 40, 40)  # narrower, but equal and growing where the published ones are (same shortcut convs)

# Names and shapes of the published decoder file (vae_transparent_decoder.safetensors), as the
# reference UNet1024 lays them out with diffusers' blocks.
PUBLISHED_SHAPES = {
    "conv_in.weight": [32, 3, 3, 3],
    "latent_conv_in.weight": [64, 4, 1, 1],
    "down_blocks.0.resnets.0.conv1.weight": [32, 32, 3, 3],
    "down_blocks.0.downsamplers.0.conv.weight": [32, 32, 3, 3],
    "down_blocks.4.attentions.1.to_q.weight": [256, 256],
    "down_blocks.6.resnets.1.conv2.weight": [512, 512, 3, 3],
    "mid_block.attentions.0.group_norm.weight": [512],
    "mid_block.attentions.0.to_out.0.weight": [512, 512],
    "up_blocks.0.resnets.2.conv_shortcut.weight": [512, 1024, 1, 1],
    "up_blocks.2.attentions.2.to_v.weight": [256, 256],
    "up_blocks.5.upsamplers.0.conv.weight": [32, 32, 3, 3],
    "up_blocks.6.resnets.0.conv1.weight": [32, 64, 3, 3],
    "conv_norm_out.weight": [32],
    "conv_out.weight": [4, 32, 3, 3],
}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory, one_thread_and_a_private_cache):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = build_decoder(TINY_WIDTHS)
    path = tmp_path_factory.mktemp("ld") / "tiny_transparent_decoder.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def inputs(h: int = 64, w: int = 64, seed: int = 1):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, 3, h, w), generator=g), torch.randn((1, 4, h // 8, w // 8), generator=g)


def test_the_architecture_has_the_published_key_layout():
    import torch

    with torch.device("meta"):  # full size without allocating it
        full = build_decoder(PUBLISHED_WIDTHS).state_dict()
    for key, shape in PUBLISHED_SHAPES.items():
        assert list(full[key].shape) == shape, key
    tiny = build_decoder(TINY_WIDTHS).state_dict()
    assert tiny.keys() == full.keys()  # the tiny test file has exactly the published names
    assert sum(v.numel() for v in full.values()) > 30_000_000 > sum(v.numel() for v in tiny.values())


def test_decoder_loads_and_returns_rgba_of_the_image_size(tiny_file):
    import torch

    dec = load_transparent_decoder(tiny_file)
    assert dec.net.widths == TINY_WIDTHS
    pixel, latent = inputs()
    rgba = dec.rgba(pixel, latent, augment=False)
    assert rgba.shape == (1, 4, 64, 64) and rgba.min() >= 0 and rgba.max() <= 1
    with torch.no_grad():
        raw = dec.net(pixel, latent).clamp(0, 1)
    assert torch.equal(rgba[:, 3], raw[:, 0]) and torch.equal(rgba[:, :3], raw[:, 1:])  # alpha comes first
    # the latent matters (it joins at 1/8 scale) and so do the pixels
    assert not torch.allclose(dec.rgba(pixel, latent * 0, augment=False), rgba)
    assert not torch.allclose(dec.rgba(pixel * 0.5, latent, augment=False), rgba)


def test_sizes_off_the_64_grid_come_back_at_their_size(tiny_file):
    dec = load_transparent_decoder(tiny_file)
    pixel, latent = inputs(72, 40)
    assert dec.rgba(pixel, latent, augment=False).shape == (1, 4, 72, 40)
    with pytest.raises(ValueError, match="does not belong"):
        dec.rgba(pixel, latent[..., :4], augment=False)


def test_the_eight_view_median_is_mirror_and_rotation_equivariant(tiny_file):
    import torch

    dec = load_transparent_decoder(tiny_file)
    pixel, latent = inputs()
    rgba = dec.rgba(pixel, latent)
    assert rgba.shape == (1, 4, 64, 64)
    mirrored = dec.rgba(pixel.flip(3), latent.flip(3))
    assert torch.allclose(mirrored, rgba.flip(3), atol=1e-5)
    turned = dec.rgba(torch.rot90(pixel, 1, (2, 3)), torch.rot90(latent, 1, (2, 3)))
    assert torch.allclose(turned, torch.rot90(rgba, 1, (2, 3)), atol=1e-5)


def test_decode_latents_gives_rgba_images_from_pipeline_latents(tiny_file):
    import torch
    from tiny_models import _vae

    torch.manual_seed(0)
    vae = _vae().eval()
    dec = load_transparent_decoder(tiny_file)
    latents = torch.randn((2, 4, 8, 6))
    images = dec.decode_latents(vae, latents, augment=False)
    assert [(im.mode, im.size) for im in images] == [("RGBA", (48, 64))] * 2
    assert len({im.tobytes() for im in images}) == 2


def test_old_attention_names_load_the_same_weights(tiny_file, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_file))
    old = {k.replace(".to_q.", ".query.").replace(".to_out.0.", ".proj_attn."): v for k, v in state.items()}
    assert old.keys() != state.keys()
    save_file(old, str(tmp_path / "old.safetensors"))
    a, b = load_transparent_decoder(tiny_file), load_transparent_decoder(tmp_path / "old.safetensors")
    pixel, latent = inputs()
    assert torch.equal(a.rgba(pixel, latent, augment=False), b.rgba(pixel, latent, augment=False))


def test_other_files_are_refused_in_one_sentence(tiny_file, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file
    from tiny_models import _vae

    pickle = tmp_path / "decoder.ckpt"
    pickle.write_bytes(b"not loaded")
    with pytest.raises(UserError, match="only .safetensors"):
        load_transparent_decoder(pickle)

    save_file({k: v.contiguous() for k, v in _vae().state_dict().items()}, str(tmp_path / "vae.safetensors"))
    with pytest.raises(UserError, match="not a LayerDiffuse transparent VAE decoder"):
        load_transparent_decoder(tmp_path / "vae.safetensors")

    state = load_file(str(tiny_file))
    del state["up_blocks.3.resnets.1.norm2.bias"]
    save_file(state, str(tmp_path / "cut.safetensors"))
    with pytest.raises(UserError, match="lacks up_blocks.3.resnets.1.norm2.bias"):
        load_transparent_decoder(tmp_path / "cut.safetensors")

    state = load_file(str(tiny_file))
    state["mid_block.attentions.0.to_k.weight"] = torch.zeros(3, 3)
    save_file(state, str(tmp_path / "bent.safetensors"))
    with pytest.raises(UserError, match="to_k.weight has shape \\[3, 3\\]"):
        load_transparent_decoder(tmp_path / "bent.safetensors")
