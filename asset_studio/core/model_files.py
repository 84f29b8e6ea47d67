"""What a model reference may be, and where Hugging Face keeps downloaded repos. One home each.

A model reference is a local path (a diffusers folder or a .safetensors file) or a Hugging Face
repo id. Pickle formats are refused everywhere: loading one can run code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# Checkpoint formats that unpickle on load; named here once for every loader and importer.
PICKLE_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"})
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_pickle(path) -> bool:
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def pickle_refusal(path) -> str:
    """The one sentence said wherever a pickle file is offered as a model."""
    return f"{Path(path).name} is a pickle file, which can run code when loaded; use a .safetensors version."


def hub_cache_dir() -> Path:
    """Hugging Face's hub cache, found the way huggingface_hub finds it (read-only, offline)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def hub_snapshots(repo: str) -> list[Path]:
    """The cached snapshots of REPO, newest first (none when it was never downloaded)."""
    folder = hub_cache_dir() / ("models--" + repo.replace("/", "--")) / "snapshots"
    return sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []


def hub_cached_file(repo: str, filename: str) -> Path | None:
    for snapshot in hub_snapshots(repo):
        if (snapshot / filename).is_file():
            return snapshot / filename
    return None
