"""Models the user already has: AUTOMATIC1111 / Forge / ComfyUI / InvokeAI folders, used in place.

Point the studio at such an install (or its models folder, or ComfyUI's extra_model_paths.yaml)
and it lists the checkpoints, LoRAs, VAEs and ControlNets there, with the family read from each
file's header, without copying anything. Pure file reading; no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from asset_studio.core.models import classify_safetensors
from asset_studio.core.safetensors_header import read_header_file
from asset_studio.errors import UserError

KINDS = ("checkpoint", "lora", "vae", "controlnet")
WEIGHT_SUFFIXES = (".safetensors",)  # pickles (.ckpt, .pt) are listed nowhere: the studio never loads them
MAX_FILES_PER_FOLDER = 20000
MAX_YAML_BYTES = 1024 * 1024

# models/<sub-folder> -> kind, per tool
_A1111 = {"Stable-diffusion": "checkpoint", "Lora": "lora", "LyCORIS": "lora", "VAE": "vae", "ControlNet": "controlnet"}
_COMFY = {"checkpoints": "checkpoint", "loras": "lora", "vae": "vae", "controlnet": "controlnet"}
# InvokeAI: models/<base>/<type>/…
_INVOKE_BASES = {"sd-1": "sd15", "sd-2": "sd2", "sdxl": "sdxl", "sdxl-refiner": "sdxl", "any": ""}
_INVOKE_TYPES = {"main": "checkpoint", "lora": "lora", "vae": "vae", "controlnet": "controlnet"}
# extra_model_paths.yaml keys -> kind
_YAML_KEYS = {"checkpoints": "checkpoint", "loras": "lora", "vae": "vae", "controlnet": "controlnet"}


@dataclass
class ModelRoot:
    """Folders of one install, by kind, and the tool that laid them out."""

    tool: str
    path: Path
    folders: dict[str, list[Path]] = field(default_factory=dict)
    family_hints: dict[Path, str] = field(default_factory=dict)  # InvokeAI sorts models by base model


@dataclass
class FoundModel:
    path: Path
    kind: str  # checkpoint, lora, vae, controlnet
    family: str  # sd15, sd2, sdxl or "" when the header does not tell
    tool: str
    size: int
    error: str = ""  # a file whose header is broken is listed with the reason, not skipped silently

    @property
    def name(self) -> str:
        return self.path.stem


def _add(root: ModelRoot, kind: str, folder: Path) -> None:
    if folder.is_dir():
        root.folders.setdefault(kind, [])
        if folder not in root.folders[kind]:
            root.folders[kind].append(folder)


def detect_roots(path: Path) -> list[ModelRoot]:
    """The model folders of the install at ``path`` (its root or its models folder), or of a ComfyUI yaml."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return read_extra_model_paths(path)
    if not path.is_dir():
        raise UserError(f"The model folder {path} does not exist.")
    roots: list[ModelRoot] = []
    yaml_file = path / "extra_model_paths.yaml"
    if yaml_file.is_file():
        roots.extend(read_extra_model_paths(yaml_file))
    models = path / "models" if (path / "models").is_dir() else path

    if (path / "invokeai.yaml").is_file() or any((models / base).is_dir() for base in _INVOKE_BASES if base != "any"):
        root = ModelRoot("InvokeAI", path)
        for base, family in _INVOKE_BASES.items():
            for type_name, kind in _INVOKE_TYPES.items():
                folder = models / base / type_name
                _add(root, kind, folder)
                if folder.is_dir() and family:
                    root.family_hints[folder] = family
        if root.folders:
            roots.append(root)
    if any((models / sub).is_dir() for sub in _A1111):
        tool = "Forge" if (path / "modules_forge").is_dir() else "AUTOMATIC1111"
        root = ModelRoot(tool, path)
        for sub, kind in _A1111.items():
            _add(root, kind, models / sub)
        _add(root, "controlnet", path / "extensions" / "sd-webui-controlnet" / "models")
        roots.append(root)
    if any((models / sub).is_dir() for sub in _COMFY):
        root = ModelRoot("ComfyUI", path)
        for sub, kind in _COMFY.items():
            _add(root, kind, models / sub)
        roots.append(root)
    if not roots:
        raise UserError(
            f"{path} is not an AUTOMATIC1111, Forge, ComfyUI or InvokeAI folder (no models/Stable-diffusion, "
            f"models/checkpoints, models/sd-1 … inside), nor a folder holding an extra_model_paths.yaml."
        )
    return roots


def read_extra_model_paths(yaml_path: Path) -> list[ModelRoot]:
    """ComfyUI's extra_model_paths.yaml: one section per install, base_path plus folders (one per line)."""
    import yaml

    yaml_path = Path(yaml_path)
    try:
        if yaml_path.stat().st_size > MAX_YAML_BYTES:
            raise UserError(f"{yaml_path.name} is over {MAX_YAML_BYTES // 1024} KB; it is not a model paths file.")
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{yaml_path} cannot be read ({exc.strerror or exc}).") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(f"{yaml_path.name} is not valid YAML{where}.") from None
    if not isinstance(data, dict):
        raise UserError(f"{yaml_path.name} is not a ComfyUI extra_model_paths.yaml: it holds no sections.")
    roots = []
    for section, entries in data.items():
        if not isinstance(entries, dict):
            continue
        base = entries.get("base_path", "")
        base = Path(os.path.expandvars(os.path.expanduser(str(base)))) if base else yaml_path.parent
        if not base.is_absolute():  # as ComfyUI: relative to the yaml file's folder
            base = Path(os.path.abspath(yaml_path.parent / base))
        root = ModelRoot(f"ComfyUI extra_model_paths ({section})", base)
        for key, kind in _YAML_KEYS.items():
            value = entries.get(key)
            if not isinstance(value, str):
                continue
            for line in value.splitlines():
                line = os.path.expandvars(os.path.expanduser(line.strip()))
                if line:
                    folder = Path(line)
                    _add(root, kind, Path(os.path.abspath(folder if folder.is_absolute() else base / folder)))
        if root.folders:
            roots.append(root)
    return roots


def list_models(roots: list[ModelRoot]) -> list[FoundModel]:
    """Every .safetensors model in the roots' folders, kind from its folder, family from its header."""
    found: list[FoundModel] = []
    seen: set[Path] = set()
    for root in roots:
        for kind, folders in root.folders.items():
            for folder in folders:
                hint = root.family_hints.get(folder, "")
                for i, path in enumerate(sorted(folder.rglob("*"))):
                    if i >= MAX_FILES_PER_FOLDER:
                        break
                    if path.suffix.lower() not in WEIGHT_SUFFIXES or not path.is_file():
                        continue
                    real = path.resolve()
                    if real in seen:  # the same file through two installs' paths
                        continue
                    seen.add(real)
                    family, error = hint, ""
                    try:
                        _, header_family = classify_safetensors(
                            {k: list(v.shape) for k, v in read_header_file(path).tensors.items()})
                        family = hint or header_family
                    except UserError as exc:
                        error = str(exc)
                    found.append(FoundModel(path, kind, family, root.tool, path.stat().st_size, error))
    return found


def folders_of_kind(roots: list[ModelRoot], kind: str) -> list[Path]:
    """Every folder of ``kind`` across the roots, in order (e.g. the LoRA folders <lora:NAME> searches)."""
    out: list[Path] = []
    for root in roots:
        out.extend(f for f in root.folders.get(kind, []) if f not in out)
    return out


# --- the folders the artist pointed the studio at ---------------------------------------------------

REGISTRY_NAME = "model-folders.json"  # in $ASSET_STUDIO_HOME: a list of install roots or yaml files


def registry_path() -> Path:
    from asset_studio.core.stylepack import app_home

    return app_home() / REGISTRY_NAME


def registered() -> list[Path]:
    """The installs the artist added (`asset-studio models add-folder`), in the order added."""
    import json

    try:
        data = json.loads(registry_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, RecursionError):
        raise UserError(f"{registry_path()} is not readable; delete it and add your model folders again.") from None
    return [Path(p) for p in data if isinstance(p, str)] if isinstance(data, list) else []


def register_folder(path: Path) -> list[ModelRoot]:
    """Remember PATH (an AUTOMATIC1111 / Forge / ComfyUI / InvokeAI install, its models folder, or a
    ComfyUI extra_model_paths.yaml) so its models are listed and used in place; returns what it holds."""
    import json

    from asset_studio.core.outputs import text_writer, write_file

    path = Path(path).expanduser().resolve()
    roots = detect_roots(path)  # refuses a path that holds no model folders, in one sentence
    if not roots:
        raise UserError(f"{path} holds no checkpoints, LoRAs, VAEs or ControlNets folders the studio knows.")
    paths = [p for p in registered() if p != path] + [path]
    registry_path().parent.mkdir(parents=True, exist_ok=True)
    write_file(registry_path(), text_writer(json.dumps([str(p) for p in paths], indent=2)))
    return roots


def registered_roots() -> list[ModelRoot]:
    """The model folders of every registered install that is still there."""
    roots: list[ModelRoot] = []
    for path in registered():
        try:
            roots += detect_roots(path)
        except UserError:
            continue  # an unplugged drive: its models are simply not listed
    return roots
