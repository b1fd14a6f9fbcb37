"""Stages from users' own code (`stages.custom`), declared like the built-in ones.

An entry names a factory, `"module.path:factory"`, importable on every worker; the factory is
called once per worker with the entry's `args` and returns the per-batch `Table -> Table`
callable. Its drop reason is its name; with a `cut`, the rows it drops are chosen by the shared
global cut (`siftline.selection.cut`) over one of its columns, after dedupe and before the
classifier's, PreSelect's and CoLoR-Filter's cuts, which then choose among the rows it keeps.

    stages:
      custom:
        - name: short_docs
          callable: my_filters:length_stage
          args: {min_words: 50}
          cut: {column: n_words, keep: top, threshold: 50}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial

from siftline.config import CustomStageConfig, PipelineConfig
from siftline.errors import ConfigError
from siftline.selection.cut import CutRule
from siftline.stages.spec import ScoreCut, Stage, StageSpec

PRIORITY = 50  # after dedupe (10, 20), before classifier (70), PreSelect (80), CoLoR-Filter (90)


def load_factory(entry: CustomStageConfig) -> Callable[..., Stage]:
    """The entry's factory, imported; a clear error names the key when it cannot be."""
    module_name, _, attr = entry.callable.partition(":")
    where = f"stages.custom.{entry.name}.callable"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name!r}: {exc}") from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ConfigError(f"{where}: {module_name!r} has no attribute {attr!r}")
    if not callable(factory):
        raise ConfigError(f"{where}: {entry.callable} is not callable")
    return factory


def build_stage(name: str, config: PipelineConfig) -> Stage:
    """Once per worker: the factory called with the entry's args."""
    entry = config.stages.section(name)
    try:
        stage = load_factory(entry)(**entry.args)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"stages.custom.{name}: {entry.callable}(**args) raised "
                          f"{type(exc).__name__}: {exc}") from exc
    if not callable(stage):
        raise ConfigError(f"stages.custom.{name}: {entry.callable}(**args) returned "
                          f"{type(stage).__name__}, not a Table -> Table callable")
    return stage


def _preflight(name: str, config: PipelineConfig) -> None:
    load_factory(config.stages.section(name))


def _rule(name: str, config: PipelineConfig) -> CutRule:
    cut = config.stages.section(name).cut
    kind, amount = cut.rule()
    return CutRule(kind, amount, cut.keep, cut.per_domain)


def _plot(name: str, config: PipelineConfig) -> bool:
    return config.stages.section(name).cut.plot


def custom_spec(entry: CustomStageConfig) -> StageSpec:
    """The declaration of one `stages.custom` entry."""
    columns = list(entry.columns)
    cut = None
    if entry.cut is not None:
        cut = ScoreCut(entry.cut.column, partial(_rule, entry.name),
                       plot=partial(_plot, entry.name))
        columns += [entry.cut.column] if entry.cut.column not in columns else []
    return StageSpec(name=entry.name, reason=entry.name, priority=PRIORITY,
                     build=partial(build_stage, entry.name), columns=tuple(columns),
                     preflight=partial(_preflight, entry.name), cut=cut, builtin=False)
