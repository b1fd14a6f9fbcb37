"""Which build of a compiled kernel runs: the C one `pip install` makes, or numba's.

Two kernels on the read -> exact-dedupe path (`io/_jsonl_scan.c`, `stages/_whitespace.c`)
have C builds, compiled at install as optional extensions (`setup.py`), which spare a process
numba's start-up (~0.6 s). Where there was no C compiler they are missing and numba's builds of
the same kernels serve, with the same results. `SIFTLINE_KERNELS=numba` picks numba's even
where the C builds exist: to compare the two, or to rule one out.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

ENV = "SIFTLINE_KERNELS"


def load(module: str) -> ModuleType | None:
    """The C build `module`, or None where it was not built or numba's are asked for."""
    if os.environ.get(ENV, "").strip().lower() == "numba":
        return None
    try:
        return importlib.import_module(module)
    except ImportError:  # installed without a C compiler
        return None
