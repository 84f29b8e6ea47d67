"""The Animate tab's state: what moves (AnimateDiff with a motion adapter, or Stable Video
Diffusion from a picture) → an AnimationRequest the same way `asset-studio animate` builds it.

The prompt side is the Create tab's: the style, template, subject, model, sampling and LoRAs come
from the shared CreateForm (`create.to_request()`), so both tabs describe the asset once. This
form adds the animation: core/animation.animatediff_settings / svd_settings make the job's
`Animation` (the command's own checks and sentences), and core/request.prepare() the job.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from asset_studio.core.job import DEFAULT_PREVIEWS, LoraRef
from asset_studio.core.request import AssetRequest, ControlRequest, Overrides, prepare
from asset_studio.gui.model.create_form import CreateForm

MODES = ("animatediff", "svd")
DEFAULTS = {
    "mode": "animatediff", "frames": 16, "fps": 8.0, "loop": False, "motion_adapter": "", "context": 0,
    "pose_set": "", "controlnet": "", "control_scale": 1.0,
    # image to video (Stable Video Diffusion)
    "svd_model": "", "svd_image": "", "motion": 0.5, "noise_aug": 0.02, "decode_chunk": 8, "svd_cfg": 3.0,
    "previews": tuple(DEFAULT_PREVIEWS),
}


def _value(name: str):
    def get(self):
        return self._values[name]

    def put(self, value):
        self._set(name, value)

    return property(get, put)


class AnimateForm(QObject):
    changed = Signal(str)  # the name of the value that changed

    def __init__(self, create: CreateForm, parent: QObject | None = None):
        super().__init__(parent)
        self.create = create
        self._values = dict(DEFAULTS)
        self._motion_loras: list[LoraRef] = []

    mode = _value("mode")
    frames = _value("frames")
    fps = _value("fps")
    loop = _value("loop")
    motion_adapter = _value("motion_adapter")
    context = _value("context")
    pose_set = _value("pose_set")
    controlnet = _value("controlnet")
    control_scale = _value("control_scale")
    svd_model = _value("svd_model")
    svd_image = _value("svd_image")
    motion = _value("motion")
    noise_aug = _value("noise_aug")
    decode_chunk = _value("decode_chunk")
    svd_cfg = _value("svd_cfg")
    previews = _value("previews")

    def _set(self, name: str, value) -> None:
        if name == "mode" and value not in MODES:
            raise ValueError(f"mode {value!r} is not one of {MODES}")
        if self._values[name] != value:
            self._values[name] = value
            self.changed.emit(name)

    # --- motion LoRAs (--motion-lora PATH:W) ------------------------------------------------------

    @property
    def motion_loras(self) -> list[LoraRef]:
        return [LoraRef(l.path, l.weight, l.name) for l in self._motion_loras]

    def add_motion_lora(self, path: str, weight: float | None = None) -> None:
        from asset_studio.core.lora_tags import parse_lora_arg

        path, typed = parse_lora_arg(str(path))
        self._motion_loras.append(LoraRef(path=path, weight=float(typed if weight is None else weight),
                                          name=Path(path).stem))
        self.changed.emit("motion_loras")

    def set_motion_lora_weight(self, index: int, weight: float) -> None:
        if 0 <= index < len(self._motion_loras) and self._motion_loras[index].weight != weight:
            self._motion_loras[index].weight = round(float(weight), 3)
            self.changed.emit("motion_loras")

    def remove_motion_lora(self, index: int) -> None:
        if 0 <= index < len(self._motion_loras):
            del self._motion_loras[index]
            self.changed.emit("motion_loras")

    # --- the request ---------------------------------------------------------------------------------

    def to_request(self, seed: int | None = None) -> AssetRequest:
        """The AssetRequest `asset-studio animate` would build from the same choices; one sentence
        (UserError) for choices that do not go together."""
        from asset_studio.core.animation import animatediff_settings, svd_settings

        c = self.create
        if self.mode == "svd":
            from asset_studio.core.animation import fit_size
            from asset_studio.core.images import read_image

            image, model = self.svd_image.strip(), self.svd_model.strip()
            anim = svd_settings(image=image, svd=model, frames=self.frames, fps=self.fps, motion=self.motion,
                                noise_aug=self.noise_aug, decode_chunk=self.decode_chunk, previews=self.previews)
            width, height = fit_size(*read_image(image, "RGB", what="The picture").size)
            # No style or template: SVD takes no prompt, LoRAs or ControlNets; the subject names the files.
            subject = c.subject.strip() or Path(image).stem
            overrides = Overrides(width=width, height=height, steps=c.steps, cfg_scale=round(self.svd_cfg, 2),
                                  seed=seed if seed is not None else (int(c.seed) if c.seed_locked else None),
                                  count=c.count, init_image=image)
            return AssetRequest(subject=subject, model=model, overrides=overrides, animation=anim, output="animation")
        request = c.to_request(with_layout=False, seed=seed)
        anim = animatediff_settings(motion_adapter=self.motion_adapter.strip(), frames=self.frames, fps=self.fps,
                                    loop=self.loop, motion_loras=self.motion_loras, context=self.context,
                                    pose_set=self.pose_set.strip(),
                                    controlnets=[self.controlnet.strip()] if self.controlnet.strip() else [],
                                    has_model=bool(request.model or request.style), previews=self.previews)
        # The Create tab's start image is its img2img and its seamless choice is for still textures;
        # an animation starts from noise and does not tile (a template's tiling is still refused by name).
        request.overrides.init_image = request.overrides.denoise = None
        request.overrides.tiling = None
        request.animation, request.output = anim, "animation"
        request.pose_frames = self.pose_set.strip()
        request.controls = ([ControlRequest(model=self.controlnet.strip(), type="pose",
                                            scale=round(float(self.control_scale), 2))]
                            if self.controlnet.strip() else [])
        return request

    def build_job(self, out_dir=None):
        """The job to run (pose control frames drawn into OUT/.controls); raises UserError."""
        return prepare(self.to_request(seed=self.create.press_seed()), out_dir)
