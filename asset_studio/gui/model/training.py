"""The Train page's state: a dataset folder and the few settings that matter, one training run at a
time on a thread of its own (never the GUI thread, which never imports torch), and its progress
as signals: step, loss, time left, sample pictures, and the finished style pack.

engine/train.train() does the work and reports dataclass events; this object turns them into
signals. Cancel stops at the next step and keeps a checkpoint, so Resume continues from it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from asset_studio.core.stylepack import app_home
from asset_studio.errors import UserError


@dataclass
class TrainSettings:
    """What the page shows; the rest of engine/train.TrainConfig keeps its defaults."""

    data_dir: str = ""
    model: str = ""
    pack_id: str = ""  # also the output folder's name under the user's styles folder
    trigger: str = ""  # "" = the pack id
    steps: int = 1000
    rank: int = 16
    learning_rate: float = 1e-4
    resolution: int = 0  # 0 = the model family's own
    train_text_encoder: bool = False
    flip: bool = False


class _Runner(QObject):
    """Lives on the training thread; calls engine/train.train() there."""

    event = Signal(object)
    failed = Signal(str)
    done = Signal(object)  # TrainResult

    def __init__(self):
        super().__init__()
        self.cancel = threading.Event()

    @Slot(object)
    def run(self, config) -> None:
        try:
            from asset_studio.engine.train import train

            result = train(config, on_event=self.event.emit, should_cancel=self.cancel.is_set)
        except UserError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - the page must stay usable after any failure
            from asset_studio.service import readable_error

            self.failed.emit(readable_error(exc))
        else:
            self.done.emit(result)


class TrainingRun(QObject):
    state_changed = Signal(str)  # idle | checking | training | finished | cancelled | failed
    progress = Signal(int, int, float, float)  # step, total, loss, seconds left (-1 = not known yet)
    status = Signal(str)  # one line: what is happening now
    sample = Signal(object)  # a PIL image from the fixed sample prompts
    finished = Signal(str)  # the new pack's id
    failed = Signal(str)  # one sentence

    _start = Signal(object)

    def __init__(self, parent: QObject | None = None, styles_dir: Path | None = None):
        super().__init__(parent)
        self.settings = TrainSettings()
        self.styles_dir = Path(styles_dir) if styles_dir else app_home() / "styles"
        self.state = "idle"
        self.losses: list[float] = []
        self.pack_dir: Path | None = None
        self._started_at = 0.0
        self._first_step = 0
        self._thread = QThread()
        self._thread.setObjectName("asset-studio-training")
        self._runner = _Runner()
        self._runner.moveToThread(self._thread)
        self._start.connect(self._runner.run)  # queued: runs on the training thread
        self._runner.event.connect(self._on_event)
        self._runner.failed.connect(self._on_failed)
        self._runner.done.connect(self._on_done)
        self._thread.start()

    # --- what the page calls ------------------------------------------------------------------

    def out_dir(self) -> Path:
        from asset_studio.engine.train import pack_id_for

        pack_id = self.settings.pack_id or pack_id_for(Path(self.settings.data_dir or "style"))
        return self.styles_dir / pack_id

    def config(self, resume: bool = False, **overrides):
        """The engine's TrainConfig for these settings; one sentence when something is missing."""
        from asset_studio.engine.train import TrainConfig

        s = self.settings
        if not s.data_dir:
            raise UserError("Choose the folder of your images first.")
        if not s.model:
            raise UserError("Choose the base model to train on (Models page).")
        config = TrainConfig(data_dir=s.data_dir, model=s.model, out_dir=str(self.out_dir()), trigger=s.trigger,
                             pack_id=s.pack_id, steps=s.steps, rank=s.rank, learning_rate=s.learning_rate,
                             resolution=s.resolution or None, train_text_encoder=s.train_text_encoder,
                             flip=s.flip, resume=resume)
        return replace(config, **overrides)

    def dataset_preview(self) -> list[tuple[str, str]]:
        """(file name, caption) of every image the run would use: the dataset as the artist sees it."""
        from asset_studio.core.dataset import scan_dataset
        from asset_studio.engine.train import pack_id_for

        trigger = self.settings.trigger or self.settings.pack_id or pack_id_for(Path(self.settings.data_dir))
        dataset = scan_dataset(self.settings.data_dir, trigger)
        return [(Path(item.path).name, item.caption) for item in dataset.items]

    def start(self, resume: bool = False, **overrides) -> None:
        if self.busy():
            raise UserError("A training run is already going; cancel it first.")
        config = self.config(resume=resume, **overrides)
        self.losses, self.pack_dir = [], None
        self._set_state("checking")
        self._runner.cancel.clear()
        self._started_at = time.monotonic()
        self._start.emit(config)

    def cancel(self) -> None:
        if self.busy():
            self._runner.cancel.set()
            self.status.emit("Stopping after this step (a checkpoint is kept: Resume continues from it)…")

    def busy(self) -> bool:
        return self.state in ("checking", "training")

    def shutdown(self, wait_ms: int = 30000) -> None:
        self._runner.cancel.set()
        self._thread.quit()
        self._thread.wait(wait_ms)

    # --- events from the training thread ----------------------------------------------------------

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)

    def _on_event(self, event) -> None:
        kind = type(event).__name__
        if kind == "DatasetChecked":
            self.status.emit(f"{event.images} images in {len(event.buckets)} size bucket(s).")
        elif kind == "ModelLoading":
            self.status.emit(f"Loading {event.what}…")
        elif kind == "TrainingStarted":
            self._set_state("training")
            self._first_step, self._started_at = event.start_step, time.monotonic()
            self.status.emit(f"Training {event.total_steps} steps on {event.images} images"
                             + (f", resumed at step {event.start_step}." if event.start_step else "."))
        elif kind == "StepDone":
            self.losses.append(float(event.loss))
            done = event.step - self._first_step
            elapsed = time.monotonic() - self._started_at
            left = elapsed / done * (event.total - event.step) if done > 0 else -1.0
            self.progress.emit(event.step, event.total, float(event.loss), left)
        elif kind == "SampleReady":
            for image in event.images:
                self.sample.emit(image)
        elif kind == "CheckpointSaved":
            self.status.emit(f"Checkpoint saved at step {event.step}.")
        elif kind == "TrainingCancelled":
            self.status.emit(f"Stopped at step {event.step}; Resume continues from there.")

    def _on_failed(self, message: str) -> None:
        self._set_state("failed")
        self.failed.emit(message)

    def _on_done(self, result) -> None:
        if result.cancelled:
            self._set_state("cancelled")
            return
        self.pack_dir = Path(result.pack_dir)
        self._set_state("finished")
        self.finished.emit(self.pack_dir.name)
