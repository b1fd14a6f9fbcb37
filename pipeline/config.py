"""One pydantic model for the whole job: YAML files and CLI flags both land here.

Every section forbids unknown keys, so a typo fails before any work starts with a message that
names the dotted key. CLI flags are dotted overrides of the same model (``--set a.b=c``), which
keeps one source of truth for defaults, types and validation.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ByteSize,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from siftline.color.config import ColorFilterConfig, ColorTrainConfig, TargetConfig
from siftline.errors import ConfigError
from siftline.io.config import FieldMap, InputConfig, S3Config, StorageConfig
from siftline.lm.config import ModelConfig, SampleConfig, ScoreConfig, TrainConfig
from siftline.mixture.config import MixtureConfig
from siftline.preselect.config import PreselectConfig
from siftline.quality.config import (
    DUP_NGRAMS,
    TOP_NGRAMS,
    C4QualityConfig,
    FineWebQualityConfig,
    GopherQualityConfig,
    GopherRepetitionConfig,
)
from siftline.sections import Section as _Section
from siftline.stages.config import (
    ClassifierConfig,
    CustomStageConfig,
    CutConfig,
    ExactDedupeConfig,
    LanguageConfig,
    NearDedupeConfig,
)

__all__ = [  # the sections live beside the code they configure; this is the whole model
    "C4QualityConfig", "DUP_NGRAMS", "FineWebQualityConfig", "GopherQualityConfig",
    "GopherRepetitionConfig", "TOP_NGRAMS", "ClassifierConfig", "ColorFilterConfig",
    "ColorTrainConfig", "ConfigError",
    "CustomStageConfig", "CutConfig", "EvalConfig", "ExactDedupeConfig", "ExecutorConfig",
    "FieldMap", "InputConfig", "LMOutputConfig", "LanguageConfig", "MixtureConfig",
    "ModelConfig",
    "NearDedupeConfig", "OutputConfig", "PipelineConfig", "PreselectConfig", "S3Config",
    "SampleConfig", "ScoreConfig", "StagesConfig", "StorageConfig", "TargetConfig",
    "TrainConfig", "TrainJobConfig", "apply_overrides", "builtin_stage_names", "load_config",
    "only_stages", "parse_set_options",
]
M = TypeVar("M", bound=BaseModel)


class OutputConfig(_Section):
    path: str = Field("out/default", description="Output folder (local or s3://bucket/"
                      "prefix); it must not overlap an input.")
    shard_bytes: ByteSize = Field(ByteSize(256_000_000), gt=0, description="Text per data "
                                  "shard: each split's kept rows are cut into Parquet shards "
                                  "holding about this many bytes of text.")
    compression: Literal["zstd", "snappy", "lz4", "gzip", "none"] = Field(
        "zstd", description="Parquet codec of data/ and scored/ (zstd: smallest; snappy or "
        "lz4: faster to read and write).")
    work_dir: str | None = Field(None, description="Scratch space; default OUTPUT/_work.")


class ExecutorConfig(_Section):
    kind: Literal["auto", "ray", "local"] = Field(
        "auto", description="Where the tasks run: `local` in this process, `ray` on an embedded "
        "Ray or the cluster of ray_address, `auto` in-process for a small job (one split, or "
        "input below auto_local_bytes; no GPU stage, no ray_address) and on Ray otherwise. "
        "The output bytes are the same.")
    ray_address: str | None = Field(
        None, description="Ray cluster to join (`auto`, or ray://HOST:10001 through Ray "
        "Client); null starts an embedded single-machine Ray on 127.0.0.1.")
    num_workers: int | None = Field(None, ge=1, description="Ray CPU worker actors; default "
                                    "one per CPU of the machine or cluster. Lower it to bound "
                                    "memory (each holds one split).")
    auto_local_bytes: ByteSize = Field(
        ByteSize(64_000_000), ge=0, description="kind auto: below this much planned input "
        "(compressed JSON Lines counted 4x) the job runs in-process, where Ray's ~10 s "
        "start-up would cost more than its parallelism saves; 0 keeps several splits on Ray.")
    object_store_mb: int | None = Field(
        None, ge=80, description="The embedded Ray's object store in MB (default 512): tasks "
        "pass only small records through it, the data goes through files.")

    @model_validator(mode="after")
    def _store_is_local(self) -> ExecutorConfig:
        if self.object_store_mb is not None and self.ray_address:
            raise ValueError("executor.object_store_mb sizes the embedded Ray only; a cluster "
                             "joined with ray_address sets its own (ray start "
                             "--object-store-memory)")
        return self


class StagesConfig(_Section):
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    gopher_quality: GopherQualityConfig = Field(default_factory=GopherQualityConfig)
    gopher_repetition: GopherRepetitionConfig = Field(default_factory=GopherRepetitionConfig)
    fineweb_quality: FineWebQualityConfig = Field(default_factory=FineWebQualityConfig)
    c4_quality: C4QualityConfig = Field(default_factory=C4QualityConfig)
    exact_dedupe: ExactDedupeConfig = Field(default_factory=ExactDedupeConfig)
    near_dedupe: NearDedupeConfig = Field(default_factory=NearDedupeConfig)
    color_filter: ColorFilterConfig = Field(default_factory=ColorFilterConfig)
    preselect: PreselectConfig = Field(default_factory=PreselectConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    custom: list[CustomStageConfig] = Field(default_factory=list, description="Stages from "
                                            "your own modules, applied after the built-in ones.")

    @model_validator(mode="after")
    def _unique_names(self) -> StagesConfig:
        seen = set(builtin_stage_names())
        for entry in self.custom:
            if entry.name in seen:
                raise ValueError(f"custom stage name {entry.name!r} is taken (built-in stages: "
                                 f"{', '.join(builtin_stage_names())})")
            seen.add(entry.name)
        return self

    def names(self) -> list[str]:
        """Every stage this config knows, enabled or not, in the order they are applied."""
        return [*builtin_stage_names(), *(entry.name for entry in self.custom)]

    def enabled(self) -> list[str]:
        return [name for name in self.names() if self.section(name).enabled]

    def section(self, name: str) -> _Section:
        """A stage's config section: `stages.<name>`, or its `stages.custom` entry."""
        if name in builtin_stage_names():
            return getattr(self, name)
        for entry in self.custom:
            if entry.name == name:
                return entry
        raise KeyError(name)


def builtin_stage_names() -> tuple[str, ...]:
    """The built-in stages, in the order they are applied: the sections of `StagesConfig`."""
    return tuple(name for name in StagesConfig.model_fields if name != "custom")


def only_stages(data: dict[str, Any], wanted: list[str]) -> dict[str, bool]:
    """Overrides of a raw config that enable exactly `wanted` (`--stages a,b`), built-in or
    custom; an unknown name is an error that suggests the closest known one."""
    custom = (data.get("stages") or {}).get("custom") or []
    known = [*builtin_stage_names(),
             *(entry["name"] for entry in custom if isinstance(entry, dict) and "name" in entry)]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        hints = {n: difflib.get_close_matches(n, known, 1) for n in unknown}
        said = ", ".join(f"{n!r}" + (f" (did you mean {h[0]!r}?)" if h else "")
                         for n, h in hints.items())
        raise ConfigError(f"--stages: unknown stage(s) {said}; known: {', '.join(known)}")
    builtin = builtin_stage_names()
    return {f"stages.{name if name in builtin else 'custom.' + name}.enabled": name in wanted
            for name in known}


def _eval_train() -> TrainConfig:
    return TrainConfig(batch_size=16, lr=3e-3, eval_every=50, checkpoint_every=200)


class EvalConfig(_Section):
    """`siftline eval-selection`: train one small LM per (method, budget), compare target loss.
    Not part of the run's identity: evaluating never changes the selected data."""

    budgets: list[int] = Field(default_factory=lambda: [65_536, 131_072, 262_144],
                               description="Training tokens, ascending (one model each).")
    color_taus: list[float] = Field(default_factory=lambda: [4.0, 8.0],
                                    description="CoLoR-Filter selections to compare (top 1/tau).")
    preselect_keeps: list[float] = Field(default_factory=lambda: [0.1, 0.25], description=
                                         "PreSelect selections to compare (kept character share).")
    combined: bool = Field(True, description="With both scores: the rank-average selection at "
                           "each of color_taus.")
    include_run: bool = Field(True, description="Also evaluate the run's own kept rows.")
    max_questions: int = Field(1000, ge=1, description="Multiple-choice targets: questions "
                               "scored for accuracy after each training.")
    selected: list[str] = Field(default_factory=list, description="Instead of a run: a "
                                "selected dataset (any input) to compare with `baseline`.")
    baseline: list[str] = Field(default_factory=list, description="With `selected`: the data "
                                "random documents are drawn from.")
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(preset="tiny"))
    train: TrainConfig = Field(default_factory=_eval_train,
                               description="Optimiser settings; `tokens` is set per budget.")
    target: TargetConfig | None = Field(None, description="Held-out target text; default "
                                        "stages.color_filter.target.")
    target_max_bytes: ByteSize = Field(ByteSize(1_000_000), gt=0, description="Cap on the "
                                       "target text whose loss each trained model is scored "
                                       "on.")
    tokenizer_bytes: ByteSize = Field(ByteSize(2_000_000), gt=0, description="Pool text the "
                                      "shared tokenizer is trained on.")
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    seed: int = Field(0, ge=0, description="Seed of the random baseline's draw, the tokenizer's "
                      "sample and the models' training.")

    @field_validator("budgets")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        if not value or any(b <= 0 for b in value) or sorted(set(value)) != value:
            raise ValueError("budgets must be positive, distinct and ascending")
        return value

    @model_validator(mode="after")
    def _datasets(self) -> EvalConfig:
        if bool(self.selected) != bool(self.baseline):
            raise ValueError("give both `selected` and `baseline` datasets, or neither")
        return self

    @field_validator("preselect_keeps")
    @classmethod
    def _keeps(cls, value: list[float]) -> list[float]:
        if any(not 0 < k <= 1 for k in value):
            raise ValueError("each keep share must be in (0, 1]")
        return value

    @field_validator("color_taus")
    @classmethod
    def _taus(cls, value: list[float]) -> list[float]:
        if any(t < 1 for t in value):
            raise ValueError("each tau must be >= 1 (keep the top 1/tau)")
        return value


class PipelineConfig(_Section):
    input: InputConfig = Field(default_factory=InputConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    stages: StagesConfig = Field(default_factory=StagesConfig)
    mixture: MixtureConfig = Field(default_factory=MixtureConfig)  # domain weights, weights.json
    evaluation: EvalConfig = Field(default_factory=EvalConfig)

    def public_dict(self) -> dict[str, Any]:
        """The resolved config with secrets masked: safe to log and to store in the manifest."""
        return json.loads(self.model_dump_json())

    def sha256(self) -> str:
        """Hash of what determines the output bytes (not where or how the job runs)."""
        data = self.public_dict()
        data.pop("executor")
        data.pop("evaluation")
        data["storage"] = {}
        data["output"].pop("work_dir")
        data["output"].pop("path")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class LMOutputConfig(_Section):
    path: str = Field("out/lm", description="Local model folder (checkpoints need renames).")

    @field_validator("path")
    @classmethod
    def _local(cls, value: str) -> str:
        if "://" in value and not value.startswith("file://"):
            raise ValueError("a model folder must be a local path")
        return value.removeprefix("file://")


class TrainJobConfig(_Section):
    """`siftline train-lm`: sample a corpus, train a tokenizer and a model on it, or fine-tune the
    model folder `init` (its tokenizer and model config, a fresh optimizer)."""

    input: InputConfig = Field(default_factory=InputConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: LMOutputConfig = Field(default_factory=LMOutputConfig)
    init: str | None = Field(None, description="Model folder to fine-tune; model keys given "
                             "here must then agree with its config.")


def _format_error(exc: ValidationError, origin: str, model: type[BaseModel]) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key{_did_you_mean(model, err['loc'])}")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def _did_you_mean(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """`` (did you mean 'threshold'?)`` for an unknown key: the closest field name of the section
    it sits in, so a typo in a YAML key or a `--set` key points at the right spelling."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    node: Any = model
    for part in loc[:-1]:
        node = _step(node, part)
        if node is None:
            return ""
    known = [name for section in _sections(node) for name in section.model_fields]
    close = difflib.get_close_matches(loc[-1], known, 1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _sections(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation may hold (`Section`, `Section | None`, a union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, UnionType, Annotated):
        return [s for arg in get_args(annotation) for s in _sections(arg)]
    return []


def _step(annotation: Any, part: int | str) -> Any:
    """The annotation one location part below `annotation` (a field, a list index, a dict key or
    a union member's tag), or None where the location leaves the known sections."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType, Annotated):
        for arg in args:
            if isinstance(arg, type) and arg.__name__ == part:
                return arg
        steps = [_step(arg, part) for arg in args if arg is not type(None)]
        return next((s for s in steps if s is not None), None)
    if origin in (list, set, frozenset) and args and isinstance(part, int):
        return args[0]
    if origin is tuple and args and isinstance(part, int):
        return args[0] if len(args) == 2 and args[1] is Ellipsis else args[min(part, len(args) - 1)]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _parse_scalar(raw: str) -> Any:
    """CLI values are YAML scalars: `--set a=3`, `a=true` and `a=[x, y]` mean what they say."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``output.path``) in a nested dict, creating sections as needed. In a
    list of named entries a part names an entry: ``stages.custom.mine.enabled``."""
    for dotted, value in overrides.items():
        node: Any = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            if isinstance(node, list):
                node = _named_entry(node, part, dotted)
                continue
            child = node.setdefault(part, {})
            if not isinstance(child, dict | list):
                raise ConfigError(f"invalid override {dotted}: {part} is not a section")
            node = child
        if isinstance(node, list):
            raise ConfigError(f"invalid override {dotted}: name an entry of the list")
        node[parts[-1]] = value
    return data


def _named_entry(entries: list[Any], name: str, dotted: str) -> dict[str, Any]:
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    raise ConfigError(f"invalid override {dotted}: no entry named {name!r}")


def load_config(
    source: str | Path | dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    model: type[M] = PipelineConfig,  # type: ignore[assignment]
    stages: list[str] | None = None,
    *,
    origin: str | None = None,
) -> M:
    """Build a config (a `PipelineConfig` unless `model` names another top-level section model)
    from a YAML path or dict plus dotted overrides; `stages` enables exactly those stages.
    Errors name the key, and say where the config came from: `origin` when given (the CLI
    names its flags), else the file, `defaults` or `dict`, with `+ overrides` when there are
    some."""
    label = "defaults"
    data: dict[str, Any] = {}
    if isinstance(source, dict):
        data, label = dict(source), "dict"
    elif source is not None:
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded or {}
    if origin is None:
        origin = f"{label} + overrides" if overrides or stages is not None else label
    data = json.loads(json.dumps(data))  # deep copy, so overrides never touch the caller's dict
    if overrides:
        data = apply_overrides(data, overrides)
    if stages is not None:
        data = apply_overrides(data, only_stages(data, stages))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, origin, model)) from None


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``: values are YAML scalars; `=` required."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        result[key.strip()] = _parse_scalar(value)
    return result
