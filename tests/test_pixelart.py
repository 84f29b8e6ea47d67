"""Pixel-art clean-up: grid snapping, palette reduction, hard alpha."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from asset_studio.core.pixelart import detect_pixel_size, hard_alpha, reduce_palette, snap_to_grid
from asset_studio.errors import UserError


def pixel_art(cells=(12, 16), block=8, seed=0, colors=6) -> tuple[np.ndarray, Image.Image]:
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (colors, 3))
    small = np.zeros((cells[1], cells[0], 4), np.uint8)
    small[..., :3] = palette[rng.integers(0, colors, (cells[1], cells[0]))]
    small[..., 3] = np.where(rng.random((cells[1], cells[0])) < 0.8, 255, 0)
    big = Image.fromarray(small, "RGBA").resize((cells[0] * block, cells[1] * block), Image.Resampling.NEAREST)
    return small, big


def test_detects_the_pixel_size():
    _, big = pixel_art(block=8)
    assert detect_pixel_size(big) == 8
    _, big5 = pixel_art(block=5, seed=1)
    assert detect_pixel_size(big5) == 5
    noise = Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 4), dtype=np.uint8), "RGBA")
    assert detect_pixel_size(noise) == 1


def test_snap_restores_flat_blocks_from_a_soft_rendering():
    small, big = pixel_art(block=8)
    # what a diffusion model draws: the blocks blurred a little and slightly noisy
    soft = np.asarray(big.filter(ImageFilter.GaussianBlur(1.2))).astype(int)
    soft = np.clip(soft + np.random.default_rng(3).integers(-6, 7, soft.shape), 0, 255).astype(np.uint8)
    snapped = snap_to_grid(Image.fromarray(soft, "RGBA"), resolution=16)
    assert snapped.size == big.size
    px = np.asarray(snapped)
    blocks = px.reshape(16, 8, 12, 8, 4)
    # every 8x8 block is one flat colour, close to the original cell's colour
    assert (blocks == blocks[:, :1, :, :1]).all()
    centre = blocks[:, 0, :, 0, :3].astype(int)
    vis = small[..., 3] > 0
    assert np.abs(centre - small[..., :3].astype(int))[vis].mean() < 20


def test_snap_detects_the_grid_when_not_given():
    _, big = pixel_art(block=4, seed=5)
    assert np.array_equal(np.asarray(snap_to_grid(big)), np.asarray(big))
    with pytest.raises(UserError):
        snap_to_grid(big, resolution=-1)


def test_palette_reduction_keeps_alpha_and_limits_colours():
    rng = np.random.default_rng(4)
    px = rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)
    px[..., 3] = np.where(rng.random((40, 40)) < 0.5, 255, 0)
    out = np.asarray(reduce_palette(Image.fromarray(px, "RGBA"), 5))
    assert np.array_equal(out[..., 3], px[..., 3])
    assert len(np.unique(out[px[..., 3] > 0][:, :3], axis=0)) <= 5
    with pytest.raises(UserError, match="between 1 and 256"):
        reduce_palette(Image.fromarray(px, "RGBA"), 0)


def test_palette_comes_from_visible_pixels_only():
    px = np.zeros((10, 10, 4), np.uint8)
    px[..., :3] = (0, 255, 0)  # hidden green must not take a palette slot
    px[:5, :, :] = (200, 0, 0, 255)
    px[5:8, :, :] = (0, 0, 200, 255)
    out = np.asarray(reduce_palette(Image.fromarray(px, "RGBA"), 2))
    assert tuple(out[0, 0, :3]) == (200, 0, 0) and tuple(out[6, 0, :3]) == (0, 0, 200)


def test_hard_alpha():
    px = np.zeros((1, 4, 4), np.uint8)
    px[0, :, 3] = (0, 127, 128, 255)
    out = np.asarray(hard_alpha(Image.fromarray(px, "RGBA")))
    assert list(out[0, :, 3]) == [0, 0, 255, 255]
