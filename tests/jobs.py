"""Short jobs for tests: the flat settings artists know (schema-1 names), through the real migration."""

from __future__ import annotations

from asset_studio.core.job import GenerationJob, checked, migrate_v1


def make_job(model="m", prompt="p", loras=(), controls=(), **flat) -> GenerationJob:
    """A GenerationJob from flat settings (width=64, steps=2, init_image=…, batch_count=…), not
    range-checked, so tests can also build the bad jobs the checks must refuse."""
    job = checked(GenerationJob, migrate_v1({"model": str(model), "prompt": prompt, **flat}), "")
    job.model.loras = list(loras)
    job.controls = list(controls)
    return job


def steps_per_call(steps) -> list[int]:
    """Steps run by each pipeline call, from a job's progress events (each call counts from 1)."""
    out = []
    for s in steps:
        if s.step == 1:
            out.append(0)
        out[-1] += 1
    return out
