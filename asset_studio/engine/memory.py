"""Fitting on small cards: a memory policy chosen from the card's free memory, before the model runs.

The estimate is deliberately simple and errs on the safe side: the model's weights at the run's
dtype, plus the peak of the UNet's activations (grows with pixels × batch) and of the VAE decode
(grows with pixels × batch, much faster at 1024²). The policy then takes the cheapest steps that
make it fit, in the order that costs least speed:

    VAE slicing (decode one image at a time)  → VAE tiling (decode in tiles)
    → attention slicing → model CPU offload (one module on the GPU at a time)
    → sequential CPU offload (one layer at a time: slow, but SD 1.5 runs in ~1 GB)

Numbers are for fp16; fp32 doubles them. Only CUDA has a free-memory figure to go by: on CPU and
MPS the policy is "none".
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1024**3
# Weights at fp16, bytes: UNet + text encoders + VAE (SD 1.5 ≈ 2.0 GB, SD 2.x ≈ 2.6 GB, SDXL ≈ 6.9 GB).
WEIGHTS_FP16 = {"sd15": 2.0 * GB, "sd2": 2.6 * GB, "sdxl": 6.9 * GB}
# Peak activations per megapixel of one image, fp16 with SDPA: UNet (CFG doubles the batch) and VAE decode.
UNET_PER_MP = {"sd15": 1.2 * GB, "sd2": 1.3 * GB, "sdxl": 1.1 * GB}
VAE_DECODE_PER_MP = 3.0 * GB  # the decoder's full-resolution feature maps; tiling bounds it
HEADROOM = 0.5 * GB  # CUDA context, allocator fragmentation, previews


@dataclass(frozen=True)
class MemoryPolicy:
    offload: str = "none"  # none | model | sequential
    vae_slicing: bool = False
    vae_tiling: bool = False
    attention_slicing: bool = False
    reason: str = ""  # one sentence the artist sees when something had to give

    @property
    def active(self) -> bool:
        return self.offload != "none" or self.vae_slicing or self.vae_tiling or self.attention_slicing


def estimate(family: str, width: int, height: int, batch: int = 1, dtype_bytes: int = 2) -> dict[str, float]:
    """Bytes the run needs at its peak, by part."""
    scale = dtype_bytes / 2
    mp = width * height / 1e6 * max(1, batch)
    return {
        "weights": WEIGHTS_FP16.get(family, WEIGHTS_FP16["sd15"]) * scale,
        "unet": UNET_PER_MP.get(family, UNET_PER_MP["sd15"]) * mp * scale,
        "vae": VAE_DECODE_PER_MP * mp * scale,
    }


def choose_policy(free_bytes: float, family: str, width: int, height: int, batch: int = 1,
                  dtype_bytes: int = 2) -> MemoryPolicy:
    """The cheapest policy under which the run fits in FREE_BYTES."""
    need = estimate(family, width, height, batch, dtype_bytes)
    budget = free_bytes - HEADROOM
    if need["weights"] + max(need["unet"], need["vae"]) <= budget:
        return MemoryPolicy()
    steps: dict = {}
    vae = need["vae"]
    if batch > 1:
        steps["vae_slicing"], vae = True, vae / batch
    if need["weights"] + max(need["unet"], vae) > budget:
        steps["vae_tiling"], vae = True, min(vae, VAE_DECODE_PER_MP * 0.25 * dtype_bytes / 2)
    unet = need["unet"]
    if need["weights"] + max(unet, vae) > budget:
        steps["attention_slicing"], unet = True, unet * 0.6
    # Model offload keeps only the largest module (the UNet, ~85 % of SD's weights) on the card.
    if need["weights"] + max(unet, vae) > budget:
        steps["offload"] = "model"
        if need["weights"] * 0.75 + max(unet, vae) > budget:
            steps["offload"] = "sequential"
    what = ", ".join(_WORDS[k] if k != "offload" else _WORDS[steps[k]] for k in steps)
    reason = (f"The card has {free_bytes / GB:.1f} GB free and this run needs about "
              f"{(need['weights'] + max(need['unet'], need['vae'])) / GB:.1f} GB, so it uses {what}.")
    return MemoryPolicy(reason=reason, **steps)


_WORDS = {"vae_slicing": "VAE slicing", "vae_tiling": "VAE tiling", "attention_slicing": "attention slicing",
          "model": "model CPU offload", "sequential": "sequential CPU offload (slow)"}


def apply_policy(pipe, policy: MemoryPolicy, device) -> None:
    """Put POLICY into effect on PIPE (and take back what an earlier, tighter one turned on)."""
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_slicing"):
        (vae.enable_slicing if policy.vae_slicing else vae.disable_slicing)()
        (vae.enable_tiling if policy.vae_tiling else vae.disable_tiling)()
    if policy.attention_slicing:
        pipe.enable_attention_slicing()
    else:
        pipe.disable_attention_slicing()
    current = getattr(pipe, "_asset_studio_offload", "none")
    if policy.offload == current:
        return
    if current != "none":
        pipe.remove_all_hooks()
        pipe.to(device)
    if policy.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif policy.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    pipe._asset_studio_offload = policy.offload


def free_memory(device) -> int | None:
    """Free bytes on a CUDA DEVICE, None elsewhere (no figure to go by)."""
    import torch

    if getattr(device, "type", str(device).split(":")[0]) != "cuda" or not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def out_of_memory_advice(job) -> str:
    """The sentence said when a run ran out of memory anyway: what to change, concretely."""
    s = job.sampling
    hints = []
    if s.batch > 1:
        hints.append(f"make images one at a time instead of {s.batch} per batch")
    if s.width * s.height > 1024 * 1024 // 2:
        hints.append(f"lower the size from {s.width}x{s.height}")
    if job.passes.hires is not None:
        hints.append("lower the hires fix scale")
    hints.append("close other programs that use the GPU")
    return f"The GPU ran out of memory; {', '.join(hints)}, then try again (the model stays loaded)."
