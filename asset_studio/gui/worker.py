"""The generation worker: one QThread that owns a backend and turns its events into signals.

The GUI thread never imports torch. It calls `submit()` / `cancel()` / `move()` (thread-safe) and
listens to signals. The worker builds its backend (the local engine by default) in its own thread
the first time it is needed and keeps it, with its loaded models, for the next job. Each job runs
through service.run_job(), the same path as the CLI, which saves every image to the library
before its event reaches the UI.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

from asset_studio.core.backend import Loading, Notice, Progress
from asset_studio.errors import UserError
from asset_studio.service import Saved, readable_error, run_job

log = logging.getLogger(__name__)

PREVIEW_MAX = 256  # live previews are shown small; keep the per-step copy cheap
SHOWN_MAX = 1024  # finished images as shown in the preview panel


@dataclass
class _Pending:
    job_id: int
    job: object
    folder: Path | None = None  # None: the output folder (a pose set has a folder of its own)
    name: str | None = None  # the file name (a pose set's knight-front.png); None: numbered


def pil_to_qimage(image, max_side: int | None = None) -> QImage:
    """A deep-copied QImage of a PIL image (RGBA kept), optionally scaled down first."""
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    fmt = QImage.Format.Format_RGBA8888 if image.mode == "RGBA" else QImage.Format.Format_RGB888
    data = image.tobytes()
    channels = 4 if image.mode == "RGBA" else 3
    qimg = QImage(data, image.width, image.height, image.width * channels, fmt)
    return qimg.copy()  # own the pixels: `data` dies with this frame


def default_backend_factory(device: str | None) -> object:
    """The local engine's backend; runs in the worker thread, so torch loads there."""
    import torch

    # Leave a core for the GUI thread so the window keeps painting while the model runs.
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    from asset_studio.engine.backend import LocalBackend

    backend = LocalBackend(device)
    # Some imports hold the GIL for up to a second (native libraries loading: torch's model
    # modules, onnxruntime which diffusers' loader pulls in). Do them here, at warm-up, rather
    # than in the middle of the first job while the window is animating its progress.
    import importlib

    import diffusers
    import transformers

    for name in ("StableDiffusionPipeline", "StableDiffusionXLPipeline", "UNet2DConditionModel", "AutoencoderKL"):
        getattr(diffusers, name)
    for name in ("CLIPTextModel", "CLIPTextModelWithProjection", "CLIPTokenizer"):
        getattr(transformers, name)
    from asset_studio.core.samplers import SAMPLERS

    for sampler in SAMPLERS.values():  # every scheduler class (DPM++ SDE pulls in torchsde)
        getattr(diffusers, sampler.scheduler)
    for module in ("asset_studio.engine.preview", "asset_studio.engine.plan", "asset_studio.engine.samplers",
                   "asset_studio.core.library", "asset_studio.core.outputs",
                   "diffusers.pipelines.onnx_utils", "diffusers.guiders"):
        try:
            importlib.import_module(module)
        except ImportError:  # optional pieces of diffusers; the loader copes without them
            pass
    return backend


CUTOUT_KEPT_MIN = 0.02  # a sprite with less than this share of visible pixels lost its subject


def cutout_warning(sprite, name: str) -> str:
    """A sentence when the finished sprite kept almost nothing (the background removal took the
    subject too); "" otherwise. Runs in the worker thread (numpy over the alpha channel)."""
    if "A" not in sprite.getbands():
        return ""
    import numpy as np

    alpha = np.asarray(sprite.getchannel("A"))
    kept = float(np.count_nonzero(alpha > 8)) / max(1, alpha.size)
    if kept >= CUTOUT_KEPT_MIN:
        return ""
    return (f"The cut-out of {name} kept {kept:.1%} of the image: the background removal took the subject too. "
            "The raw image is kept (Raw images in the gallery); try another background method in the style.")


def available_devices() -> list[str]:
    """The devices torch can use here (checked in the worker thread: the GUI never imports torch)."""
    found = []
    try:
        import torch

        if torch.cuda.is_available():
            found.append("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            found.append("mps")
    except Exception:  # noqa: BLE001 - no torch: the CPU is all there is
        pass
    return found + ["cpu"]


class GenerationWorker(QObject):
    """Lives in its own QThread. Public methods are safe to call from the GUI thread."""

    queued = Signal(int, object)  # job_id, the job
    started = Signal(int)  # job_id
    loading = Signal(int, str)  # job_id, what is loading ("Loading the model…")
    notice = Signal(int, str)  # job_id, something to know that does not stop the run (a prompt cut at 77 tokens)
    model_missing = Signal(str)  # a cut-out model the run needs is not installed: the window offers it
    step = Signal(int, int, int, QImage)  # job_id, step (1-based), total, preview (may be null)
    stage = Signal(int, str)  # job_id, the after-pass part now running ("tile 3 of 12"); "" back at the base pass
    image_saved = Signal(int, str, QImage)  # job_id, path (on disk already), the image for display
    # An animation's frame instead of image_saved (the Animate tab plays them; the gallery is not
    # filled with frames): job_id, animation index, frame, frames in the animation, path, image.
    frame_saved = Signal(int, int, int, int, str, QImage)
    placed = Signal(int, int, str, bool)  # job_id, image index, who makes it (job.made_by; "" = here), saved already
    finished = Signal(int, list)  # job_id, [paths]
    failed = Signal(int, str)  # job_id, one sentence
    cancelled = Signal(int)  # job_id
    idle = Signal()  # the queue is empty
    warmed = Signal()  # warm_up() finished
    devices_found = Signal(list)  # after warm-up: the devices this computer has ("cuda", "mps", "cpu")

    _wake = Signal()
    _warm = Signal()
    _reset = Signal()

    def __init__(
        self,
        output_dir: Path,
        device: str | None = None,
        backend_factory: Callable[[str | None], object] = default_backend_factory,
    ):
        super().__init__()
        self.output_dir = Path(output_dir)
        self.device = device
        self._backend_factory = backend_factory
        self._backend = None
        self._lock = threading.Lock()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._current: int | None = None
        self._cancel = threading.Event()
        self._ids = itertools.count(1)
        self._thread = QThread()
        self._thread.setObjectName("asset-studio-worker")
        self.moveToThread(self._thread)
        self._wake.connect(self._drain)  # queued connection: _drain runs in the worker thread
        self._warm.connect(self._warm_up)
        self._reset.connect(self._drop_backend)
        self._thread.start()

    # --- GUI-thread API -----------------------------------------------------------------------

    def submit(self, job, folder: Path | None = None, name: str | None = None) -> int:
        job_id = next(self._ids)
        with self._lock:
            self._pending.append(_Pending(job_id, job, folder, name))
        self.queued.emit(job_id, job)
        self._wake.emit()
        return job_id

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job (queued or running), or with no id the running job and everything queued."""
        dropped = []
        with self._lock:
            if job_id is None:
                dropped = [p.job_id for p in self._pending]
                self._pending.clear()
                if self._current is not None:
                    self._cancel.set()
            elif job_id == self._current:
                self._cancel.set()
            else:
                for p in list(self._pending):
                    if p.job_id == job_id:
                        self._pending.remove(p)
                        dropped.append(job_id)
        for jid in dropped:
            self.cancelled.emit(jid)

    def move(self, job_id: int, position: int) -> bool:
        """Move a queued job to POSITION among the queued ones (0 = next); False once it has started."""
        with self._lock:
            item = next((p for p in self._pending if p.job_id == job_id), None)
            if item is None:
                return False
            self._pending.remove(item)
            self._pending.insert(max(0, min(position, len(self._pending))), item)
        return True

    def pending_ids(self) -> list[int]:
        with self._lock:
            return [p.job_id for p in self._pending]

    def warm_up(self) -> None:
        """Import torch and build the backend in the worker thread now, not on the first Generate.

        Importing torch holds the GIL for most of a second (loading its libraries); done right
        after the window opens, the artist's first click does not pay for it.
        """
        self._warm.emit()

    def busy(self) -> bool:
        with self._lock:
            return self._current is not None or bool(self._pending)

    def set_device(self, device: str | None) -> None:
        """Use another device from the next job on (the backend is rebuilt in the worker thread)."""
        self.device = device
        self._reset.emit()

    def set_output_dir(self, path: Path) -> None:
        self.output_dir = Path(path)

    def shutdown(self, wait_ms: int = 30000) -> None:
        """Cancel everything and stop the thread (called when the window closes)."""
        self.cancel()
        self._thread.quit()
        self._thread.wait(wait_ms)

    # --- worker thread ------------------------------------------------------------------------

    @Slot()
    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._current = None
                    break
                item = self._pending.popleft()
                self._current = item.job_id
                self._cancel.clear()
            self._run_one(item)
        self.idle.emit()

    @Slot()
    def _drop_backend(self) -> None:
        self._backend = None

    @Slot()
    def _warm_up(self) -> None:
        if self._backend is None:
            try:
                self._backend = self._backend_factory(self.device)
            except Exception as exc:  # noqa: BLE001 - the first job reports it as a sentence
                log.info("backend warm-up failed: %s", exc)
        if "torch" in sys.modules:  # a backend without torch (a remote one) has no local devices to offer
            self.devices_found.emit(available_devices())
        self.warmed.emit()

    def _run_one(self, item: _Pending) -> None:
        job_id, job = item.job_id, item.job
        self.started.emit(job_id)
        paths: list[str] = []
        stage = [""]
        announced: set[tuple[int, str]] = set()  # (image, maker) already told: once per image, not per step

        def on_event(event) -> None:
            if isinstance(event, Progress) and event.stage != stage[0]:
                stage[0] = event.stage
                self.stage.emit(job_id, event.stage)
            if isinstance(event, Progress):
                if (event.image_index, event.made_by) not in announced:
                    announced.add((event.image_index, event.made_by))
                    self.placed.emit(job_id, event.image_index, event.made_by, False)
                preview = QImage() if event.preview is None else pil_to_qimage(event.preview, PREVIEW_MAX)
                # Steps of every image in the batch count toward one bar.
                done = event.image_index * event.total + event.step
                self.step.emit(job_id, done, event.total * max(1, event.image_count), preview)
            elif isinstance(event, Saved) and event.frame is not None:
                paths.append(str(event.raw))
                count = job.animation.frames if job.animation is not None else event.frame + 1
                self.frame_saved.emit(job_id, event.index, event.frame, count, str(event.raw),
                                      pil_to_qimage(event.image, SHOWN_MAX))
            elif isinstance(event, Saved):
                paths.append(str(event.raw))
                self.placed.emit(job_id, event.index, event.made_by, True)
                # Decoded here, not on the GUI thread: a large PNG takes tens of ms to read back.
                self.image_saved.emit(job_id, str(event.raw), pil_to_qimage(event.image, SHOWN_MAX))
                if event.sprite is not None:
                    warning = cutout_warning(event.image, Path(event.raw).name)
                    if warning:
                        self.notice.emit(job_id, warning)
            elif isinstance(event, Loading):
                self.loading.emit(job_id, event.what)
            elif isinstance(event, Notice):
                self.notice.emit(job_id, event.text)
                if event.missing_model:
                    self.model_missing.emit(event.missing_model)

        try:
            if self._backend is None:
                self.loading.emit(job_id, "Loading the engine…")
                self._backend = self._backend_factory(self.device)
            result = run_job(job, self._backend, item.folder or self.output_dir, should_cancel=self._cancel.is_set,
                             on_event=on_event, name=item.name)
        except Exception as exc:  # noqa: BLE001 - the worker must keep serving after any failure
            message = readable_error(exc)
            if not isinstance(exc, UserError):
                log.error("job %s failed:\n%s", job_id, "".join(traceback.format_exception(exc)))
            self._after_error(exc)
            self.failed.emit(job_id, message)
            return
        if result.cancelled or self._cancel.is_set():
            self.cancelled.emit(job_id)
        else:
            self.finished.emit(job_id, paths)

    def _after_error(self, exc: BaseException) -> None:
        """Free what a failed job left on the GPU so the next one can run."""
        if type(exc).__name__ == "OutOfMemoryError":
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except Exception:  # noqa: BLE001
                pass

