"""Guards against reference-counting bugs of PySide6 6.12.0.

There, `SignalInstance.emit()` returns True without taking a new reference, and every method that
returns nothing (a C++ void: setText, fillRect, drawImage, setValue…) returns None without taking
one. So every signal emitted from Python takes one reference away from True, and every such call
one away from None. A session makes millions (every step, every paint, every form edit), and once
a count reaches zero CPython aborts ("Fatal Python error: bool_dealloc" / "none_dealloc").
Python 3.12+ makes True and None immortal; on older Pythons with an affected PySide6, each gets a
reserve of references so large it can never run out (what 3.12 does).
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

RESERVE = 1 << 40
PROBES = 8


class _Probe(QObject):
    ping = Signal()


def emit_takes_a_reference_from_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(PROBES):
        probe.ping.emit()
    return sys.getrefcount(True) <= before - PROBES


def void_call_takes_a_reference_from_none() -> bool:
    probe = _Probe()
    before = sys.getrefcount(None)
    for _ in range(PROBES):
        probe.setObjectName("probe")  # a C++ void method
    return sys.getrefcount(None) <= before - PROBES


def _reserve(obj) -> None:
    ctypes.c_ssize_t.from_address(id(obj)).value += RESERVE


def guard_refcounts() -> list[str]:
    """Apply the reserves this PySide6 needs; returns which ("True", "None")."""
    if sys.version_info >= (3, 12):
        return []
    guarded = []
    if emit_takes_a_reference_from_true():
        _reserve(True)
        guarded.append("True")
    if void_call_takes_a_reference_from_none():
        _reserve(None)
        guarded.append("None")
    return guarded


def guard_true_refcount() -> bool:
    """The first guard's name, kept for callers: applies every reserve, True when any was needed."""
    return bool(guard_refcounts())
