"""Pose sets: ordered, named poses that one job turns into one image each (a turnaround, a walk cycle).

A set is a built-in name (SETS below) or a folder of the artist's OpenPose JSON files, taken in
natural order (walk2 before walk10). Each pose carries the view word for a prompt's ``{view}`` field (core/placeholders fills it).
A folder may hold ORDER_FILE, the pose names one per line, when its order is not the files' natural
order (a turnaround saved from the window: front, three-quarter, side, back).
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
ORDER_FILE = "order.txt"
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
    files = _ordered(folder, files)
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



def _ordered(folder: Path, files: list[Path]) -> list[Path]:
    """FILES in the order ORDER_FILE lists (by pose name); the files it does not name follow in natural order."""
    order_file = folder / ORDER_FILE
    if not order_file.is_file() or order_file.stat().st_size > 64 * 1024:
        return files
    try:
        wanted = [pose_name(line) for line in order_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return files
    rank = {name: i for i, name in reversed(list(enumerate(wanted)))}
    return sorted(files, key=lambda p: rank.get(pose_name(p.stem), len(rank)))  # stable: the rest keep their order


def save_pose_set(poses: list[NamedPose], folder: str | os.PathLike, replace: bool = False) -> list[Path]:
    """POSES as FOLDER/<name>.json plus ORDER_FILE, so `generate --pose-set FOLDER` and the window read
    the same set back in the same order. Pose files of other names in FOLDER would join the set, so
    they are refused; files of the same names are replaced only with REPLACE."""
    from asset_studio.core.outputs import text_writer, write_set

    folder = Path(folder)
    if not poses:
        raise UserError("The pose set is empty: there is nothing to save.")
    if len(poses) > MAX_POSES:
        raise UserError(f"A pose set holds at most {MAX_POSES} poses, not {len(poses)}.")
    names = [pose_name(p.name) for p in poses]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise UserError(f"Two poses of the set are named '{twice}': rename one.")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder.")
    targets = {folder / f"{n}.json" for n in names}
    if folder.is_dir():
        others = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".json" and p not in targets
                        and not p.name.startswith("."))
        if others:
            raise UserError(f"The folder {folder} already holds other pose files ({', '.join(others[:3])}), which would "
                            "join the set: choose an empty folder.")
        taken = sorted(p.name for p in targets if p.exists())
        if taken and not replace:
            raise UserError(f"The folder {folder} already holds {', '.join(taken[:3])}: agree to replace them, "
                            "or choose an empty folder.")
    folder.mkdir(parents=True, exist_ok=True)
    files = [(folder / f"{n}.json", text_writer(p.pose.to_json() + "\n")) for n, p in zip(names, poses)]
    files.append((folder / ORDER_FILE, text_writer("\n".join(names) + "\n")))
    return write_set(files)


def set_label(name_or_dir: str | os.PathLike) -> str:
    """The set's name in folder and file names: walk-8, or the folder's own name."""
    return Path(str(name_or_dir).strip().rstrip("/\\")).name.lower() or "poses"


def fresh_folder(base: Path) -> Path:
    """BASE, or BASE-2, BASE-3 … when taken: a new pose set never mixes with an earlier one."""
    candidate, n = Path(base), 1
    while candidate.exists():
        n += 1
        candidate = Path(base).with_name(f"{Path(base).name}-{n}")
    return candidate


def pose_set_jobs(request, poses: list[NamedPose], out_dir, download: bool = False) -> list:
    """One job per pose of a set, through prepare(): the same request with each pose and its view
    words, every pose with the first one's seed (the same character, not a new one per pose).
    Returns [(NamedPose, GenerationJob)]; the CLI and the window both run these."""
    from dataclasses import replace as copy_with

    from asset_studio.core.request import prepare

    jobs: list = []
    for pose in poses:
        one = copy_with(request, pose=pose.pose, pose_name=pose.name, view=pose.view)
        if jobs:
            one.overrides = copy_with(request.overrides, seed=jobs[0][1].sampling.seed)
        job = prepare(one, out_dir, download=download)
        if job.sampling.count != 1:
            raise UserError("A pose set makes one image per pose: leave out --count.")
        jobs.append((pose, job))
    return jobs
