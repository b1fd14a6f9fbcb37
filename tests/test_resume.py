"""Exactly-once resume: a job SIGKILLed at any point and restarted with the same command ends
with the bytes of an uninterrupted run (data/, scored/, rejects/, manifest.json), with no
document lost or doubled; a finished job is not redone unless overwrite; executors agree.

Kill points come two ways. *Polled*: tests/crash_run.py runs the job in a child process while
this process watches the output folder and SIGKILLs the child when a file appears (the Nth
completion record, the first reduce file, ...). *Exact*: the child SIGKILLs itself at one
write or delete, for windows too short to hit by polling (halfway through a file, between
stats.json and manifest.json, before `_work` is removed). Where the kind of crash is not the
point (inputs changed under an unfinished run) the job is stopped in-process instead.

Every job here writes to the relative output path `out` from its own case folder: the manifest
records output.path (and hashes it into config_sha256), so this is what lets manifests be
compared byte for byte with the reference run's.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import read_data, tree_bytes, without_measurements, write_jsonl

from siftline.config import load_config
from siftline.errors import ConfigError
from siftline.io.storage import PendingFile, Storage
from siftline.job import score as score_module
from siftline.job.runner import run

CRASH_RUN = Path(__file__).with_name("crash_run.py")
SPLIT_BYTES = 2000  # dozens of splits, so a run has ~150 tasks to be killed between
CHILD_TIMEOUT_S = 120
POLL_S = 0.002
WORDS = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
]


class OrphanTempFiles(AssertionError):
    """A `.name.<hex>.tmp` file outlived the run that should have finished the job."""


class WorkLeftBehind(AssertionError):
    """`_work` still exists after the job reported completion."""


# -- inputs and output trees -------------------------------------------------------------------
def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _make_inputs(folder: Path) -> Path:
    """12 files, ~370 docs: exact duplicates across files (one only after whitespace
    normalisation), an empty text, an id-less record, and three lines that must be rejected."""
    rng = random.Random(20240611)
    shared = [_sentence(rng, 20, 40) for _ in range(12)]
    folder.mkdir(parents=True)
    for f in range(12):
        lines: list[dict[str, Any] | bytes] = []
        for i in range(30):
            if i % 6 == 2:
                text = shared[(f * 5 + i) % len(shared)]
            else:
                text = f"doc {f}/{i}: {_sentence(rng, 5, 60)}"
            domain = ("web", "code", "books")[f % 3]
            lines.append({"id": f"s{f:02d}-{i:03d}", "text": text, "domain": domain})
        if f == 3:
            lines.insert(7, b'{"id": "s03-broken", "text": "no closing brace"')
        if f == 8:
            lines.insert(11, {"id": "s08-int", "text": 42})
            lines.insert(20, b"[1, 2, 3]")
        if f == 5:
            lines.append({"id": "s05-empty", "text": "  \n  "})
        if f == 6:
            lines.append({"text": "no id here: " + _sentence(rng, 5, 10)})
        if f == 9:
            spaced = "  " + shared[0].replace(" ", " \t  ") + "\n"
            lines.append({"id": "s09-spaced", "text": spaced})
        if f == 11:
            write_jsonl(folder / f"shard-{f:02d}.jsonl.gz", lines, compression="gzip")
        else:
            write_jsonl(folder / f"shard-{f:02d}.jsonl", lines)
    return folder


def _config(inputs: Path, output: str = "out") -> dict[str, Any]:
    return {
        "input": {"paths": [str(inputs)], "split_bytes": SPLIT_BYTES},
        "output": {"path": output},
        "executor": {"kind": "local"},
    }


def _tree_bytes(out: Path) -> dict[str, bytes]:
    """helpers.tree_bytes without hidden names: orphaned temp files are checked on their own."""
    return {rel: data for rel, data in tree_bytes(out).items()
            if not Path(rel).name.startswith(".")}


def _snapshot(out: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every entry under `out` (hidden ones too): bytes and mtime for files, None for folders."""
    snap: dict[str, tuple[bytes, int] | None] = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        snap[rel] = (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None
    return snap


def _temp_files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*.tmp")}


def _stats(out: Path) -> dict[str, Any]:
    stats = json.loads((out / "stats.json").read_text())
    return without_measurements(stats)  # the only fields that may differ between runs


def _kept_ids(out: Path) -> list[str]:
    return read_data(out).column("id").to_pylist()


def _finished(out: Path) -> bool:
    manifest = out / "manifest.json"
    return manifest.exists() and json.loads(manifest.read_text())["status"] == "complete"


def _assert_same_tree(tree: dict[str, bytes], expected: dict[str, bytes]) -> None:
    missing = sorted(set(expected) - set(tree))
    extra = sorted(set(tree) - set(expected))
    differ = sorted(k for k in set(tree) & set(expected) if tree[k] != expected[k])
    assert not (missing or extra or differ), f"missing={missing} extra={extra} differ={differ}"


@dataclass(frozen=True)
class Reference:
    inputs: Path
    out: Path
    tree: dict[str, bytes]
    manifest: bytes
    stats: dict[str, Any]
    splits: int


def _assert_matches_reference(
    out: Path, ref: Reference, allowed_orphans: set[str] | frozenset[str] = frozenset()
) -> None:
    _assert_same_tree(_tree_bytes(out), ref.tree)
    assert (out / "manifest.json").read_bytes() == ref.manifest
    assert _stats(out) == ref.stats
    ids = _kept_ids(out)
    assert len(ids) == len(set(ids)) == ref.stats["kept"], "a kept document is doubled or lost"
    if (out / "_work").exists():
        raise WorkLeftBehind(f"{out}/_work remains: {sorted(_snapshot(out / '_work'))[:10]}")
    leftovers = _temp_files(out) - set(allowed_orphans)
    if leftovers:
        raise OrphanTempFiles(f"temp files left in the finished output: {sorted(leftovers)}")


# -- child processes ---------------------------------------------------------------------------
def _start(case: Path, config: dict[str, Any], die_at: str | None = None) -> subprocess.Popen:
    args = [sys.executable, str(CRASH_RUN), json.dumps(config), *([die_at] if die_at else [])]
    with open(case / "child.log", "wb") as log:
        return subprocess.Popen(args, cwd=case, stdout=log, stderr=subprocess.STDOUT)


def _child_log(case: Path) -> str:
    return (case / "child.log").read_text(errors="replace")[-3000:]


def _wait(proc: subprocess.Popen, case: Path) -> int:
    try:
        return proc.wait(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"child job did not finish in {CHILD_TIMEOUT_S}s:\n{_child_log(case)}")


def _crash(case: Path, config: dict[str, Any], die_at: str) -> None:
    """Run the job in a child that SIGKILLs itself at `die_at`; fail if it did not die there."""
    rc = _wait(_start(case, config, die_at), case)
    assert rc == -signal.SIGKILL, f"child exited {rc}, not killed at {die_at}:\n{_child_log(case)}"


def _count(folder: Path, pattern: str) -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries if not e.name.startswith(".")
                       and Path(e.name).match(pattern))
    except FileNotFoundError:
        return 0


def _kill_when(proc: subprocess.Popen, case: Path, folder: Path, pattern: str, n: int) -> bool:
    """Poll until `folder` holds `n` files matching `pattern`, then SIGKILL the child.
    True if the kill is what ended the child (False: it finished before the trigger)."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while proc.poll() is None:
        if _count(folder, pattern) >= n:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait() == -signal.SIGKILL
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"child job did not finish in {CHILD_TIMEOUT_S}s:\n{_child_log(case)}")
        time.sleep(POLL_S)
    assert proc.returncode == 0, f"child job failed:\n{_child_log(case)}"
    return False


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_inputs(tmp_path_factory.mktemp("inputs") / "in")


@pytest.fixture(scope="module")
def reference(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The uninterrupted run every other run is compared with."""
    case = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(case)
        result = run(load_config(_config(inputs)))
    assert result.status == "complete"
    out = case / "out"
    ref = Reference(inputs, out, _tree_bytes(out), (out / "manifest.json").read_bytes(),
                    _stats(out), len(result.manifest["splits"]))
    # The input exercises what resume must get right: many splits, cross-file duplicates,
    # rejects, and unique kept ids.
    assert ref.splits >= 40
    assert ref.stats["quarantined"] == 3 and any(k.startswith("rejects/") for k in ref.tree)
    assert ref.stats["dropped"]["exact_duplicate"] >= 30
    assert ref.stats["dropped"]["empty"] == 1
    assert 300 <= ref.stats["input_records"] <= 400
    ids = _kept_ids(out)
    assert len(ids) == len(set(ids)) == ref.stats["kept"]
    assert not (out / "_work").exists() and not _temp_files(out)
    return ref


# -- SIGKILL from outside, at polled points ----------------------------------------------------
# (folder under OUT, file pattern, fraction of the splits): kill once that many files exist.
POLLED_KILLS = {
    "scoring-early": ("_work/done", "map-*.json", 0.08),
    "scoring-late": ("_work/done", "map-*.json", 0.7),
    "shuffle-first-reduce": ("_work/exact", "reduce-*.arrow", 0.0),
    "first-data-shard": ("data", "*.parquet", 0.0),
    "finalize-mid": ("_work/done", "final-*.json", 0.5),
}
KILLED_MID_RUN: dict[str, bool] = {}


@pytest.mark.parametrize("point", list(POLLED_KILLS))
def test_sigkill_at_polled_point_then_resume_matches_reference(
    point: str, reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(reference.inputs)
    out = tmp_path / "out"
    sub, pattern, fraction = POLLED_KILLS[point]
    n = max(1, math.ceil(fraction * reference.splits))
    killed = _kill_when(_start(tmp_path, config), tmp_path, out / sub, pattern, n)
    fired = killed and not _finished(out)
    KILLED_MID_RUN[point] = fired
    state = {name: _count(out / "_work" / d, p) for name, d, p in [
        ("map", "done", "map-*.json"), ("shuffle", "exact", "*.arrow"),
        ("final", "done", "final-*.json")]}
    print(f"{point}: {'killed mid-run' if fired else 'finished before the trigger'}, {state}")
    # A kill that lands inside a write of data/, scored/ or rejects/ leaves that write's temp
    # file; test_resume_removes_orphaned_temp_files holds the pipeline to removing it.
    orphans = {p for p in _temp_files(out) if not p.startswith("_work/")}

    monkeypatch.chdir(tmp_path)
    result = run(load_config(config))
    assert result.status == ("complete" if fired else "already_complete")
    _assert_matches_reference(out, reference, allowed_orphans=orphans)


def test_most_polled_kill_points_fired() -> None:
    """Guard against the polled kills going vacuous (a job too fast to be caught mid-run)."""
    if set(KILLED_MID_RUN) != set(POLLED_KILLS):
        pytest.skip("needs every polled kill point of this module to have run first")
    fired = sorted(p for p, ok in KILLED_MID_RUN.items() if ok)
    assert len(fired) >= math.ceil(0.75 * len(POLLED_KILLS)), KILLED_MID_RUN


# -- SIGKILL from inside, at exact points ------------------------------------------------------
EXACT_KILLS = [
    pytest.param("after:*/rejects/part-*.jsonl:2", "complete", id="rejects-before-record"),
    pytest.param("after:*/scored/part-*.parquet:20", "complete", id="scored-before-data"),
    pytest.param("after:*/stats.json:1", "complete", id="stats-before-manifest"),
    pytest.param("during:*/stats.json:1", "complete", id="mid-stats-write"),
    pytest.param("delete:*/_work:1", "already_complete", id="before-work-cleanup"),
]


@pytest.mark.parametrize(("die_at", "status"), EXACT_KILLS)
def test_sigkill_at_exact_point_then_resume_matches_reference(
    die_at: str, status: str, reference: Reference, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(reference.inputs)
    _crash(tmp_path, config, die_at)
    monkeypatch.chdir(tmp_path)
    result = run(load_config(config))
    assert result.status == status
    _assert_matches_reference(tmp_path / "out", reference)


@pytest.fixture(scope="module")
def orphaned(reference: Reference, tmp_path_factory: pytest.TempPathFactory):
    """A job SIGKILLed halfway through writing its 3rd data shard, with more temp files of
    killed writes planted (named like real outputs, holding junk), then resumed."""
    case = tmp_path_factory.mktemp("orphans")
    config = _config(reference.inputs)
    out = case / "out"
    _crash(case, config, "during:*/data/part-*.parquet:3")
    killed_writes = set(_temp_files(out))  # and earlier parts' files not yet committed
    assert any(t.startswith("data/.part-") for t in killed_writes), killed_writes
    assert all(t.startswith(("data/.part-", "scored/.part-")) and t.endswith(".tmp")
               for t in killed_writes), killed_writes
    first_rejects = min(k for k in reference.tree if k.startswith("rejects/"))
    junk = {
        "data/.part-00000-000.parquet.0123456789abcdef0123456789abcdef.tmp": b"PAR1junk",
        "scored/.part-00001.parquet.00000000000000000000000000000001.tmp": b"PAR1junk",
        first_rejects.replace("rejects/", "rejects/.") + ".ffffffffffffffffffffffffffffffff.tmp":
            b'{"split": 999, "error": "orphan"}\n',
        "_work/done/.final-00040.json.00000000000000000000000000000002.tmp": b'{"part": 40',
        "_work/stage/.part-00041.arrow.00000000000000000000000000000003.tmp": b"ARROW1junk",
        "_work/exact/.reduce-000.arrow.00000000000000000000000000000004.tmp": b"ARROW1",
    }
    for rel, data in junk.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(case)
        result = run(load_config(config))
    return out, result, {*killed_writes, *junk}


def test_orphaned_temp_files_do_not_affect_result(orphaned, reference: Reference) -> None:
    out, result, orphans = orphaned
    assert result.status == "complete"
    _assert_matches_reference(out, reference, allowed_orphans=orphans)


def test_resume_removes_orphaned_temp_files(orphaned, reference: Reference) -> None:
    out, _, _ = orphaned
    _assert_matches_reference(out, reference)


# -- finished jobs -----------------------------------------------------------------------------
def test_rerun_of_finished_job_changes_nothing_unless_overwrite(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference.out, out)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(out)

    result = run(load_config(_config(reference.inputs)))
    assert result.status == "already_complete"
    assert result.manifest["status"] == "complete"
    assert result.stats["kept"] == reference.stats["kept"]
    assert _snapshot(out) == before  # same entries, bytes and mtimes; no _work created

    result = run(load_config(_config(reference.inputs)), overwrite=True)
    assert result.status == "complete"
    _assert_matches_reference(out, reference)
    after = _snapshot(out)
    changed = [rel for rel, entry in before.items() if entry and after[rel][1] == entry[1]]
    assert not changed, f"overwrite did not rewrite {changed[:5]}"


# -- executors ---------------------------------------------------------------------------------
@pytest.mark.slow  # ~35 s on two cores, mostly starting the embedded Ray and its workers
def test_ray_and_local_executors_write_identical_files(
    reference: Reference, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    config = _config(reference.inputs, output=str(tmp_path / "out"))  # absolute: Ray workers
    config["executor"] = {"kind": "ray", "num_workers": 2}
    result = run(load_config(config))
    assert result.status == "complete"
    out = tmp_path / "out"
    _assert_same_tree(_tree_bytes(out), reference.tree)
    assert _stats(out) == reference.stats
    manifest, expected = json.loads((out / "manifest.json").read_text()), json.loads(
        reference.manifest)
    for m in (manifest, expected):  # what legitimately differs: where and how the job ran
        del m["executor"], m["config_sha256"], m["config"]["output"]["path"]
    assert manifest == expected
    assert not (out / "_work").exists() and not _temp_files(out)


# -- inputs that change under an unfinished run ------------------------------------------------
class _Crash(BaseException):
    """Stops a job in-process; cheaper than a child process where SIGKILL is not the point."""


def _crash_in_process(case: Path, config: dict[str, Any], pattern: str, n: int,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the job from `case` and stop it right after its nth write matching `pattern`."""
    original = Storage.write_bytes
    seen = 0

    def write_bytes(self: Storage, uri: str, data: bytes, durable: bool = True) -> None:
        nonlocal seen
        original(self, uri, data, durable)
        if fnmatch.fnmatch(uri, pattern):
            seen += 1
            if seen == n:
                raise _Crash(uri)

    monkeypatch.chdir(case)
    with monkeypatch.context() as patched:
        patched.setattr(Storage, "write_bytes", write_bytes)
        with pytest.raises(_Crash):
            run(load_config(config))


def _stopped(reference: Reference, case: Path, pattern: str, n: int,
             monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Path]:
    """The reference job's config, stopped in `case` after its nth write matching `pattern`,
    and its `_work` folder."""
    config = _config(reference.inputs)
    _crash_in_process(case, config, pattern, n, monkeypatch)
    return config, case / "out" / "_work"


def _resume_matches_reference(config: dict[str, Any], out: Path, reference: Reference) -> None:
    assert run(load_config(config)).status == "complete"
    _assert_matches_reference(out, reference)


def test_a_failed_commit_stops_finalize_and_the_resume_completes(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finalize commits parts on a background thread (pipeline/job/commits.py): a commit that
    fails (the disk) must fail the run, record no part after it, and leave a resumable job."""
    config = _config(reference.inputs)
    original, calls = PendingFile.commit, []

    def commit(self: PendingFile) -> None:
        calls.append(self.uri)
        if len(calls) == 5:
            raise OSError("no space left on device (test)")
        original(self)

    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as patched:
        patched.setattr(PendingFile, "commit", commit)
        with pytest.raises(OSError, match="no space left"):
            run(load_config(config))
    out = tmp_path / "out"
    finals = sorted((out / "_work" / "done").glob("final-*.json"))
    failed_part = Path(calls[4]).name.split("-")[1].split(".")[0]
    assert finals and all(f.name < f"final-{failed_part}.json" for f in finals)  # none after
    committed = {Path(uri).relative_to("out").as_posix() for uri in calls[:4]}  # cwd: tmp_path
    for final in finals:  # a recorded part's files were all committed, under their names
        record = json.loads(final.read_text())
        paths = {f["path"] for f in [record["scored"], *record["data"]]}
        assert paths <= committed and all((out / path).is_file() for path in paths)
    assert json.loads((out / "manifest.json").read_text())["status"] != "complete"
    _resume_matches_reference(config, out, reference)


def _edit_scored_file(inputs: Path) -> None:
    """Same size, different bytes, in a file whose splits were already scored."""
    path = inputs / "shard-00.jsonl"
    data = path.read_bytes()
    assert b"alpha" in data
    path.write_bytes(data.replace(b"alpha", b"ALPHA", 1))


def _append_to_pending_file(inputs: Path) -> None:
    with open(inputs / "shard-10.jsonl", "ab") as handle:
        handle.write(json.dumps({"id": "late", "text": "appended after the crash"}).encode()
                     + b"\n")


def _add_file(inputs: Path) -> None:
    (inputs / "shard-05b.jsonl").write_text(json.dumps({"id": "new", "text": "a new file"}) + "\n")


@pytest.mark.parametrize("change", [_edit_scored_file, _append_to_pending_file, _add_file],
                         ids=["edit-scored-file", "append-to-pending-file", "add-file"])
def test_resume_after_inputs_changed_fails_with_config_error(
    change, reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = tmp_path / "in"
    shutil.copytree(reference.inputs, inputs)
    case = tmp_path / "case"
    case.mkdir()
    config = _config(inputs)
    _crash_in_process(case, config, "*/_work/done/map-*.json", 10, monkeypatch)
    out = case / "out"
    assert (out / "_work" / "done" / "map-00000.json").exists()
    change(inputs)
    before = _snapshot(out)

    with pytest.raises(ConfigError, match="inputs changed"):
        run(load_config(config))
    assert _snapshot(out) == before  # nothing written: no mix of old and new splits

    result = run(load_config(config), overwrite=True)
    assert result.status == "complete"
    assert not (out / "_work").exists()


# -- scratch files a power cut may have cut short ----------------------------------------------
def test_resume_redoes_splits_whose_staged_file_or_record_is_cut_short(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staged parts are written without fsync, so after a power cut a completion record may
    outlive its part (or be cut short itself): resume must notice and score the split again."""
    config, work = _stopped(reference, tmp_path, "*/_work/done/map-*.json", 6, monkeypatch)
    stage = work / "stage" / "part-00001.arrow"
    stage.write_bytes(stage.read_bytes()[: stage.stat().st_size // 2])
    (work / "stage" / "part-00002.arrow").write_bytes(b"")
    record = work / "done" / "map-00003.json"
    record.write_bytes(record.read_bytes()[:10])
    _resume_matches_reference(config, tmp_path / "out", reference)


def test_resume_redoes_shuffle_files_and_final_records_cut_short(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exact-dedupe shuffle's files and finalize's records are written without fsync too:
    one cut short, emptied or gone is redone, whatever the rest holds."""
    config, work = _stopped(reference, tmp_path, "*/_work/done/final-*.json", 2, monkeypatch)
    maps = sorted((work / "exact").glob("map-*"))
    reduces = sorted((work / "exact").glob("reduce-*"))
    finals = sorted((work / "done").glob("final-*.json"))
    assert len(maps) > 1 and len(reduces) > 1 and len(finals) == 2
    maps[0].write_bytes(maps[0].read_bytes()[:-9])  # the footer's end is gone
    reduces[1].write_bytes(b"")
    finals[0].write_bytes(finals[0].read_bytes()[:10])
    _resume_matches_reference(config, tmp_path / "out", reference)


def test_finalized_parts_free_their_staged_file_and_are_not_scored_again(
    reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finalize deletes a part's staged file once its record is written; a resume must take
    the record as the part's end, not re-read its split for want of the staged file."""
    config, work = _stopped(reference, tmp_path, "*/_work/done/final-*.json", 2, monkeypatch)
    finals = sorted(p.name for p in (work / "done").glob("final-*.json"))
    staged = sorted(p.name for p in (work / "stage").glob("part-*.arrow"))
    assert len(finals) == 2 and finals[0].replace("final-", "part-")[:-5] + ".arrow" not in staged

    def no_reading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a split was read again")

    monkeypatch.setattr(score_module, "read_split", no_reading)
    _resume_matches_reference(config, tmp_path / "out", reference)
