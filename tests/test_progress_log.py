"""Progress for batch jobs: where stderr is no terminal, `siftline run` logs timestamped lines
(phase start and end, a progress line every SIFTLINE_PROGRESS_INTERVAL seconds), and `--json`
keeps stdout for the JSON alone (cli/progress_log.py)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import write_jsonl

from siftline.cli.progress_log import INTERVAL_ENV, LogReporter, duration, eta, progress_interval
from siftline.errors import ConfigError

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
START = re.compile(rf"^{STAMP} (?P<phase>\S+) started: (?P<total>\d+) parts$")
END = re.compile(rf"^{STAMP} (?P<phase>\S+) done in (?P<secs>\d+s): (?P<done>\d+)/(?P<total>\d+)"
                 r" parts(?:, (?P<docs>[\d,]+) docs)?(?:, (?P<rate>[\d.,]+) MB/s)?$")
PROGRESS = re.compile(rf"^{STAMP} (?P<phase>\S+): (?P<done>\d+)/(?P<total>\d+) parts \(\d+%\)"
                      r"(?:, (?P<docs>[\d,]+) docs)?(?:, (?P<rate>[\d.,]+) MB/s)?"
                      r", elapsed \d+s, ETA (?P<eta>\d+s|unknown)$")
PARTS, DOCS_PER_PART = 12, 150

# A custom stage that takes 60 ms a batch: read+score lasts long enough (12 parts, ~0.7 s) for
# several progress lines at a 0.2 s interval, whatever the machine's speed.
SLOW_STAGE = '''
import time

import pyarrow as pa


def slow():
    def stage(table: pa.Table) -> pa.Table:
        time.sleep(0.06)
        return table.append_column("slow", pa.array([0.0] * table.num_rows, pa.float64()))

    return stage
'''


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the checkout: 12 one-part input files and a config for them."""
    root = tmp_path_factory.mktemp("batch")
    for part in range(PARTS):
        write_jsonl(root / "in" / f"{part:02d}.jsonl",
                    [{"id": f"{part}-{i}", "text": f"document {i} of part {part} " * 4,
                      "domain": "web"} for i in range(DOCS_PER_PART)])
    (root / "slow_stage.py").write_text(SLOW_STAGE, encoding="utf-8")
    config = {"input": {"paths": [str(root / "in")]}, "output": {"path": str(root / "out")},
              "executor": {"kind": "local"}, "mixture": {"enabled": False},
              "stages": {"custom": [{"name": "slow", "callable": "slow_stage:slow"}]}}
    (root / "job.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


def siftline(root: Path, *args: str, stdout: io.IOBase | int, stderr: io.IOBase | int
             ) -> subprocess.CompletedProcess[bytes]:
    """The installed console script, as a batch job runs it: no terminal anywhere."""
    script = Path(sys.executable).with_name("siftline")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "FORCE_COLOR", "TTY_", "SIFTLINE_"))}
    env.update({INTERVAL_ENV: "0.2", "PYTHONPATH": str(root), "NO_COLOR": "1"})
    return subprocess.run([str(script), "run", "job.yaml", "--overwrite", *args], cwd=root,
                          env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                          timeout=120, check=False)


def test_a_batch_run_logs_phases_and_progress_lines(job: Path) -> None:
    log = job / "run.log"
    with log.open("wb") as handle:  # stdout and stderr in one file, as Slurm writes them
        done = siftline(job, stdout=handle, stderr=subprocess.STDOUT)
    text = log.read_text(encoding="utf-8")
    assert done.returncode == 0, text
    assert "\x1b[" not in text  # no ANSI codes, no bars
    lines = text.splitlines()
    starts = [m.groupdict() for line in lines if (m := START.match(line))]
    ends = [m.groupdict() for line in lines if (m := END.match(line))]
    progress = [m.groupdict() for line in lines if (m := PROGRESS.match(line))]
    assert [s["phase"] for s in starts] == ["read+score", "exact_dedupe", "select+write"]
    assert [e["phase"] for e in ends] == [s["phase"] for s in starts]
    assert all(int(s["total"]) > 0 for s in starts)
    read = ends[0]
    assert (read["done"], read["total"]) == (str(PARTS), str(PARTS))
    assert read["docs"] == f"{PARTS * DOCS_PER_PART:,}" and float(read["rate"]) > 0
    assert ends[2]["docs"] == f"{PARTS * DOCS_PER_PART:,}"  # select+write counts rows too
    scoring = [p for p in progress if p["phase"] == "read+score"]
    assert len(scoring) >= 2, text
    # once a part has finished, a line knows documents, MB/s and the time left
    counted = [p for p in scoring if p["docs"] is not None]
    assert counted and all(p["rate"] and p["eta"] != "unknown" for p in counted), text
    assert all(0 < int(p["done"]) <= PARTS for p in counted)
    # every timestamped line is one of siftline's; the tables and the summary come after
    stamped = [line for line in lines if re.match(STAMP, line)]
    assert len(stamped) == len(starts) + len(ends) + len(progress) + sum(
        "working (" in line for line in stamped)
    assert "records by domain" in text and ": holds" in text


def test_json_keeps_stdout_for_the_result_alone(job: Path) -> None:
    out, err = job / "stdout.json", job / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        done = siftline(job, "--json", stdout=stdout, stderr=stderr)
    log = err.read_text(encoding="utf-8")
    assert done.returncode == 0, log
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["status"] == "complete" and payload["stats"]["kept"] == PARTS * DOCS_PER_PART
    assert any(START.match(line) for line in log.splitlines())  # the log lines: on stderr
    assert any(END.match(line) for line in log.splitlines())


class Clock:
    """Monotonic seconds a test sets by hand; the wall clock is 2024-01-01 00:00:00 UTC plus."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_704_067_200 + self.t


def test_reporter_lines_under_a_fake_clock() -> None:
    clock, stream = Clock(), io.StringIO()
    reporter = LogReporter(stream, interval=30, clock=clock, wall=clock.wall)
    reporter.tick()
    reporter.phase("read+score", 4)
    clock.t = 5
    reporter.tick()  # nothing finished yet: no documents, no rate, no ETA
    clock.t = 10
    reporter.count(1_000, 5_000_000)
    reporter.advance(1, 4)
    reporter.tick()
    clock.t = 40
    for _ in range(3):
        reporter.count(1_000, 5_000_000)
    reporter.advance(4, 4)
    reporter.end()
    clock.t = 45
    reporter.tick()
    reporter.phase("train prior", 100)  # a trainer's phase counts steps, and is never ended
    clock.t = 3_725
    reporter.advance(50, 100)
    reporter.tick()
    reporter.phase("exact_dedupe", 2)  # ... so the next phase ends it
    reporter.message("a message")
    assert stream.getvalue().splitlines() == [
        "2024-01-01T00:00:00Z working (before the first phase), elapsed 0s",
        "2024-01-01T00:00:00Z read+score started: 4 parts",
        "2024-01-01T00:00:05Z read+score: 0/4 parts (0%), elapsed 5s, ETA unknown",
        "2024-01-01T00:00:10Z read+score: 1/4 parts (25%), 1,000 docs, 0.5 MB/s, elapsed 10s,"
        " ETA 30s",
        "2024-01-01T00:00:40Z read+score done in 40s: 4/4 parts, 4,000 docs, 0.5 MB/s",
        "2024-01-01T00:00:45Z working (after read+score), elapsed 45s",
        "2024-01-01T00:00:45Z train prior started: 100 steps",
        "2024-01-01T01:02:05Z train prior: 50/100 steps (50%), elapsed 1h01m, ETA 1h01m",
        "2024-01-01T01:02:05Z train prior done in 1h01m: 50/100 steps",
        "2024-01-01T01:02:05Z exact_dedupe started: 2 parts",
        "2024-01-01T01:02:05Z a message",
    ]


def test_the_timer_writes_lines_and_a_failed_phase_says_where_it_stopped() -> None:
    stream = io.StringIO()
    with pytest.raises(RuntimeError), LogReporter(stream, interval=0.01) as reporter:
        reporter.phase("near_dedupe", 3)
        reporter.advance(1, 3)
        while stream.getvalue().count("\n") < 3:
            pass  # the timer thread writes the lines
        raise RuntimeError("boom")
    lines = stream.getvalue().splitlines()
    assert re.search(r"near_dedupe: 1/3 parts \(33%\), elapsed \d+s, ETA \d+s$", lines[1])
    assert re.search(r" near_dedupe stopped in \d+s: 1/3 parts$", lines[-1])


def test_durations_eta_and_the_interval_setting() -> None:
    assert [duration(s) for s in (0, 42.4, 185, 7_380)] == ["0s", "42s", "3m05s", "2h03m"]
    assert (eta(0, 10, 5), eta(5, 10, 5), eta(10, 10, 5)) == ("unknown", "5s", "0s")
    assert progress_interval({}) == 30
    assert progress_interval({INTERVAL_ENV: "2.5"}) == 2.5
    for bad in ("0", "-1", "soon", "nan", "inf"):
        with pytest.raises(ConfigError, match=INTERVAL_ENV):
            progress_interval({INTERVAL_ENV: bad})
