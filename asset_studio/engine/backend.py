"""The local backend: runs GenerationJobs with diffusers on this machine (core/backend.Backend).

    backend = LocalBackend()                # picks CUDA fp16 / MPS / CPU fp32
    backend.check(job)                      # instant: what cannot run is one sentence, before any load
    for event in backend.run(job, should_cancel):
        ...                                 # Loading, Progress, ImageReady …, Finished | Cancelled

Image i of a batch is its own pipeline call with seed_i, so each image is reported (and saved by
the service) as soon as it is decoded, and a cancel loses at most the image in flight. The
pipeline runs on a thread of its own while run() hands its events to the caller as they come,
so the caller (the GUI worker, the CLI) sees live progress through a plain iterator.
"""

from __future__ import annotations

import copy
import queue
import threading
from typing import Callable, Iterator

from asset_studio.core.backend import Cancelled, Finished, ImageReady, Loading, Notice, Progress
from asset_studio.core.job import GenerationJob, check_limits
from asset_studio.engine import plan as stages
from asset_studio.errors import UserError

CAPABILITIES = {"txt2img", "img2img", "controlnet", "lora", "vae", "clip_skip", "tiling", "animation", "video"}
_DONE = object()


class LocalBackend:
    """Runs jobs on one device; loaded pipelines stay cached between jobs."""

    name = "local"

    def __init__(self, device=None, dtype=None, cache=None, download: bool = False):
        from asset_studio.engine.device import choose_device
        from asset_studio.engine.loader import shared_cache

        self.device, self.dtype = choose_device(device, dtype)
        self.cache = cache if cache is not None else shared_cache()
        self.download = download  # whether a model named by repo id may be fetched from the Hub

    # --- the protocol ------------------------------------------------------------------------------

    def capabilities(self) -> set[str]:
        return set(CAPABILITIES)

    def check(self, job: GenerationJob) -> None:
        check_limits(job)
        for stage in stages.plan(job, self.download):
            stage.check(job)

    def run(self, job: GenerationJob, should_cancel: Callable[[], bool] | None = None, *,
            preview: bool = True) -> Iterator:
        """Events of one job, as they happen. Exceptions from the run are raised here, in the caller."""
        events: queue.Queue = queue.Queue()
        abandoned = threading.Event()  # the caller stopped listening: stop sampling at the next step

        def cancel() -> bool:
            return abandoned.is_set() or (should_cancel is not None and should_cancel())

        worker = threading.Thread(target=self._execute, args=(job, events.put, cancel, preview),
                                  name="asset-studio-sampling", daemon=True)
        worker.start()
        try:
            while True:
                event = events.get()
                if event is _DONE:
                    break
                if isinstance(event, BaseException):
                    raise event
                yield event
        finally:
            abandoned.set()
            worker.join()

    # --- conveniences for scripts, benchmarks and tests -----------------------------------------------

    def generate(self, job: GenerationJob, on_step: Callable | None = None,
                 should_cancel: Callable[[], bool] | None = None, on_image: Callable | None = None, *,
                 preview: bool = True) -> list[ImageReady]:
        """Run JOB to the end with callbacks; returns the images made (fewer when cancelled:
        self.cancelled tells)."""
        self.cancelled = False
        images = []
        for event in self.run(job, should_cancel, preview=preview and on_step is not None):
            if isinstance(event, Progress) and on_step is not None:
                on_step(event)
            elif isinstance(event, ImageReady):
                images.append(event)
                if on_image is not None:
                    on_image(event)
            elif isinstance(event, Cancelled):
                self.cancelled = True
        return images

    def load(self, job: GenerationJob):
        """The cached LoadedModel for the job's model, with the job's VAE in place."""
        ctx = self._context(job)
        stages.LoadModel(self.download).prepare(ctx)
        return ctx.loaded

    # --- the run -----------------------------------------------------------------------------------------

    def _context(self, job, should_cancel=None) -> stages.RunContext:
        return stages.RunContext(job=job, device=self.device, dtype=self.dtype, cache=self.cache,
                                 download=self.download, should_cancel=should_cancel)

    def _execute(self, job: GenerationJob, emit, should_cancel, preview: bool) -> None:
        try:
            self._sample(job, emit, should_cancel, preview)
        except stages.Cancelled:
            emit(Cancelled())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            if _is_out_of_memory(exc):
                exc = _after_out_of_memory(job)
            emit(exc)
        emit(_DONE)

    def _sample(self, job: GenerationJob, emit, should_cancel, preview: bool) -> None:
        cancelled = (lambda: False) if should_cancel is None else should_cancel
        if cancelled():
            emit(Cancelled())
            return
        self.check(job)  # also when the caller did not: bad input fails before a model loads
        plan = stages.plan(job, self.download)
        ctx = self._context(job, should_cancel=should_cancel)
        seeds = job.image_seeds()
        emit(Loading(f"Loading {_short(job.model.checkpoint)}…"))
        try:
            for stage in plan:
                stage.prepare(ctx)
            for text in ctx.notices:
                emit(Notice(text))
            ctx.on_progress = self._progress(ctx, emit, len(seeds), preview)
            size = job.sampling.batch
            for start in range(0, len(seeds), size):
                if cancelled():
                    emit(Cancelled())
                    return
                items = [stages.Item(index=start + i, seed=int(s)) for i, s in enumerate(seeds[start:start + size])]
                if job.animation is not None:  # the base pass hands on each frame as it is decoded
                    ctx.on_frame = self._frames(job, emit, items[0].index, items[0].seed)
                passes_began = False
                for stage in plan:
                    if getattr(stage, "after_pass", False) and not passes_began:
                        passes_began = True  # the viewer's before/after compare shows the picture from here
                        for item in items:
                            item.before = item.image
                    items = stage.run_many(ctx, items)
                if job.animation is None:  # saved as soon as their batch decodes: a crash loses at most one batch
                    for item in items:
                        emit(ImageReady(image=item.image, job=job.for_seed(item.seed, item.index), index=item.index,
                                        seed=item.seed, before=item.before))
        finally:
            for undo in reversed(ctx.undo):
                undo()
            for stage in reversed(plan):
                stage.release(ctx)
        emit(Finished())

    @staticmethod
    def _frames(job: GenerationJob, emit, index: int, seed: int):
        """ctx.on_frame for animation INDEX: one ImageReady per frame, its job naming the frame."""
        one = job.for_seed(seed)
        count = job.animation.frames

        def on_frame(frame: int, image) -> None:
            frame_job = copy.deepcopy(one)
            frame_job.source.frame = int(frame)
            emit(ImageReady(image=image, job=frame_job, index=index, seed=seed, frame=int(frame), frame_count=count))

        return on_frame

    def _progress(self, ctx, emit, count: int, preview: bool):
        previewer = None
        if preview:
            from asset_studio.engine.preview import Previewer

            family = ctx.loaded.family if ctx.loaded is not None else "sd15"  # SVD: an SD-style latent space
            previewer = Previewer(family, self.device, self.dtype)

        def on_progress(step, total, index, latents):
            image = previewer(latents) if previewer is not None else None
            emit(Progress(step=step, total=total, image_index=index, image_count=count, preview=image,
                          stage=ctx.stage_label))

        return on_progress


def _short(ref: str) -> str:
    from asset_studio.engine.loader import model_display_name

    return model_display_name(ref)


def _is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _after_out_of_memory(job: GenerationJob) -> UserError:
    """Free what the failed run left on the card, so the engine (model still loaded) takes the next
    job; the sentence says what to change."""
    import gc

    import torch

    from asset_studio.engine.memory import out_of_memory_advice

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return UserError(out_of_memory_advice(job))
