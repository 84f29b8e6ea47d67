"""The PySide6 desktop studio."""

from asset_studio.gui.pyside_fix import guard_true_refcount

guard_true_refcount()  # before any signal is emitted
