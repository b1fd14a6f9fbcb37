"""Rough edges a new user meets in the CLI: an output that cannot be written, re-selection by a
stage the run lacks, help text rich rewrites, where the rejects are, a quarantine message's
wording, Ctrl-C and SIGTERM mid-run, `select`'s timings beside the run's, and the phases in the
order they ran."""

from __future__ import annotations

import inspect as pyinspect
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import invoke, read_rejects, tree_bytes, write_jsonl
from rich.text import Text
from typer.main import get_command
from typer.testing import Result

import siftline.cli.main as cli
from siftline.cli.render import timings_table
from siftline.config import load_config
from siftline.job.runner import run

SCRIPT = Path(sys.executable).with_name("siftline")
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


pytestmark = pytest.mark.usefixtures("wide_console")


def corpus(folder: Path, files: int = 2, docs: int = 12, bad_line: bool = True) -> Path:
    """JSON Lines in `folder`: a few duplicates, and (with `bad_line`) one unterminated string."""
    rng = random.Random(7)
    for f in range(files):
        lines: list[dict[str, Any] | bytes] = [
            {"id": f"f{f}-{i:04d}", "domain": ("web", "code")[i % 2],
             "text": f"doc {i % (docs - 3)}: " + " ".join(rng.choice(WORDS) for _ in range(12))}
            for i in range(docs)]
        if bad_line and f == 0:
            lines.insert(3, b'{"id": "broken", "text": "no closing quote}')
        write_jsonl(folder / f"part-{f}.jsonl", lines)
    return folder


def config_file(tmp_path: Path, inputs: Path, out: Path | str, **sections: Any) -> Path:
    data: dict[str, Any] = {"input": {"paths": [str(inputs)]}, "output": {"path": str(out)},
                            "executor": {"kind": "local"}}
    data.update(sections)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def error_lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


# -- 1: an output that cannot be created or written --------------------------------------------
@pytest.mark.parametrize("where", ["under-a-file", "under-proc", "work-dir-under-a-file"])
def test_unwritable_output_fails_before_any_work(tmp_path: Path, where: str) -> None:
    """`validate` used to say OK and `run` to die with a NotADirectoryError traceback."""
    if where == "under-proc" and not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    (tmp_path / "notes.txt").write_text("a regular file\n")
    out, args = tmp_path / "out", []
    named = {"under-a-file": tmp_path / "notes.txt" / "out",
             "under-proc": Path("/proc/siftline-out"),
             "work-dir-under-a-file": tmp_path / "notes.txt" / "work"}[where]
    if where == "work-dir-under-a-file":
        args = ["--set", f"output.work_dir={named}"]
    else:
        out = named
    cfg = config_file(tmp_path, corpus(tmp_path / "in"), out)
    for command in ("validate", "run"):
        result = invoke(command, cfg, *args)
        assert result.exit_code == 2, result.output
        assert not isinstance(result.exception, OSError), result.exception
        lines = error_lines(result)
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
        key = "output.work_dir" if where.startswith("work") else "output.path"
        assert f"{key} {named}: cannot create or write files there" in lines[0]
    if where == "work-dir-under-a-file":
        assert not out.exists()  # the output folder checked, then removed again


# -- 2: re-selection by a stage whose scores the run lacks ------------------------------------
def _snapshot(out: Path) -> dict[str, tuple[bytes, int] | None]:
    return {p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            if p.is_file() else None for p in sorted(out.rglob("*"))}


@pytest.mark.parametrize(("args", "fragment"), [
    (["--preselect-keep", "0.2"], "the run has no scores for preselect"),
    (["--color-tau", "8"], "the run has no scores for color_filter"),
    (["--stages", "exact_dedupe,preselect"], "the run has no scores for preselect"),
    (["--color-tau", "8", "--stages", "exact_dedupe"],
     "--color-tau re-selects by color_filter, which --stages leaves out"),
], ids=["preselect-keep", "color-tau", "stages", "shortcut-outside-stages"])
def test_select_by_a_stage_the_run_lacks_changes_nothing(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    """`select --preselect-keep` on a run without PreSelect exited 0 having changed nothing but
    deleting mix/: now it is an error, before anything is touched."""
    out = tmp_path / "out"
    assert invoke("run", config_file(tmp_path, corpus(tmp_path / "in"), out),
                  "--quiet").exit_code == 0
    (out / "mix" / "phase-0").mkdir(parents=True)
    (out / "mix" / "phase-0" / "manifest.json").write_text("{}")
    before = _snapshot(out)
    result = invoke("select", out, *args)
    assert result.exit_code == 2, result.output
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], lines
    assert _snapshot(out) == before


# -- 3: help text shown as written -------------------------------------------------------------
def _commands(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_every_help_string_renders_as_written() -> None:
    """typer renders help as rich markup: `:end:` became an emoji, `[x]` a style tag."""
    checked = 0
    for path, command in _commands(get_command(cli.app), ("siftline",)):
        for text in [command.help or "", *(getattr(p, "help", None) or ""
                                           for p in command.params)]:
            source = pyinspect.cleandoc(text)
            shown = Text.from_markup(source)
            assert shown.plain == Text.from_markup(source, emoji=False).plain, (path, source)
            assert all(span.start == span.end for span in shown.spans), (path, source)
            checked += 1
    assert checked > 50


def test_weights_help_shows_the_schedule_syntax(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "TERMINAL_WIDTH": "200"}
    done = subprocess.run([str(SCRIPT), "weights", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "START:END:TAU" in done.stdout and "0:0.5:5,0.5:1:1" in done.stdout
    assert "\U0001f51a" not in done.stdout  # rich's :end: emoji


# -- 4 and 5: where the rejects are, examples, and the message's wording -----------------------
def test_run_and_inspect_point_at_the_rejects(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", config_file(tmp_path, corpus(tmp_path / "in"), out))
    assert result.exit_code == 0, result.output
    assert f"quarantined records are in {out}/rejects/" in result.output
    rejects = read_rejects(out)
    assert len(rejects) == 1
    # json says "Unterminated string starting at" + the column: not "at at column"
    assert rejects[0]["error"] == "invalid JSON: Unterminated string starting at column 26"
    shown = invoke("inspect", out)
    assert shown.exit_code == 0, shown.output
    assert "quarantined records (1 of 1)" in shown.stdout
    assert "line 4" in shown.stdout and "Unterminated string starting at column 26" in shown.stdout
    assert str(tmp_path / "in" / "part-0.jsonl") in shown.stdout
    as_json = json.loads(invoke("inspect", out, "--json").stdout)
    assert [r["error"] for r in as_json["reject_examples"]] == [rejects[0]["error"]]


def test_a_clean_run_says_nothing_about_rejects(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", config_file(tmp_path, corpus(tmp_path / "in", bad_line=False), out))
    assert result.exit_code == 0, result.output
    assert "rejects/" not in result.output
    assert "quarantined records (" not in invoke("inspect", out).stdout


# -- 7 and 8: select's timings beside the run's; phases in execution order ---------------------
RUN_PHASES = ["prepare near_dedupe", "read+score", "exact_dedupe", "near_dedupe",
              "select+write", "weights"]


def _rows(output: str, title: str) -> list[str]:
    """The first column of the rich table titled `title` in `output`."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows = []
    for line in lines[start + 4:]:
        if not line.startswith("│"):
            break
        rows.append(line.split("│")[1].strip())
    return rows


def test_phases_in_execution_order_and_select_keeps_the_runs_timings(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cfg = config_file(tmp_path, corpus(tmp_path / "in", bad_line=False), out,
                      stages={"exact_dedupe": {"enabled": True}, "near_dedupe": {"enabled": True}})
    result = invoke("run", cfg)
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["phase_order"] == RUN_PHASES
    assert sorted(stats["wall_time_s"]) == sorted(RUN_PHASES)
    assert _rows(result.output, "wall time per phase") == RUN_PHASES

    selected = invoke("select", out, "--stages", "exact_dedupe")
    assert selected.exit_code == 0, selected.output
    after = json.loads((out / "stats.json").read_text())
    assert after["wall_time_s"] == stats["wall_time_s"]  # the run's, kept
    assert after["phase_order"] == RUN_PHASES
    assert after["select_phase_order"] == ["select+write", "weights"]
    assert sorted(after["select_wall_time_s"]) == ["select+write", "weights"]
    assert _rows(selected.output, "wall time per phase (last select)") == ["select+write",
                                                                         "weights"]
    shown = invoke("inspect", out)
    assert _rows(shown.stdout, "wall time per phase") == RUN_PHASES
    assert _rows(shown.stdout, "wall time per phase (last select)") == ["select+write",
                                                                      "weights"]


def test_older_stats_without_phase_order_are_shown_in_run_order() -> None:
    timings = {name: 1.0 for name in ("cut color_filter", "exact_dedupe", "near_dedupe",
                                      "prepare color_filter", "read+score", "select+write",
                                      "warm_up", "weights")}
    table = timings_table({"wall_time_s": timings})
    assert list(table.columns[0].cells) == [
        "warm_up", "prepare color_filter", "read+score", "exact_dedupe", "near_dedupe",
        "cut color_filter", "select+write", "weights"]


# -- 6: Ctrl-C and SIGTERM mid-run -------------------------------------------------------------
def _many_splits(folder: Path) -> Path:
    """~100 small splits, so every phase runs for a while: a signal lands mid-phase."""
    rng = random.Random(11)
    for f in range(6):
        docs = [{"id": f"s{f}-{i:03d}", "domain": ("web", "code", "books")[f % 3],
                 "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))}
                for i in range(120)]
        docs[5]["text"] = docs[9]["text"]  # an exact duplicate
        write_jsonl(folder / f"shard-{f}.jsonl", [*docs[:40], b"[1, 2]", *docs[40:]])
    return folder


def _interrupt(cwd: Path, args: list[str], marker: str, sig: int, group: bool
               ) -> tuple[int, str]:
    """Start `siftline run ARGS` in its own session, send `sig` once `marker` exists (to the
    whole process group, as a terminal's Ctrl-C and `timeout` do, or to the process alone, as
    Kubernetes does); returns the exit status and stderr."""
    child = subprocess.Popen([str(SCRIPT), "run", *args], cwd=cwd, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while not list(cwd.glob(marker)):
            assert child.poll() is None, f"finished before {marker}: {child.stderr.read()}"
            assert time.monotonic() < deadline, f"{marker} never appeared"
            time.sleep(0.002)
        (os.killpg if group else os.kill)(child.pid, sig)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    return child.returncode, stderr


def test_ctrl_c_and_sigterm_stop_cleanly_and_the_same_command_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted by Ctrl-C while scoring (the local executor: Ctrl-C's silence is not
    Ray's), then by SIGTERM while writing (Ray's executor, where it printed Ray's C++ stack
    dump), then finished by running the job again; the output is the bytes of an
    uninterrupted run. The executor is not part of the job: any of them resumes it."""
    inputs = _many_splits(tmp_path / "in")
    data = {"input": {"paths": [str(inputs)], "split_bytes": 4000}, "output": {"path": "out"}}
    ref = tmp_path / "ref"
    ref.mkdir()
    monkeypatch.chdir(ref)
    run(load_config({**data, "executor": {"kind": "local"}}))
    case = tmp_path / "case"
    case.mkdir()
    cfg = case / "job.yaml"
    cfg.write_text(yaml.safe_dump({**data, "executor": {"kind": "ray", "num_workers": 2}}))

    for sig, group, executor, marker in (
            (signal.SIGINT, True, "local", "out/_work/done/map-00005.json"),
            (signal.SIGTERM, False, "ray", "out/_work/done/final-00005.json")):
        code, stderr = _interrupt(case, [cfg.name, "--executor", executor], marker, sig, group)
        name = signal.Signals(sig).name
        assert code == 128 + sig, stderr
        assert f"interrupted ({name}): out keeps the work done so far; run the same command " \
               "again to resume" in stderr
        assert "Traceback" not in stderr and "Stack trace" not in stderr, stderr
        assert "*** SIG" not in stderr and "logging.cc" not in stderr, stderr
        assert not (case / "out" / "manifest.json").exists() or \
            json.loads((case / "out" / "manifest.json").read_text())["status"] != "complete"

    done = subprocess.run([str(SCRIPT), "run", cfg.name, "--quiet", "--executor", "local"],
                          cwd=case, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert tree_bytes(case / "out") == tree_bytes(ref / "out")
    manifests = [json.loads((root / "out" / "manifest.json").read_text()) for root in (case, ref)]
    for manifest in manifests:
        manifest.pop("executor")  # which executor ran: the one difference
    assert manifests[0] == manifests[1]
