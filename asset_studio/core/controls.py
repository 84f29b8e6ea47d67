"""Control types: the one vocabulary of what a ControlNet follows, and where each comes from.

A control image is drawn from a layout (lineart, scribble, canny, mask, brightness), made from a
reference picture (canny and lineart by plain image processing; pose by engine/pose_detect's DWPose
or OpenPose body network; soft edge, depth and anime line art by controlnet-aux annotators), drawn
from a pose skeleton (pose), or is the picture itself (tile). Templates recommend one of these; jobs record one.
"""

from __future__ import annotations

from typing import Literal, get_args

ControlType = Literal[
    "lineart", "scribble", "canny", "mask", "brightness",
    "pose", "softedge", "softedge_pidinet", "depth", "depth_zoe", "lineart_anime", "tile",
]
CONTROL_TYPES: tuple[str, ...] = get_args(ControlType)
LAYOUT_TYPES = ("lineart", "scribble", "canny", "mask", "brightness")  # drawn from a layout
REFERENCE_TYPES_NO_MODEL = ("canny", "lineart")  # made from a picture without a model
ALIASES = {"openpose": "pose", "hed": "softedge", "line art": "lineart"}
DEFAULT_LAYOUT_TYPE = "lineart"


def canonical(name: str) -> str:
    """The vocabulary's name for NAME (case and common aliases forgiven); unknown names pass through."""
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def layout_type_for(hint: str | None) -> str:
    """The control type a layout is drawn as when the artist did not choose: the template's
    recommendation when a layout can be drawn that way, else line art."""
    return hint if hint in LAYOUT_TYPES else DEFAULT_LAYOUT_TYPE
