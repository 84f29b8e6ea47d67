"""The backend protocol: what runs a GenerationJob, and the events it reports. No torch here.

Two backends implement it: the local engine (asset_studio/engine/backend.py, diffusers on this
machine) and, later, ComfyUI servers (asset_studio/remote). The service (asset_studio/service.py)
drives either one the same way:

    backend.check(job)                      # instant: refuses what it cannot do, by name
    for event in backend.run(job, should_cancel):
        ...                                 # Loading, Progress, ImageReady …, then Finished or Cancelled

A failure is raised (UserError with the sentence to show, or any other exception), not yielded:
the service turns it into a Failed event for the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from asset_studio.core.job import GenerationJob


@dataclass
class Queued:
    job_id: int


@dataclass
class Loading:
    """Something slow is being prepared (a model read from disk, adapters attached)."""

    what: str


@dataclass
class Notice:
    """Something the artist should know that does not stop the run (a prompt cut at 77 tokens)."""

    text: str
    missing_model: str = ""  # a cut-out model the run needed and did not find (the window offers to download it)


@dataclass
class Progress:
    step: int  # 1-based, within the current image
    total: int  # steps of one image
    image_index: int  # 0-based
    image_count: int
    preview: Any = None  # a small PIL.Image of the image so far, or None
    stage: str = ""  # an after-pass's part these steps belong to ("tile 3 of 12"); "" for the base pass
    made_by: str = ""  # who makes this image, as job.made_by says it ("comfyui http://gpu-2:8188"); "" = this machine


@dataclass
class ImageReady:
    """One finished image, decoded: the service saves it before anyone is told."""

    image: Any  # PIL.Image
    job: GenerationJob  # this image alone, with its own seed: what its PNG carries
    index: int
    seed: int
    frame: int | None = None  # an animation's frame: its index (job.source.frame), else None
    frame_count: int = 0  # the frames of that animation
    before: Any = None  # the picture before the after-passes changed it (saved as OUT/.before/NAME), or None


@dataclass
class Finished:
    pass


@dataclass
class Cancelled:
    pass


@dataclass
class Failed:
    message: str  # one sentence


Event = Queued | Loading | Notice | Progress | ImageReady | Finished | Cancelled | Failed
ShouldCancel = Callable[[], bool]


@runtime_checkable
class Backend(Protocol):
    name: str

    def capabilities(self) -> set[str]:
        """What this backend can run: job parts by name (txt2img, img2img, controlnet, lora, tiling…)."""

    def check(self, job: GenerationJob) -> None:
        """Raise UserError naming the first part of JOB this backend cannot run. Instant: no model loads."""

    def run(self, job: GenerationJob, should_cancel: ShouldCancel | None = None) -> Iterator[Event]:
        """Run JOB, yielding events; ends with Finished, or Cancelled when should_cancel() said so."""
