"""Cheap pictures of the latents while an image is still being denoised.

With TAESD (madebyollin's tiny autoencoder, diffusers' AutoencoderTiny) in the local Hugging Face
cache, previews are real decodes at a fraction of the VAE's cost. Without it, a fixed linear map
from the four latent channels to RGB (the factors A1111 and ComfyUI use) gives a blurry but
faithful idea of composition and colour, for free.
"""

from __future__ import annotations

import os

# Latent channel → RGB contribution (rows: channels), as in ComfyUI's latent_formats.py.
LATENT_RGB_FACTORS = {
    "sd15": [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ],
    "sdxl": [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ],
}
LATENT_RGB_BIAS = {"sd15": [0.0, 0.0, 0.0], "sdxl": [0.1084, -0.0175, -0.0011]}
TAESD_REPOS = {"sd15": "madebyollin/taesd", "sd2": "madebyollin/taesd", "sdxl": "madebyollin/taesdxl"}


class Previewer:
    """Turns a batch of latents into a PIL image; picks TAESD once per family if it is on disk."""

    def __init__(self, family: str, device, dtype):
        self.family = family
        self.device = device
        self.dtype = dtype
        self._taesd = _load_taesd(family, device, dtype)

    @property
    def kind(self) -> str:
        return "taesd" if self._taesd is not None else "linear"

    def __call__(self, latents):
        import torch

        with torch.no_grad():
            if self._taesd is not None:
                image = self._taesd.decode(latents[:1].to(self.device, self.dtype)).sample[0]
                rgb = (image.float().clamp(-1, 1) + 1) / 2  # (3, H, W)
                return _to_pil(rgb.permute(1, 2, 0))
            return linear_preview(latents, self.family)


def linear_preview(latents, family: str):
    """A PIL image at latent resolution (1/8 of the final size) from the first latent of a batch."""
    import torch

    key = "sdxl" if family == "sdxl" else "sd15"
    factors = torch.tensor(LATENT_RGB_FACTORS[key], dtype=torch.float32)
    bias = torch.tensor(LATENT_RGB_BIAS[key], dtype=torch.float32)
    lat = latents[0].detach().float().cpu()  # (4, h, w)
    rgb = torch.einsum("chw,cr->hwr", lat, factors) + bias
    return _to_pil(((rgb + 1) / 2).clamp(0, 1))


def _to_pil(rgb_hwc):
    from PIL import Image

    array = (rgb_hwc.detach().float().cpu().numpy() * 255).round().astype("uint8")
    return Image.fromarray(array, "RGB")


_TAESD_CACHE: dict[tuple, object] = {}


def _load_taesd(family: str, device, dtype):
    """AutoencoderTiny from ASSET_STUDIO_TAESD (a folder) or the local HF cache; None when absent."""
    key = (family, str(device), str(dtype))
    if key in _TAESD_CACHE:
        return _TAESD_CACHE[key]
    model = None
    folder = os.environ.get(f"ASSET_STUDIO_TAESD_{family.upper()}") or os.environ.get("ASSET_STUDIO_TAESD")
    source = folder if folder and os.path.isdir(folder) else _cached_repo(TAESD_REPOS.get(family, ""))
    if source:
        try:
            from diffusers import AutoencoderTiny

            model = AutoencoderTiny.from_pretrained(source, torch_dtype=dtype, local_files_only=True)
            model.to(device)
        except Exception:  # a broken optional preview model must never stop generation
            model = None
    _TAESD_CACHE[key] = model
    return model


def _cached_repo(repo_id: str) -> str | None:
    if not repo_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(repo_id, "config.json")
    except Exception:
        return None
    return os.path.dirname(config) if isinstance(config, str) else None
