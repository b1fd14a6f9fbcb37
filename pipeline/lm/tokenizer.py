"""Byte-level BPE tokenizers trained on a corpus sample with `tokenizers`, saved beside the model.

Byte-level means every string encodes (no unknown token) and `n_chars` never depends on the
vocabulary. One special token, `<|endoftext|>`, separates documents when training sequences are
packed and is the context a document's first token is scored from.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

TOKENIZER_FILE = "tokenizer.json"
EOS = "<|endoftext|>"


class Tokenizer:
    """A thin wrapper that exposes what training and scoring need, for any `tokenizers` model."""

    def __init__(self, backend: object, bos_id: int | None) -> None:
        # Match special tokens only where we put them: a document that contains the literal
        # text "<|endoftext|>" must not inject a separator. Not saved in tokenizer.json.
        backend.encode_special_tokens = True
        self._tok = backend
        self.bos_id = bos_id  # prepended to every document; None = first token has no context

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        self._tok.save(str(tmp))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Tokenizer:
        from tokenizers import Tokenizer as Backend

        path = Path(folder) / TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {TOKENIZER_FILE} in {folder}")
        backend = Backend.from_file(str(path))
        return cls(backend, backend.token_to_id(EOS))


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train byte-level BPE with `vocab_size` entries (256 bytes + merges + `<|endoftext|>`)."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < 258:
        raise ValueError(f"a byte-level vocabulary needs at least 258 entries, got {vocab_size}")
    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(backend, backend.token_to_id(EOS))
