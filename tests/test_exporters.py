"""Each exporter's output parses, matches its format's schema and round-trips animations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from asset_studio.core.exporters import export
from asset_studio.core.exporters.unity import SCRIPT
from asset_studio.core.sheet import SheetOptions, load_sprites, pack_sheet, save_pages
from asset_studio.errors import UserError
from test_sheet import make_sprites

WALK = ["hero/walk0.png", "hero/walk1.png", "hero/walk2.png", "hero/walk10.png"]
JUMP = ["jump/down.png", "jump/up.png"]


@pytest.fixture(scope="module")
def sheet_files(tmp_path_factory):
    """One trimmed sheet written in every format (single page) plus a multi-page Godot one."""
    root = tmp_path_factory.mktemp("exp")
    make_sprites(root / "sprites")
    sprites = load_sprites([root / "sprites"], trim=True)
    sheet = pack_sheet(sprites, SheetOptions(trim=True, padding=1))
    out = {}
    for fmt in ("texturepacker-hash", "texturepacker-array", "aseprite", "godot4", "unity"):
        png = root / fmt / "sheet.png"
        pngs = save_pages(sheet, png)
        out[fmt] = export(sheet, pngs, fmt, png)
    multi = pack_sheet(sprites, SheetOptions(trim=True, max_size=40))
    png = root / "godot-multi" / "sheet.png"
    out["godot-multi"] = export(multi, save_pages(multi, png), "godot4", png)
    return sheet, multi, out


# --------------------------------------------------------------------------- small schemas


def check_schema(value, schema, where="$"):
    """A tiny structural schema: a type, {key: schema} for objects, [schema] for arrays."""
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where} is not an object"
        for key, sub in schema.items():
            assert key in value, f"{where}.{key} is missing"
            check_schema(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{where} is not an array"
        for i, item in enumerate(value):
            check_schema(item, schema[0], f"{where}[{i}]")
    elif schema is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where} is not an integer"
    elif schema is float:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} is not a number"
    else:
        assert isinstance(value, schema), f"{where} is not {schema.__name__}"


XYWH = {"x": int, "y": int, "w": int, "h": int}
TP_FRAME = {
    "frame": XYWH,
    "rotated": bool,
    "trimmed": bool,
    "spriteSourceSize": XYWH,
    "sourceSize": {"w": int, "h": int},
    "pivot": {"x": float, "y": float},
}
TP_META = {"app": str, "version": str, "image": str, "format": str, "size": {"w": int, "h": int}, "scale": str}
ASE_FRAME = {k: v for k, v in TP_FRAME.items() if k != "pivot"} | {"filename": str, "duration": int}
ASE_TAG = {"name": str, "from": int, "to": int, "direction": str}
UNITY = {
    "generator": str,
    "pixelsPerUnit": float,
    "pages": [{"image": str, "width": int, "height": int, "sprites": [{"name": str, "source": str, "rect": XYWH, "pivot": {"x": float, "y": float}}]}],
    "animations": [{"name": str, "fps": float, "frames": [str]}],
}


def test_texturepacker_hash_schema(sheet_files):
    sheet, _, out = sheet_files
    doc = json.loads(out["texturepacker-hash"][0].read_text())
    check_schema(doc, {"frames": dict, "meta": TP_META})
    for entry in doc["frames"].values():
        check_schema(entry, TP_FRAME)
    assert set(doc["frames"]) == {f.name for f in sheet.frames}
    assert doc["meta"]["image"] == "sheet.png" and doc["meta"]["size"] == {"w": sheet.pages[0].size[0], "h": sheet.pages[0].size[1]}
    assert doc["animations"]["hero/walk"] == WALK  # PixiJS reads this object
    assert doc["animations"]["jump"] == JUMP


def test_texturepacker_array_schema(sheet_files):
    sheet, _, out = sheet_files
    doc = json.loads(out["texturepacker-array"][0].read_text())
    check_schema(doc, {"frames": [TP_FRAME | {"filename": str}], "meta": TP_META})
    assert [f["filename"] for f in doc["frames"]] == [f.name for f in sheet.frames]
    for entry in doc["frames"]:
        f = sheet.frame(entry["filename"])
        assert entry["frame"] == {"x": f.x, "y": f.y, "w": f.w, "h": f.h}
        assert entry["spriteSourceSize"] == {"x": f.offset_x, "y": f.offset_y, "w": f.w, "h": f.h}


def test_aseprite_schema_and_frame_tags(sheet_files):
    sheet, _, out = sheet_files
    doc = json.loads(out["aseprite"][0].read_text())
    check_schema(doc, {"frames": [ASE_FRAME], "meta": TP_META | {"frameTags": [ASE_TAG], "layers": list}})
    # Phaser's createFromAseprite asks the atlas for frame str(i) for each i in a tag's range
    assert [f["filename"] for f in doc["frames"]] == [str(i) for i in range(len(sheet.frames))]
    by_rect = {(f.x, f.y, f.w, f.h): f.name for f in sheet.frames}
    names = [by_rect[tuple(e["frame"][k] for k in "xywh")] for e in doc["frames"]]
    assert sorted(names) == sorted(f.name for f in sheet.frames)
    assert all(f["duration"] == 100 for f in doc["frames"])  # 10 fps
    tags = {t["name"]: t for t in doc["meta"]["frameTags"]}
    for anim, order in (("hero/walk", WALK), ("jump", JUMP)):
        t = tags[anim]
        assert names[t["from"] : t["to"] + 1] == order and t["direction"] == "forward"


def test_aseprite_tags_resolve_the_way_phaser_reads_them(sheet_files):
    """Phaser's createFromAseprite takes frame str(i) of the atlas for each i in a tag's range."""
    sheet, _, out = sheet_files
    doc = json.loads(out["aseprite"][0].read_text())
    atlas = {e["filename"]: e for e in doc["frames"]}  # what Phaser's atlas loader keys frames by
    tags = {t["name"]: t for t in doc["meta"]["frameTags"]}
    for anim, order in (("hero/walk", WALK), ("jump", JUMP)):
        shown = [atlas[str(i)] for i in range(tags[anim]["from"], tags[anim]["to"] + 1)]
        want = [sheet.frame(n) for n in order]
        assert [e["frame"] for e in shown] == [{"x": f.x, "y": f.y, "w": f.w, "h": f.h} for f in want]
        assert [e["spriteSourceSize"]["x"] for e in shown] == [f.offset_x for f in want]


def test_unity_schema_rects_and_script(sheet_files):
    sheet, _, out = sheet_files
    data, script = out["unity"]
    doc = json.loads(data.read_text())
    check_schema(doc, UNITY)
    page = doc["pages"][0]
    assert page["image"] == "sheet.png"
    for s in page["sprites"]:
        f = sheet.frame(s["source"])
        assert "/" not in s["name"] and not s["name"].endswith(".png")
        # bottom-left origin
        assert s["rect"] == {"x": f.x, "y": page["height"] - f.y - f.h, "w": f.w, "h": f.h}
        # the pivot puts the untrimmed image's centre back where it was
        cx = s["rect"]["x"] + s["pivot"]["x"] * f.w
        cy_down = (page["height"] - s["rect"]["y"] - s["pivot"]["y"] * f.h) - f.y  # from the frame top
        assert cx - f.x + f.offset_x == pytest.approx(f.source_w / 2, abs=1e-3)
        assert cy_down + f.offset_y == pytest.approx(f.source_h / 2, abs=1e-3)
    anims = {a["name"]: a["frames"] for a in doc["animations"]}
    assert anims["hero/walk"] == ["hero_walk0", "hero_walk1", "hero_walk2", "hero_walk10"]
    text = script.read_text()
    assert script.name == "SpriteSheetImporter.cs" and text == SCRIPT.read_text()
    assert "TextureImporter" in text and "spritesheet" in text and text.count("{") == text.count("}")


def test_unity_names_that_clash_are_refused(tmp_path):
    from PIL import Image

    (tmp_path / "in" / "a").mkdir(parents=True)
    Image.new("RGBA", (4, 4), (255, 0, 0, 255)).save(tmp_path / "in" / "a" / "b.png")
    Image.new("RGBA", (4, 4), (0, 255, 0, 255)).save(tmp_path / "in" / "a_b.png")
    sheet = pack_sheet(load_sprites([tmp_path / "in"]), SheetOptions())
    pngs = save_pages(sheet, tmp_path / "s.png")
    with pytest.raises(UserError, match="would both be the Unity sprite 'a_b'"):
        export(sheet, pngs, "unity", tmp_path / "s.png")


# --------------------------------------------------------------------------- Godot .tres


class TresParser:
    """Godot's text resource format: [section attr=value …] headers, then `key = value` lines.

    Values are Variants: numbers, "strings", &"string names", true/false/null, [arrays],
    {dictionaries} and constructor calls such as Rect2(…), ExtResource("…").
    """

    TOKEN = re.compile(r'\s*(?:(&?"(?:[^"\\]|\\.)*")|([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))', re.S)

    def __init__(self, text: str):
        self.text = text

    def sections(self) -> list[tuple[str, dict, dict]]:
        out: list[tuple[str, dict, dict]] = []
        pos = 0
        text = self.text
        while pos < len(text):
            if text[pos] in " \t\r\n":
                pos += 1
                continue
            if text[pos] == "[":
                end = text.index("]", pos)
                head = text[pos + 1 : end]
                tag, _, rest = head.partition(" ")
                attrs = {}
                for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s]+)', rest):
                    attrs[m.group(1)] = self.value(m.group(2))
                out.append((tag, attrs, {}))
                pos = end + 1
                continue
            m = re.compile(r"([\w/:]+)\s*=\s*").match(text, pos)  # Godot property paths: sources/0, 0:0/0
            assert m, f"unexpected text at {pos}: {text[pos:pos + 40]!r}"
            value, pos = self.parse(text, m.end())
            out[-1][2][m.group(1)] = value
        return out

    def value(self, text: str):
        v, end = self.parse(text, 0)
        assert text[end:].strip() == ""
        return v

    def parse(self, text: str, pos: int):
        m = self.TOKEN.match(text, pos)
        assert m, f"bad value at {pos}"
        string, num, ident, punct = m.groups()
        pos = m.end()
        if string is not None:
            raw = string[2:-1] if string.startswith("&") else string[1:-1]
            s = re.sub(r"\\(.)", lambda k: {"n": "\n"}.get(k.group(1), k.group(1)), raw)
            return (("StringName", s) if string.startswith("&") else s), pos
        if num is not None:
            return (float(num) if any(c in num for c in ".e") else int(num)), pos
        if ident is not None:
            if ident in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[ident], pos
            args, pos = self.sequence(text, pos, "(", ")")
            return (ident, *args), pos
        if punct == "[":
            return self.sequence(text, pos - 1, "[", "]")
        if punct == "{":
            items, pos = self.sequence(text, pos - 1, "{", "}", pairs=True)
            return dict(items), pos
        raise AssertionError(f"unexpected {punct!r} at {pos}")

    def sequence(self, text, pos, open_, close, pairs=False):
        m = self.TOKEN.match(text, pos)
        assert m and m.group(4) == open_, f"expected {open_} at {pos}"
        pos = m.end()
        items = []
        while True:
            m = self.TOKEN.match(text, pos)
            assert m, f"unbalanced {open_}"
            if m.group(4) == close:
                return items, m.end()
            if items:
                assert m.group(4) == ",", f"expected , at {pos}"
                pos = m.end()
            key, pos = self.parse(text, pos)
            if pairs:
                m = self.TOKEN.match(text, pos)
                assert m.group(4) == ":", f"expected : at {pos}"
                val, pos = self.parse(text, m.end())
                items.append((key, val))
            else:
                items.append(key)


def check_tres(path: Path, sheet, png_paths: list[Path]):
    sections = TresParser(path.read_text()).sections()
    tag, head, _ = sections[0]
    assert tag == "gd_resource" and head["type"] == "SpriteFrames" and head["format"] == 3
    ext = {a["id"]: a for t, a, _ in sections if t == "ext_resource"}
    sub = {a["id"]: p for t, a, p in sections if t == "sub_resource"}
    assert head["load_steps"] == len(ext) + len(sub) + 1
    assert sorted(a["path"] for a in ext.values()) == sorted(p.name for p in png_paths)
    assert all(a["type"] == "Texture2D" for a in ext.values())
    resource = [p for t, _, p in sections if t == "resource"]
    assert len(resource) == 1 and tag == "gd_resource"
    region_of = {}
    for sid, props in sub.items():
        atlas = props["atlas"]
        assert atlas[0] == "ExtResource" and atlas[1] in ext, f"{sid} names a missing texture"
        region_of[sid] = (ext[atlas[1]]["path"], props["region"], props.get("margin"))
    anims = {}
    for anim in resource[0]["animations"]:
        assert set(anim) == {"frames", "loop", "name", "speed"}
        assert anim["name"][0] == "StringName" and isinstance(anim["speed"], float)
        ids = []
        for fr in anim["frames"]:
            assert fr["duration"] == 1.0 and fr["texture"][0] == "SubResource"
            assert fr["texture"][1] in sub, "an animation names a missing sub-resource"
            ids.append(fr["texture"][1])
        anims[anim["name"][1]] = ids
    # every frame's region (and margin) equals the sheet's frame
    name_to_sid = {}
    for f in sheet.frames:
        matches = [
            sid
            for sid, (page, region, margin) in region_of.items()
            if page == png_paths[f.page].name and region == ("Rect2", f.x, f.y, f.w, f.h)
        ]
        assert len(matches) == 1, f.name
        sid = matches[0]
        margin = region_of[sid][2]
        if f.trimmed:
            assert margin == ("Rect2", f.offset_x, f.offset_y, f.source_w - f.w, f.source_h - f.h)
        else:
            assert margin is None
        name_to_sid[f.name] = sid
    return anims, name_to_sid


def test_godot_tres_parses_and_references_resolve(sheet_files):
    sheet, _, out = sheet_files
    tres = out["godot4"][0]
    assert tres.suffix == ".tres"
    anims, sid = check_tres(tres, sheet, [tres.with_suffix(".png")])
    assert anims["hero/walk"] == [sid[n] for n in WALK]
    assert anims["jump"] == [sid[n] for n in JUMP]
    # frames in no animation still reach Godot
    assert sorted(anims["default"]) == sorted(sid[n] for n in ("coin.png", "gem.png", "rock.png", "tree.png"))


def test_godot_multi_page_has_one_texture_per_page(sheet_files):
    _, multi, out = sheet_files
    tres = out["godot-multi"][0]
    pages = [tres.with_name(f"sheet-{i + 1}.png") for i in range(len(multi.pages))]
    assert len(pages) > 1
    check_tres(tres, multi, pages)


def test_godot_default_animation_holds_every_frame(tmp_path):
    from PIL import Image

    (tmp_path / "in").mkdir()
    for name in ("b.png", "a.png", "c.png"):
        Image.new("RGBA", (6, 5), (9, 9, 9, 255)).save(tmp_path / "in" / name)
    sheet = pack_sheet(load_sprites([tmp_path / "in"]), SheetOptions())
    pngs = save_pages(sheet, tmp_path / "s.png")
    tres = export(sheet, pngs, "godot4", tmp_path / "s.png")[0]
    anims, sid = check_tres(tres, sheet, pngs)
    assert list(anims) == ["default"] and anims["default"] == [sid["a.png"], sid["b.png"], sid["c.png"]]
    text = tres.read_text()
    assert '"name": &"default"' in text and "[resource]" in text


def test_godot_uses_res_paths_inside_a_project(tmp_path):
    from PIL import Image

    (tmp_path / "game" / "art").mkdir(parents=True)
    (tmp_path / "game" / "project.godot").write_text("config_version=5\n")
    (tmp_path / "in").mkdir()
    Image.new("RGBA", (4, 4), (1, 2, 3, 255)).save(tmp_path / "in" / "x.png")
    sheet = pack_sheet(load_sprites([tmp_path / "in"]), SheetOptions())
    png = tmp_path / "game" / "art" / "hero.png"
    tres = export(sheet, save_pages(sheet, png), "godot4", png)[0]
    assert 'path="res://art/hero.png"' in tres.read_text()


def test_formats_without_rotation_refuse_rotated_frames(tmp_path):
    from PIL import Image

    (tmp_path / "in").mkdir()
    Image.new("RGBA", (30, 4), (1, 2, 3, 255)).save(tmp_path / "in" / "long.png")
    Image.new("RGBA", (4, 30), (1, 2, 3, 255)).save(tmp_path / "in" / "tall.png")
    sheet = pack_sheet(load_sprites([tmp_path / "in"]), SheetOptions(rotate=True))
    if not any(f.rotated for f in sheet.frames):
        pytest.skip("the packer found a layout without turning a frame")
    pngs = save_pages(sheet, tmp_path / "s.png")
    for fmt in ("godot4", "unity", "aseprite"):
        with pytest.raises(UserError, match="rotate"):
            export(sheet, pngs, fmt, tmp_path / "s.png")
