"""The one registration point of the built-in stages, and the stages a config enables.

A built-in stage is its module's `SPEC` plus one line here; its config section is a field of
`StagesConfig` of the same name (a test holds the two to the same names, in the same order).
"""

from __future__ import annotations

from siftline.config import PipelineConfig
from siftline.documents import LOCAL_REASONS
from siftline.stages import (
    c4_quality,
    classifier,
    color_filter,
    exact_dedupe,
    fineweb_quality,
    gopher_quality,
    gopher_repetition,
    language,
    near_dedupe,
    preselect_score,
)
from siftline.stages.custom import custom_spec
from siftline.stages.spec import StageSpec, by_priority

REGISTRY: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (language.SPEC, gopher_quality.SPEC, gopher_repetition.SPEC, fineweb_quality.SPEC,
                 c4_quality.SPEC, exact_dedupe.SPEC, near_dedupe.SPEC, color_filter.SPEC,
                 preselect_score.SPEC, classifier.SPEC)
}


def spec_of(config: PipelineConfig, name: str) -> StageSpec:
    if name in REGISTRY:
        return REGISTRY[name]
    return custom_spec(config.stages.section(name))


def enabled_specs(config: PipelineConfig) -> list[StageSpec]:
    """The enabled stages in the order they are applied (built-in, then `stages.custom`)."""
    return [spec_of(config, name) for name in config.stages.enabled()]


def drop_reasons(config: PipelineConfig) -> tuple[str, ...]:
    """Every reason a row of this config can be dropped for, in priority order."""
    specs = by_priority([spec_of(config, name) for name in config.stages.names()])
    return (*LOCAL_REASONS, *(spec.reason for spec in specs))
