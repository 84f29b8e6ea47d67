"""Where file dialogs start: the folder the file is likely in, never the program's own folder."""

from __future__ import annotations

from pathlib import Path


def downloads_dir() -> Path:
    """Downloaded checkpoints, LoRAs and shared style packs land here on every desktop."""
    home = Path.home()
    downloads = home / "Downloads"
    return downloads if downloads.is_dir() else home


def start_in(folder, name: str = "") -> str:
    """FOLDER (when it exists, else the downloads folder) joined with a suggested file NAME."""
    base = Path(folder) if folder and Path(folder).is_dir() else downloads_dir()
    return str(base / name) if name else str(base)
