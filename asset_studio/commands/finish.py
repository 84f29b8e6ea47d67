"""`asset-studio finish FOLDER`: make the sprites a run could not make then (its cut-out model was
not installed), from each raw image's embedded job."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finish", help="make the sprites of generated images that are still missing them",
        description="For every image in FOLDER whose job asks for a cut-out, pixel grid, palette or trim and "
                    "that has no sprite in FOLDER/sprites yet, make it now.",
    )
    p.add_argument("folder", type=Path, metavar="FOLDER")
    p.set_defaults(func=run)


def run(args) -> int:
    from asset_studio.service import make_sprites

    made = make_sprites(args.folder)
    for path in made:
        print(path)
    if not made:
        print(f"Every image in {args.folder} already has its sprite (or needs none).")
    return 0
