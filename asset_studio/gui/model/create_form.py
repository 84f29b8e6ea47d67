"""The Create tab's state: style, template, subject, prompts, fields and parameters → an AssetRequest.

`to_request()` is the whole contract with the core: the window, the tests and anyone comparing
the Create tab with the CLI call it, and core.request.prepare() turns it into the job. The live
prompt preview is computed by that same prepare(preview=True), once per burst of changes.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from asset_studio.core import controls
from asset_studio.core.job import MAX_REFERENCES, LoraRef, Reference
from asset_studio.core.request import AssetRequest, Overrides, prepare
from asset_studio.core.stylepack import FieldSpec, StylePack, list_styles
from asset_studio.core.templates import Template, list_templates
from asset_studio.errors import UserError
from asset_studio.gui.model.layout_state import LayoutState
from asset_studio.gui.model.pose_link import PoseLink
from asset_studio.gui.model.passes_form import PassesForm
from asset_studio.gui.model.tokens import count_tokens
from asset_studio.gui.model.tokens import preload as preload_tokens

MAX_SEED = 2**32 - 1  # the seeds artists type and share (A1111's range); jobs accept up to 2^64-1
PREVIEW_DELAY_MS = 150  # typing pauses longer than this refresh the prompt preview

DEFAULTS = {
    "style_id": "", "template_id": "", "subject": "", "extra_prompt": "", "negative": "", "model": "",
    "width": 512, "height": 512, "size_auto": True, "steps": 25, "cfg_scale": 7.0, "sampler": "Euler a",
    "seed": 0, "seed_locked": False, "seed_mode": "new", "count": 1, "init_image": "", "denoise": 0.6, "lora_weight": 1.0,
    # finishing (the sprite made from the raw image): the style's and template's, until the artist sets one
    "remove_background": False, "trim": False, "pixel_grid": 0, "palette_size": 0,
    # references (IP-Adapter): the adapter and its encoder ("" = the style's, else the matching one)
    "ip_adapter": "", "image_encoder": "", "use_style_references": True,
    # transparent generation (LayerDiffuse): RGBA from the model; its weights ("" = the catalog's for the family)
    "transparent": False, "layerdiffuse": "",
    # seamless tiling (as --tile): the template's until the artist sets one; engine: where the job runs
    "tiling": "off", "engine": "local",
}
FINISHING = ("remove_background", "trim", "pixel_grid", "palette_size")
# Changes that cannot alter the composed prompt do not recompute the preview.
_NOT_IN_PROMPT = {"seed", "seed_locked", "seed_mode", *FINISHING, "width", "height", "size_auto", "steps", "cfg_scale", "sampler",
                  "count", "denoise", "lora_weight", "model", "negative", "init_image", "ip_adapter", "image_encoder",
                  "use_style_references", "transparent", "layerdiffuse", "tiling", "engine"}


# The values the style and template fill in; once the artist sets one, theirs is kept
# (fill_from_style skips it) until "Reset to style".
STYLE_FILLED = ("steps", "cfg_scale", "sampler", *FINISHING, "tiling")
JOB_FILLED = ("tiling",)  # read from the job itself, not its sampling or finishing
TILINGS = {"off": "Off", "x": "Left-right (x)", "y": "Up-down (y)", "both": "Both"}  # job.tiling's values
# Unlocked seeds: "new" = a new random seed on every press; "style" = the style's seed policy
# (per-asset: the same subject always gets the same seed; fixed; random).
SEED_MODES = ("new", "style")
POLICY_TEXT = {
    "per-asset": "per-asset: the same subject always gets the same seed",
    "fixed": "fixed: every image of this style starts from the style's seed",
    "random": "random: a new seed every time",
}


@lru_cache(maxsize=64)
def _family_cached(ref: str, stamp: float) -> str | None:
    from asset_studio.core.request import model_family

    return model_family(ref)


def _model_family(ref: str) -> str | None:
    """The model's family from its files (a header read), cached while the file is unchanged."""
    try:
        stamp = Path(ref).expanduser().stat().st_mtime
    except OSError:
        stamp = 0.0
    return _family_cached(ref, stamp)


def _value(name: str):
    def get(self):
        return self._values[name]

    def put(self, value):
        self._set(name, value)
        if name in STYLE_FILLED:
            self._artist_set.add(name)

    return property(get, put)


class CreateForm(QObject):
    changed = Signal(str)  # the name of the value that changed
    styles_changed = Signal()  # the list of style packs was (re)loaded
    templates_changed = Signal()
    fields_changed = Signal()  # the style and template declare other named fields
    prompt_preview_changed = Signal(str)
    tokens_changed = Signal(object)  # a tokens.TokenCount of the composed prompt, or None without one
    message = Signal(str)  # a sentence for the status bar

    def __init__(self, layout: LayoutState | None = None, parent: QObject | None = None, load: bool = True,
                 pose: PoseLink | None = None):
        super().__init__(parent)
        self._values = dict(DEFAULTS)
        self._loras: list[LoraRef] = []
        self._references: list[Reference] = []  # the artist's own, after the style's
        self._artist_set: set[str] = set()  # STYLE_FILLED names the artist set: never overwritten
        self._field_values: dict[str, str] = {}
        self.styles: list[StylePack] = []
        self.templates: list[Template] = []
        self.layout = layout or LayoutState(self)
        self.pose = pose or PoseLink(self)  # the Pose tab's pose or pose set, when Create follows one
        self.passes = PassesForm(self)  # hires fix, refiner, tiled upscale: after-passes of the base image
        self._preview = ""
        self.tokens = None  # tokens.TokenCount of the composed prompt
        self._preview_stale = False
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._compute_preview)
        # The layout's text fills the template's text field: the preview follows the layout.
        self.layout.changed.connect(lambda name: self._schedule_preview() if name in ("layout", "follow") else None)
        if load:
            preload_tokens()
            self.reload_styles()
            self.reload_templates()

    # --- plain values --------------------------------------------------------------------------

    subject = _value("subject")
    extra_prompt = _value("extra_prompt")
    negative = _value("negative")
    model = _value("model")
    steps = _value("steps")
    cfg_scale = _value("cfg_scale")
    sampler = _value("sampler")
    seed = _value("seed")
    seed_locked = _value("seed_locked")
    count = _value("count")
    init_image = _value("init_image")
    denoise = _value("denoise")
    lora_weight = _value("lora_weight")
    remove_background = _value("remove_background")
    trim = _value("trim")
    pixel_grid = _value("pixel_grid")
    palette_size = _value("palette_size")
    ip_adapter = _value("ip_adapter")
    image_encoder = _value("image_encoder")
    use_style_references = _value("use_style_references")
    transparent = _value("transparent")
    layerdiffuse = _value("layerdiffuse")
    tiling = _value("tiling")
    engine = _value("engine")  # "local" or "comfyui" (the window's EngineChoice): what the engine refuses differs

    def _set(self, name: str, value) -> None:
        if self._values[name] == value:
            return
        self._values[name] = value
        self.changed.emit(name)
        if name not in _NOT_IN_PROMPT:
            self._schedule_preview()

    # --- size: automatic until the artist sets it ------------------------------------------------

    @property
    def width(self) -> int:
        return self._values["width"]

    @property
    def height(self) -> int:
        return self._values["height"]

    @property
    def size_auto(self) -> bool:
        """True while the size is the style's and the model's to decide (not passed as an override)."""
        return self._values["size_auto"]

    def set_size(self, width: int, height: int) -> None:
        """The artist's size: from now on it is passed to the job as is."""
        self._set("width", int(width))
        self._set("height", int(height))
        self._set("size_auto", False)

    def set_size_auto(self) -> None:
        """Let the style and the model decide the size again (and show the style's)."""
        self._set("size_auto", True)
        self.fill_from_style()

    # --- styles, templates, fields -------------------------------------------------------------

    def reload_styles(self) -> None:
        problems: list[str] = []
        self.styles = list_styles(on_error=lambda folder, exc: problems.append(f"{folder.name}: {exc}"))
        self.styles_changed.emit()
        if self.style_id and self.current_style() is None:
            self.style_id = ""
        if problems:
            self.message.emit("Skipped a broken style pack: " + problems[0])

    def follow_style_rename(self, old_id: str, new_id: str) -> None:
        """A pack renamed in the editor stays this form's style under its new id: nothing the artist
        set is reset (the pack is the same one)."""
        self.styles = list_styles()
        if self.style_id == old_id and any(p.id == new_id for p in self.styles):
            self._set("style_id", new_id)
        self.styles_changed.emit()

    def reload_templates(self) -> None:
        try:
            self.templates = list_templates()
        except UserError as exc:
            self.templates = []
            self.message.emit(str(exc))
        self.templates_changed.emit()
        if self.template_id and self.current_template() is None:
            self.template_id = ""

    @property
    def style_id(self) -> str:
        return self._values["style_id"]

    @style_id.setter
    def style_id(self, value: str) -> None:
        value = value or ""
        if value and not any(p.id == value for p in self.styles):
            value = ""  # an unknown id (a deleted pack) falls back to the prompt alone
        if value == self.style_id:
            return
        self._set("style_id", value)
        pack = self.current_style()
        self._set("lora_weight", pack.loras[0].weight if pack and pack.loras else 1.0)
        self.fields_changed.emit()
        self.fill_from_style()

    @property
    def template_id(self) -> str:
        return self._values["template_id"]

    @template_id.setter
    def template_id(self, value: str) -> None:
        value = value or ""
        if value and not any(t.id == value for t in self.templates):
            value = ""
        if value == self.template_id:
            return
        self._set("template_id", value)
        tpl = self.current_template()
        if tpl is not None and tpl.controlnet in controls.LAYOUT_TYPES:
            self.layout.set_control(tpl.controlnet)  # the template's hint, when a layout can draw it
        self.fields_changed.emit()
        self.fill_from_style()

    def current_style(self) -> StylePack | None:
        return next((p for p in self.styles if p.id == self.style_id), None)

    def current_template(self) -> Template | None:
        return next((t for t in self.templates if t.id == self.template_id), None)

    def has_lora(self) -> bool:
        pack = self.current_style()
        return bool(pack and pack.loras)

    def declared_fields(self) -> dict[str, FieldSpec]:
        """The named fields the template and the style declare (e.g. a button's text), template first."""
        declared: dict[str, FieldSpec] = {}
        for owner in (self.current_template(), self.current_style()):
            if owner is not None:
                for name, spec in owner.fields.items():
                    declared.setdefault(name, spec)
        return declared

    def field(self, name: str) -> str:
        return self._field_values.get(name, "")

    def set_field(self, name: str, text: str) -> None:
        if self._field_values.get(name, "") != text:
            self._field_values[name] = text
            self.changed.emit("fields")
            self._schedule_preview()

    def layout_field(self, name: str) -> str:
        """A field the followed layout fills: its text is the template's "text" (typed once, in the layout)."""
        if name == "text" and self.layout.follow:
            return self.layout.text()
        return ""

    def layout_size_fix(self) -> tuple[int, int] | None:
        """The size that fits the followed layout's shape when the form's does not, else None."""
        from asset_studio.core.request import ASPECT_TOLERANCE, layout_size

        lay = self.layout.layout
        if not self.layout.follow or not lay.width or not lay.height:
            return None
        ratio = lay.width / lay.height
        if abs(ratio - self.width / self.height) <= ASPECT_TOLERANCE * ratio:
            return None
        return layout_size(lay.width, lay.height, self.width, self.height)

    def field_values(self, placeholder: str | None = None) -> dict[str, str]:
        """The declared fields the artist filled; with PLACEHOLDER, every field (defaults, else it)."""
        values = {}
        for name, spec in self.declared_fields().items():
            text = self._field_values.get(name, "").strip() or self.layout_field(name)
            if text:
                values[name] = text
            elif placeholder is not None:
                values[name] = spec.default if spec.default is not None else placeholder
        return values

    def fill_from_style(self) -> None:
        """The parameters the style and template recommend (the artist can then change any)."""
        try:
            job = prepare(AssetRequest(subject=self.subject.strip() or "subject", style=self.current_style(),
                                       template=self.current_template(), fields=self.field_values("text"),
                                       model=self.model or None), preview=True)
        except UserError as exc:
            self.message.emit(str(exc))
            return
        s = job.sampling
        if self.size_auto:
            self._set("width", s.width)
            self._set("height", s.height)
        for name in STYLE_FILLED:
            if name not in self._artist_set:  # a value the artist set is theirs
                owner = job.finishing if name in FINISHING else job if name in JOB_FILLED else s
                self._set(name, getattr(owner, name))
        if not self.seed_locked and self.seed_mode == "style":
            self._set("seed", s.seed)  # the seed the style's policy gives this subject

    def artist_set(self) -> set[str]:
        """The style-filled values the artist changed (kept across style and template changes)."""
        return set(self._artist_set)

    def reset_to_style(self) -> None:
        self._artist_set.clear()
        self._set("size_auto", True)
        self.fill_from_style()

    # --- seed ----------------------------------------------------------------------------------

    # Why unlocked means "new every press": a press of Generate asks for something new. The
    # style's per-asset policy (same subject, same seed) made repeated presses produce identical
    # batches, which reads as a broken button. So unlocked defaults to a new random seed per
    # press; the style's policy stays one choice away (seed_mode "style"), the Create tab says
    # which policy the style has and which rule is in force, and Lock keeps an exact seed.

    @property
    def seed_mode(self) -> str:
        return self._values["seed_mode"]

    @seed_mode.setter
    def seed_mode(self, mode: str) -> None:
        if mode not in SEED_MODES:
            raise ValueError(f"seed mode {mode!r} is not one of {SEED_MODES}")
        self._set("seed_mode", mode)
        if mode == "style" and not self.seed_locked:
            self.fill_from_style()

    def style_seed_policy(self) -> str:
        """The style's seed policy ("per-asset", "fixed", "random"), or "" without a style."""
        pack = self.current_style()
        return pack.defaults.seed_policy if pack is not None else ""

    def seed_rule(self) -> str:
        """One line for the Create tab: which seed the next press uses, and the style's policy."""
        policy = self.style_seed_policy()
        if self.seed_locked:
            return f"Locked: every press uses seed {self.seed}."
        if self.seed_mode == "style" and policy:
            return f"In force: the style's {POLICY_TEXT.get(policy, policy)}."
        rule = "In force: a new random seed on every press"
        return f"{rule}; the style's policy ({policy}) is not used." if policy else rule + "."

    def press_seed(self) -> int | None:
        """The seed override of one press of Generate: the locked seed, a new one, or None (the style's)."""
        if self.seed_locked:
            return int(self.seed)
        if self.seed_mode == "new" or not self.style_seed_policy():
            return random.randrange(MAX_SEED + 1)
        return None

    def random_seed(self) -> None:
        self.seed = random.randrange(MAX_SEED + 1)
        self.seed_locked = True

    def next_seed(self) -> None:
        self.seed = (self.seed + 1) % (MAX_SEED + 1)
        self.seed_locked = True

    def show_seed_used(self, job) -> None:
        """After a generate: an unlocked seed shows the one the style chose, ready to lock."""
        if not self.seed_locked:
            self._set("seed", job.sampling.seed)

    def family_warning(self) -> str:
        """A sentence when the style is made for another model family than the chosen model's
        (an SDXL style on an SD 1.5 model: its LoRAs do not load, its sizes are wrong); else ""."""
        pack, ref = self.current_style(), self.model.strip()
        if pack is None or not ref:
            return ""
        found = _model_family(ref)
        if found is None or found == pack.family:
            return ""
        from asset_studio.core import families

        what = "its LoRAs will not load and its sizes do not fit" if pack.loras else "its sizes do not fit"
        return (f"The style {pack.name} is made for {families.label(pack.family)} models, but this model is "
                f"{families.label(found)}: {what}. Choose a {families.label(pack.family)} model or another style.")

    # --- LoRAs besides the style's (as --lora PATH:WEIGHT on the command line) ----------------------

    @property
    def loras(self) -> list[LoraRef]:
        return list(self._loras)

    def add_lora(self, path: str, weight: float | None = None) -> None:
        """A .safetensors LoRA the artist picked (or PATH:WEIGHT as typed on the command line); the
        file is checked with the job, in one sentence when it does not fit."""
        from asset_studio.core.lora_tags import parse_lora_arg

        path, typed = parse_lora_arg(str(path))
        self._loras.append(LoraRef(path=path, weight=float(typed if weight is None else weight), name=Path(path).stem))
        self.changed.emit("loras")
        self._schedule_preview()

    def set_lora_weight(self, index: int, weight: float) -> None:
        if 0 <= index < len(self._loras) and self._loras[index].weight != weight:
            self._loras[index].weight = round(float(weight), 3)
            self.changed.emit("loras")

    def remove_lora(self, index: int) -> None:
        if 0 <= index < len(self._loras):
            del self._loras[index]
            self.changed.emit("loras")
            self._schedule_preview()

    # --- references: pictures that steer through an IP-Adapter (as --reference on the command line) -----

    @property
    def references(self) -> list[Reference]:
        """The artist's references (the style's come first in the job unless switched off)."""
        return [Reference(r.image, r.scale, r.mode) for r in self._references]

    def style_references(self) -> list[Reference]:
        """The current style's own references (absolute paths), whether or not they are switched on."""
        from asset_studio.core.compose import style_references

        pack = self.current_style()
        return style_references(pack) if pack is not None else []

    def active_references(self) -> list[Reference]:
        """Every reference the next job takes, in its order: the style's (when on), then the artist's."""
        return (self.style_references() if self.use_style_references else []) + self.references

    def style_ip_adapter(self) -> tuple[str | None, str | None]:
        """The IP-Adapter and image encoder the current style names (None, None without)."""
        from asset_studio.core.compose import style_ip_adapter

        pack = self.current_style()
        return style_ip_adapter(pack) if pack is not None else (None, None)

    def add_references(self, paths, scale: float = Reference.scale, mode: str = Reference.mode) -> int:
        """Add pictures the artist dropped or picked; returns how many were added. A file that is not a
        readable picture, or one past the most a job takes, is skipped with a sentence."""
        from PIL import Image, UnidentifiedImageError

        added = 0
        for path in paths:
            path = str(path)
            if len(self.active_references()) >= MAX_REFERENCES:
                self.message.emit(f"A job takes at most {MAX_REFERENCES} reference images; {Path(path).name} "
                                  "was not added.")
                break
            try:
                with Image.open(path) as im:
                    im.size  # the header only: the job reads the picture
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
                self.message.emit(f"{Path(path).name} is not a picture Asset Studio can read; it was not added.")
                continue
            self._references.append(Reference(path, round(float(scale), 3), mode))
            added += 1
        if added:
            self.changed.emit("references")
        return added

    def set_reference_scale(self, index: int, scale: float) -> None:
        if 0 <= index < len(self._references) and self._references[index].scale != round(float(scale), 3):
            self._references[index].scale = round(float(scale), 3)
            self.changed.emit("references")

    def set_reference_mode(self, index: int, mode: str) -> None:
        if mode not in ("full", "style"):
            raise ValueError(f"reference mode {mode!r}")
        if 0 <= index < len(self._references) and self._references[index].mode != mode:
            self._references[index].mode = mode
            self.changed.emit("references")

    def remove_reference(self, index: int) -> None:
        if 0 <= index < len(self._references):
            del self._references[index]
            self.changed.emit("references")

    def keep_in_style(self, index: int) -> bool:
        """Copy the artist's reference INDEX into the current style pack (its references/ folder), so every
        asset of the style starts from it; from then on it is listed as the style's. The adapter chosen
        here goes with it when the pack names none (a catalog id: a path on this computer would not travel)."""
        from asset_studio.core.pack_references import add_reference
        from asset_studio.core.stylepack import ID_PATTERN

        pack = self.current_style()
        if pack is None or not 0 <= index < len(self._references):
            self.message.emit("Choose a style pack first: the reference is kept in it.")
            return False
        ref = self._references[index]
        adapter = self.ip_adapter.strip()
        adapter = adapter if adapter and not pack.ip_adapter and ID_PATTERN.fullmatch(adapter) else None
        try:
            add_reference(pack, ref.image, ref.scale, ref.mode, ip_adapter=adapter)
        except UserError as exc:
            self.message.emit(str(exc))
            return False
        del self._references[index]
        self.use_style_references = True  # it is the style's now: switched off, it would be lost from this run
        self.reload_styles()  # the pack as saved, with its new reference
        self.changed.emit("references")
        self.message.emit(f"{Path(ref.image).name} is now a reference of the style {pack.name}.")
        return True

    # --- transparent generation (LayerDiffuse, as --transparent [--layerdiffuse] on the command line) ------

    def layerdiffuse_default(self) -> str:
        """The catalog's LayerDiffuse weights for the chosen model's family ("" when the family is unknown
        here or has none): what an empty weights box means."""
        from asset_studio.engine.layerdiffuse import DEFAULT_IDS  # plain data: the module imports torch lazily

        family = _model_family(self.model.strip()) if self.model.strip() else None
        if family is None and self.current_style() is not None:
            family = self.current_style().family
        return DEFAULT_IDS.get(family or "", "")

    def transparency_conflict(self) -> str:
        """Why the engine would refuse transparent generation with the rest of this form, in one sentence
        (core.job.check_transparency's, and SD 1.5's with references); "" when it would run or is off."""
        from dataclasses import replace

        from asset_studio.core.job import Transparency, check_transparency

        if not self.transparent:
            return ""
        try:
            job = prepare(replace(self.to_request(with_layout=False), transparent=False, layerdiffuse=None),
                          preview=True)
            job.transparency = Transparency()
            check_transparency(job)
        except UserError as exc:
            text = str(exc)
            return text if "Transparent generation" in text else ""
        if self.active_references() and self.layerdiffuse_default() == "layerdiffuse-sd15":
            from asset_studio.core.job import TRANSPARENT_WITH_REFERENCES

            return TRANSPARENT_WITH_REFERENCES
        return ""

    # --- seamless tiling (as --tile x|y|both on the command line) ---------------------------------------

    def tiling_conflict(self) -> str:
        """Why the engine would refuse seamless tiling with the rest of this form, in one sentence (the
        engine's own: core.job's checks and a ComfyUI server's); "" when it would run or is off."""
        from dataclasses import replace

        from asset_studio.core.job import Transparency, check_kept_image, check_tiled_upscale, check_transparency

        if self.tiling == "off":
            return ""
        try:
            job = prepare(replace(self.to_request(with_layout=False), transparent=False, layerdiffuse=None),
                          preview=True)
        except UserError:
            return ""  # the form has another problem: Generate says that one
        if self.transparent:
            job.transparency = Transparency()
        checks = [check_transparency]
        if job.passes.tiled_upscale is not None:
            checks.append(check_tiled_upscale)
        if job.init is not None and job.init.kept:
            checks.append(check_kept_image)
        if self.engine == "comfyui":
            from asset_studio.remote.graph import unsupported

            def check_comfyui(j):
                text = unsupported(j)
                if text:
                    raise UserError(text)

            checks.append(check_comfyui)
        for check in checks:  # a check that fails only with tiling on is tiling's conflict
            try:
                check(replace(job, tiling="off"))
            except UserError:
                continue
            try:
                check(job)
            except UserError as exc:
                return str(exc)
        return ""

    # --- the request ---------------------------------------------------------------------------

    def to_request(self, with_layout: bool = True, seed: int | None = None) -> AssetRequest:
        """The AssetRequest this form describes; raises UserError for a layout that cannot be followed.
        with_layout=False leaves the Layout tab out (the prompt preview does not depend on it).
        SEED: the seed of this press (press_seed()); else the locked seed, or the style's."""
        subject = self.subject.strip()
        extra = " ".join(self.extra_prompt.split())
        pack, tpl = self.current_style(), self.current_template()
        if not subject and pack is None and tpl is None and extra:
            subject, extra = extra, ""  # a plain prompt with no style: the prompt is the subject
        init = self.init_image.strip()
        overrides = Overrides(
            negative=" ".join(self.negative.split()) or None,
            width=None if self.size_auto else self.width, height=None if self.size_auto else self.height,
            steps=self.steps, cfg_scale=round(self.cfg_scale, 2), sampler=self.sampler,
            seed=seed if seed is not None else (int(self.seed) if self.seed_locked else None), count=self.count,
            init_image=init or None, denoise=round(self.denoise, 2) if init else None,
        )
        lora_scale = None
        if pack is not None and pack.loras and self.lora_weight != pack.loras[0].weight:
            lora_scale = self.lora_weight / (pack.loras[0].weight or 1.0)
        # Finishing the artist changed in the Create tab for this run; the rest stays the style's.
        overrides.finishing = {name: self._values[name] for name in FINISHING if name in self._artist_set}
        if "tiling" in self._artist_set:  # else the template's, as without --tile
            overrides.tiling = self.tiling
        self.passes.contribute(overrides)
        request = AssetRequest(subject=subject, style=pack, template=tpl, fields=self.field_values(),
                               model=self.model.strip() or None, extra_prompt=extra, overrides=overrides,
                               lora_scale=lora_scale, loras=[LoraRef(l.path, l.weight, l.name) for l in self.loras],
                               references=self.references, style_references=bool(self.use_style_references),
                               ip_adapter=self.ip_adapter.strip() or None,
                               image_encoder=self.image_encoder.strip() or None,
                               transparent=bool(self.transparent),
                               layerdiffuse=(self.layerdiffuse.strip() or None) if self.transparent else None)
        if with_layout:
            self.layout.contribute(request)
            self.pose.contribute(request)
        return request

    def build_job(self, out_dir=None):
        """The job to run (control images rendered into OUT/.controls); raises UserError with the sentence."""
        return prepare(self.to_request(seed=self.press_seed()), out_dir)

    def build_runs(self, out_dir):
        """The jobs of one press of Generate (pose_link.Run): one, or one per pose of a pose set."""
        return self.pose.runs(self.to_request(seed=self.press_seed()), out_dir)

    # --- the prompt preview ----------------------------------------------------------------------

    @property
    def prompt_preview(self) -> str:
        """'→ the composed prompt', an error sentence, or '' without a subject. Up to date once
        PREVIEW_DELAY_MS have passed after the last change (flush_preview() forces it)."""
        return self._preview

    def preview_pending(self) -> bool:
        return self._preview_stale

    def flush_preview(self) -> None:
        if self._preview_stale:
            self._preview_timer.stop()
            self._compute_preview()

    def _schedule_preview(self) -> None:
        self._preview_stale = True
        if QCoreApplication.instance() is not None:  # no event loop (a script, a CLI test): flush_preview() computes it
            self._preview_timer.start()  # restarted by every change of a burst: computed once, after it

    def _compute_preview(self) -> None:
        self._preview_stale = False
        tokens = None
        if not self.subject.strip():
            text = ""
        else:
            try:
                prompt = prepare(self.to_request(with_layout=False), preview=True).prompt.text
                text = f"→ {prompt}"
                tokens = count_tokens(prompt, wait=False)
            except UserError as exc:
                text = str(exc)
        if tokens != self.tokens:
            self.tokens = tokens
            self.tokens_changed.emit(tokens)
        if text != self._preview:
            self._preview = text
            self.prompt_preview_changed.emit(text)
