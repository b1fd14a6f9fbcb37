"""The rule stages decide as datatrove's filters of the same names, document for document.

datatrove (with spaCy, its English word splitter) is the reference users compare with: on real
English prose (Python's pydoc topics and module docs, always at hand; the web sample in
../shared/data when present) and on generated edge cases, each stage keeps and drops what the
datatrove filter with the same thresholds keeps and drops, on at least 99.5 % of documents.
The remaining disagreements are cases below, each with its cause.
"""

from __future__ import annotations

import json
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from siftline.config import load_config
from siftline.demo.corpus import module_docs
from siftline.stages.registry import REGISTRY

pytest.importorskip("spacy")
filters = pytest.importorskip("datatrove.pipeline.filters")
Document = pytest.importorskip("datatrove.data").Document

WEB = Path(__file__).resolve().parents[2] / "shared" / "data" / "web"
STAGES = ("gopher_quality", "gopher_repetition", "fineweb_quality", "c4_quality")
FLOOR = 0.995

EDGE_CASES = [
    "\n\n\n",
    "word",
    "\n".join(f"- item number {i} of the list" for i in range(40)),
    "\n".join(f"• bullet {i} with several words in it to count" for i in range(60)),
    "\n\n".join(["The same paragraph repeats itself here, over and over again."] * 12),
    "\n".join(["A line that is duplicated in the page."] * 30 + ["One that is not."]),
    "Это русский текст. " * 40,
    "这是一个中文句子。" * 60,
    "日本語の文章です。これは例です。" * 30,
    "# heading\n" * 30 + "the and of to with have that be " * 10,
    "Wait... " * 80,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 5 + "\n" + "It is fine. " * 9,
    "function f() { return 1; } is code, you see.\n" * 6,
    "Please enable JavaScript to view this page. It is needed. Really it is.\n" * 8,
    "We use cookies to improve your experience. Accept them now please.\n" * 8,
    "Short.\nLines.\nEverywhere.\n" * 20,
    ("The quick brown fox jumps over the lazy dog. It was not the first time that the dog "
     "had been jumped over, and it would not be the last. ") * 8,
    "x " * 120,
    "supercalifragilisticexpialidocious " * 60 + "the of",
    "1 2 3 4 5 6 7 8 9 10 " * 20,
]


def pydoc_texts() -> list[str]:
    from pydoc_data.topics import topics

    texts = [topics[k] for k in sorted(topics)]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("argparse", "json/__init__", "pathlib", "textwrap", "statistics", "fractions",
                 "difflib", "shutil", "tempfile", "calendar", "heapq", "bisect", "string"):
        path = stdlib / f"{name}.py"
        if path.is_file():
            doc = module_docs(path.read_text(encoding="utf-8"), name)
            if doc:
                texts.append(doc)
    return texts


def web_texts() -> list[str]:
    if not WEB.is_dir():
        return []
    return [json.loads(line)["text"] for path in sorted(WEB.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def datatrove_keeps(name: str) -> Callable[[str], bool]:
    make = {"gopher_quality": filters.GopherQualityFilter,
            "gopher_repetition": filters.GopherRepetitionFilter,
            "fineweb_quality": filters.FineWebQualityFilter,
            "c4_quality": filters.C4QualityFilter}[name]
    flt = make()

    def keeps(text: str) -> bool:
        result = flt.filter(Document(text=text, id="x"))
        return result[0] if isinstance(result, tuple) else bool(result)

    return keeps


def siftline_rules(name: str, texts: list[str], overrides: dict | None = None) -> list[str | None]:
    """The failing rule per text (None: kept), through the stage as a run applies it."""
    config = load_config({"stages": {name: {"enabled": True, **(overrides or {})}}})
    spec = REGISTRY[name]
    table = pa.table({"text": texts, "drop_reason": pa.nulls(len(texts), pa.string())})
    return spec.rules(spec.build(config)(table), config).to_pylist()


def disagreements(name: str, texts: list[str]) -> list[tuple[str, bool, str | None]]:
    keeps = datatrove_keeps(name)
    ours = siftline_rules(name, texts)
    return [(text, keeps(text), rule) for text, rule in zip(texts, ours, strict=True)
            if keeps(text) != (rule is None)]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return pydoc_texts() + EDGE_CASES


@pytest.mark.parametrize("name", STAGES)
def test_decisions_agree_with_datatrove(name: str, corpus: list[str]) -> None:
    differ = disagreements(name, corpus)
    agreement = 1 - len(differ) / len(corpus)
    assert agreement >= FLOOR, [(t[:80], dt, ours) for t, dt, ours in differ]


@pytest.mark.skipif(not WEB.is_dir(), reason="../shared/data/web is not here")
@pytest.mark.parametrize("name", STAGES)
def test_decisions_agree_on_real_web_pages(name: str) -> None:
    texts = web_texts()
    differ = disagreements(name, texts)
    assert 1 - len(differ) / len(texts) >= FLOOR, [(t[:80], dt, ours) for t, dt, ours in differ]
