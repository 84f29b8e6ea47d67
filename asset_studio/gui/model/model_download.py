"""Getting a missing cut-out model from the window: rembg's model file downloaded on request (with
progress, checksum and cancel, engine/rembg_models), then the sprites the runs could not make are
made from the raw images already saved (service.make_sprites). Runs on a thread of its own."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal


class ModelDownload(QObject):
    progress = Signal(int, int)  # bytes done, bytes in all (0 when the server does not say)
    finished = Signal(str, list)  # the model file, the sprites made afterwards
    failed = Signal(str)  # one sentence
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, name: str, output_dir: Path, source=None) -> threading.Thread:
        """Download rembg's model NAME, then make the missing sprites in OUTPUT_DIR."""
        self._cancel.clear()
        self._thread = threading.Thread(target=self._run, args=(name, Path(output_dir), source),
                                        name="asset-studio-model-download", daemon=True)
        self._thread.start()
        return self._thread

    def cancel(self) -> None:
        self._cancel.set()

    def _run(self, name: str, output_dir: Path, source) -> None:
        from asset_studio.engine.rembg_models import DownloadCancelled, download_model
        from asset_studio.errors import UserError
        from asset_studio.service import make_sprites, readable_error

        try:
            path = download_model(name, progress=self.progress.emit, cancel=self._cancel.is_set, source=source)
            made = make_sprites(output_dir) if output_dir.is_dir() else []
        except DownloadCancelled:
            self.cancelled.emit()
        except UserError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - the window must stay usable
            self.failed.emit(readable_error(exc))
        else:
            self.finished.emit(str(path), [str(p) for p in made])
