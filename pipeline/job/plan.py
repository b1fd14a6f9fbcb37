"""Before any work: validate what the config points at, then plan (or re-load) the splits.

Everything that can be wrong with a job — a missing input, an unreachable bucket, an output
inside an input, an output folder holding something else — is found here, before a worker
starts, with a message that names the key or path.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

from siftline.config import PipelineConfig
from siftline.errors import ConfigError, InputError
from siftline.io.columnar import columnar_schema, wanted_columns
from siftline.io.inputs import check_inputs_reachable, expand_inputs, plan_splits, resolve_paths
from siftline.io.split import Split
from siftline.io.storage import Storage, is_remote
from siftline.io.writers import read_json, write_json
from siftline.layout import KEPT_ENTRIES, OUTPUT_ENTRIES, Layout
from siftline.stages.registry import enabled_specs

PLAN_VERSION = 1


def _inside(child: str, parent: str) -> bool:
    if is_remote(child) != is_remote(parent):
        return False
    if not is_remote(child):
        child, parent = os.path.abspath(child), os.path.abspath(parent)
    parent = parent.rstrip("/")
    return child == parent or child.startswith(parent + "/")


def check_output(config: PipelineConfig, inputs: list[str], storage: Storage) -> None:
    out = config.output.path
    for path in inputs:
        prefix, *wild = re.split(r"[*?\[]", path, maxsplit=1)
        base = prefix.rsplit("/", 1)[0] if wild else path  # a pattern's folder
        if _inside(out, base) or _inside(base, out):
            raise ConfigError(f"output.path {out} overlaps input {path}: they must be separate")
    if not is_remote(out) and os.path.isfile(out):
        raise ConfigError(f"output.path {out} is a file, expected a folder")
    if storage.isdir(out):
        names = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in storage.fs(out).ls(out)}
        ours = set(OUTPUT_ENTRIES) | set(KEPT_ENTRIES)
        foreign = sorted(name for name in names - ours if not is_temp_file(name))
        if foreign:
            raise ConfigError(
                f"output.path {out} holds files siftline did not write ({', '.join(foreign[:5])});"
                " choose an empty or new folder"
            )
    if is_remote(out) and (problem := storage.bucket_problem(out)):
        raise ConfigError(f"output.path {out}: {problem}")
    work = Layout.for_output(out, config.output.work_dir).work
    for key, folder in (("output.path", out), ("output.work_dir", work)):
        if not is_remote(folder):
            check_writable(key, folder)


def check_writable(key: str, folder: str) -> None:
    """Create `folder` and a probe file in it, then remove both (and any parent created), so a
    folder that cannot hold the job's files (under /proc, under a regular file, read-only)
    fails here, naming it, and `validate` leaves nothing behind."""
    missing = []
    path = os.path.abspath(folder)
    while not os.path.lexists(path) and path != os.path.dirname(path):
        missing.append(path)
        path = os.path.dirname(path)
    probe = os.path.join(folder, f".siftline-probe.{uuid.uuid4().hex}.tmp")  # a temp file's name
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(b"probe")
        os.remove(probe)
    except OSError as exc:
        raise ConfigError(f"{key} {folder}: cannot create or write files there "
                          f"({exc.strerror or exc})") from None
    finally:
        for created in missing:  # deepest first
            with contextlib.suppress(OSError):
                os.rmdir(created)


def is_temp_file(name: str) -> bool:
    """Leftovers of a write killed midway (`Storage.atomic_write` names them `.NAME.HEX.tmp`)."""
    return name.startswith(".") and name.endswith(".tmp")


def remove_temp_files(layout: Layout) -> None:
    """A killed write leaves a temporary file behind (locally; S3 has none): remove them."""
    if is_remote(layout.root):
        return
    for folder in (layout.root, *(layout.path(d) for d in ("data", "scored", "rejects"))):
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if is_temp_file(name):
                    os.remove(os.path.join(folder, name))


def preflight(config: PipelineConfig, storage: Storage) -> list[str]:
    """Check inputs, output and every stage's own needs; return the input paths with demo
    corpora resolved."""
    try:
        check_inputs_reachable(config.input.paths, storage)
        paths = resolve_paths(config.input.paths)
        check_output(config, paths, storage)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    for spec in enabled_specs(config):
        if spec.preflight is not None:
            spec.preflight(config)
    return paths


def make_plan(config: PipelineConfig, paths: list[str], storage: Storage) -> dict[str, Any]:
    try:
        files = expand_inputs(paths, storage)
        splits = plan_splits(config.input, storage, files)
        _check_columns(splits, config, storage)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    partitions = config.stages.exact_dedupe.partitions or max(1, min(64, len(splits)))
    return {
        "version": PLAN_VERSION,
        "config_sha256": config.sha256(),
        "buckets": partitions,
        "splits": [s.to_dict() for s in splits],
    }


def _check_columns(splits: list[Split], config: PipelineConfig, storage: Storage) -> None:
    """Columnar inputs must have the text column: say so now, not inside a worker."""
    seen: set[str] = set()
    for split in splits:
        if split.uri in seen or split.format == "jsonl":
            continue
        seen.add(split.uri)
        schema = columnar_schema(split.uri, split.format, storage)
        wanted_columns(schema, config.input.fields, split.uri)


def load_splits(plan: dict[str, Any]) -> list[Split]:
    return [Split(**s) for s in plan["splits"]]


def plan_or_resume(plan: dict[str, Any], layout: Layout, storage: Storage) -> dict[str, Any]:
    """The fresh plan, or the saved one when resuming the same config over unchanged inputs."""
    if storage.exists(layout.plan):
        saved = read_json(storage, layout.plan)
        if saved.get("config_sha256") != plan["config_sha256"]:
            raise ConfigError(
                f"{layout.root} holds an unfinished run of a different config;"
                " rerun with --overwrite to start over"
            )
        if saved["splits"] != plan["splits"]:
            raise ConfigError(
                f"the inputs changed since the unfinished run in {layout.root} started;"
                " rerun with --overwrite to start over"
            )
        return saved
    write_json(storage, layout.plan, plan)
    return plan


def clear_output(layout: Layout, storage: Storage) -> None:
    """--overwrite: remove what siftline wrote (and only that)."""
    for entry in OUTPUT_ENTRIES:
        storage.delete(layout.path(entry), recursive=True)
    if layout.work != layout.path("_work"):
        storage.delete(layout.work, recursive=True)
    if not is_remote(layout.root):
        Path(layout.root).mkdir(parents=True, exist_ok=True)
