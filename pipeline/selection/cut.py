"""The global score cut that every score-cut stage shares (CoLoR-Filter, PreSelect, users' own).

Candidates are the rows no earlier rule dropped (empty, too long, duplicates, an earlier cut),
so duplicates never take places. They are ranked best first (descending score for `top`,
ascending for `bottom`; missing scores last), ties broken by (id, part, row), so the order is
deterministic and independent of how the corpus was split. Then, per group (the whole pool, or
each domain with `per_domain`), the rule in force keeps a prefix of that order:

  tau        the top floor(n / tau) of the group's n candidates (CoLoR-Filter's 1/tau)
  share      the best rows while their characters stay within share x the group's characters
  tokens     the best rows within a token budget (split by each group's share of candidates)
  chars      the same with characters
  threshold  every row scoring at or above it (`top`), or at or below it (`bottom`)

The cut is stored as the last kept key of each group, so each part decides its own rows from
the cut alone (`selected_mask`), and `siftline select` re-decides from persisted scores.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ALL = "*"
CANDIDATE_SCHEMA = pa.schema([("score", pa.float64()), ("id", pa.string()), ("part", pa.int32()),
                              ("row", pa.int64()), ("domain", pa.string()),
                              ("tokens", pa.int64()), ("chars", pa.int64())])
Kind = Literal["tau", "share", "tokens", "chars", "threshold"]
Keep = Literal["top", "bottom"]
Key = tuple[float, str, int, int]  # (score, id, part, row) of the last kept row


@dataclass(frozen=True)
class CutRule:
    """The rule in force, read off a stage's config section."""

    kind: Kind
    amount: float
    keep: Keep = "top"
    per_domain: bool = False


@dataclass(frozen=True)
class GroupCut:
    candidates: int
    kept: int
    chars: int
    chars_kept: int
    budget: float | None  # the size budget of `share`, `tokens` and `chars` rules
    last: Key | None  # None: the group keeps nothing


@dataclass(frozen=True)
class Cut:
    """A decided cut: what `stats.json` records and what every part applies."""

    rule: CutRule
    groups: dict[str, GroupCut] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self.rule), "groups": {
            name: {**asdict(group), "last": None if group.last is None else list(group.last)}
            for name, group in self.groups.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cut:
        rule = CutRule(data["kind"], data["amount"], data["keep"], data["per_domain"])
        groups = {name: GroupCut(**{**g, "last": None if g["last"] is None else tuple(g["last"])})
                  for name, g in data["groups"].items()}
        return cls(rule, groups)


def candidates(table: pa.Table, part: int, score_column: str,
               tokens_column: str | None = None) -> pa.Table:
    """Rows of one part still in play (drop_reason null), with what the cut needs (no token
    column: 0 tokens)."""
    keep = pc.is_null(table.column("drop_reason"))
    rows = pa.array(np.arange(table.num_rows), pa.int64()).filter(
        keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep)
    picked = table.filter(keep)
    tokens = (pc.fill_null(picked.column(tokens_column), 0) if tokens_column is not None
              else pa.array(np.zeros(len(rows), np.int64)))
    return pa.table({
        "score": pc.cast(picked.column(score_column), pa.float64()),
        "id": picked.column("id"),
        "part": pa.array(np.full(len(rows), part, np.int32)),
        "row": rows,
        "domain": picked.column("domain"),
        "tokens": tokens,
        "chars": picked.column("n_chars"),
    }, schema=CANDIDATE_SCHEMA)


def order(table: pa.Table, keep: Keep = "top") -> pa.Table:
    """Best first: by score (descending for `top`, ascending for `bottom`; missing scores
    last), then id, part, row ascending."""
    worst = float("-inf") if keep == "top" else float("inf")
    keyed = table.append_column("_key", pc.fill_null(table.column("score"), worst))
    direction = "descending" if keep == "top" else "ascending"
    ordered = keyed.sort_by([("_key", direction), ("id", "ascending"), ("part", "ascending"),
                             ("row", "ascending")])
    return ordered.drop_columns(["_key"])


def _n_keep(ordered: pa.Table, rule: CutRule, share: float) -> tuple[int, float | None]:
    """(rows kept, size budget) for one group's candidates in best-first order; `share` is the
    group's share of all candidates (a budget is split by it)."""
    scores = ordered.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    scored = int(np.count_nonzero(~np.isnan(scores)))
    if rule.kind == "tau":
        return min(scored, math.floor(ordered.num_rows / rule.amount)), None
    if rule.kind == "threshold":
        passing = scores[:scored] >= rule.amount if rule.keep == "top" else (
            scores[:scored] <= rule.amount)
        return int(np.count_nonzero(passing)), None
    sizes = ordered.column("tokens" if rule.kind == "tokens" else "chars").to_numpy()
    sizes = sizes.astype(np.int64)
    budget = (rule.amount * float(sizes.sum()) if rule.kind == "share"
              else rule.amount * share)
    return int(np.searchsorted(np.cumsum(sizes[:scored]), budget, side="right")), budget


def compute_cut(cands: pa.Table, rule: CutRule) -> Cut:
    """The selection as data: per group, the last kept key and the counts."""
    domains = cands.column("domain")
    groups = sorted(set(domains.to_pylist())) if rule.per_domain else [ALL]
    total = max(cands.num_rows, 1)
    decided = {}
    for group in groups:
        rows = cands if group == ALL else cands.filter(pc.equal(domains, group))
        ordered = order(rows, rule.keep)
        keep, budget = _n_keep(ordered, rule, rows.num_rows / total)
        chars = ordered.column("chars").to_numpy().astype(np.int64)
        last = ordered.slice(keep - 1, 1).to_pylist()[0] if keep else None
        decided[group] = GroupCut(
            candidates=rows.num_rows, kept=keep, chars=int(chars.sum()),
            chars_kept=int(chars[:keep].sum()), budget=budget,
            last=None if last is None else (last["score"], last["id"], last["part"],
                                            last["row"]))
    return Cut(rule, decided)


def selected_mask(table: pa.Table, part: int, cut: Cut, score_column: str) -> np.ndarray:
    """True where a row is at or above its group's cut (its drop_reason is not consulted)."""
    n = table.num_rows
    scores = pc.cast(table.column(score_column), pa.float64()).to_numpy(
        zero_copy_only=False).astype(np.float64)
    domains = (np.array(table.column("domain").to_pylist(), dtype=object)
               if cut.rule.per_domain else np.full(n, ALL, dtype=object))
    better = np.greater if cut.rule.keep == "top" else np.less
    out = np.zeros(n, dtype=bool)
    ids: list[str] | None = None
    for name, group in cut.groups.items():
        if group.last is None:
            continue
        score, last_id, last_part, last_row = group.last
        in_group = domains == name
        out |= in_group & better(scores, score)
        for row in np.flatnonzero(in_group & (scores == score)):  # ties: compare the keys
            ids = ids if ids is not None else table.column("id").to_pylist()
            out[row] = (ids[row], part, int(row)) <= (last_id, last_part, last_row)
    return out
