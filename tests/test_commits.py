"""Finalize's background commits: in order, off the main thread, and stopping at a failure."""

from __future__ import annotations

import threading

import pytest

from siftline.job.commits import BackgroundCommits


def test_commits_run_in_order_off_the_main_thread_and_drain_waits() -> None:
    commits, done, threads = BackgroundCommits(), [], set()
    release = threading.Event()

    def commit(k: int) -> None:
        release.wait(5)
        threads.add(threading.current_thread().name)
        done.append(k)

    for k in range(5):
        commits.submit(lambda k=k: commit(k))
    assert done == []  # submit does not wait
    release.set()
    commits.drain()
    assert done == [0, 1, 2, 3, 4]
    assert len(threads) == 1 and threading.current_thread().name not in threads


def test_after_a_failed_commit_none_runs_and_the_error_is_raised() -> None:
    commits, done = BackgroundCommits(), []
    release = threading.Event()

    def fail() -> None:
        release.wait(5)
        raise OSError("disk full")

    commits.submit(lambda: done.append(1))
    commits.submit(fail)
    commits.submit(lambda: done.append(3))  # queued behind the failure: must not run
    release.set()
    with pytest.raises(OSError, match="disk full"):
        commits.drain()
    assert done == [1]
    commits.submit(lambda: done.append(4))  # usable again once drained
    commits.drain()
    assert done == [1, 4]


def test_submit_raises_a_failure_that_already_happened() -> None:
    commits = BackgroundCommits()
    commits.submit(lambda: (_ for _ in ()).throw(KeyError("lost")))
    assert commits._futures[0].exception(timeout=5) is not None  # it has failed by now
    with pytest.raises(KeyError):
        commits.submit(lambda: None)
    commits.drain(raise_errors=False)
    commits.drain()
