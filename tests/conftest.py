"""Shared fixtures. Plain helpers live in ``tests/helpers.py`` (importable as ``helpers``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
CHECKOUT = TESTS.parent
# `python -m pytest` puts the checkout first on sys.path, where its folders `pipeline/` and
# `kernels/` would shadow other distributions of those names (Hugging Face's `kernels`, which
# transformers imports). Users import the installed `siftline`; so do the tests.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != CHECKOUT]
sys.path.insert(0, str(TESTS))

from helpers import write_jsonl  # noqa: E402

pytest_plugins = ["s3_fixtures"]  # the `endpoint` fixture: a moto S3 server on 127.0.0.1

from siftline import load_config  # noqa: E402
from siftline.job.runner import RunResult  # noqa: E402
from siftline.job.runner import run as run_pipeline  # noqa: E402


@pytest.fixture
def make_jsonl() -> Callable[..., Path]:
    """``make_jsonl(path, records, compression=None)``: see ``helpers.write_jsonl``."""
    return write_jsonl


@pytest.fixture
def run_job(tmp_path: Path) -> Callable[..., RunResult]:
    """Run a job in-process: ``run_job(inputs, output=None, *, overwrite=False, **overrides)``.

    ``inputs`` is a path, a list of paths, or a dict of dotted overrides (then it must set
    ``input.paths`` itself). ``output`` defaults to ``tmp_path/"out"``. Extra keyword overrides
    use ``__`` for dots (``input__split_bytes=1000``). ``executor.kind`` is ``local`` unless
    overridden.
    """

    def _run(
        inputs: Any, output: Any = None, *, overwrite: bool = False, **overrides: Any
    ) -> RunResult:
        data: dict[str, Any] = {"executor.kind": "local", "output.path": str(tmp_path / "out")}
        if isinstance(inputs, dict):
            data.update(inputs)
        else:
            items = inputs if isinstance(inputs, list) else [inputs]
            data["input.paths"] = [str(p) for p in items]
        if output is not None:
            data["output.path"] = str(output)
        data.update({key.replace("__", "."): value for key, value in overrides.items()})
        return run_pipeline(load_config(None, data), overwrite=overwrite)

    return _run


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps at the terminal width (80 in tests): keep every CLI message on one line."""
    import siftline.cli.main as cli

    monkeypatch.setattr(cli.err, "width", 400)
    monkeypatch.setattr(cli.out, "width", 400)
