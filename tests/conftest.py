"""Shared test set-up: offline hubs, offscreen Qt, rembg's model from ../shared, tiny models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REMBG_HOME = SHARED / "models" / "rembg"
SPRITES_DEV = SHARED / "data" / "sprites-dev"

# No network in tests: the hub libraries must fail fast instead of trying to download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if (REMBG_HOME / "u2netp.onnx").is_file():
    os.environ.setdefault("U2NET_HOME", str(REMBG_HOME))

sys.path.insert(0, str(Path(__file__).resolve().parent))

needs_rembg_model = pytest.mark.skipif(
    not (REMBG_HOME / "u2netp.onnx").is_file(),
    reason="../shared/models/rembg/u2netp.onnx is absent (rembg's real model is not shipped in the repo)",
)
needs_sprites = pytest.mark.skipif(
    not SPRITES_DEV.is_dir(), reason="../shared/data/sprites-dev is absent (CC0 sprites live outside the repo)"
)


@pytest.fixture(scope="session")
def tiny_sd15_dir(tmp_path_factory) -> Path:
    """A tiny random SD-1.5-shaped model saved as a diffusers folder."""
    from tiny_models import build_tiny_sd15, save_diffusers

    return save_diffusers(build_tiny_sd15(), tmp_path_factory.mktemp("models") / "tiny-sd15")


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    """A tiny random SDXL-shaped model saved as a diffusers folder."""
    from tiny_models import build_tiny_sdxl, save_diffusers

    return save_diffusers(build_tiny_sdxl(), tmp_path_factory.mktemp("models") / "tiny-sdxl")


@pytest.fixture(scope="module")
def one_thread_and_a_private_cache(tmp_path_factory):
    """One intra-op torch thread: tiny models gain nothing from more, and on a shared CI box two
    spinning OpenMP threads per process make runs tens of times slower. The engine's cache
    folder (configs written at first use) goes to a temporary folder, not the user's."""
    import torch

    before, cache = torch.get_num_threads(), os.environ.get("ASSET_STUDIO_CACHE")
    torch.set_num_threads(1)
    os.environ["ASSET_STUDIO_CACHE"] = str(tmp_path_factory.mktemp("asset-studio-cache"))
    yield
    torch.set_num_threads(before)
    if cache is None:
        os.environ.pop("ASSET_STUDIO_CACHE", None)
    else:
        os.environ["ASSET_STUDIO_CACHE"] = cache
