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

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from siftline.config import TrainJobConfig
from siftline.errors import ConfigError
from siftline.lm.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    read_model_config,
)
from siftline.lm.config import ModelConfig, TrainConfig
from siftline.lm.data import (
    BottomSample,
    Document,
    documents_from_texts,
    encode_stream,
    sample_corpus,
    split_holdout,
)
from siftline.lm.loop import Prepared, TrainProgress, TrainResult, run_training
from siftline.lm.tokenizer import Tokenizer, train_tokenizer
from siftline.lm.train_state import RunFolder, check_separate

# Keys that never change the trained weights or the log: not part of the config's identity.
_RUN_ONLY_TRAIN_KEYS = ("threads", "checkpoint_every")


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

    return run_training(RunFolder(job.output.path, _sha256(record)), model_cfg, job.train,
                        job.init, prepare, record, overwrite, progress)


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

    return run_training(RunFolder(out_dir, _sha256(record)), model_cfg, train_cfg, init,
                        prepare, record, overwrite, progress)


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
