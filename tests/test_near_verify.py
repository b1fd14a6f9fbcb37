"""Near dedupe's verification of candidate pairs (`stages.near_dedupe.verify`).

Planted pairs with a known word-5-gram Jaccard sit well above and well below each threshold
(0.8, 0.5, 0.3). Without verification the LSH S-curve lets some of the pairs below through and
clusters them; with it (the signatures' estimate, or the exact Jaccard) none is clustered, and
the pairs above are found as before. Also: chaining, the counts in stats.json and `inspect`,
config validation, determinism and resume.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from helpers import local_config, read_scored, tree_bytes, write_jsonl
from typer.testing import CliRunner

from siftline.cli import main as cli
from siftline.config import NearDedupeConfig, load_config
from siftline.dedupe import minhash_signatures, shingles
from siftline.dedupe import near as near_module
from siftline.dedupe.near import Verify, band_pairs, exact_jaccard, similar
from siftline.errors import ConfigError
from siftline.job.runner import run

THRESHOLDS = (0.8, 0.5, 0.3)
GAP = 0.1  # planted pairs sit at least this far from the threshold (the estimate's noise is
#            ~0.045 at 128 permutations, so a pair this far off is misjudged ~1.5% of the time)
PAIRS_PER_SIDE = 40


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)))
    return sorted(words)


def jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a)), set(shingles(b))
    return len(sa & sb) / len(sa | sb)


def variant(rng: random.Random, words: list[str], vocab: list[str], target: float) -> list[str]:
    """A copy of `words` with the fewest substitutions (at shuffled positions) that bring its
    Jaccard to `target` or below (found by bisection)."""
    positions = rng.sample(range(len(words)), len(words))
    fresh = [rng.choice(vocab) for _ in words]
    base = " ".join(words)

    def edited(k: int) -> list[str]:
        out = list(words)
        for pos in positions[:k]:
            out[pos] = fresh[pos]
        return out

    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi) // 2
        if jaccard(base, " ".join(edited(mid))) <= target:
            hi = mid
        else:
            lo = mid + 1
    return edited(lo)


Planted = tuple[tuple[dict[str, str], ...], tuple[tuple[str, str, float], ...]]


@cache
def planted(threshold: float) -> Planted:
    """Pairs above (J in [t + GAP, t + 2 GAP]) and below (J in [t - 1.5 GAP, t - GAP]) the
    threshold, each of a fresh base of 120 words: (records, (id a, id b, true Jaccard))."""
    rng = random.Random(int(threshold * 1000))
    vocab = vocabulary(rng)
    records, pairs = [], []
    for i in range(2 * PAIRS_PER_SIDE):
        above = i % 2 == 0
        lo, hi = (threshold + GAP, threshold + 2 * GAP) if above else (threshold - 1.5 * GAP,
                                                                        threshold - GAP)
        while True:
            words = [rng.choice(vocab) for _ in range(120)]
            text, other = " ".join(words), " ".join(variant(rng, words, vocab, rng.uniform(lo, hi)))
            j = jaccard(text, other)
            if lo <= j <= min(hi, 0.999):
                break
        a, b = f"p{i:03d}a", f"p{i:03d}b"
        records += [{"id": a, "text": text}, {"id": b, "text": other}]
        pairs.append((a, b, j))
    rng.shuffle(records)
    return tuple(records), tuple(pairs)


def near_overrides(threshold: float, verify: str, **more: Any) -> dict[str, Any]:
    return {"stages.exact_dedupe.enabled": False, "stages.near_dedupe.enabled": True,
            "stages.near_dedupe.threshold": threshold, "stages.near_dedupe.verify": verify,
            **{f"stages.near_dedupe.{k}": v for k, v in more.items()}}


def clusters(out: Path) -> dict[str, str]:
    table = read_scored(out)
    return dict(zip(table.column("id").to_pylist(), table.column("dup_cluster").to_pylist(),
                    strict=True))


def run_planted(tmp_path: Path, threshold: float, verify: str, **overrides: Any) -> Path:
    records, _ = planted(threshold)
    path = tmp_path / f"in-{threshold}.jsonl"
    if not path.exists():
        write_jsonl(path, records)
    tag = ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    out = tmp_path / f"out-{threshold}-{verify}-{tag}"
    run(local_config(path, out, **{**near_overrides(threshold, verify),
                                   "input.split_bytes": 20_000, **overrides}))
    return out


# -- 1. precision and recall at three thresholds ---------------------------------------------
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_verification_drops_false_pairs_and_keeps_true_ones(threshold: float,
                                                            tmp_path: Path) -> None:
    _, pairs = planted(threshold)
    above = [(a, b) for a, b, j in pairs if j >= threshold]
    below = [(a, b) for a, b, j in pairs if j < threshold]
    assert len(above) == len(below) == PAIRS_PER_SIDE
    found = {}
    for verify in ("none", "signature", "jaccard"):
        cluster = clusters(run_planted(tmp_path, threshold, verify))
        # no cluster spans two planted pairs: every clustered pair is a planted one
        assert all(cluster[d][:4] == d[:4] for d in cluster), verify
        found[verify] = (sum(cluster[a] == cluster[b] for a, b in above),
                         sum(cluster[a] == cluster[b] for a, b in below))
    print(f"\nthreshold {threshold}: (above found, below found) of {PAIRS_PER_SIDE} each: {found}")
    assert found["jaccard"][1] == 0  # exact: no pair below the threshold is an edge
    assert found["signature"][1] <= 1  # an estimate: ~1.5% of pairs GAP below pass it
    if threshold < 0.8:
        assert found["none"][1] >= 3  # LSH alone clusters pairs below the threshold
    # pairs above the threshold: verification only removes the estimate's misses
    assert found["jaccard"][0] == found["none"][0]
    assert found["signature"][0] >= found["none"][0] - 2
    assert found["none"][0] >= 0.8 * PAIRS_PER_SIDE


# -- 2. chaining -------------------------------------------------------------------------------
def chain_texts(rng: random.Random) -> tuple[str, str, str]:
    """A ~ B and B ~ C (J ~ 0.6), A !~ C (J ~ 0.35): B's edits of A in the first half of the
    words, C's edits of B in the second half."""
    vocab = vocabulary(rng)
    words = [rng.choice(vocab) for _ in range(200)]
    b = list(words)
    for pos in range(0, 100, 10):
        b[pos] = rng.choice(vocab)
    c = list(b)
    for pos in range(100, 200, 10):
        c[pos] = rng.choice(vocab)
    return " ".join(words), " ".join(b), " ".join(c)


def test_chains_of_verified_pairs_are_one_cluster(tmp_path: Path) -> None:
    """Verification checks pairs, not clusters: A~B and B~C put A and C in one cluster even
    though A and C are not similar (connected components, as without verification)."""
    a, b, c = chain_texts(random.Random(3))
    assert jaccard(a, b) > 0.55 and jaccard(b, c) > 0.55 and jaccard(a, c) < 0.45
    lone = " ".join(random.Random(4).choice(vocabulary(random.Random(5))) for _ in range(200))
    path = write_jsonl(tmp_path / "chain.jsonl", [
        {"id": "c2", "text": a}, {"id": "c1", "text": b}, {"id": "c3", "text": c},
        {"id": "z9", "text": lone}])
    out = tmp_path / "out"
    result = run(local_config(path, out, **near_overrides(0.5, "jaccard", bands=40, rows=3)))
    assert clusters(out) == {"c1": "c1", "c2": "c1", "c3": "c1", "z9": "z9"}
    near = result.stats["near_dedupe"]
    assert near["candidate_pairs"] == 3  # LSH at 40 x 3 pairs all three, A-C included
    assert near["verified_edges"] == 2  # A-C fails the check, the chain still holds
    assert (near["clusters"], near["clustered_documents"], near["largest_cluster"]) == (1, 3, 3)


# -- 3. what a bucket's pairs are -------------------------------------------------------------
def test_band_pairs_star_without_verification_anchors_with_it() -> None:
    rows = pa.table({"key": pa.array([7] * 7 + [9, 9], pa.uint64()),
                     "id": [f"n{i}" for i in range(7)] + ["m1", "m0"]})
    star = band_pairs(rows, anchors=1).to_pylist()
    assert star == [{"u": "m0", "v": "m1"}, *({"u": "n0", "v": f"n{i}"} for i in range(1, 7))]
    pairs = {(p["u"], p["v"]) for p in band_pairs(rows, anchors=4).to_pylist()}
    expected = {(f"n{i}", f"n{j}") for j in range(7) for i in range(min(j, 4))} | {("m0", "m1")}
    assert pairs == expected  # each member against the first 4: all pairs of groups <= 5
    assert band_pairs(rows.slice(0, 0), anchors=4).num_rows == 0
    assert band_pairs(rows.slice(7, 1), anchors=4).num_rows == 0


def test_similar_matches_the_estimate_and_the_exact_jaccard() -> None:
    rng = random.Random(9)
    vocab = vocabulary(rng)
    words = [rng.choice(vocab) for _ in range(150)]
    texts = [" ".join(words), " ".join(variant(rng, words, vocab, 0.55))]
    sigs = minhash_signatures(texts)
    share = float(np.mean(sigs[0] == sigs[1]))
    column = pa.FixedSizeListArray.from_arrays(pa.array(sigs.reshape(-1), pa.uint32()), 128)
    a, b = column.slice(0, 1), column.slice(1, 1)
    assert similar(a, b, Verify("signature", share)).tolist() == [True]
    assert similar(a, b, Verify("signature", share + 1e-9)).tolist() == [False]
    exact = exact_jaccard(*texts)
    assert exact == pytest.approx(jaccard(*texts))
    ta, tb = pa.array(texts[:1]), pa.array(texts[1:])
    assert similar(ta, tb, Verify("jaccard", exact)).tolist() == [True]
    assert similar(ta, tb, Verify("jaccard", exact + 1e-9)).tolist() == [False]
    assert similar(ta, tb, Verify("none", 0.99)).tolist() == [True]
    assert exact_jaccard("", "") == 1.0


# -- 4. stats.json and inspect -----------------------------------------------------------------
def test_counts_reach_stats_and_inspect(tmp_path: Path) -> None:
    out = run_planted(tmp_path, 0.5, "signature")
    stats = json.loads((out / "stats.json").read_text())
    near = stats["near_dedupe"]
    assert near["verify"] == "signature" and near["threshold"] == 0.5
    assert near["candidate_pairs"] > near["verified_edges"] >= 30
    assert near["largest_cluster"] == 2 and near["clustered_documents"] == 2 * near["clusters"]
    assert stats["dropped"]["near_duplicate"] == near["clusters"]
    result = CliRunner().invoke(cli.app, ["inspect", str(out)])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert (f"{near['candidate_pairs']:,} candidate pairs -> {near['verified_edges']:,} edges"
            in flat)
    assert f"the largest {near['largest_cluster']}" in flat
    # without verification every distinct candidate is an edge
    none = json.loads((run_planted(tmp_path, 0.5, "none") / "stats.json").read_text())
    assert none["near_dedupe"]["candidate_pairs"] == none["near_dedupe"]["verified_edges"]


# -- 5. config ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["exact", "", None, 1, "Signature"])
def test_bad_verify_names_the_key(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"stages\.near_dedupe\.verify"):
        load_config(None, {"stages.near_dedupe.verify": value})


def test_verify_default_and_choices() -> None:
    assert NearDedupeConfig().verify == "jaccard"
    for mode in ("none", "signature", "jaccard"):
        config = load_config(None, {"stages.near_dedupe.verify": mode})
        assert config.stages.near_dedupe.verify == mode
    with pytest.raises(ValueError, match="verify"):
        Verify("exact")


# -- 6. determinism and resume -----------------------------------------------------------------
@pytest.mark.parametrize("verify", ["signature", "jaccard"])
def test_buckets_and_splits_do_not_change_the_result(verify: str, tmp_path: Path) -> None:
    reference = run_planted(tmp_path, 0.5, verify)
    again = run_planted(tmp_path, 0.5, verify, **{"stages.exact_dedupe.partitions": 1})
    other = run_planted(tmp_path, 0.5, verify, **{"stages.exact_dedupe.partitions": 7,
                                                  "input.split_bytes": 20_000})
    assert tree_bytes(again) == tree_bytes(reference) == tree_bytes(other)
    one_split = run_planted(tmp_path, 0.5, verify, **{"input.split_bytes": 10_000_000,
                                                      "stages.exact_dedupe.partitions": 3})
    assert clusters(one_split) == clusters(reference)
    stats = [json.loads((o / "stats.json").read_text())["near_dedupe"]
             for o in (reference, again, other, one_split)]
    assert all(s == stats[0] for s in stats)


def test_a_run_killed_during_verification_resumes_to_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = run_planted(tmp_path, 0.5, "signature")
    records, _ = planted(0.5)
    path = tmp_path / "in-0.5.jsonl"
    out = tmp_path / "killed"
    config = local_config(path, out, **near_overrides(0.5, "signature"),
                          **{"input.split_bytes": 20_000})
    check, calls = near_module._check, []

    def dies_on_the_third(task: Any, part: int) -> int:
        calls.append(part)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return check(task, part)

    monkeypatch.setattr(near_module, "_check", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run(config)
    monkeypatch.setattr(near_module, "_check", check)
    assert (out / "_work" / "near" / "edges-00000.arrow").exists()
    assert run(config).status == "complete"
    assert tree_bytes(out) == tree_bytes(reference)
    assert (json.loads((out / "stats.json").read_text())["near_dedupe"]
            == json.loads((reference / "stats.json").read_text())["near_dedupe"])
