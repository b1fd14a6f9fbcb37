"""Distributed connected components: every graph shape against a plain union-find."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from siftline.dedupe import components
from siftline.dedupe.components import (
    EDGE_SCHEMA,
    RESULT_SCHEMA,
    bucket_of,
    connected_components,
    lookup_reps,
)
from siftline.executors.base import Executor
from siftline.executors.local import LocalExecutor
from siftline.io.storage import Storage
from siftline.io.writers import read_ipc, write_ipc

Edge = tuple[str, str]
BUCKETS = (1, 3, 8)


def reference(edges: Sequence[Edge]) -> dict[str, str]:
    """Union-find, union by smaller key: the answer the distributed version must give."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        a, b = find(u), find(v)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {node: find(node) for node in parent}


def write_edges(storage: Storage, folder: Path, edges: Sequence[Edge], buckets: int,
                files: int = 2) -> list[str]:
    """Edges spread over `files` IPC files, one batch per bucket of u, as a producer would."""
    uris = []
    for f in range(files):
        chunk = edges[f::files]
        table = pa.table({"u": [u for u, _ in chunk], "v": [v for _, v in chunk]},
                         schema=EDGE_SCHEMA)
        where = bucket_of(table.column("u"), buckets)
        uri = str(folder / f"edges-{buckets}-{f}.arrow")
        write_ipc(storage, uri, [table.filter(where == b) for b in range(buckets)], EDGE_SCHEMA)
        uris.append(uri)
    return uris


class Rounds(logging.Handler):
    """Collects the round count the driver logs when it converges."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "cc_rounds"):
            self.seen.append(record.cc_rounds)


@pytest.fixture
def solve(tmp_path: Path) -> Iterator[Callable[..., tuple[dict[str, str], int]]]:
    """`solve(edges, buckets, executor=None)` -> ({node: rep}, rounds), checking the files."""
    logger = logging.getLogger(components.__name__)
    handler, level = Rounds(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    storage, runs = Storage(), iter(range(1000))

    def _solve(edges: Sequence[Edge], buckets: int, executor: Executor | None = None,
               files: int = 2) -> tuple[dict[str, str], int]:
        folder = tmp_path / f"run-{next(runs)}"
        uris = write_edges(storage, folder, edges, buckets, files)
        work = str(folder / "work")
        result = connected_components(uris, executor or LocalExecutor(), storage, work, buckets)
        assert result == [f"{work}/cc/result/part-{b:05d}.arrow" for b in range(buckets)]
        assert sorted(p.name for p in (folder / "work" / "cc").iterdir()) == ["result"]
        out: dict[str, str] = {}
        for b, uri in enumerate(result):
            table = read_ipc(storage, uri)
            assert table.schema == RESULT_SCHEMA
            nodes = table.column("node").to_pylist()
            assert nodes == sorted(nodes)
            assert (bucket_of(table.column("node"), buckets) == b).all()
            out.update(zip(nodes, table.column("rep").to_pylist(), strict=True))
        return out, handler.seen[-1]

    yield _solve
    logger.removeHandler(handler)
    logger.setLevel(level)


def path(keys: list[str]) -> list[Edge]:
    return list(zip(keys[:-1], keys[1:], strict=True))


def ids(n: int, seed: int) -> list[str]:
    keys = [f"doc-{i:05d}" for i in range(n)]
    random.Random(seed).shuffle(keys)
    return keys


def chain(n: int = 200) -> list[Edge]:
    """A path whose smallest key sits in the middle, the rest in random order."""
    keys = ids(n, 7)
    keys.remove("doc-00000")
    keys.insert(n // 2, "doc-00000")
    return path(keys)


def stars() -> list[Edge]:
    """Centres that are the smallest, the largest and a middle key of their star."""
    return ([("m-50", f"m-{i:02d}") for i in range(100) if i != 50]
            + [("a-00", f"a-{i:02d}") for i in range(1, 40)]
            + [(f"z-{i:02d}", "z-99") for i in range(40)])


def small_components() -> list[Edge]:
    pairs = [(f"p{i:03d}a", f"p{i:03d}b") for i in range(60)]
    triangles = [e for i in range(40)
                 for e in [(f"t{i}x", f"t{i}y"), (f"t{i}y", f"t{i}z"), (f"t{i}z", f"t{i}x")]]
    return pairs + triangles


def cycle(n: int = 120) -> list[Edge]:
    keys = ids(n, 3)
    return path(keys + keys[:1])


def self_loops() -> list[Edge]:
    """Nodes seen only in self-loops, and self-loops on a component's leaves and root."""
    return [("solo-1", "solo-1"), ("solo-2", "solo-2"), ("solo-2", "solo-2"),
            ("k-1", "k-2"), ("k-2", "k-3"), ("k-3", "k-3"), ("k-1", "k-1"), ("k-2", "k-2")]


def duplicates() -> list[Edge]:
    edges = chain(60)
    return edges + [(v, u) for u, v in edges] + edges[:20] * 3


def bridged() -> list[Edge]:
    left, right = ids(80, 11)[:40], ids(80, 11)[40:]
    inner = [(a, b) for side in (left, right) for a, b in path(side)]
    dense = [(left[i], left[(i * 7) % 40]) for i in range(40)]
    return inner + dense + [(left[13], right[27])]


def random_graph(seed: int, nodes: int = 300, edges: int = 260) -> list[Edge]:
    """Sparse random graphs: many components of assorted sizes, some non-ASCII keys."""
    rnd = random.Random(seed)
    keys = [f"n{i}" for i in range(nodes)] + ["é1", "ü2", "😀3", "Z4", "ａ5"]
    return [(rnd.choice(keys), rnd.choice(keys)) for _ in range(edges)]


GRAPHS: dict[str, Callable[[], list[Edge]]] = {
    "chain": chain,
    "stars": stars,
    "small_components": small_components,
    "cycle": cycle,
    "self_loops": self_loops,
    "duplicates": duplicates,
    "bridged": bridged,
    "empty": list,
    **{f"random-{seed}": (lambda seed=seed: random_graph(seed)) for seed in range(4)},
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_matches_union_find(solve: Callable[..., Any], name: str) -> None:
    edges = GRAPHS[name]()
    expected = reference(edges)
    got, rounds = solve(edges, 3)
    assert got == expected
    assert rounds <= 2 * math.log2(max(len(expected), 2)) + 5


def test_result_does_not_depend_on_buckets(solve: Callable[..., Any]) -> None:
    """Every graph above at once (keys prefixed per graph), for each bucket count."""
    edges = [(f"{name}/{u}", f"{name}/{v}") for name, make in GRAPHS.items() for u, v in make()]
    expected = reference(edges)
    for buckets in BUCKETS:
        assert solve(edges, buckets)[0] == expected, f"{buckets} buckets"


def test_chain_rounds_stay_logarithmic(solve: Callable[..., Any]) -> None:
    _, rounds = solve(chain(200), 3)
    assert rounds <= 2 * math.log2(200) + 5  # 20; measured 13
    _, rounds = solve([("a-00", f"a-{i:02d}") for i in range(1, 40)], 3)
    assert rounds == 1  # already a star on its smallest node: one check, no rewiring


def test_edge_order_and_direction_do_not_matter(solve: Callable[..., Any]) -> None:
    edges = random_graph(5)
    flipped = [(v, u) if i % 2 else (u, v) for i, (u, v) in enumerate(edges)]
    random.Random(1).shuffle(flipped)
    assert solve(edges, 3, files=1)[0] == solve(flipped, 3, files=3)[0] == reference(edges)


def test_round_cap_raises(tmp_path: Path) -> None:
    storage = Storage()
    uris = write_edges(storage, tmp_path / "cap", chain(100), 2)
    with pytest.raises(RuntimeError, match="did not converge in 2 rounds"):
        connected_components(uris, LocalExecutor(), storage, str(tmp_path / "w"), 2, max_rounds=2)


class TracingExecutor(LocalExecutor):
    """Runs tasks in process and remembers which bucket the running task owns."""

    current: int | None = None

    def map(self, fn: Callable[..., Any], items: Sequence[Any], **kwargs: Any) -> list[Any]:
        def traced(item: Any) -> Any:
            self.current = item
            try:
                return fn(item)
            finally:
                self.current = None
        return super().map(traced, items, **kwargs)


def test_each_task_reads_only_its_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage, executor, buckets = Storage(), TracingExecutor(), 4
    reads: list[tuple[int | None, int]] = []
    real_open = pa.ipc.open_file

    class Spy:
        def __init__(self, source: Any) -> None:
            self.reader = real_open(source)
            self.num_record_batches = self.reader.num_record_batches

        def get_batch(self, index: int) -> pa.RecordBatch:
            reads.append((executor.current, index))
            return self.reader.get_batch(index)

        def read_all(self) -> pa.Table:
            reads.append((executor.current, -1))
            return self.reader.read_all()

    edges = random_graph(2)
    uris = write_edges(storage, tmp_path, edges, buckets, files=3)
    monkeypatch.setattr(pa.ipc, "open_file", Spy)
    result = connected_components(uris, executor, storage, str(tmp_path / "w"), buckets)
    assert reads and all(task == index for task, index in reads)
    per_task = {b: sum(task == b for task, _ in reads) for b in range(buckets)}
    assert len(set(per_task.values())) == 1  # every task reads the same number of files

    opened: list[str] = []
    monkeypatch.setattr(components, "read_ipc",
                        lambda st, uri: opened.append(uri) or read_ipc(st, uri))
    keys = pa.array(["n7", "n7", "missing", None, "é1"])
    reps = lookup_reps(result, storage, keys, buckets)
    expected = reference(edges)
    assert reps.to_pylist() == [expected.get(k) if k else None for k in keys.to_pylist()]
    assert sorted(opened) == sorted({result[b] for b in bucket_of(keys, buckets)})


def test_lookup_reps_handles_empty_and_chunked_keys(tmp_path: Path) -> None:
    storage = Storage()
    uris = write_edges(storage, tmp_path, [("b", "a"), ("c", "b"), ("x", "y")], 3)
    result = connected_components(uris, LocalExecutor(), storage, str(tmp_path / "w"), 3)
    assert lookup_reps(result, storage, pa.array([], pa.string()), 3).to_pylist() == []
    keys = pa.chunked_array([["c", "y"], ["q", "a"]])
    assert lookup_reps(result, storage, keys, 3).to_pylist() == ["a", "x", None, "a"]


def test_empty_input_gives_empty_buckets(tmp_path: Path) -> None:
    storage = Storage()
    result = connected_components([], LocalExecutor(), storage, str(tmp_path), 3)
    assert [read_ipc(storage, uri).num_rows for uri in result] == [0, 0, 0]


def test_bucket_of_is_xxh3_of_utf8() -> None:
    keys = ["", "a", "é", "😀 doc", "doc-00042"]
    expected = [xxhash.xxh3_64_intdigest(k.encode()) % 7 for k in keys]
    assert bucket_of(pa.array(keys), 7).tolist() == expected
    assert bucket_of(pa.array(["x"] + keys).slice(1), 7).tolist() == expected
    assert bucket_of(pa.chunked_array([keys[:2], keys[2:]]), 7).tolist() == expected
    assert bucket_of(pa.array(keys, pa.large_string()), 7).dtype == np.int64
    assert bucket_of(pa.array([None, ""], pa.string()), 7).tolist() == [expected[0]] * 2


def test_bad_inputs_fail_clearly(tmp_path: Path) -> None:
    storage = Storage()
    uris = write_edges(storage, tmp_path, [("a", "b")], 2)
    with pytest.raises(ValueError, match="expected one per bucket"):
        connected_components(uris, LocalExecutor(), storage, str(tmp_path / "w"), 3)
    table = pa.table({"u": ["a", None], "v": ["b", "c"]}, schema=EDGE_SCHEMA)
    write_ipc(storage, str(tmp_path / "null.arrow"), [table], EDGE_SCHEMA)
    with pytest.raises(ValueError, match="null node keys"):
        connected_components([str(tmp_path / "null.arrow")], LocalExecutor(), storage,
                             str(tmp_path / "w"), 1)


@pytest.mark.slow
def test_ray_executor_agrees(solve: Callable[..., Any]) -> None:
    from siftline.executors.ray_executor import RayExecutor

    edges = random_graph(9) + chain(50)
    with RayExecutor(num_workers=2) as executor:
        got, _ = solve(edges, 3, executor)
    assert got == reference(edges)
