"""The OpenPose control image of a pose, drawn exactly as ControlNet's OpenPose models saw it in training.

This is controlnet-aux's ``draw_bodypose`` (the ControlNet 1.1 annotator's drawing) step for step:
on black, each of 17 limbs an ellipse of half-width 4 px filled at 0.6 of its colour, then each of
the 18 joints a dot of radius 4 in its full colour. Coordinates go through the same 0-1
normalisation and ``int()`` truncation, and the same OpenCV rasterisers draw them (imported lazily;
opencv-python-headless is a dependency already), so the pixels match the annotator's exactly,
which tests/test_pose.py checks. No detector is involved: the keypoints are the artist's.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from asset_studio.core.pose import Pose

STICK_WIDTH = 4
JOINT_RADIUS = 4
# 1-based keypoint pairs, in the annotator's order; limb i takes COLORS[i].
LIMBS = (
    (2, 3), (2, 6), (3, 4), (4, 5),
    (6, 7), (7, 8), (2, 9), (9, 10),
    (10, 11), (2, 12), (12, 13), (13, 14),
    (2, 1), (1, 15), (15, 17), (1, 16),
    (16, 18),
)
COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)


def render_pose(pose: Pose, size: tuple[int, int] | None = None) -> Image.Image:
    """POSE drawn on black as an RGB image of SIZE (default: the pose's canvas), skeleton stretched to fit."""
    import cv2

    width, height = size or (pose.width, pose.height)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for person in pose.people:
        # The annotator keeps keypoints as 0-1 fractions of the canvas; so do we, for the same rounding.
        kps = [(p[0] / pose.width, p[1] / pose.height) if p is not None else None for p in person.keypoints]
        for (a, b), color in zip(LIMBS, COLORS):
            k1, k2 = kps[a - 1], kps[b - 1]
            if k1 is None or k2 is None:
                continue
            ys = np.array([k1[0], k2[0]]) * float(width)
            xs = np.array([k1[1], k2[1]]) * float(height)
            mx, my = np.mean(xs), np.mean(ys)
            length = ((xs[0] - xs[1]) ** 2 + (ys[0] - ys[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(xs[0] - xs[1], ys[0] - ys[1]))
            polygon = cv2.ellipse2Poly((int(my), int(mx)), (int(length / 2), STICK_WIDTH), int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, [int(float(c) * 0.6) for c in color])
        for k, color in zip(kps, COLORS):
            if k is None:
                continue
            cv2.circle(canvas, (int(k[0] * width), int(k[1] * height)), JOINT_RADIUS, color, thickness=-1)
    return Image.fromarray(canvas, "RGB")


def contact_sheet(images: list[tuple[str, Image.Image]], columns: int = 4, cell: int = 192) -> Image.Image:
    """Thumbnails with their names under them, for looking at many poses at once."""
    from PIL import ImageDraw

    rows = max(1, math.ceil(len(images) / columns))
    sheet = Image.new("RGB", (columns * cell, rows * (cell + 16)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for n, (name, image) in enumerate(images):
        x, y = (n % columns) * cell, (n // columns) * (cell + 16)
        thumb = image.copy()
        thumb.thumbnail((cell - 4, cell - 4))
        sheet.paste(thumb, (x + 2, y + 2))
        draw.text((x + 4, y + cell), name, fill=(230, 230, 230))
    return sheet
