"""siftline: select the pretraining text that teaches a language model the most.

The importable API mirrors the CLI: `siftline.run(config)` runs a job, `siftline.load_config`
builds a config from YAML or a dict, and every stage is a plain function or class over pyarrow
tables (see `siftline.stages`).
"""

from __future__ import annotations

from siftline.config import PipelineConfig, load_config
from siftline.errors import ConfigError


def run(config, *, overwrite: bool = False, reporter=None):
    """Run a job from a `PipelineConfig`, a YAML path or a dict of sections."""
    from siftline.job.runner import run as _run

    if not isinstance(config, PipelineConfig):
        config = load_config(config)
    return _run(config, overwrite=overwrite, reporter=reporter)


def select(output: str, config=None, overrides: dict | None = None) -> dict:
    """Re-select a finished run from its scored parts (the API twin of `siftline select`)."""
    from siftline.io.storage import Storage
    from siftline.job.reselect import reselect
    from siftline.outputs import load_finished_manifest

    if config is None:
        base = load_finished_manifest(output, Storage())["config"]
        origin = f"{output.rstrip('/')}/manifest.json" + (" + overrides" if overrides else "")
        config = load_config(base | {"storage": {}}, overrides, origin=origin)
    elif not isinstance(config, PipelineConfig):
        config = load_config(config, overrides)
    return reselect(output, config)


__all__ = ["ConfigError", "PipelineConfig", "load_config", "run", "select"]
__version__ = "0.1.0"
