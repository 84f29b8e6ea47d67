"""`asset-studio sheet` end to end, and the one-line errors bad input gets (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main
from test_sheet import make_sprites, restore, same_visible


@pytest.fixture
def sprites(tmp_path):
    folder = tmp_path / "sprites"
    return folder, make_sprites(folder, seed=3)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize(
    "fmt, data",
    [("texturepacker-hash", "sheet.json"), ("texturepacker-array", "sheet.json"), ("aseprite", "sheet.json"), ("godot4", "sheet.tres"), ("unity", "sheet.json")],
)
def test_sheet_writes_png_and_data_beside_it(sprites, tmp_path, capsys, fmt, data):
    folder, _ = sprites
    out = tmp_path / "out" / "sheet.png"
    code, stdout, err = run_cli(capsys, "sheet", folder, "--out", out, "--format", fmt, "--trim", "--padding", "1")
    assert code == 0, err
    assert out.is_file() and (out.parent / data).is_file()
    assert "packed 10 frames on 1 page(s)" in stdout
    if fmt == "unity":
        assert (out.parent / "SpriteSheetImporter.cs").is_file()


def test_sheet_frames_round_trip_through_the_cli(sprites, tmp_path, capsys):
    folder, sources = sprites
    out = tmp_path / "o" / "atlas.png"
    code, _, err = run_cli(
        capsys, "sheet", folder, "--out", out, "--format", "texturepacker-hash", "--trim", "--extrude", "1", "--padding", "2", "--pot"
    )
    assert code == 0, err
    doc = json.loads((out.parent / "atlas.json").read_text())
    page = np.asarray(Image.open(out).convert("RGBA"))
    w, h = page.shape[1], page.shape[0]
    assert w & (w - 1) == 0 and h & (h - 1) == 0
    for name, entry in doc["frames"].items():
        assert same_visible(restore(page, entry), sources[name]), name


def test_multi_page_names(sprites, tmp_path, capsys):
    folder, _ = sprites
    out = tmp_path / "o" / "s.png"
    code, stdout, err = run_cli(capsys, "sheet", folder, "--out", out, "--format", "texturepacker-array", "--trim", "--max-size", "40")
    assert code == 0, err
    pages = sorted(p.name for p in out.parent.glob("s-*.png"))
    assert len(pages) >= 2 and pages[0] == "s-1.png" and not out.exists()
    for i in range(1, len(pages) + 1):
        doc = json.loads((out.parent / f"s-{i}.json").read_text())
        assert doc["meta"]["image"] == f"s-{i}.png" and len(doc["meta"]["related_multi_packs"]) == len(pages) - 1


def test_grid_and_files_given_one_by_one(sprites, tmp_path, capsys):
    folder, _ = sprites
    files = sorted((folder / "hero").glob("*.png"))
    out = tmp_path / "g" / "walk.png"
    code, _, err = run_cli(capsys, "sheet", *files, "--out", out, "--format", "godot4", "--grid", "48x48")
    assert code == 0, err
    text = (out.parent / "walk.tres").read_text()
    assert '"name": &"walk"' in text and text.count("region = Rect2(") == 4


def one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asset-studio: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


def test_corrupt_image_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    Image.new("RGBA", (4, 4)).save(tmp_path / "in" / "ok.png")
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, _, err = run_cli(capsys, "sheet", tmp_path / "in", "--out", tmp_path / "s.png", "--format", "godot4")
    one_line_error(code, err, "broken.png", "not a readable image")


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "sheet", tmp_path / "empty", "--out", tmp_path / "s.png", "--format", "unity")
    one_line_error(code, err, "holds no images")


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "sheet", tmp_path / "nope", "--out", tmp_path / "s.png", "--format", "unity")
    one_line_error(code, err, "does not exist")


def test_sprite_larger_than_max_size_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    Image.new("RGBA", (100, 20), (5, 5, 5, 255)).save(tmp_path / "in" / "wide.png")
    code, _, err = run_cli(capsys, "sheet", tmp_path / "in", "--out", tmp_path / "s.png", "--format", "texturepacker-hash", "--max-size", "64")
    one_line_error(code, err, "wide.png", "larger than the maximum sheet size 64")


def test_names_that_clash_are_a_clear_error(tmp_path, capsys):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        Image.new("RGBA", (4, 4), (5, 5, 5, 255)).save(tmp_path / d / "hero.png")
    code, _, err = run_cli(capsys, "sheet", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "s.png", "--format", "godot4")
    one_line_error(code, err, "hero.png", "share the frame name")


def test_bad_options_are_clear_errors(sprites, tmp_path, capsys):
    folder, _ = sprites
    code, _, err = run_cli(capsys, "sheet", folder, "--out", tmp_path / "s.png", "--format", "godot4", "--rotate")
    one_line_error(code, err, "rotate")
    code, _, err = run_cli(capsys, "sheet", folder, "--out", tmp_path / "s.png", "--format", "godot4", "--grid", "big")
    one_line_error(code, err, "WxH")
    code, _, err = run_cli(capsys, "sheet", folder, "--out", tmp_path / "s.jpg", "--format", "godot4")
    one_line_error(code, err, ".png")
    code, _, err = run_cli(capsys, "sheet", folder, "--out", tmp_path / "s.png", "--format", "aseprite", "--max-size", "40", "--trim")
    one_line_error(code, err, "Aseprite", "--max-size")


def test_animations_split_across_pages_are_named_in_a_warning(tmp_path, capsys):
    from PIL import Image

    from asset_studio.cli import main

    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):  # four 70x70 frames of one animation cannot share a 128x128 page
        Image.new("RGBA", (70, 70), (200, 40 * i, 40, 255)).save(src / f"walk{i}.png")
    code = main(["sheet", str(src), "--out", str(tmp_path / "s.png"), "--format", "texturepacker-hash",
                 "--max-size", "128"])
    err = capsys.readouterr().err
    assert code == 0
    assert "walk" in err and "span several pages" in err


def test_rerunning_into_the_same_sheet_replaces_only_its_own_files(sprites, tmp_path, capsys):
    folder, _ = sprites
    out = tmp_path / "out" / "sheet.png"
    for _ in range(2):  # the second run replaces the first run's page and data without --force
        code, _, err = run_cli(capsys, "sheet", folder, "--out", out, "--format", "godot4")
        assert code == 0, err
    other = tmp_path / "out" / "hero.tres"
    other.write_text("[gd_resource type=\"Theme\" format=3]\n")
    code, _, err = run_cli(capsys, "sheet", folder, "--out", tmp_path / "out" / "hero.png", "--format", "godot4")
    assert code == 2 and "hero.tres already exists and was not written by this command" in err
    assert other.read_text() == "[gd_resource type=\"Theme\" format=3]\n" and not (tmp_path / "out" / "hero.png").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["hero.tres", "sheet.png", "sheet.tres"]


def test_a_command_line_builds_only_its_own_parser():
    """parser_for registers just the named command (a tenth of a second less per run), with the
    same options as the whole parser; no command or an unknown one gets the whole parser."""
    from asset_studio.cli import build_parser, parser_for, sub_names

    whole = build_parser()
    for name in sub_names(whole):
        alone = parser_for([name, "--some-option"])
        assert sub_names(alone) == {name}
        sub = lambda p: next(a for a in p._subparsers._group_actions).choices[name]  # noqa: E731
        assert sub(alone).format_help() == sub(whole).format_help()
    assert sub_names(parser_for([])) == sub_names(whole)
    assert sub_names(parser_for(["shet"])) == sub_names(whole)
    assert sub_names(parser_for(["--version"])) == sub_names(whole)
