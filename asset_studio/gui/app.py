"""The QApplication: Fusion style, a palette that follows the system's light/dark scheme, the icon."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QLinearGradient, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QApplication

ACCENT = QColor(122, 162, 247)


def dark_palette() -> QPalette:
    """Fusion's palette, darkened: neutral greys so artwork colours read true."""
    p = QPalette()
    window, base, text = QColor(37, 38, 43), QColor(27, 28, 32), QColor(226, 228, 233)
    disabled = QColor(120, 122, 130)
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor(44, 45, 51))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor(52, 54, 61))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor(140, 142, 150))
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, QColor(50, 52, 58))
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor(255, 110, 110))
    p.setColor(QPalette.ColorRole.Light, QColor(70, 72, 80))
    p.setColor(QPalette.ColorRole.Midlight, QColor(58, 60, 67))
    p.setColor(QPalette.ColorRole.Mid, QColor(40, 41, 46))
    p.setColor(QPalette.ColorRole.Dark, QColor(22, 22, 26))
    p.setColor(QPalette.ColorRole.Shadow, QColor(10, 10, 12))
    p.setColor(QPalette.ColorRole.Highlight, ACCENT)
    p.setColor(QPalette.ColorRole.HighlightedText, QColor(16, 17, 20))
    p.setColor(QPalette.ColorRole.Link, ACCENT)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(70, 72, 80))
    return p


def is_dark(app: QApplication) -> bool:
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, dark: bool | None = None) -> None:
    """Dark palette when the system is dark (or `dark` forces it), Fusion's own light one otherwise."""
    dark = is_dark(app) if dark is None else dark
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    app.setProperty("asset_studio_dark", dark)


def app_icon() -> QIcon:
    """A potion flask on a rounded tile, drawn at the sizes desktops ask for (no image file to ship)."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pix = QPixmap(size, size)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        s = size / 64.0
        grad = QLinearGradient(0, 0, 0, size)
        grad.setColorAt(0, QColor(58, 64, 98))
        grad.setColorAt(1, QColor(28, 30, 46))
        p.setBrush(QBrush(grad))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(QRectF(2 * s, 2 * s, 60 * s, 60 * s), 12 * s, 12 * s)
        flask = QPainterPath()
        flask.moveTo(27 * s, 12 * s)
        flask.lineTo(37 * s, 12 * s)
        flask.lineTo(37 * s, 26 * s)
        flask.cubicTo(50 * s, 31 * s, 52 * s, 54 * s, 32 * s, 54 * s)
        flask.cubicTo(12 * s, 54 * s, 14 * s, 31 * s, 27 * s, 26 * s)
        flask.closeSubpath()
        liquid = QLinearGradient(0, 30 * s, 0, 54 * s)
        liquid.setColorAt(0, QColor(255, 120, 150))
        liquid.setColorAt(1, QColor(200, 40, 90))
        p.setBrush(QBrush(liquid))
        p.setPen(QPen(QColor(240, 240, 250), max(1.0, 2.5 * s)))
        p.drawPath(flask)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(255, 255, 255, 200))
        p.drawEllipse(QPointF(26 * s, 40 * s), 3 * s, 5 * s)
        p.setBrush(QColor(255, 230, 140))
        p.drawEllipse(QPointF(47 * s, 16 * s), 3.5 * s, 3.5 * s)
        p.end()
        icon.addPixmap(pix)
    return icon


# Debian/Ubuntu package names that do not follow "soname without .so, '-' before a trailing digit".
_PACKAGE_EXCEPTIONS = {"libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0"}


def xcb_plugin() -> Path:
    """PySide6's X11 platform plugin, the one Qt loads on a Linux desktop."""
    import PySide6

    return Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"


def _ldd(path: Path) -> str:
    exe = shutil.which("ldd")
    if exe is None:  # no ldd: the dynamic loader names the first library it misses
        import ctypes

        try:
            ctypes.CDLL(str(path))
        except OSError as exc:
            return " ".join(f"{name} => not found" for name in re.findall(r"(lib[\w.+-]+\.so[\w.]*)", str(exc)) if name != path.name)
        return ""
    return subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=20).stdout


def missing_libraries(ldd_output: str) -> list[str]:
    """Sonames that ``ldd`` could not resolve, in order, once each."""
    found = re.findall(r"(\S+)\s+=>\s+not found", ldd_output)
    return list(dict.fromkeys(found))


def package_name(soname: str) -> str:
    """The Debian/Ubuntu package that ships a library: libxcb-icccm.so.4 -> libxcb-icccm4."""
    if soname in _PACKAGE_EXCEPTIONS:
        return _PACKAGE_EXCEPTIONS[soname]
    name, _, version = soname.partition(".so.")
    name = name.lower()
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


def xcb_problem(
    env: dict[str, str] | None = None,
    platform: str | None = None,
    plugin: Path | None = None,
    ldd: Callable[[Path], str] = _ldd,
) -> str | None:
    """One sentence naming the system libraries the xcb plugin lacks, or None when Qt can use it.

    Checked before QApplication exists, because Qt's own failure is a wall of text ending in
    an abort. Only where Qt would pick xcb: Linux, no other platform forced, no Wayland session.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    forced = env.get("QT_QPA_PLATFORM", "")
    if forced and not forced.startswith("xcb"):
        return None
    if not forced and env.get("WAYLAND_DISPLAY"):
        return None  # Qt tries Wayland first there
    plugin = xcb_plugin() if plugin is None else plugin
    if not plugin.is_file():
        return None
    missing = missing_libraries(ldd(plugin))
    if not missing:
        return None
    packages = " ".join(dict.fromkeys(package_name(m) for m in missing))
    return (
        f"Asset Studio cannot open its window because Qt's X11 plugin needs system libraries that are "
        f"missing ({', '.join(missing)}): install them with `sudo apt install {packages}` (Debian/Ubuntu)."
    )


def create_app(argv: list[str] | None = None) -> QApplication:
    """The one QApplication (reused when one exists, as under pytest-qt)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("Asset Studio")
    app.setOrganizationName("AssetStudio")
    app.setApplicationDisplayName("Asset Studio")
    app.setDesktopFileName("asset-studio")
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    apply_theme(app)
    if not app.property("asset_studio_follows_scheme"):
        # Follow the system when the user flips light/dark while the app runs (connected once).
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
        app.setProperty("asset_studio_follows_scheme", True)
    return app


def run_app(argv: list[str] | None = None, output_dir: Path | None = None, models_dir: Path | None = None) -> int:
    """Open the studio window and run the event loop; returns the exit code."""
    if QApplication.instance() is None:
        problem = xcb_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 1
    app = create_app(argv)
    from asset_studio.gui.main_window import MainWindow

    window = MainWindow(output_dir=output_dir, models_dir=models_dir)
    window.show()
    window.first_run_check()
    return int(app.exec())
