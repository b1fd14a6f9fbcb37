"""Tokens per domain of the kept data: counted with a tokenizer, or estimated from characters.

A tokenizer is a `tokenizer.json` (Hugging Face `tokenizers` format) or a folder holding one (a
siftline model folder, or a Hugging Face model folder); it is read through `Storage`, so it may
live on S3. Texts are encoded without special tokens, so no BOS/EOS is counted: a trainer adds
its own separators. Without a tokenizer, tokens = characters / `chars_per_token`, per domain.

The counting pass maps over the kept Parquet shards (one task per shard, one tokenizer per
worker) and records each shard's counts under `_work/`, so a resumed run does not recount.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siftline.config import S3Config
from siftline.errors import ConfigError
from siftline.executors.base import Executor
from siftline.io.storage import Storage, join
from siftline.io.writers import read_json, write_json
from siftline.mixture.config import MixtureConfig

TOKENIZER_FILE = "tokenizer.json"
BATCH_ROWS = 1024


def tokenizer_file(path: str, storage: Storage) -> str:
    """The tokenizer.json that `path` names (the file itself, or one inside a folder)."""
    if path.endswith(".json") and storage.exists(path) and not storage.isdir(path):
        return path
    inside = join(path, TOKENIZER_FILE)
    if storage.exists(inside):
        return inside
    raise ConfigError(f"mixture.tokenizer: {path} is neither a tokenizer.json nor a folder "
                      f"holding one (a siftline or Hugging Face model folder)")


def load_backend(path: str, storage: Storage) -> Any:
    """A `tokenizers.Tokenizer` from a tokenizer.json or model folder; errors name the key."""
    from tokenizers import Tokenizer

    uri = tokenizer_file(path, storage)
    try:
        backend = Tokenizer.from_str(storage.read_text(uri))
    except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
        raise ConfigError(f"mixture.tokenizer: cannot load {uri}: {exc}") from None
    backend.encode_special_tokens = True  # literal "<|endoftext|>" text is text, not a token
    return backend


@dataclass
class TokenCounter:
    """Tokens of each text: exact with a tokenizer, `n_chars / chars_per_token` without."""

    backend: Any = None
    chars_per_token: float = 4.0

    @classmethod
    def build(cls, tokenizer: str | None, chars_per_token: float,
              s3: S3Config | None = None) -> TokenCounter:
        backend = load_backend(tokenizer, Storage(s3)) if tokenizer else None
        return cls(backend, chars_per_token)

    def count(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Tokens per text: int64 with a tokenizer, float64 (unrounded) as an estimate."""
        if self.backend is None:
            chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False)
            return chars.astype(np.float64) / self.chars_per_token
        encoded = self.backend.encode_batch(texts.to_pylist(), add_special_tokens=False)
        return np.fromiter((len(e.ids) for e in encoded), dtype=np.int64, count=len(encoded))


def counted_with(cfg: MixtureConfig) -> dict[str, Any]:
    """How the counts were made: recorded beside them, and compared before reusing them."""
    if cfg.tokenizer:
        return {"method": "tokenizer", "tokenizer": cfg.tokenizer}
    return {"method": "chars_per_token", "chars_per_token": cfg.chars_per_token}


def estimate_tokens(chars: Mapping[str, int], chars_per_token: float) -> dict[str, int]:
    """Per-domain estimate from the kept characters (rounded to whole tokens)."""
    return {name: int(round(n / chars_per_token)) for name, n in chars.items()}


def count_shard(counter: TokenCounter, storage: Storage, root: str, work: str,
                shard: Mapping[str, Any]) -> dict[str, int]:
    """Tokens per domain of one kept shard ({path, sha256} under `root`). Its record under
    `work` is named by the shard's checksum, so a rewritten shard is never taken for another."""
    rel = shard["path"]
    done = join(work, "tokens", f"{shard['sha256']}.json")
    if storage.exists(done):
        return read_json(storage, done)
    totals: Counter[str] = Counter()
    with storage.open(join(root, rel)) as handle:
        for batch in pq.ParquetFile(handle).iter_batches(BATCH_ROWS, columns=["domain", "text"]):
            counts = counter.count(batch.column("text"))
            for name, n in zip(batch.column("domain").to_pylist(), counts.tolist(), strict=True):
                totals[name] += n
    result = {name: int(round(n)) for name, n in sorted(totals.items())}
    write_json(storage, done, result)
    return result


def count_kept(executor: Executor, cfg: MixtureConfig, storage: Storage, root: str, work: str,
               shards: Sequence[Mapping[str, Any]], domains: Sequence[str],
               progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Tokens per domain over the kept shards with `cfg.tokenizer` (every domain listed)."""
    setup = partial(TokenCounter.build, cfg.tokenizer, cfg.chars_per_token, storage.s3)
    task = partial(_count_task, storage, root, work)
    totals: Counter[str] = Counter(dict.fromkeys(domains, 0))
    for part in executor.map(task, list(shards), setup=setup, progress=progress):
        totals.update(part)
    return {name: int(totals[name]) for name in sorted(totals)}


def _count_task(storage: Storage, root: str, work: str, counter: TokenCounter,
                shard: Mapping[str, Any]) -> dict[str, int]:
    return count_shard(counter, storage, root, work, shard)
