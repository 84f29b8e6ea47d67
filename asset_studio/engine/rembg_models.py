"""rembg model files on request: where rembg fetches each one, and a download with progress and cancel.

rembg keeps each model's URL and checksum inside its session class's ``download_models``, which
hands them to ``pooch.retrieve``; :func:`model_source` asks that very method (with the call to
pooch intercepted), so the addresses and checksums stay rembg's. :func:`download_model` then
lets pooch fetch the file into rembg's own model folder: pooch streams to a temporary file,
checks the md5/sha256 and only then moves it into place, so a cancelled or corrupt download
leaves nothing behind.

    python -m asset_studio.engine.rembg_models u2netp      # what the "model missing" message says
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from unittest import mock

from asset_studio.errors import UserError


@dataclass(frozen=True)
class ModelSource:
    """Where rembg downloads one model file from, and where it keeps it."""

    name: str
    url: str
    known_hash: str | None  # pooch's "md5:..." / "sha256:..." form; None when rembg's check is disabled
    folder: Path
    fname: str

    @property
    def path(self) -> Path:
        return self.folder / self.fname


class DownloadCancelled(Exception):
    """Raised inside the transfer when the caller's cancel() says so (not a network error)."""


class _Intercepted(Exception):
    pass


def model_source(name: str) -> ModelSource:
    """rembg's own URL, checksum and target folder for the model ``name`` (nothing is fetched)."""
    import pooch

    from asset_studio.engine.background import _SESSIONS_LOCK, _session_class

    cls = _session_class(name)
    seen: dict = {}

    def intercept(url, known_hash=None, fname=None, path=None, **_kw):
        seen.update(url=url, known_hash=known_hash, fname=fname, path=path)
        raise _Intercepted

    # The session lock keeps other threads from creating a session while pooch is intercepted.
    with _SESSIONS_LOCK, mock.patch.object(pooch, "retrieve", intercept), mock.patch.object(
        cls, "resolve_existing", classmethod(lambda *_a, **_k: None)
    ):
        try:
            cls.download_models()
        except _Intercepted:
            pass
    if not seen.get("url"):
        raise UserError(f"The installed rembg does not say where to download the model '{name}' from.")
    return ModelSource(
        name=name,
        url=seen["url"],
        known_hash=seen["known_hash"],
        folder=Path(seen["path"] or cls.model_dir()),
        fname=seen["fname"] or f"{name}.onnx",
    )


def download_command(name: str) -> str:
    """The one command that fetches the model ``name`` with this very Python."""
    return f"{sys.executable} -m asset_studio.engine.rembg_models {name}"


def missing_model_message(name: str) -> str:
    """One sentence for a missing model file: the command that fetches it, or where to copy it."""
    from asset_studio.engine.background import _session_class

    cls = _session_class(name)
    return (
        f"The background model file {name}.onnx is missing: download it with `{download_command(name)}` "
        f"(or copy it into {cls.model_dir()} or the folder named by U2NET_HOME)."
    )


def download_model(
    name: str,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    source: ModelSource | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch the model file into rembg's folder and return its path; an existing file is kept.

    ``progress(done_bytes, total_bytes)`` is called as data arrives (total is 0 when the server
    does not say); ``cancel()`` returning True stops the transfer with :class:`DownloadCancelled`
    and leaves no file. A checksum mismatch or a network failure is a UserError. ``source``
    overrides rembg's address (tests serve a file from 127.0.0.1).
    """
    import pooch
    import requests

    src = source or model_source(name)
    if src.path.is_file():
        return src.path

    class Bar:  # the progress-bar protocol pooch's HTTPDownloader drives
        total = 0

        def __init__(self) -> None:
            self.done = 0

        def update(self, n: int) -> None:
            if cancel is not None and cancel():
                raise DownloadCancelled(f"The download of {name} was cancelled.")
            self.done = min(self.done + n, self.total) if self.total else self.done + n
            if progress is not None:
                progress(self.done, self.total)

        def reset(self) -> None:
            self.done = 0

        def close(self) -> None:
            pass

    downloader = pooch.HTTPDownloader(progressbar=Bar(), chunk_size=1 << 16, timeout=timeout)
    try:
        if cancel is not None and cancel():
            raise DownloadCancelled(f"The download of {name} was cancelled.")
        pooch.retrieve(src.url, src.known_hash, fname=src.fname, path=str(src.folder), downloader=downloader)
    except DownloadCancelled:
        raise
    except ValueError as exc:  # pooch's checksum mismatch
        raise UserError(f"The downloaded {src.fname} does not match rembg's checksum, so it was discarded: {exc}") from None
    except (requests.RequestException, OSError) as exc:
        raise UserError(f"Could not download {src.fname} from {src.url}: {exc}.") from None
    return src.path


def main(argv: list[str] | None = None) -> int:
    from asset_studio.engine.background import MODELS

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in MODELS:
        print(f"usage: python -m asset_studio.engine.rembg_models {{{','.join(MODELS)}}}", file=sys.stderr)
        return 2

    def show(done: int, total: int) -> None:
        mb = done / 1e6
        print(f"\r{args[0]}: {mb:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""), end="", file=sys.stderr)

    try:
        path = download_model(args[0], progress=show)
    except UserError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 2
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
