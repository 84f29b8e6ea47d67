"""The output library: finished images on disk, each carrying the job that made it.

Every PNG has two text chunks:
- `parameters`: AUTOMATIC1111's format, which civitai, sd-parsers and most image browsers read;
- `asset_studio_job`: the full GenerationJob as JSON (with the image's own seed), which
  `asset-studio rerun` and the gallery read back.

Images are written through core/outputs.py and linked into place under a free number, so a crash
leaves either the whole image or none, and an existing file is never overwritten.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from asset_studio import __version__
from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError

JOB_CHUNK = "asset_studio_job"
PARAMETERS_CHUNK = "parameters"
RUN_CHUNK = "asset_studio_run"  # which press of Generate made the image: the gallery groups by it
NAME_PATTERN = re.compile(r"^(\d{5,})-")
SPRITES_DIR = "sprites"  # finished sprites, beside the raw images under the same names
BEFORE_DIR = ".before"  # the picture before the after-passes, same name; hidden from the gallery and sheets


def before_path(raw: Path) -> Path:
    """Where the picture before RAW's after-passes (hires fix, refiner, tiled upscale) is kept."""
    return Path(raw).parent / BEFORE_DIR / Path(raw).name


# --- metadata ---------------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{float(value):g}"


def _quote(value: str) -> str:
    # A1111 quotes a value that would break its "key: value, key: value" line.
    value = str(value)
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ',:\n"') else value


def _model_name(ref: str) -> str:
    base = re.split(r"[/\\]", str(ref).rstrip("/\\"))[-1]
    return base.rsplit(".", 1)[0] if base.lower().endswith((".safetensors", ".ckpt")) else base


def a1111_parameters(job: GenerationJob, seed: int | None = None) -> str:
    """The `parameters` text exactly as AUTOMATIC1111 writes it."""
    s = job.sampling
    seed = s.seed if seed is None else seed
    prompt = job.prompt.text
    # A1111 keeps LoRAs in the prompt as <lora:name:weight>; outside readers find them there.
    for lora in job.model.loras:
        tag = f"<lora:{lora.name or _model_name(lora.path)}:{_num(lora.weight)}>"
        if tag not in prompt:
            prompt = f"{prompt} {tag}".strip()
    lines = [prompt]
    if job.prompt.negative:
        lines.append(f"Negative prompt: {job.prompt.negative}")
    fields: list[tuple[str, str]] = [
        ("Steps", str(s.steps)),
        ("Sampler", s.sampler),
        ("CFG scale", _num(s.cfg_scale)),
        ("Seed", str(seed)),
        *([("Variation seed", str(s.subseed)), ("Variation seed strength", _num(s.subseed_strength))]
          if s.subseed is not None else []),
        ("Size", f"{s.width}x{s.height}"),
        ("Model", _model_name(job.model.checkpoint)),
    ]
    if job.model.vae:
        fields.append(("VAE", _model_name(job.model.vae)))
    hires = job.passes.hires
    if job.init is not None:
        fields.append(("Denoising strength", _num(job.init.denoise)))
    elif hires is not None:  # A1111 writes the hires pass's denoise under this name
        fields.append(("Denoising strength", _num(hires.denoise)))
    if hires is not None:
        fields.append(("Hires upscale", _num(hires.scale)))
        if hires.steps:
            fields.append(("Hires steps", str(hires.steps)))
        names = {"latent": "Latent", "latent-nearest": "Latent (nearest-exact)", "lanczos": "Lanczos", "nearest": "Nearest"}
        fields.append(("Hires upscaler", names.get(hires.upscaler) or _model_name(hires.upscaler)))
    if job.passes.refiner is not None:
        fields.append(("Refiner", _model_name(job.passes.refiner.model)))
        fields.append(("Refiner switch at", _num(job.passes.refiner.switch_at)))
    if job.passes.detail:
        from asset_studio.core.detail import adetailer_fields

        fields += adetailer_fields(job.passes.detail, _model_name)
    tiled = job.passes.tiled_upscale
    if tiled is not None:  # the keys Ultimate SD Upscale writes, then ours for what it leaves out
        if job.init is None and hires is None:
            fields.append(("Denoising strength", _num(tiled.denoise)))
        fields += [("Ultimate SD upscale upscaler", {"lanczos": "Lanczos", "nearest": "Nearest"}.get(
                        tiled.upscaler) or _model_name(tiled.upscaler)),
                   ("Ultimate SD upscale tile_width", str(tiled.tile)),
                   ("Ultimate SD upscale tile_height", str(tiled.tile)),
                   ("Ultimate SD upscale mask_blur", str(tiled.mask_blur)),
                   ("Ultimate SD upscale padding", str(tiled.padding)),
                   ("Ultimate SD upscale scale", _num(tiled.scale)),
                   ("Ultimate SD upscale denoise", _num(tiled.denoise))]
        if tiled.steps:
            fields.append(("Ultimate SD upscale steps", str(tiled.steps)))
        if tiled.seams != "none":
            fields += [("Ultimate SD upscale seams_fix", tiled.seams),
                       ("Ultimate SD upscale seams_fix_denoise", _num(tiled.seams_denoise))]
            if tiled.seams == "band":
                fields.append(("Ultimate SD upscale seams_fix_width", str(tiled.seams_width)))
        if tiled.controlnet:
            fields += [("Ultimate SD upscale ControlNet", _model_name(tiled.controlnet)),
                       ("Ultimate SD upscale ControlNet weight", _num(tiled.controlnet_scale))]
    if job.model.clip_skip > 1:
        fields.append(("Clip skip", str(job.model.clip_skip)))
    if job.transparency is not None:  # RGBA from the model (LayerDiffuse); "" = the catalog's weights
        fields.append(("LayerDiffuse", _model_name(job.transparency.weights) or "True"))
    if job.tiling != "off":
        fields.append(("Tiling", "True" if job.tiling == "both" else job.tiling.upper()))
    for i, unit in enumerate(job.controls):
        inner = (
            f"Module: {unit.type}, Model: {_model_name(unit.model)}, Weight: {_num(unit.scale)}, "
            f"Guidance Start: {_num(unit.start)}, Guidance End: {_num(unit.end)}"
        )
        fields.append((f"ControlNet {i}", inner))
    if job.source.style:
        fields.append(("Style", job.source.style))
    fields.append(("Version", f"asset-studio {__version__}"))
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields))
    return "\n".join(lines)


def parse_parameters(text: str) -> dict:
    """Read A1111 `parameters` text back: {"prompt", "negative_prompt", and every "Key": "value"}."""
    lines = text.strip("\n").split("\n")
    settings = lines[-1] if lines and re.match(r"^\s*Steps:\s", lines[-1]) else ""
    body = lines[:-1] if settings else lines
    prompt_lines, negative_lines, target = [], [], None
    for line in body:
        if line.startswith("Negative prompt:"):
            target = negative_lines
            line = line[len("Negative prompt:"):].lstrip()
        (negative_lines if target is negative_lines else prompt_lines).append(line)
    result = {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(negative_lines)}
    for match in re.finditer(r'\s*([\w \-+/]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)', settings):
        key, value = match.group(1).strip(), match.group(2).strip()
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        result[key] = value
    return result


@dataclass
class RunInfo:
    """One run (a press of Generate, a re-roll …): every image it saves carries it, outside the job
    (re-running an image is a new run, the job stays the same)."""

    id: str
    started: float  # seconds since the epoch
    subject: str = ""
    count: int = 1

    @classmethod
    def new(cls, job: GenerationJob) -> "RunInfo":
        import time
        import uuid

        return cls(id=uuid.uuid4().hex[:12], started=time.time(),
                   subject=(job.source.subject or job.prompt.text)[:80], count=len(job.image_seeds()))

    def to_text(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=True, sort_keys=True)

    @classmethod
    def from_text(cls, text: str | None) -> "RunInfo | None":
        """The run a PNG's chunk names, or None when it has none or it is not ours (data, not trusted)."""
        try:
            data = json.loads(text) if text else None
            if (isinstance(data, dict) and isinstance(data.get("id"), str) and 0 < len(data["id"]) <= 64
                    and isinstance(data.get("started"), (int, float))):
                return cls(id=data["id"], started=float(data["started"]), subject=str(data.get("subject", ""))[:80],
                           count=int(data["count"]) if isinstance(data.get("count"), int) else 1)
        except (ValueError, RecursionError):
            pass
        return None


def read_run(path) -> "RunInfo | None":
    """The run of an image, read from the chunks before its pixels (cheap: nothing is decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return RunInfo.from_text(im.info.get(RUN_CHUNK))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def png_info(job: GenerationJob, seed: int, run: RunInfo | None = None):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PARAMETERS_CHUNK, a1111_parameters(job, seed))
    info.add_text(JOB_CHUNK, job.for_seed(seed).to_json())
    if run is not None:
        info.add_text(RUN_CHUNK, run.to_text())
    return info


def _text_chunks(path: Path) -> dict:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()  # text chunks after the image data are only read on load
            return dict(getattr(im, "text", {}) or {})
    except FileNotFoundError:
        raise UserError(f"The image {path} does not exist.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise UserError(f"{Path(path).name} is not a readable PNG image.") from None


def read_parameters(path) -> str:
    """The A1111 `parameters` text of a PNG, or a UserError when it has none."""
    text = _text_chunks(Path(path)).get(PARAMETERS_CHUNK)
    if not text:
        raise UserError(f"{Path(path).name} carries no generation parameters.")
    return text


def read_job(path) -> GenerationJob:
    """The GenerationJob embedded in a PNG that Asset Studio wrote."""
    raw = _text_chunks(Path(path)).get(JOB_CHUNK)
    if not raw:
        raise UserError(f"{Path(path).name} carries no Asset Studio job; only images made here can be re-run.")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise UserError(f"The job inside {Path(path).name} is not valid JSON.") from None
    if not isinstance(data, dict):
        raise UserError(f"The job inside {Path(path).name} is not a JSON object.")
    try:
        return GenerationJob.from_dict(data)
    except UserError as exc:
        raise UserError(f"{Path(path).name}: {exc}") from None


# --- files ------------------------------------------------------------------------------------


def slugify(text: str, max_len: int = 40) -> str:
    """A file-name-safe short form of a prompt: lowercase ASCII words joined by hyphens."""
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"<[^>]*>", " ", text)  # LoRA tags and the like
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_len:
            break
        slug = candidate
    return slug or (words[0][:max_len] if words else "image")


def next_number(folder: Path) -> int:
    highest = 0
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return 1
    for name in names:
        m = NAME_PATTERN.match(name)
        if m:
            highest = max(highest, int(m.group(1)))
    return highest + 1


def save_image(image, job: GenerationJob, folder, seed: int | None = None, name: str | None = None,
               run: RunInfo | None = None) -> Path:
    """Write one image with its metadata as `00001-<seed>-<slug>.png` (or NAME, e.g. a pose set's
    `knight-walk-3.png`); never overwrites a file."""
    from asset_studio.core.outputs import png_writer, staged

    folder = Path(folder)
    seed = job.sampling.seed if seed is None else int(seed)
    if name is not None:
        with staged(folder / name, png_writer(image, pnginfo=png_info(job, seed, run))) as new:
            if new.link_new(folder / name):
                return folder / name
        raise UserError(f"{folder / name} already exists; it was kept.")
    slug = slugify(job.source.subject or job.prompt.text)
    number = next_number(folder)
    with staged(folder / f"{number:05d}-{seed}-{slug}.png", png_writer(image, pnginfo=png_info(job, seed, run))) as new:
        while True:  # another process may take a number first: take the next one
            target = folder / f"{number:05d}-{seed}-{slug}.png"
            if new.link_new(target):
                return target
            number = max(number + 1, next_number(folder))


def save_control_image(image, folder, control_type: str) -> Path:
    """control-<type>-<hash>.png: the same drawing is written once; a different one never overwrites."""
    import hashlib
    import io

    from asset_studio.core.outputs import bytes_writer, staged

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    folder = Path(folder)
    path = folder / f"control-{control_type}-{hashlib.sha256(data).hexdigest()[:10]}.png"
    if not path.exists():
        with staged(path, bytes_writer(data)) as new:
            new.link_new(path)  # taken meanwhile: by the same drawing, as the name is its hash
    return path.resolve()
