"""CoLoR-Filter's preparation before scoring: both auxiliary models exist.

The given folders, or the prior trained on a seeded corpus sample and the conditional model
fine-tuned from it on the target text (a fresh optimizer, about one epoch: the paper's recipe),
saved under OUT/models and reused while their config is unchanged.
"""

from __future__ import annotations

from typing import Any

from siftline.color.target import load_target_texts, target_fingerprint
from siftline.config import PipelineConfig, TrainJobConfig
from siftline.errors import ConfigError
from siftline.io.storage import Storage, is_remote, join
from siftline.layout import Layout
from siftline.progress import JobTrainProgress, Reporter


def model_dirs(config: PipelineConfig) -> tuple[str, str]:
    """(prior, conditional) folders: the configured ones, or where the job trains them."""
    cfg = config.stages.color_filter
    if cfg.prior is not None and cfg.conditional is not None:
        return cfg.prior, cfg.conditional
    root = cfg.models_dir or Layout.for_output(config.output.path).models
    return join(root, "prior"), join(root, "conditional")


def check_models_config(config: PipelineConfig) -> None:
    """Preflight: given folders exist; trained ones go to a local folder."""
    from siftline.lm.checkpoint import is_model_folder

    cfg = config.stages.color_filter
    if cfg.prior is not None and cfg.conditional is not None:
        for key in ("prior", "conditional"):
            if not is_model_folder(getattr(cfg, key)):
                raise ConfigError(f"stages.color_filter.{key}: {getattr(cfg, key)} is not a "
                                  "model folder (no siftline_lm.json or config.json)")
        return
    prior, _ = model_dirs(config)
    if is_remote(prior):
        raise ConfigError("stages.color_filter.models_dir: models are trained into a local "
                          "folder; set models_dir (or give prior and conditional folders)")


def prepare_models(config: PipelineConfig, storage: Storage, reporter: Reporter,
                   overwrite: bool) -> dict[str, Any]:
    """Both model folders, trained here when not given; returns what stats.json records."""
    cfg = config.stages.color_filter
    prior_dir, cond_dir = model_dirs(config)
    if cfg.prior is not None:
        return {"models": {"prior": prior_dir, "conditional": cond_dir, "trained": False}}
    from siftline.lm.train import train_lm, train_lm_on_texts
    from siftline.lm.train_state import train_or_reuse

    prior_job = TrainJobConfig(input=config.input, storage=config.storage,
                               sample=cfg.train.sample, model=cfg.train.model,
                               train=cfg.train.prior, output={"path": prior_dir})
    prior = train_or_reuse(lambda ow: train_lm(
        prior_job, overwrite=ow, progress=JobTrainProgress("train prior", reporter)), overwrite)
    texts = load_target_texts(cfg.target, config.input, storage)
    cond = train_or_reuse(lambda ow: train_lm_on_texts(
        texts, None, cfg.train.conditional, cond_dir, init=prior_dir, overwrite=ow,
        progress=JobTrainProgress("train conditional", reporter)), overwrite)
    return {"models": {
        "prior": prior_dir, "conditional": cond_dir, "trained": True,
        "target_texts": len(texts), "target_sha256": target_fingerprint(texts),
        "prior_val_loss": prior.val_loss_after, "conditional_val_loss": cond.val_loss_after,
    }}
