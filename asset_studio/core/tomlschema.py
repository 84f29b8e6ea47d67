"""Strict reading of TOML tables: every error names the file and the field.

Shared by style packs and asset templates. A reader wraps one table; each getter checks type and
range and raises UserError("style.toml: defaults.steps must be an integer from 1 to 150.").
Unknown keys are errors too, so a typo never silently does nothing.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from asset_studio.errors import UserError
from asset_studio.core import placeholders

_MISSING = object()


def parse_toml(text: str, label: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{label} is not valid TOML: {exc}.") from None
    except ValueError:  # an integer of thousands of digits
        raise UserError(f"{label} is not valid TOML: it holds a number too long to read.") from None
    except RecursionError:  # tomllib recurses per nesting level
        raise UserError(f"{label} is not valid TOML: its arrays or tables nest too deeply.") from None


def read_toml_file(path: Path, label: str, max_bytes: int = 1024 * 1024) -> dict:
    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(f"{label} is missing ({path}).") from None
    if size > max_bytes:
        raise UserError(f"{label} is larger than {max_bytes // 1024} KiB.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{label} is not UTF-8 text.") from None
    return parse_toml(text, label)


class Table:
    """One TOML table being read. ``where`` is the dotted prefix used in messages ("defaults.")."""

    def __init__(self, data, label: str, where: str = ""):
        self.label = label
        self.where = where
        if not isinstance(data, dict):
            raise UserError(f"{label}: {where.rstrip('.') or 'the file'} must be a table.")
        self.data = data
        self.used: set[str] = set()

    def fail(self, key: str, message: str):
        raise UserError(f"{self.label}: {self.where}{key} {message}.")

    def _get(self, key, default):
        self.used.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.fail(key, "is required")
            return default
        return value

    def string(self, key, default=_MISSING, *, max_len=2000, pattern=None, explain="") -> str:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            self.fail(key, "must be a string")
        if len(value) > max_len:
            self.fail(key, f"must be at most {max_len} characters")
        if any(ord(c) < 32 and c not in "\n\t" for c in value):
            self.fail(key, "must not contain control characters")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, explain or "has an invalid format")
        return value

    def template(self, key, default=_MISSING, *, max_len=2000) -> str:
        """A prompt template: a string whose braces follow the {name} grammar."""
        value = self.string(key, default, max_len=max_len)
        if value is None:
            return value
        try:
            placeholders.names(value)
        except placeholders.PlaceholderError as exc:
            self.fail(key, str(exc))
        return value

    def integer(self, key, lo, hi, default=_MISSING) -> int:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(key, f"must be an integer from {lo} to {hi}")
        return value

    def number(self, key, lo, hi, default=_MISSING) -> float:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not lo <= value <= hi:
            self.fail(key, f"must be a number from {lo:g} to {hi:g}")
        return float(value)

    def boolean(self, key, default=_MISSING) -> bool:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
        return value

    def choice(self, key, options, default=_MISSING) -> str:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if value not in options:
            self.fail(key, "must be one of " + ", ".join(f'"{o}"' for o in options))
        return value

    def strings(self, key, default=_MISSING, *, max_items=64, max_len=500) -> list[str]:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return list(value)
        if not isinstance(value, list) or len(value) > max_items or not all(
            isinstance(v, str) and 0 < len(v) <= max_len for v in value
        ):
            self.fail(key, f"must be a list of at most {max_items} non-empty strings")
        return list(value)

    def table(self, key) -> "Table | None":
        value = self._get(key, None)
        if value is None:
            return None
        return Table(value, self.label, f"{self.where}{key}.")

    def tables(self, key, max_items=32) -> list["Table"]:
        value = self._get(key, [])
        if not isinstance(value, list) or len(value) > max_items:
            self.fail(key, f"must be a list of at most {max_items} tables")
        return [Table(v, self.label, f"{self.where}{key}[{i}].") for i, v in enumerate(value)]

    def has(self, key) -> bool:
        return key in self.data

    def finish(self):
        """Refuse keys nobody asked for: a typo must not pass silently."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(unknown[0], "is not a known setting")
