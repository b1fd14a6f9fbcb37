"""The document scorer: per-document NLL against a plain torch computation, windows, batching."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siftline.documents import make_table
from siftline.errors import ConfigError
from siftline.executors import LocalExecutor
from siftline.lm.checkpoint import SiftlineLM, save_model
from siftline.lm.config import ModelConfig, ScoreConfig
from siftline.lm.model import CausalLM
from siftline.lm.scorer import DocumentScorer, plan_windows
from siftline.lm.tokenizer import train_tokenizer

WORDS = [
    "data", "model", "token", "window", "batch", "score", "loss", "corpus", "shard", "kernel",
    "vocabulary", "stride", "context", "document", "python", "arrow", "parquet", "ray", "actor",
]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 120, size=n)
    return [" ".join(rng.choice(WORDS, size=k)) + "." for k in lengths]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(_texts(200, seed=1) + ["é ü 中文 🙂"], vocab_size=300)


def _lm(tokenizer, context: int = 64, seed: int = 0) -> SiftlineLM:
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_layers=2, n_heads=4,
                         context_length=context)
    return SiftlineLM(CausalLM(config).eval(), tokenizer, torch.device("cpu"))


def _reference_nll(lm: SiftlineLM, text: str) -> float:
    """Straightforward: the whole document in one row, materialised logits, F.cross_entropy."""
    seq = [lm.tokenizer.bos_id, *lm.tokenizer.encode_batch([text])[0]]
    with torch.no_grad():
        hidden = lm.model(torch.tensor([seq[:-1]]))
        logits = lm.model.logits(hidden)[0]
        return F.cross_entropy(logits, torch.tensor(seq[1:]), reduction="none").double().sum()


def test_matches_materialised_logits(tokenizer) -> None:
    lm = _lm(tokenizer, context=1024)
    texts = _texts(12, seed=2)
    scores = DocumentScorer(lm, ScoreConfig(batch_tokens=512)).score(texts)
    for text, nll in zip(texts, scores.nll_sum, strict=True):
        ref = float(_reference_nll(lm, text))
        assert nll == pytest.approx(ref, rel=1e-4)
    counts = [len(ids) for ids in tokenizer.encode_batch(texts)]
    assert scores.n_tokens.tolist() == counts
    assert scores.n_chars.tolist() == [len(t) for t in texts]
    np.testing.assert_allclose(scores.bpc, scores.nll_sum / (scores.n_chars * math.log(2)))


def test_result_does_not_depend_on_batch_composition(tokenizer) -> None:
    lm = _lm(tokenizer, context=64)
    texts = _texts(16, seed=3)
    big = DocumentScorer(lm, ScoreConfig(batch_tokens=4096)).score(texts)
    small = DocumentScorer(lm, ScoreConfig(batch_tokens=128)).score(texts)
    alone = [DocumentScorer(lm).score([t]).nll_sum[0] for t in texts[:8]]
    shuffled = DocumentScorer(lm).score(texts[::-1]).nll_sum[::-1]
    np.testing.assert_allclose(big.nll_sum, small.nll_sum, rtol=1e-6)
    np.testing.assert_allclose(big.nll_sum[:8], alone, rtol=1e-6)
    np.testing.assert_allclose(big.nll_sum, shuffled, rtol=1e-6)
    assert big.n_tokens.tolist() == small.n_tokens.tolist()


def test_windowed_equals_whole_context_when_the_document_fits(tokenizer) -> None:
    short = _lm(tokenizer, context=64)
    long = CausalLM(short.model.config.model_copy(update={"context_length": 512})).eval()
    long.load_state_dict(short.model.state_dict())
    long_lm = SiftlineLM(long, tokenizer, torch.device("cpu"))
    texts = [t for t in _texts(40, seed=4) if len(tokenizer.encode_batch([t])[0]) < 64][:10]
    assert texts
    windowed = DocumentScorer(short, ScoreConfig(stride=8)).score(texts)
    whole = DocumentScorer(long_lm).score(texts)
    np.testing.assert_allclose(windowed.nll_sum, whole.nll_sum, rtol=1e-6)


def test_long_documents_are_scored_once_per_token_with_context(tokenizer) -> None:
    lm = _lm(tokenizer, context=16)
    text = " ".join(_texts(5, seed=5))
    n = len(tokenizer.encode_batch([text])[0])
    assert n > 64
    scores = DocumentScorer(lm, ScoreConfig(stride=6)).score([text])
    assert scores.n_tokens[0] == n
    seq = [tokenizer.bos_id, *tokenizer.encode_batch([text])[0]]
    total = 0.0
    for w in plan_windows(len(seq), 16, 6):  # a plain loop over the same windows
        with torch.no_grad():
            logits = lm.model.logits(lm.model(torch.tensor([seq[w.begin:w.end]])))[0]
        nll = F.cross_entropy(logits, torch.tensor(seq[w.begin + 1:w.end + 1]), reduction="none")
        total += float(nll[w.first - w.begin - 1:].double().sum())
    assert scores.nll_sum[0] == pytest.approx(total, rel=1e-5)


@pytest.mark.parametrize("n_seq,context,stride", [(2, 4, 2), (10, 4, 2), (100, 16, 16),
                                                  (100, 16, 1), (17, 16, 5), (1000, 64, 7)])
def test_window_plan_scores_each_target_once(n_seq: int, context: int, stride: int) -> None:
    windows = plan_windows(n_seq, context, stride)
    scored = [t for w in windows for t in range(w.first, w.end + 1)]
    assert scored == list(range(1, n_seq))
    for w in windows:
        assert w.end - w.begin <= context
        assert w.begin < w.first <= w.end
        for target in range(w.first, w.end + 1):
            assert target - w.begin >= min(target, context - stride)


def test_empty_and_one_token_documents(tokenizer) -> None:
    lm = _lm(tokenizer)
    scores = DocumentScorer(lm).score(["", "a"])
    assert scores.n_tokens.tolist() == [0, 1] and scores.nll_sum[0] == 0.0
    assert np.isnan(scores.bpc[0]) and scores.nll_sum[1] > 0
    bos = tokenizer.bos_id
    tokenizer.bos_id = None  # no context token: a one-token document has nothing to score
    try:
        scores = DocumentScorer(lm).score(["", "a", "data model"])
    finally:
        tokenizer.bos_id = bos
    assert scores.n_tokens.tolist()[:2] == [0, 0] and scores.nll_sum[1] == 0.0
    assert scores.n_tokens[2] == len(tokenizer.encode_batch(["data model"])[0]) - 1


def test_score_table_adds_columns_and_refuses_collisions(tokenizer) -> None:
    lm = _lm(tokenizer)
    texts = _texts(5, seed=6) + [""]
    table = make_table([str(i) for i in range(6)], texts, ["d"] * 6, ["s"] * 6)
    scored = DocumentScorer(lm).score_table(table, prefix="lm_")
    assert scored.column_names[-4:] == ["lm_nll_sum", "lm_n_tokens", "lm_n_chars", "lm_bpc"]
    assert scored.column("lm_bpc").null_count == 1
    with pytest.raises(ValueError, match="already exists"):
        DocumentScorer(lm).score_table(scored, prefix="lm_")


def test_scorer_from_folder_built_once_per_worker(tokenizer, tmp_path) -> None:
    lm = _lm(tokenizer)
    save_model(tmp_path / "m", lm.model, tokenizer)
    texts = _texts(9, seed=7)
    direct = DocumentScorer(lm).score(texts).nll_sum
    builds = []

    def setup() -> DocumentScorer:
        builds.append(1)
        return DocumentScorer.from_folder(str(tmp_path / "m"), ScoreConfig(device="cpu"))

    parts = LocalExecutor().map(lambda s, chunk: s.score(chunk).nll_sum,
                                [texts[:3], texts[3:6], texts[6:]], setup=setup)
    assert len(builds) == 1
    np.testing.assert_allclose(np.concatenate(parts), direct, rtol=1e-6)


def test_stride_larger_than_context_is_refused(tokenizer) -> None:
    with pytest.raises(ValueError, match="stride"):
        DocumentScorer(_lm(tokenizer, context=16), ScoreConfig(stride=32))


@pytest.mark.slow
def test_scorer_on_ray_workers_and_gpu_request_without_gpus(tokenizer, tmp_path) -> None:
    from siftline.executors.ray_executor import RayExecutor

    lm = _lm(tokenizer)
    save_model(tmp_path / "m", lm.model, tokenizer)
    texts = _texts(6, seed=8)
    setup = functools.partial(DocumentScorer.from_folder, str(tmp_path / "m"),
                              ScoreConfig(device="cpu", threads=1))
    with RayExecutor(num_workers=2) as executor:
        parts = executor.map(lambda s, chunk: s.score(chunk).nll_sum, [texts[:3], texts[3:]],
                             setup=setup)
        with pytest.raises(ConfigError, match="GPU"):
            executor.map(lambda s, chunk: 0, [texts], setup=setup, gpus=1)
    np.testing.assert_allclose(np.concatenate(parts), DocumentScorer(lm).score(texts).nll_sum,
                               rtol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype,rel", [("float32", 1e-4), ("bfloat16", 3e-2)])
def test_scorer_on_cuda_matches_the_cpu_scorer(tokenizer, tmp_path, dtype: str,
                                               rel: float) -> None:
    """The GPU scorer (Triton kernel under `auto`) scores as the CPU torch path does."""
    lm = _lm(tokenizer, context=64)
    save_model(tmp_path / "m", lm.model, tokenizer)
    texts = _texts(40, seed=9)
    on_cpu = DocumentScorer(lm, ScoreConfig(backend="torch")).score(texts)
    gpu = DocumentScorer.from_folder(str(tmp_path / "m"), ScoreConfig(device="cuda", dtype=dtype))
    assert gpu.model.device.type == "cuda"
    on_gpu = gpu.score(texts)
    assert on_gpu.n_tokens.tolist() == on_cpu.n_tokens.tolist()
    np.testing.assert_allclose(on_gpu.nll_sum, on_cpu.nll_sum, rtol=rel)
