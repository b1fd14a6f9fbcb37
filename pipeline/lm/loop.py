"""The training loop: warmup + cosine learning rate, AdamW, gradient clipping, evaluation,
checkpoints that hold everything a resume needs (weights, AdamW moments, RNG states, the data
position), and the result. Deterministic: the data order is a function of the step and the
seed, so a killed run resumed from its last checkpoint ends with the same weights as one that
never stopped (bit for bit on CPU)."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from siftline.errors import ConfigError
from siftline.lm.checkpoint import load_causal_lm, resolve_device, save_model
from siftline.lm.config import ModelConfig, TrainConfig
from siftline.lm.data import BatchOrder, Windows
from siftline.lm.model import CausalLM
from siftline.lm.tokenizer import Tokenizer
from siftline.lm.train_state import RunFolder

LOSS_WINDOW = 20  # the reported train loss is the mean over this many last steps
_SUMMARY_KEYS = ("steps", "tokens", "train_loss", "val_loss_before", "val_loss_after")


class TrainProgress:
    """Progress hooks: the CLI draws a bar, the library stays silent. A hook may raise to stop
    the run; the last checkpoint stays and the next call resumes from it."""

    def phase(self, name: str, detail: str) -> None: ...

    def start(self, total_steps: int, first_step: int, info: dict[str, Any]) -> None: ...

    def step(self, info: StepInfo) -> None: ...

    def message(self, text: str) -> None: ...


@dataclass(frozen=True)
class StepInfo:
    step: int  # steps done
    total_steps: int
    loss: float
    lr: float
    tokens_per_s: float
    tokens: int  # training tokens seen so far
    val_loss: float | None = None  # set on the steps that evaluated


@dataclass
class TrainResult:
    output: str
    status: str  # "complete" | "already_complete"
    steps: int
    tokens: int
    epochs: float
    train_loss: float
    val_loss_before: float
    val_loss_after: float
    time_s: float
    tokens_per_s: float  # training throughput, evaluations excluded
    params: int
    device: str
    config_sha256: str
    init: str | None
    resumed_from: int | None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], status: str) -> TrainResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "status": status})


@dataclass
class Prepared:
    """Tokenized training and validation streams plus what the sample held."""

    tokenizer: Tokenizer
    train: np.ndarray
    val: np.ndarray
    info: dict[str, Any]


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warmup over the first `warmup_fraction` of steps, then cosine to min_lr_ratio·lr."""
    warmup = round(cfg.warmup_fraction * total)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    done = (step - warmup) / max(1, total - warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi
                                                                                     * done)))


def total_steps(cfg: TrainConfig, num_windows: int, context_length: int) -> int:
    if cfg.epochs is not None:
        return max(1, math.ceil(cfg.epochs * num_windows / cfg.batch_size))
    return max(1, math.ceil(cfg.tokens / (cfg.batch_size * context_length)))


def make_optimizer(model: CausalLM, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not norms' gains)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas),
                             fused=device.type == "cuda")


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _loss(model: CausalLM, batch: torch.Tensor, device: torch.device,
          reduction: str = "mean") -> torch.Tensor:
    inputs, targets = batch[:, :-1], batch[:, 1:]
    with _autocast(device):
        logits = model.logits(model(inputs))
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           reduction=reduction)


@torch.no_grad()
def evaluate(model: CausalLM, batches: list[torch.Tensor], device: torch.device) -> float:
    """Mean next-token loss over every target token of the validation batches."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        total += float(_loss(model, batch, device, reduction="sum"))
        count += batch[:, 1:].numel()
    model.train()
    return total / max(count, 1)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except RuntimeError as exc:
        raise ConfigError(f"train.device: {exc}") from None


def run_training(folder: RunFolder, model_cfg: ModelConfig, cfg: TrainConfig, init: str | None,
         prepare: Callable[[], Prepared], record: dict[str, Any], overwrite: bool,
         progress: TrainProgress) -> TrainResult:
    """Claim the folder (or return its finished result), prepare or reload the data, then train
    from the last checkpoint (or from step 0) to the end."""
    done = folder.claim(overwrite)
    if done is not None:
        return TrainResult.from_dict(done, "already_complete")
    started = time.perf_counter()
    device = _device(cfg.device)
    with _torch_threads(cfg.threads):
        loaded = folder.load_data()
        if loaded is None:
            data = prepare()
            folder.save_data(data.tokenizer, data.train, data.val, data.info)
        else:
            data = Prepared(*loaded)
        return _Loop(folder, model_cfg, cfg, init, data, device, record, progress,
                     started).run()


class _Loop:
    """One training run over prepared data; the state a checkpoint must hold lives here."""

    def __init__(self, folder: RunFolder, model_cfg: ModelConfig, cfg: TrainConfig,
                 init: str | None, data: Prepared, device: torch.device,
                 record: dict[str, Any], progress: TrainProgress, started: float) -> None:
        self.folder, self.cfg, self.init, self.data = folder, cfg, init, data
        self.device, self.record, self.progress, self.started = device, record, progress, started
        self.length = model_cfg.context_length
        self.windows = Windows(data.train, self.length)
        self.val_batches = Windows(data.val, self.length).eval_batches(cfg.batch_size,
                                                                       cfg.eval_tokens)
        self.order = BatchOrder(len(self.windows), cfg.batch_size, cfg.seed)
        self.total = total_steps(cfg, len(self.windows), self.length)
        self.tokens_per_step = cfg.batch_size * self.length
        torch.manual_seed(cfg.seed)
        self.model = (load_causal_lm(init, device) if init else CausalLM(model_cfg).to(device))
        self.optimizer = make_optimizer(self.model, cfg, device)
        self.step = 0
        self.recent: list[float] = []
        self.val_before = float("nan")
        self.val_last = float("nan")
        self.elapsed_before = 0.0  # wall time of earlier sessions, up to their last checkpoint
        self.train_time = 0.0  # seconds spent in training steps, all sessions
        self.resumed_from: int | None = None

    def _resume_or_start(self) -> None:
        saved = self.folder.load_checkpoint(self.device)
        if saved is None:
            self.progress.phase("evaluate", "validation loss before training")
            self.val_before = self.val_last = evaluate(self.model, self.val_batches, self.device)
            return
        model, state = saved
        self.model.load_state_dict(model.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], self.device)
        if state["sequences_seen"] != state["step"] * self.cfg.batch_size:
            raise RuntimeError(f"{self.folder.work}: checkpoint data position does not match")
        self.step = self.resumed_from = int(state["step"])
        self.recent = list(state["recent_losses"])
        self.val_before, self.val_last = state["val_loss_before"], state["val_loss_last"]
        self.elapsed_before, self.train_time = state["elapsed_s"], state["train_time_s"]
        self.progress.message(f"resuming from the checkpoint at step {self.step:,}")

    def _state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "rng": _rng_state(self.device),
                "sequences_seen": self.step * self.cfg.batch_size, "recent_losses": self.recent,
                "val_loss_before": self.val_before, "val_loss_last": self.val_last,
                "elapsed_s": self.elapsed(), "train_time_s": self.train_time}

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def _train_step(self, lr: float) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.windows.batch(self.order.indices(self.step)).to(self.device)
        loss = _loss(self.model, batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return loss.item()

    def run(self) -> TrainResult:
        self._resume_or_start()
        info = {"params": self.model.num_parameters(), "device": str(self.device),
                "tokens_per_step": self.tokens_per_step, "val_loss": self.val_last,
                **self.data.info}
        self.progress.start(self.total, self.step, info)
        with self.folder.open_log(self.step) as log:
            if self.step == 0:
                log.write(json.dumps({"step": 0, "val_loss": self.val_before}) + "\n")
            while self.step < self.total:
                self._one_step(log)
        return self._finish()

    def _one_step(self, log: Any) -> None:
        lr = lr_at(self.step, self.total, self.cfg)
        began = time.perf_counter()
        loss = self._train_step(lr)
        seconds = time.perf_counter() - began
        self.train_time += seconds
        self.step += 1
        self.recent = [*self.recent, loss][-LOSS_WINDOW:]
        val = None
        if self.step % self.cfg.eval_every == 0 or self.step == self.total:
            val = self.val_last = evaluate(self.model, self.val_batches, self.device)
        rate = self.tokens_per_step / max(seconds, 1e-9)
        log.write(json.dumps({"step": self.step, "loss": loss, "val_loss": val, "lr": lr,
                              "tokens_per_s": round(rate, 1)}) + "\n")
        log.flush()
        if self.step % self.cfg.checkpoint_every == 0 and self.step < self.total:
            self.folder.save_checkpoint(self.step, self.model, self.data.tokenizer, self._state())
        self.progress.step(StepInfo(self.step, self.total, loss, lr, rate,
                                    self.step * self.tokens_per_step, val))

    def _finish(self) -> TrainResult:
        result = TrainResult(
            output=str(self.folder.root), status="complete", steps=self.total,
            tokens=self.total * self.tokens_per_step,
            epochs=self.total * self.cfg.batch_size / max(len(self.windows), 1),
            train_loss=float(np.mean(self.recent)) if self.recent else float("nan"),
            val_loss_before=self.val_before, val_loss_after=self.val_last,
            time_s=round(self.elapsed(), 3),
            tokens_per_s=round(self.total * self.tokens_per_step / max(self.train_time, 1e-9), 1),
            params=self.model.num_parameters(), device=str(self.device),
            config_sha256=self.folder.sha, init=self.init, resumed_from=self.resumed_from,
            data=self.data.info)
        extra = {"train": {"config_sha256": self.folder.sha, "config": self.record,
                           "result": {k: getattr(result, k) for k in _SUMMARY_KEYS}}}
        save_model(self.folder.root, self.model, self.data.tokenizer, extra)
        self.folder.finish(result.to_dict())
        return result
