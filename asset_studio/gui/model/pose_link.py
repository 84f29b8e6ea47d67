"""What the Create tab generates with from the Pose tab: one pose, or a pose set (one image per pose),
and the OpenPose ControlNet that follows it.

It fills the same AssetRequest fields the CLI's --pose / --pose-set / --controlnet do, and a set
becomes its jobs through core.pose_sets.pose_set_jobs, the function `generate --pose-set` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from asset_studio.core.pose import Pose
from asset_studio.core.pose_sets import NamedPose, fresh_folder, output_name, pose_set_jobs
from asset_studio.core.request import ControlRequest
from asset_studio.errors import UserError

NO_CONTROLNET = ("Choose an OpenPose ControlNet for the pose on the Create tab's pose badge (pick one, Browse… "
                 "or Get one…), or remove the pose.")


@dataclass
class Run:
    """One job to queue: where its images go (None: the output folder) and their file name."""

    job: object
    folder: Path | None = None
    name: str | None = None


def looks_like_openpose(ref: str) -> bool:
    return "pose" in Path(str(ref)).name.lower()  # openpose, dwpose, control_v11p_sd15_openpose


class PoseLink(QObject):
    changed = Signal(str)  # what changed: pose, controlnet, scale

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pose: Pose | None = None
        self._frames: list[NamedPose] = []
        self.label = ""  # the pose's or the set's name, as the badge shows it
        self._controlnet = ""
        self._scale = 1.0

    # --- what is used ----------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """"pose", "set" or "" (nothing: generation does not follow a pose)."""
        return "pose" if self._pose is not None else "set" if self._frames else ""

    @property
    def pose(self) -> Pose | None:
        return self._pose.copy() if self._pose is not None else None

    @property
    def frames(self) -> list[NamedPose]:
        return [NamedPose(f.name, f.pose.copy(), f.view) for f in self._frames]

    def use_pose(self, pose: Pose, label: str = "pose") -> None:
        if not pose.people:
            raise UserError("The pose has nobody in it: add a person first.")
        self._pose, self._frames, self.label = pose.copy(), [], label or "pose"
        self.changed.emit("pose")

    def use_set(self, frames: list[NamedPose], label: str) -> None:
        if not frames:
            raise UserError("The pose set is empty: choose a set or open a folder of poses first.")
        empty = next((f.name for f in frames if not f.pose.people), None)
        if empty is not None:
            raise UserError(f"The pose {empty} of the set has nobody in it.")
        self._pose, self.label = None, label or "poses"
        self._frames = [NamedPose(f.name, f.pose.copy(), f.view) for f in frames]
        self.changed.emit("pose")

    def is_current(self, pose: Pose, frames: list[NamedPose]) -> bool:
        """Whether what Create follows is still what the Pose tab shows (POSE, or the set's FRAMES):
        Create keeps what was handed to it, so later edits need another Use."""
        if self.kind == "pose":
            return self._pose == pose
        if self.kind == "set":
            return [(f.name, f.pose) for f in self._frames] == [(f.name, f.pose) for f in frames]
        return True

    def clear(self) -> None:
        if self.kind:
            self._pose, self._frames, self.label = None, [], ""
            self.changed.emit("pose")

    @property
    def controlnet(self) -> str:
        return self._controlnet

    @controlnet.setter
    def controlnet(self, ref: str) -> None:
        ref = str(ref or "").strip()
        if ref != self._controlnet:
            self._controlnet = ref
            self.changed.emit("controlnet")

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        value = round(float(value), 3)
        if value != self._scale:
            self._scale = value
            self.changed.emit("scale")

    def offer_controlnets(self, refs: list[str]) -> None:
        """With none chosen yet, the one installed ControlNet named for OpenPose is taken."""
        if not self._controlnet:
            found = [r for r in refs if looks_like_openpose(r)]
            if found:
                self.controlnet = found[0]

    def summary(self) -> str:
        """The badge's sentence."""
        if not self.kind:
            return ""
        if self.kind == "pose":
            people = len(self._pose.people)
            what = f"Pose {self.label} ({people} {'person' if people == 1 else 'people'})"
        else:
            what = f"Pose set {self.label}: one image per pose ({len(self._frames)})"
        if not self._controlnet:
            return f"{what}. No OpenPose ControlNet yet: pick one, browse (…) or Get one…"
        return f"{what} through the ControlNet {Path(self._controlnet).name}"

    # --- the request -----------------------------------------------------------------------------

    def _control(self) -> ControlRequest:
        if not self._controlnet:
            raise UserError(NO_CONTROLNET)
        return ControlRequest(model=self._controlnet, type="pose", scale=self._scale)

    def contribute(self, request) -> None:
        """A single pose: REQUEST.pose and an OpenPose unit after any the layout added (what --pose does)."""
        if self.kind == "pose":
            request.pose = self._pose.copy()
            request.pose_name = self.label
            request.controls = [*request.controls, self._control()]
        elif self.kind == "set":  # each pose is added per job by runs(); the unit is the same for all
            request.controls = [*request.controls, self._control()]

    def runs(self, request, out_dir: str | Path) -> list[Run]:
        """The jobs of one press: a pose set makes one per pose in a fresh folder of its own, named by
        pose and sharing the first one's seed, exactly as `generate --pose-set` does."""
        if self.kind != "set":
            from asset_studio.core.request import prepare

            return [Run(prepare(request, out_dir))]
        from asset_studio.core.library import slugify

        slug = slugify(request.subject or "pose")
        jobs = pose_set_jobs(request, self._frames, out_dir)
        folder = fresh_folder(Path(out_dir) / f"{slug}-{self.label}")
        folder.mkdir(parents=True)  # taken now: a second press before this one runs gets the next name
        return [Run(job, folder, output_name(slug, pose.name)) for pose, job in jobs]
