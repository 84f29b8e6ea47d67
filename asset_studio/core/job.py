"""The fully resolved, JSON-serialisable description of one generation.

A GenerationJob is what compose() produces and Engine.run() consumes. It is embedded in every
PNG, so an image can be re-run exactly. Keep it plain data: strings, numbers, lists, dicts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

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
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            from asset_studio.errors import UserError

            raise UserError(f"The job has unknown field(s): {', '.join(unknown)}.")
        data = dict(data)
        data["loras"] = [LoraRef(**x) for x in data.get("loras", [])]
        data["controlnets"] = [ControlUnit(**x) for x in data.get("controlnets", [])]
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "GenerationJob":
        return cls.from_dict(json.loads(text))
