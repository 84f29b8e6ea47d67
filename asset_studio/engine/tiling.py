"""Seamless tiling: circular padding in the UNet's and VAE's convolutions, per axis.

Every Conv2d of the denoising networks (UNet, ControlNets) and of the VAE gets a forward that pads
its input itself: circularly along a tiled axis (the left edge sees the right one), with zeros
along the other, then convolves without padding. Padding each axis separately is what makes
one-axis tiling work (a side-scroller's ground repeats left to right, not top to bottom); a plain
``padding_mode="circular"`` wraps both. LoRA convolutions (peft's lora_A/lora_B, the base layer
it wraps) are Conv2d modules too, so they get the same padding when the LoRA is loaded before
``seamless`` is entered.

Only a per-instance ``_conv_forward`` is added and removed again, no parameter or buffer is
touched, so leaving the context gives back the model exactly as loaded. VAE tiling (decoding in
overlapping tiles) would cut the wrap-around, so it is off inside and restored afterwards.

Equivariance: with both axes tiled, rolling the initial latents by k latent pixels rolls the image
by k x the VAE factor, when k is a multiple of 2 ** (number of UNet downsamplers) (a stride-2
convolution only commutes with even shifts).
"""

from __future__ import annotations

from contextlib import contextmanager

AXES = {"x": ("x",), "y": ("y",), "both": ("x", "y"), "xy": ("x", "y")}

_PATCH = "_asset_studio_seamless"  # marks a conv whose _conv_forward is ours


def parse_axes(axes) -> tuple[str, ...]:
    """'x', 'y', 'both' (or an iterable of 'x'/'y') to a sorted tuple; '' / None / 'none' is no tiling."""
    from asset_studio.errors import UserError

    if axes is None or axes in ("", "none", "off"):
        return ()
    if isinstance(axes, str):
        if axes.lower() not in AXES:
            raise UserError(f"Tiling takes x, y or both, not '{axes}'.")
        return AXES[axes.lower()]
    out = set()
    for a in axes:
        if str(a).lower() not in ("x", "y"):
            raise UserError(f"Tiling axes are x and y, not '{a}'.")
        out.add(str(a).lower())
    return tuple(sorted(out))


def tile_multiple(pipe) -> int:
    """The image side (pixels) at whose multiples the wrap is exact: the VAE factor times 2 to the
    number of UNet downsamplers (64 for SD 1.5, 32 for SDXL). Off it, a stride-2 convolution meets
    an odd size and the grid it samples on jumps by one pixel where the image wraps: a faint seam."""
    downs = sum(1 for block in pipe.unet.down_blocks if getattr(block, "downsamplers", None))
    return int(pipe.vae_scale_factor) * 2**downs


def check_tile_size(pipe, width: int, height: int, axes) -> None:
    """Refuse, in one sentence, a size at which the tiled axes would not wrap exactly."""
    from asset_studio.errors import UserError

    m = tile_multiple(pipe)
    for axis, side, label in (("x", width, "width"), ("y", height, "height")):
        if axis in parse_axes(axes) and side % m:
            lower = max(m, side - side % m)
            raise UserError(f"Seamless tiling along {axis} needs a {label} that is a multiple of {m} pixels "
                            f"for this model ({lower} or {lower + m}, not {side}).")


def _padded_conv_forward(conv, x_mode: str, y_mode: str):
    import torch.nn.functional as F

    # Conv2d keeps its padding as (left, right, top, bottom) for F.pad
    left, right, top, bottom = conv._reversed_padding_repeated_twice
    x_pad, y_pad = (left, right, 0, 0), (0, 0, top, bottom)

    def forward(input, weight, bias):
        if any(x_pad):
            input = F.pad(input, x_pad, mode=x_mode)
        if any(y_pad):
            input = F.pad(input, y_pad, mode=y_mode)
        return F.conv2d(input, weight, bias, conv.stride, 0, conv.dilation, conv.groups)

    forward.__dict__[_PATCH] = True
    return forward


def _networks(pipe, extra=()):
    """The image networks of a pipeline: UNet, VAE and any ControlNet (their residuals add to the
    UNet's, so they must wrap the same way), plus ``extra`` ones such as a TAESD preview decoder.
    Text encoders have no convolutions."""
    for name in ("unet", "vae", "controlnet"):
        model = getattr(pipe, name, None)
        if model is not None:
            yield model
    yield from (m for m in extra if m is not None)


def _convs(pipe, extra=()):
    import torch

    seen = set()
    for model in _networks(pipe, extra):
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and id(module) not in seen:
                seen.add(id(module))
                yield module


@contextmanager
def seamless(pipe, axes, extra=()):
    """Generate tiling images inside this block: ``axes`` is 'x', 'y' or 'both' ('' or None: no-op).

    Enter it after LoRAs are loaded (their convolutions are patched on entry) and leave it before
    loading others; the pipeline is restored on exit, also when generation fails. ``extra``: more
    networks that decode these latents (a TAESD preview decoder), patched and restored the same way."""
    tiled = parse_axes(axes)
    if not tiled:
        yield pipe
        return
    x_mode = "circular" if "x" in tiled else "constant"
    y_mode = "circular" if "y" in tiled else "constant"
    patched = []
    vae = getattr(pipe, "vae", None)
    vae_tiling = getattr(vae, "use_tiling", None)
    try:
        if vae_tiling:
            vae.disable_tiling()
        for conv in _convs(pipe, extra):
            if conv.padding_mode != "zeros":
                continue  # a conv that already pads its own way (none in SD/SDXL) keeps it
            if _PATCH in getattr(conv.__dict__.get("_conv_forward"), "__dict__", {}):
                continue  # nested seamless block: the outer one owns this conv
            had_own = "_conv_forward" in conv.__dict__
            patched.append((conv, had_own, conv.__dict__.get("_conv_forward")))
            conv._conv_forward = _padded_conv_forward(conv, x_mode, y_mode)
        yield pipe
    finally:
        for conv, had_own, old in reversed(patched):
            if had_own:
                conv._conv_forward = old
            else:
                del conv._conv_forward
        if vae_tiling:
            vae.enable_tiling()
