"""More of an image from the gallery: the same seed again, a re-roll, or real variations.

- re-run: the image's own job and seed (the same picture again);
- re-roll: the same job with COUNT new random seeds (other pictures of the same prompt);
- variations: the image itself as the start of an img2img run at a low denoise, with COUNT new
  seeds: the same composition and colours with details changed. A low strength keeps the image;
  VARIATION_DENOISE is where SD 1.x and SDXL change details but not the layout.
- variation seeds (A1111's "Variation seed"): the image's own seed, its starting noise nudged
  toward COUNT new subseeds at SUBSEED_STRENGTH: the same picture with small changes, no img2img.
"""

from __future__ import annotations

import random
from pathlib import Path

from asset_studio.core.job import GenerationJob, InitImage

MAX_SEED = 2**32 - 1
VARIATION_DENOISE = 0.35
SUBSEED_STRENGTH = 0.15


def rerun(job: GenerationJob) -> GenerationJob:
    """The image again: a PNG holds one image of a batch, its own seed first."""
    return job.for_seed(job.image_seeds()[0])


def new_seeds(count: int, rng: random.Random | None = None) -> list[int]:
    rng = rng or random.SystemRandom()
    return [rng.randrange(MAX_SEED + 1) for _ in range(max(1, int(count)))]


def reroll(job: GenerationJob, count: int, rng: random.Random | None = None) -> GenerationJob:
    """The same job with COUNT new random seeds."""
    seeds = new_seeds(count, rng)
    out = job.for_seed(seeds[0])
    out.sampling.seeds, out.sampling.count = seeds, len(seeds)
    return out


def variations(job: GenerationJob, image: Path, count: int, strength: float = VARIATION_DENOISE,
               rng: random.Random | None = None) -> GenerationJob:
    """COUNT variations of IMAGE (the raw image, not the cut-out): img2img from it at STRENGTH."""
    if not 0.0 < strength < 1.0:
        raise ValueError("the variation strength is a denoise between 0 and 1")
    out = reroll(job, count, rng)
    out.init = InitImage(image=str(Path(image).resolve()), denoise=round(float(strength), 2))
    return out


def can_vary_by_subseed(job: GenerationJob) -> bool:
    """Variation seeds nudge text-to-image noise; an img2img image or an animation has none to nudge."""
    return job.init is None and job.output == "image"


def subseed_variations(job: GenerationJob, count: int, strength: float = SUBSEED_STRENGTH,
                       rng: random.Random | None = None) -> GenerationJob:
    """COUNT variations of the image by variation seed: every image keeps its seed, image i mixes
    in new subseed + i at STRENGTH. (An image that is itself a variation is varied around its seed's
    picture: its own subseed is replaced, as in A1111.)"""
    if not 0.0 < strength < 1.0:
        raise ValueError("the variation strength is between 0 and 1")
    if not can_vary_by_subseed(job):
        raise ValueError("variation seeds need a text-to-image job")
    seed, n = job.image_seeds()[0], max(1, int(count))
    out = job.for_seed(seed)
    out.sampling.seeds, out.sampling.count = [seed] * n, n
    out.sampling.subseed, out.sampling.subseed_strength = new_seeds(1, rng)[0], round(float(strength), 2)
    return out
