"""The xcb check before Qt starts: missing system libraries become one sentence (no display needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from asset_studio.gui import app  # noqa: E402

LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f1)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)
"""


def fake_plugin(tmp_path: Path) -> Path:
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"\x7fELF")
    return plugin


def test_missing_libraries_become_one_sentence_with_the_apt_command(tmp_path):
    message = app.xcb_problem(env={"DISPLAY": ":0"}, platform="linux", plugin=fake_plugin(tmp_path), ldd=lambda p: LDD_MISSING)
    assert message is not None and message.count("\n") == 0 and message.count(". ") == 0
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libxkbcommon-x11.so.0" in message  # each once, in order
    assert "`sudo apt install libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0`" in message


def test_no_problem_when_nothing_is_missing_or_xcb_is_not_used(tmp_path):
    plugin = fake_plugin(tmp_path)
    complete = "\tlibxcb.so.1 => /usr/lib/libxcb.so.1 (0x1)\n"
    assert app.xcb_problem(env={}, platform="linux", plugin=plugin, ldd=lambda p: complete) is None
    never = lambda p: pytest.fail("ldd ran although Qt will not load xcb")  # noqa: E731
    assert app.xcb_problem(env={"QT_QPA_PLATFORM": "offscreen"}, platform="linux", plugin=plugin, ldd=never) is None
    assert app.xcb_problem(env={"WAYLAND_DISPLAY": "wayland-0"}, platform="linux", plugin=plugin, ldd=never) is None
    assert app.xcb_problem(env={}, platform="win32", plugin=plugin, ldd=never) is None
    assert app.xcb_problem(env={}, platform="darwin", plugin=plugin, ldd=never) is None
    # forcing xcb still checks
    assert app.xcb_problem(env={"QT_QPA_PLATFORM": "xcb"}, platform="linux", plugin=plugin, ldd=lambda p: LDD_MISSING)


@pytest.mark.parametrize(
    "soname, package",
    [
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-render-util.so.0", "libxcb-render-util0"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libX11-xcb.so.1", "libx11-xcb1"),
        ("libEGL.so.1", "libegl1"),
        ("libdbus-1.so.3", "libdbus-1-3"),
        ("libglib-2.0.so.0", "libglib2.0-0"),
    ],
)
def test_package_names_follow_debian(soname, package):
    assert app.package_name(soname) == package


@pytest.mark.skipif(shutil.which("ldd") is None, reason="ldd is a Linux (glibc) tool")
def test_the_real_plugin_is_checked_with_ldd():
    plugin = app.xcb_plugin()
    if not plugin.is_file():
        pytest.skip("this PySide6 wheel has no xcb plugin")
    real = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True).stdout
    missing = app.missing_libraries(real)
    message = app.xcb_problem(env={"DISPLAY": ":0"}, platform="linux")
    assert (message is None) == (not missing)
    for lib in missing:
        assert lib in message and app.package_name(lib) in message


def test_the_readme_apt_line_covers_the_plugins_libraries():
    """Every system library the xcb plugin and Qt's GUI libraries link against is in the README line."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    line = next(ln for ln in readme.splitlines() if ln.startswith("sudo apt install"))
    packages = set(line.split()[3:])
    for soname in ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-image.so.0",
                   "libxcb-render-util.so.0", "libxkbcommon-x11.so.0", "libxcb-shape.so.0", "libEGL.so.1"):
        assert app.package_name(soname) in packages
