"""Which device and dtype a model runs on: CUDA in fp16, Apple MPS in fp16, else the CPU in fp32.

The choice is overridable: `Engine(device=...)`, the CLI's `--device`, or ASSET_STUDIO_DEVICE
("cpu", "cuda", "cuda:1", "mps"). ASSET_STUDIO_DTYPE ("fp16", "bf16", "fp32") overrides the dtype.
"""

from __future__ import annotations

import os

from asset_studio.errors import UserError

DTYPE_NAMES = {
    "fp16": "float16", "float16": "float16", "half": "float16",
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp32": "float32", "float32": "float32", "float": "float32",
}


def choose_device(device: str | None = None, dtype=None):
    """Return (torch.device, torch.dtype) for the request, the environment, or what the machine has."""
    import torch

    name = (device or os.environ.get("ASSET_STUDIO_DEVICE") or "").strip().lower()
    if not name or name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"Unknown device '{name}'; use cpu, cuda, cuda:N or mps.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("The device 'cuda' was asked for, but PyTorch sees no CUDA GPU here.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"There is no GPU {dev.index}; this machine has {torch.cuda.device_count()}.")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise UserError("The device 'mps' was asked for, but Apple's Metal backend is not available here.")
    elif dev.type != "cpu":
        raise UserError(f"Unsupported device '{name}'; use cpu, cuda, cuda:N or mps.")
    return dev, choose_dtype(dev, dtype)


def choose_dtype(dev, dtype=None):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    wanted = dtype or os.environ.get("ASSET_STUDIO_DTYPE")
    if wanted:
        key = str(wanted).strip().lower().removeprefix("torch.")
        if key not in DTYPE_NAMES:
            raise UserError(f"Unknown dtype '{wanted}'; use fp16, bf16 or fp32.")
        return getattr(torch, DTYPE_NAMES[key])
    # Half precision halves memory and is how GPU users run SD; CPUs are slow or wrong in fp16.
    return torch.float32 if dev.type == "cpu" else torch.float16
