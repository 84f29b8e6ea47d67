"""The GUI's one doorway to the core's request API (issue #9: core/request.py and service.py).

Everything the gui/ package needs from that API is imported here, so the switch from the interim
adapter to the real modules touches this file only. Job fields are read through the helpers below
for the same reason (the typed job v2 nests them).
"""

from __future__ import annotations

try:
    from asset_studio.core.backend import Cancelled, Finished, ImageReady, Loading, Progress
    from asset_studio.core.request import AssetRequest, ControlRequest, Overrides, layout_size, prepare
    from asset_studio.service import Saved, run_job
    from asset_studio.service import export_sheet as _export_sheet
except ImportError:  # the restructured core has not landed yet
    from asset_studio.gui.model.interim_core import (  # noqa: F401
        AssetRequest, Cancelled, ControlRequest, Finished, ImageReady, Loading, Overrides, Progress, Saved,
        layout_size, prepare, run_job,
    )
    from asset_studio.gui.model.interim_core import export_sheet as _export_sheet


def local_backend(device: str | None):
    """The local diffusers engine behind the backend protocol (imports torch: call it in the worker thread)."""
    try:
        from asset_studio.engine.backend import LocalBackend
    except ImportError:
        from asset_studio.gui.model.interim_core import LocalBackend
    return LocalBackend(device)


__all__ = ["AssetRequest", "ControlRequest", "Overrides", "layout_size", "prepare", "run_job", "local_backend",
           "Loading", "Progress", "ImageReady", "Finished", "Cancelled", "Saved",
           "export_sheet_files", "prompt_text", "negative_text", "job_seed", "job_size", "job_step_total", "job_label"]


def prompt_text(job) -> str:
    return job.prompt.text if hasattr(job.prompt, "text") else job.prompt


def negative_text(job) -> str:
    return job.prompt.negative if hasattr(job.prompt, "negative") else job.negative_prompt


def job_seed(job) -> int:
    return job.sampling.seed if hasattr(job, "sampling") else job.seed


def job_size(job) -> tuple[int, int]:
    s = job.sampling if hasattr(job, "sampling") else job
    return s.width, s.height


def job_step_total(job) -> int:
    """Steps of every image together: the progress bar spans the batch."""
    s = job.sampling if hasattr(job, "sampling") else job
    return s.steps * len(job.image_seeds())


def job_label(job) -> str:
    subject = job.source.subject if hasattr(job, "source") else job.subject
    return subject or prompt_text(job)[:60]


def export_sheet_files(inputs, out_png, fmt, **options) -> list:
    """The ONE sheet export (the same as `asset-studio sheet`); returns every file written."""
    result = _export_sheet(inputs, out_png, fmt, **options)
    return list(getattr(result, "files", result))
