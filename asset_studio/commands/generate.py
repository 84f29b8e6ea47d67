"""`asset-studio generate PROMPT --model M`: write N PNGs (job embedded) and print their paths.

With --style or --template the positional is the SUBJECT and compose() builds the job from the
style pack and template; flags given on the command line override what they set.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from asset_studio.errors import UserError

DEFAULT_OUT = "output"
# CLI flag (argparse dest) → GenerationJob field, for the flags that map one to one.
JOB_FLAGS = {
    "negative": "negative_prompt",
    "count": "batch_count",
    "seed": "seed",
    "steps": "steps",
    "cfg": "cfg_scale",
    "sampler": "sampler",
    "denoise": "denoise",
    "vae": "vae",
    "clip_skip": "clip_skip",
    "model_config": "model_config",
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate images from a prompt (or a subject with --style/--template)",
        description="Generate images and write them as PNGs with their settings embedded.",
    )
    # Defaults are None so a flag the user typed is told apart from one left alone (compose overrides).
    p.add_argument("prompt", metavar="PROMPT", help="the prompt; the SUBJECT when --style or --template is given")
    p.add_argument("--model", help="diffusers folder, single-file .safetensors, or Hugging Face repo id")
    p.add_argument("--negative", metavar="TEXT", help="negative prompt")
    p.add_argument("--count", type=int, metavar="N", help="number of images (default 1)")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the first image; image i uses S+i (default random)")
    p.add_argument("--steps", type=int, metavar="N", help="sampling steps (default 25)")
    p.add_argument("--cfg", type=float, metavar="F", help="CFG scale (default 7)")
    p.add_argument("--sampler", metavar="NAME", help='sampler, as in A1111: "Euler a" (default), "DPM++ 2M Karras" …')
    p.add_argument("--size", metavar="WxH", help="image size, multiples of 8 (default 512x512, SDXL 1024x1024)")
    p.add_argument("--init", metavar="IMAGE", help="init image for img2img")
    p.add_argument("--denoise", type=float, metavar="F", help="img2img denoising strength, 0-1 (default 0.75)")
    p.add_argument("--out", metavar="DIR", help=f"output folder (default ./{DEFAULT_OUT})")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    p.add_argument("--model-config", metavar="DIR", help="diffusers config folder for a single-file model")
    p.add_argument("--vae", metavar="PATH", help="VAE to use instead of the model's own")
    p.add_argument("--clip-skip", type=int, metavar="N", help="CLIP layers to skip, as in A1111 (default 1)")
    p.add_argument("--download", action="store_true", help="allow downloading a repo id from the Hugging Face Hub")
    p.add_argument("--style", metavar="ID_OR_PATH", help="style pack to compose the prompt with")
    p.add_argument("--template", metavar="NAME", help="asset template to compose the prompt with")
    p.add_argument("--field", action="append", default=[], metavar="KEY=VALUE", help="template field (repeatable)")
    p.add_argument("--layout", metavar="LAYOUT.json", help="layout that ControlNet follows")
    p.add_argument("--controlnet", action="append", default=[], metavar="PATH_OR_ID", help="ControlNet (repeatable)")
    p.add_argument(
        "--control", action="append", default=[], metavar="TYPE",
        help="control type of each --controlnet, in order (default lineart)",
    )
    p.add_argument(
        "--control-scale", action="append", default=[], type=float, metavar="F",
        help="strength of each --controlnet, in order (default 1)",
    )
    post = p.add_argument_group("post-processing (saved in OUT/sprites/ beside the raw image)")
    post.add_argument("--remove-bg", action="store_true", help="cut the subject out of its background")
    post.add_argument("--pixel-grid", type=int, metavar="N", help="snap to a pixel grid N logical pixels across")
    post.add_argument("--palette", type=int, metavar="N", help="reduce to N colours")
    post.add_argument("--crisp-text", action="store_true", help="draw the layout's exact text over the result")
    post.add_argument(
        "--no-postprocess", action="store_true", help="keep only the raw image, whatever the style pack asks for"
    )
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("×", "x").split("x")
    try:
        if len(parts) == 1:
            width = height = int(parts[0])
        elif len(parts) == 2:
            width, height = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise UserError(f"The size '{text}' is not WIDTHxHEIGHT, e.g. 512x512.") from None
    for side in (width, height):
        if side <= 0 or side % 8:
            raise UserError(f"The size {width}x{height} is not allowed; width and height must be multiples of 8.")
    return width, height


def explicit_overrides(args: argparse.Namespace) -> dict:
    """The GenerationJob fields the user set on the command line."""
    out = {field: getattr(args, flag) for flag, field in JOB_FLAGS.items() if getattr(args, flag) is not None}
    if args.size is not None:
        out["width"], out["height"] = parse_size(args.size)
    if args.init is not None:
        out["init_image"] = str(Path(args.init).expanduser().resolve())
    if args.model_config is not None:
        out["model_config"] = str(Path(args.model_config).expanduser().resolve())
    return out


def parse_fields(items: list[str]) -> dict[str, str]:
    fields = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--field takes KEY=VALUE, not '{item}'.")
        fields[key.strip()] = value
    return fields


def build_job(args: argparse.Namespace):
    """The GenerationJob the flags describe (composed from a style/template when one is given)."""
    from asset_studio.core.job import GenerationJob
    from asset_studio.engine.samplers import canonical_name

    overrides = explicit_overrides(args)
    if args.style or args.template:
        from asset_studio.core.compose import AssetRequest, compose

        request = AssetRequest(
            subject=args.prompt, style=args.style, template=args.template, fields=parse_fields(args.field),
            model=args.model or None, overrides=overrides, layout=args.layout,
        )
        job = compose(request)
        job.model = _model_ref(job.model)
        job.sampler = canonical_name(job.sampler)
        return job
    if args.field:
        raise UserError("--field needs --template (fields fill a template's prompt).")
    if not args.model:
        raise UserError("--model is required unless a style pack recommends one.")
    job = GenerationJob(model=_model_ref(args.model), prompt=args.prompt, **overrides)
    # Checking the model's files is cheap (a header or model_index.json) and catches a wrong path,
    # a corrupt file or a pickle before anything heavy loads.
    if _family(job.model, args.download) == "sdxl" and "width" not in overrides:
        job.width = job.height = 1024
    from asset_studio.engine.generate import validate_job

    validate_job(job)
    job.sampler = canonical_name(job.sampler)  # "euler_a" is recorded as "Euler a", as readers expect
    if args.seed is None:
        job.seed = random.randrange(2**32)  # announced by run() once every check has passed
    return job


def _model_ref(model: str) -> str:
    """Local paths become absolute, so the embedded job re-runs from any folder; repo ids stay."""
    path = Path(model).expanduser()
    return str(path.resolve()) if model and path.exists() else model


def _family(model: str, download: bool) -> str:
    from asset_studio.engine.loader import detect_family, resolve_model

    return detect_family(resolve_model(model, download=download))


def add_controlnets(job, args: argparse.Namespace, out_dir: Path) -> None:
    """Render the layout once per ControlNet, save the control images beside the outputs, add the units."""
    if not args.controlnet:
        if args.control or args.control_scale:
            raise UserError("--control and --control-scale go with --controlnet.")
        return
    if not args.layout:
        raise UserError("--controlnet needs --layout: the control image is drawn from the layout.")
    n = len(args.controlnet)
    if len(args.control) > n or len(args.control_scale) > n:
        raise UserError("There are more --control / --control-scale values than --controlnet models.")
    from asset_studio.core.control_image import render_control
    from asset_studio.core.job import ControlUnit
    from asset_studio.core.layout import load_layout
    from asset_studio.core.library import save_control_image

    layout = load_layout(args.layout)
    for i, model in enumerate(args.controlnet):
        control_type = args.control[i] if i < len(args.control) else "lineart"
        scale = args.control_scale[i] if i < len(args.control_scale) else 1.0
        image = render_control(layout, control_type, size=(job.width, job.height))
        path = save_control_image(image, out_dir, control_type)
        job.controlnets.append(ControlUnit(model=model, image=str(path), control_type=control_type, scale=scale))




def run_job(job, out_dir: Path, device: str | None, download: bool) -> list[Path]:
    """Run a job, saving and printing each image as soon as it exists."""
    from asset_studio.core.library import save_image
    from asset_studio.engine.generate import Engine, validate_job
    from asset_studio.engine.postprocess import save_sprite

    validate_job(job)  # before torch loads: bad input fails in a blink
    engine = Engine(device=device)
    paths: list[Path] = []
    total = len(job.image_seeds())
    show_progress = sys.stderr.isatty()

    def on_image(result) -> None:
        path = save_image(result.image, result.job, out_dir, seed=result.seed)
        paths.append(path)
        if show_progress:
            print("\r\033[K", end="", file=sys.stderr)
        print(path, flush=True)
        sprite = save_sprite(path, result.image, result.job, result.seed)
        if sprite is not None:
            print(f"sprite: {sprite}", file=sys.stderr, flush=True)

    def on_step(info) -> None:
        print(f"\rimage {info.image_index + 1}/{total}  step {info.step}/{info.total}", end="", file=sys.stderr)

    engine.run(job, on_step=on_step if show_progress else None, on_image=on_image, preview=False, download=download)
    return paths


def add_postprocess(job, args: argparse.Namespace) -> None:
    """Explicit post-processing flags win over what the style pack and template ask for."""
    if args.no_postprocess:
        if args.remove_bg or args.pixel_grid or args.palette or args.crisp_text:
            raise UserError("--no-postprocess cannot be combined with other post-processing flags.")
        job.postprocess = {}
        return
    if args.remove_bg:
        job.postprocess["remove_background"] = True
    if args.pixel_grid is not None:
        job.postprocess["pixel_grid"] = args.pixel_grid
    if args.palette is not None:
        job.postprocess["palette_size"] = args.palette
    if args.crisp_text:
        if not args.layout:
            raise UserError("--crisp-text needs --layout: the text is drawn from the layout.")
        job.postprocess["crisp_text"] = str(Path(args.layout).expanduser().resolve())
    from asset_studio.engine.postprocess import PostProcessSpec, check_ready

    check_ready(PostProcessSpec.from_job(job))  # bad values or a missing model fail now, before generation


def run(args: argparse.Namespace) -> int:
    job = build_job(args)
    add_postprocess(job, args)
    out_dir = Path(args.out or DEFAULT_OUT)
    add_controlnets(job, args, out_dir)
    if args.seed is None and not (args.style or args.template):
        print(f"seed: {job.seed}", file=sys.stderr)
    run_job(job, out_dir, args.device, args.download)
    return 0
