"""Tiny random-weight ControlNets that fit the tiny SD1.5 / SDXL UNets of tiny_models.py.

`ControlNetModel.from_unet` copies the UNet's config and weights; a fresh ControlNet's
"zero convolutions" start at zero, so it would change nothing. Tests need one that does,
so those layers get small random weights here.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_controlnet(unet, seed: int = 1, std: float = 0.2):
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 16, 16))
    zero_layers = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                   controlnet.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for layer in zero_layers:
            torch.nn.init.normal_(layer.weight, std=std)
            torch.nn.init.normal_(layer.bias, std=std)
    return controlnet


def save_tiny_controlnet(unet, folder: Path, seed: int = 1) -> Path:
    """Save a tiny ControlNet as a diffusers folder (config.json + safetensors weights)."""
    folder = Path(folder)
    build_tiny_controlnet(unet, seed=seed).save_pretrained(folder, safe_serialization=True)
    return folder
