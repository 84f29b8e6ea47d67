"""Body poses: the 18-keypoint OpenPose skeleton, its JSON file form, mirroring, scaling and presets.

A pose is what ControlNet's OpenPose models follow: one or more people, each 18 keypoints in
the OpenPose / COCO order (KEYPOINTS below), any of which may be hidden. Coordinates are canvas
pixels, y down. Files are the OpenPose JSON other editors read and write::

    {"canvas_width": 512, "canvas_height": 512,
     "people": [{"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...]}]}

A triple with confidence 0 is a hidden joint. Reading also takes coordinates normalised to 0-1
(controlnet-aux writes those) and OpenPose's own 25-keypoint BODY_25 lists (mapped to these 18).
Pose files come from strangers, so reading is strict: size and count limits, finite numbers, every
visible joint on the canvas, and one sentence naming the person and the joint when something is off.

Presets are built from one 3-D stick figure turned about its vertical axis (front, three-quarter,
side, back) and posed by joint angles (walk and run cycles), then projected orthographically, so
every view has the same proportions and a face joint hides when it turns away, as a detector would
report it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from asset_studio.errors import UserError

KEYPOINTS = (
    "nose", "neck",
    "right shoulder", "right elbow", "right wrist",
    "left shoulder", "left elbow", "left wrist",
    "right hip", "right knee", "right ankle",
    "left hip", "left knee", "left ankle",
    "right eye", "left eye", "right ear", "left ear",
)
N_KEYPOINTS = len(KEYPOINTS)
# Index pairs that trade places when a pose is mirrored.
MIRROR_PAIRS = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17))
# OpenPose BODY_25 -> these 18: BODY_25 adds a mid-hip (8) and six foot points (19-24).
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)

MAX_FILE_BYTES = 2 * 1024 * 1024
MIN_SIDE = 8
MAX_SIDE = 4096
MAX_PEOPLE = 64
MAX_EXTRA_VALUES = 10_000  # face / hand keypoint lists we accept but do not use
DEFAULT_SIZE = (512, 512)

Point = tuple[float, float]


@dataclass
class Person:
    """One skeleton: N_KEYPOINTS canvas points in KEYPOINTS order; None is a hidden joint."""

    keypoints: list[Point | None] = field(default_factory=lambda: [None] * N_KEYPOINTS)

    def __post_init__(self):
        if len(self.keypoints) != N_KEYPOINTS:
            raise ValueError(f"a person has {N_KEYPOINTS} keypoints, not {len(self.keypoints)}")

    def visible(self) -> list[tuple[int, Point]]:
        return [(i, p) for i, p in enumerate(self.keypoints) if p is not None]

    def hide(self, name: str) -> None:
        self.keypoints[keypoint_index(name)] = None

    def point(self, name: str) -> Point | None:
        return self.keypoints[keypoint_index(name)]


@dataclass
class Pose:
    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]
    people: list[Person] = field(default_factory=list)

    def to_dict(self) -> dict:
        def flat(person: Person) -> list[float]:
            out: list[float] = []
            for p in person.keypoints:
                out += [_num(p[0]), _num(p[1]), 1] if p is not None else [0, 0, 0]
            return out

        return {
            "canvas_width": self.width,
            "canvas_height": self.height,
            "people": [{"pose_keypoints_2d": flat(p)} for p in self.people],
        }

    def to_json(self) -> str:
        """The OpenPose JSON, one line per person so a file stays readable in a text editor."""
        d = self.to_dict()
        people = ",\n".join(f"  {json.dumps(p)}" for p in d["people"])
        return (f'{{"canvas_width": {d["canvas_width"]}, "canvas_height": {d["canvas_height"]},\n'
                f' "people": [\n{people}\n ]}}' if people else json.dumps(d))

    def copy(self) -> "Pose":
        return Pose(self.width, self.height, [Person(list(p.keypoints)) for p in self.people])


def keypoint_index(name: str) -> int:
    key = name.replace("_", " ").replace("-", " ").strip().lower()
    try:
        return KEYPOINTS.index(key)
    except ValueError:
        raise UserError(f"There is no keypoint {name!r}; the skeleton has {', '.join(KEYPOINTS)}.") from None


def _num(v: float) -> float | int:
    r = round(float(v), 2)
    return int(r) if r.is_integer() else r


# ---- reading -----------------------------------------------------------------------------------


def pose_from_dict(data, source: str = "The pose") -> Pose:
    """A checked Pose from parsed OpenPose JSON; UserError names what is wrong and where."""
    if not isinstance(data, dict):
        raise UserError(f"{source} must be a JSON object with canvas_width, canvas_height and people.")
    width = _side(data.get("canvas_width"), f"{source}'s canvas_width")
    height = _side(data.get("canvas_height"), f"{source}'s canvas_height")
    people = data.get("people")
    if not isinstance(people, list):
        raise UserError(f"{source} needs 'people': a list of people, each with pose_keypoints_2d.")
    if len(people) > MAX_PEOPLE:
        raise UserError(f"{source} has {len(people)} people; at most {MAX_PEOPLE} are allowed.")
    raw = []
    for n, item in enumerate(people, 1):
        where = f"{source}'s person {n}"
        if not isinstance(item, dict):
            raise UserError(f"{where} must be an object with pose_keypoints_2d.")
        for key in ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d"):
            extra = item.get(key)
            if extra is not None and (not isinstance(extra, list) or len(extra) > MAX_EXTRA_VALUES):
                raise UserError(f"{where}'s {key} must be a list of at most {MAX_EXTRA_VALUES} numbers.")
        raw.append(_triples(item.get("pose_keypoints_2d"), where))
    # controlnet-aux writes 0-1 coordinates; OpenPose and the editors write pixels.
    values = [v for person in raw for x, y, c in person if c > 0 for v in (x, y)]
    normalised = bool(values) and max(values) <= 1.0 and min(width, height) > 2
    result = []
    for n, person in enumerate(raw, 1):
        points: list[Point | None] = []
        for k, (x, y, c) in enumerate(person):
            if c <= 0:
                points.append(None)
                continue
            if normalised:
                x, y = x * width, y * height
            if not (0 <= x <= width and 0 <= y <= height):
                raise UserError(f"{source}'s person {n} has its {KEYPOINTS[k]} at ({_num(x)}, {_num(y)}), "
                                f"outside the {width}x{height} canvas.")
            points.append((x, y))
        result.append(Person(points))
    return Pose(width, height, result)


def _side(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not MIN_SIDE <= value <= MAX_SIDE:
        raise UserError(f"{what} must be a whole number of pixels from {MIN_SIDE} to {MAX_SIDE}.")
    return int(value)


def _triples(values, where: str) -> list[tuple[float, float, float]]:
    if values is None or values == []:  # a person the other editor keeps only for hands or face
        return [(0.0, 0.0, 0.0)] * N_KEYPOINTS
    if not isinstance(values, list) or len(values) not in (3 * N_KEYPOINTS, 3 * 25):
        length = len(values) if isinstance(values, list) else type(values).__name__
        raise UserError(f"{where}'s pose_keypoints_2d must be {3 * N_KEYPOINTS} numbers (18 x, y, confidence "
                        f"triples), or 75 for BODY_25; it has {length}.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise UserError(f"{where}'s pose_keypoints_2d holds {json.dumps(v)[:40]}, which is not a number.")
        if not math.isfinite(v):
            raise UserError(f"{where}'s pose_keypoints_2d holds {v}, which is not a finite number.")
    triples = [(float(values[i]), float(values[i + 1]), float(values[i + 2])) for i in range(0, len(values), 3)]
    if len(triples) == 25:
        triples = [triples[i] for i in BODY25_TO_COCO18]
    return triples


def parse_pose_json(text: str, source: str = "The pose") -> Pose:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # json recurses per nesting level; a stranger's file may nest 100000 deep
        raise UserError(f"{source} nests too deeply to be a pose file.") from None
    except ValueError as exc:  # bad JSON, NaN/Infinity, or an integer of thousands of digits
        raise UserError(f"{source} is not valid JSON ({exc}).") from None
    return pose_from_dict(data, source)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def load_pose(path: str | os.PathLike) -> Pose:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"The pose file {path} does not exist.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UserError(f"The pose file {path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"The pose file {path} is not UTF-8 text.") from None
    return parse_pose_json(text, f"The pose {path.name}")


def save_pose(pose: Pose, path: str | os.PathLike) -> Path:
    """Write atomically, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(pose.to_json() + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# ---- transformations ---------------------------------------------------------------------------


def mirrored(pose: Pose) -> Pose:
    """POSE flipped left to right: x -> width - x, and each left joint trades names with its right twin."""
    people = []
    for person in pose.people:
        pts = [(pose.width - p[0], p[1]) if p is not None else None for p in person.keypoints]
        for a, b in MIRROR_PAIRS:
            pts[a], pts[b] = pts[b], pts[a]
        people.append(Person(pts))
    return Pose(pose.width, pose.height, people)


def scaled(pose: Pose, width: int, height: int, mode: str = "fit") -> Pose:
    """POSE on a WIDTH x HEIGHT canvas.

    "fit" scales evenly and centres, so bodies keep their proportions (and the frames of a cycle
    stay aligned with each other); "stretch" scales each axis to the new side.
    """
    if mode not in ("fit", "stretch"):
        raise ValueError(mode)
    sx, sy = width / pose.width, height / pose.height
    dx = dy = 0.0
    if mode == "fit":
        sx = sy = min(sx, sy)
        dx, dy = (width - pose.width * sx) / 2, (height - pose.height * sy) / 2
    people = [Person([(p[0] * sx + dx, p[1] * sy + dy) if p is not None else None for p in person.keypoints])
              for person in pose.people]
    return Pose(width, height, people)


def side_by_side(poses: list[Pose], width: int, height: int) -> Pose:
    """One canvas with every person of POSES, each pose fitted into its own equal column (a group shot)."""
    if not poses:
        return Pose(width, height, [])
    if len(poses) * MIN_SIDE > width:
        raise UserError(f"{len(poses)} poses do not fit side by side on a canvas {width} px wide.")
    column = width / len(poses)
    people = []
    for n, pose in enumerate(poses):
        fitted = scaled(pose, max(1, int(column)), height)
        people += [Person([(p[0] + n * column, p[1]) if p is not None else None for p in person.keypoints])
                   for person in fitted.people]
    if len(people) > MAX_PEOPLE:
        raise UserError(f"That makes {len(people)} people; at most {MAX_PEOPLE} are allowed.")
    return Pose(width, height, people)


def guess_view(person: Person) -> str:
    """The view word a prompt needs for PERSON, read from which face joints show: front, three-quarter, side or back."""
    k = person.keypoints
    eyes = (k[14] is not None) + (k[15] is not None)
    ears = (k[16] is not None) + (k[17] is not None)
    if k[0] is None and eyes == 0:
        return "back view"
    if eyes == 2:
        return "front view" if ears != 1 else "three-quarter view"
    return "side view"


# ---- presets -----------------------------------------------------------------------------------
#
# The figure in 3-D, canonical units (a 512 px canvas, ground at y = 450): x to the figure's left,
# y down, z the way it faces. Seen from the front its right side is on the image's left, as in a
# photograph of someone facing the camera.

_HIP_W, _SHOULDER_W = 26.0, 44.0
_THIGH, _SHIN = 100.0, 98.0
_UPPER_ARM, _FOREARM = 72.0, 66.0
_TORSO = 140.0  # hip line to neck
_GROUND = 450.0
# The canonical box every preset is fitted into: the widest stride and the head with a margin.
_FRAME = (56.0, 10.0, 456.0, 480.0)

# Face joints relative to the neck: (x, y, z, outward normal x, z); a joint shows when its normal
# faces the viewer (ears stay visible side-on, as detectors report them).
_FACE = {
    0: (0.0, -34.0, 20.0, 0.0, 1.0, -0.2),  # nose: hidden only from behind
    14: (-10.0, -44.0, 14.0, -0.5, 0.866, 0.0),
    15: (10.0, -44.0, 14.0, 0.5, 0.866, 0.0),
    16: (-19.0, -40.0, 0.0, -1.0, 0.0, -0.5),
    17: (19.0, -40.0, 0.0, 1.0, 0.0, -0.5),
}


@dataclass(frozen=True)
class Limbs:
    """Joint angles in degrees, (right, left). Thigh and upper arm swing forward when positive; knees
    and elbows bend by their angle; abduction raises the arms sideways; lean tips the torso forward."""

    thigh: tuple[float, float] = (0.0, 0.0)
    knee: tuple[float, float] = (0.0, 0.0)
    arm: tuple[float, float] = (0.0, 0.0)
    elbow: tuple[float, float] = (8.0, 8.0)
    abduction: float = 12.0
    lean: float = 0.0
    lift: float = 0.0  # how far both feet are off the ground (a run's flight)


def _figure(limbs: Limbs = Limbs()) -> list[tuple[float, float, float]]:
    """The 18 joints in 3-D (body frame), feet on the ground."""
    pts: list = [None] * N_KEYPOINTS
    sin, cos, rad = math.sin, math.cos, math.radians
    lean = rad(limbs.lean)
    pelvis = (0.0, 0.0, 0.0)
    neck = (0.0, -_TORSO * cos(lean), _TORSO * sin(lean))
    pts[1] = neck
    for side, (hip_i, knee_i, ankle_i, sh_i, el_i, wr_i) in enumerate(((8, 9, 10, 2, 3, 4), (11, 12, 13, 5, 6, 7))):
        sx = -1.0 if side == 0 else 1.0
        thigh, bend = rad(limbs.thigh[side]), rad(limbs.knee[side])
        hip = (sx * _HIP_W, pelvis[1], pelvis[2])
        knee = (hip[0], hip[1] + _THIGH * cos(thigh), hip[2] + _THIGH * sin(thigh))
        shin = thigh - bend
        ankle = (knee[0], knee[1] + _SHIN * cos(shin), knee[2] + _SHIN * sin(shin))
        shoulder = (sx * _SHOULDER_W, neck[1] + 6.0, neck[2])
        arm, elbow_bend, ab = rad(limbs.arm[side]), rad(limbs.elbow[side]), rad(limbs.abduction)
        elbow = (shoulder[0] + sx * _UPPER_ARM * sin(ab), shoulder[1] + _UPPER_ARM * cos(ab) * cos(arm),
                 shoulder[2] + _UPPER_ARM * cos(ab) * sin(arm))
        fore = arm + elbow_bend
        wrist = (elbow[0] + sx * _FOREARM * sin(ab) * 0.6, elbow[1] + _FOREARM * cos(fore),
                 elbow[2] + _FOREARM * sin(fore))
        pts[hip_i], pts[knee_i], pts[ankle_i] = hip, knee, ankle
        pts[sh_i], pts[el_i], pts[wr_i] = shoulder, elbow, wrist
    for i, (fx, fy, fz, *_n) in _FACE.items():
        pts[i] = (neck[0] + fx, neck[1] + fy + 4.0 * sin(lean), neck[2] + fz + 40.0 * sin(lean))
    lowest = max(pts[10][1], pts[13][1])
    return [(x, y - lowest - limbs.lift, z) for x, y, z in pts]


def _project(yaw: float, limbs: Limbs = Limbs(), dx: float = 0.0) -> Person:
    """The figure turned by YAW degrees (0 faces the viewer, 90 faces the image's left, 180 away)."""
    t = math.radians(yaw)
    c, s = math.cos(t), math.sin(t)
    centre = 256.0 + dx
    points: list[Point | None] = []
    for i, (x, y, z) in enumerate(_figure(limbs)):
        if i in _FACE:
            nx, nz, threshold = _FACE[i][3], _FACE[i][4], _FACE[i][5]
            if nx * s + nz * c <= threshold:  # the turned normal's z: does it face the viewer?
                points.append(None)
                continue
        # Image x grows to the right and the figure's right is image-left when it faces us.
        points.append((centre + x * c - z * s, _GROUND + y))
    return Person(points)


def _fit(person: Person, width: int, height: int) -> Pose:
    x0, y0, x1, y1 = _FRAME
    return scaled(Pose(int(x1 - x0), int(y1 - y0),
                       [Person([(p[0] - x0, p[1] - y0) if p else None for p in person.keypoints])]), width, height)


def _curve(table: tuple[tuple[float, float], ...], t: float) -> float:
    """A periodic piecewise-linear curve through (percent of the cycle, degrees) points, at T percent."""
    t %= 100.0
    for (t0, v0), (t1, v1) in zip(table, table[1:]):
        if t0 <= t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return table[-1][1]


# Sagittal joint angles over one cycle from the right heel strike (0 %) to the next, after the
# averages in gait-analysis texts: hip flexion (thigh forward +) and knee flexion, in degrees.
_WALK_HIP = ((0, 25), (10, 22), (30, 5), (50, -12), (60, -5), (75, 20), (87, 27), (100, 25))
_WALK_KNEE = ((0, 5), (15, 18), (40, 5), (60, 40), (72, 62), (85, 30), (95, 5), (100, 5))
# Running: stance from 0 to about 33 %, a flight, the other foot's stance from 50 %, a flight.
_RUN_HIP = ((0, 25), (20, 5), (33, -15), (55, 15), (75, 45), (88, 40), (100, 25))
_RUN_KNEE = ((0, 20), (15, 40), (33, 20), (55, 75), (68, 100), (85, 50), (100, 20))


def _walk(i: int, n: int) -> Limbs:
    """Frame I of an N-frame walk: frame 0 is the right heel strike (contact, down, passing, up, ...)."""
    t = 100.0 * i / n
    hips = (_curve(_WALK_HIP, t), _curve(_WALK_HIP, t + 50))
    knees = (_curve(_WALK_KNEE, t), _curve(_WALK_KNEE, t + 50))
    arms = tuple(-0.8 * (h - 7.0) for h in hips)  # each arm swings against its own leg
    return Limbs(thigh=hips, knee=knees, arm=arms, elbow=tuple(15.0 + max(0.0, a) for a in arms),
                 abduction=4.0, lean=3.0)


def _run(i: int, n: int) -> Limbs:
    """Frame I of an N-frame run: frame 0 is the right foot strike; each stride has a flight."""
    t = 100.0 * i / n
    hips = (_curve(_RUN_HIP, t), _curve(_RUN_HIP, t + 50))
    knees = (_curve(_RUN_KNEE, t), _curve(_RUN_KNEE, t + 50))
    arms = tuple(-1.1 * (h - 15.0) for h in hips)
    flight = 14.0 * math.sin(math.pi * ((t % 50.0) - 33.0) / 17.0) if t % 50.0 > 33.0 else 0.0
    return Limbs(thigh=hips, knee=knees, arm=arms, elbow=(85.0, 85.0), abduction=6.0, lean=10.0, lift=flight)


# name -> (yaw, view word)
VIEWS = {
    "front": (0.0, "front view"),
    "three-quarter-right": (-45.0, "three-quarter view"),
    "right": (-90.0, "side view"),
    "back-three-quarter-right": (-135.0, "back view"),
    "back": (180.0, "back view"),
    "back-three-quarter-left": (135.0, "back view"),
    "left": (90.0, "side view"),
    "three-quarter-left": (45.0, "three-quarter view"),
}
CYCLES = {"walk": (_walk, 8), "run": (_run, 8)}
CYCLE_YAW = -90.0  # cycles face right, the way side-scrolling sprites run


def preset_names() -> list[str]:
    names = list(VIEWS)
    for cycle, (_fn, n) in CYCLES.items():
        names += [f"{cycle}-{i}" for i in range(n)]
    return names


def preset(name: str, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> Pose:
    """A built-in pose on a WIDTH x HEIGHT canvas: a view (front, left, back, ...) or a cycle frame (walk-3)."""
    key = name.strip().lower()
    if key in VIEWS:
        return _fit(_project(VIEWS[key][0]), width, height)
    cycle, _, index = key.rpartition("-")
    if cycle in CYCLES and index.isdigit() and int(index) < CYCLES[cycle][1]:
        fn, n = CYCLES[cycle]
        return _fit(_project(CYCLE_YAW, fn(int(index), n)), width, height)
    raise UserError(f"There is no pose preset {name!r}; choose one of {', '.join(preset_names())}.")


def preset_view_word(name: str) -> str:
    key = name.strip().lower()
    if key in VIEWS:
        return VIEWS[key][1]
    return "side view"
