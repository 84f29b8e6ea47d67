"""Sprites read by a child process while the kernels load (core/sprite_reader.py): the same
sprites as reading them here, the kernels loaded once, and every failure redone here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asset_studio.core import sprite_reader
from asset_studio.core.sheet import collect_images, read_sprites
from asset_studio.errors import UserError


@pytest.fixture
def sprite_folder(tmp_path: Path) -> Path:
    """Sprites in several PNG modes (the child must convert them as read_image does), some with
    transparent margins, in a sub-folder too."""
    rng = np.random.default_rng(5)
    folder = tmp_path / "sprites"
    (folder / "walk").mkdir(parents=True)
    for i in range(14):
        w, h = (int(v) for v in rng.integers(3, 40, 2))
        px = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
        px[: h // 3] = 0  # a transparent band to trim
        im = Image.fromarray(px, "RGBA")
        im = [im, im.convert("RGB"), im.convert("LA"), im.convert("P")][i % 4]
        im.save(folder / ("walk" if i % 5 == 0 else ".") / f"s{i}.png")
    return folder


@pytest.fixture
def spawned(monkeypatch):
    """Lets a handful of sprites go to the child, and counts the children started."""
    monkeypatch.setattr(sprite_reader, "HELPER_FROM", 4)
    monkeypatch.setattr(sprite_reader.os, "cpu_count", lambda: 2)
    started = []
    real = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(sprite_reader.subprocess, "Popen", popen)
    return started


def same(a, b) -> bool:
    return [(s.name, s.trim, s.image.mode, s.image.size) for s in a] == [(s.name, s.trim, s.image.mode, s.image.size) for s in b] and all(
        np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b))


@pytest.mark.parametrize("trim", [True, False])
def test_the_child_reads_what_this_process_would(sprite_folder, spawned, trim):
    found = collect_images([sprite_folder])
    calls = []
    sprites = sprite_reader.read_sprites_beside(found, trim, meanwhile=lambda: calls.append(1))
    assert len(spawned) == 1 and calls == [1]
    assert same(sprites, read_sprites(found, trim))


def test_few_sprites_or_one_core_are_read_here(sprite_folder, monkeypatch):
    found = collect_images([sprite_folder])
    monkeypatch.setattr(sprite_reader.subprocess, "Popen", lambda *a, **k: pytest.fail("no child for a few sprites"))
    calls = []
    assert same(sprite_reader.read_sprites_beside(found, True, lambda: calls.append(1)), read_sprites(found, True))
    monkeypatch.setattr(sprite_reader, "HELPER_FROM", 1)
    monkeypatch.setattr(sprite_reader.os, "cpu_count", lambda: 1)
    sprite_reader.read_sprites_beside(found, True, lambda: calls.append(1))
    assert calls == [1, 1]


def test_a_bad_file_gets_the_usual_sentence(sprite_folder, spawned):
    (sprite_folder / "s1.png").write_bytes(b"not a png at all")
    found = collect_images([sprite_folder])
    with pytest.raises(UserError) as here:
        read_sprites(found, True)
    with pytest.raises(UserError) as beside:
        sprite_reader.read_sprites_beside(found, True, meanwhile=lambda: None)
    assert str(beside.value) == str(here.value) and "s1.png" in str(here.value)
    assert len(spawned) == 1


def test_a_child_that_cannot_start_or_answers_badly_is_redone_here(sprite_folder, spawned, monkeypatch):
    found = collect_images([sprite_folder])
    expected = read_sprites(found, True)
    monkeypatch.setattr(sprite_reader.sys, "executable", str(sprite_folder / "no-python-here"))
    calls = []
    assert same(sprite_reader.read_sprites_beside(found, True, lambda: calls.append(1)), expected) and calls == [1]
    monkeypatch.undo()
    import tempfile

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_room)
    assert same(sprite_reader.read_sprites_beside(found, True, lambda: calls.append(1)), expected) and calls == [1, 1]
    monkeypatch.undo()
    monkeypatch.setattr(sprite_reader, "HELPER_FROM", 4)
    monkeypatch.setattr(sprite_reader.os, "cpu_count", lambda: 2)
    # a child that writes a short answer and one that writes too much
    for junk in ("b'\\x05\\x00\\x00\\x00'", "b'\\x00' * 10**6"):
        code = f"import sys; open(sys.argv[2], 'wb').write({junk})"
        monkeypatch.setattr(sprite_reader, "_CHILD", code)
        assert same(sprite_reader.read_sprites_beside(found, True, lambda: None), expected)


@pytest.mark.parametrize("options", [{"trim": True}, {"trim": True, "rotate": True, "padding": 2, "extrude": 1},
                                     {"grid": (40, 40)}])
def test_the_sheet_command_gives_the_same_sheet_either_way(sprite_folder, tmp_path, spawned, monkeypatch, options):
    """Sprites from the child carry arrays the frames are cut from without copies (rotated
    frames as turned views): the pages come out the same as from sprites read here."""
    from asset_studio.service import SheetExport, export_sheet

    def export(name: str):
        result = export_sheet(SheetExport(inputs=[sprite_folder], out=tmp_path / name / "s.png", format="texturepacker-hash", **options))
        assert any(f.rotated for f in result.sheet.frames) == bool(options.get("rotate"))
        return np.asarray(result.sheet.pages[0].image), (tmp_path / name / "s.json").read_text()

    import sys

    monkeypatch.delitem(sys.modules, "asset_studio.core.sheet_kernels", raising=False)  # as in a fresh process
    beside = export("a")
    assert len(spawned) == 1
    here = export("b")  # the kernels are loaded now: read here
    assert len(spawned) == 1
    assert np.array_equal(beside[0], here[0]) and beside[1] == here[1]
