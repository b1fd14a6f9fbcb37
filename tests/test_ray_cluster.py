"""A worker node dies in the middle of a job on a multi-node Ray cluster (three Ray nodes on
this machine, `ray.cluster_utils.Cluster`): the job still finishes, with output byte-identical
to an undisturbed run.

The head runs no tasks (like the KubeRay manifest's), two worker nodes hold one worker actor
each. Once the first split is done, one worker node is killed without warning and a fresh one
joins, as a cluster manager replaces a lost machine: Ray restarts the dead actor there and
retries the task it was running, and the exactly-once writer makes the retried task's files
the same bytes under the same names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from helpers import tree_bytes, without_measurements

from siftline import load_config
from siftline.demo.corpus import build_demo_corpus
from siftline.job.runner import run

LOOPBACK = "127.0.0.1"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SIFTLINE_SKIP_RAY_TESTS") == "1",
                       reason="SIFTLINE_SKIP_RAY_TESTS=1: no Ray cluster start"),
]


def config(inputs: Path, out: Path, executor: dict[str, object]) -> dict[str, object]:
    return {
        "input": {"paths": [str(inputs)]},
        "output": {"path": str(out)},
        "executor": executor,
        "stages": {"exact_dedupe": {"partitions": 2}, "near_dedupe": {"enabled": True}},
    }


def test_job_survives_a_killed_worker_node_with_identical_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from ray.cluster_utils import Cluster

    # A private Ray temp dir: the cluster's address file (ray_current_cluster) must not be found
    # by any other `ray.init()` on this machine. Short, for Ray's socket paths.
    ray_tmp = tempfile.mkdtemp(prefix="siftline-ray-")
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every node on 127.0.0.1
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    corpus = tmp_path / "demo"
    shards = build_demo_corpus(corpus, max_bytes=1_500_000, shard_bytes=120_000)
    assert len(shards) >= 8
    reference = run(load_config(config(corpus, tmp_path / "local", {"kind": "local"})))
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump(config(corpus, tmp_path / "ray", {"kind": "ray"})))
    done = tmp_path / "ray" / "_work" / "done"

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "node_ip_address": LOOPBACK})
    events: list[str] = []
    at_kill: list[str] = []
    try:
        workers = [cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK) for _ in range(2)]
        cluster.wait_for_nodes()
        # the driver is another process, as `siftline run --ray-address` is on a real cluster
        driver = subprocess.Popen(
            [sys.executable, "-c", "from siftline.cli.main import app; app()", "run",
             str(job_file), "--ray-address", cluster.address, "--quiet"],
            cwd=tmp_path, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while driver.poll() is None and time.monotonic() < deadline:
            if done.is_dir() and any(done.iterdir()):
                at_kill.extend(sorted(p.name for p in done.iterdir()))
                cluster.remove_node(workers[0], allow_graceful=False)
                events.append(f"killed a worker node after {at_kill}")
                cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
                events.append("replacement joined")
                break
            time.sleep(0.05)
        stdout, stderr = driver.communicate(timeout=max(1, deadline - time.monotonic()))
    finally:
        cluster.shutdown()

    assert driver.returncode == 0, stderr[-3000:]
    assert events and events[-1] == "replacement joined", events
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["status"] == "complete", stdout[-2000:]
    assert manifest["executor"]["kind"] == "ray"
    assert len([n for n in at_kill if n.startswith("final-")]) < len(manifest["splits"]), (
        "the node must die while the job still has work to do")
    stats = json.loads((tmp_path / "ray" / "stats.json").read_text())
    assert strip(stats) == strip(reference.stats)
    assert stats["dropped"].get("exact_duplicate", 0) > 0
    assert tree_bytes(tmp_path / "ray") == tree_bytes(tmp_path / "local")
    assert any(name.startswith("data/") for name in tree_bytes(tmp_path / "local"))


def strip(stats: dict[str, object]) -> dict[str, object]:
    return without_measurements(stats)
