"""`asset-studio models`: list local models and the catalog, download a catalog model on request."""

from __future__ import annotations

import argparse
import sys
import threading


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list local models or download one from the catalog")
    parser.add_argument("--models", metavar="DIR", help="the local model folder (default: models/ beside the app)")
    parser.set_defaults(func=lambda args: _list(args))
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    p_list = sub.add_parser("list", help="local models (models folder and Hugging Face cache) and the catalog")
    p_list.set_defaults(func=_list)
    p_dl = sub.add_parser("download", help="download a catalog model into the Hugging Face cache")
    p_dl.add_argument("id", help="catalog id (see `asset-studio models list`) or repo id")
    p_dl.set_defaults(func=_download)
    p_add = sub.add_parser("add-folder", help="use the models of an AUTOMATIC1111, Forge, ComfyUI or InvokeAI "
                                              "install in place (its folder or ComfyUI's extra_model_paths.yaml)")
    p_add.add_argument("path")
    p_add.set_defaults(func=_add_folder)
    p_imp = sub.add_parser("import", help="copy a single-file .safetensors model into the models folder")
    p_imp.add_argument("file")
    p_imp.set_defaults(func=_import)


def _models_dir(args):
    from pathlib import Path

    from asset_studio.core.models import DEFAULT_MODELS_DIR

    return Path(args.models) if getattr(args, "models", None) else DEFAULT_MODELS_DIR


def _list(args: argparse.Namespace) -> int:
    from asset_studio.core.models import human_size, load_catalog, scan_all

    local = scan_all(_models_dir(args))
    print("Local models:")
    if not local:
        print("  (none; download one below or put a model in the models folder)")
    for m in local:
        print(f"  {m.name:<44} {m.kind:<11} {m.family_label:<8} {human_size(m.size_bytes):>9}  {m.source}")
    print("\nCatalog (asset-studio models download ID):")
    have = {m.ref for m in local}
    own = _models_dir(args) / "catalog.toml"
    for e in load_catalog(own if own.is_file() else None):
        mark = "*" if e.repo in have else " "
        print(f" {mark}{e.id:<26} {e.kind:<11} {e.size_hint:>8}  {e.name}")
    return 0


def _add_folder(args: argparse.Namespace) -> int:
    from pathlib import Path

    from asset_studio.core.model_folders import list_models, register_folder

    roots = register_folder(Path(args.path))
    found = list_models(roots)
    kinds = ", ".join(f"{sum(m.kind == k for m in found)} {k}s" for k in ("checkpoint", "lora", "vae", "controlnet"))
    print(f"Added {args.path} ({', '.join(sorted({r.tool for r in roots}))}): {kinds}; they are used in place.")
    return 0


def _download(args: argparse.Namespace) -> int:
    from asset_studio.core.models import Cancelled, download_entry, find_catalog_entry, human_size

    entry = find_catalog_entry(args.id)
    print(f"Downloading {entry.name} ({entry.repo}, about {entry.size_hint}) into the Hugging Face cache…")
    last = [-1]

    def show(done: int, total: int, name: str) -> None:
        pct = int(100 * done / total) if total else 0
        if pct != last[0]:
            last[0] = pct
            print(f"\r  {pct:3d}%  {human_size(done)} / {human_size(total)}  {name[-40:]:<40}", end="", flush=True)

    cancel = threading.Event()
    try:
        folder = download_entry(entry, on_progress=show, cancel=cancel)
    except (KeyboardInterrupt, Cancelled):
        cancel.set()
        print("\nDownload stopped; run the same command again to resume.", file=sys.stderr)
        return 130
    if entry.kind == "upscaler":
        print(f"\nDone: {folder}\nUse it as `asset-studio upscale --model {entry.id}`.")
    elif entry.kind == "layerdiffuse":
        print(f"\nDone: {folder}\nUse it as `asset-studio generate … --transparent --layerdiffuse {entry.id}`.")
    elif entry.kind == "motion_adapter":
        print(f"\nDone: {folder}\nUse it as `asset-studio animate … --motion-adapter {entry.id}`.")
    elif entry.kind == "motion_lora":
        print(f"\nDone: {folder}\nUse it as `asset-studio animate … --motion-lora {entry.id}:1.0`.")
    else:
        print(f"\nDone: {folder}\nUse it as the model `{entry.repo}`.")
    return 0


def _import(args: argparse.Namespace) -> int:
    from asset_studio.core.models import human_size, import_checkpoint

    model = import_checkpoint(args.file, _models_dir(args))
    print(f"Imported {model.name} ({model.kind}, {model.family_label}, {human_size(model.size_bytes)}) to {model.ref}")
    return 0
