"""A guard against a reference-counting bug of PySide6 6.12.0.

There, `SignalInstance.emit()` returns True without taking a new reference, so every signal
emitted from Python takes one reference away from True. A session emits thousands (every step,
every form edit), and once True's count reaches zero CPython aborts ("Fatal Python error:
bool_dealloc"). Python 3.12+ makes True immortal; on older Pythons with an affected PySide6,
True gets a reserve of references so large it can never run out (what 3.12 does).
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

RESERVE = 1 << 40


class _Probe(QObject):
    ping = Signal()


def emit_takes_a_reference_from_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    return sys.getrefcount(True) <= before - 8


def guard_true_refcount() -> bool:
    """Apply the reserve when this PySide6 has the bug; returns whether it was needed."""
    if sys.version_info >= (3, 12) or not emit_takes_a_reference_from_true():
        return False
    ctypes.c_ssize_t.from_address(id(True)).value += RESERVE
    return True
