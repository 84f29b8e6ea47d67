"""Never destroy what the artist already has: atomic outputs, refusals by name, sentences for a
full or read-only disk, and images of every mode read correctly (core/outputs.py, core/images.py)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.core import outputs
from asset_studio.core.outputs import check_targets, png_writer, write_file, write_set, written_by
from asset_studio.errors import UserError, describe_os_error

REPO = Path(__file__).resolve().parents[1]


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under FOLDER (hidden ones too) with the sha256 of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith((".import-", ".replaced-"))]


def sprite(path: Path, color=(200, 30, 30, 255), size=(12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", size, color).save(path)
    return path


def layout_file(path: Path) -> Path:
    path.write_text(json.dumps({"width": 64, "height": 32, "elements": [
        {"type": "text", "text": "GO", "box": [0, 0, 64, 32], "size": 20}]}), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# --- the writer -------------------------------------------------------------------------------------


class FailingStream:
    """A file whose N-th write fails with ENOSPC, as on a disk that fills up mid-file."""

    def __init__(self, raw, fail_at: int):
        self.raw, self.fail_at, self.count = raw, fail_at, 0

    def write(self, data):
        self.count += 1
        if self.count >= self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.raw.write(data)

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.raw.close()


@pytest.fixture
def disk_fills_at(monkeypatch):
    """Make the N-th write of each output fail with ENOSPC (counted per output file)."""

    def arm(n: int):
        real = outputs._open_stream
        monkeypatch.setattr(outputs, "_open_stream", lambda fd: FailingStream(real(fd), n))

    return arm


def test_write_file_is_complete_or_untouched(tmp_path, disk_fills_at):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old" * 1000)
    write_file(target, lambda f: [f.write(b"x" * 10) for _ in range(5)])
    assert target.read_bytes() == b"x" * 50 and temp_files(tmp_path) == []
    before = target.read_bytes()
    disk_fills_at(3)
    with pytest.raises(UserError) as info:
        write_file(target, lambda f: [f.write(b"y" * 10) for _ in range(5)])
    message = str(info.value)
    assert "no space left" in message and str(tmp_path) in message and ".tmp" not in message
    assert target.read_bytes() == before and temp_files(tmp_path) == []


def test_a_set_replaces_nothing_until_every_member_is_written(tmp_path, monkeypatch):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    for p in (a, b, c):
        p.write_text("old " + p.name)
    before = snapshot(tmp_path)

    def third_fails(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError, match="no space left"):
        write_set([(a, outputs.text_writer("new a")), (b, outputs.text_writer("new b")), (c, third_fails)])
    assert snapshot(tmp_path) == before  # a and b, already written in full, were not put in place
    stale = tmp_path / "stale.txt"
    stale.write_text("x")
    write_set([(a, outputs.text_writer("new a")), (b, outputs.text_writer("new b"))], remove=[stale])
    assert a.read_text() == "new a" and b.read_text() == "new b" and not stale.exists() and temp_files(tmp_path) == []


def test_ctrl_c_inside_a_writer_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def interrupted(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file(target, interrupted)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.bin"]


CHILD = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    from asset_studio.core.outputs import write_file

    # A child of a background job starts with Ctrl-C ignored; an artist's terminal delivers it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def slow(f):
        for i in range(400):
            f.write(b"n" * 65536)
            f.flush()
            if i == 5:
                print("writing", flush=True)
            time.sleep(0.01)

    write_file(Path(sys.argv[1]), slow)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_killed_writer_leaves_the_old_output_whole(tmp_path, sig):
    target = tmp_path / "big.bin"
    old = os.urandom(300_000)
    target.write_bytes(old)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline().strip() == b"writing"
        child.send_signal(sig)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert target.read_bytes() == old  # byte-identical: the new content never took its name
    left = temp_files(tmp_path)
    if sig == signal.SIGINT or outputs.nameless_files_supported(tmp_path):
        assert left == []  # Ctrl-C cleans up in finally; a nameless file has nothing to leave
    else:
        # This kernel cannot name O_TMPFILE files (e.g. a sandbox answering EXDEV), so a kill -9
        # leaves a hidden, pid-stamped temp file: the next write into the folder sweeps it.
        assert all(name.startswith(".big.bin.") for name in left)
        write_file(tmp_path / "other.bin", outputs.bytes_writer(b"1"))
        assert temp_files(tmp_path) == []
    assert target.read_bytes() == old


@pytest.mark.skipif(not getattr(os, "O_TMPFILE", 0) or not sys.platform.startswith("linux"), reason="O_TMPFILE is Linux-only")
def test_the_nameless_file_path(tmp_path, monkeypatch):
    """Where the kernel names O_TMPFILE files (linkat through /proc), outputs are written with no
    name at all until complete. Some sandboxes (this test machine's included) refuse that link
    with EXDEV, so the link is emulated by copying the nameless file's bytes to the new name with
    the same exclusive semantics; the control flow around it is the real one."""
    real_link = os.link

    def link(src, dst, *, follow_symlinks=True):
        if str(src).startswith("/proc/self/fd/"):
            with open(src, "rb") as nameless, open(dst, "xb") as named:
                named.write(nameless.read())
            return
        real_link(src, dst)

    monkeypatch.setattr(outputs.os, "link", link)
    monkeypatch.setitem(outputs._TMPFILE_LINKS, os.stat(tmp_path).st_dev, True)
    assert outputs.nameless_files_supported(tmp_path)
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    seen = []

    def writer(f):
        f.write(b"new")
        seen.append(sorted(os.listdir(tmp_path)))

    write_file(target, writer)
    assert seen == [["a.bin"]] and target.read_bytes() == b"new" and os.listdir(tmp_path) == ["a.bin"]
    with outputs.staged(tmp_path / "b.bin", outputs.bytes_writer(b"b")) as new:
        assert not new.link_new(target) and new.link_new(tmp_path / "b.bin")
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"]

    def fails(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError, match="no space left"):
        write_set([(tmp_path / "c.bin", outputs.bytes_writer(b"c")), (target, fails)])
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"]


def test_messages_name_the_users_file_never_the_temp(tmp_path):
    temp = outputs.temp_name(tmp_path / "sheet.png")
    full = describe_os_error(OSError(errno.ENOSPC, "No space left on device", str(temp)))
    assert "no space left" in full and str(tmp_path) in full and ".tmp" not in full
    ro = describe_os_error(OSError(errno.EROFS, "Read-only file system"), tmp_path / "a.png")
    assert "read-only" in ro and str(tmp_path) in ro
    denied = describe_os_error(PermissionError(errno.EACCES, "Permission denied", str(temp)))
    assert "Permission denied" in denied and "sheet.png" in denied and ".tmp" not in denied
    long = describe_os_error(OSError(errno.ENAMETOOLONG, "File name too long"), tmp_path / ("n" * 300 + ".png"))
    assert "too long" in long and str(tmp_path) in long and len(long) < 300


def test_a_name_too_long_is_one_sentence_and_a_long_valid_name_works(tmp_path, capsys):
    code, _, err = cli(capsys, "layout", "new", tmp_path / ("n" * 300 + ".json"))
    assert code == 2 and err.count("\n") == 1 and "too long" in err and str(tmp_path) in err
    longest = tmp_path / ("n" * 245 + ".json")  # 250 bytes: valid, though its temp name would not be
    code, _, err = cli(capsys, "layout", "new", longest)
    assert code == 0, err
    assert longest.is_file() and temp_files(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_folder_without_write_permission_is_one_sentence(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, _, err = cli(capsys, "layout", "new", folder / "x.json")
    finally:
        folder.chmod(0o700)
    assert code == 2 and err.count("\n") == 1 and "Permission denied" in err and "Traceback" not in err


# --- a real full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only): the real ENOSPC, from the kernel."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not allowed here: {result.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_read_only_disk_is_one_sentence(small_disk, tmp_path, capsys):
    lay = layout_file(tmp_path / "p.json")
    assert cli(capsys, "layout", "render", lay, "--out", small_disk / "c.png")[0] == 0
    before = snapshot(small_disk)
    result = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"remounting read-only is not allowed here: {result.stderr.decode().strip()}")
    code, _, err = cli(capsys, "layout", "render", lay, "--out", small_disk / "c.png")
    assert code == 2 and err.count("\n") == 1 and "read-only" in err and str(small_disk) in err
    assert snapshot(small_disk) == before


def fill(disk: Path) -> None:
    """Fill the disk to its last byte (unbuffered, so nothing is left to fail at close)."""
    with open(disk / "filler", "ab", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1):
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    assert os.statvfs(disk).f_bavail == 0


def test_every_writing_command_on_a_full_disk_is_one_sentence(small_disk, tmp_path, capsys, home):
    src = tmp_path / "src"
    for i in range(3):
        sprite(src / f"s{i}.png", (40 * i, 90, 200, 255), (24, 24))
    lay = layout_file(tmp_path / "play.json")
    gen = sprite(tmp_path / "gen.png", (10, 120, 60, 255), (64, 32))
    # first, every output exists from an earlier, successful run
    runs = {
        "sheet": ["sheet", src, "--out", small_disk / "sheet.png", "--format", "texturepacker-hash"],
        "remove-bg": ["remove-bg", src, "--out", small_disk / "cut", "--method", "key"],
        "layout render": ["layout", "render", lay, "--control", "fill", "--out", small_disk / "fill.png"],
        "layout crisp": ["layout", "crisp", gen, lay, "--out", small_disk / "crisp.png"],
        "layout new": ["layout", "new", small_disk / "new.json", "--force"],
        "style export": ["style", "export", "pixel-art", "--out", small_disk / "p.stylepack"],
    }
    for argv in runs.values():
        code, _, err = cli(capsys, *argv)
        assert code == 0, err
    before = snapshot(small_disk)
    fill(small_disk)
    before_full = snapshot(small_disk)
    for name, argv in runs.items():
        if name == "layout new":  # a layout is small: give it a bigger one to write
            argv = ["layout", "new", small_disk / "new.json", "--force", "--text", "x" * 8000]
        code, _, err = cli(capsys, *argv)
        assert code == 2, f"{name}: {err}"
        assert err.count("\n") == 1 and "no space left" in err and str(small_disk) in err, f"{name}: {err}"
        assert ".tmp" not in err and "Traceback" not in err
    after = snapshot(small_disk)
    assert after == before_full and {k: v for k, v in after.items() if k != "filler"} == before
    assert temp_files(small_disk) == []


def test_style_import_replace_on_a_full_disk_keeps_the_installed_pack(small_disk, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ASSET_STUDIO_HOME", str(small_disk / "home"))
    pack = tmp_path / "p.stylepack"
    assert cli(capsys, "style", "export", "pixel-art", "--out", pack)[0] == 0
    assert cli(capsys, "style", "import", pack)[0] == 0
    styles = small_disk / "home" / "styles"
    installed = snapshot(styles)
    fill(small_disk)
    code, _, err = cli(capsys, "style", "import", pack, "--replace")
    assert code == 2 and err.count("\n") == 1 and "no space left" in err and "Traceback" not in err
    assert snapshot(styles) == installed and temp_files(styles) == []


def test_a_killed_import_is_cleaned_up_and_a_moved_pack_put_back(tmp_path, capsys, home):
    from asset_studio.core.stylepack import user_styles_dir

    pack = tmp_path / "p.stylepack"
    assert cli(capsys, "style", "export", "pixel-art", "--out", pack)[0] == 0
    assert cli(capsys, "style", "import", pack)[0] == 0
    styles = user_styles_dir()
    installed = snapshot(styles / "pixel-art-2")  # kept beside the bundled pixel-art
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free now: the state a kill -9 in the middle of an import leaves
    (styles / f".import-{dead.pid}-00aa11").mkdir()
    (styles / f".import-{dead.pid}-00aa11" / "style.toml").write_text("half")
    os.replace(styles / "pixel-art-2", styles / f".replaced-{dead.pid}-00bb22-pixel-art-2")
    assert cli(capsys, "style", "import", pack)[0] == 0  # any later import sweeps first
    assert snapshot(styles / "pixel-art-2") == installed
    assert temp_files(styles) == [] and (styles / "pixel-art-3").is_dir()


# --- refusals: output is input, an existing file not ours, --force ---------------------------------------


def test_check_targets_rule(tmp_path):
    a = sprite(tmp_path / "a.png")
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    with pytest.raises(UserError, match="a.png is one of the inputs.*--force"):
        check_targets([a], [a])
    with pytest.raises(UserError, match="notes.txt already exists and was not written by this command"):
        check_targets([other], [a])
    check_targets([other, a], [a], force=True)
    check_targets([tmp_path / "new.png"], [a])
    with pytest.raises(UserError, match="is a folder"):
        check_targets([tmp_path], [], force=True)
    ours = tmp_path / "ours.png"
    write_file(ours, png_writer(Image.new("RGB", (2, 2)), "layout render"))
    assert written_by(ours, "layout render") and not written_by(ours, "sheet") and not written_by(a, "sheet")
    check_targets([ours], [a], owned=lambda p: written_by(p, "layout render"))


def test_sheet_refuses_to_overwrite_its_own_input(tmp_path, capsys):
    src = tmp_path / "in"
    coin = sprite(src / "coinGold.png")
    sprite(src / "gem.png", (0, 200, 0, 255))
    before = coin.read_bytes()
    code, _, err = cli(capsys, "sheet", src, "--out", coin, "--format", "texturepacker-hash")
    assert code == 2 and "coinGold.png is one of the inputs" in err and "--force" in err
    assert coin.read_bytes() == before and not (src / "coinGold.json").exists()
    # multi-page names too: in/a.png would write a-1.png and a-2.png, and a-1.png is a sprite
    page = sprite(src / "a-1.png", (0, 0, 200, 255), (30, 30))
    page_bytes = page.read_bytes()
    code, _, err = cli(capsys, "sheet", src, "--out", src / "a.png", "--format", "texturepacker-hash", "--max-size", "32")
    assert code == 2 and "a-1.png is one of the inputs" in err
    assert page.read_bytes() == page_bytes and not (src / "a-2.png").exists()
    code, _, err = cli(capsys, "sheet", src, "--out", coin, "--format", "texturepacker-hash", "--force")
    assert code == 0, err
    assert written_by(coin, "sheet")


def test_sheet_keeps_an_unrelated_data_file_unless_forced(tmp_path, capsys):
    src = tmp_path / "in"
    sprite(src / "a.png")
    level = tmp_path / "level.json"
    level.write_text('{"tiles": [1, 2, 3]}')
    code, _, err = cli(capsys, "sheet", src, "--out", tmp_path / "level.png", "--format", "texturepacker-hash")
    assert code == 2 and "level.json already exists and was not written by this command" in err
    assert level.read_text() == '{"tiles": [1, 2, 3]}' and not (tmp_path / "level.png").exists()
    code, _, err = cli(capsys, "sheet", src, "--out", tmp_path / "level.png", "--format", "texturepacker-hash", "--force")
    assert code == 0 and json.loads(level.read_text())["meta"]["image"] == "level.png"


@pytest.mark.parametrize("fmt", ["texturepacker-hash", "aseprite", "godot4", "unity"])
def test_a_sheet_inside_its_input_folder_is_not_packed_again(tmp_path, capsys, fmt):
    src = tmp_path / "in"
    for i in range(3):
        sprite(src / f"s{i}.png", (60 * i, 10, 10, 255))
    for _ in range(2):  # the second run replaces its own files without --force and packs only the sprites
        code, out, err = cli(capsys, "sheet", src, "--out", src / "sheet.png", "--format", fmt)
        assert code == 0, err
        assert out.startswith("packed 3 frames")


def test_stale_pages_of_an_earlier_run_are_removed_others_kept(tmp_path, capsys):
    src = tmp_path / "in"
    for i in range(6):
        sprite(src / f"s{i}.png", (40 * i, 10, 10, 255), (30, 30))
    out = tmp_path / "sheet.png"
    code, _, err = cli(capsys, "sheet", src, "--out", out, "--format", "texturepacker-hash", "--max-size", "32")
    assert code == 0, err
    pages = sorted(p.name for p in tmp_path.glob("sheet-*.png"))
    assert pages == [f"sheet-{i}.png" for i in range(1, 7)]
    foreign = sprite(tmp_path / "sheet-9.png")  # the artist's own file with a page-like name
    code, _, err = cli(capsys, "sheet", src, "--out", out, "--format", "texturepacker-hash", "--max-size", "64")
    assert code == 0, err
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["sheet-1.json", "sheet-1.png", "sheet-2.json", "sheet-2.png", "sheet-9.png"]
    assert foreign.exists()
    code, _, err = cli(capsys, "sheet", src, "--out", out, "--format", "texturepacker-hash")
    assert code == 0, err
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["sheet-9.png", "sheet.json", "sheet.png"] and temp_files(tmp_path) == []


def test_sheet_on_a_disk_that_fills_keeps_the_old_set(tmp_path, capsys, disk_fills_at):
    src = tmp_path / "in"
    for i in range(4):
        sprite(src / f"s{i}.png", (50 * i, 10, 10, 255), (30, 30))
    outdir = tmp_path / "out"
    code, _, err = cli(capsys, "sheet", src, "--out", outdir / "sheet.png", "--format", "unity", "--max-size", "32")
    assert code == 0, err
    before = snapshot(outdir)
    sprite(src / "s9.png", (1, 2, 3, 255), (30, 30))  # the new run differs
    disk_fills_at(2)
    code, _, err = cli(capsys, "sheet", src, "--out", outdir / "sheet.png", "--format", "unity", "--max-size", "32")
    assert code == 2 and "no space left" in err and str(outdir) in err
    assert snapshot(outdir) == before and temp_files(outdir) == []


def test_remove_bg_refuses_inputs_and_foreign_files_and_does_not_snowball(tmp_path, capsys):
    src = tmp_path / "in"
    a = sprite(src / "a.png", (255, 255, 255, 255), (16, 16))
    before = a.read_bytes()
    code, _, err = cli(capsys, "remove-bg", a, "--out", src, "--method", "key")
    assert code == 2 and "a.png is one of the inputs" in err and a.read_bytes() == before
    for _ in range(2):
        code, _, err = cli(capsys, "remove-bg", src, "--out", src / "cut", "--method", "key")
        assert code == 0, err
    assert not (src / "cut" / "cut").exists() and sorted(p.name for p in (src / "cut").iterdir()) == ["a.png"]
    foreign = sprite(tmp_path / "o" / "a.png", (1, 1, 1, 255))
    kept = foreign.read_bytes()
    code, _, err = cli(capsys, "remove-bg", src / "a.png", "--out", tmp_path / "o", "--method", "key")
    assert code == 2 and "already exists and was not written by this command" in err and foreign.read_bytes() == kept
    code, _, err = cli(capsys, "remove-bg", src / "a.png", "--out", tmp_path / "o", "--method", "key", "--force")
    assert code == 0 and written_by(foreign, "remove-bg")


def test_remove_bg_on_a_disk_that_fills_keeps_the_old_image(tmp_path, capsys, disk_fills_at):
    src = sprite(tmp_path / "in" / "a.png", (255, 255, 255, 255), (16, 16))
    out = tmp_path / "cut"
    assert cli(capsys, "remove-bg", src, "--out", out, "--method", "key")[0] == 0
    before = snapshot(out)
    disk_fills_at(1)
    code, _, err = cli(capsys, "remove-bg", src, "--out", out, "--method", "key")
    assert code == 2 and "no space left" in err and snapshot(out) == before and temp_files(out) == []


def test_layout_commands_refuse_their_inputs(tmp_path, capsys):
    lay = layout_file(tmp_path / "p.json")
    gen = sprite(tmp_path / "gen.png", (10, 120, 60, 255), (64, 32))
    lay_bytes, gen_bytes = lay.read_bytes(), gen.read_bytes()
    code, _, err = cli(capsys, "layout", "render", lay, "--out", lay)
    assert code == 2 and "p.json is one of the inputs" in err and lay.read_bytes() == lay_bytes
    code, _, err = cli(capsys, "layout", "crisp", gen, lay, "--out", gen)
    assert code == 2 and "gen.png is one of the inputs" in err and gen.read_bytes() == gen_bytes
    code, _, err = cli(capsys, "layout", "reference", gen, "--out", gen)
    assert code == 2 and "gen.png is one of the inputs" in err and gen.read_bytes() == gen_bytes
    code, _, err = cli(capsys, "layout", "new", lay)
    assert code == 2 and "already exists" in err and lay.read_bytes() == lay_bytes
    # their own earlier output is replaced; a foreign file only with --force
    out = tmp_path / "c.png"
    for _ in range(2):
        assert cli(capsys, "layout", "render", lay, "--out", out)[0] == 0
    code, _, err = cli(capsys, "layout", "crisp", gen, lay, "--out", out)
    assert code == 2 and "was not written by this command" in err
    assert cli(capsys, "layout", "crisp", gen, lay, "--out", out, "--force")[0] == 0
    assert written_by(out, "layout crisp")
    assert cli(capsys, "layout", "reference", gen, "--out", tmp_path / "r.png")[0] == 0
    assert cli(capsys, "layout", "reference", gen, "--out", tmp_path / "r.png")[0] == 0


def test_style_export_replaces_only_its_own_pack(tmp_path, capsys):
    notes = tmp_path / "notes.stylepack"
    notes.write_text("not a pack")
    code, _, err = cli(capsys, "style", "export", "pixel-art", "--out", notes)
    assert code == 2 and "notes.stylepack already exists" in err and notes.read_text() == "not a pack"
    out = tmp_path / "p.stylepack"
    for _ in range(2):
        assert cli(capsys, "style", "export", "pixel-art", "--out", out)[0] == 0
    code, _, err = cli(capsys, "style", "export", "cel-shaded", "--out", out)
    assert code == 2 and "already exists" in err  # another pack's file is not silently replaced
    assert cli(capsys, "style", "export", "cel-shaded", "--out", notes, "--force")[0] == 0
    assert notes.read_bytes()[:2] == b"PK" and temp_files(tmp_path) == []


def test_library_writes_leave_no_temp_on_a_full_disk(tmp_path, disk_fills_at):
    from asset_studio.core.job import GenerationJob, ModelRef, Prompt
    from asset_studio.core.library import save_control_image, save_image

    job = GenerationJob(model=ModelRef("m"), prompt=Prompt("a red potion"))
    first = save_image(Image.new("RGB", (8, 8), "red"), job, tmp_path, seed=1)
    disk_fills_at(1)
    with pytest.raises(UserError, match="no space left"):
        save_image(Image.new("RGB", (8, 8), "blue"), job, tmp_path, seed=2)
    with pytest.raises(UserError, match="no space left"):
        save_control_image(Image.new("RGB", (8, 8), "blue"), tmp_path / "control", "canny")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [first.name]


# --- images of every mode ----------------------------------------------------------------------------


def mode_images(folder: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """One image per mode (16-bit gray, LA, palette with transparency, CMYK, 1-bit) and the RGBA
    each should read as."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    levels = np.zeros((16, 16), np.uint16)
    levels[4:12, 4:12] = 0x8080  # mid-grey block on black: 128 in 8 bits
    levels[6:10, 6:10] = 0xFFFF
    Image.fromarray(levels).save(folder / "gray16.png")
    want = np.zeros((16, 16, 4), np.uint8)
    want[..., 3] = 255
    want[4:12, 4:12, :3] = 128
    want[6:10, 6:10, :3] = 255
    made["gray16"] = (folder / "gray16.png", want)
    la = np.zeros((16, 16, 2), np.uint8)
    la[4:12, 4:12] = (90, 255)
    Image.fromarray(la, "LA").save(folder / "la.png")
    want = np.zeros((16, 16, 4), np.uint8)
    want[4:12, 4:12] = (90, 90, 90, 255)
    made["la"] = (folder / "la.png", want)
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 0, 0, 250, 20, 20])
    pal.paste(1, (4, 4, 12, 12))
    pal.save(folder / "pal.png", transparency=0)
    want = np.zeros((16, 16, 4), np.uint8)
    want[4:12, 4:12] = (250, 20, 20, 255)
    made["pal"] = (folder / "pal.png", want)
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(folder / "cmyk.jpg", quality=100)
    want = np.zeros((16, 16, 4), np.uint8)
    want[...] = (255, 0, 0, 255)
    made["cmyk"] = (folder / "cmyk.jpg", want)
    one = Image.new("1", (16, 16), 0)
    one.paste(1, (4, 4, 12, 12))
    one.save(folder / "one.png")
    want = np.zeros((16, 16, 4), np.uint8)
    want[..., 3] = 255
    want[4:12, 4:12, :3] = 255
    made["one"] = (folder / "one.png", want)
    return made


def test_every_mode_reads_as_its_colours(tmp_path):
    from asset_studio.core.images import read_image

    for name, (path, want) in mode_images(tmp_path).items():
        got = np.asarray(read_image(path))
        visible = want[..., 3] > 0
        assert np.array_equal(got[..., 3], want[..., 3]), name
        assert np.abs(got[visible].astype(int) - want[visible]).max() <= 1, name
    b16 = Image.frombytes("I;16B", (2, 1), bytes([0x80, 0x80, 0xFF, 0xFF]))
    from asset_studio.core.images import to_mode

    assert np.asarray(to_mode(b16))[0, :, 0].tolist() == [128, 255]
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(UserError, match="floating-point"):
        read_image(tmp_path / "f.tif")


def test_every_mode_packs_into_a_sheet_with_its_colours(tmp_path, capsys):
    images = mode_images(tmp_path / "in")
    out = tmp_path / "sheet.png"
    code, _, err = cli(capsys, "sheet", tmp_path / "in", "--out", out, "--format", "texturepacker-hash")
    assert code == 0, err
    doc = json.loads(out.with_suffix(".json").read_text())
    with Image.open(out) as page:
        page = np.asarray(page.convert("RGBA"))
    for name, (path, want) in images.items():
        f = doc["frames"][path.name]["frame"]
        got = page[f["y"]: f["y"] + f["h"], f["x"]: f["x"] + f["w"]]
        visible = want[..., 3] > 0
        assert np.array_equal(got[..., 3], want[..., 3]), name
        assert np.abs(got[visible].astype(int) - want[visible]).max() <= 1, name


def test_remove_bg_cuts_a_16_bit_sprite_instead_of_wiping_it(tmp_path, capsys):
    levels = np.full((32, 32), 0xFFFF, np.uint16)  # a white background
    levels[8:24, 8:24] = 0x2020  # a dark sprite
    Image.fromarray(levels).save(tmp_path / "g16.png")
    la = np.full((32, 32, 2), 255, np.uint8)
    la[8:24, 8:24] = (32, 255)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    pal = Image.new("P", (32, 32), 0)
    pal.putpalette([255, 255, 255, 32, 32, 32])
    pal.paste(1, (8, 8, 24, 24))
    pal.save(tmp_path / "pal.png")
    im = Image.new("CMYK", (32, 32), (0, 0, 0, 0))  # white paper, a near-black block
    im.paste((0, 0, 0, 223), (8, 8, 24, 24))
    im.save(tmp_path / "cmyk.jpg", quality=100)
    for name in ("g16.png", "la.png", "pal.png", "cmyk.jpg"):
        code, _, err = cli(capsys, "remove-bg", tmp_path / name, "--out", tmp_path / "cut", "--method", "key")
        assert code == 0, err
        with Image.open((tmp_path / "cut" / name).with_suffix(".png")) as cut:
            rgba = np.asarray(cut.convert("RGBA"))
        assert rgba[12:20, 12:20, 3].min() == 255, name  # the sprite stays
        assert rgba[:4, :4, 3].max() == 0, name  # the background goes
        assert np.abs(rgba[12:20, 12:20, :3].astype(int) - 32).max() <= 2, name
