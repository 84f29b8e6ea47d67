"""The fully resolved, JSON-serialisable description of one generation.

A GenerationJob is what compose() produces and Engine.run() consumes. It is embedded in every
PNG, so an image can be re-run exactly. Keep it plain data: strings, numbers, lists, dicts.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields

JOB_SCHEMA_VERSION = 1


@dataclass
class LoraRef:
    """One LoRA applied to the base model: a .safetensors file and its strength."""

    path: str
    weight: float = 1.0
    name: str = ""  # adapter name; derived from the file name when empty


@dataclass
class ControlUnit:
    """One ControlNet: its model, the control image it follows, and how strongly."""

    model: str
    image: str  # path to the control image (already preprocessed)
    control_type: str = "lineart"
    scale: float = 1.0
    guidance_start: float = 0.0
    guidance_end: float = 1.0


@dataclass
class GenerationJob:
    model: str
    prompt: str
    negative_prompt: str = ""
    steps: int = 25
    cfg_scale: float = 7.0
    sampler: str = "Euler a"
    width: int = 512
    height: int = 512
    seed: int = 0
    batch_count: int = 1
    # Seeds of each image of the batch; when empty, image i uses seed + i.
    seeds: list[int] = field(default_factory=list)
    vae: str | None = None
    clip_skip: int = 1  # 1 = last CLIP layer, as in AUTOMATIC1111
    init_image: str | None = None
    denoise: float = 0.75
    model_config: str | None = None  # local diffusers config folder for single-file checkpoints
    loras: list[LoraRef] = field(default_factory=list)
    controlnets: list[ControlUnit] = field(default_factory=list)
    # Provenance: where the prompt came from. Not needed to re-run, kept for the gallery.
    style_id: str = ""
    template: str = ""
    subject: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    postprocess: dict = field(default_factory=dict)
    schema: int = JOB_SCHEMA_VERSION

    def image_seeds(self) -> list[int]:
        """The seed of every image in the batch."""
        if self.seeds:
            return list(self.seeds)
        return [self.seed + i for i in range(self.batch_count)]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "GenerationJob":
        """A job from plain data, every field's type checked: jobs also arrive inside PNGs from strangers."""
        from asset_studio.errors import UserError

        if not isinstance(data, dict):
            raise UserError("The job is not a JSON object.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"The job has unknown field(s): {', '.join(map(str, unknown))}.")
        data = dict(data)
        for key in ("loras", "controlnets"):
            if not isinstance(data.get(key, []), list) or not all(isinstance(x, dict) for x in data.get(key, [])):
                raise UserError(f"The job's {key} must be a list of objects.")
        data["loras"] = [checked(LoraRef, x, f"loras[{i}].") for i, x in enumerate(data.get("loras", []))]
        data["controlnets"] = [checked(ControlUnit, x, f"controlnets[{i}].")
                               for i, x in enumerate(data.get("controlnets", []))]
        return checked(cls, data, "")

    @classmethod
    def from_json(cls, text: str) -> "GenerationJob":
        return cls.from_dict(json.loads(text))


def _type_ok(value, kind: str) -> bool:
    """Whether VALUE fits the (string) annotation KIND of a job field."""
    import math

    if kind.endswith(" | None"):
        return value is None or _type_ok(value, kind[: -len(" | None")])
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return type(value) is int
    if kind == "bool":
        return type(value) is bool
    if kind == "float":
        return type(value) in (int, float) and math.isfinite(value)
    if kind == "list[int]":
        return isinstance(value, list) and all(type(v) is int for v in value)
    if kind == "dict[str, str]":
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if kind == "dict":
        return isinstance(value, dict)
    return True  # nested dataclass lists, checked by from_dict itself


_KIND_WORDS = {"str": "text", "int": "a whole number", "float": "a finite number", "list[int]": "a list of whole numbers",
               "dict[str, str]": "a table of texts", "dict": "a table", "bool": "true or false"}


def checked(cls, data: dict, where: str):
    """CLS(**DATA) after checking names and types, so a malformed job (or a part of one) is one
    clear sentence. CLS is a dataclass whose annotations are strings (``from __future__ import
    annotations``)."""
    from asset_studio.errors import UserError

    spec = {f.name: f for f in fields(cls) if f.init}
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise UserError(f"The job's {where.rstrip('.') or 'data'} has unknown field(s): {', '.join(map(str, unknown))}.")
    for name, f in spec.items():
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise UserError(f"The job's {where}{name} is missing.")
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if not _type_ok(data[name], kind):
            base = kind.removesuffix(" | None")
            words = _KIND_WORDS.get(base, base) + (" or null" if kind.endswith(" | None") else "")
            raise UserError(f"The job's {where}{name} must be {words}, not {data[name]!r:.60}.")
    return cls(**data)
