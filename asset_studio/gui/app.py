"""The QApplication: Fusion style, a palette that follows the system's light/dark scheme, the icon."""

from __future__ import annotations

import sys
from pathlib import Path

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
    app = create_app(argv)
    from asset_studio.gui.main_window import MainWindow

    window = MainWindow(output_dir=output_dir, models_dir=models_dir)
    window.show()
    window.first_run_check()
    return int(app.exec())
