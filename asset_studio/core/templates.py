"""Asset templates: asset types as data (icon, item sprite, tile, UI button …).

A template is a TOML file in `templates/` (bundled beside the package, or the user's
`$ASSET_STUDIO_HOME/templates`). It wraps the subject in prompt fragments that make the asset
usable in a game — a centred single object for an icon, a seamless top-down texture for a tile —
and carries the shape (default size and aspect), the ControlNet type that suits it, and its
post-processing. The style pack decides the look; the template decides the kind of asset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from asset_studio.core import controls, placeholders
from asset_studio.core.stylepack import ID_PATTERN, MAX_SIZE, FieldSpec, PostProcess, app_home, read_fields, read_postprocess
from asset_studio.core.tomlschema import Table, read_toml_file
from asset_studio.errors import UserError

CONTROL_TYPES = ("none", *controls.CONTROL_TYPES)  # what a template may recommend
TILINGS = ("off", "x", "y", "both")
ASPECT_PATTERN = re.compile(r"([1-9][0-9]?):([1-9][0-9]?)")


@dataclass
class Template:
    id: str
    name: str
    prompt: str  # fragment with {subject}; the style wraps the result
    description: str = ""
    negative: str = ""
    width: int = 512
    height: int = 512
    aspect: str = "1:1"
    controlnet: str = "none"  # the ControlNet type this asset follows best, when a layout is used
    tiling: str = "off"  # seamless along x, y or both: the asset repeats without seams
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    postprocess: PostProcess = field(default_factory=PostProcess)
    path: Path | None = None

    @property
    def aspect_ratio(self) -> float:
        w, h = ASPECT_PATTERN.fullmatch(self.aspect).groups()
        return int(w) / int(h)


def parse_template(raw: dict, label: str) -> Template:
    t = Table(raw, label)
    tpl = Template(
        id=t.string("id", pattern=ID_PATTERN, explain="must be lower-case letters, digits, '-' or '_'"),
        name=t.string("name", max_len=100),
        description=t.string("description", "", max_len=2000),
        prompt=t.template("prompt"),
        negative=t.template("negative", ""),
        width=t.integer("width", 64, MAX_SIZE, 512),
        height=t.integer("height", 64, MAX_SIZE, 512),
        aspect=t.string("aspect", "1:1", max_len=5, pattern=ASPECT_PATTERN, explain='must look like "3:1"'),
        controlnet=t.choice("controlnet", CONTROL_TYPES, "none"),
    )
    tpl.tiling = t.choice("tiling", TILINGS, "off")
    if t.boolean("seamless", False):  # the 0.1 spelling of tiling = "both"
        tpl.tiling = "both"
    for key in ("width", "height"):
        if getattr(tpl, key) % 8:
            t.fail(key, "must be a multiple of 8")
    if "subject" not in placeholders.names(tpl.prompt):
        t.fail("prompt", "must contain {subject}")
    tpl.fields = read_fields(t, tpl.prompt, tpl.negative)
    tpl.postprocess = read_postprocess(t)
    t.finish()
    return tpl


def load_template(path: str | Path) -> Template:
    path = Path(path)
    tpl = parse_template(read_toml_file(path, path.name), path.name)
    tpl.path = path
    return tpl


def bundled_templates_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "templates"


def template_dirs() -> list[Path]:
    """Folders searched for templates, first wins: the user's, then the bundled ones."""
    return [app_home() / "templates", bundled_templates_dir()]


def list_templates() -> list[Template]:
    found: dict[str, Template] = {}
    for base in template_dirs():
        if base.is_dir():
            for path in sorted(base.glob("*.toml")):
                tpl = load_template(path)
                found.setdefault(tpl.id, tpl)
    return sorted(found.values(), key=lambda t: t.id)


def find_template(id_or_path: str | Path) -> Template:
    text = str(id_or_path)
    if ID_PATTERN.fullmatch(text):
        for base in template_dirs():
            if (base / f"{text}.toml").is_file():
                return load_template(base / f"{text}.toml")
    path = Path(text).expanduser()
    if path.suffix == ".toml" and path.is_file():
        return load_template(path)
    known = ", ".join(t.id for t in list_templates())
    raise UserError(f"No asset template '{text}'; the templates are: {known}.")
