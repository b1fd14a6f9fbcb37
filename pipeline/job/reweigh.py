"""`siftline weights OUT`: a finished run's domain weights again, under another mixture config."""

from __future__ import annotations

from typing import Any

from siftline.config import ExecutorConfig
from siftline.errors import ConfigError
from siftline.executors import make_executor
from siftline.io.storage import Storage
from siftline.io.writers import read_json, write_json
from siftline.layout import Layout
from siftline.mixture.config import MixtureConfig
from siftline.mixture.report import build_weights, domain_tokens, stats_entry, write_weights
from siftline.mixture.tokens import counted_with, load_backend
from siftline.outputs import load_finished_manifest


def reweigh(output: str, cfg: MixtureConfig, storage: Storage, executor_kind: str = "local",
            ) -> dict[str, Any]:
    """`siftline weights OUT`: weights.json again under another mixture config, reusing the
    run's token counts when they were made the same way (else counting the kept shards)."""
    layout = Layout.for_output(output)
    manifest = load_finished_manifest(output, storage)
    if not storage.exists(layout.stats):
        raise ConfigError(f"{output}: no stats.json; is the run finished?")
    stats = read_json(storage, layout.stats)
    kept = {name: {"kept": c["kept"], "chars_kept": c["chars_kept"]}
            for name, c in stats["by_domain"].items()}
    previous = stats.get("mixture") or {}
    if previous.get("counted_with") == counted_with(cfg):
        tokens = {name: int(previous["tokens"].get(name, 0)) for name in kept}
    else:
        if cfg.tokenizer:
            load_backend(cfg.tokenizer, storage)  # fail on a bad tokenizer before counting
        shards = manifest["outputs"]["data"]
        with make_executor(ExecutorConfig(kind=executor_kind)) as executor:
            tokens = domain_tokens(cfg, kept, shards, layout, storage, executor)
        storage.delete(layout.work, recursive=True)  # the per-shard count records
    doc = build_weights(tokens, cfg, counted_with(cfg), kept)
    write_weights(doc, layout, storage)
    stats["mixture"] = stats_entry(doc)  # the counts in stats.json follow the new method
    write_json(storage, layout.stats, stats)
    return doc
