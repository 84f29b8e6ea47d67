"""Layout files: round trip, strict validation, fonts, and the filled render."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asset_studio.core.fonts import DEFAULT_FONT, coverage, fallback_chain, find_font_file
from asset_studio.core.layout import (Box, ImageElement, Layout, ShapeElement, TextElement, layout_from_dict,
                                      load_layout, save_layout)
from asset_studio.core.layout_render import render_layout
from asset_studio.errors import UserError


def button() -> dict:
    return {
        "version": 1, "width": 128, "height": 64, "background": "#000000",
        "elements": [
            {"type": "shape", "kind": "rounded_rect", "box": [4, 4, 120, 56], "radius": 12,
             "fill": "#2050a0", "stroke": "#ffffff", "stroke_width": 2},
            {"type": "text", "text": "PLAY", "box": [8, 8, 112, 48], "size": 32, "weight": "bold",
             "letter_spacing": 2, "outline_width": 1, "outline_color": "#000000"},
        ],
    }


def write(tmp_path, data, name="l.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_round_trip_keeps_the_json(tmp_path):
    layout = load_layout(write(tmp_path, button()))
    assert isinstance(layout.elements[0], ShapeElement) and isinstance(layout.elements[1], TextElement)
    out = save_layout(layout, tmp_path / "copy.json")
    assert load_layout(out) == layout
    assert json.loads(out.read_text())["elements"][1]["text"] == "PLAY"


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d["elements"].append({"type": "star", "box": [0, 0, 1, 1]}), "unknown type 'star'"),
        (lambda d: d["elements"][1].update(font="No Such Font Family 42"), "No Such Font Family 42"),
        (lambda d: d["elements"][1].update(colour="#fff"), "unknown field(s): colour"),
        (lambda d: d["elements"][0].update(kind="hexagon"), "shape kind 'hexagon'"),
        (lambda d: d.update(width=100000), "width is 100000"),
        (lambda d: d["elements"][1].update(fill="red"), "must be a colour"),
        (lambda d: d["elements"][1].update(box=[1, 2]), "box"),
        (lambda d: d.update(elements=[{"type": "text", "text": "x", "box": [0, 0, 9, 9]}] * 501), "at most 500"),
    ],
)
def test_bad_layouts_are_one_clear_error(tmp_path, change, words):
    data = button()
    change(data)
    with pytest.raises(UserError) as info:
        load_layout(write(tmp_path, data))
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_image_paths_stay_inside_the_layout_folder(tmp_path):
    from PIL import Image

    inside = tmp_path / "layout"
    inside.mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "secret.png")
    Image.new("RGB", (8, 8), "red").save(inside / "logo.png")
    for bad, words in [("../secret.png", "outside the layout's folder"),
                       (str(tmp_path / "secret.png"), "absolute image path"),
                       ("missing.png", "does not exist")]:
        data = button()
        data["elements"].append({"type": "image", "path": bad, "box": [0, 0, 8, 8]})
        with pytest.raises(UserError, match=words):
            load_layout(write(inside, data))
    data = button()
    data["elements"].append({"type": "image", "path": "logo.png", "box": [0, 0, 16, 16], "opacity": 0.5})
    layout = load_layout(write(inside, data))
    pixels = np.asarray(render_layout(layout).convert("RGB"))
    assert pixels[4:12, 4:12, 0].mean() > 100  # the half-transparent red logo shows


def test_not_json_and_missing_file_are_clear(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="not valid JSON"):
        load_layout(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_layout(tmp_path / "nope.json")


def test_saving_elsewhere_copies_placed_images(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), "blue").save(tmp_path / "sketch.png")
    layout = Layout(64, 64, elements=[ImageElement(path=str(tmp_path / "sketch.png"), box=Box(0, 0, 32, 32))])
    out = save_layout(layout, tmp_path / "sub" / "l.json")
    assert (tmp_path / "sub" / "sketch.png").is_file()
    assert json.loads(out.read_text())["elements"][0]["path"] == "sketch.png"
    assert load_layout(out).elements[0].path == "sketch.png"


def test_bundled_fonts_cover_latin_hangul_and_kana():
    chain = fallback_chain(DEFAULT_FONT, 400)
    for ch in "AéŁőşẞ한글갉スタ開始":
        assert any(ord(ch) in coverage(p) for p in chain), ch
    assert all(ord(ch) in coverage(chain[0]) for ch in "가힣")  # all of Hangul Syllables
    assert find_font_file(DEFAULT_FONT, 700).name.endswith("Bold.otf")
    assert all(p.stat().st_size < 3 * 1024 * 1024 for p in chain)

    def ink(text):
        layout = Layout(160, 48, elements=[TextElement(text, Box(0, 0, 160, 48), size=32)])
        return np.asarray(render_layout(layout).convert("L")) > 128

    tofu = ink("\ue000")
    for ch in "Ł한ス開":
        assert (ink(ch) != tofu).mean() > 0.01, ch


def test_system_font_by_name_and_missing_font():
    with pytest.raises(UserError, match="not installed"):
        find_font_file("Definitely Missing Sans", 400)
    try:
        path = find_font_file("DejaVu Sans", 400)
    except UserError:
        pytest.skip("DejaVu Sans is not installed here")
    assert path.suffix.lower() in (".ttf", ".otf")


def test_render_is_deterministic_and_rotation_turns_the_text():
    layout = layout_from_dict(button())
    a = np.asarray(render_layout(layout))
    assert np.array_equal(a, np.asarray(render_layout(layout)))
    layout.elements[1].rotation = 90
    b = np.asarray(render_layout(layout))
    assert not np.array_equal(a, b)
    # Rotated by 90 degrees, the word stands upright: its ink is taller than wide.
    text_only = Layout(128, 128, elements=[TextElement("PLAY", Box(14, 44, 100, 40), size=32, rotation=90)])
    ink = np.argwhere(np.asarray(render_layout(text_only).convert("L")) > 128)
    (y0, x0), (y1, x1) = ink.min(0), ink.max(0)
    assert (y1 - y0) > 2 * (x1 - x0)


def test_alignment_and_letter_spacing_move_the_ink():
    def ink_x(**kw):
        layout = Layout(200, 60, elements=[TextElement("AB", Box(0, 0, 200, 60), size=30, **kw)])
        cols = np.argwhere(np.asarray(render_layout(layout).convert("L")).max(0) > 128)
        return cols.min(), cols.max()

    left, center, right = ink_x(align="left"), ink_x(align="center"), ink_x(align="right")
    assert left[0] < 5 and right[1] > 195 and left[0] < center[0] < right[0]
    tight, wide = ink_x(), ink_x(letter_spacing=30)
    assert (wide[1] - wide[0]) - (tight[1] - tight[0]) >= 28
