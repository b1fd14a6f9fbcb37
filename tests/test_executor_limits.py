"""Executors' limits: peak worker memory per phase in stats.json, the embedded Ray's bounded
object store, pools the cluster cannot host failing at once, and `--json` keeping stdout for
the JSON while Ray workers print."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from helpers import local_config, write_jsonl

from siftline.executors.memory import lifetime_peak_rss_mb, peak_rss_mb, reset_peak
from siftline.job.runner import run

SKIP_RAY = pytest.mark.skipif(os.environ.get("SIFTLINE_SKIP_RAY_TESTS") == "1",
                              reason="SIFTLINE_SKIP_RAY_TESTS=1: no Ray cluster start")
# Imported into every Ray worker process (not the driver): prints to the worker's stdout while
# the job runs, which Ray forwards to the driver's stdout as "(_Worker pid=…) …".
NOISY_SITECUSTOMIZE = '''
import os
import sys

if "RAY_RAYLET_PID" in os.environ:
    def _noise(event, args):
        if event == "import" and args[0] == "siftline.job.score":
            print("noise on a Ray worker's stdout", flush=True)

    sys.addaudithook(_noise)
'''


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    records = [{"id": f"d{i}", "text": f"document {i % 40} says a few words", "domain": "web"}
               for i in range(120)]
    write_jsonl(tmp_path / "in" / "part.jsonl", records)
    return tmp_path / "in"


def plausible(peaks: dict[str, float], phases: set[str]) -> None:
    assert set(peaks) == phases
    for phase, mb in peaks.items():
        assert 30 < mb < 8000, (phase, mb)  # an interpreter with pyarrow, not bytes or GB


def test_peak_mark_resets_per_phase_and_keeps_the_lifetime_peak() -> None:
    block = bytearray(64 * 2**20)
    block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page: 64 MiB resident
    del block
    before = lifetime_peak_rss_mb()
    reset_peak()
    after = peak_rss_mb()
    if Path("/proc/self/clear_refs").exists():
        assert after < before - 30, (before, after)
    assert lifetime_peak_rss_mb() >= before


def test_local_executor_reports_peak_rss_per_phase(tmp_path: Path, corpus: Path) -> None:
    result = run(local_config(corpus, tmp_path / "out", **{"stages.near_dedupe.enabled": True}))
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats == result.stats
    plausible(stats["peak_worker_rss_mb"],
              {"read+score", "exact_dedupe", "near_dedupe", "select+write"})
    assert "warm_up" not in stats["wall_time_s"]  # in-process: nothing to warm apart
    assert max(stats["peak_worker_rss_mb"].values()) <= lifetime_peak_rss_mb() + 1


@pytest.mark.slow
@SKIP_RAY
def test_pools_the_cluster_cannot_host_fail_at_once() -> None:
    import ray

    from siftline.errors import ConfigError
    from siftline.executors.ray_executor import RayExecutor, _quiet_local_env

    _quiet_local_env()
    ray.init(address="local", num_cpus=1, num_gpus=1, object_store_memory=80 * 10**6,
             include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        with pytest.raises(ConfigError, match="num_workers.* 2 worker.*hold 1"):
            RayExecutor(num_workers=2)
        with RayExecutor(num_workers=1) as executor:
            with pytest.raises(ConfigError, match="2 GPU per worker.*no node"):
                executor.map(abs, [1], gpus=2)
            assert executor.map(abs, [-1, -2], gpus=0.5) == [1, 2]  # two GPU actors, 1 CPU
            assert executor.map(abs, [-3]) == [3]
            assert executor.last_peak_rss_mb is not None and executor.last_peak_rss_mb > 30
        assert ray.is_initialized()  # joined, not owned: left running
    finally:
        ray.shutdown()


@pytest.mark.slow
@SKIP_RAY
def test_run_json_on_ray_prints_only_json_and_reports_worker_peaks(
    tmp_path: Path, corpus: Path, request: pytest.FixtureRequest
) -> None:
    noise = tmp_path / "noise"
    noise.mkdir()
    (noise / "sitecustomize.py").write_text(NOISY_SITECUSTOMIZE)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({
        "input": {"paths": [str(corpus)]}, "output": {"path": str(tmp_path / "out")},
        "executor": {"kind": "ray", "num_workers": 1, "object_store_mb": 100},
        "mixture": {"enabled": False}}))
    ray_tmp = tempfile.mkdtemp(prefix="siftline-ray-")  # short: Ray's socket paths
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    env = {**os.environ, "PYTHONPATH": str(noise),
           "RAY_TMPDIR": ray_tmp}
    done = subprocess.run(
        [sys.executable, "-c", "from siftline.cli.main import app; app()", "run", str(job),
         "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "noise on a Ray worker's stdout" in done.stderr  # printed, and kept off stdout
    payload = json.loads(done.stdout)
    stats = payload["stats"]
    assert payload["status"] == "complete" and stats["kept"] == 40
    plausible(stats["peak_worker_rss_mb"], {"read+score", "exact_dedupe", "select+write"})
    assert stats["wall_time_s"]["warm_up"] > 0


@SKIP_RAY
def test_a_cluster_joined_by_address_warns_and_waits_for_nodes() -> None:
    """A cluster joined by address may autoscale: a pool larger than its CPUs is created (the
    extra actor pending until a node joins) with a warning naming the shortfall."""
    import ray

    from siftline.executors.ray_executor import RayExecutor, _quiet_local_env

    _quiet_local_env()
    info = ray.init(address="local", num_cpus=1, object_store_memory=80 * 10**6,
                    include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        with pytest.warns(RuntimeWarning, match="2 worker.*hold 1.*waiting for the cluster"):
            executor = RayExecutor(address=info.address_info["address"], num_workers=2)
        with executor:
            assert len(executor._actors) == 2
    finally:
        ray.shutdown()
