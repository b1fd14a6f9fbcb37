"""siftline as a user installs it: a built wheel, not the checkout.

The wheel is built from a copy of the sources (as `pip install .` or the image would), installed
(not editable) into a new virtual environment, and used from a folder outside the checkout
through that environment's `siftline` console script. Beside it sits Hugging Face's `kernels`,
which `transformers` 5 requires: both must keep their own names. The new environment gets its
dependencies from this test environment (a `.pth` line to its site-packages, whose own `.pth`
files, the editable install's among them, Python does not follow), so only siftline's wheel is
installed there and the test needs no network.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

CHECKOUT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "pipeline", "kernels")
LID_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
WORDS_A = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
WORDS_B = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "grey", "brown"]

CHECK_NAMES = """
import importlib.metadata, json, kernels, siftline, siftline.kernels
import transformers.integrations.hub_kernels  # what failed when siftline's `kernels` won
from siftline.kernels import token_nll
print(json.dumps({
    "siftline": siftline.__file__,
    "kernels": kernels.__file__,
    "kernels_files": [str(f.locate()) for f in importlib.metadata.files("kernels")
                      if f.name == "__init__.py" and f.parent.name == "kernels"],
    "token_nll": f"{token_nll.__module__}.{token_nll.__qualname__}",
    "callable": callable(siftline.kernels.token_nll),
}))
"""


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    dest.mkdir(parents=True)
    for name in SOURCES:
        source = CHECKOUT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _corpus(path: Path, n: int = 240) -> None:
    """Two domains of disjoint vocabularies; `a`, a quarter of the corpus, is the target."""
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            words, domain = (WORDS_A, "a") if i % 4 == 0 else (WORDS_B, "b")
            text = " ".join(rng.choice(words) for _ in range(rng.randint(15, 50)))
            out.write(json.dumps({"id": f"d{i:04d}", "text": text, "domain": domain}) + "\n")


def _color_job(work: Path) -> Path:
    _corpus(work / "corpus.jsonl")
    tiny = {"vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 64}
    job = {
        "input": {"paths": [str(work / "corpus.jsonl")]},
        "output": {"path": str(work / "out")},
        "executor": {"kind": "local"},
        "mixture": {"enabled": False},
        "stages": {"exact_dedupe": {"enabled": False}, "color_filter": {
            "enabled": True, "tau": 4,
            "target": {"domain": "a", "holdout_fraction": 0.3},
            "train": {"model": tiny,
                      "prior": {"tokens": 40_000, "batch_size": 8, "threads": 1,
                                "eval_every": 1000},
                      "conditional": {"epochs": 2, "batch_size": 8, "threads": 1, "lr": 1e-3}},
            "score": {"device": "cpu", "threads": 1}}},
    }
    path = work / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(root / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
          str(src)], cwd=root)
    (built,) = (root / "dist").glob("siftline-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with siftline installed from its wheel; returns its bin/."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=venv).stdout.strip())
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "test_environment.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)], cwd=venv.parent)
    return venv / "bin"


def test_wheel_installs_one_import_package_named_siftline(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
        names = set(archive.namelist())
    assert {top for top in tops if not top.endswith(".dist-info")} == {"siftline"}
    assert {"siftline/__init__.py", "siftline/kernels/__init__.py",
            "siftline/kernels/token_nll.py", "siftline/stages/exact_dedupe.py",
            "siftline/langid/lid.176.ftz", "siftline/langid/NOTICE"} <= names
    with zipfile.ZipFile(wheel) as archive:  # the bundled language-ID model, byte for byte
        model = archive.read("siftline/langid/lid.176.ftz")
    assert hashlib.sha256(model).hexdigest() == LID_SHA256


def test_hugging_face_kernels_and_siftline_kernels_keep_their_names(
    fresh_env: Path, tmp_path: Path
) -> None:
    assert Version(metadata.version("transformers")).major >= 5, "the test extra asks for 5+"
    found = json.loads(_run([str(fresh_env / "python"), "-c", CHECK_NAMES],
                            cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert Path(found["siftline"]).is_relative_to(fresh_env.parent), found
    assert Path(found["kernels"]) in {Path(p) for p in found["kernels_files"]}, found
    assert Path(found["kernels"]).parent != CHECKOUT / "kernels", found
    assert found["token_nll"] == "siftline.kernels.token_nll.token_nll" and found["callable"]


def test_the_installed_package_loads_its_bundled_language_model(fresh_env: Path,
                                                                tmp_path: Path) -> None:
    check = ("import json; from siftline.langid import BUNDLED_MODEL, load_lid; "
             "print(json.dumps([str(BUNDLED_MODEL), len(load_lid().get_labels())]))")
    path, labels = json.loads(_run([str(fresh_env / "python"), "-c", check],
                                   cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert Path(path).is_relative_to(fresh_env.parent) and labels == 176


@pytest.mark.slow
def test_console_script_runs_color_filter_and_eval_lm_outside_the_checkout(
    fresh_env: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    siftline = str(fresh_env / "siftline")
    done = _run([siftline, "run", str(_color_job(work)), "--json"], cwd=work)
    stats = json.loads(done.stdout)["stats"]
    assert stats["kept"] == 240 // 4 and stats["dropped"] == {"color_filter": 240 - 60}
    assert stats["by_domain"]["a"]["kept"] / stats["kept"] >= 0.9  # random would give 0.25

    target = work / "target.txt"
    target.write_text(" ".join(WORDS_A * 3) + "\n\n" + " ".join(reversed(WORDS_A)) + "\n")
    done = _run([siftline, "eval-lm", str(work / "out" / "models" / "prior"), "--eval",
                 str(target), "--device", "cpu", "--json"], cwd=work)
    (result,) = json.loads(done.stdout)
    assert result["kind"] == "loss" and math.isfinite(result["bpc"]) and result["bpc"] > 0
