"""`asset-studio style list | show ID | export ID --out FILE.stylepack | import FILE.stylepack [--replace]
| add-reference ID IMAGE [--scale F] [--mode full|style] [--ip-adapter ID] [--image-encoder ID]`."""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("style", help="list, show, export and import style packs",
                                   description="Manage style packs: the LoRAs, prompt wording and defaults of one look.")
    sub = parser.add_subparsers(dest="style_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="list the installed style packs")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one style pack")
    p.add_argument("style", metavar="ID_OR_PATH")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="write a style pack as one .stylepack file to share")
    p.add_argument("style", metavar="ID_OR_PATH")
    p.add_argument("--out", required=True, metavar="FILE.stylepack")
    p.add_argument("--force", action="store_true", help="replace FILE.stylepack even when it is not a style pack")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="install a .stylepack file (checked completely before anything is written)")
    p.add_argument("file", metavar="FILE.stylepack")
    p.add_argument("--replace", action="store_true",
                   help="replace an installed pack with the same id instead of keeping both")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("add-reference", help="add a character reference picture to a style pack (IP-Adapter)",
                       description="Copy IMAGE into the pack (references/, as a PNG of at most 1024 pixels per side) "
                                   "and list it in style.toml: every generate with the style then starts from it.")
    p.add_argument("style", metavar="ID_OR_PATH")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--scale", type=float, default=0.6, metavar="F", help="its strength, 0-2 (default 0.6)")
    p.add_argument("--mode", choices=("full", "style"), default="full",
                   help="full: the picture's content and style; style: its style only")
    p.add_argument("--ip-adapter", metavar="ID", help="the IP-Adapter the style's references want (catalog id)")
    p.add_argument("--image-encoder", metavar="ID", help="that adapter's image encoder (catalog id; default: the matching one)")
    p.set_defaults(func=cmd_add_reference)


def _where(pack) -> str:
    from asset_studio.core.stylepack import bundled_styles_dir

    folder = Path(pack.folder).resolve()
    return "bundled" if folder.is_relative_to(bundled_styles_dir().resolve()) else "user"


def cmd_list(args) -> int:
    from asset_studio.core.stylepack import list_styles

    def warn(folder, exc):
        print(f"asset-studio: warning: skipped {folder}: {exc}", file=sys.stderr)

    packs = list_styles(on_error=warn)
    if not packs:
        print("No style packs are installed.")
        return 0
    width = max(len(p.id) for p in packs)
    for pack in packs:
        loras = f"{len(pack.loras)} LoRA" + ("s" if len(pack.loras) != 1 else "") if pack.loras else "prompt-only"
        print(f"{pack.id:<{width}}  {pack.family_name:<6}  {loras:<11}  {_where(pack):<7}  {pack.name}")
    return 0


def cmd_show(args) -> int:
    from asset_studio.core.stylepack import find_style

    pack = find_style(args.style)
    print(f"{pack.name}  ({pack.id} {pack.version}, {_where(pack)})")
    print(f"  folder:      {pack.folder}")
    for key in ("author", "license"):
        if getattr(pack, key):
            print(f"  {key + ':':<12} {getattr(pack, key)}")
    print(f"  family:      {pack.family_name}")
    if pack.recommended_models:
        print(f"  models:      {', '.join(pack.recommended_models)}")
    print(f"  prompt:      {pack.prompt}")
    if pack.negative:
        print(f"  negative:    {pack.negative}")
    for name, spec in pack.fields.items():
        default = f" (default: {spec.default})" if spec.default is not None else " (required)"
        print(f"  field {name}:{default} {spec.description}")
    for lora in pack.loras:
        source = lora.file or f"{lora.repo}/{lora.filename} sha256:{lora.sha256[:12]}…"
        triggers = f", triggers: {', '.join(lora.trigger_words)}" if lora.trigger_words else ""
        print(f"  LoRA:        {source} at {lora.weight:g}{triggers}")
    if not pack.loras:
        print("  LoRA:        none (prompt-only)")
    d = pack.defaults
    settings = [f"{k}={v}" for k, v in vars(d).items() if v is not None]
    print(f"  defaults:    {', '.join(settings)}")
    if pack.postprocess.to_dict():
        print(f"  postprocess: {', '.join(f'{k}={v}' for k, v in pack.postprocess.to_dict().items())}")
    if pack.previews:
        print(f"  previews:    {', '.join(pack.previews)}")
    for ref in pack.references:
        print(f"  reference:   {ref.file} at {ref.scale:g} ({ref.mode})")
    if pack.ip_adapter:
        encoder = f", encoder {pack.image_encoder}" if pack.image_encoder else ""
        print(f"  IP-Adapter:  {pack.ip_adapter}{encoder}")
    if pack.description:
        print()
        print(pack.description.strip())
    return 0


def cmd_export(args) -> int:
    from asset_studio.core.packfile import export_stylepack

    out = export_stylepack(args.style, args.out, force=args.force)
    print(out)
    return 0


def cmd_import(args) -> int:
    from asset_studio.core.packfile import import_stylepack

    result = import_stylepack(args.file, replace=args.replace)
    if result.renamed_from:
        print(f"Imported '{result.pack.name}' as {result.pack.id}: a pack with the id {result.renamed_from} "
              f"is already installed and was kept (pass --replace to replace it).")
    elif result.replaced:
        print(f"Imported '{result.pack.name}' as {result.pack.id}, replacing the installed pack.")
    else:
        print(f"Imported '{result.pack.name}' as {result.pack.id}.")
    print(result.folder)
    return 0


def cmd_add_reference(args) -> int:
    from asset_studio.core.pack_references import add_reference
    from asset_studio.core.stylepack import find_style

    pack = add_reference(find_style(args.style), args.image, scale=args.scale, mode=args.mode,
                         ip_adapter=args.ip_adapter, image_encoder=args.image_encoder)
    ref = pack.references[-1]
    print(f"Added {ref.file} to {pack.id} at {ref.scale:g} ({ref.mode}); it has {len(pack.references)} reference(s).")
    if not pack.ip_adapter:
        print("The style names no IP-Adapter: pass --ip-adapter to generate, or set one here with --ip-adapter.")
    print(Path(pack.folder) / ref.file)
    return 0
