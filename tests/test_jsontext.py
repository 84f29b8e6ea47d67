"""Readable JSON data files written by the C encoder (core/exporters/jsontext.py)."""

from __future__ import annotations

import json

from asset_studio.core.exporters import jsontext

DOC = {
    "frames": {
        "hero/walk0.png": {"frame": {"x": 0, "y": 0, "w": 32, "h": 30}, "rotated": False, "pivot": {"x": 0.5, "y": 0.25}},
        "ünï ✓.png": {"frame": {"x": 32, "y": 0, "w": 8, "h": 8}, "rotated": True, "pivot": {"x": 0.5, "y": 0.5}},
    },
    "animations": {"walk": ["hero/walk0.png", "hero/walk1.png"], "empty": []},
    "meta": {"size": {"w": 40, "h": 30}, "scale": "1", "related": [], "nothing": None, "quote": 'a "b"\n'},
}


def test_the_text_reads_back_as_the_same_document():
    for depth in range(6):
        assert json.loads(jsontext.dumps(DOC, depth)) == DOC


def test_containers_open_down_to_the_depth_and_the_rest_stays_on_one_line():
    lines = jsontext.dumps(DOC, 3).splitlines()
    assert lines[0] == "{" and lines[1] == '  "frames": {' and lines[2] == '    "hero/walk0.png": {'
    assert lines[3] == '      "frame": {"x": 0, "y": 0, "w": 32, "h": 30},'
    assert '    "empty": []' in lines  # an empty container is not opened
    assert jsontext.dumps(DOC, 0) == json.dumps(DOC)  # depth 0: one line, as json.dumps writes it
    assert jsontext.dumps({"a": [1, 2]}, 2, " ") == '{\n "a": [\n  1,\n  2\n ]\n}'
