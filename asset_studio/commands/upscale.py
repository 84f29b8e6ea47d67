"""`asset-studio upscale`: enlarge images with an upscale model (ESRGAN, SwinIR, HAT…) or nearest.

An input PNG that Asset Studio made keeps its `parameters` and job chunks, so the gallery still
shows its prompt and seed; a `postprocessing` chunk, written as AUTOMATIC1111's Extras tab writes
it, says how the image was enlarged. The job itself re-makes the image before the upscale.
"""

from __future__ import annotations

from pathlib import Path

POSTPROCESSING_CHUNK = "postprocessing"  # AUTOMATIC1111's key for Extras-tab steps


def register(subparsers) -> None:
    from asset_studio.engine.upscale import DEFAULT_OVERLAP, DEFAULT_TILE  # numpy and Pillow only; torch stays lazy

    p = subparsers.add_parser(
        "upscale",
        help="enlarge images with an upscale model or nearest-neighbour (writes PNGs)",
        description="Enlarge images with an ESRGAN / Real-ESRGAN / SwinIR / HAT / DAT / Compact / SPAN model "
        "(.safetensors, read by spandrel) or, for pixel art, nearest-neighbour by a whole factor. Transparent "
        "sprites keep clean edges. Large images are processed in overlapping tiles.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT_DIR_OR_FILES")
    p.add_argument("--model", required=True, metavar="PATH|ID|nearest",
                   help="an upscale model .safetensors file, a downloaded catalog upscaler id, or 'nearest'")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the PNGs (same relative names)")
    p.add_argument("--scale", type=float, metavar="N",
                   help="enlargement factor (default: the model's own; Lanczos after the model when it differs)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, metavar="N", help="tile side in input pixels (0: no tiling)")
    p.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, metavar="N", help="tile overlap in input pixels")
    p.add_argument("--force", action="store_true", help="overwrite PNGs that already exist in --out")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    p.set_defaults(func=run)


def plan_targets(items: list[tuple[str, Path]], out: Path, force: bool) -> list[Path]:
    """Output path of every input, checked before any work: no two alike, no input overwritten,
    no existing file replaced without --force."""
    from asset_studio.errors import UserError

    targets: dict[Path, str] = {}
    for name, path in items:
        target = (out / name).with_suffix(".png")
        if target in targets:
            raise UserError(f"{name} and {targets[target]} would both be written to {target}: rename one.")
        if target.resolve() == path.resolve():
            raise UserError(f"Writing {target} would overwrite its input: choose another --out folder.")
        targets[target] = name
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]}{more} already exist; pass --force to overwrite or choose another --out folder.")
    return list(targets)


def postprocessing_text(previous: str, scale: float, upscaler: str) -> str:
    line = f"Postprocess upscale by: {scale:g}, Postprocess upscaler: {upscaler}"
    return f"{previous.rstrip()}\n{line}" if previous.strip() else line


def carried_metadata(path: Path, scale: float, upscaler: str):
    """The source PNG's generation chunks, plus the upscale as A1111 records an Extras step."""
    from PIL.PngImagePlugin import PngInfo

    from asset_studio.core.library import JOB_CHUNK, PARAMETERS_CHUNK, _text_chunks
    from asset_studio.errors import UserError

    try:
        chunks = _text_chunks(path) if path.suffix.lower() == ".png" else {}
    except UserError:
        chunks = {}
    info = PngInfo()
    for key in (PARAMETERS_CHUNK, JOB_CHUNK):
        if isinstance(chunks.get(key), str):
            info.add_text(key, chunks[key])
    info.add_text(POSTPROCESSING_CHUNK, postprocessing_text(str(chunks.get(POSTPROCESSING_CHUNK) or ""), scale, upscaler))
    return info


def save_png(image, target: Path, pnginfo) -> None:
    """Written to a temporary name and moved into place: a crash never leaves half a PNG."""
    import os

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        image.save(tmp, format="PNG", pnginfo=pnginfo)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def run(args) -> int:
    from asset_studio.core.sheet import collect_images, open_rgba
    from asset_studio.engine.upscale import UpscaleSettings, get_upscaler

    settings = UpscaleSettings(scale=args.scale, tile=args.tile, overlap=args.overlap)
    settings.check()
    items = collect_images(args.inputs)
    targets = plan_targets(items, args.out, args.force)
    upscaler = get_upscaler(args.model, device=args.device)
    factor = settings.scale or upscaler.scale
    for (name, path), target in zip(items, targets):
        image = open_rgba(path)
        if image.getchannel("A").getextrema() == (255, 255):
            image = image.convert("RGB")  # an opaque input stays an RGB PNG
        out = upscaler.upscale(image, settings)
        save_png(out, target, carried_metadata(path, factor, upscaler.name))
        print(f"{name}: {image.width}x{image.height} -> {out.width}x{out.height}")
    print(f"wrote {len(items)} image(s) to {args.out}")
    return 0
