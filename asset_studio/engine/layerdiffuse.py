"""LayerDiffuse's transparent VAE decoder: RGBA from a "transparent latent", built in our own code.

LayerDiffuse (Zhang & Agrawala, 2024) fine-tunes SD 1.5 / SDXL so their latents carry
transparency, and ships a decoder that turns (the ordinary VAE's RGB decode, the latent) into
premultiplication-free RGB plus alpha. Its published architecture ("UNet1024" in the reference
code) is a pixel-space UNet of diffusers blocks:

- 7 down blocks (4 plain, then 3 with self-attention), widths 32, 32, 64, 128, 256, 512, 512,
  2 resnets each, a stride-2 conv after all but the last: 1/64 scale at the bottom;
- the VAE latent (4 channels, already divided by the VAE's scaling factor) enters through a 1x1
  conv (``latent_conv_in``) and is added before down block 3, where the pixels are at 1/8 scale;
- a mid block with attention, 7 up blocks (3 with attention) of 3 resnets, skip connections;
- GroupNorm with 4 groups, attention heads of 8 channels, SiLU;
- 4 output channels: alpha first, then RGB, all in [0, 1].

The reference decodes 8 times (4 rotations x mirror) and takes the per-pixel median; we do the same
by default. Sizes that are not multiples of 64 are padded (edge pixels repeated) and cropped back.

Weights are read from .safetensors only, with the published key layout (``conv_in.weight``,
``latent_conv_in.weight``, ``down_blocks.N.resnets.M.conv1.weight``, ``…attentions.M.to_q.weight``
…); widths are read from the file, so a smaller network of the same layout loads too (the tests).
The LayerDiffuse UNet patch that makes the latents transparent is a separate file, not handled here.
"""

from __future__ import annotations

import functools
from pathlib import Path

from asset_studio.errors import UserError

DOWN_BLOCK_TYPES = ("DownBlock2D",) * 4 + ("AttnDownBlock2D",) * 3
UP_BLOCK_TYPES = ("AttnUpBlock2D",) * 3 + ("UpBlock2D",) * 4
PUBLISHED_WIDTHS = (32, 32, 64, 128, 256, 512, 512)
LAYERS_PER_BLOCK = 2
NORM_GROUPS = 4
HEAD_DIM = 8
LATENT_BLOCK = 3  # the latent joins before this down block (three halvings: the latent's 1/8 scale)
MULTIPLE = 2 ** (len(DOWN_BLOCK_TYPES) - 1)  # every down block but the last halves the size
MAX_DECODER_BYTES = 2 * 1024**3  # the published fp32 decoder is a few hundred MB

# Attention weights as diffusers named them before 0.21; converted so older exports load too.
_OLD_ATTENTION = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def _rename_old(key: str) -> str:
    for old, new in _OLD_ATTENTION.items():
        if old in key:
            return key.replace(old, new)
    return key


@functools.lru_cache(maxsize=1)
def _network_class():
    import torch
    from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block, get_up_block

    class TransparentDecoderNet(torch.nn.Module):
        """The published decoder network; ``widths`` are the 7 blocks' channel counts."""

        def __init__(self, widths=PUBLISHED_WIDTHS, in_channels: int = 3, out_channels: int = 4):
            super().__init__()
            widths = tuple(int(w) for w in widths)
            self.widths = widths
            self.conv_in = torch.nn.Conv2d(in_channels, widths[0], kernel_size=3, padding=1)
            self.latent_conv_in = torch.nn.Conv2d(4, widths[LATENT_BLOCK - 1], kernel_size=1)
            self.down_blocks = torch.nn.ModuleList()
            out_ch = widths[0]
            for i, kind in enumerate(DOWN_BLOCK_TYPES):
                in_ch, out_ch = out_ch, widths[i]
                self.down_blocks.append(get_down_block(
                    kind, num_layers=LAYERS_PER_BLOCK, in_channels=in_ch, out_channels=out_ch,
                    temb_channels=None, add_downsample=i < len(widths) - 1, resnet_eps=1e-5,
                    resnet_act_fn="silu", resnet_groups=NORM_GROUPS, attention_head_dim=HEAD_DIM,
                    downsample_padding=1, resnet_time_scale_shift="default", downsample_type="conv",
                    dropout=0.0,
                ))
            self.mid_block = UNetMidBlock2D(
                in_channels=widths[-1], temb_channels=None, dropout=0.0, resnet_eps=1e-5,
                resnet_act_fn="silu", output_scale_factor=1, resnet_time_scale_shift="default",
                attention_head_dim=HEAD_DIM, resnet_groups=NORM_GROUPS, attn_groups=None, add_attention=True,
            )
            self.up_blocks = torch.nn.ModuleList()
            rev = list(reversed(widths))
            out_ch = rev[0]
            for i, kind in enumerate(UP_BLOCK_TYPES):
                prev, out_ch = out_ch, rev[i]
                self.up_blocks.append(get_up_block(
                    kind, num_layers=LAYERS_PER_BLOCK + 1, in_channels=rev[min(i + 1, len(widths) - 1)],
                    out_channels=out_ch, prev_output_channel=prev, temb_channels=None,
                    add_upsample=i < len(widths) - 1, resnet_eps=1e-5, resnet_act_fn="silu",
                    resnet_groups=NORM_GROUPS, attention_head_dim=HEAD_DIM,
                    resnet_time_scale_shift="default", upsample_type="conv", dropout=0.0,
                ))
            self.conv_norm_out = torch.nn.GroupNorm(num_channels=widths[0], num_groups=NORM_GROUPS, eps=1e-5)
            self.conv_act = torch.nn.SiLU()
            self.conv_out = torch.nn.Conv2d(widths[0], out_channels, kernel_size=3, padding=1)

        def forward(self, pixel, latent):
            latent_features = self.latent_conv_in(latent)
            sample = self.conv_in(pixel)
            skips = (sample,)
            for i, block in enumerate(self.down_blocks):
                if i == LATENT_BLOCK:
                    sample = sample + latent_features
                sample, res = block(hidden_states=sample, temb=None)
                skips += res
            sample = self.mid_block(sample, None)
            for block in self.up_blocks:
                n = len(block.resnets)
                sample = block(sample, skips[-n:], None)
                skips = skips[:-n]
            return self.conv_out(self.conv_act(self.conv_norm_out(sample)))

    return TransparentDecoderNet


def widths_from_shapes(shapes: dict[str, list[int]], label: str) -> tuple[int, ...]:
    """The 7 block widths of a decoder file, or a sentence saying why it is not one."""
    widths = []
    for i in range(len(DOWN_BLOCK_TYPES)):
        shape = shapes.get(f"down_blocks.{i}.resnets.0.conv1.weight")
        if not shape or len(shape) != 4:
            raise UserError(f"{label} is not a LayerDiffuse transparent VAE decoder (it has no down block {i}).")
        widths.append(shape[0])
    if any(w % NORM_GROUPS or w % HEAD_DIM for w in widths):
        raise UserError(f"{label} has block widths {widths}, which the LayerDiffuse decoder cannot have.")
    for key, want in (("conv_in.weight", (widths[0], 3)), ("conv_out.weight", (4, widths[0]))):
        if list(shapes.get(key, []))[:2] != list(want):
            raise UserError(f"{label} is not a LayerDiffuse transparent VAE decoder ({key} is missing or of another size).")
    return tuple(widths)


class TransparentDecoder:
    """The loaded decoder: ``rgba(pixel, latent)`` and ``decode_latents(vae, latents)``."""

    def __init__(self, net):
        self.net = net

    @property
    def device(self):
        return next(self.net.parameters()).device

    @property
    def dtype(self):
        return next(self.net.parameters()).dtype

    def rgba(self, pixel, latent, augment: bool = True):
        """RGBA in [0, 1], shape (B, 4, H, W), from the ordinary decode ``pixel`` (B, 3, H, W) in [0, 1]
        and the VAE latent ``latent`` (B, 4, H/8, W/8), already divided by the scaling factor."""
        import torch
        import torch.nn.functional as F

        if pixel.ndim != 4 or pixel.shape[1] != 3 or latent.ndim != 4 or latent.shape[1] != 4:
            raise ValueError("pixel must be (B, 3, H, W) and latent (B, 4, H/8, W/8)")
        h, w = pixel.shape[-2:]
        if (h, w) != (latent.shape[-2] * 8, latent.shape[-1] * 8):
            raise ValueError(f"a {h}x{w} image does not belong to a {latent.shape[-2]}x{latent.shape[-1]} latent")
        ph, pw = -h % MULTIPLE, -w % MULTIPLE
        pixel = pixel.to(self.device, self.dtype)
        latent = latent.to(self.device, self.dtype)
        if ph or pw:  # repeat the edges: the network halves the size six times
            pixel = F.pad(pixel, (0, pw, 0, ph), mode="replicate")
            latent = F.pad(latent, (0, pw // 8, 0, ph // 8), mode="replicate")
        views = [(flip, k) for flip in (False, True) for k in range(4)] if augment else [(False, 0)]
        outs = []
        with torch.no_grad():
            for flip, k in views:
                p, z = (pixel.flip(3), latent.flip(3)) if flip else (pixel, latent)
                y = self.net(torch.rot90(p, k, dims=(2, 3)), torch.rot90(z, k, dims=(2, 3))).clamp(0, 1)
                y = torch.rot90(y, -k, dims=(2, 3))
                outs.append(y.flip(3) if flip else y)
        y = torch.stack(outs).median(dim=0).values if len(outs) > 1 else outs[0]
        y = y[..., :h, :w]
        return torch.cat([y[:, 1:], y[:, :1]], dim=1)  # the network puts alpha first

    def decode_latents(self, vae, latents, augment: bool = True):
        """RGBA PIL images from a pipeline's final latents (``output_type="latent"``)."""
        import numpy as np
        import torch
        from PIL import Image

        z = latents.to(vae.device, vae.dtype) / vae.config.scaling_factor
        with torch.no_grad():
            pixel = (vae.decode(z).sample.float() * 0.5 + 0.5).clamp(0, 1)
        rgba = self.rgba(pixel, z.float(), augment=augment).float().cpu()
        arrays = (rgba.permute(0, 2, 3, 1).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
        return [Image.fromarray(a, "RGBA") for a in arrays]


def build_decoder(widths=PUBLISHED_WIDTHS):
    """A decoder network with random weights (the published architecture at ``widths``)."""
    return _network_class()(widths)


def load_transparent_decoder(path: Path | str, device="cpu", dtype=None) -> TransparentDecoder:
    """The decoder from a .safetensors file of the published key layout; any problem is one sentence."""
    import torch
    from safetensors.torch import load_file

    from asset_studio.core.safetensors_header import read_header_file

    path = Path(path)
    header = read_header_file(path, MAX_DECODER_BYTES)  # refuses pickles, oversized files and bad headers
    shapes = {_rename_old(k): info.shape for k, info in header.tensors.items()}
    widths = widths_from_shapes(shapes, path.name)
    net = build_decoder(widths)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        what = f"lacks {missing[0]}" if missing else f"has an unknown tensor {unexpected[0]}"
        raise UserError(f"{path.name} is not a LayerDiffuse transparent VAE decoder: it {what}.")
    wrong = next((k for k, t in expected.items() if list(t.shape) != list(shapes[k])), None)
    if wrong:
        raise UserError(f"{path.name} does not fit the LayerDiffuse decoder: {wrong} has shape {shapes[wrong]}, "
                        f"not {list(expected[wrong].shape)}.")
    state = {_rename_old(k): v for k, v in load_file(str(path)).items()}
    net.load_state_dict(state, strict=True)
    net.eval().to(device=device, dtype=dtype or torch.float32)
    return TransparentDecoder(net)
