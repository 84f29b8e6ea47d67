"""A backend for tests: it follows the backend protocol (check, run → events) without a model.

Each image takes `steps` steps of `step_delay` seconds and is a flat green picture; an animation
job's frames (a red square moving across green, `frame_delay` seconds apart) come one by one
after the steps, as the local backend decodes them. A prompt of
'fail' raises a UserError, 'oom' an error shaped like torch's OutOfMemoryError, 'refuse' is
refused by check() before anything runs.
"""

from __future__ import annotations

import threading
import time

from PIL import Image

from asset_studio.errors import UserError

from asset_studio.core.backend import Cancelled, Finished, ImageReady, Loading, Progress


class ScriptedBackend:  # implements core.backend.Backend
    name = "scripted"

    def __init__(self, step_delay: float = 0.0, frame_delay: float = 0.0):
        self.step_delay = step_delay
        self.frame_delay = frame_delay
        self.threads: set[str] = set()
        self.checked: list[str] = []

    def capabilities(self) -> set[str]:
        return {"txt2img"}

    def check(self, job) -> None:
        self.checked.append(job.prompt.text)
        if job.prompt.text == "refuse":
            raise UserError("The scripted backend cannot run this job.")

    def run(self, job, should_cancel):
        self.threads.add(threading.current_thread().name)
        prompt, s = job.prompt.text, job.sampling
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
            if job.animation is not None:
                if (yield from self._frames(job, index, seed, should_cancel)):
                    return  # cancelled
                continue
            yield ImageReady(Image.new("RGB", (s.width, s.height), (0, 128, 0)), job.for_seed(seed), index, seed)
        yield Finished()

    def _frames(self, job, index, seed, should_cancel):
        import copy

        s, count = job.sampling, job.animation.frames
        one = job.for_seed(seed)
        side = max(2, min(s.width, s.height) // 4)
        for frame in range(count):
            if should_cancel():
                yield Cancelled()
                return True
            time.sleep(self.frame_delay)
            image = Image.new("RGB", (s.width, s.height), (0, 128, 0))
            x = round(frame * (s.width - side) / max(1, count - 1))
            image.paste((220, 40, 40), (x, (s.height - side) // 2, x + side, (s.height + side) // 2))
            frame_job = copy.deepcopy(one)
            frame_job.source.frame = frame
            yield ImageReady(image, frame_job, index, seed, frame=frame, frame_count=count)
        return False
