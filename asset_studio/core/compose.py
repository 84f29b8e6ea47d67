"""The pieces prepare() (core/request.py) composes a job from: prompt, negative, fields, size,
seed, and the style's files (LoRAs, recommended model).

Prompt: the template wraps the subject ("{subject}, game icon, centered"), the style wraps that
("pixel art, {subject}, 16-bit"), and the LoRAs' trigger words lead. Field values are inserted
literally by asset_studio.core.placeholders — never through str.format.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from pathlib import Path

from asset_studio.core import families, placeholders
from asset_studio.core.model_files import hub_cached_file, hub_snapshots
from asset_studio.core.job import LoraRef, Reference
from asset_studio.core.stylepack import (
    FIELD_PATTERN, REPO_PATTERN, FieldSpec, StylePack, app_home, check_pack_path, find_style,
)
from asset_studio.core.templates import Template, find_template
from asset_studio.errors import UserError

MAX_FIELD_CHARS = 500


def compose_prompt(pack: StylePack | None, tpl: Template | None, subject: str, values: dict[str, str]) -> str:
    """The template wraps the subject, the style wraps that, the LoRAs' trigger words lead."""
    values = {**values, "subject": subject}
    text = placeholders.fill(tpl.prompt, values) if tpl else subject
    prompt = placeholders.fill(pack.prompt, {**values, "subject": text}) if pack else text
    triggers = [w for w in (pack.trigger_words if pack else []) if w.lower() not in prompt.lower()]
    return ", ".join(dict.fromkeys([*triggers, prompt]))


def compose_negative(pack: StylePack | None, tpl: Template | None, values: dict[str, str]) -> str:
    return ", ".join(placeholders.fill(x.negative, values) for x in (pack, tpl) if x is not None and x.negative)


def lora_refs(pack: StylePack, scale: float | None = None, preview: bool = False) -> list[LoraRef]:
    """The pack's LoRAs as job entries; SCALE multiplies their weights (the artist's style strength).
    A preview does not look for the files."""
    refs = []
    for i, lora in enumerate(pack.loras):
        weight = lora.weight if scale is None else round(lora.weight * scale, 3)
        path = (lora.file or lora.filename) if preview else resolve_lora(pack, i)
        refs.append(LoraRef(path=path, weight=weight, name=_lora_name(pack, i)))
    return refs


def pack_file(pack: StylePack, rel: str) -> str:
    """A file the pack ships, as an absolute path (the job re-runs from anywhere); REL when the pack
    was never loaded from a folder (a preview of an unsaved pack)."""
    return str((Path(pack.folder) / rel).resolve()) if pack.folder is not None else rel


def style_references(pack: StylePack) -> list[Reference]:
    """The pack's character references as job entries, in style.toml's order."""
    return [Reference(image=pack_file(pack, ref.file), scale=ref.scale, mode=ref.mode) for ref in pack.references]


def style_ip_adapter(pack: StylePack) -> tuple[str | None, str | None]:
    """(IP-Adapter, image encoder) the pack asks for: a file it ships, else a catalog id; None when unset."""
    adapter = pack.ip_adapter
    if adapter.lower().endswith(".safetensors"):
        adapter = pack_file(pack, adapter)
    return adapter or None, pack.image_encoder or None


# --- fields --------------------------------------------------------------------------------


def clean_text(value, what: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{what} must be text.")
    if len(value) > MAX_FIELD_CHARS:
        raise UserError(f"{what} is longer than {MAX_FIELD_CHARS} characters.")
    if any(ord(c) < 32 for c in value):
        raise UserError(f"{what} must be one line without control characters.")
    return value.strip()


def field_values(given: dict, pack: StylePack | None, tpl: Template | None) -> dict[str, str]:
    declared: dict[str, tuple[FieldSpec, str]] = {}
    for owner, label in ((tpl, "the {} template"), (pack, "the {} style")):
        if owner is not None:
            for name, spec in owner.fields.items():
                declared.setdefault(name, (spec, label.format(owner.id)))
    for key in given:
        if not isinstance(key, str) or not FIELD_PATTERN.fullmatch(key) or key not in declared:
            accepted = ", ".join(sorted(declared)) or "none"
            raise UserError(f"Unknown field '{str(key)[:40]}'; the fields this style and template accept: {accepted}.")
    values = {}
    for name, (spec, owner) in declared.items():
        value = given.get(name, spec.default)
        if value is None:
            raise UserError(f"The field '{name}' is required by {owner}; fill it in (on the command line, --field {name}=VALUE).")
        values[name] = clean_text(value, f"The field '{name}'")
    return values


# --- parameters ----------------------------------------------------------------------------


def size_for(pack: StylePack | None, tpl: Template | None) -> tuple[int, int]:
    """The style sets the resolution (pixel area), the template the aspect."""
    if pack is not None:
        base = families.base_size(pack.family)
        width, height = pack.defaults.width or base, pack.defaults.height or base
    else:
        width, height = (tpl.width, tpl.height) if tpl else (512, 512)
    if tpl is None or pack is None:
        return width, height
    ratio = tpl.aspect_ratio
    w = math.sqrt(width * height * ratio)
    return max(64, round(w / 8) * 8), max(64, round(w / ratio / 8) * 8)


def style_seed(pack: StylePack | None, subject: str) -> int:
    policy = pack.defaults.seed_policy if pack else "per-asset"
    base = pack.defaults.seed if pack else 0
    if policy == "fixed":
        return base
    if policy == "random":
        return secrets.randbelow(2**32)
    # per-asset: the same subject always gets the same seed, whatever the session or machine
    key = f"{base}\x00{' '.join(subject.casefold().split())}".encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")


# --- files ---------------------------------------------------------------------------------


def _lora_name(pack: StylePack, index: int) -> str:
    lora = pack.loras[index]
    return Path(lora.file or lora.filename).stem


def resolve_lora(pack: StylePack, index: int) -> str:
    """The absolute path of the pack's LoRA ``index``: inside the pack, or in the hub cache."""
    lora = pack.loras[index]
    if lora.file:
        if pack.folder is None:
            raise UserError(f"The style '{pack.id}' is not saved in a folder, so its LoRA {lora.file} cannot be found.")
        root = Path(pack.folder).resolve()
        target = (root / lora.file).resolve()
        if not target.is_relative_to(root):
            raise UserError(f"The style '{pack.id}' names a LoRA outside its folder ({lora.file}).")
        if not target.is_file():
            raise UserError(f"The style '{pack.id}' names the LoRA {lora.file}, which is missing from its folder.")
        return str(target)
    path = hub_cached_file(lora.repo, lora.filename)
    if path is None:
        raise UserError(
            f"The style '{pack.id}' uses the LoRA {lora.filename} from {lora.repo}, which is not downloaded; "
            "download it with the model manager."
        )
    if _sha256(path) != lora.sha256:
        raise UserError(f"The downloaded LoRA {lora.filename} from {lora.repo} does not match the sha256 the style '{pack.id}' pins.")
    return str(path)


_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def model_dirs() -> list[Path]:
    """Folders where a model named by file or folder name is looked up."""
    return [app_home() / "models", Path(__file__).resolve().parents[2] / "models"]


def resolve_model(pack: StylePack | None) -> str:
    """The first of the style's recommended models that is on this machine."""
    if pack is None:
        raise UserError("No model is chosen: pick one in the Model box (on the command line, --model PATH_OR_ID).")
    for entry in pack.recommended_models:
        path = Path(entry).expanduser()
        if path.is_absolute():
            candidates = [path]  # the user's own machine: the loader still takes safetensors only
        elif check_pack_path(entry) is not None:
            continue  # a relative name must stay inside the pack or the model folders (no '..')
        else:
            candidates = [d / path for d in model_dirs()]
            if pack.folder is not None:
                candidates.insert(0, Path(pack.folder) / path)
        for candidate in candidates:
            if candidate.exists():
                return str(candidate.resolve())
        if REPO_PATTERN.fullmatch(entry) and hub_snapshots(entry):
            return entry
    wanted = ", ".join(pack.recommended_models) or "none listed"
    raise UserError(
        f"None of the models the style '{pack.id}' recommends is installed ({wanted}); pass --model PATH_OR_ID."
    )
