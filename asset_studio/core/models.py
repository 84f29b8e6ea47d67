"""The models a user has: local folders and files, the Hugging Face cache, and the download catalog.

Everything here reads files only (JSON configs and safetensors headers), so listing models never
loads torch. Downloads go through huggingface_hub, imported lazily, and only when asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from asset_studio.core import families
from asset_studio.core.model_files import PICKLE_SUFFIXES, pickle_refusal
from asset_studio.core.safetensors_header import read_header_file
from asset_studio.errors import UserError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS_DIR = REPO_ROOT / "models"
CATALOG_NAME = "catalog.toml"
MAX_CHECKPOINT_BYTES = 32 * 1024**3



class Cancelled(Exception):
    """The user cancelled a download."""


@dataclass
class LocalModel:
    """One model found on this computer."""

    name: str
    ref: str  # what a GenerationJob's `model` (or a ControlNet/LoRA path) takes: a path or a repo id
    kind: str  # checkpoint, controlnet, lora, vae, motion_adapter, incomplete (a pipeline folder without its UNet), unknown
    family: str  # sd15, sd2, sdxl or "" when unknown
    size_bytes: int
    source: str  # "models folder" or "Hugging Face cache"

    @property
    def family_label(self) -> str:
        return families.label(self.family)


@dataclass
class CatalogEntry:
    """A model the manager can download on request (models/catalog.toml)."""

    id: str
    name: str
    repo: str
    kind: str
    family: str
    size_hint: str = ""
    description: str = ""
    allow_patterns: list[str] = field(default_factory=list)
    license: str = ""
    sha256: dict[str, str] = field(default_factory=dict)  # file in the repo -> its checked sha256


# --- reading files ---------------------------------------------------------------------------


def read_safetensors_header(path: Path) -> dict:
    """Tensor names and shapes of a checked .safetensors file (core/safetensors_header); no tensor is read."""
    return {k: list(v.shape) for k, v in read_header_file(Path(path)).tensors.items()}


def classify_safetensors(shapes) -> tuple[str, str]:
    """(kind, family) of a single-file model: tensor names (and shapes when known) → core/families."""
    if not isinstance(shapes, dict):
        shapes = {k: [] for k in shapes}
    return families.classify_file(shapes)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def classify_folder(folder: Path) -> tuple[str, str] | None:
    """(kind, family) of a diffusers folder, or None when the folder holds no model."""
    index = folder / "model_index.json"
    if index.is_file():
        # A pipeline folder whose UNet weights are missing (an interrupted copy) is not usable.
        if not (folder / "unet").is_dir():
            return "incomplete", families.family_of_pipeline_folder(folder) or ""
        return "checkpoint", families.family_of_pipeline_folder(folder) or ""
    config = folder / "config.json"
    if config.is_file():
        data = _read_json(config)
        cls = str(data.get("_class_name", ""))
        if cls == "ControlNetModel" or cls == "ControlNetUnionModel":
            return "controlnet", families.family_of_unet_config(data) or ""
        if cls == "MotionAdapter":
            return "motion_adapter", motion_adapter_family(data)
        if cls == "AutoencoderTiny":
            return "vae", ""
        if cls == "AutoencoderKL":
            return "vae", "sdxl" if data.get("force_upcast") is False else ""
    lora = next(iter(folder.glob("*lora*.safetensors")), None)
    if lora is not None:
        return classify_safetensors(read_safetensors_header(lora))
    return None


def motion_adapter_family(config: dict) -> str:
    """The family a motion adapter was trained on, from its config: AnimateDiff's SDXL adapters
    have three blocks (SDXL's UNet has three), its SD 1.5 adapters four."""
    return "sdxl" if len(config.get("block_out_channels", [])) == 3 else "sd15"


def folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                pass
    return total


# --- scanning --------------------------------------------------------------------------------


def scan_models_dir(models_dir: Path = DEFAULT_MODELS_DIR) -> list[LocalModel]:
    """Diffusers folders and single-file .safetensors in the models folder (one level deep, plus subfolders)."""
    models_dir = Path(models_dir)
    found: list[LocalModel] = []
    if not models_dir.is_dir():
        return found
    for entry in sorted(models_dir.iterdir(), key=lambda p: p.name.lower()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            kinds = classify_folder(entry)
            if kinds is None:
                # A folder of single files (e.g. models/loras/) is scanned one level down.
                found.extend(_scan_files(entry.glob("*.safetensors")))
                continue
            kind, family = kinds
            found.append(LocalModel(entry.name, str(entry), kind, family, folder_size(entry), "models folder"))
        elif entry.suffix.lower() == ".safetensors":
            found.extend(_scan_files([entry]))
    return found


def _scan_files(paths) -> list[LocalModel]:
    found = []
    for path in sorted(paths):
        try:
            kind, family = classify_safetensors(read_safetensors_header(path))
        except UserError:
            continue  # a broken file is not a model; the import path explains why when asked
        found.append(LocalModel(path.stem, str(path), kind, family, path.stat().st_size, "models folder"))
    return found


def scan_hf_cache(cache_dir: Path | None = None) -> list[LocalModel]:
    """Model repos in the Hugging Face cache, classified from their newest snapshot."""
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return []
    try:
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, OSError):
        return []
    found = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        snap = Path(newest.snapshot_path)
        kinds = classify_folder(snap)
        if kinds is None:
            single = next(iter(snap.glob("*.safetensors")), None)
            kinds = classify_safetensors(read_safetensors_header(single)) if single else ("unknown", "")
        kind, family = kinds
        found.append(LocalModel(repo.repo_id, repo.repo_id, kind, family, repo.size_on_disk, "Hugging Face cache"))
    return found


def scan_all(models_dir: Path = DEFAULT_MODELS_DIR, cache_dir: Path | None = None) -> list[LocalModel]:
    return scan_models_dir(models_dir) + scan_hf_cache(cache_dir) + scan_registered_folders()


def scan_registered_folders() -> list[LocalModel]:
    """Models of the AUTOMATIC1111 / ComfyUI / InvokeAI installs the artist added, used in place."""
    from asset_studio.core.model_folders import list_models, registered_roots

    return [LocalModel(m.path.stem, str(m.path), m.kind, m.family, m.size, f"{m.tool} folder")
            for m in list_models(registered_roots()) if not m.error]


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


# --- importing a single-file checkpoint ------------------------------------------------------


def import_checkpoint(source: Path, models_dir: Path = DEFAULT_MODELS_DIR) -> LocalModel:
    """Copy a single-file .safetensors model into the models folder, after checking it is one."""
    source = Path(source)
    if source.suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(pickle_refusal(source))
    if source.suffix.lower() != ".safetensors":
        raise UserError(f"{source.name} is not a .safetensors file.")
    if not source.is_file():
        raise UserError(f"{source} does not exist.")
    size = source.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise UserError(f"{source.name} is larger than {human_size(MAX_CHECKPOINT_BYTES)}, which no SD model is.")
    kind, family = classify_safetensors(read_safetensors_header(source))
    if kind == "unknown":
        raise UserError(f"{source.name} holds no Stable Diffusion weights that Asset Studio recognises.")
    models_dir = Path(models_dir)
    subdir = {"lora": "loras", "controlnet": "controlnet", "vae": "vae"}.get(kind)
    target_dir = models_dir / subdir if subdir else models_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    if target.exists():
        raise UserError(f"{target} already exists; rename the file or remove the old one first.")
    partial = target.with_name(target.name + ".part")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)  # atomic: a half-copied file is never taken for a model
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"Could not copy {source.name} into {target_dir}: {exc.strerror or exc}.") from None
    return LocalModel(target.stem, str(target), kind, family, size, "models folder")


# --- the catalog and downloads ---------------------------------------------------------------


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    path = Path(path) if path else DEFAULT_MODELS_DIR / CATALOG_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"The model catalog {path} is missing.") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"The model catalog {path} is not valid TOML: {exc}.") from None
    entries = []
    known = {f for f in CatalogEntry.__dataclass_fields__}
    for raw in data.get("model", []):
        unknown = set(raw) - known
        if unknown or not {"id", "name", "repo", "kind", "family"} <= set(raw):
            raise UserError(f"The model catalog entry {raw.get('id', '?')!r} has missing or unknown fields.")
        entries.append(CatalogEntry(**raw))
    return entries


def find_catalog_entry(entry_id: str, path: Path | None = None) -> CatalogEntry:
    entries = load_catalog(path)
    for entry in entries:
        if entry.id == entry_id or entry.repo == entry_id:
            return entry
    ids = ", ".join(e.id for e in entries)
    raise UserError(f"No catalog model is called {entry_id!r}; choose one of: {ids}.")


def catalog_entry_of_kind(ref: str, kinds: tuple[str, ...], path: Path | None = None) -> CatalogEntry | None:
    """The catalog entry whose id is REF among KINDS, or None (REF is then a path or a repo id)."""
    return next((e for e in load_catalog(path) if e.kind in kinds and e.id == str(ref).strip()), None)


def cached_entry_files(entry: CatalogEntry) -> list[Path] | None:
    """The local files of a catalog entry whose allow_patterns name plain files, from the Hugging Face
    cache and offline; None while any of them is not downloaded (`asset-studio models download ID`)."""
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(entry.repo, name) for name in entry.allow_patterns]
    return [Path(f) for f in found] if found and all(isinstance(f, str) for f in found) else None


ProgressFn = Callable[[int, int, str], None]  # (bytes done, bytes total, current file)


class _ProgressBar:
    """A tqdm stand-in handed to huggingface_hub: reports bytes and stops the download on cancel."""

    def __init__(self, sink: "_DownloadProgress", *args, **kwargs):
        self._sink = sink

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        self._sink.add(int(n or 0))

    def __getattr__(self, name):  # set_description, refresh, close, update_transfer …
        return lambda *a, **k: None


class _DownloadProgress:
    def __init__(self, total: int, on_progress: ProgressFn | None, cancel: threading.Event | None):
        self.done = 0
        self.total = total
        self.file = ""
        self._on_progress = on_progress
        self._cancel = cancel

    def add(self, n: int) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled()
        self.done += n
        if self._on_progress:
            self._on_progress(self.done, self.total, self.file)

    def bar_class(self):
        sink = self

        class Bar(_ProgressBar):
            def __init__(self, *args, **kwargs):
                super().__init__(sink, *args, **kwargs)

        return Bar


def download_entry(
    entry: CatalogEntry,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    cache_dir: Path | None = None,
) -> str:
    """Download a catalog model into the Hugging Face cache; returns its local snapshot folder.

    Files already in the cache are skipped, so a cancelled or broken download resumes where it
    stopped (the file that was in flight starts over). Raises Cancelled or a UserError.
    """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.utils import filter_repo_objects

    try:
        info = HfApi().model_info(entry.repo, files_metadata=True)
        files = [s for s in info.siblings or [] if s.rfilename]
        wanted = set(filter_repo_objects([s.rfilename for s in files], allow_patterns=entry.allow_patterns or None))
        files = [s for s in files if s.rfilename in wanted]
        if not files:
            raise UserError(f"{entry.repo} has no files matching the catalog's patterns.")
        hub = {s.rfilename: getattr(getattr(s, "lfs", None), "sha256", None) for s in files}
        if any(name in hub and hub[name] and hub[name] != digest for name, digest in entry.sha256.items()):
            raise UserError(f"{entry.repo} no longer holds the file the catalog names (its sha256 differs); "
                            "nothing was downloaded.")
        progress = _DownloadProgress(sum(s.size or 0 for s in files), on_progress, cancel)
        folder = ""
        for sibling in files:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            progress.file = sibling.rfilename
            before = progress.done
            path = hf_hub_download(
                entry.repo, sibling.rfilename, revision=info.sha, cache_dir=cache_dir,
                tqdm_class=progress.bar_class(),
            )
            # A cached file reports no bytes; count it so the bar reaches 100 %.
            progress.done = before
            progress.add(sibling.size or 0)
            if sibling.rfilename in entry.sha256:
                check_sha256(Path(path), entry.sha256[sibling.rfilename], entry.name)
            folder = str(Path(path).parents[len(Path(sibling.rfilename).parts) - 1])
        return folder
    except (Cancelled, UserError):
        raise
    except Exception as exc:  # network, auth, disk: all become one sentence
        raise UserError(download_error_sentence(entry, exc)) from None


def check_sha256(path: Path, expected: str, name: str) -> None:
    """Refuse a downloaded file whose bytes are not the ones the catalog pinned."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    if digest.hexdigest() != expected.lower():
        raise UserError(f"Cannot use {name}: {path.name} does not have the sha256 the catalog expects "
                        f"(the repository changed or the download is damaged); delete it from the cache and retry.")


def download_error_sentence(entry: CatalogEntry, exc: BaseException) -> str:
    from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError

    if isinstance(exc, OfflineModeIsEnabled):
        return (f"Cannot download {entry.name}: Hugging Face downloads are switched off (HF_HUB_OFFLINE is set); "
                "unset it and try again.")
    if isinstance(exc, GatedRepoError):
        return (f"Cannot download {entry.name}: {entry.repo} requires accepting its licence on huggingface.co "
                "and logging in with `hf auth login`.")
    if isinstance(exc, RepositoryNotFoundError):
        return f"Cannot download {entry.name}: the repository {entry.repo} was not found on huggingface.co."
    if isinstance(exc, (ConnectionError, TimeoutError)) or "connect" in type(exc).__name__.lower():
        return f"Cannot download {entry.name}: huggingface.co cannot be reached; check the network connection."
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return f"Cannot download {entry.name}: the disk is full."
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"Cannot download {entry.name}: {text.rstrip('.')}."
