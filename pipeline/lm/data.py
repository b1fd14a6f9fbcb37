"""Training data: a seeded sample of documents, a stable validation hold-out, packed tokens.

Every choice is a pure function of document ids and a seed, never of the read order: the sample
keeps the documents with the smallest seeded hash of their id (up to a byte budget), and a
document is held out for validation when another seeded hash of its id falls under the
validation fraction. So re-reading a corpus split differently, or a resumed run, sees the same
sample and the same hold-out. Documents are packed into one token stream, each preceded by the
tokenizer's `<|endoftext|>`, and cut into windows of `context_length + 1` tokens.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import xxhash

from siftline.config import InputConfig, StorageConfig
from siftline.errors import ConfigError
from siftline.io.inputs import plan_input
from siftline.io.readers import read_split
from siftline.io.storage import Storage
from siftline.lm.config import SampleConfig
from siftline.lm.tokenizer import Tokenizer

ENCODE_BATCH = 256  # documents per `encode_batch` call


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass
class SampleStats:
    """What reading the corpus saw, for the training summary."""

    read: int = 0  # documents offered to the sampler
    read_bytes: int = 0
    empty: int = 0
    too_long: int = 0
    quarantined: int = 0
    sampled: int = 0
    sampled_bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def unit_hash(key: str, seed: int, purpose: str) -> float:
    """A seeded hash of `key` in [0, 1); `purpose` keeps the sample and the hold-out independent."""
    return xxhash.xxh3_64_intdigest(f"{purpose}\0{key}".encode(), seed=seed) / 2.0**64


def text_id(text: str) -> str:
    """An id for texts handed over without one: equal texts share it (and their hold-out side)."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


class BottomSample:
    """The documents with the smallest hashes whose bytes fit in `max_bytes`, kept while
    streaming: memory stays near the budget, and the result is the same in any read order."""

    def __init__(self, max_bytes: int | None, seed: int, stats: SampleStats | None = None) -> None:
        self.max_bytes = max_bytes
        self.seed = seed
        self.stats = stats or SampleStats()
        self._heap: list[tuple[float, str, str, int]] = []  # (-hash, id, text, bytes)
        self._bytes = 0
        self._cutoff = 1.0  # the smallest hash ever evicted: nothing at or above it may enter

    def add(self, doc_id: str, text: str, n_bytes: int | None = None) -> None:
        n_bytes = len(text.encode("utf-8", "surrogatepass")) if n_bytes is None else n_bytes
        self.stats.read += 1
        self.stats.read_bytes += n_bytes
        h = unit_hash(doc_id, self.seed, "sample")
        if h >= self._cutoff:
            return
        heapq.heappush(self._heap, (-h, doc_id, text, n_bytes))
        self._bytes += n_bytes
        while self.max_bytes is not None and self._bytes > self.max_bytes:
            neg, _, _, size = heapq.heappop(self._heap)
            self._cutoff = min(self._cutoff, -neg)
            self._bytes -= size
            # equal hashes (repeated ids) leave together, so ties never depend on arrival order
            while self._heap and -self._heap[0][0] >= self._cutoff:
                self._bytes -= heapq.heappop(self._heap)[3]

    def documents(self) -> list[Document]:
        """The sample in hash order (a seeded shuffle), ties by id then text."""
        kept = sorted((-neg, doc_id, text) for neg, doc_id, text, _ in self._heap)
        self.stats.sampled = len(kept)
        self.stats.sampled_bytes = self._bytes
        return [Document(doc_id, text) for _, doc_id, text in kept]


def sample_documents(docs: Iterable[Document], max_bytes: int | None, seed: int) -> list[Document]:
    """A seeded sample of any documents (CoLoR-Filter's target texts, a list of records)."""
    sampler = BottomSample(max_bytes, seed)
    for doc in docs:
        sampler.add(doc.id, doc.text)
    return sampler.documents()


def documents_from_texts(texts: Iterable[str]) -> Iterator[Document]:
    """Texts without ids get content ids; empty and whitespace-only texts are skipped."""
    for text in texts:
        if text.strip():
            yield Document(text_id(text), text)


def split_holdout(docs: Sequence[Document], fraction: float,
                  seed: int) -> tuple[list[Document], list[Document]]:
    """(train, validation) by a seeded hash of each id; both non-empty when there are 2+ ids."""
    keyed = [(unit_hash(doc.id, seed, "validation"), doc) for doc in docs]
    train = [doc for h, doc in keyed if h >= fraction]
    val = [doc for h, doc in keyed if h < fraction]
    if len({doc.id for doc in docs}) < 2:
        raise ConfigError(f"the sample holds {len(docs)} document(s) with fewer than 2 distinct "
                          "ids: too few to hold out validation text (raise sample.max_bytes)")
    if not val:  # a tiny sample: hold out the id that came closest
        first = min(keyed, key=lambda item: (item[0], item[1].id))[1].id
        val = [doc for doc in train if doc.id == first]
        train = [doc for doc in train if doc.id != first]
    elif not train:
        last = max(keyed, key=lambda item: (item[0], item[1].id))[1].id
        train = [doc for doc in val if doc.id == last]
        val = [doc for doc in val if doc.id != last]
    return train, val


# -- reading a corpus ----------------------------------------------------------------------------
def iter_corpus(input_cfg: InputConfig, storage_cfg: StorageConfig, sample_cfg: SampleConfig,
                stats: SampleStats) -> Iterator[tuple[str, str, int]]:
    """(id, text, bytes) of every usable document, as the pipeline reads them (same ids, same
    quarantine); empty and over-long documents are counted and skipped, as selection drops them.
    With `sample.scan_bytes`, splits are read in a seeded order until that much text was seen."""
    storage = Storage(storage_cfg.s3)
    splits = plan_input(input_cfg, storage)
    if sample_cfg.scan_bytes is not None:
        random.Random(sample_cfg.seed).shuffle(splits)
    limit = int(input_cfg.max_doc_bytes)
    scanned = 0
    for split in splits:
        for batch in read_split(split, input_cfg, storage):
            stats.quarantined += len(batch.rejects)
            ids = batch.table.column("id").to_pylist()
            texts = batch.table.column("text").to_pylist()
            for doc_id, text in zip(ids, texts, strict=True):
                n_bytes = len(text.encode("utf-8", "surrogatepass"))
                if not text.strip():
                    stats.empty += 1
                elif n_bytes > limit:
                    stats.too_long += 1
                else:
                    scanned += n_bytes
                    yield doc_id, text, n_bytes
            if sample_cfg.scan_bytes is not None and scanned >= sample_cfg.scan_bytes:
                return


def sample_corpus(input_cfg: InputConfig, storage_cfg: StorageConfig,
                  sample_cfg: SampleConfig) -> tuple[list[Document], SampleStats]:
    stats = SampleStats()
    sampler = BottomSample(None if sample_cfg.max_bytes is None else int(sample_cfg.max_bytes),
                           sample_cfg.seed, stats)
    for doc_id, text, n_bytes in iter_corpus(input_cfg, storage_cfg, sample_cfg, stats):
        sampler.add(doc_id, text, n_bytes)
    return sampler.documents(), stats


# -- tokens ------------------------------------------------------------------------------------
def encode_stream(texts: Sequence[str], tokenizer: Tokenizer) -> np.ndarray:
    """One int32 stream: `<|endoftext|>` then the document's tokens, for every document."""
    if tokenizer.bos_id is None:
        raise ValueError("the tokenizer has no <|endoftext|> token to separate documents")
    parts: list[np.ndarray] = []
    bos = np.array([tokenizer.bos_id], dtype=np.int32)
    for start in range(0, len(texts), ENCODE_BATCH):
        for ids in tokenizer.encode_batch(list(texts[start:start + ENCODE_BATCH])):
            parts += [bos, np.asarray(ids, dtype=np.int32)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


@dataclass
class Windows:
    """Windows of `length + 1` tokens over a stream, window i starting at token i * length, so
    every token but the first is a prediction target exactly once."""

    stream: np.ndarray
    length: int  # context length: inputs per window

    def __len__(self) -> int:
        return max(0, (len(self.stream) - 1) // self.length)

    def batch(self, indices: Sequence[int]) -> torch.Tensor:
        span = self.length + 1
        rows = [self.stream[i * self.length:i * self.length + span] for i in indices]
        return torch.from_numpy(np.stack(rows).astype(np.int64))

    def eval_batches(self, batch_size: int, max_tokens: int | None) -> list[torch.Tensor]:
        """Batches over the first `max_tokens` targets, the last window possibly shorter."""
        stream = self.stream if max_tokens is None else self.stream[:max_tokens + 1]
        span, batches, rows = self.length + 1, [], []
        for start in range(0, max(len(stream) - 1, 0), self.length):
            rows.append(stream[start:start + span])
            if len(rows) == batch_size or len(rows[-1]) < span:
                batches += _stack_by_length(rows)
                rows = []
        return batches + _stack_by_length(rows)


def _stack_by_length(rows: list[np.ndarray]) -> list[torch.Tensor]:
    lengths = sorted({len(r) for r in rows}, reverse=True)
    return [torch.from_numpy(np.stack([r for r in rows if len(r) == n]).astype(np.int64))
            for n in lengths]


@dataclass
class BatchOrder:
    """Which windows step s trains on: a fresh seeded permutation per epoch, so the step alone
    fixes the data position (a resumed run needs no reader state)."""

    num_windows: int
    batch_size: int
    seed: int
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.clear()
            rng = np.random.default_rng([self.seed, epoch])
            self._cache[epoch] = rng.permutation(self.num_windows)
        return self._cache[epoch]

    def indices(self, step: int) -> list[int]:
        first = step * self.batch_size
        return [int(self._perm(i // self.num_windows)[i % self.num_windows])
                for i in range(first, first + self.batch_size)]
