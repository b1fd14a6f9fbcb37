"""Build PreSelect's classifier at the start of a run (or from the CLI), step by step:

  reference models   given folders with their scores, or (offline) K small LMs trained on a
                     corpus sample and scored on a downstream eval set (`evaluate`)
  labels             their BPC on a labelling sample -> predictive strength -> labels file
  fastText           trained on the labels -> classifier.bin (+ held-out precision/recall)

Everything lands in `stages.preselect.models_dir` (default OUT/models/preselect, kept by
--overwrite). Each step records a key of what determines it and is redone only when the key
changes, so re-running a job reuses the classifier, as CoLoR-Filter reuses its models.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from siftline.config import PipelineConfig, TrainJobConfig
from siftline.errors import ConfigError
from siftline.io.storage import Storage, is_remote, join
from siftline.io.writers import write_json
from siftline.layout import Layout
from siftline.preselect.labels import Reference
from siftline.progress import JobTrainProgress, Reporter

LABELS_FILE = "labels.jsonl"
REFERENCES_FILE = "references.json"
CLASSIFIER_FILE = "classifier.bin"


def models_dir(config: PipelineConfig) -> str:
    """Where the job builds the classifier, its labels and reference LMs."""
    cfg = config.stages.preselect
    return cfg.models_dir or join(Layout.for_output(config.output.path).models, "preselect")


def classifier_path(config: PipelineConfig) -> str:
    """The configured fastText model, or the one the job builds."""
    cfg = config.stages.preselect
    return cfg.model if cfg.model is not None else join(models_dir(config), CLASSIFIER_FILE)


def check_preselect_config(config: PipelineConfig) -> None:
    """Preflight: a given classifier exists; a built one goes to a local folder."""
    cfg = config.stages.preselect
    if cfg.model is not None:
        if is_remote(cfg.model) or not Path(cfg.model).is_file():
            raise ConfigError(f"stages.preselect.model: {cfg.model} is not a local fastText "
                              "model file")
        return
    if is_remote(models_dir(config)):
        raise ConfigError("stages.preselect.models_dir: the classifier is built into a local "
                          "folder; set models_dir (or give model)")


def _key(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _weights_stamp(folder: str) -> list[Any]:
    """Size and mtime of a model's files: a given folder whose weights change is re-labelled."""
    files = sorted(p for p in Path(folder).glob("*") if p.is_file())
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def reference_models(config: PipelineConfig, reporter: Reporter, overwrite: bool = False
                     ) -> tuple[list[Reference], dict[str, Any]]:
    """The given references, or the offline family trained and evaluated here."""
    cfg = config.stages.preselect
    if cfg.references:
        refs = [Reference(r.label(), r.path, r.score) for r in cfg.references]
        return refs, {"given": True}
    offline = cfg.train_references
    if offline is None:
        raise ConfigError("stages.preselect: give references or train_references to build a "
                          "classifier (or give model)")
    from siftline.lm.train import train_lm
    from siftline.lm.train_state import train_or_reuse
    from siftline.preselect.evaluate import evaluate_lm, load_eval_set

    root = Path(models_dir(config))
    folders = []
    for spec in offline.models:
        job = TrainJobConfig(input=config.input, storage=config.storage,
                             sample=spec.sample or offline.sample,
                             model=spec.model, train=spec.train,
                             output={"path": str(root / "references" / spec.name)})
        result = train_or_reuse(lambda ow, job=job, name=spec.name: train_lm(
            job, overwrite=ow, progress=JobTrainProgress(f"train reference {name}", reporter)),
            overwrite)
        folders.append((spec.name, job.output.path, result.val_loss_after))
    record_path = root / REFERENCES_FILE
    key = _key({"eval": offline.eval.model_dump(mode="json"), "input": config.input.paths,
                "models": [[n, _weights_stamp(f)] for n, f, _ in folders]})
    record = _read_json(record_path)
    if record is None or record.get("key") != key:
        reporter.message(f"preselect: evaluating {len(folders)} reference models")
        data = load_eval_set(offline.eval, config.input, Storage(config.storage.s3))
        results = [{"name": name, "val_loss": val, **evaluate_lm(
            folder, data, offline.score, offline.eval.length_norm)}
                   for name, folder, val in folders]
        record = {"key": key, "references": results}
        write_json(Storage(), str(record_path), record)
    refs = [Reference(r["name"], r["model"], float(r["score"])) for r in record["references"]]
    if len({r.score for r in refs}) < 2:
        raise ConfigError("stages.preselect.train_references: every reference model scored "
                          f"{refs[0].score} on the eval set, so no pair ranks them; train "
                          "models further apart (sizes or tokens) or use a larger eval set")
    return refs, {"given": False, "evaluated": record["references"]}


def make_labels(config: PipelineConfig, refs: list[Reference], reporter: Reporter,
                out_path: str | None = None) -> dict[str, Any]:
    """The labels file for these references (reused while its key holds)."""
    from siftline.lm.data import sample_corpus
    from siftline.preselect.labels import label_documents

    cfg = config.stages.preselect
    path = Path(out_path or join(models_dir(config), LABELS_FILE))
    key = _key({"refs": [[r.name, r.path, r.score, _weights_stamp(r.path)] for r in refs],
                "label": cfg.label.model_dump(mode="json"), "input": config.input.paths,
                "fields": config.input.fields.model_dump(mode="json")})
    summary = _read_json(Path(str(path) + ".summary.json"))
    if summary is not None and summary.get("key") == key and path.is_file():
        return summary
    reporter.message("preselect: sampling the labelling documents")
    docs, _ = sample_corpus(config.input, config.storage, cfg.label.sample)
    if not docs:
        raise ConfigError(f"input.paths: no usable document to label in {config.input.paths}")
    summary = label_documents([d.id for d in docs], [d.text for d in docs], refs,
                              cfg.label.score, path, cfg.label.max_per_class,
                              lambda text: reporter.message(f"preselect: {text}"))
    summary["key"] = key
    write_json(Storage(), str(path) + ".summary.json", summary)
    return summary


def train_classifier(config: PipelineConfig, labels_path: str, out_path: str | None = None,
                     labels_key: str | None = None) -> dict[str, Any]:
    """fastText on the labels file (reused while labels and fastText settings are unchanged)."""
    from siftline.preselect.fasttext_train import train_from_labels

    cfg = config.stages.preselect
    path = Path(out_path or join(models_dir(config), CLASSIFIER_FILE))
    stamp = Path(labels_path).stat()
    key = _key({"labels": labels_key or [labels_path, stamp.st_size, stamp.st_mtime_ns],
                "fasttext": cfg.fasttext.model_dump()})
    report = _read_json(Path(str(path) + ".json"))
    if report is not None and report.get("key") == key and path.is_file():
        return report
    try:
        report = train_from_labels(labels_path, cfg.fasttext, path)
    except ValueError as exc:
        raise ConfigError(f"stages.preselect.fasttext: {exc}") from None
    report["key"] = key
    write_json(Storage(), str(path) + ".json", report)
    return report


def build_classifier(config: PipelineConfig, storage: Storage, reporter: Reporter,
                     overwrite: bool = False) -> dict[str, Any]:
    """References -> labels -> fastText, each reused when unchanged; what stats.json records."""
    refs, ref_info = reference_models(config, reporter, overwrite)
    labels = make_labels(config, refs, reporter)
    if not labels["positives"]:
        raise ConfigError(
            f"stages.preselect: the labelling sample ({labels['documents']} documents) gave no "
            "balanced labels: the reference models rank every document the same way "
            f"({labels['no_pairs']} without a pair); use more models, models further apart, or "
            "a larger label.sample")
    reporter.message("preselect: training the fastText classifier")
    report = train_classifier(config, labels["labels"], classifier_path(config), labels["key"])
    return {"model": classifier_path(config), "built": True, "references": ref_info,
            "labels": {k: v for k, v in labels.items() if k != "key"},
            "train": report.get("train"), "heldout": report.get("heldout")}


def prepare_classifier(config: PipelineConfig, storage: Storage, reporter: Reporter,
                       overwrite: bool) -> dict[str, Any]:
    """The classifier before scoring: the given one checked, or built here (`build_classifier`);
    returns what stats.json records."""
    check_preselect_config(config)
    cfg = config.stages.preselect
    if cfg.model is not None:
        from siftline.preselect.classifier import load_classifier

        try:
            load_classifier(cfg.model)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"stages.preselect.model: {exc}") from None
        return {"classifier": {"model": cfg.model, "built": False}}
    return {"classifier": build_classifier(config, storage, reporter, overwrite)}
