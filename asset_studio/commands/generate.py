"""`asset-studio generate PROMPT --model M`: write N PNGs (job embedded) and print their paths.

With --style or --template the positional is the SUBJECT; the flags become an AssetRequest and
core/request.prepare() builds the job, exactly as the Create tab does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asset_studio.errors import UserError

DEFAULT_OUT = "output"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate images from a prompt (or a subject with --style/--template)",
        description="Generate images and write them as PNGs with their settings embedded.",
    )
    # Defaults are None so a flag the user typed is told apart from one left alone (compose overrides).
    p.add_argument("prompt", metavar="PROMPT", help="the prompt; the SUBJECT when --style or --template is given")
    p.add_argument("--model", help="diffusers folder, single-file .safetensors, or Hugging Face repo id")
    p.add_argument("--negative", metavar="TEXT", help="negative prompt terms (added to the style's)")
    p.add_argument("--count", type=int, metavar="N", help="number of images (default 1)")
    p.add_argument("--batch", type=int, metavar="B",
                   help="throughput mode: B images per pipeline call, each saved as its batch decodes (default 1)")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the first image; image i uses S+i (default random)")
    p.add_argument("--subseed", type=int, metavar="N",
                   help="variation seed, as in A1111: image i mixes seed S+i's noise with N+i's (default random)")
    p.add_argument("--subseed-strength", type=float, metavar="F",
                   help="how far toward the variation seed's image, 0-1 (0.1-0.2: a close variation)")
    p.add_argument("--steps", type=int, metavar="N", help="sampling steps (default 25)")
    p.add_argument("--cfg", type=float, metavar="F", help="CFG scale (default 7)")
    p.add_argument("--sampler", metavar="NAME", help='sampler, as in A1111: "Euler a" (default), "DPM++ 2M Karras" …')
    p.add_argument("--size", metavar="WxH", help="image size, multiples of 8 (default 512x512, SDXL 1024x1024)")
    p.add_argument("--init", metavar="IMAGE", help="init image for img2img")
    p.add_argument("--denoise", type=float, metavar="F", help="img2img denoising strength, 0-1 (default 0.75)")
    p.add_argument("--out", metavar="DIR", help=f"output folder (default ./{DEFAULT_OUT})")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    add_engine_flags(p)
    p.add_argument("--model-config", metavar="DIR", help="diffusers config folder for a single-file model")
    p.add_argument("--vae", metavar="PATH", help="VAE to use instead of the model's own")
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:WEIGHT]",
                   help="a LoRA to apply (repeatable), besides the style's; <lora:NAME:WEIGHT> in the prompt works too")
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
    p.add_argument("--tile", choices=("x", "y", "both", "off"),
                   help="seamless tiling: the image repeats without seams along x, y or both")
    p.add_argument("--transparent", action="store_true",
                   help="RGBA straight from the model (LayerDiffuse, SD 1.5 and SDXL) instead of a cut-out")
    p.add_argument("--layerdiffuse", metavar="PATH_OR_ID",
                   help="LayerDiffuse weights for --transparent: a catalog id, a folder or the patch .safetensors "
                        "(default: the catalog's for the model)")
    chars = p.add_argument_group("characters: poses and references")
    chars.add_argument("--pose", metavar="POSE.json", help="OpenPose skeleton an OpenPose --controlnet follows")
    chars.add_argument("--pose-set", metavar="NAME_OR_DIR",
                       help="one image per pose (turnaround-4, turnaround-8, walk-8, run-8 or a folder of pose JSON), "
                            "named by pose in a folder of its own")
    chars.add_argument("--reference", action="append", default=[], metavar="IMAGE",
                       help="reference picture that steers the look (IP-Adapter; repeatable)")
    chars.add_argument("--reference-scale", action="append", default=[], type=float, metavar="F",
                       help="strength of each --reference, in order (default 0.6)")
    chars.add_argument("--reference-mode", choices=("full", "style"), default="full",
                       help="full: the reference's content and style; style: its style only")
    chars.add_argument("--ip-adapter", metavar="PATH_OR_ID", help="IP-Adapter .safetensors or catalog id")
    chars.add_argument("--image-encoder", metavar="DIR_OR_ID", help="its CLIP image encoder (default: the matching one)")
    chars.add_argument("--no-style-references", dest="style_references", action="store_false",
                       help="leave out the style pack's own reference pictures (--reference then replaces them; "
                            "without this flag they are added to the style's)")
    passes = p.add_argument_group("after-passes")
    passes.add_argument("--hires-scale", type=float, metavar="F", help="hires fix: enlarge by F (e.g. 2), then img2img")
    passes.add_argument("--hires-denoise", type=float, metavar="F", help="hires fix denoise, 0-1 (default 0.5)")
    passes.add_argument("--hires-upscaler", metavar="NAME_OR_PATH",
                        help="latent (default), latent-nearest, lanczos, nearest, or an upscale model .safetensors")
    passes.add_argument("--hires-steps", type=int, metavar="N", help="steps of the hires pass (default: as the base)")
    passes.add_argument("--refiner", metavar="PATH_OR_ID", help="second model for the end of the schedule (SDXL refiner)")
    passes.add_argument("--refiner-switch", type=float, metavar="F",
                        help="fraction of the steps the base model runs before the refiner (default 0.8)")
    add_detail_flags(p)
    tiled = p.add_argument_group("tiled upscale (Ultimate SD Upscale: enlarge, then redraw tile by tile)")
    tiled.add_argument("--upscale-tiled", type=float, metavar="F", help="enlarge the finished image by F (e.g. 2)")
    tiled.add_argument("--upscale-model", metavar="NAME_OR_PATH",
                       help="lanczos (default), nearest, or an upscale model .safetensors / catalog id")
    tiled.add_argument("--upscale-tile", type=int, metavar="N", help="tile side in pixels (default 512)")
    tiled.add_argument("--upscale-padding", type=int, metavar="N", help="context around each tile (default 32)")
    tiled.add_argument("--upscale-mask-blur", type=int, metavar="N", help="feather of each tile's edge (default 8)")
    tiled.add_argument("--upscale-denoise", type=float, metavar="F",
                       help="denoise of each tile, 0-1 (default 0.35; 0 enlarges only)")
    tiled.add_argument("--upscale-steps", type=int, metavar="N", help="steps each tile runs (default: as the base)")
    tiled.add_argument("--upscale-seams", choices=("none", "band", "half-tile"),
                       help="redraw the joins afterwards: a band along each, or tiles centred on them (default none)")
    tiled.add_argument("--upscale-seams-width", type=int, metavar="N", help="width of each band (default 64)")
    tiled.add_argument("--upscale-seams-denoise", type=float, metavar="F", help="denoise of the seams pass (default 0.35)")
    tiled.add_argument("--upscale-controlnet", metavar="PATH_OR_ID",
                       help="a ControlNet tile model that keeps each tile to its content")
    tiled.add_argument("--upscale-controlnet-scale", type=float, metavar="F", help="its strength (default 1)")
    post = p.add_argument_group("post-processing (saved in OUT/sprites/ beside the raw image)")
    post.add_argument("--remove-bg", action="store_true", help="cut the subject out of its background")
    post.add_argument("--pixel-grid", type=int, metavar="N", help="snap to a pixel grid N logical pixels across")
    post.add_argument("--palette", type=int, metavar="N", help="reduce to N colours")
    post.add_argument("--crisp-text", action="store_true", help="draw the layout's exact text over the result")
    post.add_argument(
        "--no-postprocess", action="store_true", help="keep only the raw image, whatever the style pack asks for"
    )
    p.set_defaults(func=run)


def add_detail_flags(p) -> None:
    """The detailer's flags: regions redrawn by inpainting after the image is made (ADetailer)."""
    g = p.add_argument_group("detailer (redraw regions: drawn boxes, or what a YOLO .onnx detector finds)")
    g.add_argument("--detail", action="append", default=[], metavar="REGION",
                   help="a region x,y,w,h in pixels of the finished image (repeatable), or the --detector's "
                        "classes to redraw (face, face,hand, 0, all)")
    g.add_argument("--detector", metavar="MODEL.onnx",
                   help="a YOLO detector exported to ONNX (none ships: the common face/hand weights are AGPL)")
    g.add_argument("--detail-denoise", type=float, metavar="F", help="how much each region changes, 0-1 (default 0.4)")
    g.add_argument("--detail-prompt", metavar="TEXT", help="prompt of the regions ([PROMPT] = the image's; default it)")
    g.add_argument("--detail-negative", metavar="TEXT", help="negative prompt of the regions (default the image's)")
    g.add_argument("--detail-confidence", type=float, metavar="F", help="lowest detector score kept (default 0.3)")
    g.add_argument("--detail-max", type=int, metavar="N", help="only the N largest regions (default all)")
    g.add_argument("--detail-dilate", type=int, metavar="PX", help="grow (or, negative, shrink) the mask (default 4)")
    g.add_argument("--detail-blur", type=int, metavar="PX", help="mask blur of the pasted region (default 4)")
    g.add_argument("--detail-padding", type=int, metavar="PX", help="context around the region (default 32)")
    g.add_argument("--detail-steps", type=int, metavar="N", help="steps run per region (default: base steps x denoise)")
    g.add_argument("--detail-inpaint-model", metavar="PATH_OR_ID",
                   help="an inpainting model of the same family (default: the model itself)")


def detail_passes(args: argparse.Namespace) -> list:
    """The detailer passes the flags describe: one for the drawn boxes, one for the detector's classes."""
    from asset_studio.core.detail import parse_region_spec
    from asset_studio.core.job import Box, DetailPass

    settings = {name: getattr(args, f"detail_{flag}") for name, flag in (
        ("denoise", "denoise"), ("prompt", "prompt"), ("negative", "negative"), ("confidence", "confidence"),
        ("max_regions", "max"), ("dilate", "dilate"), ("mask_blur", "blur"), ("padding", "padding"),
        ("steps", "steps"), ("inpaint_model", "inpaint_model"))}
    settings = {k: v for k, v in settings.items() if v is not None}
    if not args.detail and not args.detector:
        if settings:
            raise UserError("The --detail-… settings go with --detail (regions) or --detector.")
        return []
    specs = [parse_region_spec(text) for text in args.detail]
    boxes = [s for s in specs if isinstance(s, Box)]
    class_specs = [s for s in specs if not isinstance(s, Box)]
    if class_specs and not args.detector:
        raise UserError("--detail with class names needs --detector MODEL.onnx (a YOLO detector exported to ONNX); "
                        "or give regions as x,y,w,h.")
    passes = [DetailPass(boxes=boxes, **settings)] if boxes else []
    if args.detector:
        classes = [] if any(s == [] for s in class_specs) else [c for s in class_specs for c in s]
        passes.append(DetailPass(detector=args.detector, classes=classes, **settings))
    return passes


def add_engine_flags(p) -> None:
    """--engine and --server, shared with `rerun`."""
    from asset_studio.service import ENGINES

    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="where images are made: this machine (local, default) or ComfyUI servers (comfyui)")
    p.add_argument("--server", action="append", default=[], metavar="URL",
                   help="a ComfyUI server, http(s)://HOST:PORT (repeatable: the batch is shared among them); "
                        "a proxy's bearer token comes from ASSET_STUDIO_COMFYUI_TOKEN")


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
    if width <= 0 or height <= 0:
        raise UserError(f"The size {text} is not allowed; width and height must be positive, e.g. 512x512.")
    for side in (width, height):
        if side % 8:
            raise UserError(f"The size {width}x{height} is not allowed; width and height must be multiples of 8.")
    return width, height


def parse_fields(items: list[str]) -> dict[str, str]:
    fields = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--field takes KEY=VALUE, not '{item}'.")
        fields[key.strip()] = value
    return fields


def build_request(args: argparse.Namespace):
    """The AssetRequest the flags describe: what the Create tab builds from its form."""
    from asset_studio.core.request import AssetRequest, ControlRequest, Overrides

    width = height = None
    if args.size is not None:
        width, height = parse_size(args.size)
    finishing: dict = {}
    if args.remove_bg:
        finishing["remove_background"] = True
    if args.pixel_grid is not None:
        finishing["pixel_grid"] = args.pixel_grid
    if args.palette is not None:
        finishing["palette_size"] = args.palette
    if args.crisp_text:
        finishing["crisp_text"] = True
    hires = refiner = None
    if args.hires_scale is not None:
        from asset_studio.core.job import HiresFix

        hires = HiresFix(scale=args.hires_scale, upscaler=args.hires_upscaler or "latent",
                         denoise=0.5 if args.hires_denoise is None else args.hires_denoise,
                         steps=args.hires_steps or 0)
    elif any(v is not None for v in (args.hires_denoise, args.hires_upscaler, args.hires_steps)):
        raise UserError("--hires-denoise, --hires-upscaler and --hires-steps go with --hires-scale.")
    if args.refiner is not None:
        from asset_studio.core.job import Refiner

        refiner = Refiner(model=args.refiner, switch_at=0.8 if args.refiner_switch is None else args.refiner_switch)
    elif args.refiner_switch is not None:
        raise UserError("--refiner-switch goes with --refiner.")
    tiled = tiled_upscale_from_args(args)
    overrides = Overrides(
        negative=args.negative, width=width, height=height, steps=args.steps, cfg_scale=args.cfg,
        sampler=args.sampler, seed=args.seed, subseed=args.subseed, subseed_strength=args.subseed_strength,
        count=args.count, batch=args.batch, init_image=args.init,
        denoise=args.denoise,
        vae=args.vae, clip_skip=args.clip_skip, model_config=args.model_config, tiling=args.tile,
        hires=hires, refiner=refiner, detail=detail_passes(args) or None, tiled_upscale=tiled,
        finishing=finishing, no_finishing=args.no_postprocess,
    )
    n = len(args.controlnet)
    if (args.control or args.control_scale) and not n:
        raise UserError("--control and --control-scale go with --controlnet.")
    if len(args.control) > n or len(args.control_scale) > n:
        raise UserError("There are more --control / --control-scale values than --controlnet models.")
    controls = [ControlRequest(model=model, type=args.control[i] if i < len(args.control) else None,
                               scale=args.control_scale[i] if i < len(args.control_scale) else 1.0)
                for i, model in enumerate(args.controlnet)]
    if args.field and not (args.style or args.template):
        raise UserError("--field needs --template (fields fill a template's prompt).")
    if len(args.reference_scale) > len(args.reference):
        raise UserError("There are more --reference-scale values than --reference images.")
    from asset_studio.core.job import Reference

    references = [Reference(image=image, mode=args.reference_mode,
                            scale=args.reference_scale[i] if i < len(args.reference_scale) else 0.6)
                  for i, image in enumerate(args.reference)]
    if args.pose and args.pose_set:
        raise UserError("Give --pose or --pose-set, not both.")
    if not args.model and not args.style:
        raise UserError("--model is required unless a style pack recommends one.")
    from asset_studio.core.job import LoraRef
    from asset_studio.core.lora_tags import parse_lora_arg

    loras = [LoraRef(path=path, weight=weight) for path, weight in map(parse_lora_arg, args.lora)]
    return AssetRequest(subject=args.prompt, style=args.style, template=args.template, loras=loras,
                        fields=parse_fields(args.field), model=args.model or None, overrides=overrides,
                        layout=args.layout, controls=controls, pose=args.pose, references=references,
                        ip_adapter=args.ip_adapter, image_encoder=args.image_encoder,
                        style_references=args.style_references,
                        transparent=args.transparent, layerdiffuse=args.layerdiffuse)


TILED_FLAGS = {"upscale_model": "upscaler", "upscale_tile": "tile", "upscale_padding": "padding",
               "upscale_mask_blur": "mask_blur", "upscale_denoise": "denoise", "upscale_steps": "steps",
               "upscale_seams": "seams", "upscale_seams_width": "seams_width",
               "upscale_seams_denoise": "seams_denoise",
               "upscale_controlnet": "controlnet", "upscale_controlnet_scale": "controlnet_scale"}


def tiled_upscale_from_args(args):
    """The TiledUpscale the --upscale-* flags describe, or None."""
    given = {field: getattr(args, flag) for flag, field in TILED_FLAGS.items() if getattr(args, flag) is not None}
    if args.upscale_tiled is None:
        if given:
            raise UserError("The --upscale-* settings go with --upscale-tiled SCALE.")
        return None
    from asset_studio.core.job import TiledUpscale

    return TiledUpscale(scale=args.upscale_tiled, **given)


def run_job(job, out_dir: Path, device: str | None, download: bool, announce_seed: bool = False,
            name: str | None = None, engine: str = "local", servers: list[str] | None = None) -> list[Path]:
    """Run a job on the chosen backend, printing each image's path as soon as it is on disk."""
    from asset_studio.core.backend import Notice, Progress
    from asset_studio.service import Saved, check_job, make_backend, run_job as run_service

    backend = make_backend(engine, servers or [], device=device, download=download)
    check_job(job, backend, out_dir)  # before the first model load: bad input fails in a blink
    if announce_seed:
        print(f"seed: {job.sampling.seed}", file=sys.stderr)
    show_progress = sys.stderr.isatty()

    def on_event(event) -> None:
        if isinstance(event, Notice):
            print(f"asset-studio: note: {event.text}", file=sys.stderr, flush=True)
        elif isinstance(event, Progress) and show_progress:
            stage = f"  {event.stage}" if event.stage else ""
            print(f"\r\033[Kimage {event.image_index + 1}/{event.image_count}{stage}  step {event.step}/{event.total}",
                  end="", file=sys.stderr)
        elif isinstance(event, Saved):
            if show_progress:
                print("\r\033[K", end="", file=sys.stderr)
            print(event.raw, flush=True)
            if event.sprite is not None:
                print(f"sprite: {event.sprite}", file=sys.stderr, flush=True)

    return run_service(job, backend, out_dir, on_event=on_event, name=name).paths


def run(args: argparse.Namespace) -> int:
    from asset_studio.core.request import prepare

    out_dir = Path(args.out or DEFAULT_OUT)
    request = build_request(args)
    if args.pose_set:
        return run_pose_set(request, args, out_dir)
    job = prepare(request, out_dir, download=args.download)
    # A random seed is announced once every check has passed, so it can be locked next time.
    run_job(job, out_dir, args.device, args.download, announce_seed=args.seed is None and not args.style,
            engine=args.engine, servers=args.server)
    return 0


def run_pose_set(request, args: argparse.Namespace, out_dir: Path) -> int:
    """One image per pose of the set, same style, references, seed and prompt, named by pose
    (knight-front.png, knight-walk-3.png) in a folder of its own, so `sheet` makes the animations."""
    from asset_studio.core.library import slugify
    from asset_studio.core.pose_sets import fresh_folder, load_pose_set, output_name, pose_set_jobs, set_label

    slug = slugify(request.subject)
    jobs = pose_set_jobs(request, load_pose_set(args.pose_set), out_dir, download=args.download)
    folder = fresh_folder(out_dir / f"{slug}-{set_label(args.pose_set)}")
    for i, (pose, job) in enumerate(jobs):
        run_job(job, folder, args.device, args.download, name=output_name(slug, pose.name),
                announce_seed=i == 0 and args.seed is None and not args.style, engine=args.engine,
                servers=args.server)
    print(folder, file=sys.stderr)
    return 0
