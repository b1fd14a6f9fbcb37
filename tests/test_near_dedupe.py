"""Near-dedupe end to end: planted near duplicates, clusters, determinism, signatures, select.

The corpus plants one variant per base document with a controlled word-5-gram Jaccard (the
true one, from `siftline.dedupe.shingles`), so recall and false merges are measured against
known similarity levels. Clusters are also checked exactly against an independent oracle: the
connected components of "shares at least one LSH band" computed in the test from the
signatures with a plain union-find.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from helpers import local_config, read_data, read_scored, tree_bytes, write_jsonl
from typer.testing import CliRunner

from siftline.cli import main as cli
from siftline.config import NearDedupeConfig, load_config
from siftline.dedupe import (
    MAX_HASH,
    band_keys,
    minhash_signatures,
    shingle_hash32,
    shingles,
    to_lean_minhash,
)
from siftline.dedupe.near import ANCHORS
from siftline.errors import ConfigError
from siftline.job.runner import run
from siftline.stages.near_dedupe import MinHashBands, band_shape

NEAR = {"stages.near_dedupe.enabled": True}
HIGH, LOW = 0.9, 0.5  # the acceptance levels: recall at J >= HIGH, false merges at J <= LOW
N_BASES = 300
SPLIT_BYTES = 200_000  # the planted corpus (~1 MB) becomes 5 splits


# -- corpus ------------------------------------------------------------------------------------
def make_vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(words)


def jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a)), set(shingles(b))
    return len(sa & sb) / len(sa | sb)


def edit(rng: random.Random, words: list[str], vocab: list[str], n_edits: int) -> list[str]:
    """Substitute, delete or insert a word at `n_edits` distinct random positions."""
    out = list(words)
    for pos in sorted(rng.sample(range(len(words)), n_edits), reverse=True):
        kind = rng.random()
        if kind < 0.6:
            out[pos] = rng.choice(vocab)
        elif kind < 0.8:
            del out[pos]
        else:
            out.insert(pos, rng.choice(vocab))
    return out


@cache
def planted() -> tuple[tuple[dict[str, str], ...], tuple[tuple[str, str, float], ...]]:
    """(records, pairs): 300 bases of 150-300 words, each with one variant at a controlled
    Jaccard; pairs are (base id, variant id, true Jaccard). Which of the two gets the smaller
    id is random, so either may be the one that is kept."""
    rng = random.Random(20240611)
    vocab = make_vocabulary(rng)
    records, pairs = [], []
    for i in range(N_BASES):
        words = [rng.choice(vocab) for _ in range(rng.randint(150, 300))]
        level = i % 3  # high, middle and low similarity in equal shares
        fraction = (rng.uniform(0.001, 0.008), rng.uniform(0.02, 0.07), rng.uniform(0.15, 0.5))
        n_edits = max(1, round(fraction[level] * len(words)))
        variant = edit(rng, words, vocab, n_edits)
        base_text, variant_text = " ".join(words), " ".join(variant)
        if rng.random() < 0.3:  # a little formatting noise that normalisation must absorb
            variant_text = variant_text.replace(" ", "\n", 3).upper()
        a, b = (f"d{i:04d}a", f"d{i:04d}b") if rng.random() < 0.5 else (f"d{i:04d}b", f"d{i:04d}a")
        records += [{"id": a, "text": base_text}, {"id": b, "text": variant_text}]
        pairs.append((a, b, jaccard(base_text, variant_text)))
    rng.shuffle(records)  # a base and its variant usually land in different splits
    return tuple(records), tuple(pairs)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records, _ = planted()
    return write_jsonl(tmp_path_factory.mktemp("in") / "planted.jsonl", records)


@pytest.fixture(scope="module")
def planted_run(corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted corpus through the whole job, default near-dedupe settings, 5 splits."""
    out = tmp_path_factory.mktemp("planted") / "out"
    result = run(local_config(corpus_file, out, **NEAR, **{"input.split_bytes": SPLIT_BYTES}))
    assert result.status == "complete"
    assert len(result.manifest["splits"]) >= 4
    return out


# -- oracle ------------------------------------------------------------------------------------
def band_components(ids: list[str], texts: list[str], active: list[bool],
                    config: NearDedupeConfig | None = None) -> dict[str, str]:
    """Smallest id of each in-play row's LSH component (rows linked when they share a band,
    compared value by value, not through the pipeline's band keys, and, unless `verify` is
    none, when the pair passes it: each member of a band's group checked against the group's
    first ANCHORS members by id); own id for others. Ids must be unique."""
    config = config or NearDedupeConfig()
    bands, rows = band_shape(config)
    sigs = minhash_signatures(texts, config.num_perm, config.seed, config.ngram, char=config.char)
    parent = list(range(len(ids)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def passes(x: int, y: int) -> bool:
        if config.verify == "signature":
            return float(np.mean(sigs[x] == sigs[y])) >= config.threshold
        if config.verify == "jaccard":
            sx = set(shingles(texts[x], config.ngram, char=config.char))
            sy = set(shingles(texts[y], config.ngram, char=config.char))
            return len(sx & sy) / len(sx | sy) >= config.threshold
        return True

    anchors = 1 if config.verify == "none" else ANCHORS
    for band in range(bands):
        groups: dict[bytes, list[int]] = defaultdict(list)
        for row in np.flatnonzero(active).tolist():
            groups[sigs[row, band * rows:(band + 1) * rows].tobytes()].append(row)
        for members in groups.values():
            members.sort(key=lambda r: ids[r])
            for j, y in enumerate(members):
                for x in members[:min(j, anchors)]:
                    if passes(x, y):
                        parent[find(y)] = find(x)
    low: dict[int, str] = {}
    for row, doc_id in enumerate(ids):
        root = find(row)
        low[root] = min(low.get(root, doc_id), doc_id)
    return {doc_id: low[find(row)] if active[row] else doc_id for row, doc_id in enumerate(ids)}


def scored_by_id(out: Path, *columns: str) -> dict[str, Any]:
    table = read_scored(out)
    values = [table.column(c).to_pylist() for c in columns]
    rows = zip(*values, strict=True) if len(columns) > 1 else values[0]
    return dict(zip(table.column("id").to_pylist(), rows, strict=True))


def assert_accounting(stats: dict[str, Any]) -> None:
    total = stats["quarantined"] + stats["kept"] + sum(stats["dropped"].values())
    assert total == stats["input_records"], stats


# -- 1. planted near duplicates ----------------------------------------------------------------
def test_planted_near_duplicates_recall_and_false_merges(planted_run: Path) -> None:
    records, pairs = planted()
    high = [p for p in pairs if p[2] >= HIGH]
    low = [p for p in pairs if p[2] <= LOW]
    middle = [p for p in pairs if LOW < p[2] < HIGH]
    assert len(high) >= 80 and len(low) >= 80 and len(middle) >= 40, (
        len(high), len(low), len(middle))
    assert min(p[2] for p in high) >= HIGH and max(p[2] for p in low) <= LOW

    cluster = scored_by_id(planted_run, "dup_cluster")
    assert len(cluster) == len(records)
    recall = sum(cluster[a] == cluster[b] for a, b, _ in high) / len(high)
    false_merges = sum(cluster[a] == cluster[b] for a, b, _ in low) / len(low)
    print(f"\nplanted: {len(high)} pairs J>={HIGH} recall {recall:.3f}; {len(middle)} middle, "
          f"merged {sum(cluster[a] == cluster[b] for a, b, _ in middle)}; {len(low)} pairs "
          f"J<={LOW} false merges {false_merges:.3f}")
    assert recall >= 0.95
    assert false_merges <= 0.05

    # no cluster spans two bases: a cluster holds one base and its variant at most
    members: dict[str, set[str]] = defaultdict(set)
    for doc_id, rep in cluster.items():
        members[rep].add(doc_id[:5])
    assert all(len(bases) == 1 for bases in members.values())

    # the clusters are exactly the LSH components, and their smallest id is the one kept
    ids = [r["id"] for r in records]
    oracle = band_components(ids, [r["text"] for r in records], [True] * len(ids))
    assert cluster == oracle
    reasons = scored_by_id(planted_run, "drop_reason")
    for doc_id, rep in cluster.items():
        assert rep <= doc_id
        assert reasons[doc_id] == (None if rep == doc_id else "near_duplicate"), doc_id
    kept = read_data(planted_run).column("id").to_pylist()
    assert sorted(kept) == sorted(set(cluster.values()))
    stats = json.loads((planted_run / "stats.json").read_text())
    assert_accounting(stats)
    assert stats["dropped"] == {"near_duplicate": len(ids) - len(kept)}


@pytest.mark.parametrize("settings", [
    {"char": True, "ngram": 7, "num_perm": 64, "seed": 7},
    {"ngram": 3, "num_perm": 96, "bands": 12, "rows": 6, "seed": 0},
    {"threshold": 0.6},
])
def test_other_settings_reach_the_stage(settings: dict[str, Any], tmp_path: Path) -> None:
    records, _ = planted()
    records = records[:200]
    path = write_jsonl(tmp_path / "in" / "few.jsonl", records)
    overrides = {f"stages.near_dedupe.{k}": v for k, v in settings.items()}
    config = local_config(path, tmp_path / "out", **NEAR, **overrides,
                          **{"input.split_bytes": 50_000})
    run(config)
    ids, texts = [r["id"] for r in records], [r["text"] for r in records]
    expected = band_components(ids, texts, [True] * len(ids), config.stages.near_dedupe)
    assert scored_by_id(tmp_path / "out", "dup_cluster") == expected
    assert expected != band_components(ids, texts, [True] * len(ids))  # settings matter
    assert sum(k != v for k, v in expected.items()) > 10


# -- 2. cluster representative, priorities, dropped rows -------------------------------------
def mutation_chain(rng: random.Random, vocab: list[str], n: int, edits: int) -> list[str]:
    """n texts, each a few edits (in a fresh region) away from the one before."""
    words = [rng.choice(vocab) for _ in range(240)]
    texts = [" ".join(words)]
    region = len(words) // n
    for step in range(1, n):
        for pos in rng.sample(range(step * region, (step + 1) * region), edits):
            words[pos] = rng.choice(vocab)
        texts.append(" ".join(words))
    return texts


def shares_band(a: str, b: str) -> bool:
    keys = band_keys(minhash_signatures([a, b]), *band_shape(NearDedupeConfig()))
    return bool(set(keys[0].tolist()) & set(keys[1].tolist()))


def find_chain(rng: random.Random, vocab: list[str], n: int, edits: int) -> list[str]:
    """A chain whose neighbours share a band but whose two ends do not."""
    for _ in range(200):
        texts = mutation_chain(rng, vocab, n, edits)
        linked = all(shares_band(x, y) for x, y in zip(texts, texts[1:], strict=False))
        if linked and not shares_band(texts[0], texts[-1]):
            return texts
    raise AssertionError("no chain found; the generator needs retuning")


def test_cluster_is_its_smallest_id_and_exact_duplicates_win(
    tmp_path: Path, run_job: Any
) -> None:
    rng = random.Random(5)
    vocab = make_vocabulary(rng)
    a, b, c = find_chain(rng, vocab, 3, 8)  # a ~ b ~ c; a and c share no band
    long_chain = find_chain(rng, vocab, 6, 5)
    base = " ".join(rng.choice(vocab) for _ in range(200))
    near = base.replace(base.split()[100], "zzz", 1)  # one substituted word: J ~ 0.95
    lone = " ".join(rng.choice(vocab) for _ in range(200))
    records = [
        # the chain's smallest id sits in the middle
        {"id": "m5", "text": a}, {"id": "m1", "text": b}, {"id": "m9", "text": c},
        # a chain of 6 whose smallest id is at one end and the largest in the middle
        *({"id": doc_id, "text": t} for doc_id, t in zip(
            ["c0", "c4", "c8", "c9", "c6", "c2"], long_chain, strict=True)),
        # three exact copies of `base` (whitespace differs), a near duplicate with a smaller id
        {"id": "x2", "text": base}, {"id": "x5", "text": "  " + base.replace(" ", "\t", 7)},
        {"id": "x1", "text": near}, {"id": "x7", "text": base},
        # rows dropped while reading never join a cluster, even as the smallest id
        {"id": "a0", "text": ""}, {"id": "a1", "text": " \n\t "}, {"id": "a2", "text": ""},
        {"id": "a3", "text": base + " " + base},  # too long, and a near duplicate of `base`
        {"id": "y9", "text": lone},
    ]
    path = write_jsonl(tmp_path / "in" / "chain.jsonl", records)
    max_bytes = max(len(r["text"].encode()) for r in records if r["id"] != "a3")
    # every shared band links (verify: none): the chains are LSH's, whatever their similarity
    result = run_job(path, **NEAR, input__max_doc_bytes=max_bytes, input__split_bytes=2000,
                     stages__near_dedupe__verify="none")
    assert len(result.manifest["splits"]) >= 3
    out = tmp_path / "out"
    rows = scored_by_id(out, "dup_cluster", "drop_reason")
    expected = {
        "m5": ("m1", "near_duplicate"), "m1": ("m1", None), "m9": ("m1", "near_duplicate"),
        **{k: ("c0", None if k == "c0" else "near_duplicate")
           for k in ["c0", "c4", "c8", "c9", "c6", "c2"]},
        # x1 is the cluster's smallest id; x2 is an exact original but a near duplicate of x1,
        # its exact copies are reported as exact duplicates (the higher priority)
        "x1": ("x1", None), "x2": ("x1", "near_duplicate"),
        "x5": ("x1", "exact_duplicate"), "x7": ("x1", "exact_duplicate"),
        "a0": ("a0", "empty"), "a1": ("a1", "empty"), "a2": ("a2", "empty"),
        "a3": ("a3", "too_long"), "y9": ("y9", None),
    }
    assert rows == expected
    ids = [r["id"] for r in records]
    active = [e[1] not in ("empty", "too_long") for e in (expected[i] for i in ids)]
    oracle = band_components(ids, [r["text"] for r in records], active,
                             NearDedupeConfig(verify="none"))
    assert {k: v[0] for k, v in rows.items()} == oracle
    assert sorted(read_data(out).column("id").to_pylist()) == ["c0", "m1", "x1", "y9"]
    assert result.stats["dropped"] == {"empty": 3, "exact_duplicate": 2, "near_duplicate": 8,
                                       "too_long": 1}
    assert_accounting(result.stats)


def test_repeated_ids_do_not_drop_unrelated_documents(tmp_path: Path, run_job: Any) -> None:
    rng = random.Random(11)
    vocab = make_vocabulary(rng)
    unrelated, original = (" ".join(rng.choice(vocab) for _ in range(200)) for _ in range(2))
    near = original.replace(original.split()[50], "zzz", 1)
    assert jaccard(original, near) > 0.9 and jaccard(unrelated, original) == 0
    path = write_jsonl(tmp_path / "in" / "ids.jsonl", [
        {"id": "b", "text": unrelated},  # the same id as the near duplicate below
        {"id": "b", "text": near},
        {"id": "a", "text": original},
    ])
    result = run_job(path, **NEAR)
    assert_accounting(result.stats)
    kept = read_data(tmp_path / "out").column("text").to_pylist()
    assert unrelated in kept and original in kept and near not in kept


# -- 3. determinism ----------------------------------------------------------------------------
def test_bucket_count_and_split_size_do_not_change_the_result(
    corpus_file: Path, planted_run: Path, tmp_path: Path
) -> None:
    runs = {}
    for name, overrides in {
        "p1": {"stages.exact_dedupe.partitions": 1, "input.split_bytes": SPLIT_BYTES},
        "p7": {"stages.exact_dedupe.partitions": 7, "input.split_bytes": SPLIT_BYTES},
        "big": {"stages.exact_dedupe.partitions": 7, "input.split_bytes": 64_000_000},
    }.items():
        result = run(local_config(corpus_file, tmp_path / name, **NEAR, **overrides))
        runs[name] = (tmp_path / name, result)
    assert runs["p1"][1].manifest["buckets"] == 1 and runs["p7"][1].manifest["buckets"] == 7
    assert len(runs["big"][1].manifest["splits"]) == 1
    # same splits, other bucket counts (planted_run: one per split): the very same files
    reference = tree_bytes(planted_run)
    assert tree_bytes(runs["p1"][0]) == reference
    assert tree_bytes(runs["p7"][0]) == reference
    # one split instead of ~6: files are laid out per split, the rows and clusters are equal
    big = runs["big"][0]
    assert read_data(big).to_pylist() == read_data(planted_run).to_pylist()
    assert scored_by_id(big, "dup_cluster", "drop_reason") == scored_by_id(
        planted_run, "dup_cluster", "drop_reason")
    assert runs["big"][1].stats["dropped"] == runs["p1"][1].stats["dropped"]


def test_ray_and_local_executors_write_identical_files(
    corpus_file: Path, planted_run: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    config = local_config(corpus_file, out, **NEAR, **{
        "input.split_bytes": SPLIT_BYTES, "executor.kind": "ray", "executor.num_workers": 2})
    assert run(config).status == "complete"
    assert tree_bytes(out) == tree_bytes(planted_run)
    assert not (out / "_work").exists()


# -- 4. signatures in scored/ ------------------------------------------------------------------
def test_keep_signatures_writes_datasketch_equal_minhashes(
    corpus_file: Path, planted_run: Path, tmp_path: Path
) -> None:
    datasketch = pytest.importorskip("datasketch")
    out = tmp_path / "sig"
    run(local_config(corpus_file, out, **NEAR, **{"input.split_bytes": SPLIT_BYTES,
                                                  "stages.near_dedupe.keep_signatures": True}))
    scored = read_scored(out)
    assert "minhash" in scored.column_names and "near_bands" not in scored.column_names
    assert scored.schema.field("minhash").type == pa.list_(pa.uint32(), 128)
    # the same decisions as without signatures
    assert scored.drop_columns(["minhash"]) == read_scored(planted_run)
    assert read_data(out).to_pylist() == read_data(planted_run).to_pylist()

    records, pairs = planted()
    text = {r["id"]: r["text"] for r in records}
    sig = dict(zip(scored.column("id").to_pylist(), scored.column("minhash").to_pylist(),
                   strict=True))
    for doc_id, row in sig.items():
        m = datasketch.MinHash(num_perm=128, seed=1, scheme="affine32", hashfunc=shingle_hash32)
        m.update_batch(shingles(text[doc_id]))
        assert row == m.hashvalues.tolist(), doc_id

    lsh = datasketch.MinHashLSH(threshold=0.8, num_perm=128)
    assert (lsh.b, lsh.r) == band_shape(NearDedupeConfig())
    lean = {doc_id: to_lean_minhash(row) for doc_id, row in sig.items()}
    for doc_id, m in lean.items():
        lsh.insert(doc_id, m)
    cluster = scored_by_id(out, "dup_cluster")
    for a, b, j in pairs:
        if j >= HIGH and cluster[a] == cluster[b]:
            assert b in lsh.query(lean[a]) and a in lsh.query(lean[b])
    # datasketch's candidates are exactly ours: every row's query result stays in its cluster,
    # unless verification rejected the pair (the default: exact shingle Jaccard under 0.8)
    sets = {doc_id: set(shingles(text[doc_id])) for doc_id in sig}
    for doc_id, m in lean.items():
        for other in lsh.query(m):
            a, b = sets[doc_id], sets[other]
            jaccard = len(a & b) / len(a | b)
            assert cluster[other] == cluster[doc_id] or jaccard < 0.8, (doc_id, other)


def test_without_keep_signatures_scored_has_no_signature_columns(planted_run: Path) -> None:
    scored = read_scored(planted_run)
    assert "dup_cluster" in scored.column_names
    assert "minhash" not in scored.column_names
    assert "near_bands" not in scored.column_names
    assert read_data(planted_run).column_names == ["id", "text", "domain", "source"]


# -- 5. siftline select ------------------------------------------------------------------------
def invoke(*args: Any) -> dict[str, Any]:
    result = CliRunner().invoke(cli.app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_select_toggles_near_duplicates(tmp_path: Path) -> None:
    records, _ = planted()
    copies = [{"id": f"e{i:03d}", "text": r["text"]} for i, r in enumerate(records[:40:2])]
    path = write_jsonl(tmp_path / "in" / "with_copies.jsonl", [*records, *copies])
    out = tmp_path / "out"
    result = run(local_config(path, out, **NEAR, **{"input.split_bytes": SPLIT_BYTES}))
    first, first_files = result.stats, tree_bytes(out, ["data", "scored"])
    clusters = scored_by_id(out, "dup_cluster")
    near, exact = first["dropped"]["near_duplicate"], first["dropped"]["exact_duplicate"]
    assert near > 50 and exact == len(copies)
    assert_accounting(first)

    exact_only = invoke("select", out, "--stages", "exact_dedupe", "--json")
    assert_accounting(exact_only)
    assert exact_only["dropped"] == {"exact_duplicate": exact}
    assert exact_only["kept"] == first["kept"] + near
    assert read_data(out).num_rows == exact_only["kept"]
    assert scored_by_id(out, "dup_cluster") == clusters  # kept in scored/ for the next select

    # near-dedupe alone: an exact copy is in its original's cluster, so it goes as well
    near_only = invoke("select", out, "--stages", "near_dedupe", "--json")
    assert_accounting(near_only)
    assert near_only["dropped"] == {"near_duplicate": near + exact}
    assert near_only["kept"] == first["kept"]

    both = invoke("select", out, "--stages", "exact_dedupe,near_dedupe", "--json")
    assert_accounting(both)
    assert both["dropped"] == first["dropped"] and both["kept"] == first["kept"]
    assert tree_bytes(out, ["data", "scored"]) == first_files
    assert json.loads((out / "stats.json").read_text()) == both


# -- 6. the stage on its own -------------------------------------------------------------------
def test_stage_on_a_list_of_dicts() -> None:
    config = NearDedupeConfig()
    texts = ["one two three four five six seven", "One  two three four five six seven", "",
             "short", "x" * 50]
    table = MinHashBands(config)([{"text": t} for t in texts])
    assert table.num_rows == len(texts)
    bands, _ = band_shape(config)
    assert table.schema.field("near_bands").type == pa.list_(pa.uint64(), bands)
    assert table.schema.field("minhash").type == pa.list_(pa.uint32(), config.num_perm)
    sigs = np.array(table.column("minhash").to_pylist(), np.uint32)
    assert np.array_equal(sigs, minhash_signatures(texts))
    keys = table.column("near_bands").to_pylist()
    assert keys[0] == keys[1]  # case and whitespace do not matter
    assert keys[0] != keys[3]
    assert sigs[2].tolist() == [MAX_HASH] * config.num_perm
    assert MinHashBands(config)([]).num_rows == 0


# -- 7. config validation ----------------------------------------------------------------------
@pytest.mark.parametrize("overrides", [
    {"bands": 8},
    {"rows": 8},
    {"bands": 16, "rows": 9},
    {"num_perm": 64, "bands": 9, "rows": 13},
    {"threshold": 0.0},
    {"threshold": 1.0},
    {"threshold": 1.5},
    {"threshold": -0.2},
])
def test_bad_near_dedupe_config_names_the_section(overrides: dict[str, Any]) -> None:
    dotted = {f"stages.near_dedupe.{k}": v for k, v in overrides.items()}
    with pytest.raises(ConfigError, match=r"stages\.near_dedupe"):
        load_config(None, dotted)


def test_good_near_dedupe_config() -> None:
    config = load_config(None, {"stages.near_dedupe.bands": 16, "stages.near_dedupe.rows": 8,
                                "stages.near_dedupe.enabled": True})
    assert band_shape(config.stages.near_dedupe) == (16, 8)
    assert "near_dedupe" in config.stages.enabled()
    assert band_shape(NearDedupeConfig()) == (9, 13)
    assert "near_dedupe" not in load_config(None, {}).stages.enabled()
