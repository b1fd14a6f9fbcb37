"""Train a causal LM from scratch on a corpus sample, or fine-tune a model folder on texts.

Two entry points share one loop. `train_lm(job)` samples the configured corpus first (the CLI,
and CoLoR-Filter's prior model); `train_lm_on_texts(texts, ...)` trains on texts handed over
directly (CoLoR-Filter's conditional model: the prior fine-tuned on target text, optimizer
reset). The loop is deterministic: the data order is a function of the step and the seed, and a
checkpoint holds everything else (weights, AdamW moments, RNG states), so a killed run resumed
from its last checkpoint ends with the same weights as one that never stopped (bit for bit on
CPU). Re-running a finished training of the same config returns its result without work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from siftline.config import TrainJobConfig
from siftline.errors import ConfigError
from siftline.lm.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_causal_lm,
    read_model_config,
    resolve_device,
    save_model,
)
from siftline.lm.config import ModelConfig, TrainConfig
from siftline.lm.data import (
    BatchOrder,
    BottomSample,
    Document,
    Windows,
    documents_from_texts,
    encode_stream,
    sample_corpus,
    split_holdout,
)
from siftline.lm.model import CausalLM
from siftline.lm.tokenizer import Tokenizer, train_tokenizer
from siftline.lm.train_state import RunFolder, check_separate

LOSS_WINDOW = 20  # the reported train loss is the mean over this many last steps
# Keys that never change the trained weights or the log: not part of the config's identity.
_RUN_ONLY_TRAIN_KEYS = ("threads", "checkpoint_every")
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


# -- entry points ------------------------------------------------------------------------------
def train_lm(job: TrainJobConfig, *, overwrite: bool = False,
             progress: TrainProgress | None = None) -> TrainResult:
    """Sample `job.input`, then train (or fine-tune `job.init`) into `job.output.path`."""
    progress = progress or TrainProgress()
    check_separate(job.output.path, job.input.paths, "input")
    check_separate(job.output.path, [job.init] if job.init else [], "init")
    model_cfg, init_sha = resolve_model(job)
    record = _job_record(job, model_cfg, init_sha)

    def prepare() -> Prepared:
        progress.phase("sample", f"sampling {', '.join(job.input.paths)}")
        docs, stats = sample_corpus(job.input, job.storage, job.sample)
        if not docs:
            raise ConfigError(f"input.paths: no usable document in {job.input.paths}")
        return prepare_documents(docs, model_cfg, job.train, _init_tokenizer(job.init),
                                 progress, stats.to_dict())

    return _run(RunFolder(job.output.path, _sha256(record)), model_cfg, job.train, job.init,
                prepare, record, overwrite, progress)


def train_lm_on_texts(texts: Iterable[str], model_cfg: ModelConfig | None,
                      train_cfg: TrainConfig, out_dir: str | Path, init: str | Path | None = None,
                      *, max_bytes: int | None = None, overwrite: bool = False,
                      progress: TrainProgress | None = None) -> TrainResult:
    """Train on texts given directly (CoLoR-Filter's target text). With `init`, fine-tune that
    model folder: its tokenizer and config (`model_cfg` must be None or equal), a new optimizer.
    `max_bytes` keeps a seeded sample of the texts; the hold-out uses `train_cfg.seed`."""
    progress = progress or TrainProgress()
    init = None if init is None else str(init)
    if init is not None:
        check_separate(str(out_dir), [init], "init")
        init_cfg, init_sha = _read_init(init)
        if model_cfg is not None and (diff := _differences(model_cfg, init_cfg)):
            raise ConfigError(f"model: {', '.join(diff)} differ from the config of init {init};"
                              " pass model_cfg=None to fine-tune it")
        model_cfg = init_cfg
    elif model_cfg is None:
        raise ConfigError("model: a model config is needed to train from scratch (no init)")
    else:
        init_sha = None
    sampler = BottomSample(max_bytes, train_cfg.seed)
    for doc in documents_from_texts(texts):
        sampler.add(doc.id, doc.text)
    docs = sampler.documents()
    if not docs:
        raise ConfigError("texts: no non-empty text to train on")
    ids = hashlib.sha256("\n".join(sorted(doc.id for doc in docs)).encode()).hexdigest()
    record = {"model": model_cfg.model_dump(mode="json"), "train": _train_record(train_cfg),
              "init": _init_record(init, init_sha), "texts_sha256": ids, "max_bytes": max_bytes}

    def prepare() -> Prepared:
        return prepare_documents(docs, model_cfg, train_cfg, _init_tokenizer(init), progress,
                                 sampler.stats.to_dict())

    return _run(RunFolder(out_dir, _sha256(record)), model_cfg, train_cfg, init, prepare, record,
                overwrite, progress)


# -- config identity and init -----------------------------------------------------------------
def resolve_model(job: TrainJobConfig) -> tuple[ModelConfig, str | None]:
    """The model config to train and the init weights' sha256: the job's own config, or the
    init folder's, which explicit `model.*` keys of the job must agree with."""
    if job.init is None:
        return job.model, None
    init_cfg, init_sha = _read_init(job.init)
    if "model" in job.model_fields_set:
        given = job.model.model_fields_set - {"preset"}
        for key in sorted(given):
            if getattr(job.model, key) != getattr(init_cfg, key):
                raise ConfigError(f"model.{key}: {getattr(job.model, key)!r} conflicts with "
                                  f"{getattr(init_cfg, key)!r} of init {job.init} (the model "
                                  "comes from init; drop the model keys)")
    return init_cfg, init_sha


def _read_init(init: str) -> tuple[ModelConfig, str]:
    folder = Path(init)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ConfigError(f"init: {init} is not a siftline model folder "
                          f"({CONFIG_FILE} and {WEIGHTS_FILE} expected)")
    digest = hashlib.sha256()
    with open(folder / WEIGHTS_FILE, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return read_model_config(folder), digest.hexdigest()


def _init_tokenizer(init: str | None) -> Tokenizer | None:
    return None if init is None else Tokenizer.load(init)


def _differences(a: ModelConfig, b: ModelConfig) -> list[str]:
    left, right = a.model_dump(exclude={"preset"}), b.model_dump(exclude={"preset"})
    return [key for key in left if left[key] != right[key]]


def _train_record(train: TrainConfig) -> dict[str, Any]:
    data = train.model_dump(mode="json")
    for key in _RUN_ONLY_TRAIN_KEYS:
        data.pop(key)
    return data


def _init_record(init: str | None, sha: str | None) -> dict[str, str] | None:
    return None if init is None else {"path": init, "weights_sha256": sha or ""}


def _job_record(job: TrainJobConfig, model_cfg: ModelConfig,
                init_sha: str | None) -> dict[str, Any]:
    """What determines the trained model (not where it is written or how many threads ran)."""
    data = json.loads(job.model_dump_json())
    for key in ("storage", "output"):
        data.pop(key)
    data["model"] = model_cfg.model_dump(mode="json")
    data["train"] = _train_record(job.train)
    data["init"] = _init_record(job.init, init_sha)
    return data


def _sha256(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


# -- data --------------------------------------------------------------------------------------
def prepare_documents(docs: list[Document], model_cfg: ModelConfig, train_cfg: TrainConfig,
                      tokenizer: Tokenizer | None, progress: TrainProgress,
                      info: dict[str, Any]) -> Prepared:
    """Hold out validation documents, train the tokenizer on the rest when there is none yet,
    and tokenize both into streams."""
    train_docs, val_docs = split_holdout(docs, train_cfg.val_fraction, train_cfg.seed)
    if tokenizer is None:
        progress.phase("tokenizer", f"training a {model_cfg.vocab_size:,}-entry BPE vocabulary"
                       f" on {len(train_docs):,} documents")
        tokenizer = train_tokenizer((doc.text for doc in train_docs), model_cfg.vocab_size)
    if tokenizer.vocab_size > model_cfg.vocab_size:
        raise ConfigError(f"model.vocab_size: {model_cfg.vocab_size} is smaller than the "
                          f"tokenizer's {tokenizer.vocab_size} entries")
    progress.phase("tokenize", f"tokenizing {len(docs):,} documents")
    train = encode_stream([doc.text for doc in train_docs], tokenizer)
    val = encode_stream([doc.text for doc in val_docs], tokenizer)
    span = model_cfg.context_length + 1
    if len(train) < span:
        raise ConfigError(f"the training text holds {len(train)} tokens, fewer than one sequence "
                          f"of model.context_length + 1 = {span}; raise sample.max_bytes (or "
                          "give more text) or lower model.context_length")
    info = {**info, "documents_train": len(train_docs), "documents_val": len(val_docs),
            "train_tokens": int(len(train)), "val_tokens": int(len(val)),
            "vocab_size": tokenizer.vocab_size}
    return Prepared(tokenizer, train, val, info)


# -- the loop ----------------------------------------------------------------------------------
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


def _run(folder: RunFolder, model_cfg: ModelConfig, cfg: TrainConfig, init: str | None,
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
