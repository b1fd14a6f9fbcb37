"""Which build of a compiled kernel runs: the C one `pip install` makes, or the fallback.

Three kernels on the read -> exact-dedupe path have C builds, compiled at install as optional
extensions (`setup.py`). Two (`io/_jsonl_scan.c`, `dedupe/_whitespace.c`) are twins of numba
kernels and spare a process numba's start-up (~0.6 s); the third (`io/_jsonl_parse.c`) reads
JSON Lines in one pass where pyarrow's reader and a screen would serve. Where there was no C
compiler they are missing and the fallbacks serve, with the same results.
`SIFTLINE_KERNELS=numba` picks the fallbacks even where the C builds exist: to compare the
two, or to rule one out.
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
