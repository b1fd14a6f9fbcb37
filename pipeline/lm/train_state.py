"""A training run's folder: what it holds, resumable checkpoints, prepared data, the log.

```
OUT/  model.safetensors siftline_lm.json tokenizer.json   the final model (`load_lm` reads it)
      train_result.json   written last: the run is finished; holds the config sha256
      train_log.jsonl     step, loss, val_loss, lr, tokens_per_s
      _work/job.json      the config sha256 of the unfinished run
      _work/data/         the sampled, tokenized data (tokenizer.json, train.npy, val.npy)
      _work/ckpt-SSSSSSSS/  weights (save_model) + state.pt (optimizer, step, RNG, position)
```

Checkpoints and the prepared data are written into a `.tmp` folder that is renamed into place
when complete, so a kill during a write leaves the previous one usable; `_work` goes when the
run finishes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from siftline.errors import ConfigError, ConfigMismatch
from siftline.lm.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_causal_lm, save_model
from siftline.lm.model import CausalLM
from siftline.lm.tokenizer import TOKENIZER_FILE, Tokenizer

T = TypeVar("T")

RESULT_FILE = "train_result.json"
LOG_FILE = "train_log.jsonl"
WORK_DIR = "_work"
STATE_FILE = "state.pt"
OUTPUT_ENTRIES = (WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_FILE, RESULT_FILE, LOG_FILE, WORK_DIR)
_CKPT = re.compile(r"ckpt-(\d{8})$")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """All-or-nothing: a temporary file renamed into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _publish(tmp: Path, final: Path) -> None:
    """Rename a completed folder into place (replacing an older one of the same name)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def check_separate(output: str, others: list[str], key: str) -> None:
    """The model folder may not overlap an input (its .json/.jsonl files would be read as
    documents on the next run) or the init folder (it would overwrite it)."""
    out = os.path.abspath(output)
    for other in others:
        if "://" in other:
            continue
        base = os.path.abspath(re.split(r"[*?\[]", other, maxsplit=1)[0].rstrip("/") or ".")
        if out == base or out.startswith(base + os.sep) or base.startswith(out + os.sep):
            raise ConfigError(f"output.path {output} overlaps {key} {other}: they must be "
                              "separate")


class RunFolder:
    """The output folder of one training run, for one config (its sha256)."""

    def __init__(self, path: str | Path, config_sha256: str) -> None:
        self.root = Path(path)
        self.sha = config_sha256
        self.work = self.root / WORK_DIR

    @property
    def result_path(self) -> Path:
        return self.root / RESULT_FILE

    @property
    def log_path(self) -> Path:
        return self.root / LOG_FILE

    # -- claiming the folder -------------------------------------------------------------------
    def claim(self, overwrite: bool) -> dict[str, Any] | None:
        """The finished result of this same config (re-running is then a no-op), else None
        once the folder is ready to (re)start or resume; a folder that holds another config's
        run, or files siftline did not write, is refused unless `overwrite`."""
        if self.root.is_file():
            raise ConfigError(f"output.path {self.root} is a file, expected a folder")
        if self.root.is_dir():
            foreign = sorted(name for name in os.listdir(self.root)
                             if name not in OUTPUT_ENTRIES and not name.endswith(".tmp"))
            if foreign:
                raise ConfigError(f"output.path {self.root} holds files siftline did not write "
                                  f"({', '.join(foreign[:5])}); choose an empty or new folder")
        if overwrite:
            self.clear()
        elif self.result_path.is_file():
            result = json.loads(self.result_path.read_text(encoding="utf-8"))
            if result.get("config_sha256") == self.sha:
                shutil.rmtree(self.work, ignore_errors=True)  # killed after the result landed
                return result
            raise ConfigMismatch(f"{self.root} holds a model trained with a different config;"
                              " rerun with --overwrite to replace it")
        elif (self.work / "job.json").is_file():
            job = json.loads((self.work / "job.json").read_text(encoding="utf-8"))
            if job.get("config_sha256") != self.sha:
                raise ConfigMismatch(f"{self.root} holds an unfinished training of a different "
                                  "config; rerun with --overwrite to start over")
        elif any((self.root / n).exists() for n in OUTPUT_ENTRIES if n != WORK_DIR):
            raise ConfigMismatch(f"{self.root} holds an unfinished model of unknown config;"
                              " rerun with --overwrite to replace it")
        self.work.mkdir(parents=True, exist_ok=True)
        self._remove_temporaries()
        write_json(self.work / "job.json", {"config_sha256": self.sha})
        return None

    def _remove_temporaries(self) -> None:
        """What a kill during a write left behind (files and folders named *.tmp)."""
        for folder in (self.root, self.work):
            for stale in folder.glob("*.tmp") if folder.is_dir() else ():  # dotfiles too
                _remove(stale)

    def clear(self) -> None:
        """--overwrite: remove what training wrote, and only that."""
        for name in OUTPUT_ENTRIES:
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        if self.root.is_dir():
            self._remove_temporaries()

    def finish(self, result: dict[str, Any]) -> None:
        write_json(self.result_path, result)
        shutil.rmtree(self.work, ignore_errors=True)

    # -- prepared data ---------------------------------------------------------------------------
    def load_data(self) -> tuple[Tokenizer, np.ndarray, np.ndarray, dict[str, Any]] | None:
        folder = self.work / "data"
        if not (folder / "data.json").is_file():
            return None
        info = json.loads((folder / "data.json").read_text(encoding="utf-8"))
        return (Tokenizer.load(folder), np.load(folder / "train.npy"),
                np.load(folder / "val.npy"), info)

    def save_data(self, tokenizer: Tokenizer, train: np.ndarray, val: np.ndarray,
                  info: dict[str, Any]) -> None:
        tmp = self.work / f"data.{uuid.uuid4().hex}.tmp"
        tmp.mkdir(parents=True)
        tokenizer.save(tmp)
        np.save(tmp / "train.npy", train)
        np.save(tmp / "val.npy", val)
        (tmp / "data.json").write_text(json.dumps(info, indent=2, sort_keys=True),
                                       encoding="utf-8")
        _publish(tmp, self.work / "data")

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, step: int, model: CausalLM, tokenizer: Tokenizer,
                        state: dict[str, Any]) -> Path:
        """Weights plus everything else a resumed run needs; older checkpoints are then removed."""
        final = self.work / f"ckpt-{step:08d}"
        tmp = self.work / f"ckpt-{step:08d}.{uuid.uuid4().hex}.tmp"
        save_model(tmp, model, tokenizer)
        torch.save({**state, "step": step}, tmp / STATE_FILE)
        _publish(tmp, final)
        for older, _ in self.checkpoints()[:-1]:
            shutil.rmtree(older, ignore_errors=True)
        return final

    def checkpoints(self) -> list[tuple[Path, int]]:
        """Complete checkpoints, oldest first."""
        found = []
        if self.work.is_dir():
            for path in self.work.iterdir():
                match = _CKPT.match(path.name)
                if match and (path / STATE_FILE).is_file():
                    found.append((path, int(match.group(1))))
        return sorted(found, key=lambda item: item[1])

    def load_checkpoint(self, device: torch.device) -> tuple[CausalLM, dict[str, Any]] | None:
        """The latest checkpoint's model (on `device`) and state, or None."""
        found = self.checkpoints()
        if not found:
            return None
        path, _ = found[-1]
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
        return load_causal_lm(path, device), state

    # -- the log -------------------------------------------------------------------------------
    def open_log(self, resume_step: int) -> Any:
        """The log, cut back to the lines of steps up to the checkpoint a run resumes from."""
        kept: list[str] = []
        if resume_step > 0 and self.log_path.is_file():
            for line in self.log_path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] <= resume_step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill
        tmp = self.log_path.with_name(f".{LOG_FILE}.{uuid.uuid4().hex}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.log_path)
        return self.log_path.open("a", encoding="utf-8")


def train_or_reuse(train: Callable[[bool], T], overwrite: bool) -> T:
    """`train(overwrite=False)`, which reuses a model trained with the same config; when the
    folder holds another config's model and `overwrite` is set, `train(True)` replaces it."""
    try:
        return train(False)
    except ConfigMismatch:
        if overwrite:
            return train(True)
        raise
