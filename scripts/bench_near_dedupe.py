"""Near dedupe at scale: the whole job (signatures + band shuffle + components) on N documents.

Data (generated once, cached, seeded): ~2 KB English-like JSONL documents, Zipfian over ~18k
words, 50k per file; a --dup-rate share copy another document of their file with 5% of the words
replaced (runs of 10). Each measurement is a fresh subprocess: `signatures` (in-process
`minhash_signatures` and the stage on 100k texts, bytes per document) and `job` (`siftline.run`,
near dedupe only, zstd; local = CPU 0, one thread), while this process (CPU 1) samples the job's
process tree RSS (ray workers included) and the size of `_work` every 0.5 s.

    python scripts/bench_near_dedupe.py --docs 1000000 --executor local --markdown

`--threshold` and `--verify` set the job's `stages.near_dedupe` keys; `--sweep` runs the job once
per threshold (0.8, 0.5, 0.3) and verify mode instead and prints one row each (time, candidate
pairs, edges, largest cluster, planted copies found).

`--quality` measures recall and precision against known pairs instead, in-process, on small
corpora: the generator's documents with copies planted at Jaccard spread over 0.1-1.0, and the
499 real web documents of --real (DCLM) with edited copies, word and character 5-grams. Recall:
the planted pairs at or above the threshold that share a cluster (beside the S-curve's
expectation). Precision: the clustered pairs (every pair within a cluster; a 20k sample of the
larger ones) whose exact shingle Jaccard reaches the threshold.

    python scripts/bench_near_dedupe.py --quality --markdown
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

SEED, DATA_VERSION, PAGE, MB = 20240611, 1, os.sysconf("SC_PAGE_SIZE"), 1e6
DOCS_PER_FILE, EDIT_RATE, EDIT_RUN, SIG_DOCS, SLOTS = 50_000, 0.05, 10, 100_000, 1 << 22
THREAD_ENV = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
COMMON = ("the of and to a in is that for it as was with be by on not he this are or his from at"
          " which but have an they you were her she there one all we can has more would will if"
          " no been when who so time people year way day man life world state café naïve —")
SYLLABLES = "ka lo ri men tas ver on el ust pra di ne sho bar qui ter an ex ol mi pe dra in cor"
SEPARATORS = ((" ", 0.88), (", ", 0.06), (". ", 0.06))


# -- data ------------------------------------------------------------------------------------
def vocabulary() -> dict[str, Any]:
    """Token bytes (padded matrix + mask), a Zipf(1.1) sampling table and the mean token size."""
    rng = np.random.default_rng(SEED)
    draws = ("".join(rng.choice(SYLLABLES.split(), rng.integers(2, 5))) for _ in range(30_000))
    words = list(dict.fromkeys([*COMMON.split(), *draws]))
    tokens = [(w + s).encode() for w in words for s, _ in SEPARATORS]
    lens = np.array([len(t) for t in tokens])
    mat = np.zeros((len(tokens), lens.max()), np.uint8)
    for i, t in enumerate(tokens):
        mat[i, : len(t)] = np.frombuffer(t, np.uint8)
    word_p = 1.0 / np.arange(1, len(words) + 1) ** 1.1
    probs = np.outer(word_p / word_p.sum(), [p for _, p in SEPARATORS]).ravel()
    table = np.searchsorted(np.cumsum(probs), (np.arange(SLOTS) + 0.5) / SLOTS)
    return {"mat": mat, "mask": np.arange(mat.shape[1]) < lens[:, None], "lens": lens,
            "table": np.minimum(table, len(tokens) - 1).astype(np.int32), "mean": probs @ lens}


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of the word 5-gram sets (token ids map 1:1 to normalised words)."""
    def grams(t: np.ndarray) -> np.ndarray:
        w = np.lib.stride_tricks.sliding_window_view(t.astype(np.uint64), 5)
        return np.unique(w @ (np.uint64(1000003) ** np.arange(5, dtype=np.uint64)))
    ga, gb = grams(a), grams(b)
    inter = len(np.intersect1d(ga, gb, assume_unique=True))
    return inter / (len(ga) + len(gb) - inter)


def make_file(path: Path, k: int, first: int, n: int, vocab: dict[str, Any],
              args: argparse.Namespace) -> tuple[np.ndarray, list[float]]:
    """One JSONL file of n documents; returns its planted (copy, source) ids and some Jaccards."""
    rng = np.random.default_rng([SEED, k])
    sizes = np.clip(rng.lognormal(np.log(args.doc_bytes), 0.5, n), 200, 20_000)
    counts = np.maximum((sizes / vocab["mean"]).astype(np.int64), 2 * EDIT_RUN)
    is_copy = rng.random(n) < args.dup_rate
    is_copy[0] = False
    copies, originals = np.flatnonzero(is_copy), np.flatnonzero(~is_copy)
    sources = originals[rng.integers(0, len(originals), len(copies))]
    counts[copies] = counts[sources]
    starts = np.concatenate([[0], np.cumsum(counts)])
    toks = vocab["table"][rng.integers(0, SLOTS, int(starts[-1]))]
    jaccards = []
    for c, s in zip(copies.tolist(), sources.tolist(), strict=True):  # fresh draws in the runs
        length = int(counts[c])
        edit = rng.integers(0, length - EDIT_RUN + 1, max(1, round(EDIT_RATE * length / EDIT_RUN)))
        keep = np.ones(length, bool)
        keep[(edit[:, None] + np.arange(EDIT_RUN)).ravel()] = False
        seg, src = toks[starts[c] : starts[c + 1]], toks[starts[s] : starts[s + 1]]
        seg[keep] = src[keep]
        if len(jaccards) < 100:
            jaccards.append(jaccard(seg, src))
    with open(path, "wb") as handle:
        for lo in range(0, n, 5000):  # render 5k documents at a time (a padded byte gather)
            hi = min(lo + 5000, n)
            t = toks[starts[lo] : starts[hi]]
            buf = vocab["mat"][t][vocab["mask"][t]].tobytes()
            ends = [0, *np.cumsum(vocab["lens"][t])[starts[lo + 1 : hi + 1] - starts[lo] - 1]]
            handle.writelines(b'{"id":"d%08d","text":"%b","domain":"web"}\n'
                              % (first + lo + j, buf[ends[j] : ends[j + 1]].rstrip())
                              for j in range(hi - lo))
    return np.stack([copies + first, sources + first], axis=1), jaccards


def generate(data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Write the corpus once; its meta and planted pairs are cached next to the folder."""
    wanted = {"version": DATA_VERSION, "seed": SEED, "docs": args.docs,
              "doc_bytes": args.doc_bytes, "dup_rate": args.dup_rate}
    meta_path = data.parent / f"{data.name}.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).items() >= wanted.items():
        return json.loads(meta_path.read_text())
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    start, vocab, pairs, jaccards = time.perf_counter(), vocabulary(), [], []
    for k, first in enumerate(range(0, args.docs, DOCS_PER_FILE)):
        n = min(DOCS_PER_FILE, args.docs - first)
        planted, jac = make_file(data / f"part-{k:03d}.jsonl", k, first, n, vocab, args)
        pairs, jaccards = [*pairs, planted], [*jaccards, *jac]
    np.save(data.parent / f"{data.name}.planted.npy", np.concatenate(pairs))
    meta = {**wanted, "files": len(pairs), "planted": sum(len(p) for p in pairs),
            "bytes": sum(p.stat().st_size for p in data.glob("*.jsonl")),
            "jaccard_sample": jaccards, "gen_seconds": round(time.perf_counter() - start, 1)}
    meta_path.write_text(json.dumps(meta))
    return meta


# -- children ----------------------------------------------------------------------------------
def pin_one_core() -> None:
    import pyarrow as pa

    os.sched_setaffinity(0, {0})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def rss_now() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def max_rss(who: int = resource.RUSAGE_SELF) -> int:
    """The peak since start: for this process from executors.memory, since the local executor
    resets the kernel's mark (and with it ru_maxrss) at each phase to measure the phase."""
    if who == resource.RUSAGE_SELF:
        from siftline.executors.memory import lifetime_peak_rss_mb

        return int(lifetime_peak_rss_mb() * 1e6)
    return resource.getrusage(who).ru_maxrss * 1024


def child_signatures(data: Path, n: int) -> dict[str, Any]:
    """Signatures and the stage on n texts in-process: rates, bytes per doc, RSS."""
    pin_one_core()
    import pyarrow as pa
    import pyarrow.json as pj

    from siftline.config import NearDedupeConfig
    from siftline.dedupe import minhash_signatures
    from siftline.dedupe.minhash import warm_up
    from siftline.dedupe.near import band_edges, band_rows
    from siftline.stages.near_dedupe import MinHashBands

    warm_up()
    rss0, files = rss_now(), sorted(data.glob("*.jsonl"))[: -(-n // DOCS_PER_FILE)]
    opts = pj.ReadOptions(use_threads=False)
    table = pa.concat_tables([pj.read_json(f, read_options=opts) for f in files]).slice(0, n)
    rss1, table, t = rss_now(), table.combine_chunks(), time.perf_counter()
    minhash_signatures(table["text"], 128, 1, 5)
    sig_s, t = time.perf_counter() - t, time.perf_counter()
    staged = MinHashBands(NearDedupeConfig(enabled=True))(table)
    stage_s = time.perf_counter() - t
    rows = band_rows(staged.append_column("drop_reason", pa.nulls(n, pa.string())), 0, 1)[0]
    edges = band_edges(rows, 1)[0]
    per = {c: staged[c].nbytes / n for c in ("id", "text", "minhash", "near_bands")}
    per |= {"band_rows": rows.num_rows / n, "band_bytes": rows.nbytes / n,
            "edges": edges.num_rows / n, "edge_bytes": edges.nbytes / n}
    return {"docs": n, "text_mb": table["text"].nbytes / MB, "sig_s": sig_s, "stage_s": stage_s,
            "per_doc": per, "rss": [rss0, rss1, max_rss()]}


def child_job(data: Path, out: Path, executor: str, split_mb: int,
              near: dict[str, Any]) -> dict[str, Any]:
    """The whole job, near dedupe only; imports outside the timer, as in bench_throughput."""
    if executor == "local":
        pin_one_core()
    else:  # undo the parent's pinning: ray gets every core
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    import numba  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import siftline
    from siftline.progress import SilentReporter

    class Marks(SilentReporter):
        """As each phase starts: the peak RSS so far, CPU time, and the staged tables' size."""

        def __init__(self) -> None:
            self.rss, self.cpu, self.staged = {"after imports": rss_now()}, {}, 0

        def phase(self, name: str, total: int) -> None:
            self.rss[f"before {name}"], self.cpu[name] = max_rss(), time.process_time()
            if name == "near_dedupe":
                self.staged = sum(f.stat().st_size for f in (out / "_work/stage").iterdir())

    config = siftline.load_config({
        "input": {"paths": [str(data)], "split_bytes": split_mb * 1_000_000},
        "output": {"path": str(out), "compression": "zstd"},
        "executor": {"kind": executor},
        "stages": {"exact_dedupe": {"enabled": False}, "near_dedupe": {"enabled": True, **near}}})
    marks, wall, cpu = Marks(), time.perf_counter(), time.process_time()
    stats = siftline.run(config, reporter=marks).stats
    cpu_end, scored = time.process_time(), sorted((out / "scored").glob("*.parquet"))
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": cpu_end - cpu,
            "phases": stats["wall_time_s"], "dropped": stats["dropped"],
            "near": stats.get("near_dedupe", {}),
            "marks": {**marks.rss, "end": max_rss()}, "staged": marks.staged,
            "phase_cpu": dict(zip(marks.cpu, np.diff([*marks.cpu.values(), cpu_end]).tolist(),
                                  strict=True)),
            "children": max_rss(resource.RUSAGE_CHILDREN), "splits": len(scored),
            "split_docs": max(pyarrow.parquet.read_metadata(f).num_rows for f in scored)}


# -- parent ------------------------------------------------------------------------------------
def sample_tree(root: int, peaks: dict[int, tuple[bool, int]]) -> int:
    """Update (is a ray worker, peak RSS) of `root` and each descendant; return their RSS sum."""
    tree, total = [root], 0
    for pid in tree:
        proc = Path(f"/proc/{pid}")
        with contextlib.suppress(OSError, ValueError, IndexError):
            tree += [int(c) for f in proc.glob("task/*/children") for c in f.read_text().split()]
            rss = int((proc / "statm").read_text().split()[1]) * PAGE
            name = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
            total += rss
            was_worker, peak = peaks.get(pid, (False, 0))  # a worker's title changes as it runs
            peaks[pid] = (was_worker or name.startswith(("ray::_Worker", "ray::IDLE")),
                          max(rss, peak))
    return total


def du(folder: Path) -> int:
    """Bytes under `folder`; files the job deletes meanwhile count as 0."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def run_child(args: list[str], workdir: Path, work: Path | None = None) -> dict[str, Any]:
    """Run a child, sampling its process tree's RSS and the size of `work` until it exits."""
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, "1")}
    log, result = workdir / "child.log", workdir / "child.out"
    peaks: dict[int, tuple[bool, int]] = {}
    tree = disk = 0
    with open(log, "w") as err, open(result, "w") as res:
        proc = subprocess.Popen([sys.executable, __file__, *args], env=env, stdout=res, stderr=err)
        try:
            while proc.poll() is None:
                tree = max(tree, sample_tree(proc.pid, peaks))
                disk = max(disk, du(work) if work else 0)
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[:2]} failed:\n{log.read_text()[-4000:]}")
    workers = [rss for is_worker, rss in peaks.values() if is_worker]
    return {**json.loads(result.read_text().splitlines()[-1]), "tree": tree, "work": disk,
            "driver": peaks.get(proc.pid, (False, 0))[1], "worker": max(workers, default=0)}


def planted_recall(out: Path, data: Path, docs: int) -> dict[str, float]:
    """Planted copies in their source's dup_cluster, or dropped as near_duplicate."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(out / "scored", columns=["id", "dup_cluster", "drop_reason"])
    def index(col: str) -> np.ndarray:
        return pc.cast(pc.utf8_slice_codeunits(t[col], 1), pa.int64()).to_numpy()
    cluster, dropped = np.full(docs, -1), np.zeros(docs, bool)
    cluster[index("id")] = index("dup_cluster")
    dropped[index("id")] = pc.fill_null(pc.equal(t["drop_reason"], "near_duplicate"), False)
    pairs = np.load(data.parent / f"{data.name}.planted.npy")
    same = cluster[pairs[:, 0]] == cluster[pairs[:, 1]]
    return {"same": float(same.mean()), "found": float((same | dropped[pairs[:, 0]]).mean())}


def table(head: list[str], rows: list[list[str]], markdown: bool) -> str:
    if not markdown:
        return "\n".join("  ".join(r) for r in [head, *rows])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def report(meta: dict[str, Any], sig: dict[str, Any], job: dict[str, Any],
           recall: dict[str, float], args: argparse.Namespace) -> str:
    """Three tables: the job, its phases, and the in-process signatures with bytes per doc."""
    from siftline.config import NearDedupeConfig
    from siftline.stages.near_dedupe import band_shape

    b, r = band_shape(NearDedupeConfig(threshold=args.threshold))
    jac, n, secs, per, s = (np.array(meta["jaccard_sample"]), meta["docs"], job["seconds"],
                            sig["per_doc"], sig["docs"])
    mb = lambda x: f"{x / MB:,.0f}"  # noqa: E731
    jrows = [
        ["input", f"{n:,} docs, {meta['bytes'] / 1e9:.2f} GB in {meta['files']} files,"
         f" {job['splits']} splits of <= {args.split_mb} MB, {min(64, job['splits'])} buckets"],
        ["executor", args.executor + (" (CPU 0, one thread)" if args.executor == "local" else "")],
        ["wall s / driver CPU s / docs/s",
         f"{secs:.1f} / {job['cpu_seconds']:.1f} / {n / secs:,.0f}"],
        ["peak RSS driver, MB (ru_maxrss)",
         ", ".join(f"{k} {mb(v)}" for k, v in job["marks"].items())],
        ["peak RSS sampled, MB", f"driver {mb(job['driver'])}, process tree {mb(job['tree'])}"
         + (f", one ray worker {mb(job['worker'])}" if job["worker"] else "")
         + f" (ru_maxrss children {mb(job['children'])})"],
        ["staged tables (IPC files)", f"{job['staged'] / 1e9:.2f} GB,"
         f" {job['staged'] / n:,.0f} B/doc; largest split {job['split_docs']:,} docs"],
        ["peak _work on disk (sampled)", f"{job['work'] / 1e9:.2f} GB"],
        ["near_duplicate dropped / planted",
         f"{job['dropped'].get('near_duplicate', 0):,} / {meta['planted']:,}"],
        ["planted found (same cluster or dropped)",
         f"{recall['found']:.1%} (same cluster {recall['same']:.1%})"],
        ["expected by the S-curve", f"{np.mean(1 - (1 - jac**r) ** b):.1%} (b={b}, r={r};"
         f" planted Jaccard {jac.mean():.2f}, {jac.min():.2f}-{jac.max():.2f})"],
        ["candidate pairs / edges / largest cluster", near_counts(job["near"])]]
    phases = {**job["phases"], "other": secs - sum(job["phases"].values())}
    cpu = {**job["phase_cpu"], "other": job["cpu_seconds"] - sum(job["phase_cpu"].values())}
    prows = [[k, f"{v:.1f}", f"{v / secs:.0%}", f"{n / v:,.0f}" if v else "-",
              f"{cpu[k]:.1f}" if k in cpu else "-"]
             for k, v in phases.items()]
    srows = [
        ["minhash_signatures (CPU 0)",
         f"{s / sig['sig_s']:,.0f} docs/s, {sig['text_mb'] / sig['sig_s']:.1f} MB/s"],
        ["stage (signatures + band keys)", f"{s / sig['stage_s']:,.0f} docs/s"],
        ["staged bytes/doc: text, id, minhash, near_bands",
         ", ".join(f"{per[k]:,.0f}" for k in ("text", "id", "minhash", "near_bands"))],
        ["band rows/doc, bytes/doc", f"{per['band_rows']:.1f}, {per['band_bytes']:,.0f}"],
        ["edges/doc, bytes/doc", f"{per['edges']:.3f}, {per['edge_bytes']:,.1f}"],
        ["RSS MB: warmed up, texts read, peak", ", ".join(map(mb, sig["rss"]))]]
    phead = ["phase (stats.json)", "wall s", "share", "docs/s", "driver CPU s"]
    return "\n\n".join([table(["whole job, near dedupe only", "value"], jrows, args.markdown),
                        table(phead, prows, args.markdown),
                        table([f"in-process, {s:,} docs", "value"], srows, args.markdown)])


def near_counts(near: dict[str, Any]) -> str:
    """stats.json's near_dedupe counts, one cell."""
    if "candidate_pairs" not in near:
        return "-"
    return (f"{near['candidate_pairs']:,} / {near['verified_edges']:,} /"
            f" {near['largest_cluster']:,} (verify {near['verify']}, threshold"
            f" {near['threshold']:g})")


# -- sweep: the job at each threshold and verify mode --------------------------------------------
SWEEP = [(t, v) for t in (0.8, 0.5, 0.3) for v in ("none", "signature", "jaccard")]


def sweep(data: Path, meta: dict[str, Any], args: argparse.Namespace) -> str:
    """One job per (threshold, verify): time, the near_dedupe counts, planted copies found."""
    from siftline.config import NearDedupeConfig
    from siftline.stages.near_dedupe import band_shape

    out, jac, rows = args.workdir / "out", np.array(meta["jaccard_sample"]), []
    for threshold, verify in SWEEP:
        shutil.rmtree(out, ignore_errors=True)
        job = run_child(["--child", "job", "--executor", args.executor, "--split-mb",
                         str(args.split_mb), "--data", str(data), "--docs", str(args.docs),
                         "--workdir", str(args.workdir), "--threshold", str(threshold),
                         "--verify", verify], args.workdir, work=out / "_work")
        found = planted_recall(out, data, args.docs)
        b, r = band_shape(NearDedupeConfig(threshold=threshold))
        near, phases = job["near"], job["phases"]
        rows.append([f"{threshold:g}", f"{b}x{r}", verify, f"{job['seconds']:.1f}",
                     f"{phases.get('near_dedupe', 0):.1f}", f"{near['candidate_pairs']:,}",
                     f"{near['verified_edges']:,}", f"{near['largest_cluster']:,}",
                     f"{job['dropped'].get('near_duplicate', 0):,}", f"{found['same']:.1%}",
                     f"{np.mean(1 - (1 - jac**r) ** b):.1%}"])
        print(" ".join(rows[-1]), file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    head = ["threshold", "bands x rows", "verify", "wall s", "near_dedupe s", "candidate pairs",
            "edges", "largest cluster", "near_duplicate dropped", "planted found",
            "S-curve expects"]
    return table(head, rows, args.markdown)


# -- quality: recall and precision against known pairs --------------------------------------------
QUALITY_SHINGLES = {"word 5-grams": {"ngram": 5, "char": False},
                    "char 5-grams": {"ngram": 5, "char": True}}


def edited_copy(rng: np.random.Generator, text: str, rate: float) -> str:
    """`text` with a share `rate` of its words replaced by other words of it, in runs of 1-8,
    and a few deleted: copies from verbatim to mostly rewritten."""
    words = text.split()
    if len(words) < 2:
        return text
    out, i = [], 0
    while i < len(words):
        if rng.random() < rate / 4:
            run = int(rng.integers(1, 9))
            out += [words[int(k)] for k in rng.integers(0, len(words), run)]
            i += run
        elif rng.random() < rate / 40:
            i += 1
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def quality_corpora(args: argparse.Namespace) -> dict[str, tuple[list[dict], list[tuple]]]:
    """name -> (records, planted (id a, id b)): generated documents and the real web ones, each
    with an edited copy of every other document at an edit rate drawn from [0, 1.2]."""
    rng = np.random.default_rng(SEED)
    vocab = vocabulary()
    corpora = {}
    gen_docs = []
    for _ in range(args.quality_docs):
        toks = vocab["table"][rng.integers(0, SLOTS, int(rng.integers(150, 500)))]
        text = vocab["mat"][toks][vocab["mask"][toks]].tobytes().decode().rstrip()
        gen_docs.append(text)
    real = [json.loads(line)["text"] for line in args.real.read_text().splitlines()]
    for name, texts in (("generated", gen_docs), ("dclm web", real)):
        records, pairs = [], []
        for i, text in enumerate(texts):
            records.append({"id": f"{name[0]}{i:05d}", "text": text, "domain": name})
            if i % 2 == 0:
                copy = edited_copy(rng, text, float(rng.uniform(0.0, 1.2)))
                records.append({"id": f"{name[0]}{i:05d}c", "text": copy, "domain": name})
                pairs.append((f"{name[0]}{i:05d}", f"{name[0]}{i:05d}c"))
        corpora[name] = (records, pairs)
    return corpora


def cluster_pairs(cluster: dict[str, str], limit: int, rng: np.random.Generator
                  ) -> tuple[int, list[tuple[str, str]]]:
    """(how many pairs share a cluster, those pairs or a uniform sample of `limit`)."""
    members: dict[str, list[str]] = {}
    for doc, rep in cluster.items():
        members.setdefault(rep, []).append(doc)
    groups = [sorted(m) for m in members.values() if len(m) > 1]
    sizes = np.array([len(g) * (len(g) - 1) // 2 for g in groups], np.int64)
    total = int(sizes.sum())
    if total <= limit:
        return total, [(g[i], g[j]) for g in groups for i in range(len(g))
                       for j in range(i + 1, len(g))]
    picks = []
    for _ in range(limit):
        g = groups[int(np.searchsorted(np.cumsum(sizes), rng.integers(0, total), "right"))]
        i, j = sorted(rng.choice(len(g), 2, replace=False).tolist())
        picks.append((g[i], g[j]))
    return total, picks


def pair_jaccard(text: dict[str, str], cfg: dict[str, Any], cache: dict[tuple[str, str], float],
                 a: str, b: str) -> float:
    """The exact shingle Jaccard of two documents, cached."""
    from siftline.dedupe.near import exact_jaccard

    if (a, b) not in cache:
        cache[(a, b)] = exact_jaccard(text[a], text[b], cfg["ngram"], cfg["char"])
    return cache[(a, b)]


def quality(args: argparse.Namespace) -> str:
    """Recall and precision per corpus, shingling, threshold and verify mode (module doc)."""
    import pyarrow.parquet as pq

    import siftline
    from siftline.config import NearDedupeConfig
    from siftline.stages.near_dedupe import band_shape

    rows, work = [], args.workdir / "quality"
    shutil.rmtree(work, ignore_errors=True)
    for corpus, (records, planted) in quality_corpora(args).items():
        path = work / f"{corpus.replace(' ', '_')}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        text = {r["id"]: r["text"] for r in records}
        for shingling, shingle_cfg in QUALITY_SHINGLES.items():
            jac = partial(pair_jaccard, text, shingle_cfg, {})
            truth = np.array([jac(a, b) for a, b in planted])
            for threshold, verify in SWEEP:
                out = work / "out"
                near = {"enabled": True, "threshold": threshold, "verify": verify, **shingle_cfg}
                config = siftline.load_config({
                    "input": {"paths": [str(path)], "split_bytes": 1_000_000},
                    "output": {"path": str(out)}, "executor": {"kind": "local"},
                    "stages": {"exact_dedupe": {"enabled": False}, "near_dedupe": near}})
                start = time.perf_counter()
                stats = siftline.run(config, overwrite=True).stats
                seconds = time.perf_counter() - start
                scored = pq.read_table(out / "scored", columns=["id", "dup_cluster"])
                cluster = dict(zip(scored["id"].to_pylist(), scored["dup_cluster"].to_pylist(),
                                   strict=True))
                true = [p for p, j in zip(planted, truth, strict=True) if j >= threshold]
                recall = np.mean([cluster[a] == cluster[b] for a, b in true])
                b, r = band_shape(NearDedupeConfig(threshold=threshold))
                above = truth[truth >= threshold]
                expected = np.mean(1 - (1 - above**r) ** b)
                total, sample = cluster_pairs(cluster, 20_000, np.random.default_rng(SEED))
                good = np.mean([jac(*sorted(p)) >= threshold for p in sample]) if sample else 1.0
                n = stats["near_dedupe"]
                rows.append([corpus, shingling, f"{threshold:g}", verify, f"{len(true)}",
                             f"{recall:.3f}", f"{expected:.3f}", f"{total:,}",
                             f"{good:.3f}", f"{n['candidate_pairs']:,}",
                             f"{n['verified_edges']:,}", f"{n['largest_cluster']:,}",
                             f"{stats['wall_time_s'].get('near_dedupe', 0):.2f}",
                             f"{seconds:.1f}"])
                print(" ".join(rows[-1]), file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    head = ["corpus", "shingles", "threshold", "verify", "true pairs", "recall",
            "S-curve recall", "clustered pairs", "precision", "candidate pairs", "edges",
            "largest cluster", "near_dedupe s", "job s"]
    return table(head, rows, args.markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--doc-bytes", type=int, default=2000)
    parser.add_argument("--dup-rate", type=float, default=0.05)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/siftline-neardup"))
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--split-mb", type=int, default=64, help="input.split_bytes in MB")
    parser.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    parser.add_argument("--threshold", type=float, default=0.8, help="stages.near_dedupe.threshold")
    parser.add_argument("--verify", choices=("none", "signature", "jaccard"), default="jaccard",
                        help="stages.near_dedupe.verify")
    parser.add_argument("--sweep", action="store_true",
                        help="the job per threshold and verify mode, one row each")
    parser.add_argument("--quality", action="store_true",
                        help="recall and precision against known pairs (small corpora)")
    parser.add_argument("--quality-docs", type=int, default=1000,
                        help="generated documents in --quality (half get a copy)")
    parser.add_argument("--real", type=Path,
                        default=Path("/work/shared/data/web/dclm_labeled.jsonl"),
                        help="JSON Lines of real documents for --quality")
    parser.add_argument("--child", choices=("signatures", "job"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = args.workdir / "out"
    if args.quality:
        print(quality(args))
        return
    if args.child:
        near = {"threshold": args.threshold, "verify": args.verify}
        print(json.dumps(child_job(args.data, out, args.executor, args.split_mb, near)
                         if args.child == "job"
                         else child_signatures(args.data, min(SIG_DOCS, args.docs))))
        return
    data = args.workdir / f"data-{args.docs}-{args.doc_bytes}-{args.dup_rate:g}"
    meta = generate(data, args)
    print(f"data: {meta['docs']:,} docs, {meta['bytes'] / 1e9:.2f} GB, planted {meta['planted']:,}"
          f" (generated in {meta['gen_seconds']} s)", file=sys.stderr)
    os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})  # the sampler stays off CPU 0
    if args.sweep:
        print(sweep(data, meta, args))
        return
    common = ["--data", str(data), "--docs", str(args.docs), "--workdir", str(args.workdir),
              "--threshold", str(args.threshold), "--verify", args.verify]
    sig = run_child(["--child", "signatures", *common], args.workdir)
    shutil.rmtree(out, ignore_errors=True)
    job = run_child(["--child", "job", "--executor", args.executor, "--split-mb",
                     str(args.split_mb), *common], args.workdir, work=out / "_work")
    recall = planted_recall(out, data, args.docs)
    shutil.rmtree(out, ignore_errors=True)
    print(report(meta, sig, job, recall, args))


if __name__ == "__main__":
    main()
