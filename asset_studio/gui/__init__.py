"""The PySide6 desktop studio."""
