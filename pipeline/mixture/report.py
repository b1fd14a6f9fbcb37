"""`OUT/weights.json` and its plot: what the run hands a trainer about its domains.

The document (a public contract; keys are only ever added):

  domains    {name: {tokens, share, documents, chars, drawn_tokens, epochs, capped}}
  phases     [{index, start, end, tau, tokens, weights, temperature_weights, domain_tokens}]
  epochs     {name: drawn tokens / kept tokens}
  warnings   [text]   domains repeated past max_epochs, capped ones, an unreachable cap
  total_tokens, train_tokens (+ train_tokens_from: config | kept_tokens), counted_with,
  capped, all_capped, config (the mixture section), plot

`weights` are what a trainer samples with in that phase (after any cap);
`temperature_weights` are p_i(tau) as the formula gives them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from siftline.config import PipelineConfig
from siftline.executors.base import Executor
from siftline.io.storage import Storage
from siftline.io.writers import write_json
from siftline.layout import Layout
from siftline.mixture.config import MixtureConfig
from siftline.mixture.schedule import plan_schedule
from siftline.mixture.tokens import count_kept, counted_with, estimate_tokens, load_backend


def check_mixture(config: PipelineConfig, storage: Storage) -> None:
    """Preflight: a configured tokenizer must load (errors name `mixture.tokenizer`)."""
    if config.mixture.enabled and config.mixture.tokenizer:
        load_backend(config.mixture.tokenizer, storage)


def build_weights(tokens: Mapping[str, int], cfg: MixtureConfig, method: dict[str, Any],
                  kept: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Any]:
    """The weights.json document for kept tokens per domain under `cfg`'s schedule."""
    tokens = {name: int(tokens[name]) for name in sorted(tokens)}
    total = sum(tokens.values())
    budget = cfg.train_tokens if cfg.train_tokens is not None else total
    plan = plan_schedule(tokens, cfg.taus(), budget, max_epochs=cfg.max_epochs, cap=cfg.cap)
    kept = kept or {}
    domains = {
        name: {"tokens": n, "share": n / total if total else 0.0,
               "documents": int(kept.get(name, {}).get("kept", 0)),
               "chars": int(kept.get(name, {}).get("chars_kept", 0)),
               "drawn_tokens": plan.drawn[name], "epochs": plan.epochs[name],
               "capped": name in plan.capped}
        for name, n in tokens.items()
    }
    phases = [{"index": i, "start": p.start, "end": p.end, "tau": p.tau, "tokens": p.tokens,
               "weights": p.weights, "temperature_weights": p.temperature_weights,
               "domain_tokens": p.domain_tokens} for i, p in enumerate(plan.phases)]
    return {
        "domains": domains, "phases": phases, "epochs": plan.epochs,
        "warnings": plan.warnings, "total_tokens": total, "train_tokens": budget,
        "train_tokens_from": "config" if cfg.train_tokens is not None else "kept_tokens",
        "max_epochs": cfg.max_epochs, "capped": plan.capped, "all_capped": plan.all_capped,
        "counted_with": method, "config": cfg.model_dump(mode="json"),
        "plot": "plots/weights.png" if cfg.plot else None,
    }


def write_weights(doc: dict[str, Any], layout: Layout, storage: Storage) -> None:
    """weights.json, and its PNG when the config asks for one (the plot first: the JSON names
    it, so the JSON appearing means both are there)."""
    if doc.get("plot"):
        from siftline.mixture.plot import render_weights

        storage.write_bytes(layout.weights_plot, render_weights(doc))
    write_json(storage, layout.weights, doc)


def kept_by_domain(final_records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """{domain: {kept, chars_kept}} summed over the finalize records of every part."""
    out: dict[str, Counter[str]] = {}
    for record in final_records:
        for name, counts in record["by_domain"].items():
            out.setdefault(name, Counter()).update(
                {k: counts[k] for k in ("kept", "chars_kept")})
    return {name: dict(out[name]) for name in sorted(out)}


def domain_tokens(cfg: MixtureConfig, kept: Mapping[str, Mapping[str, int]],
                  shards: Sequence[Mapping[str, Any]], layout: Layout, storage: Storage,
                  executor: Executor,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Kept tokens per domain: counted over the shards with a tokenizer, else estimated."""
    if not cfg.tokenizer:
        if progress:  # nothing to read: the kept characters are in the finalize records
            progress(len(shards), len(shards))
        return estimate_tokens({n: c["chars_kept"] for n, c in kept.items()},
                               cfg.chars_per_token)
    return count_kept(executor, cfg, storage, layout.root, layout.work, shards, list(kept),
                      progress)


def run_mixture(config: PipelineConfig, layout: Layout, storage: Storage, executor: Executor,
                final_records: Sequence[Mapping[str, Any]],
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The run's last phase: count, weigh, write weights.json; returns the stats entry."""
    cfg = config.mixture
    kept = kept_by_domain(final_records)
    shards = [d for r in final_records for d in r["data"]]
    tokens = domain_tokens(cfg, kept, shards, layout, storage, executor, progress)
    doc = build_weights(tokens, cfg, counted_with(cfg), kept)
    write_weights(doc, layout, storage)
    return stats_entry(doc)


def stats_entry(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What stats.json keeps of it: the token counts and how they were made."""
    return {"tokens": {n: d["tokens"] for n, d in doc["domains"].items()},
            "total_tokens": doc["total_tokens"], "counted_with": doc["counted_with"],
            "warnings": doc["warnings"], "weights": "weights.json"}
