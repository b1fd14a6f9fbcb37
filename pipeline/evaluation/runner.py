"""`evaluate_selection`: does the selected data teach a small LM the target better than random?

  pool of candidates -> one shared tokenizer and initial model -> per method: its documents
  -> per budget: train the same model for exactly that many tokens -> target loss
  -> efficiency factor against random -> OUT/eval/report.json + plot

Every model starts from the same weights with the same tokenizer and trains the same number of
tokens (steps x batch x context), so only the data differs. Each training is a siftline model
folder under OUT/eval/models/, resumable and a no-op when re-run with the same config.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siftline.color.target import load_target_texts
from siftline.config import PipelineConfig, TargetConfig
from siftline.errors import ConfigError
from siftline.evaluation.efficiency import efficiency_factor
from siftline.evaluation.methods import RANDOM, Method, choose, methods_for, random_sample
from siftline.evaluation.pool import load_pool
from siftline.io.corpus import corpus_tables
from siftline.io.storage import Storage
from siftline.lm.checkpoint import read_model_config, save_model
from siftline.lm.loop import TrainProgress
from siftline.lm.model import CausalLM
from siftline.lm.scorer import DocumentScorer
from siftline.lm.tokenizer import Tokenizer, train_tokenizer
from siftline.lm.train import train_lm_on_texts
from siftline.preselect.config import EvalSetConfig
from siftline.preselect.evaluate import EvalSet, evaluate_scorer, load_eval_set

REPORT_VERSION = 1


def eval_dir(output: str) -> Path:
    if "://" in output and not output.startswith("file://"):
        raise ConfigError(f"output.path {output}: eval-selection trains local models; copy the "
                          "run's output to a local folder first")
    return Path(output.removeprefix("file://")) / "eval"


def target_config(config: PipelineConfig) -> TargetConfig:
    target = config.evaluation.target or config.stages.color_filter.target
    if target is None:
        raise ConfigError("evaluation.target: no target text (and stages.color_filter.target is "
                          "not set either)")
    return target


def evaluate_selection(output: str, config: PipelineConfig,
                       progress: TrainProgress | None = None) -> dict[str, Any]:
    """Train and evaluate every (method, budget); returns (and writes) the report."""
    ev, progress = config.evaluation, progress or TrainProgress()
    folder, storage = eval_dir(output), Storage(config.storage.s3)
    target = target_config(config)
    if ev.selected:
        pool_texts, pool_info, selections = _from_datasets(config, storage)
    else:
        pool_texts, pool_info, selections = _from_run(output, config, storage, target)
    if not pool_texts:
        raise ConfigError(f"{output}: no candidate documents to select from")
    target_texts = _cap(load_target_texts(target, config.input, storage),
                        int(ev.target_max_bytes))
    questions = multiple_choice(target, config, storage)
    base = build_base(folder / "models" / "base", pool_texts, config)
    tokenizer = Tokenizer.load(base)
    tokens = np.array([len(ids) for ids in tokenizer.encode_batch(pool_texts)], dtype=np.int64)
    rows = random_sample(tokens, int(ev.budgets[-1] / (1 - ev.train.val_fraction)) + 1, ev.seed)
    selections.insert(0, (Method(RANDOM), [pool_texts[i] for i in rows.tolist()]))
    results = []
    for method, chosen in selections:
        n_tokens = sum(len(ids) for ids in tokenizer.encode_batch(chosen))
        progress.message(f"{method.name}: {len(chosen)} documents, {n_tokens} tokens")
        results.append(_evaluate_method(method, chosen, n_tokens, target_texts, questions, base,
                                        folder, config, progress))
    report = build_report(results, pool_info, target_texts, questions, config)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / "report.json")
    from siftline.evaluation.plot import render_curves

    render_curves(report, folder / "loss_curves.png")
    return report


Selections = list[tuple[Method, list[str]]]


def _from_run(output: str, config: PipelineConfig, storage: Storage,
              target: TargetConfig) -> tuple[list[str], dict[str, int], Selections]:
    """The run's candidate pool and the selections its scores allow."""
    pool = load_pool(output, config, storage, target)
    texts = pool.table.column("text").to_pylist()
    selections = [(m, [texts[i] for i in choose(pool, m).tolist()])
                  for m in methods_for(config.evaluation.color_taus,
                                       config.evaluation.preselect_keeps,
                                       config.evaluation.combined,
                                       config.evaluation.include_run, pool)]
    info = {"candidates": pool.candidates, "held_out_target": pool.held_out,
            "documents": pool.table.num_rows}
    return texts, info, selections


def _from_datasets(config: PipelineConfig,
                   storage: Storage) -> tuple[list[str], dict[str, int], Selections]:
    """`evaluation.selected` against random documents of `evaluation.baseline`."""
    ev = config.evaluation
    pool = _read_texts(ev.baseline, config, storage, "evaluation.baseline")
    selected = _read_texts(ev.selected, config, storage, "evaluation.selected")
    return pool, {"documents": len(pool)}, [(Method("selected"), selected)]


def _read_texts(paths: list[str], config: PipelineConfig, storage: Storage,
                key: str) -> list[str]:
    """Non-empty texts of any siftline input, read with the run's field mapping."""
    corpus = config.input.model_copy(update={"paths": paths})
    texts = [t for table in corpus_tables(corpus, storage)
             for t in table.column("text").to_pylist() if t and t.strip()]
    if not texts:
        raise ConfigError(f"{key}: no document with text in {paths}")
    return texts


def build_base(folder: Path, texts: list[str], config: PipelineConfig) -> Path:
    """The shared starting point: a BPE tokenizer trained on a seeded sample of the pool and a
    model initialised from the seed. Reused while its identity (config + sample) is unchanged."""
    ev = config.evaluation
    sample = _cap(random.Random(ev.seed).sample(texts, len(texts)), int(ev.tokenizer_bytes))
    identity = hashlib.sha256(json.dumps({
        "model": ev.model.model_dump(mode="json"), "seed": ev.seed,
        "sample": hashlib.sha256("\0".join(sample).encode("utf-8", "surrogatepass")).hexdigest(),
    }, sort_keys=True).encode()).hexdigest()
    stamp = folder / "base.json"
    if stamp.is_file() and json.loads(stamp.read_text())["identity"] == identity:
        read_model_config(folder)  # the folder must still be a model
        return folder
    tokenizer = train_tokenizer(sample, ev.model.vocab_size)
    torch.manual_seed(ev.seed)
    save_model(folder, CausalLM(ev.model), tokenizer)
    stamp.write_text(json.dumps({"identity": identity}) + "\n", encoding="utf-8")
    return folder


def _evaluate_method(method: Method, chosen: list[str], n_tokens: int,
                     target_texts: list[str], questions: EvalSet | None, base: Path,
                     folder: Path, config: PipelineConfig,
                     progress: TrainProgress) -> dict[str, Any]:
    ev = config.evaluation
    # The folder is named by what determines the model, so a changed selection (a re-selected
    # run, another seed) trains afresh and the stale models of this method are removed.
    key = hashlib.sha256(json.dumps({
        "docs": hashlib.sha256("\0".join(chosen).encode("utf-8", "surrogatepass")).hexdigest(),
        "base": json.loads((base / "base.json").read_text())["identity"],
        "train": ev.train.model_dump(mode="json"), "seed": ev.seed,
    }, sort_keys=True).encode()).hexdigest()[:12]
    method_dir = folder / "models" / method.slug
    for stale in (p for p in method_dir.glob("*") if p.name != key):
        shutil.rmtree(stale)
    runs = []
    for budget in ev.budgets:
        train = ev.train.model_copy(update={"tokens": budget, "epochs": None, "seed": ev.seed})
        out = method_dir / key / f"tokens-{budget}"
        result = train_lm_on_texts(chosen, None, train, out, init=base, progress=progress)
        measured = measure(out, target_texts, questions, config)
        runs.append({"budget": budget, "train_tokens": result.tokens, "epochs": result.epochs,
                     **measured, "train_loss": result.train_loss,
                     "model": str(out.relative_to(folder))})
        accuracy = (f", accuracy {measured['accuracy']:.3f}" if "accuracy" in measured else "")
        progress.message(f"{method.name} @ {budget} tokens: target loss "
                         f"{measured['target_loss']:.4f}{accuracy}")
    return {"method": method.name, "documents": len(chosen), "tokens": n_tokens, "runs": runs}


def measure(model: Path, texts: list[str], questions: EvalSet | None,
            config: PipelineConfig) -> dict[str, float]:
    """Mean NLL per target token (nats; one tokenizer for all, so comparable), bits per
    character, and for a multiple-choice target the accuracy (each choice's log-likelihood
    given the query, as `siftline eval-lm` scores it)."""
    scorer = DocumentScorer.from_folder(str(model), config.evaluation.score)
    scores = scorer.score(texts)
    nll = float(scores.nll_sum.sum())
    out = {"target_loss": nll / max(int(scores.n_tokens.sum()), 1),
           "target_bpc": nll / (max(int(scores.n_chars.sum()), 1) * float(np.log(2)))}
    if questions is not None:
        out["accuracy"] = float(evaluate_scorer(scorer, questions)["accuracy"])
    return out


def multiple_choice(target: TargetConfig, config: PipelineConfig,
                    storage: Storage) -> EvalSet | None:
    """The target's questions when it is `{query, choices, gold}` JSON Lines, else None."""
    if not target.paths or target.format not in ("auto", "eval"):
        return None
    data = load_eval_set(EvalSetConfig(paths=target.paths,
                                       max_examples=config.evaluation.max_questions),
                         config.input, storage)
    return data if data.kind == "choice" else None


def build_report(results: list[dict[str, Any]], pool: dict[str, int], target_texts: list[str],
                 questions: EvalSet | None, config: PipelineConfig) -> dict[str, Any]:
    """Deterministic for a seed (no timings or absolute paths): the same config, the same bytes."""
    ev = config.evaluation
    random_losses = next(r for r in results if r["method"] == RANDOM)
    base_curve = [run["target_loss"] for run in random_losses["runs"]]
    methods = {}
    for result in results:
        losses = [run["target_loss"] for run in result["runs"]]
        eff = efficiency_factor(ev.budgets, losses, base_curve)
        methods[result["method"]] = {
            "documents": result["documents"], "tokens": result["tokens"],
            "budgets": [run["budget"] for run in result["runs"]],
            "train_tokens": [run["train_tokens"] for run in result["runs"]],
            "epochs": [run["epochs"] for run in result["runs"]],
            "target_loss": losses,
            "target_bpc": [run["target_bpc"] for run in result["runs"]],
            "efficiency_factor": eff.factor, "efficiency": eff.to_dict(),
        }
        if all("accuracy" in run for run in result["runs"]):
            methods[result["method"]]["accuracy"] = [run["accuracy"] for run in result["runs"]]
    return {
        "version": REPORT_VERSION,
        "pool": pool,
        "target": {"documents": len(target_texts),
                   "chars": sum(len(t) for t in target_texts),
                   **({} if questions is None else {
                       "questions": len(questions.questions),
                       "chance": sum(1 / len(q.choices) for q in questions.questions)
                       / len(questions.questions)})},
        "methods": methods,
        "config": config.evaluation.model_dump(mode="json"),
    }


def _cap(texts: list[str], max_bytes: int) -> list[str]:
    """The first texts whose UTF-8 size fits in `max_bytes` (at least one)."""
    out, used = [], 0
    for text in texts:
        size = len(text.encode("utf-8", "surrogatepass"))
        if out and used + size > max_bytes:
            break
        out.append(text)
        used += size
    return out
