"""Where images are made: this computer (the local diffusers engine) or ComfyUI servers, one or a
pool. The choice is kept in the settings; the worker builds its backend from it through
service.make_backend, the same function the CLI's --engine/--server use. A connection check asks
each server for its version and devices on a thread of its own, so the window never waits on it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

ENGINES = {"local": "This computer", "comfyui": "ComfyUI servers"}


@dataclass
class ServerReport:
    url: str
    ok: bool
    text: str  # "ComfyUI 0.3.64 · NVIDIA H200 (cuda)" or the sentence why not


def check_server(url: str, token: str | None = None) -> ServerReport:
    """What one server says about itself; never raises (a bad server is a report, not an error)."""
    from asset_studio.errors import UserError
    from asset_studio.remote.client import ComfyClient, ServerError

    try:
        info = ComfyClient(url, token=token, timeout=10.0).info(refresh=True)
    except (ServerError, UserError, OSError) as exc:
        return ServerReport(url, False, str(exc))
    return ServerReport(url, True, f"ComfyUI {info.version} · {', '.join(info.devices) or 'no device listed'}")


class EngineChoice(QObject):
    changed = Signal()  # the engine or the server list changed: the worker rebuilds its backend
    checked = Signal(object)  # a ServerReport, as each server answers

    def __init__(self, settings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.engine = settings.engine()
        self.servers = settings.servers()

    def set(self, engine: str, servers: list[str]) -> None:
        from asset_studio.errors import UserError

        servers = [s.strip().rstrip("/") for s in servers if s.strip()]
        if engine not in ENGINES:
            raise UserError(f"Unknown engine '{engine}'.")
        if engine == "comfyui" and not servers:
            raise UserError("Add at least one ComfyUI server address, e.g. http://192.168.1.20:8188.")
        if (engine, servers) == (self.engine, self.servers):
            return
        self.engine, self.servers = engine, servers
        self.settings.set_engine(engine)
        self.settings.set_servers(servers)
        self.changed.emit()

    def label(self) -> str:
        if self.engine == "local":
            return ENGINES["local"]
        return f"{len(self.servers)} ComfyUI server{'s' if len(self.servers) != 1 else ''}"

    def backend_factory(self, device: str | None):
        """The worker's backend for the current choice (called in the worker thread)."""
        if self.engine == "local":
            from asset_studio.gui.worker import default_backend_factory

            return default_backend_factory(device)
        from asset_studio.service import make_backend

        return make_backend("comfyui", self.servers)

    def check(self, servers: list[str] | None = None) -> threading.Thread:
        """Ask every server for itself, off the GUI thread; each answer arrives as `checked`."""
        def run():
            for url in servers if servers is not None else self.servers:
                self.checked.emit(check_server(url.strip().rstrip("/")))

        thread = threading.Thread(target=run, name="asset-studio-server-check", daemon=True)
        thread.start()
        return thread
