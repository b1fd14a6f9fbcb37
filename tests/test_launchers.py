"""Cluster launchers: the Slurm batch script (run against stand-ins for Slurm, Ray and siftline
that log what they are asked) and the KubeRay RayJob manifest (parsed and checked against the
image and the lock file)."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from siftline.config import builtin_stage_names

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "scripts" / "slurm" / "siftline.sbatch"
RAYJOB = ROOT / "scripts" / "k8s" / "rayjob.yaml"
HEAD_IP = "127.0.0.2"  # what the stand-in `hostname --ip-address` answers; nothing connects

STUBS = {
    "scontrol": 'echo node1; echo node2; echo node3',
    "srun": f'echo "srun $*" >> "$LOG"; case "$*" in *hostname*) echo {HEAD_IP};; esac',
    # "alive Ray nodes": those started so far, capped at ALIVE_NODES (nodes that never join)
    "python3": 'n=$(grep -c "ray start" "$LOG" || true); m=${ALIVE_NODES:-3}; '
               'echo $(( n < m ? n : m ))',
    "siftline": 'echo "siftline $*" >> "$LOG"',
}


def run_sbatch(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str],
                                                                  list[str]]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    environ = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               "LOG": str(log), "SLURM_JOB_NODELIST": "node[1-3]", "SLURM_CPUS_PER_TASK": "4",
               **env}
    result = subprocess.run(["bash", str(SBATCH), *args], env=environ, capture_output=True,
                            text=True, timeout=60)
    return result, (log.read_text().splitlines() if log.exists() else [])


def test_sbatch_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sbatch_starts_head_then_workers_then_the_job(tmp_path: Path) -> None:
    result, calls = run_sbatch(tmp_path, "configs/default.yaml", "--output", "s3://bkt/out")
    assert result.returncode == 0, result.stdout + result.stderr
    starts = [c for c in calls if "ray start" in c]
    assert len(starts) == 3
    head = [c for c in starts if "--head" in c]
    assert len(head) == 1 and "-w node1" in head[0] and f"--node-ip-address={HEAD_IP}" in head[0]
    assert "--num-cpus=4" in head[0]
    workers = sorted(c for c in starts if "--head" not in c)
    assert [re.search(r"-w (\S+)", c).group(1) for c in workers] == ["node2", "node3"]
    assert all(f"--address={HEAD_IP}:6379" in c for c in workers)
    job = [c for c in calls if c.startswith("siftline ")]
    assert job == ["siftline run configs/default.yaml --ray-address auto --output s3://bkt/out"]
    assert calls.index(job[0]) > max(calls.index(c) for c in starts)
    assert "ray stop" in calls[-1], "Ray is stopped on every node at the end"


def test_sbatch_gives_up_when_nodes_do_not_join(tmp_path: Path) -> None:
    result, calls = run_sbatch(tmp_path, "configs/default.yaml", ALIVE_NODES="1",
                               SIFTLINE_NODE_WAIT_S="0")
    assert result.returncode == 1
    assert "only 1 of 3 Ray nodes joined" in result.stderr
    assert not any(c.startswith("siftline ") for c in calls)


def test_sbatch_without_config_prints_usage(tmp_path: Path) -> None:
    result, calls = run_sbatch(tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr and not calls


@pytest.fixture(scope="module")
def rayjob() -> dict[str, Any]:
    return yaml.safe_load(RAYJOB.read_text())


def pod_specs(rayjob: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cluster = rayjob["spec"]["rayClusterSpec"]
    specs = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    for group in cluster["workerGroupSpecs"]:
        specs[group["groupName"]] = group["template"]["spec"]
    return specs


def test_rayjob_runs_siftline_on_the_cluster(rayjob: dict[str, Any]) -> None:
    assert (rayjob["apiVersion"], rayjob["kind"]) == ("ray.io/v1", "RayJob")
    args = shlex.split(rayjob["spec"]["entrypoint"])
    assert args[:2] == ["siftline", "run"]
    assert args[args.index("--ray-address") + 1] == "auto"
    config = Path(args[2])
    assert config.parts[:3] == ("/", "home", "siftline") and (ROOT / config.relative_to(
        "/home/siftline")).is_file(), "the config must be one the image ships"
    assert set(args[args.index("--stages") + 1].split(",")) <= set(builtin_stage_names())
    assert rayjob["spec"]["shutdownAfterJobFinishes"] is True


def test_rayjob_pods_use_the_image_as_its_non_root_user(rayjob: dict[str, Any]) -> None:
    uid = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    ray_pin = re.search(r"^ray==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert rayjob["spec"]["rayClusterSpec"]["rayVersion"] == ray_pin.group(1)
    specs = pod_specs(rayjob)
    assert set(specs) == {"head", "cpu", "gpu"}
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert str(spec["securityContext"]["runAsUser"]) == uid, name
        for container in spec["containers"]:
            assert container["image"].split(":")[0].endswith("/siftline"), name
            gpus = container["resources"]["limits"].get("nvidia.com/gpu")
            assert (gpus is not None) == (name == "gpu"), "GPUs only for the LM-scoring group"
    head_params = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]
    assert head_params["num-cpus"] == "0", "the driver's pod runs no tasks"
