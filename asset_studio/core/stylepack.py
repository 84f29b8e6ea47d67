"""Style packs: a folder with `style.toml` and its files (LoRAs, previews) that fixes one look.

    pixel-art/
        style.toml          name, id, prompt template, LoRAs, defaults, post-processing, references
        loras/pixel.safetensors
        references/hero.png character reference pictures (IP-Adapter image prompts)
        preview.png

Packs live in two places: the bundled `styles/` folder beside the package, and the user's styles
folder (`$ASSET_STUDIO_HOME/styles`, by default the platform's data folder), which shadows a
bundled pack of the same id. `style.toml` is read strictly: every error names its field.
"""

from __future__ import annotations

import os
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from asset_studio.core import families, placeholders
from asset_studio.core.job import MAX_REFERENCES, Reference, ReferenceMode
from asset_studio.core.tomlschema import Table, parse_toml, read_toml_file
from asset_studio.errors import UserError

STYLE_FILE = "style.toml"
FAMILIES = families.FAMILY_IDS
SEED_POLICIES = ("fixed", "per-asset", "random")
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
FIELD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
REPO_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_SIZE = 4096
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
REFERENCE_MODES = typing.get_args(ReferenceMode)
MAX_IMAGE_BYTES = 32 * 1024**2  # a preview or reference picture inside a pack
MAX_IMAGE_SIDE = 4096  # pixels per side: a small PNG can decode to gigabytes
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])\s*")


@dataclass
class LoraEntry:
    """A LoRA of the pack: a file inside it, or a hub reference pinned by sha256."""

    file: str = ""  # path relative to the pack folder
    repo: str = ""  # hub repo id, with filename and sha256
    filename: str = ""
    sha256: str = ""
    weight: float = 1.0
    trigger_words: list[str] = field(default_factory=list)


@dataclass
class ReferenceEntry:
    """A character reference picture shipped inside the pack: an IP-Adapter image prompt that keeps
    the same character across assets (prepare() puts it in every job of the style)."""

    file: str  # path relative to the pack folder
    scale: float = Reference.scale
    mode: str = Reference.mode  # "full" (content and style) or "style" (its style only)


@dataclass
class FieldSpec:
    """A named field the prompt template uses besides {subject}. No default = required."""

    description: str = ""
    default: str | None = None


@dataclass
class Defaults:
    """Generation settings the style recommends; None = leave it to the template or engine."""

    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    width: int | None = None
    height: int | None = None
    clip_skip: int | None = None
    seed_policy: str = "per-asset"
    seed: int = 0  # the fixed seed, and the base mixed into per-asset seeds


@dataclass
class PostProcess:
    """Post-processing defaults; None = not set here (a template or the user decides)."""

    remove_background: bool | None = None
    pixel_grid: int | None = None  # snap to this many pixels across; 0 = off
    palette_size: int | None = None  # reduce to N colours; 0 = off
    trim: bool | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class StylePack:
    id: str
    name: str
    prompt: str  # template with {subject} and named fields
    version: str = "1.0.0"
    author: str = ""
    license: str = ""
    description: str = ""
    family: str = "sd15"
    recommended_models: list[str] = field(default_factory=list)
    negative: str = ""
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    loras: list[LoraEntry] = field(default_factory=list)
    defaults: Defaults = field(default_factory=Defaults)
    postprocess: PostProcess = field(default_factory=PostProcess)
    previews: list[str] = field(default_factory=list)
    references: list[ReferenceEntry] = field(default_factory=list)
    ip_adapter: str = ""  # the IP-Adapter its references want: a catalog id or a .safetensors file in the pack
    image_encoder: str = ""  # that adapter's image encoder (catalog id); "" = the one it was trained with
    folder: Path | None = None  # where it was loaded from; not part of the file

    @property
    def family_name(self) -> str:
        return families.label(self.family)

    @property
    def trigger_words(self) -> list[str]:
        return [w for lora in self.loras for w in lora.trigger_words]

    def to_toml_dict(self) -> dict:
        """The style.toml content, leaving out settings that are unset."""
        data: dict = {"id": self.id, "name": self.name, "version": self.version}
        for key in ("author", "license", "description"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        data["family"] = self.family
        if self.recommended_models:
            data["recommended_models"] = list(self.recommended_models)
        data["prompt"] = self.prompt
        if self.negative:
            data["negative"] = self.negative
        if self.previews:
            data["previews"] = list(self.previews)
        for key in ("ip_adapter", "image_encoder"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.fields:
            data["fields"] = {
                name: {k: v for k, v in vars(spec).items() if v is not None and (v or k == "default")}
                for name, spec in self.fields.items()
            }
        defaults = {k: v for k, v in vars(self.defaults).items() if v is not None}
        data["defaults"] = defaults
        if self.postprocess.to_dict():
            data["postprocess"] = self.postprocess.to_dict()
        if self.loras:
            data["loras"] = [
                {k: v for k, v in vars(lora).items() if v not in ("", [])} for lora in self.loras
            ]
        if self.references:
            data["references"] = [dict(vars(ref)) for ref in self.references]
        return data


# --- reading -------------------------------------------------------------------------------


def check_pack_path(value: str) -> str | None:
    """Why ``value`` is not a safe relative path inside a pack, or None when it is."""
    if not value or len(value) > 255:
        return "must be a relative path of 1 to 255 characters"
    if "\\" in value or "\0" in value or ":" in value:
        return "must use / between folders and no backslash or colon"
    path = PurePosixPath(value)
    if path.is_absolute() or value.startswith("/"):
        return "must be a path inside the pack, not an absolute path"
    if any(part in ("..", ".", "") for part in value.split("/")):
        return "must be a path inside the pack (no '..')"
    for part in value.split("/"):
        if len(part.encode("utf-8")) > 255:  # file systems count bytes: 100 Hangul syllables are 300
            return "must have folder and file names of at most 255 bytes each"
        # Packs are shared across systems: on Windows these names open a device or lose characters.
        if part.endswith((".", " ")) or _WINDOWS_RESERVED.fullmatch(part.split(".")[0]) \
                or any(c in '<>"|?*' or ord(c) < 32 for c in part):
            return "must be a file name every system can hold (no CON, NUL, COM1…, trailing dot or space, or <>\"|?*)"
    return None


def read_fields(t: Table, prompt: str, negative: str) -> dict[str, FieldSpec]:
    """The [fields] table of a style pack or template; every {name} the prompts use must be declared."""
    fields: dict[str, FieldSpec] = {}
    table = t.table("fields")
    if table is not None:
        for name in list(table.data):
            if not FIELD_PATTERN.fullmatch(name) or name == "subject":
                table.fail(name, "is not a valid field name (letters, digits, '_'; not 'subject')")
            spec = table.table(name)
            fields[name] = FieldSpec(
                description=spec.string("description", "", max_len=500),
                default=spec.string("default", None, max_len=500),
            )
            spec.finish()
        table.finish()
    for key, text in (("prompt", prompt), ("negative", negative)):
        for name in placeholders.names(text):
            if name != "subject" and name not in fields:
                t.fail(key, f"uses {{{name}}}, which is not declared under [fields]")
    return fields


def read_postprocess(t: Table) -> PostProcess:
    """The [postprocess] table of a style pack or template; unset keys stay None."""
    p = PostProcess()
    pt = t.table("postprocess")
    if pt is not None:
        p.remove_background = pt.boolean("remove_background", None)
        p.pixel_grid = pt.integer("pixel_grid", 0, 1024, None)
        p.palette_size = pt.integer("palette_size", 0, 256, None)
        p.trim = pt.boolean("trim", None)
        pt.finish()
    return p


def _pack_path(table: Table, key: str, suffixes: tuple[str, ...], value: str | None = None) -> str:
    value = table.string(key) if value is None else value
    problem = check_pack_path(value)
    if problem:
        table.fail(key, problem)
    if not value.lower().endswith(suffixes):
        table.fail(key, "must be a " + " or ".join(suffixes) + " file")
    return value


def parse_stylepack(raw: dict, label: str = STYLE_FILE) -> StylePack:
    """Validate the parsed TOML of a style pack. Pure: touches no file."""
    t = Table(raw, label)
    pack = StylePack(
        id=t.string("id", pattern=ID_PATTERN,
                    explain="must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"),
        name=t.string("name", max_len=100),
        version=t.string("version", "1.0.0", max_len=40),
        author=t.string("author", "", max_len=200),
        license=t.string("license", "", max_len=200),
        description=t.string("description", "", max_len=4000),
        family=t.choice("family", FAMILIES),
        recommended_models=t.strings("recommended_models", []),
        prompt=t.template("prompt"),
        negative=t.template("negative", ""),
    )
    if not pack.name.strip():
        t.fail("name", "must not be empty")
    if "subject" not in placeholders.names(pack.prompt):
        t.fail("prompt", "must contain {subject}")

    previews = t.strings("previews", [])
    for i, preview in enumerate(previews):
        _pack_path(t, f"previews[{i}]", IMAGE_SUFFIXES, preview)
    pack.previews = previews

    pack.fields = read_fields(t, pack.prompt, pack.negative)

    for rt in t.tables("references", max_items=MAX_REFERENCES):
        pack.references.append(ReferenceEntry(file=_pack_path(rt, "file", IMAGE_SUFFIXES),
                                              scale=rt.number("scale", 0.0, 2.0, Reference.scale),
                                              mode=rt.choice("mode", REFERENCE_MODES, Reference.mode)))
        rt.finish()
    # A catalog id (downloaded on request like any model) or the adapter's file shipped in the pack.
    pack.ip_adapter = t.string("ip_adapter", "", max_len=255)
    if pack.ip_adapter.lower().endswith(".safetensors"):
        _pack_path(t, "ip_adapter", (".safetensors",))
    elif pack.ip_adapter and not ID_PATTERN.fullmatch(pack.ip_adapter):
        t.fail("ip_adapter", "must be a catalog id (like ip-adapter-plus-sd15) or a .safetensors file in the pack")
    pack.image_encoder = t.string("image_encoder", "", max_len=64, pattern=ID_PATTERN,
                                  explain="must be a catalog id (like ip-adapter-image-encoder-vit-h)")
    if pack.image_encoder and not pack.ip_adapter:
        t.fail("image_encoder", "needs ip_adapter: an image encoder belongs to an IP-Adapter")

    for lt in t.tables("loras"):
        lora = LoraEntry(
            weight=lt.number("weight", -5.0, 5.0, 1.0),
            trigger_words=lt.strings("trigger_words", [], max_items=32, max_len=100),
        )
        if lt.has("file"):
            lora.file = _pack_path(lt, "file", (".safetensors",))
            if lt.has("repo") or lt.has("filename") or lt.has("sha256"):
                lt.fail("file", "cannot be combined with repo, filename and sha256")
        elif lt.has("repo"):
            lora.repo = lt.string("repo", pattern=REPO_PATTERN, explain="must be a hub repo id like 'owner/name'")
            lora.filename = lt.string("filename", max_len=255)
            if check_pack_path(lora.filename) or not lora.filename.endswith(".safetensors"):
                lt.fail("filename", "must be the relative name of a .safetensors file in the repo")
            lora.sha256 = lt.string("sha256", pattern=SHA256_PATTERN,
                                    explain="must be 64 lower-case hexadecimal digits")
        else:
            lt.fail("file", "is required (or repo, filename and sha256 for a hub LoRA)")
        lt.finish()
        pack.loras.append(lora)

    dt = t.table("defaults")
    if dt is not None:
        d = pack.defaults
        d.steps = dt.integer("steps", 1, 150, None)
        d.cfg_scale = dt.number("cfg_scale", 0.0, 30.0, None)
        d.sampler = dt.string("sampler", None, max_len=40)
        d.width = dt.integer("width", 64, MAX_SIZE, None)
        d.height = dt.integer("height", 64, MAX_SIZE, None)
        for key in ("width", "height"):
            if getattr(d, key) is not None and getattr(d, key) % 8:
                dt.fail(key, "must be a multiple of 8")
        d.clip_skip = dt.integer("clip_skip", 1, 12, None)
        d.seed_policy = dt.choice("seed_policy", SEED_POLICIES, "per-asset")
        d.seed = dt.integer("seed", 0, 2**32 - 1, 0)
        dt.finish()

    pack.postprocess = read_postprocess(t)

    t.finish()
    return pack


def parse_stylepack_text(text: str, label: str = STYLE_FILE) -> StylePack:
    return parse_stylepack(parse_toml(text, label), label)


def load_stylepack(folder: str | Path) -> StylePack:
    """Load and check a pack folder (or its style.toml): schema and the files it names."""
    folder = Path(folder)
    if folder.name == STYLE_FILE and folder.is_file():
        folder = folder.parent
    if not (folder / STYLE_FILE).is_file():
        raise UserError(f"{folder} is not a style pack: it has no {STYLE_FILE}.")
    pack = parse_stylepack(read_toml_file(folder / STYLE_FILE, STYLE_FILE))
    root = folder.resolve()
    for key, rel in pack_files_named(pack):
        target = (folder / rel).resolve()
        if not target.is_relative_to(root):
            raise UserError(f"{STYLE_FILE}: {key} points outside the pack.")
        if not target.is_file():
            raise UserError(f"{STYLE_FILE}: {key} names {rel}, which is not in the pack.")
    for i, ref in enumerate(pack.references):
        check_pack_image(folder / ref.file, f"{STYLE_FILE}: references[{i}].file ({ref.file})")
    pack.folder = folder
    return pack


def pack_files_named(pack: StylePack) -> list[tuple[str, str]]:
    """(key, relative path) of every file style.toml names inside the pack: what must ship with it."""
    named = [(f"loras[{i}].file", lora.file) for i, lora in enumerate(pack.loras) if lora.file]
    named += [(f"previews[{i}]", p) for i, p in enumerate(pack.previews)]
    named += [(f"references[{i}].file", ref.file) for i, ref in enumerate(pack.references)]
    if pack.ip_adapter.lower().endswith(".safetensors"):
        named.append(("ip_adapter", pack.ip_adapter))
    return named


def check_pack_image(path: Path, shown: str) -> None:
    """A picture a pack carries: a PNG, JPEG or WebP within the size limits, judged from its header
    (never decoded here); else one sentence naming SHOWN."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(f"{shown} is missing.") from None
    if size > MAX_IMAGE_BYTES:
        raise UserError(f"{shown} is {size:,} bytes, over the limit of {MAX_IMAGE_BYTES:,} bytes for a pack's picture.")
    try:
        with Image.open(path) as im:
            kind, (w, h) = im.format, im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UserError(f"{shown} is not a readable image.") from None
    if kind not in _IMAGE_FORMATS:
        raise UserError(f"{shown} is a {kind} picture; a pack's pictures are PNG, JPEG or WebP.")
    if max(w, h) > MAX_IMAGE_SIDE:
        raise UserError(f"{shown} is {w}x{h} pixels, over the limit of {MAX_IMAGE_SIDE} pixels per side.")


def save_stylepack(pack: StylePack, folder: str | Path) -> Path:
    """Write the pack's style.toml into ``folder`` (created if needed); returns the file."""
    import tomli_w

    folder = Path(folder)
    data = pack.to_toml_dict()
    parse_stylepack(data)  # never write a file that would not load back
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / STYLE_FILE
    tmp = folder / f".{STYLE_FILE}.tmp"
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    os.replace(tmp, target)
    return target


# --- where packs live ----------------------------------------------------------------------


def app_home() -> Path:
    """The user's Asset Studio data folder: $ASSET_STUDIO_HOME or the platform's data folder."""
    env = os.environ.get("ASSET_STUDIO_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "asset-studio"


def user_styles_dir() -> Path:
    return app_home() / "styles"


def bundled_styles_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "styles"


def style_dirs() -> list[Path]:
    """Folders searched for packs, first wins: the user's, then the bundled ones."""
    return [user_styles_dir(), bundled_styles_dir()]


def _pack_folders(bases: list[Path] | None = None):
    for base in style_dirs() if bases is None else bases:
        if base.is_dir():
            for sub in sorted(base.iterdir()):
                if not sub.name.startswith(".") and (sub / STYLE_FILE).is_file():
                    yield sub


def list_styles(on_error=None) -> list[StylePack]:
    """Every installed pack, user packs shadowing bundled ones of the same id, sorted by name.

    A broken pack is skipped; ``on_error(folder, UserError)`` hears about it.
    """
    found: dict[str, StylePack] = {}
    for folder in _pack_folders():
        try:
            pack = load_stylepack(folder)
        except UserError as exc:
            if on_error is not None:
                on_error(folder, exc)
            continue
        found.setdefault(pack.id, pack)
    return sorted(found.values(), key=lambda p: (p.name.lower(), p.id))


def installed_ids() -> set[str]:
    return {pack.id for pack in list_styles()}


def find_style(id_or_path: str | Path) -> StylePack:
    """A pack by id (user packs first) or by folder / style.toml path."""
    text = str(id_or_path)
    path = Path(text).expanduser()
    if ID_PATTERN.fullmatch(text):
        for base in style_dirs():  # the user's folder first, as in list_styles
            if (base / text / STYLE_FILE).is_file():
                pack = load_stylepack(base / text)
                if pack.id == text:
                    return pack
            for folder in _pack_folders([base]):
                try:
                    pack = load_stylepack(folder)
                except UserError:
                    continue
                if pack.id == text:
                    return pack
    if path.exists():
        return load_stylepack(path)
    raise UserError(f"No style pack '{text}' is installed; `asset-studio style list` shows the installed ones.")
