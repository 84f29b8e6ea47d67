"""The PySide6 desktop studio."""

from asset_studio.gui.pyside_fix import guard_refcounts

guard_refcounts()  # before any signal is emitted or any Qt method called from Python
