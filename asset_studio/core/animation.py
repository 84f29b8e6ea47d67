"""Animations as files and as numbers, without torch: frame names, the batches of a long
video-to-video run and how their overlaps are blended, pose sequences as control frames.

A finished animation is a folder `OUT/00001-<seed>-<slug>/` holding `<slug>-000.png`,
`<slug>-001.png` … (each with the job inside and its frame index), which core/sheet.find_animations
reads as one animation named `<slug>`; previews (GIF, WebP, and MP4/WebM for videos) lie beside
the folder, `OUT/00001-<seed>-<slug>.gif`, so packing the folder never packs a preview.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asset_studio.errors import UserError

FRAME_DIGITS = 3  # 000 … 999; a longer animation still sorts right (natural order), it only widens


def frame_name(slug: str, frame: int) -> str:
    """The file name of frame FRAME: `<slug>-007.png` (the sheet's sequence rule: prefix, dash, index)."""
    return f"{slug}-{frame:0{FRAME_DIGITS}d}.png"


def frame_paths(folder: Path) -> list[Path]:
    """The frame files of an animation folder, in frame order (sprites/ and other files left out)."""
    from asset_studio.core.sheet import _SEQ, natural_key

    found = [p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() == ".png" and _SEQ.match(p.stem)]
    return sorted(found, key=lambda p: natural_key(p.name))


def timing_from_jobs(sheet, paths: dict) -> None:
    """Give each of SHEET's animations the speed and loop flag of the animation job its first
    frame carries (frames Asset Studio made); other animations keep the export's speed."""
    from asset_studio.core.library import read_job

    for anim in sheet.animations:
        path = paths.get(anim.frames[0])
        if path is None or Path(path).suffix.lower() != ".png":
            continue
        try:
            job = read_job(path)
        except UserError:  # a frame drawn elsewhere carries no job
            continue
        if job.animation is not None:
            anim.fps, anim.loop = float(job.animation.fps), bool(job.animation.loop)


MAX_ANIMATION_NAME = 64


@dataclass
class AnimationEdit:
    """The artist's name, speed and loop flag for an animation the packer found (by folder or
    numbered frame names), applied before the data file is written."""

    found: str  # the name core/sheet.find_animations gave it
    name: str
    fps: float | None = None  # None: the animation's own (its job's) or the export's speed
    loop: bool = True


def apply_animation_edits(sheet, edits: list[AnimationEdit]) -> None:
    """Rename and re-time SHEET's animations as EDITS say; one sentence for an empty, over-long or
    repeated name, a speed out of range, or an animation the sheet does not have."""
    by_found = {a.name: a for a in sheet.animations}
    for edit in edits:
        if edit.found not in by_found:
            raise UserError(f"The sheet has no animation '{edit.found}' to rename.")
        name = edit.name.strip()
        if not name or len(name) > MAX_ANIMATION_NAME or not name.isprintable():
            raise UserError(f"The animation name '{edit.name}' must be 1 to {MAX_ANIMATION_NAME} printable characters.")
        if any(c in name for c in '"\\'):
            raise UserError(f"The animation name {name!r} holds a quote or backslash: the engines' files cannot carry it.")
        if edit.fps is not None and not (math.isfinite(edit.fps) and 0 < edit.fps <= 1000):
            raise UserError(f"The speed of '{name}' must be above 0 and at most 1000 fps, not {edit.fps:g}.")
    for edit in edits:
        anim = by_found[edit.found]
        anim.name, anim.loop = edit.name.strip(), bool(edit.loop)
        if edit.fps is not None:
            anim.fps = float(edit.fps)
    names = [a.name for a in sheet.animations]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"Two animations would both be called '{repeated[0]}': give each its own name.")


# --- video to video in batches --------------------------------------------------------------------


def batch_spans(total: int, batch: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) of each batch of at most BATCH frames covering TOTAL frames, neighbours sharing
    at least OVERLAP frames (our notes' recipe: generate a few extra frames per batch and blend
    them where batches join). Every batch is full length, so the motion model always has the same
    context; the batches are spread evenly, so no join gets a sliver of a batch."""
    if total < 1:
        raise UserError("The video has no frames.")
    if not 0 <= overlap < batch:
        raise UserError(f"The overlap ({overlap}) must be smaller than the batch ({batch} frames).")
    if total <= batch:
        return [(0, total)]
    count = math.ceil((total - overlap) / (batch - overlap))
    starts = [round(i * (total - batch) / (count - 1)) for i in range(count)]
    return [(s, s + batch) for s in starts]


def join_weights(span: tuple[int, int], previous: tuple[int, int] | None) -> np.ndarray:
    """The weight of SPAN's frames where it overlaps PREVIOUS: rising linearly across the overlap
    (so the join cross-fades from the earlier batch to the later one), 1 after it."""
    start, end = span
    weights = np.ones(end - start, np.float32)
    if previous is not None and previous[1] > start:
        shared = previous[1] - start
        weights[:shared] = np.arange(1, shared + 1, dtype=np.float32) / (shared + 1)
    return weights


class BatchJoiner:
    """Joins the batches of a video-to-video run as they come: add() takes the next batch's
    frames (an array (frames, H, W, C)) and returns the (index, pixels) of every frame that is
    now final, i.e. no later batch overlaps it, so each frame is saved as soon as it can be."""

    def __init__(self, total: int, batch: int, overlap: int):
        self.total = total
        self.spans = batch_spans(total, batch, overlap)
        self.done = 0  # batches added
        self.given = 0  # frames handed out
        self.pending: np.ndarray | None = None  # frames of the last batch a later one still blends into

    def add(self, frames) -> list[tuple[int, np.ndarray]]:
        if self.done >= len(self.spans):
            raise ValueError("every batch was already added")
        start, end = self.spans[self.done]
        frames = np.asarray(frames, np.float32)
        if len(frames) != end - start:
            raise ValueError(f"batch {self.done} has {len(frames)} frames for a span of {end - start}")
        w = join_weights((start, end), self.spans[self.done - 1] if self.done else None)
        w = w.reshape(-1, *([1] * (frames.ndim - 1)))
        mixed = frames.copy()
        if self.pending is not None:  # the frames from self.given on, as the earlier batches left them
            shared = min(len(self.pending), end - start)
            before = self.pending[:shared]
            mixed[:shared] = before * (1 - w[:shared]) + frames[:shared] * w[:shared]
        self.done += 1
        final = self.spans[self.done][0] if self.done < len(self.spans) else self.total
        out = [(start + j, mixed[j]) for j in range(self.given - start, final - start)]
        self.given = final
        self.pending = mixed[final - start:]
        return out


def join_batches(total: int, batch: int, overlap: int, batches: list) -> np.ndarray:
    """TOTAL frames from BATCHES (arrays (frames, H, W, C), one per span of batch_spans): each
    frame is its batch's frame, or a cross-fade of two batches where they overlap."""
    joiner = BatchJoiner(total, batch, overlap)
    frames = [pixels for frames_ in batches for _, pixels in joiner.add(frames_)]
    return np.stack(frames)


# --- pose sequences as per-frame control images ---------------------------------------------------


def pose_control_frames(pose_set: str, frames: int, width: int, height: int, folder: Path) -> Path:
    """FRAMES OpenPose control images drawn from POSE_SET (a set name like walk-8 or a folder of
    pose JSON), the poses repeated in order as a cycle, written to FOLDER as 000.png, 001.png …"""
    from asset_studio.core.outputs import png_writer, write_file
    from asset_studio.core.pose import scaled
    from asset_studio.core.pose_render import render_pose
    from asset_studio.core.pose_sets import load_pose_set

    poses = load_pose_set(pose_set, (width, height))
    if not poses:
        raise UserError(f"The pose set {pose_set} holds no poses.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [render_pose(scaled(p.pose, width, height)) for p in poses]
    for i in range(frames):
        write_file(folder / f"{i:03d}.png", png_writer(drawn[i % len(drawn)]))
    return folder


def control_frame_files(folder: str | Path, frames: int) -> list[Path]:
    """The control images of an animation's ControlNet: a folder of FRAMES pictures in name order."""
    from asset_studio.core.sheet import IMAGE_SUFFIXES, natural_key

    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"An animation's ControlNet follows a folder of control frames; {path} is not a folder.")
    files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    if len(files) < frames:
        raise UserError(f"The control folder {path} holds {len(files)} pictures for {frames} frames; "
                        "give one per frame.")
    return files[:frames]


# --- what the artist chose → the job's Animation (the animate command and the Animate tab) ---------


def animatediff_settings(*, motion_adapter: str, frames: int = 16, fps: float = 8.0, loop: bool = False,
                         motion_loras=(), context: int = 0, pose_set: str = "", controlnets=(),
                         has_model: bool = True, previews=None):
    """The Animation of a text-to-animation request, or one sentence for choices that do not go
    together (before anything loads)."""
    from asset_studio.core.job import DEFAULT_PREVIEWS, Animation

    if not motion_adapter:
        raise UserError("An animation needs a motion adapter (--motion-adapter), or --image and --svd.")
    if not has_model:
        raise UserError("--model is required unless a style pack recommends one.")
    if pose_set and not controlnets:
        raise UserError("A pose sequence is followed through an OpenPose ControlNet: add --controlnet.")
    if controlnets and not pose_set:
        raise UserError("An animation's ControlNet follows a pose sequence here: add --pose-set.")
    return Animation(frames=int(frames), fps=float(fps), loop=bool(loop), motion_adapter=str(motion_adapter),
                     motion_loras=list(motion_loras), context=int(context),
                     previews=list(previews or DEFAULT_PREVIEWS))


def svd_settings(*, image: str, svd: str, frames: int = 14, fps: float = 8.0, motion: float = 0.5,
                 noise_aug: float = 0.02, decode_chunk: int = 8, previews=None):
    """The Animation of an image-to-video request (Stable Video Diffusion). MOTION is 0-1, SVD's
    motion bucket 0-255 scaled."""
    from asset_studio.core.job import DEFAULT_PREVIEWS, Animation, ImageToVideo

    if not (image and svd):
        raise UserError("Image to video needs both the picture (--image) and the model (--svd).")
    if not 0 <= motion <= 1:
        raise UserError(f"--motion takes 0 to 1, not {motion:g}.")
    return Animation(frames=int(frames), fps=float(fps), method="svd", previews=list(previews or DEFAULT_PREVIEWS),
                     svd=ImageToVideo(motion_bucket=round(motion * 255), noise_aug=float(noise_aug),
                                      decode_chunk=int(decode_chunk)))


def fit_size(w: int, h: int, long_side: int = 512) -> tuple[int, int]:
    """A frame size for a picture of W x H: its aspect, the longer side LONG_SIDE, multiples of 8."""
    scale = long_side / max(w, h)
    return max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8)

