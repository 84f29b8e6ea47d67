"""Sprites read by a child process while the kernels load (core/sprite_reader.py): the same
sprites as reading them here, the kernels loaded once, and every failure redone here."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

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
def spawned(monkeypatch, tmp_path):
    """Lets a handful of sprites go to the child in chunks of two, keeps its temporary folder
    under tmp_path, and counts the children started."""
    import tempfile

    monkeypatch.setattr(sprite_reader, "HELPER_FROM", 4)
    monkeypatch.setattr(sprite_reader, "CHUNK", 2)
    monkeypatch.setattr(sprite_reader.os, "cpu_count", lambda: 2)
    (tmp_path / "t").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t"))
    started = []
    real = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(sprite_reader.subprocess, "Popen", popen)
    return started


def child_claimed(tmp_path: Path) -> Callable[[], None]:
    """A `meanwhile` that returns once the child has claimed its first chunk (the kernels' load
    takes that long in a real run; here it makes the child's share certain)."""
    def wait() -> None:
        deadline = time.monotonic() + 120  # a safety net, not a measurement
        while not list((tmp_path / "t").glob("*/0.claim")):
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.005)
    return wait


@pytest.fixture
def read_here(monkeypatch):
    """The chunks this process reads itself (the child's are not counted)."""
    import asset_studio.core.sheet as sheet

    chunks = []
    real = sheet.read_sprites
    monkeypatch.setattr(sheet, "read_sprites", lambda found, trim=False: chunks.append(len(found)) or real(found, trim))
    return chunks


def same(a, b) -> bool:
    return [(s.name, s.trim, s.image.mode, s.image.size) for s in a] == [(s.name, s.trim, s.image.mode, s.image.size) for s in b] and all(
        np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b))


@pytest.mark.parametrize("trim", [True, False])
def test_the_child_reads_what_this_process_would(sprite_folder, spawned, read_here, tmp_path, trim):
    found = collect_images([sprite_folder])
    expected = read_sprites(found, trim)
    read_here.clear()
    sprites = sprite_reader.read_sprites_beside(found, trim, meanwhile=child_claimed(tmp_path))
    assert len(spawned) == 1
    assert sum(read_here) < len(found)  # the child read some chunks (at least the first)
    assert same(sprites, expected)


def test_few_sprites_or_one_core_are_read_here(sprite_folder, monkeypatch):
    found = collect_images([sprite_folder])
    monkeypatch.setattr(sprite_reader.subprocess, "Popen", lambda *a, **k: pytest.fail("no child for a few sprites"))
    calls = []
    assert same(sprite_reader.read_sprites_beside(found, True, lambda: calls.append(1)), read_sprites(found, True))
    monkeypatch.setattr(sprite_reader, "HELPER_FROM", 1)
    monkeypatch.setattr(sprite_reader.os, "cpu_count", lambda: 1)
    sprite_reader.read_sprites_beside(found, True, lambda: calls.append(1))
    assert calls == [1, 1]


@pytest.mark.parametrize("bad", ["s0.png", "s13.png"])  # a chunk the child reads, one this process reads
def test_a_bad_file_gets_the_usual_sentence(sprite_folder, spawned, tmp_path, bad):
    (sprite_folder / bad).write_bytes(b"not a png at all")
    found = collect_images([sprite_folder])
    with pytest.raises(UserError) as here:
        read_sprites(found, True)
    with pytest.raises(UserError) as beside:
        sprite_reader.read_sprites_beside(found, True, meanwhile=child_claimed(tmp_path))
    assert str(beside.value) == str(here.value) and bad in str(here.value)
    assert len(spawned) == 1


def test_a_child_that_cannot_start_or_answers_badly_is_redone_here(sprite_folder, spawned, monkeypatch, tmp_path):
    found = collect_images([sprite_folder])
    expected = read_sprites(found, True)
    with monkeypatch.context() as m:
        m.setattr(sprite_reader.sys, "executable", str(sprite_folder / "no-python-here"))
        calls = []
        assert same(sprite_reader.read_sprites_beside(found, True, lambda: calls.append(1)), expected) and calls == [1]
    with monkeypatch.context() as m:
        import tempfile

        def no_room(*args, **kwargs):
            raise OSError(28, "No space left on device")

        m.setattr(tempfile, "TemporaryDirectory", no_room)
        assert same(sprite_reader.read_sprites_beside(found, True, lambda: calls.append(1)), expected) and calls == [1, 1]
    # children that claim chunks and then write a short answer, too much, or nothing at all
    for junk in ("b'\\x05\\x00\\x00\\x00'", "b'\\x00' * 10**6", None):
        write = f"open(os.path.join(d, '0.bin'), 'wb').write({junk}); " if junk else ""
        code = f"import os, sys; d = sys.argv[1]; open(os.path.join(d, '0.claim'), 'w').close(); {write}open(os.path.join(d, '1.claim'), 'w').close()"
        monkeypatch.setattr(sprite_reader, "_CHILD", code)
        assert same(sprite_reader.read_sprites_beside(found, True, child_claimed(tmp_path)), expected)


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

    import asset_studio.core.sheet as sheet

    monkeypatch.delitem(sys.modules, "asset_studio.core.sheet_kernels", raising=False)  # as in a fresh process
    load = sheet.load_kernels
    monkeypatch.setattr(sheet, "load_kernels", lambda: (child_claimed(tmp_path)(), load()))  # the child gets chunks
    beside = export("a")
    assert len(spawned) == 1
    here = export("b")  # the kernels are loaded now: read here
    assert len(spawned) == 1
    assert np.array_equal(beside[0], here[0]) and beside[1] == here[1]
