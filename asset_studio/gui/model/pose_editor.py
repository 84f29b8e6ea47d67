"""The Pose tab's state: the skeleton being edited, its selection, its undo history, the reference
picture under it, and the pose set whose frames the strip shows.

The pose is a core.pose.Pose (several people, 18 OpenPose keypoints each, None = hidden). Every
edit goes through this object, which keeps snapshots for undo: one step per edit, and one per
drag however many mouse moves it had. Files are read and written by core.pose (the OpenPose JSON
other editors use); a bad file raises UserError with the sentence the window shows.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from asset_studio.core.pose import (
    DEFAULT_SIZE, MAX_PEOPLE, MAX_SIDE, MIN_SIDE, Person, Pose, load_pose, mirrored, preset, save_pose,
    scaled,
)
from asset_studio.core.pose_sets import NamedPose, load_pose_set, pose_name, save_pose_set, set_label
from asset_studio.errors import UserError

UNDO_LIMIT = 200
HIT_RADIUS = 10.0  # canvas pixels around a joint that pick it up


def _bbox(person: Person) -> tuple[float, float, float, float] | None:
    pts = [p for p in person.keypoints if p is not None]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def _moved(person: Person, fn) -> Person:
    return Person([fn(p) if p is not None else None for p in person.keypoints])


class PoseEditor(QObject):
    """The pose being edited. `changed` names what changed: pose, selection, history, reference, file
    (its name or path), opened (a file is replacing it)."""

    changed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pose = preset("front", *DEFAULT_SIZE)
        self._person = 0
        self._joint = -1
        self._undo: list[tuple[Pose, int]] = []
        self._redo: list[tuple[Pose, int]] = []
        self._drag: tuple[int, int] | None = None
        self._hidden_at: dict[tuple[int, int], tuple[float, float]] = {}  # where a hidden joint was
        self.name = "front"  # the pose's name (a preset, a file's stem or a set's frame)
        self.path = ""  # the JSON file it was opened from or saved to
        self.reference = ""  # a picture under the skeleton (not part of the pose)
        self.reference_opacity = 0.45

    # --- reading ---------------------------------------------------------------------------------

    @property
    def pose(self) -> Pose:
        """A copy: edits go through this object's methods."""
        return self._pose.copy()

    @property
    def width(self) -> int:
        return self._pose.width

    @property
    def height(self) -> int:
        return self._pose.height

    @property
    def people(self) -> int:
        return len(self._pose.people)

    def point(self, person: int, joint: int) -> tuple[float, float] | None:
        return self._pose.people[person].keypoints[joint]

    @property
    def person(self) -> int:
        """The selected person (-1 with nobody on the canvas)."""
        return self._person if self._pose.people else -1

    @property
    def joint(self) -> int:
        """The selected joint (-1 for none)."""
        return self._joint

    def joint_at(self, x: float, y: float, radius: float = HIT_RADIUS) -> tuple[int, int] | None:
        """The visible joint nearest (X, Y) within RADIUS canvas pixels, the selected person first."""
        best, best_d = None, radius * radius
        order = sorted(range(self.people), key=lambda i: i != self._person)
        for n in order:
            for j, p in self._pose.people[n].visible():
                d = (p[0] - x) ** 2 + (p[1] - y) ** 2
                if d < best_d:
                    best, best_d = (n, j), d
        return best

    def render(self, size: tuple[int, int] | None = None):
        """The control image ControlNet will see (core.pose_render), as a PIL image."""
        from asset_studio.core.pose_render import render_pose

        return render_pose(self._pose, size)

    # --- selection -------------------------------------------------------------------------------

    def select(self, person: int, joint: int = -1) -> None:
        if not self._pose.people:
            person, joint = 0, -1
        person = max(0, min(int(person), max(0, self.people - 1)))
        joint = int(joint) if -1 <= int(joint) < 18 else -1
        if (person, joint) != (self._person, self._joint):
            self._person, self._joint = person, joint
            self.changed.emit("selection")

    # --- history ---------------------------------------------------------------------------------

    def _record(self) -> None:
        self._undo.append((self._pose.copy(), self._person))
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()

    def _apply(self, pose: Pose, record: bool = True) -> None:
        if record:
            self._record()
        self._pose = pose
        if self._person >= len(pose.people):
            self._person, self._joint = max(0, len(pose.people) - 1), -1
        self.changed.emit("pose")
        self.changed.emit("history")

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        return self._step(self._redo, self._undo)

    def _step(self, source: list, target: list) -> bool:
        if not source or self._drag is not None:
            return False
        target.append((self._pose.copy(), self._person))
        self._pose, self._person = source.pop()
        self._person = min(self._person, max(0, self.people - 1))
        self.changed.emit("pose")
        self.changed.emit("history")
        return True

    def load(self, pose: Pose, name: str = "", path: str = "") -> None:
        """Start over with POSE (a set's frame, an opened file): a new history, nothing selected."""
        self._pose = pose.copy()
        self._undo.clear()
        self._redo.clear()
        self._hidden_at.clear()
        self._drag = None
        self._person, self._joint = 0, -1
        self.name, self.path = name or self.name, path
        self.changed.emit("pose")
        self.changed.emit("history")
        self.changed.emit("file")

    # --- edits -----------------------------------------------------------------------------------

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        return min(max(float(x), 0.0), float(self.width)), min(max(float(y), 0.0), float(self.height))

    def move_joint(self, person: int, joint: int, x: float, y: float) -> None:
        """One edit: the joint to (X, Y), kept on the canvas."""
        self.begin_drag(person, joint)
        self.drag_to(x, y)
        self.end_drag()

    def begin_drag(self, person: int, joint: int) -> None:
        """The mouse picked up a joint: the whole drag is one undo step."""
        if self.point(person, joint) is None:
            raise UserError(f"The {self.joint_name(joint)} is hidden: show it before moving it.")
        self._record()
        self._drag = (person, joint)
        self.select(person, joint)
        self.changed.emit("history")

    def drag_to(self, x: float, y: float) -> None:
        if self._drag is None:
            return
        person, joint = self._drag
        point = self._clamp(x, y)
        if self._pose.people[person].keypoints[joint] != point:
            self._pose.people[person].keypoints[joint] = point
            self.changed.emit("pose")

    def end_drag(self) -> None:
        if self._drag is None:
            return
        self._drag = None
        if self._undo and self._undo[-1][0] == self._pose:  # a click without a move is no edit
            self._undo.pop()
        self.changed.emit("history")

    def nudge(self, dx: float, dy: float) -> None:
        """The selected joint moved by (DX, DY) canvas pixels (the arrow keys), one undo step."""
        if self.person >= 0 and self._joint >= 0 and self.point(self.person, self._joint) is not None:
            x, y = self.point(self.person, self._joint)
            self.move_joint(self.person, self._joint, x + dx, y + dy)

    def dragging(self) -> bool:
        return self._drag is not None

    def mirror(self) -> None:
        """The selected person flipped left to right about its own middle (left and right joints trade
        names, as core.pose.mirrored does for a whole canvas), so it stays where it stands."""
        if self.person < 0:
            return
        person = self._pose.people[self.person]
        box = _bbox(person)
        if box is None:
            return
        flipped = mirrored(Pose(self.width, self.height, [person])).people[0]
        shift = box[0] + box[2] - self.width  # x -> W - x, then to 2 * middle - x
        pose = self._pose.copy()
        pose.people[self.person] = _moved(flipped, lambda p: self._clamp(p[0] + shift, p[1]))
        self._apply(pose)

    def set_joint_visible(self, joint: int, visible: bool, person: int | None = None) -> None:
        """Hide a joint (ControlNet then draws neither it nor its limbs), or show it again where it was."""
        person = self.person if person is None else person
        if person < 0 or not 0 <= joint < 18:
            return
        current = self._pose.people[person].keypoints[joint]
        if (current is not None) == visible:
            return
        pose = self._pose.copy()
        if visible:
            pose.people[person].keypoints[joint] = self._hidden_at.pop((person, joint), None) \
                or self._default_point(person, joint)
        else:
            self._hidden_at[(person, joint)] = current
            pose.people[person].keypoints[joint] = None
        self._apply(pose)

    def toggle_joint(self, joint: int | None = None) -> None:
        joint = self._joint if joint is None else joint
        if self.person >= 0 and 0 <= joint < 18:
            self.set_joint_visible(joint, self.point(self.person, joint) is None)

    def _default_point(self, person: int, joint: int) -> tuple[float, float]:
        """Where a joint that was never placed appears: the front preset's, fitted to this person."""
        ref = preset("front", self.width, self.height).people[0]
        target = self._pose.people[person]
        box, ref_box = _bbox(target), _bbox(ref)
        p = ref.keypoints[joint] or ref.keypoints[1]
        if box is None or box[3] - box[1] < 1:
            return self._clamp(*p)
        s = (box[3] - box[1]) / (ref_box[3] - ref_box[1])
        cx, rcx = (box[0] + box[2]) / 2, (ref_box[0] + ref_box[2]) / 2
        return self._clamp(cx + (p[0] - rcx) * s, box[1] + (p[1] - ref_box[1]) * s)

    def add_person(self, name: str = "front") -> None:
        """Another person from a preset, smaller, standing in the next free place along the canvas."""
        if self.people >= MAX_PEOPLE:
            raise UserError(f"A pose holds at most {MAX_PEOPLE} people.")
        figure = preset(name, self.width, self.height).people[0]
        box = _bbox(figure)
        cx, bottom = (box[0] + box[2]) / 2, box[3]
        factor = 0.7 if self.people else 1.0
        slots = (0.5, 0.25, 0.75, 0.125, 0.375, 0.625, 0.875)
        x = self.width * slots[self.people % len(slots)]
        half = (box[2] - box[0]) * factor / 2
        x = min(max(x, half), self.width - half)
        person = _moved(figure, lambda p: self._clamp(x + (p[0] - cx) * factor, bottom + (p[1] - bottom) * factor))
        pose = self._pose.copy()
        pose.people.append(person)
        self._apply(pose)
        self.select(len(pose.people) - 1, -1)

    def remove_person(self, index: int | None = None) -> None:
        index = self.person if index is None else index
        if not 0 <= index < self.people:
            return
        pose = self._pose.copy()
        del pose.people[index]
        self._hidden_at = {(n - (n > index), j): v for (n, j), v in self._hidden_at.items() if n != index}
        self._apply(pose)
        self.select(min(index, max(0, self.people - 1)), -1)

    def apply_preset(self, name: str) -> None:
        """A preset view or cycle frame. With one person the whole canvas becomes it; with several,
        only the selected person changes, keeping its place and height."""
        fresh = preset(name, self.width, self.height)
        if self.people <= 1:
            self._apply(fresh)
        else:
            figure, box = fresh.people[0], _bbox(self._pose.people[self.person])
            fbox = _bbox(figure)
            if box is None:
                placed = figure
            else:
                s = (box[3] - box[1]) / max(1.0, fbox[3] - fbox[1])
                cx, fcx = (box[0] + box[2]) / 2, (fbox[0] + fbox[2]) / 2
                placed = _moved(figure, lambda p: self._clamp(cx + (p[0] - fcx) * s, box[3] + (p[1] - fbox[3]) * s))
            pose = self._pose.copy()
            pose.people[self.person] = placed
            self._apply(pose)
        self.name = name
        self.changed.emit("file")

    def set_canvas_size(self, width: int, height: int) -> None:
        """Another canvas; the skeletons are scaled evenly and centred (their proportions kept)."""
        width, height = int(width), int(height)
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise UserError(f"A pose canvas is {MIN_SIDE} to {MAX_SIDE} pixels on each side, not {width}x{height}.")
        if (width, height) != (self.width, self.height):
            self._hidden_at.clear()
            self._apply(scaled(self._pose, width, height))

    # --- files -----------------------------------------------------------------------------------

    def open_file(self, path: str | Path) -> None:
        """An OpenPose JSON file (this app's, controlnet-aux's, OpenPose's BODY_25); UserError when bad."""
        pose = load_pose(path)
        self.changed.emit("opened")  # first: a set's frame shown here lets go before the file replaces it
        self.load(pose, pose_name(Path(path).stem), str(path))

    def save_file(self, path: str | Path) -> Path:
        saved = save_pose(self._pose, path)
        self.path = str(saved)
        self.changed.emit("file")
        return saved

    def set_reference(self, path: str) -> None:
        path = str(path or "")
        if path and not Path(path).is_file():
            raise UserError(f"The picture {path} does not exist.")
        if path != self.reference:
            self.reference = path
            self.changed.emit("reference")

    @staticmethod
    def joint_name(joint: int) -> str:
        from asset_studio.core.pose import KEYPOINTS

        return KEYPOINTS[joint] if 0 <= joint < len(KEYPOINTS) else ""


class PoseSet(QObject):
    """The frames of a pose set (a built-in set or a folder of pose JSON) the strip shows; the
    selected frame is the one in the editor, and the editor's edits are kept in it."""

    frames_changed = Signal()  # the set was loaded or cleared
    frame_edited = Signal(int)  # one frame's pose changed in the editor
    current_changed = Signal(int)

    def __init__(self, editor: PoseEditor, parent: QObject | None = None):
        super().__init__(parent)
        self.editor = editor
        self.frames: list[NamedPose] = []
        self.source = ""  # the set's name (walk-8) or folder
        self.current = -1
        self._loading = False
        editor.changed.connect(self._editor_changed)

    @property
    def label(self) -> str:
        return set_label(self.source) if self.source else ""

    def load(self, name_or_dir: str) -> None:
        """A built-in set at the editor's canvas size, or a folder's pose files; the first frame is selected."""
        frames = load_pose_set(name_or_dir, (self.editor.width, self.editor.height))
        self.frames, self.source, self.current = frames, str(name_or_dir), -1
        self.frames_changed.emit()
        self.select(0)

    def clear(self) -> None:
        self.frames, self.source, self.current = [], "", -1
        self.frames_changed.emit()
        self.current_changed.emit(-1)

    def select(self, index: int) -> None:
        """Frame INDEX into the editor (a fresh undo history: undo never crosses frames)."""
        if not 0 <= index < len(self.frames):
            return
        self.current = index
        frame = self.frames[index]
        self._loading = True
        try:
            self.editor.load(frame.pose, frame.name)
        finally:
            self._loading = False
        self.current_changed.emit(index)

    def _editor_changed(self, what: str) -> None:
        if self._loading or not 0 <= self.current < len(self.frames):
            return
        if what == "opened":  # a file opened in the editor is not this frame any more
            self.current = -1
            self.current_changed.emit(-1)
        elif what == "pose":
            self.frames[self.current].pose = self.editor.pose
            self.frame_edited.emit(self.current)

    def save(self, folder: str | Path, replace: bool = False) -> list[Path]:
        """The set as FOLDER/<name>.json (names and order kept) for `generate --pose-set FOLDER`."""
        written = save_pose_set(self.frames, folder, replace=replace)
        self.source = str(folder)
        self.frames_changed.emit()
        if 0 <= self.current < len(self.frames):
            self.current_changed.emit(self.current)
        return written

