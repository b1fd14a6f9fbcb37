"""Example near-duplicate pairs of a finished run, for `siftline inspect OUT --duplicates`.

Neither text is in `scored/` (attributes only), so both are re-read from the inputs, exactly as
`siftline select` does; only the splits that hold the examples are read.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siftline.config import PipelineConfig
from siftline.dedupe.near import CLUSTER_COLUMN
from siftline.io.split import Split
from siftline.io.storage import Storage
from siftline.layout import Layout
from siftline.outputs import read_scored, read_split_text


def duplicate_examples(output: str, manifest: dict[str, Any], config: PipelineConfig,
                       storage: Storage, limit: int = 5, chars: int = 200) -> list[dict[str, Any]]:
    """Up to `limit` (dropped document, kept representative) pairs with text previews."""
    layout = Layout.for_output(output)
    files = [layout.path(f["path"]) for f in manifest["outputs"]["scored"]]
    found: list[pa.Table] = []
    for uri in files:
        with storage.open(uri) as handle:
            part = pq.read_table(handle)
        if CLUSTER_COLUMN not in part.column_names:
            return []
        part = part.filter(pc.equal(part.column("drop_reason"), "near_duplicate"))
        found.append(part.select(["id", "domain", CLUSTER_COLUMN]))
        if sum(t.num_rows for t in found) >= limit:
            break
    if not found:
        return []
    dups = pa.concat_tables(found).slice(0, limit)
    ids = set(dups.column("id").to_pylist()) | set(dups.column(CLUSTER_COLUMN).to_pylist())
    texts = _texts_of(ids, layout, manifest, config, storage)
    return [
        {
            "domain": row["domain"],
            "dropped_id": row["id"],
            "kept_id": row[CLUSTER_COLUMN],
            "dropped_text": texts.get(row["id"], "")[:chars],
            "kept_text": texts.get(row[CLUSTER_COLUMN], "")[:chars],
        }
        for row in dups.to_pylist()
    ]


def _texts_of(ids: set[str], layout: Layout, manifest: dict[str, Any],
              config: PipelineConfig, storage: Storage) -> dict[str, str]:
    """Text of the given ids, reading only the splits whose scored part holds one of them."""
    wanted = pa.array(sorted(ids), pa.string())
    found: dict[str, str] = {}
    for split in (Split(**s) for s in manifest["splits"]):
        part_ids = read_scored(layout, storage, split.index, ["id"]).column("id")
        if not pc.any(pc.is_in(part_ids, value_set=wanted)).as_py():
            continue
        text = read_split_text(split, config, storage)
        hits = text.filter(pc.is_in(text.column("id"), value_set=wanted))
        found.update(zip(hits.column("id").to_pylist(), hits.column("text").to_pylist(),
                         strict=True))
        if len(found) == len(ids):
            break
    return found


def rule_examples(output: str, manifest: dict[str, Any], config: PipelineConfig,
                  storage: Storage, stats: dict[str, Any], chars: int = 120
                  ) -> dict[str, dict[str, str]]:
    """One dropped document per rule of the rule stages, keyed `<stage>.<rule>`: the first in
    part order, its text re-read from the inputs and shown on one line."""
    wanted = {f"{stage}.{rule}" for stage, rules in stats.get("dropped_by_rule", {}).items()
              for rule in rules}
    layout = Layout.for_output(output)
    found: dict[str, str] = {}
    for uri in (layout.path(f["path"]) for f in manifest["outputs"]["scored"]):
        with storage.open(uri) as handle:
            part = pq.read_table(handle)
        for stage in stats.get("dropped_by_rule", {}):
            column = f"{stage}_rule"
            if column not in part.column_names:
                continue
            mine = part.filter(pc.fill_null(pc.equal(part.column("drop_reason"), stage), False))
            for row_id, rule in zip(mine.column("id").to_pylist(),
                                    mine.column(column).to_pylist(), strict=True):
                found.setdefault(f"{stage}.{rule}", row_id)
        if wanted <= found.keys():
            break
    texts = _texts_of(set(found.values()), layout, manifest, config, storage)
    return {key: {"id": row_id, "text": " ".join(texts.get(row_id, "").split())[:chars]}
            for key, row_id in sorted(found.items())}
