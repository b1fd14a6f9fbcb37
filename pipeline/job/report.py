"""Accounting and provenance: `stats.json` and `manifest.json`, built from completion records.

The invariant `input_records == quarantined + kept + sum(dropped)` is checked here for every run;
a run whose counts do not add up fails instead of reporting success.
"""

from __future__ import annotations

import functools
import platform
from collections import Counter, defaultdict
from importlib import metadata
from typing import Any

from siftline.config import PipelineConfig
from siftline.errors import AccountingError
from siftline.executors import ExecutorChoice
from siftline.io.storage import Storage
from siftline.io.writers import write_json
from siftline.layout import Layout

# What differs between runs of the same job: the run's measurements (wall time and peak RSS
# per phase, and the phases' execution order: stats.json's keys are sorted, and the Ray
# executor's `warm_up` comes first), the executor that ran it, and those of the last
# `siftline select` beside them.
RUN_MEASURED = ("wall_time_s", "peak_worker_rss_mb", "phase_order", "executor")
MEASURED = (*RUN_MEASURED, *(f"select_{key}" for key in RUN_MEASURED))
PACKAGES = ("siftline", "pyarrow", "numpy", "ray", "numba", "xxhash", "fsspec", "s3fs", "pydantic")


def build_stats(
    map_records: list[dict[str, Any]], final_records: list[dict[str, Any]],
    timings: dict[str, float], peaks: dict[str, float] | None = None,
    executor: ExecutorChoice | None = None,
) -> dict[str, Any]:
    """Counts, per-domain totals and the run's measurements: wall time per phase, the phases in
    the order they ran, where the executor measured it the workers' peak RSS per phase in MB
    (the max over the workers), and which executor ran (`local` or `ray`)."""
    quarantined = sum(r["quarantined"] for r in map_records)
    scored_rows = sum(r["rows"] for r in map_records)
    kept = sum(r["kept"] for r in final_records)
    dropped: Counter[str] = Counter()
    by_domain: dict[str, Counter[str]] = defaultdict(Counter)
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for record in final_records:
        dropped.update(record["dropped"])
        for stage, counts in record.get("rules", {}).items():
            by_rule[stage].update(counts)
        for domain, counts in record["by_domain"].items():
            by_domain[domain].update(counts)
    stats = {
        "input_records": scored_rows + quarantined,
        "quarantined": quarantined,
        "kept": kept,
        "dropped": dict(sorted(dropped.items())),
        "by_domain": {
            name: {key: int(by_domain[name][key])
                   for key in ("input", "kept", "chars_in", "chars_kept")}
            for name in sorted(by_domain)
        },
        "chars_in": sum(c["chars_in"] for c in by_domain.values()),
        "chars_kept": sum(c["chars_kept"] for c in by_domain.values()),
        "wall_time_s": {name: round(sec, 3) for name, sec in timings.items()},
        "phase_order": list(timings),  # `timings` is filled as the phases end
    }
    if by_rule:
        stats["dropped_by_rule"] = {stage: dict(sorted(by_rule[stage].items()))
                                    for stage in sorted(by_rule)}
    if peaks:
        stats["peak_worker_rss_mb"] = {name: round(mb, 1) for name, mb in peaks.items()}
    if executor is not None:
        stats["executor"] = executor.kind
    check_invariant(stats)
    stats["accounting"] = "input_records == quarantined + kept + sum(dropped): holds"
    return stats


def check_invariant(stats: dict[str, Any]) -> None:
    total = stats["quarantined"] + stats["kept"] + sum(stats["dropped"].values())
    if total != stats["input_records"]:
        raise AccountingError(
            f"counts do not add up: input_records={stats['input_records']} but quarantined"
            f" + kept + dropped = {total}"
        )
    for stage, rules in stats.get("dropped_by_rule", {}).items():
        if sum(rules.values()) != stats["dropped"].get(stage, 0):
            raise AccountingError(f"{stage}: its rules drop {sum(rules.values())} rows but "
                                  f"{stats['dropped'].get(stage, 0)} are dropped for it")


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    """Installed versions, read once per process (importlib.metadata parses each METADATA)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def package_versions() -> dict[str, str]:
    return dict(_versions())


def build_manifest(
    config: PipelineConfig, plan: dict[str, Any], map_records: list[dict[str, Any]],
    final_records: list[dict[str, Any]], status: str, executor: ExecutorChoice | None = None,
) -> dict[str, Any]:
    """Resolved config and its hash, versions, inputs with counts, outputs with checksums; the
    executor section with the executor that ran (`chosen`) and why (`reason`)."""
    inputs: dict[str, dict[str, Any]] = {}
    done = {r["split"]: r for r in map_records}
    for split in plan["splits"]:
        entry = inputs.setdefault(split["uri"], {
            "uri": split["uri"], "format": split["format"], "fingerprint": split["fingerprint"],
            "splits": 0, "splits_done": 0, "records": 0, "quarantined": 0,
        })
        entry["splits"] += 1
        record = done.get(split["index"])
        if record is not None:
            entry["splits_done"] += 1
            entry["records"] += record["rows"] + record["quarantined"]
            entry["quarantined"] += record["quarantined"]
    for entry in inputs.values():
        entry["status"] = "done" if entry["splits_done"] == entry["splits"] else "pending"
    resolved = config.public_dict()
    ran = {"chosen": executor.kind, "reason": executor.reason} if executor is not None else {}
    return {
        "status": status,
        "executor": {**resolved.pop("executor"), **ran},
        "config": resolved,
        "config_sha256": config.sha256(),
        "versions": package_versions(),
        "inputs": list(inputs.values()),
        "buckets": plan["buckets"],
        "splits": plan["splits"],
        "split_records": [
            {key: r[key] for key in ("split", "rows", "quarantined", "rejects")}
            for r in map_records
        ],
        "outputs": {
            "data": [shard for r in final_records for shard in r["data"]],
            "scored": [r["scored"] for r in final_records],
            "rejects": [r["rejects"] for r in map_records if r["rejects"]],
        },
    }


def write_complete(config: PipelineConfig, plan: dict[str, Any],
                   map_records: list[dict[str, Any]], final_records: list[dict[str, Any]],
                   stats: dict[str, Any], mixture: dict[str, Any] | None, layout: Layout,
                   storage: Storage, executor: ExecutorChoice | None = None) -> dict[str, Any]:
    """stats.json (with the mixture's entry), then manifest.json marked complete: the manifest
    comes last, because it is what says the run is done. Returns the manifest."""
    if mixture is not None:
        stats["mixture"] = mixture
    manifest = build_manifest(config, plan, map_records, final_records, "complete", executor)
    write_json(storage, layout.stats, stats)
    write_json(storage, layout.manifest, manifest)
    return manifest
