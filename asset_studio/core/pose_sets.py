"""Pose sets: ordered, named poses that one job turns into one image each (a turnaround, a walk cycle).

A set is a built-in name (SETS below) or a folder of the artist's OpenPose JSON files, taken in
natural order (walk2 before walk10). Each pose carries the view word for a prompt's ``{view}`` field (core/placeholders fills it).
Output files are named ``<subject>-<pose>.png``; numbered poses (walk-0, walk-1 ...) end in their
number, which is what core/sheet.find_animations reads as the frames of one animation, so
`asset-studio sheet` packs a generated walk cycle as an animation without renaming anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from asset_studio.core.pose import DEFAULT_SIZE, Pose, guess_view, load_pose, preset, preset_view_word
from asset_studio.core.sheet import natural_key
from asset_studio.errors import UserError

MAX_POSES = 256
_NAME = re.compile(r"[^a-z0-9]+")


@dataclass
class NamedPose:
    name: str  # file-name safe: lowercase letters, digits and hyphens
    pose: Pose
    view: str  # "front view", "side view" ... for the prompt's {view}


SETS: dict[str, tuple[str, ...]] = {
    "turnaround-4": ("front", "three-quarter-right", "right", "back"),
    "turnaround-8": ("front", "three-quarter-right", "right", "back-three-quarter-right", "back",
                     "back-three-quarter-left", "left", "three-quarter-left"),
    "walk-8": tuple(f"walk-{i}" for i in range(8)),
    "run-8": tuple(f"run-{i}" for i in range(8)),
}
# The short names a turnaround's files get (knight-side.png rather than knight-right.png).
_TURNAROUND_NAMES = {"three-quarter-right": "three-quarter", "right": "side"}


def set_names() -> list[str]:
    return list(SETS)


def load_pose_set(name_or_dir: str | os.PathLike, size: tuple[int, int] = DEFAULT_SIZE) -> list[NamedPose]:
    """The poses of a built-in set (at SIZE) or of a folder of pose JSON files (at their own size)."""
    key = str(name_or_dir).strip().lower()
    if key in SETS:
        names = SETS[key]
        short = _TURNAROUND_NAMES if key == "turnaround-4" else {}
        return [NamedPose(short.get(n, n), preset(n, *size), preset_view_word(n)) for n in names]
    folder = Path(name_or_dir)
    if not folder.is_dir():
        raise UserError(f"There is no pose set {str(name_or_dir)!r}: name one of {', '.join(SETS)} "
                        "or a folder of OpenPose JSON files.")
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".json" and p.is_file()
                    and not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    if not files:
        raise UserError(f"The pose set folder {folder} holds no .json pose files.")
    if len(files) > MAX_POSES:
        raise UserError(f"The pose set folder {folder} holds {len(files)} poses; at most {MAX_POSES} are allowed.")
    poses, seen = [], {}
    for path in files:
        name = pose_name(path.stem)
        if name in seen:
            raise UserError(f"The poses {seen[name]} and {path.name} would both make files named '{name}': rename one.")
        seen[name] = path.name
        pose = load_pose(path)
        view = guess_view(pose.people[0]) if pose.people else "front view"
        poses.append(NamedPose(name, pose, view))
    return poses


def pose_name(text: str) -> str:
    """TEXT as a pose name: lowercase ASCII letters and digits joined by hyphens ("Walk 03" -> "walk-03")."""
    name = _NAME.sub("-", text.lower()).strip("-")[:60].strip("-")
    return name or "pose"


def output_name(subject_slug: str, pose_name_: str, ext: str = "png") -> str:
    """The file one pose of a set becomes: knight-front.png, knight-walk-3.png."""
    subject = pose_name(subject_slug) if subject_slug else ""
    stem = f"{subject}-{pose_name(pose_name_)}" if subject else pose_name(pose_name_)
    return f"{stem}.{ext}"

