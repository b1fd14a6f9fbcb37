"""Document scoring: per-document NLL, token count and bits per character from a causal LM.

Built once per worker (it holds the model). Documents are tokenized, cut into context-sized
windows, sorted by length and packed into batches by padded token count; only scored positions
reach the fused loss kernel. Each document's per-token losses are written into its own array
and summed in token order, so its result never depends on which documents share its batch.

A document is preceded by the tokenizer's `bos_id` (siftline's `<|endoftext|>`), so its first
token is scored too; a model without one scores tokens 2..n. Longer documents are scored in
windows of the model's context that advance by `stride`: each token is scored exactly once, in
the first window that contains it, with at least `context - stride` tokens of context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from siftline.kernels import token_nll
from siftline.lm.checkpoint import LanguageModel, load_lm
from siftline.lm.config import ScoreConfig

IGNORE = -100
SCORE_FIELDS = (("nll_sum", pa.float64()), ("n_tokens", pa.int64()), ("n_chars", pa.int64()),
                ("bpc", pa.float64()))


@dataclass(frozen=True)
class Window:
    """Input `seq[begin:end]` predicts `seq[begin+1:end+1]`; targets before `first` are skipped."""

    doc: int
    begin: int
    end: int
    first: int  # first target index (into seq) this window scores


def plan_windows(n_seq: int, context: int, stride: int, doc: int = 0) -> list[Window]:
    """Windows covering targets 1..n_seq-1 of a sequence of `n_seq` ids, each scored once."""
    last = n_seq - 1  # index of the last target
    if last < 1:
        return []
    windows, begin, scored = [], 0, 0
    while True:
        end = min(begin + context, last)
        windows.append(Window(doc, begin, end, scored + 1))
        scored = end
        if end == last:
            return windows
        begin += stride


@dataclass
class DocScores:
    nll_sum: np.ndarray  # float64 nats
    n_tokens: np.ndarray  # int64, tokens scored
    n_chars: np.ndarray  # int64, Unicode code points

    @property
    def bpc(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n_chars > 0, self.nll_sum / (self.n_chars * math.log(2)), np.nan)

    def to_table(self, prefix: str = "") -> pa.Table:
        bpc = self.bpc
        columns = [pa.array(self.nll_sum, pa.float64()), pa.array(self.n_tokens, pa.int64()),
                   pa.array(self.n_chars, pa.int64()),
                   pa.array(bpc, pa.float64(), mask=np.isnan(bpc))]
        return pa.table(columns, names=[prefix + name for name, _ in SCORE_FIELDS])


class DocumentScorer:
    """Holds one language model; `score(texts)` returns per-document NLL sums and counts."""

    def __init__(self, model: LanguageModel, config: ScoreConfig | None = None) -> None:
        self.model = model
        self.config = config or ScoreConfig()
        self.context = model.context_length
        self.stride = self.config.stride or max(1, self.context // 2)
        if self.stride > self.context:
            raise ValueError(f"stride {self.stride} exceeds the model's context {self.context}")
        if self.config.threads and model.device.type == "cpu":
            torch.set_num_threads(self.config.threads)

    @classmethod
    def from_folder(cls, folder: str, config: ScoreConfig | None = None) -> DocumentScorer:
        config = config or ScoreConfig()
        if config.threads:
            torch.set_num_threads(config.threads)
        return cls(load_lm(folder, config.device, config.dtype), config)

    def sequences(self, texts: list[str]) -> list[list[int]]:
        """Token ids as scored: the context token (if any) then the document's tokens."""
        ids = self.model.tokenizer.encode_batch(texts)
        bos = self.model.tokenizer.bos_id
        return [([bos] if bos is not None else []) + seq for seq in ids]

    def _batches(self, windows: list[Window]) -> list[list[Window]]:
        """Longest first, each batch at most `batch_tokens` padded tokens (or one window)."""
        ordered = sorted(windows, key=lambda w: (-(w.end - w.begin), w.doc, w.begin))
        batches: list[list[Window]] = []
        current: list[Window] = []
        for window in ordered:
            width = current[0].end - current[0].begin if current else window.end - window.begin
            if current and (len(current) + 1) * width > self.config.batch_tokens:
                batches.append(current)
                current = []
            current.append(window)
        if current:
            batches.append(current)
        return batches

    @torch.inference_mode()
    def _run_batch(self, batch: list[Window], seqs: list[list[int]],
                   losses: list[np.ndarray]) -> None:
        width = max(w.end - w.begin for w in batch)
        inputs = np.zeros((len(batch), width), dtype=np.int64)
        targets = np.full((len(batch), width), IGNORE, dtype=np.int64)
        attention = np.zeros((len(batch), width), dtype=np.int64)
        for row, w in enumerate(batch):
            seq = seqs[w.doc]
            inputs[row, : w.end - w.begin] = seq[w.begin:w.end]
            attention[row, : w.end - w.begin] = 1
            skip = w.first - (w.begin + 1)
            targets[row, skip: w.end - w.begin] = seq[w.first:w.end + 1]
        device = self.model.device
        hidden = self.model.hidden_states(torch.from_numpy(inputs).to(device),
                                          torch.from_numpy(attention).to(device))
        target_t = torch.from_numpy(targets).to(device)
        scored = target_t != IGNORE
        head = self.model.head()
        nll = token_nll(hidden[scored], head.weight, target_t[scored], bias=head.bias,
                        softcap=head.softcap, ignore_index=IGNORE, backend=self.config.backend)
        nll = nll.cpu().numpy()
        offset = 0
        for w in batch:
            count = w.end - w.first + 1
            losses[w.doc][w.first - 1: w.end] = nll[offset: offset + count]
            offset += count

    def score(self, texts: list[str], seqs: list[list[int]] | None = None) -> DocScores:
        """Scores of `texts`; `seqs` (from `sequences`) skips tokenizing again."""
        seqs = self.sequences(texts) if seqs is None else seqs
        losses = [np.zeros(max(len(s) - 1, 0), dtype=np.float32) for s in seqs]
        windows = [w for doc, seq in enumerate(seqs)
                   for w in plan_windows(len(seq), self.context, self.stride, doc)]
        for batch in self._batches(windows):
            self._run_batch(batch, seqs, losses)
        return DocScores(
            nll_sum=np.array([float(np.sum(x, dtype=np.float64)) for x in losses]),
            n_tokens=np.array([len(x) for x in losses], dtype=np.int64),
            n_chars=np.array([len(t) for t in texts], dtype=np.int64),
        )

    def score_table(self, table: pa.Table, prefix: str = "") -> pa.Table:
        """`table` plus `nll_sum`, `n_tokens`, `n_chars`, `bpc` (each name after `prefix`)."""
        scores = self.score(table.column("text").to_pylist()).to_table(prefix)
        for name in scores.column_names:
            if name in table.column_names:
                raise ValueError(f"column {name!r} already exists; score with another prefix")
            table = table.append_column(name, scores.column(name))
        return table
