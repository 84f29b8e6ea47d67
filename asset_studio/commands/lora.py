"""`asset-studio lora inspect FILE`: what a LoRA file is, read from its header (no model loaded)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_LONG_KEYS = ("ss_tag_frequency", "ss_dataset_dirs", "ss_datasets", "ss_bucket_info")


def register(subparsers) -> None:
    parser = subparsers.add_parser("lora", help="inspect LoRA files",
                                   description="Describe LoRA files as people share them (kohya, diffusers, LyCORIS) and fetch models from civitai.")
    sub = parser.add_subparsers(dest="lora_command", metavar="ACTION", required=True)
    p = sub.add_parser("inspect", help="layout, family, ranks, alphas, module counts, trigger words of a LoRA file")
    p.add_argument("file", metavar="FILE.safetensors")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("civitai", help="show a civitai model version; --download fetches it into the models folder",
                       description="civitai was not reachable where this was built; the code follows its "
                                   "documented REST API and is tested against a local server.")
    p.add_argument("ref", metavar="URL_ID_OR_AIR",
                   help="a model page URL, a version id, or an AIR (urn:air:sd1:lora:civitai:ID@VERSION)")
    p.add_argument("--download", action="store_true", help="download the model file (resumes a partial one)")
    p.add_argument("--models", metavar="DIR", help="the models folder (default: models/ beside the app)")
    p.add_argument("--api", default=None, help=argparse.SUPPRESS)  # another API base, for tests
    p.set_defaults(func=cmd_civitai)


def describe(path: Path) -> dict:
    """Everything `inspect` shows, as plain data."""
    from asset_studio.core.lora_file import parse_lora_file
    from asset_studio.core import families
    from asset_studio.engine.lora import lora_family  # header-only; imports no torch

    lora = parse_lora_file(Path(path))
    family, source = lora_family(lora.header), "layer sizes"
    if family is None:
        family, source = families.family_from_training_metadata(lora.header.metadata), "training metadata"
    alphas = sorted({round(a, 6) for a in (lora.alpha(m) for m in lora.modules) if a is not None})
    return {
        "file": str(path),
        "size_bytes": Path(path).stat().st_size,
        "layout": lora.layout,
        "family": family,
        "family_name": families.label(family) if family else "unknown",
        "family_from": source if family else None,
        "ranks": lora.ranks(),
        "alphas": alphas,
        "modules": lora.counts(),
        "trigger_words": lora.trigger_words(),
        "training": lora.training_metadata(),
    }


def cmd_inspect(args) -> int:
    from asset_studio.core.lora_file import COMPONENT_LABELS
    from asset_studio.core.models import human_size

    info = describe(Path(args.file))
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    rows = [
        ("File", f"{Path(info['file']).name} ({human_size(info['size_bytes'])})"),
        ("Layout", info["layout"]),
        ("Family", info["family_name"] + (f" (from its {info['family_from']})" if info["family_from"] else "")),
        ("Rank", ", ".join(map(str, info["ranks"])) or "full (no low-rank factors)"),
        ("Alpha", ", ".join(f"{a:g}" for a in info["alphas"]) or "none stored (scale 1)"),
        ("Modules", ", ".join(f"{COMPONENT_LABELS[c]} {n}" for c, n in info["modules"].items())),
        ("Trigger words", ", ".join(info["trigger_words"]) or "none given"),
    ]
    for label, value in rows:
        print(f"{label + ':':<15}{value}")
    if info["training"]:
        print("Training metadata:")
        for key, value in info["training"].items():
            if key in _LONG_KEYS or len(value) > 100:
                value = value[:97] + "…" if len(value) > 100 else value
            print(f"  {key} = {value}")
    return 0


def cmd_civitai(args) -> int:
    from asset_studio.core.civitai import API_BASE, CivitaiClient, parse_ref
    from asset_studio.core.models import DEFAULT_MODELS_DIR, human_size

    client = CivitaiClient(args.api or API_BASE)  # token: CIVITAI_API_TOKEN (the GUI passes its setting)
    version = client.version(parse_ref(args.ref))
    file = version.model_file()
    print(f"{version.model_name} — {version.name} ({version.model_type}, {version.base_model})")
    print(f"File:          {file.name} ({human_size(file.size_bytes)}), SHA256 {file.sha256 or 'not given'}")
    print(f"Trigger words: {', '.join(version.trained_words) or 'none given'}")
    if not args.download:
        return 0
    models = Path(args.models) if args.models else DEFAULT_MODELS_DIR

    def progress(done: int, total: int) -> None:
        if total:
            print(f"\r{done * 100 // total:3d}% of {human_size(total)}", end="", file=sys.stderr, flush=True)

    path = client.download(version, models, progress=progress)
    print(file=sys.stderr)
    print(f"Saved:         {path}")
    return 0
