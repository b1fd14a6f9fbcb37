"""CoLoR-Filter's target text: what the conditional model is fine-tuned on.

The target comes either from files (eval sets as prompt + gold answer, plain text, JSON Lines
records, any siftline input) or from a held-out share of one domain of the corpus itself. Either
way the texts come back in a deterministic order — files in path order (globs and folders
sorted), records in file order; held-out documents by a seeded hash of their id, so the choice
does not depend on how the corpus is split into tasks — and the fine-tuned model and its
fingerprint depend only on the data and the config. Every problem is a `ConfigError` that names
the file, the 1-based line and the key, found before any model is trained.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.compute as pc

from siftline.config import InputConfig, TargetConfig
from siftline.errors import ConfigError, InputError
from siftline.io.corpus import corpus_tables
from siftline.io.inputs import (
    JSONL_SUFFIXES,
    check_inputs_reachable,
    expand_inputs,
    hidden,
    plan_splits,
    split_codec,
)
from siftline.io.jsonl import MAX_LINE_BYTES, iter_lines, json_error, lookup
from siftline.io.readers import read_split
from siftline.io.storage import Storage, join

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
COLUMNAR_SUFFIXES = (".parquet", ".arrow")
EVAL_KEYS = ("query", "choices", "gold")
HF_MARKERS = ("dataset_dict.json", "state.json")
WHOLE_FILE = 1 << 62  # split_bytes that keeps every file in one split (so rejects carry lines)
TARGET_PURPOSE = "target"  # unit_hash purpose: independent of the LM sample and its hold-out


# -- entry points ------------------------------------------------------------------------------
def load_target_texts(target: TargetConfig, corpus: InputConfig, storage: Storage) -> list[str]:
    """The target texts in a deterministic order, capped at `target.max_bytes`; never empty."""
    if target.domain is not None:
        texts = _domain_texts(target, corpus, storage)
    else:
        files = expand_target_paths(target.paths, storage)
        texts = [text for uri in files for text in _file_texts(uri, target, storage)]
        if not texts:
            raise ConfigError(f"target.paths {target.paths}: no target text in {len(files)} "
                              "file(s) (all empty)")
    return _cap_bytes(texts, None if target.max_bytes is None else int(target.max_bytes))


def target_fingerprint(texts: list[str]) -> str:
    """sha256 over the texts, each length-prefixed so no two lists collide: a later stage can
    tell whether the target (and so the conditional model) has to change."""
    digest = hashlib.sha256()
    digest.update(len(texts).to_bytes(8, "little"))
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def is_held_out(doc_id: str, domain: str, target: TargetConfig) -> bool:
    """Whether a corpus document belongs to the `target.domain` hold-out (the rule
    `load_target_texts` uses), so scoring can leave target documents out of the selection."""
    if target.domain is None or domain != target.domain:
        return False
    return _holdout_hash(doc_id, target.seed) < target.holdout_fraction


# -- paths -------------------------------------------------------------------------------------
def expand_target_paths(paths: list[str], storage: Storage) -> list[str]:
    """Files, globs (sorted), folders (sorted, recursive) and Hugging Face dataset folders."""
    files: list[str] = []
    for path in paths:
        try:
            check_inputs_reachable([path], storage)
            files.extend(_expand_one(path, storage))
        except ConfigError:
            raise
        except InputError as exc:
            raise ConfigError(f"target.paths: {exc}") from None
        except Exception as exc:  # an unknown protocol, missing S3 credentials (not OSErrors)
            raise ConfigError(f"target.paths: {path}: {type(exc).__name__}: {exc}") from None
    seen: set[str] = set()
    return [f for f in files if not (f in seen or seen.add(f))]


def _expand_one(path: str, storage: Storage) -> list[str]:
    if path.startswith("demo://"):
        raise ConfigError(f"target.paths: {path}: a demo corpus is not a target file; hold out "
                          "part of the corpus with target.domain instead")
    if any(ch in path for ch in "*?["):
        matched = [m for m in storage.glob(path) if not hidden(m) and not storage.isdir(m)]
        if not matched:
            raise ConfigError(f"target.paths: {path}: the pattern matches no file")
        return matched
    if storage.isdir(path):
        return _expand_folder(path, storage)
    if storage.exists(path):
        return [path]
    raise ConfigError(f"target.paths: {path}: no such file or folder")


def _expand_folder(path: str, storage: Storage) -> list[str]:
    if any(storage.exists(join(path, marker)) for marker in HF_MARKERS):
        try:
            return expand_inputs([path], storage)
        except InputError as exc:
            raise ConfigError(f"target.paths: {exc}") from None
    found = [uri for uri in storage.find(path) if not hidden(uri) and auto_kind(uri)]
    if not found:
        known = ", ".join(TEXT_SUFFIXES + JSONL_SUFFIXES + COLUMNAR_SUFFIXES)
        raise ConfigError(f"target.paths: {path}: the folder holds no target file ({known})")
    return found


def auto_kind(uri: str) -> str | None:
    """text | records | input, from the file name; None for a file that is not a target."""
    name, codec = split_codec(uri)
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    if name.endswith(JSONL_SUFFIXES):
        return "records"
    if name.endswith(COLUMNAR_SUFFIXES) and codec is None:
        return "input"
    return None


# -- one file ----------------------------------------------------------------------------------
def _file_texts(uri: str, target: TargetConfig, storage: Storage) -> list[str]:
    kind = target.format if target.format != "auto" else auto_kind(uri)
    if kind is None:
        raise ConfigError(f"target {uri}: unknown format (expected .jsonl, .txt, .md, .parquet, "
                          ".arrow or a Hugging Face dataset folder; or set target.format)")
    if target.template is not None and kind in ("eval", "text", "input"):
        raise ConfigError(f"target {uri}: target.template applies to JSON Lines records "
                          f"(format auto or jsonl), not to format {kind}")
    if kind == "text":
        return _text_paragraphs(uri, storage)
    if kind == "input":
        return _input_texts(uri, target, storage)
    return _record_texts(uri, target, storage, kind)


def _text_paragraphs(uri: str, storage: Storage) -> list[str]:
    """Plain text, one target text per paragraph (blank-line separated), stripped."""
    with storage.open(uri, "rb", compression=split_codec(uri)[1]) as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        _fail(uri, line, None, f"not valid UTF-8 (byte {exc.start})")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*text.split("\n"), ""]:
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current).strip())
            current = []
    return paragraphs


def _input_texts(uri: str, target: TargetConfig, storage: Storage) -> list[str]:
    """Any siftline input (JSON Lines, Parquet, Arrow) through the corpus readers, with
    `target.fields`; a record the readers would quarantine is an error here."""
    config = InputConfig(paths=[uri], fields=target.fields, split_bytes=WHOLE_FILE)
    texts: list[str] = []
    try:
        for split in plan_splits(config, storage, [uri]):
            for batch in read_split(split, config, storage):
                if batch.rejects:
                    reject = batch.rejects[0]
                    where = (f"line {reject.line}" if reject.line is not None
                             else f"row {reject.row}" if reject.row is not None
                             else f"byte {reject.byte_offset}")
                    raise ConfigError(f"target {reject.source}, {where}: {reject.error}")
                texts += [t for t in batch.table.column("text").to_pylist() if t.strip()]
    except InputError as exc:
        raise ConfigError(f"target {exc}") from None
    return texts


# -- JSON Lines records ------------------------------------------------------------------------
def _record_texts(uri: str, target: TargetConfig, storage: Storage, kind: str) -> list[str]:
    """kind eval: every record is {query, choices, gold}; jsonl: template or text field;
    records (auto): eval when the first record has the eval keys, else as jsonl."""
    if target.template is not None:
        _check_template(target.template)
    mode = None if kind == "records" else "eval" if kind == "eval" else _plain_mode(target)
    texts: list[str] = []
    for line, record in read_records(uri, storage):
        if mode is None:
            mode = "eval" if all(key in record for key in EVAL_KEYS) else _plain_mode(target)
        if mode == "eval":
            text = eval_text(record, uri, line)
        elif mode == "template":
            text = _template_text(record, str(target.template), uri, line)
        else:
            text = _field_text(record, target.fields.text, uri, line)
        if text.strip():
            texts.append(text)
    return texts


def _plain_mode(target: TargetConfig) -> str:
    return "template" if target.template is not None else "field"


def read_records(uri: str, storage: Storage) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line, record) for every non-blank line; a bad line is an error, not skipped."""
    with storage.open(uri, "rb", compression=split_codec(uri)[1]) as stream:
        for line, (_, raw) in enumerate(iter_lines(stream, 0, None), 1):
            if raw is None:
                _fail(uri, line, None, f"line longer than {MAX_LINE_BYTES:,} bytes")
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                _fail(uri, line, None, f"not valid UTF-8 (byte {exc.start} of the line)")
            except json.JSONDecodeError as exc:
                _fail(uri, line, None, json_error(exc))
            if not isinstance(record, dict):
                _fail(uri, line, None, f"expected a JSON object, got {type(record).__name__}")
            yield line, record


def eval_text(record: dict[str, Any], uri: str, line: int) -> str:
    """The paper's downstream target: the prompt followed by the gold answer."""
    for key in EVAL_KEYS:
        if key not in record:
            _fail(uri, line, key, "is missing (an eval record has query, choices and gold)")
    query, choices = record["query"], record["choices"]
    if not isinstance(query, str):
        _fail(uri, line, "query", f"is {_kind(query)}, expected a string")
    if not isinstance(choices, list) or not choices:
        _fail(uri, line, "choices", f"is {_kind(choices)}, expected a non-empty list")
    _check_encodable(query, uri, line, "query")
    answer = gold_choice(record["gold"], choices, uri, line)
    _check_encodable(answer, uri, line, "choices")
    return f"{query} {answer}"


def gold_choice(gold: Any, choices: list[Any], uri: str, line: int) -> str:
    """`gold` is an index into `choices` (or, accepted too, the gold choice itself)."""
    if isinstance(gold, str):
        if gold in choices:
            return gold
        _fail(uri, line, "gold", f"{gold!r} is neither an index nor one of the choices")
    if isinstance(gold, bool) or not isinstance(gold, int):
        _fail(uri, line, "gold", f"is {_kind(gold)}, expected an int index into choices")
    if not 0 <= gold < len(choices):
        _fail(uri, line, "gold", f"{gold} is out of range for {len(choices)} choices")
    answer = choices[gold]
    if not isinstance(answer, str):
        _fail(uri, line, "choices", f"choice {gold} is {_kind(answer)}, expected a string")
    return answer


def _check_template(template: str) -> None:
    """A malformed or positional template fails once, naming target.template, not per line."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"target.template {template!r}: {exc}") from None
    if any(name == "" or name[0].isdigit() for name in names):
        raise ConfigError(f"target.template {template!r}: use named fields ({{question}}), "
                          "not positional ones ({} or {0})")


def _template_text(record: dict[str, Any], template: str, uri: str, line: int) -> str:
    try:
        text = template.format_map(record)
    except KeyError as exc:
        _fail(uri, line, str(exc.args[0]), "is missing (target.template uses it)")
    except (IndexError, AttributeError, TypeError, ValueError) as exc:
        _fail(uri, line, None, f"target.template {template!r} does not apply: {exc}")
    _check_encodable(text, uri, line, "template")
    return text


def _field_text(record: dict[str, Any], key: str, uri: str, line: int) -> str:
    value = lookup(record, key)
    if value is None:
        _fail(uri, line, key, "is null" if key in record else "is missing")
    if not isinstance(value, str):
        _fail(uri, line, key, f"is {_kind(value)}, expected a string")
    _check_encodable(value, uri, line, key)
    return value


def _check_encodable(text: str, uri: str, line: int, key: str) -> None:
    """JSON may carry an unpaired surrogate (\\ud800), which no tokenizer can take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        _fail(uri, line, key, "contains an unpaired UTF-16 surrogate")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _fail(uri: str, line: int, key: str | None, problem: str) -> NoReturn:
    where = f"target {uri}, line {line}" + (f", key {key!r}" if key is not None else "")
    raise ConfigError(f"{where}: {problem}")


# -- a held-out share of one corpus domain -----------------------------------------------------
def _holdout_hash(doc_id: str, seed: int) -> float:
    from siftline.lm.data import unit_hash  # imported here: siftline.lm.data pulls in torch

    return unit_hash(doc_id, seed, TARGET_PURPOSE)


def _domain_texts(target: TargetConfig, corpus: InputConfig, storage: Storage) -> list[str]:
    """Documents of `target.domain` whose seeded id hash falls under `holdout_fraction`, in
    hash order; empty and over-long documents are skipped, as selection drops them."""
    domain, limit = str(target.domain), int(corpus.max_doc_bytes)
    seen: Counter[str] = Counter()
    held: list[tuple[float, str, str]] = []
    for table in corpus_tables(corpus, storage):
        for item in pc.value_counts(table.column("domain")).to_pylist():
            seen[item["values"]] += item["counts"]
        mine = table.filter(pc.equal(table.column("domain"), pa.scalar(domain, pa.string())))
        ids, texts = mine.column("id").to_pylist(), mine.column("text").to_pylist()
        for doc_id, text in zip(ids, texts, strict=True):
            h = _holdout_hash(doc_id, target.seed)
            if h < target.holdout_fraction and text.strip() and len(text.encode()) <= limit:
                held.append((h, doc_id, text))
    if not held:
        raise ConfigError(_no_holdout_message(target, seen))
    held.sort()
    return [text for _, _, text in held]


def _no_holdout_message(target: TargetConfig, seen: Counter[str]) -> str:
    listing = ", ".join(f"{name} ({count:,})" for name, count in sorted(seen.items())[:20])
    if len(seen) > 20:
        listing += f", ... ({len(seen)} domains)"
    head = f"target.domain {target.domain!r}"
    if target.domain not in seen:
        return f"{head}: no corpus document has that domain; domains seen: {listing or 'none'}"
    return (f"{head}: none of its {seen[str(target.domain)]:,} documents is held out "
            f"(holdout_fraction {target.holdout_fraction}, seed {target.seed}; empty and "
            f"over-long documents do not count); raise holdout_fraction. Domains seen: {listing}")


# -- cap -----------------------------------------------------------------------------------------
def _cap_bytes(texts: list[str], max_bytes: int | None) -> list[str]:
    """Whole texts, in order, while their UTF-8 bytes fit in `max_bytes`."""
    if max_bytes is None:
        return texts
    kept: list[str] = []
    total = 0
    for text in texts:
        size = len(text.encode("utf-8", "surrogatepass"))
        if total + size > max_bytes:
            if not kept:
                raise ConfigError(f"target.max_bytes {max_bytes:,} is smaller than the first "
                                  f"target text ({size:,} bytes)")
            break
        kept.append(text)
        total += size
    return kept
