"""The Animate tab's playback: the frames of the running (or last) animation as they arrive, a
scrubber position, play/pause at the job's fps, and the folder that Export to sheet packs.

The worker's frame_saved signal feeds it (job id, animation index, frame index, frame count,
path, image): frames may arrive in any order (video to video hands them on batch by batch), so
the player holds one slot per frame and plays only the frames that are in. While nothing is
playing it follows the newest frame, so the artist sees the animation fill in.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

IDLE, RUNNING, DONE, CANCELLED, FAILED = "idle", "running", "done", "cancelled", "failed"


class AnimationPlayer(QObject):
    frames_changed = Signal()  # a frame arrived, or a new animation started
    current_changed = Signal(int)  # the frame shown
    playing_changed = Signal(bool)
    state_changed = Signal(str)
    preview_changed = Signal()  # a sampling step's preview, shown until the first frame is in

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.job_id: int | None = None
        self.job = None
        self.state = IDLE
        self.index = -1  # the animation of the job being shown (a job of count N makes N)
        self.images: list[QImage | None] = []
        self.paths: list[str | None] = []
        self.current = -1
        self.preview: QImage | None = None  # the latest step preview (the first frame's latents)
        self.fps = 8.0
        self.loop = True
        self.follow = True  # show each new frame as it comes (until the artist scrubs or plays)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)

    # --- the job -------------------------------------------------------------------------------

    def start(self, job_id: int, job) -> None:
        """A new animation job: empty slots for its frames, its speed."""
        self.pause()
        self.job_id, self.job, self.index = job_id, job, -1
        a = job.animation
        self.fps, self.loop = float(a.fps), bool(a.loop)
        self._reset(int(a.frames))
        self._set_state(RUNNING)

    def _reset(self, count: int) -> None:
        self.images, self.paths = [None] * count, [None] * count
        self.current, self.follow, self.preview = -1, True, None
        self.frames_changed.emit()
        self.current_changed.emit(-1)

    def on_frame(self, job_id: int, index: int, frame: int, count: int, path: str, image: QImage) -> None:
        if job_id != self.job_id:
            return
        if index != self.index:  # the next animation of a batch replaces the last one
            self.index = index
            self._reset(count)
        if not 0 <= frame < len(self.images):
            return
        self.images[frame], self.paths[frame] = image, path
        if self.follow and not self.playing:
            self.seek(frame)
        self.frames_changed.emit()

    def on_step(self, job_id: int, _step: int, _total: int, preview: QImage) -> None:
        """A sampling step of this job: its preview stands in until frames arrive."""
        if job_id == self.job_id and not preview.isNull() and not self.arrived():
            self.preview = preview
            self.preview_changed.emit()

    def finish(self, job_id: int, state: str = DONE) -> None:
        if job_id == self.job_id:
            self._set_state(state)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    # --- what there is ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.images)

    def arrived(self) -> list[int]:
        return [i for i, im in enumerate(self.images) if im is not None]

    def image(self, frame: int | None = None) -> QImage | None:
        """FRAME's picture (the current frame's by default); for a slot not filled yet, the
        nearest earlier frame that is in, so scrubbing ahead of the run shows the latest."""
        frame = self.current if frame is None else frame
        for i in range(min(frame, len(self.images) - 1), -1, -1):
            if self.images[i] is not None:
                return self.images[i]
        return None if self.arrived() else self.preview

    def folder(self) -> Path | None:
        """The folder Export to sheet packs: the sprites when the job finishes its frames (as the
        animate command prints), else the raw frames' folder."""
        from asset_studio.core.library import SPRITES_DIR

        path = next((p for p in self.paths if p), None)
        if path is None:
            return None
        folder = Path(path).parent
        finished = self.job is not None and self.job.finishing.active and (folder / SPRITES_DIR).is_dir()
        return folder / SPRITES_DIR if finished else folder

    def name(self) -> str:
        """The animation's name as `sheet` calls it: the frames' common prefix."""
        path = next((p for p in self.paths if p), None)
        return Path(path).stem.rsplit("-", 1)[0] if path else ""

    def status(self) -> str:
        n, have = self.count, len(self.arrived())
        if not n:
            return "No animation yet: describe it and press Animate."
        shown = f"frame {self.current + 1} / {n}" if self.current >= 0 else f"0 / {n}"
        if self.state == RUNNING and not have:
            return f"{shown} · sampling" + (": a preview of the first frame" if self.preview is not None else "")
        if self.state == RUNNING and have < n:
            return f"{shown} · {have} of {n} frames in"
        if self.state in (CANCELLED, FAILED) and have < n:
            return f"{shown} · {self.state}: {have} of {n} frames kept"
        return f"{shown} · {self.fps:g} fps" + (" · loop" if self.loop else "")

    # --- scrubbing and playing ----------------------------------------------------------------------

    def seek(self, frame: int) -> None:
        """Show FRAME (image() says which picture that is while frames are still coming)."""
        frame = max(-1, min(int(frame), self.count - 1))
        if frame != self.current:
            self.current = frame
            self.current_changed.emit(frame)

    def scrub(self, frame: int) -> None:
        """The artist moved the scrubber: stop following new frames."""
        self.follow = False
        self.seek(frame)

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def play(self) -> None:
        if not self.arrived() or self.playing:
            return
        self.follow = False
        self._timer.start(max(1, round(1000 / max(0.1, self.fps))))
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if self.playing:
            self._timer.stop()
            self.playing_changed.emit(False)

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def step(self) -> None:
        """The next frame that is in, round to the first (a running animation plays what it has)."""
        have = self.arrived()
        if not have:
            return
        later = [i for i in have if i > self.current]
        self.seek(later[0] if later else have[0])  # the preview repeats; the engine plays a non-loop once

    def _tick(self) -> None:
        self.step()
