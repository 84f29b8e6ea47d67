"""JSON data files laid out for people and written at C speed.

json.dumps with an indent runs Python's own encoder (a tenth of a second for a 2,000-frame
sheet); without one it runs the C encoder. Here objects and lists are opened line by line down
to DEPTH levels and everything deeper is written on one line by the C encoder, which is also how
TexturePacker lays out its own files ("frame": {"x":0,"y":0,"w":32,"h":32} on one line).
"""

from __future__ import annotations

import json

_ONE_LINE = json.JSONEncoder(separators=(", ", ": ")).encode


def dumps(value, depth: int, indent: str = "  ", _level: int = 0) -> str:
    """VALUE as JSON: containers opened on their own lines for DEPTH levels, the rest inline."""
    if depth <= 0 or not isinstance(value, (dict, list)) or not value:
        return _ONE_LINE(value)
    inner = indent * (_level + 1)
    if isinstance(value, dict):
        items = [f"{inner}{_ONE_LINE(str(k))}: {dumps(v, depth - 1, indent, _level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent * _level + "}"
    items = [f"{inner}{dumps(v, depth - 1, indent, _level + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + "\n" + indent * _level + "]"
