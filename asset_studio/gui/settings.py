"""What the studio remembers between runs: window layout, last choices, folders, device (QSettings)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "AssetStudio"
APPLICATION = "Asset Studio"
# Tests and portable installs point this at an .ini file so the user's settings are never touched.
SETTINGS_ENV = "ASSET_STUDIO_SETTINGS"


class Settings:
    """Typed access to QSettings; every value has a default, so a fresh install just works."""

    def __init__(self, path: str | os.PathLike | None = None):
        path = path or os.environ.get(SETTINGS_ENV)
        if path:
            self._q = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self._q = QSettings(ORGANIZATION, APPLICATION)

    @property
    def location(self) -> str:
        return self._q.fileName()

    def sync(self) -> None:
        self._q.sync()

    def _str(self, key: str, default: str = "") -> str:
        value = self._q.value(key, default)
        return str(value) if value is not None else default

    def _bytes(self, key: str) -> QByteArray:
        value = self._q.value(key)
        return value if isinstance(value, QByteArray) else QByteArray()

    # window layout
    def geometry(self) -> QByteArray:
        return self._bytes("window/geometry")

    def set_geometry(self, value: QByteArray) -> None:
        self._q.setValue("window/geometry", value)

    def window_state(self) -> QByteArray:
        return self._bytes("window/state")

    def set_window_state(self, value: QByteArray) -> None:
        self._q.setValue("window/state", value)

    def splitter(self, name: str) -> QByteArray:
        return self._bytes(f"window/splitter/{name}")

    def set_splitter(self, name: str, value: QByteArray) -> None:
        self._q.setValue(f"window/splitter/{name}", value)

    def current_tab(self) -> int:
        try:
            return int(self._q.value("window/tab", 0))
        except (TypeError, ValueError):
            return 0

    def set_current_tab(self, index: int) -> None:
        self._q.setValue("window/tab", int(index))

    # choices
    def last_style(self) -> str:
        return self._str("generate/style")

    def set_last_style(self, style_id: str) -> None:
        self._q.setValue("generate/style", style_id)

    def last_template(self) -> str:
        return self._str("generate/template")

    def set_last_template(self, name: str) -> None:
        self._q.setValue("generate/template", name)

    def last_model(self) -> str:
        return self._str("generate/model")

    def set_last_model(self, ref: str) -> None:
        self._q.setValue("generate/model", ref)

    def last_subject(self) -> str:
        return self._str("generate/subject")

    def set_last_subject(self, subject: str) -> None:
        self._q.setValue("generate/subject", subject)

    def last_ip_adapter(self) -> str:
        return self._str("generate/ip_adapter")

    def set_last_ip_adapter(self, ref: str) -> None:
        self._q.setValue("generate/ip_adapter", ref)

    def last_layerdiffuse(self) -> str:
        return self._str("generate/layerdiffuse")

    def set_last_layerdiffuse(self, ref: str) -> None:
        self._q.setValue("generate/layerdiffuse", ref)

    def last_image_encoder(self) -> str:
        return self._str("generate/image_encoder")

    def set_last_image_encoder(self, ref: str) -> None:
        self._q.setValue("generate/image_encoder", ref)

    def last_motion_adapter(self) -> str:
        return self._str("animate/motion_adapter")

    def set_last_motion_adapter(self, ref: str) -> None:
        self._q.setValue("animate/motion_adapter", ref)

    # folders and device
    def output_dir(self, default: Path) -> Path:
        value = self._str("paths/output")
        return Path(value) if value else Path(default)

    def set_output_dir(self, path: Path) -> None:
        self._q.setValue("paths/output", str(path))

    def models_dir(self, default: Path) -> Path:
        value = self._str("paths/models")
        return Path(value) if value else Path(default)

    def set_models_dir(self, path: Path) -> None:
        self._q.setValue("paths/models", str(path))

    def device(self) -> str:
        """'auto', 'cuda', 'mps' or 'cpu'."""
        return self._str("engine/device", "auto") or "auto"

    def set_device(self, device: str) -> None:
        self._q.setValue("engine/device", device)

    def engine(self) -> str:
        """'local' (this computer) or 'comfyui' (servers)."""
        return self._str("engine/kind", "local") or "local"

    def set_engine(self, engine: str) -> None:
        self._q.setValue("engine/kind", engine)

    def servers(self) -> list[str]:
        return [s for s in self._str("engine/servers", "").split("\n") if s.strip()]

    def set_servers(self, servers: list[str]) -> None:
        self._q.setValue("engine/servers", "\n".join(servers))
