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
The LayerDiffuse UNet patch that makes the latents transparent is engine/layerdiffuse_patch.py; which
files a run uses (catalog id, folder or file) is decided below (resolve_weights).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
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

        # SDXL's VAE overflows in fp16: decode in fp32 as diffusers' pipelines do (fp16 -> fp32 -> fp16 is exact).
        upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
        if upcast:
            vae.to(torch.float32)
        try:
            # on the latents' device (the pipeline's): an offloaded VAE moves itself there in decode()
            z = latents.to(dtype=vae.dtype) / vae.config.scaling_factor
            with torch.no_grad():
                pixel = (vae.decode(z).sample.float() * 0.5 + 0.5).clamp(0, 1)
        finally:
            if upcast:
                vae.to(torch.float16)
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


# --- which files: catalog ids, folders, files ---------------------------------------------------------

# The published file names per family, preferred first (LayerDiffusion/layerdiffusion-v1, then
# lllyasviel/LayerDiffuse_Diffusers): a folder holding them, or a patch file with its decoder beside it.
PUBLISHED_PATCHES = {
    "sd15": ("layer_sd15_transparent_attn.safetensors",),
    "sdxl": ("layer_xl_transparent_attn.safetensors", "layer_xl_transparent_conv.safetensors",
             "ld_diffusers_sdxl_attn.safetensors", "ld_diffusers_sdxl_conv.safetensors"),
}
PUBLISHED_DECODERS = {
    "sd15": ("layer_sd15_vae_transparent_decoder.safetensors",),
    "sdxl": ("vae_transparent_decoder.safetensors", "ld_diffusers_sdxl_vae_transparent_decoder.safetensors"),
}
CATALOG_KIND = "layerdiffuse"
DEFAULT_IDS = {"sd15": "layerdiffuse-sd15", "sdxl": "layerdiffuse-sdxl"}  # models/catalog.toml


@dataclass
class TransparencyWeights:
    """The two files of a transparent run: the UNet patch and the transparent VAE decoder."""

    patch: Path
    decoder: Path
    layout: str = ""  # the patch's layout (engine/layerdiffuse_patch), once its header is read


def resolve_weights(ref: str, family: str) -> TransparencyWeights:
    """The patch and decoder REF names for a FAMILY model ("" = the catalog's), or one sentence: what to
    download, and that cutting the sprite out is the other way."""
    from asset_studio.core import families
    from asset_studio.core.model_files import PICKLE_SUFFIXES, pickle_refusal

    if family not in PUBLISHED_PATCHES:
        raise UserError(f"LayerDiffuse's transparent generation has weights for SD 1.5 and SDXL models, not for "
                        f"{families.label(family)}; cut the sprite out with --remove-bg instead.")
    ref = str(ref or "").strip() or DEFAULT_IDS[family]
    path = Path(ref).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(pickle_refusal(path))
    if path.is_dir():
        return TransparencyWeights(_published(path, PUBLISHED_PATCHES[family], "UNet patch", family),
                                   _published(path, PUBLISHED_DECODERS[family], "transparent decoder", family))
    if path.is_file():
        return TransparencyWeights(path, _published(path.parent, PUBLISHED_DECODERS[family], "transparent decoder", family))
    return _catalog_weights(ref, family)


def _published(folder: Path, names: tuple[str, ...], what: str, family: str) -> Path:
    from asset_studio.core import families

    found = next((folder / n for n in names if (folder / n).is_file()), None)
    if found is None:
        raise UserError(f"{folder} holds no LayerDiffuse {what} for {families.label(family)} models "
                        f"(looked for {' or '.join(names)}).")
    return found


def _catalog_weights(ref: str, family: str) -> TransparencyWeights:
    from asset_studio.core import families
    from asset_studio.core.models import load_catalog

    entry = next((e for e in load_catalog() if e.kind == CATALOG_KIND and ref in (e.id, e.name)), None)
    if entry is None:
        ids = ", ".join(e.id for e in load_catalog() if e.kind == CATALOG_KIND)
        raise UserError(f"The LayerDiffuse weights {ref} were not found; give a catalog id ({ids}), a folder "
                        "holding the published files, or the patch's .safetensors file.")
    if entry.family != family:
        raise UserError(f"{entry.id} is LayerDiffuse for {families.label(entry.family)} models, but the model is "
                        f"{families.label(family)}; use {DEFAULT_IDS[family]}.")
    from huggingface_hub import try_to_load_from_cache

    files = [try_to_load_from_cache(entry.repo, name) for name in entry.allow_patterns]
    if not all(isinstance(f, str) for f in files):
        raise UserError(f"Transparent generation needs LayerDiffuse's {families.label(family)} weights, which are not "
                        f"downloaded: run `asset-studio models download {entry.id}` (about {entry.size_hint}), "
                        "or leave out --transparent and cut the sprite out with --remove-bg.")
    decoder = next(Path(f) for f in files if "decoder" in Path(f).name)
    patch = next(Path(f) for f in files if "decoder" not in Path(f).name)
    return TransparencyWeights(patch, decoder)


def check_weights(ref: str, family: str) -> TransparencyWeights:
    """resolve_weights, then both headers read: a wrong or broken file is one sentence before any model loads."""
    from asset_studio.core.safetensors_header import read_header_file

    given = Path(str(ref or "")).expanduser()
    if given.is_file():  # a patch for another family says so before its decoder is looked for
        _check_patch(given, family)
    files = resolve_weights(ref, family)
    files.layout = _check_patch(files.patch, family).layout
    shapes = {_rename_old(k): v.shape for k, v in read_header_file(files.decoder, MAX_DECODER_BYTES).tensors.items()}
    widths_from_shapes(shapes, files.decoder.name)
    return files


def _check_patch(path: Path, family: str):
    from asset_studio.core import families
    from asset_studio.engine.layerdiffuse_patch import inspect_patch

    info = inspect_patch(path)
    if info.family is not None and info.family != family:
        raise UserError(f"{path.name} is LayerDiffuse for {families.label(info.family)} models, but the model "
                        f"is {families.label(family)}.")
    return info


_DECODERS: dict = {}  # (path, size, mtime, device, dtype) -> TransparentDecoder: the last one stays loaded


def cached_decoder(path: Path, device, dtype) -> "TransparentDecoder":
    """load_transparent_decoder, kept between runs (a few hundred MB, read once)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, str(device), str(dtype))
    if key not in _DECODERS:
        _DECODERS.clear()
        _DECODERS[key] = load_transparent_decoder(path, device=device, dtype=dtype)
    return _DECODERS[key]
