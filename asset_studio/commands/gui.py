"""`asset-studio gui` (and `asset-studio` alone): open the desktop studio."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("gui", help="open the desktop studio (the default with no command)")
    parser.add_argument("--output", metavar="DIR", help="the output library folder (remembered for next time)")
    parser.add_argument("--models", metavar="DIR", help="the local model folder (remembered for next time)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    try:
        from asset_studio.gui.app import run_app
    except ImportError as exc:
        from asset_studio.errors import UserError

        raise UserError(f"The desktop studio needs PySide6, which failed to load ({exc}).") from None
    output = Path(args.output).expanduser().resolve() if args.output else None
    models = Path(args.models).expanduser().resolve() if args.models else None
    return run_app(sys.argv[:1], output_dir=output, models_dir=models)
