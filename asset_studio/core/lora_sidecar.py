"""The small JSON file kept beside a downloaded model: trigger words, base model, where it came from.

It is AUTOMATIC1111's own per-LoRA file (`NAME.json` beside `NAME.safetensors`, with "activation
text" and "sd version"), so A1111 / Forge show the same trigger words, plus a "civitai" table
with the ids, base model and SHA256 the studio read from civitai.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

MAX_SIDECAR_BYTES = 1024 * 1024

# civitai's baseModel -> A1111's "sd version"
_SD_VERSION = (("SDXL", "SDXL"), ("Pony", "SDXL"), ("Illustrious", "SDXL"), ("SD 2", "SD2"), ("SD 1", "SD1"))


@dataclass
class Sidecar:
    trained_words: list[str] = field(default_factory=list)
    base_model: str = ""  # civitai's name, e.g. "SD 1.5", "SDXL 1.0"
    model_id: int | None = None
    version_id: int | None = None
    sha256: str = ""
    source_url: str = ""


def sidecar_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def sd_version(base_model: str) -> str:
    return next((v for prefix, v in _SD_VERSION if base_model.startswith(prefix)), "Unknown")


def write_sidecar(weights: Path, car: Sidecar) -> Path:
    path = sidecar_path(weights)
    data = {}
    if path.is_file() and path.stat().st_size <= MAX_SIDECAR_BYTES:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            data = {}
    data = data if isinstance(data, dict) else {}
    data["activation text"] = ", ".join(car.trained_words)
    data["sd version"] = sd_version(car.base_model)
    data["civitai"] = {"modelId": car.model_id, "modelVersionId": car.version_id, "baseModel": car.base_model,
                       "trainedWords": car.trained_words, "sha256": car.sha256, "url": car.source_url}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_sidecar(weights: Path) -> Sidecar | None:
    """The sidecar beside ``weights``, or None when there is none or it is unreadable (it is only a hint)."""
    path = sidecar_path(weights)
    try:
        if not path.is_file() or path.stat().st_size > MAX_SIDECAR_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    civ = data.get("civitai") if isinstance(data.get("civitai"), dict) else {}
    words = civ.get("trainedWords")
    if not isinstance(words, list):
        text = data.get("activation text")
        words = [w.strip() for w in text.split(",")] if isinstance(text, str) else []
    return Sidecar(
        trained_words=[w for w in words if isinstance(w, str) and w.strip()],
        base_model=civ.get("baseModel") if isinstance(civ.get("baseModel"), str) else "",
        model_id=civ.get("modelId") if isinstance(civ.get("modelId"), int) else None,
        version_id=civ.get("modelVersionId") if isinstance(civ.get("modelVersionId"), int) else None,
        sha256=civ.get("sha256") if isinstance(civ.get("sha256"), str) else "",
        source_url=civ.get("url") if isinstance(civ.get("url"), str) else "",
    )
