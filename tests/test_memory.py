"""Fast and fitting: the memory policy for small cards, throughput batches, and out-of-memory as one
sentence with the engine still usable. CUDA itself is not here; what needs it is tested with numbers
and fakes, and the GPU benchmark (bench/gpu.py) runs where a card is lent."""

from __future__ import annotations

import numpy as np
import pytest

from asset_studio.engine.memory import GB, MemoryPolicy, choose_policy
from asset_studio.errors import UserError
from jobs import make_job


@pytest.mark.parametrize("free_gb, family, size, expected", [
    (24, "sdxl", 1024, MemoryPolicy()),  # a big card: nothing given up
    (24, "sd15", 512, MemoryPolicy()),
    (4, "sd15", 512, MemoryPolicy()),  # SD 1.5 at 512² fits a 4 GB card as it is
    (8, "sdxl", 1024, MemoryPolicy(offload="model", vae_tiling=True, attention_slicing=True)),
    (3, "sd15", 512, MemoryPolicy(offload="model", vae_tiling=True, attention_slicing=True)),
    (1.5, "sd15", 512, MemoryPolicy(offload="sequential", vae_tiling=True, attention_slicing=True)),
])
def test_policy_takes_the_cheapest_steps_that_fit(free_gb, family, size, expected):
    policy = choose_policy(free_gb * GB, family, size, size)
    assert (policy.offload, policy.vae_slicing, policy.vae_tiling, policy.attention_slicing) == \
        (expected.offload, expected.vae_slicing, expected.vae_tiling, expected.attention_slicing)
    assert bool(policy.reason) == policy.active  # when something gives, the artist is told what and why


def test_batches_slice_the_vae_before_anything_slower():
    policy = choose_policy(6 * GB, "sd15", 512, 512, batch=8)
    assert policy.vae_slicing and policy.offload == "none"
    assert "VAE slicing" in policy.reason and "6.0 GB free" in policy.reason


def test_policy_switches_on_and_off_on_a_real_pipeline(tiny_sd15_dir):
    from diffusers import StableDiffusionPipeline

    from asset_studio.engine.memory import apply_policy

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd15_dir)
    apply_policy(pipe, MemoryPolicy(vae_slicing=True, vae_tiling=True, attention_slicing=True), "cpu")
    assert pipe.vae.use_slicing and pipe.vae.use_tiling
    apply_policy(pipe, MemoryPolicy(), "cpu")  # a later, roomier run takes them back
    assert not pipe.vae.use_slicing and not pipe.vae.use_tiling


@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_out_of_memory_is_one_sentence_and_the_next_job_runs(tiny_sd15_dir, monkeypatch):
    import torch

    from asset_studio.engine import plan
    from asset_studio.engine.backend import LocalBackend

    backend = LocalBackend(device="cpu")
    job = make_job(tiny_sd15_dir, "a potion", width=64, height=64, steps=1, seed=1, batch_count=2)
    job.sampling.batch = 2
    real_call = plan._call
    fail = {"left": 1}

    def fake_allocator_full(*args, **kwargs):  # the card is full on the first call
        if fail["left"]:
            fail["left"] -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(*args, **kwargs)

    monkeypatch.setattr(plan, "_call", fake_allocator_full)
    with pytest.raises(UserError, match="ran out of memory; make images one at a time instead of 2 per batch.*"
                                        "model stays loaded"):
        backend.generate(job)
    loads = backend.cache.loads
    assert len(backend.generate(job)) == 2 and backend.cache.loads == loads  # usable, nothing reloaded


@pytest.mark.usefixtures("one_thread_and_a_private_cache")
def test_a_batch_gives_the_images_made_one_at_a_time(tiny_sd15_dir):
    from asset_studio.engine.backend import LocalBackend

    backend = LocalBackend(device="cpu")
    one_by_one = backend.generate(make_job(tiny_sd15_dir, "a potion", width=64, height=64, steps=3, seed=9,
                                           batch_count=3, sampler="Euler a"))
    job = make_job(tiny_sd15_dir, "a potion", width=64, height=64, steps=3, seed=9, batch_count=3, sampler="Euler a")
    job.sampling.batch = 2  # a batch of 2, then 1
    steps = []
    batched = backend.generate(job, on_step=lambda s: steps.append(s.image_index))
    assert [r.seed for r in batched] == [9, 10, 11] and [r.index for r in batched] == [0, 1, 2]
    assert steps == [0, 0, 0, 2, 2, 2]  # two pipeline calls: images 0-1 together, then image 2
    for a, b in zip(one_by_one, batched):
        diff = np.abs(np.asarray(a.image, dtype=float) - np.asarray(b.image, dtype=float))
        assert diff.mean() <= 1.0  # the same noise per seed; batched arithmetic may round differently
        assert b.job.sampling.batch == 1  # each image re-runs alone
