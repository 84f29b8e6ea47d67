"""`<lora:NAME:WEIGHT>` in a prompt, as AUTOMATIC1111 / Forge / Fooocus users type it.

extract_lora_tags takes the tags out of the prompt text; find_lora_by_name finds NAME.safetensors in
the LoRA folders (the models folder's loras/, a style pack's own). Pure text and file lookups.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from asset_studio.errors import UserError

# <lora:name> or <lora:name:weight>; LyCORIS' old <lyco:…> the same. The name runs to the next ':' or '>'.
_TAG = re.compile(r"<(lora|lyco):([^:<>]+)((?::[^:<>]*)*)>", re.IGNORECASE)
_WEIGHT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)$")
MAX_SEARCH_FILES = 20000  # a LoRA folder bigger than this is not searched further (one lookup, not an index)


def extract_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """(the prompt without its LoRA tags, [(name, weight)]) in the order written."""
    found: list[tuple[str, float]] = []

    def take(match: re.Match) -> str:
        name, rest = match.group(2).strip(), match.group(3)
        args = rest.split(":")[1:] if rest else []
        if not name:
            raise UserError(f"The tag {match.group(0)} names no LoRA.")
        if len(args) > 1:
            raise UserError(
                f"The tag {match.group(0)} gives separate text-encoder and UNet weights; "
                f"the studio takes one weight per LoRA, as in <{match.group(1)}:{name}:0.8>."
            )
        weight = 1.0
        if args and args[0].strip():
            if not _WEIGHT.match(args[0].strip()):
                raise UserError(f"The weight in {match.group(0)} is not a number.")
            weight = float(args[0])
        found.append((name, weight))
        return " "

    clean = _TAG.sub(take, prompt)
    # tidy what the tags leave behind: doubled commas, spaces before commas, runs of spaces
    clean = re.sub(r"\s*,(\s*,)+", ",", clean)
    clean = re.sub(r"\s+,", ",", clean)
    clean = re.sub(r"[ \t]{2,}", " ", clean).strip(" ,\t")
    return clean, found


def find_lora_by_name(name: str, folders: list[Path]) -> Path:
    """NAME.safetensors in the first folder (or its sub-folders) that has it; one clear error otherwise."""
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or name.startswith(("/", "\\")):
        raise UserError(f"The LoRA name '{name}' must be a file name inside a LoRA folder, not a path.")
    wanted = rel.name.lower()
    if wanted.endswith(".safetensors"):
        wanted = wanted.removesuffix(".safetensors")
    others: list[Path] = []
    nearby: list[str] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        root = folder.resolve()
        matches = []
        for i, path in enumerate(sorted(folder.rglob("*"))):
            if i >= MAX_SEARCH_FILES:
                break
            if not path.is_file():
                continue
            stem, suffix = path.stem.lower(), path.suffix.lower()
            parent = path.parent.relative_to(folder)
            # a name with a sub-folder (style/pixel) must match that sub-folder too
            if stem == wanted and (len(rel.parts) == 1 or parent.as_posix().lower() == rel.parent.as_posix().lower()):
                if suffix == ".safetensors":
                    if not path.resolve().is_relative_to(root):  # a link out of the folder
                        continue
                    matches.append(path)
                elif suffix in (".ckpt", ".pt", ".pth", ".bin"):
                    others.append(path)
            elif suffix == ".safetensors":
                nearby.append(path.stem)
        exact = [m for m in matches if m.stem == rel.name.removesuffix(".safetensors")]
        if len(exact) == 1 or len(matches) == 1:
            return (exact or matches)[0]
        if matches:
            listed = ", ".join(str(m.relative_to(folder)) for m in matches[:3])
            raise UserError(f"Several LoRAs are named '{name}' in {folder} ({listed}); write the sub-folder too, "
                            f"as in <lora:{matches[0].relative_to(folder).with_suffix('').as_posix()}:1>.")
    if others:
        raise UserError(f"The LoRA '{name}' is {others[0].name}, a pickle file; only .safetensors LoRAs are loaded.")
    where = " or ".join(str(f) for f in folders) or "no LoRA folder"
    close = difflib.get_close_matches(rel.name, nearby, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UserError(f"No LoRA named '{name}' was found in {where}.{hint}")


def parse_lora_arg(text: str) -> tuple[str, float]:
    """`--lora PATH[:WEIGHT]` -> (PATH, WEIGHT); a drive letter (C:\\x.safetensors) is part of the path."""
    head, sep, tail = text.rpartition(":")
    if sep and _WEIGHT.match(tail.strip()) and head and not (len(head) == 1 and head.isalpha()):
        return head, float(tail)
    if not text.strip():
        raise UserError("--lora needs a file, as in --lora style.safetensors:0.8.")
    return text, 1.0
