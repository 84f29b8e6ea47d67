"""The `asset-studio` command: a thin dispatcher over asset_studio/commands/*.

Each sub-command lives in its own module with ``register(subparsers)`` that adds its parser
and sets ``func``. Heavy imports (torch, diffusers, Qt) happen inside the command functions,
so `asset-studio --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from asset_studio import __version__
from asset_studio.errors import UserError, describe_os_error, is_environment_error

# Order is the order shown in --help.
COMMAND_MODULES = [
    "gui",
    "generate",
    "animate",
    "video2video",
    "rerun",
    "detail",
    "style",
    "layout",
    "pose",
    "remove_bg",
    "upscale",
    "finish",
    "sheet",
    "tileset",
    "models",
    "lora",
    "train_style",
    "servers",
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ONLY (a module of COMMAND_MODULES) that command alone."""
    parser = argparse.ArgumentParser(
        prog="asset-studio",
        description="Generate consistent game assets from style packs and export sprite sheets.",
    )
    parser.add_argument("--version", action="version", version=f"asset-studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES if only is None else [only]:
        try:
            module = importlib.import_module(f"asset_studio.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"asset_studio.commands.{name}":
                raise
            continue  # a command still being built is simply absent
        module.register(sub)
    return parser


def parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """A parser holding just the command ARGV names: building all eighteen costs a tenth of a
    second, a twentieth of a `sheet` run. Anything else (no command, --help, a typo) gets all."""
    words = [w for w in argv if not w.startswith("-")]
    module = words[0].replace("-", "_") if words else None
    if module in COMMAND_MODULES:
        parser = build_parser(module)
        if words[0] in sub_names(parser):
            return parser
    return build_parser()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = parser_for(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if args.command is None and "gui" in sub_names(parser):
            args = parser.parse_args(["gui"])
        else:
            parser.print_help()
            return 0
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"asset-studio: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # The user's disk or folders refused (full, read-only, no permission, name too long, missing):
        # their environment, not a bug, so one sentence like any other bad input.
        if not is_environment_error(exc):
            raise
        print(f"asset-studio: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asset-studio: interrupted", file=sys.stderr)
        return 130


def sub_names(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        return set(action.choices)
    return set()


def console_main() -> int:
    """The `asset-studio` program: main(), then a process end that skips the last garbage
    collection, which the compiled sheet loops' numba objects make cost 0.2-0.3 s (a tenth of a
    `sheet` run). Every file is written and closed by then; objects left are freed by the OS."""
    import gc

    code = main()
    gc.freeze()
    return code
