"""A backend for tests: it follows the backend protocol (check, run → events) without a model.

Each image takes `steps` steps of `step_delay` seconds and is a flat green picture. A prompt of
'fail' raises a UserError, 'oom' an error shaped like torch's OutOfMemoryError, 'refuse' is
refused by check() before anything runs.
"""

from __future__ import annotations

import threading
import time

from PIL import Image

from asset_studio.errors import UserError

try:
    from asset_studio.core.backend import Cancelled, Finished, ImageReady, Loading, Progress
except ImportError:  # until the restructured core lands: the same contract, through the GUI's link to it
    from asset_studio.gui.model.core_link import Cancelled, Finished, ImageReady, Loading, Progress


def _sampling(job):
    return job.sampling if hasattr(job, "sampling") else job


def _prompt(job) -> str:
    return job.prompt.text if hasattr(job.prompt, "text") else job.prompt


def _one_image_job(job, seed: int):
    if hasattr(job, "for_seed"):
        return job.for_seed(seed)
    from asset_studio.core.library import image_job

    return image_job(job, seed)


class ScriptedBackend:
    name = "scripted"

    def __init__(self, step_delay: float = 0.0):
        self.step_delay = step_delay
        self.threads: set[str] = set()
        self.checked: list[str] = []

    def capabilities(self) -> set[str]:
        return {"txt2img"}

    def check(self, job) -> None:
        self.checked.append(_prompt(job))
        if _prompt(job) == "refuse":
            raise UserError("The scripted backend cannot run this job.")

    def run(self, job, should_cancel):
        self.threads.add(threading.current_thread().name)
        prompt, s = _prompt(job), _sampling(job)
        if prompt == "fail":
            raise UserError("The model file is corrupt.")
        if prompt == "oom":
            raise type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2 GiB")
        yield Loading("Loading the scripted model…")
        seeds = job.image_seeds()
        for index, seed in enumerate(seeds):
            for step in range(1, s.steps + 1):
                if should_cancel():
                    yield Cancelled()
                    return
                time.sleep(self.step_delay)
                yield Progress(step, s.steps, index, len(seeds), Image.new("RGB", (8, 8), (step * 20 % 256, 0, 0)))
            yield ImageReady(Image.new("RGB", (s.width, s.height), (0, 128, 0)), _one_image_job(job, seed), index, seed)
        yield Finished()
