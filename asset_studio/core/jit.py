"""numba, for the compiled loops of sheets and PNG pages (core.sheet_kernels, core.png_kernels).

On its first compile or cache load numba imports its array-maths registry, which imports
scipy.linalg (with numpy.f2py) only to learn whether np.dot and np.correlate may call BLAS; our
kernels use neither, and that import costs 0.15 s (a tenth of a `sheet` run). So it is
loaded here with scipy.linalg hidden: numba then uses its own loops for np.correlate, and any
later np.dot compile still finds scipy (numba imports it again at that point). Only while this
is the process's one thread (the command line): in the window another thread may be importing.
"""

from __future__ import annotations

import sys
import threading


def _load():
    import numba

    alone = threading.active_count() == 1
    if alone and "numba.np.arraymath" not in sys.modules and "scipy.linalg" not in sys.modules:
        sys.modules["scipy.linalg"] = None  # an import of it fails at once
        try:
            import numba.np.arraymath  # noqa: F401
        finally:
            del sys.modules["scipy.linalg"]
    return numba


numba = _load()
