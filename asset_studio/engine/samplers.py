"""Schedulers for the sampler names of core/samplers.py, built from the loaded model's config.

Each scheduler is built from the loaded model's scheduler config, so the model's training
schedule (betas, prediction type) carries over and only the sampling method changes.
"""

from __future__ import annotations

from asset_studio.core.samplers import lookup


def build_scheduler(name: str, base_config, seed: int | None = None):
    """A fresh scheduler for one image. `base_config` is the model's own scheduler config."""
    import diffusers

    sampler = lookup(name)
    cls = getattr(diffusers, sampler.scheduler)
    options = dict(sampler.options)
    if sampler.seeded and seed is not None:
        options["noise_sampler_seed"] = seed  # its Brownian-tree noise is otherwise unseeded
    config = dict(base_config)
    # Options of the model's scheduler that the new method may not share (e.g. PNDM's prk steps).
    for key in ("use_exponential_sigmas", "use_beta_sigmas", "use_flow_sigmas"):
        config.pop(key, None)
    return cls.from_config(config, **options)
