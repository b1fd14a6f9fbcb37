"""`siftline mix OUT`: Parquet shards whose documents follow a phase's domain weights.

For trainers that cannot take sampling weights. Each domain contributes the phase's tokens for
it (`domain_tokens` in weights.json, or `tokens` spread by the phase weights): its documents in
a seeded random order, then again in a fresh order when it runs short (upsampling by
repetition; the `repeat` column says which pass a row came from), until its tokens are reached
to within half a document. All draws are then shuffled together and cut into shards of about
`shard_bytes`, so every shard holds the mixture. The same seed gives the same
bytes. Writes `mix/phase-K/part-SSSSS.parquet` and, last, `mix/phase-K/manifest.json` with the
counts per domain; a phase whose manifest exists is complete.

Memory holds one small index entry per kept document, the text of the distinct documents
drawn (at most the kept data), and one output shard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siftline.documents import BASE_SCHEMA
from siftline.errors import ConfigError
from siftline.io.storage import Storage
from siftline.io.writers import read_json, write_json, write_parquet
from siftline.layout import Layout
from siftline.mixture.tokens import TokenCounter
from siftline.mixture.weights import largest_remainder
from siftline.outputs import load_finished_manifest

MANIFEST = "manifest.json"
COLUMNS = BASE_SCHEMA.names  # id, text, domain, source: the kept shards' columns


@dataclass
class KeptIndex:
    """One entry per kept document, in shard then row order."""

    shards: list[str]
    shard: np.ndarray  # int32
    row: np.ndarray  # int64
    domain: np.ndarray  # object (str)
    tokens: np.ndarray  # float64
    n_bytes: np.ndarray  # int64


def index_kept(shards: Sequence[str], root: str, storage: Storage,
               counter: TokenCounter) -> KeptIndex:
    """Domain, tokens and text bytes of every kept document (text is read, then dropped)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("shard", "row", "domain", "tokens",
                                                          "n_bytes")}
    for i, rel in enumerate(shards):
        with storage.open(f"{root}/{rel}") as handle:
            table = pq.read_table(handle, columns=["domain", "text"])
        text = table.column("text")
        parts["shard"].append(np.full(table.num_rows, i, dtype=np.int32))
        parts["row"].append(np.arange(table.num_rows, dtype=np.int64))
        parts["domain"].append(np.asarray(table.column("domain").to_pylist(), dtype=object))
        parts["tokens"].append(counter.count(text).astype(np.float64))
        parts["n_bytes"].append(pc.binary_length(text).to_numpy(zero_copy_only=False)
                                .astype(np.int64))
    joined = {k: np.concatenate(v) if v else np.zeros(0, dtype=object if k == "domain"
                                                      else np.float64)
              for k, v in parts.items()}
    return KeptIndex(list(shards), **joined)


def _rng(seed: int, phase: int, label: str) -> np.random.Generator:
    """A generator per (seed, phase, label), independent of which other domains exist."""
    key = int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(phase, key)))


def draw_domain(doc_tokens: np.ndarray, target: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(positions, pass) of the documents drawn to reach `target` tokens: whole shuffled passes
    over the domain, then a prefix of one more that ends within half a document of the target
    (before or after the document that crosses it, whichever is closer: no bias up or down)."""
    picks: list[np.ndarray] = []
    passes: list[np.ndarray] = []
    total = float(doc_tokens.sum())
    remaining, epoch = float(target), 0
    if total <= 0 or remaining <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    while True:
        order = rng.permutation(doc_tokens.size)
        cum = np.cumsum(doc_tokens[order])
        if cum[-1] < remaining:  # a whole pass, and on to the next
            picks.append(order)
            passes.append(np.full(order.size, epoch, dtype=np.int64))
            remaining -= float(cum[-1])
            epoch += 1
            continue
        # stop at whichever end of the crossing document lands closer to the target
        k = int(np.searchsorted(cum, remaining))
        before = float(cum[k - 1]) if k else 0.0
        take = order[: k + 1 if cum[k] - remaining <= remaining - before else k]
        picks.append(take)
        passes.append(np.full(take.size, epoch, dtype=np.int64))
        break
    return np.concatenate(picks), np.concatenate(passes)


def phase_targets(phase: Mapping[str, Any], tokens: int | None) -> dict[str, int]:
    """Tokens per domain: the phase's own, or `tokens` split by its weights (exactly)."""
    if tokens is None:
        return {name: int(n) for name, n in phase["domain_tokens"].items()}
    return largest_remainder(tokens, phase["weights"])


def write_phase(index: KeptIndex, doc: Mapping[str, Any], phase_index: int, *, root: str,
                storage: Storage, seed: int, tokens: int | None, shard_bytes: int,
                compression: str) -> dict[str, Any]:
    """Draw and write one phase's mixed shards; returns (and writes last) its manifest."""
    layout = Layout.for_output(root)
    phases = doc["phases"]
    if not 0 <= phase_index < len(phases):
        raise ConfigError(f"--phase {phase_index}: the schedule has phases 0..{len(phases) - 1}")
    phase = phases[phase_index]
    folder = layout.path(layout.mix_rel(phase_index))
    storage.delete(f"{folder}/{MANIFEST}")  # incomplete until the new manifest lands
    targets = phase_targets(phase, tokens)
    picks, passes, domains = [], [], {}
    for name, target in targets.items():
        members = np.flatnonzero(index.domain == name)
        pos, rep = draw_domain(index.tokens[members], target, _rng(seed, phase_index, name))
        picks.append(members[pos])
        passes.append(rep)
        drawn = float(index.tokens[members][pos].sum())
        kept = float(index.tokens[members].sum())
        domains[name] = {"target_tokens": target, "tokens": int(round(drawn)),
                         "documents": int(pos.size), "unique_documents": int(np.unique(pos).size),
                         "epochs": drawn / kept if kept else 0.0}
    chosen = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    repeat = np.concatenate(passes) if passes else np.zeros(0, dtype=np.int64)
    order = _rng(seed, phase_index, "\0interleave").permutation(chosen.size)
    chosen, repeat = chosen[order], repeat[order]
    files = _write_shards(index, chosen, repeat, root, folder, phase_index, storage,
                          shard_bytes, compression)
    manifest = {"phase": phase_index, "start": phase["start"], "end": phase["end"],
                "tau": phase["tau"], "seed": seed, "weights": phase["weights"],
                "tokens": sum(d["tokens"] for d in domains.values()),
                "target_tokens": sum(targets.values()), "rows": int(chosen.size),
                "counted_with": doc["counted_with"], "domains": domains, "files": files}
    write_json(storage, f"{folder}/{MANIFEST}", manifest)
    return manifest


def _write_shards(index: KeptIndex, chosen: np.ndarray, repeat: np.ndarray, root: str,
                  folder: str, phase_index: int, storage: Storage, shard_bytes: int,
                  compression: str) -> list[dict[str, Any]]:
    """Gather the distinct documents once, then write the draws in order, shard by shard."""
    pool, where = _pool(index, np.unique(chosen), root, storage)
    bounds = _cuts(index.n_bytes[chosen], shard_bytes)
    files = []
    for j, (lo, hi) in enumerate(bounds):
        rows = pool.take(pa.array(where(chosen[lo:hi])))
        table = rows.append_column("repeat", pa.array(repeat[lo:hi], pa.int64()))
        rel = Layout.mix_rel(phase_index, j)
        files.append(write_parquet(storage, root, rel, table, compression).to_dict())
    written = {f["path"].rsplit("/", 1)[-1] for f in files}
    if storage.exists(folder):
        for stale in storage.glob(f"{folder}/part-*.parquet"):
            if stale.rsplit("/", 1)[-1] not in written:
                storage.delete(stale)
    return files


def _pool(index: KeptIndex, unique: np.ndarray, root: str, storage: Storage):
    """The distinct drawn documents as one table, and a map from index entry to its row."""
    tables = []
    for i, rel in enumerate(index.shards):
        rows = index.row[unique[index.shard[unique] == i]]
        if rows.size:
            with storage.open(f"{root}/{rel}") as handle:
                table = pq.read_table(handle, columns=COLUMNS)
            tables.append(table.take(pa.array(rows)))
    schema = pa.schema([BASE_SCHEMA.field(n) for n in COLUMNS])
    pool = pa.concat_tables([t.cast(schema) for t in tables]) if tables else schema.empty_table()

    def where(entries: np.ndarray) -> np.ndarray:
        return np.searchsorted(unique, entries)

    return pool, where


def _cuts(sizes: np.ndarray, target: int) -> list[tuple[int, int]]:
    """[lo, hi) slices of about `target` bytes each (at least one row; none when empty)."""
    out, lo, acc = [], 0, 0
    for i, size in enumerate(sizes.tolist()):
        acc += size
        if acc >= target and i + 1 < sizes.size:
            out.append((lo, i + 1))
            lo, acc = i + 1, 0
    if sizes.size:
        out.append((lo, int(sizes.size)))
    return out


def write_mix(output: str, storage: Storage, phases: Sequence[int] | None = None, *,
              seed: int | None = None, tokens: int | None = None,
              shard_bytes: int | None = None) -> list[dict[str, Any]]:
    """Mixed shards for the given phases (default: all) of a finished run's weights.json."""
    layout = Layout.for_output(output)
    manifest = load_finished_manifest(output, storage)
    if not storage.exists(layout.weights):
        raise ConfigError(f"{output}: no weights.json; write it with `siftline weights {output}`")
    doc = read_json(storage, layout.weights)
    method = doc["counted_with"]
    counter = TokenCounter.build(method.get("tokenizer"),
                                 float(method.get("chars_per_token", 4.0)), storage.s3)
    shards = [d["path"] for d in manifest["outputs"]["data"]]
    index = index_kept(shards, layout.root, storage, counter)
    out_cfg = manifest["config"]["output"]
    chosen = range(len(doc["phases"])) if phases is None else phases
    seed = doc["config"]["seed"] if seed is None else seed
    return [write_phase(index, doc, k, root=layout.root, storage=storage, seed=seed,
                        tokens=tokens, shard_bytes=int(shard_bytes or out_cfg["shard_bytes"]),
                        compression=out_cfg["compression"]) for k in chosen]
