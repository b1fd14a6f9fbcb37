"""Config sections of the heuristic quality rules: Gopher quality and repetition, FineWeb, C4.

Defaults are the published ones (Gopher: Rae et al. 2021, Table A1 and §A.1.1; FineWeb: Penedo
et al. 2024; C4: Raffel et al. 2020, §2.2), as datatrove ships them. Each rule's key is also its
name in the stage's `<stage>_rule` column; `null` switches a rule off. Two kinds of keys:
thresholds, which `siftline select` re-applies to the persisted measurements without re-reading
text, and measurement parameters (marked "measured with"), which only a new run changes.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from siftline.sections import Section as _Section

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


class GopherQualityConfig(_Section):
    """MassiveText's quality rules over words, lines and symbols (drop reason gopher_quality)."""

    enabled: bool = Field(False, description="Drop documents failing any of Gopher's quality "
                          "rules below (a null limit is not judged).")
    min_doc_words: int | None = Field(50, ge=0, description="Fewer words (not counting "
                                      "punctuation-only tokens) fail.")
    max_doc_words: int | None = Field(100_000, ge=0, description="More words fail.")
    min_avg_word_length: float | None = Field(3, ge=0, description="A shorter mean word "
                                              "length fails.")
    max_avg_word_length: float | None = Field(10, ge=0, description="A longer mean word "
                                              "length fails.")
    max_hash_ratio: float | None = Field(0.1, ge=0, description="More '#' per word fail.")
    max_ellipsis_ratio: float | None = Field(0.1, ge=0, description="More ellipses ('...', "
                                             "'…') per word fail.")
    max_bullet_lines_ratio: float | None = Field(0.9, ge=0, description="A larger share of "
                                                 "lines starting with '•' or '-' fails.")
    max_ellipsis_lines_ratio: float | None = Field(0.3, ge=0, description="A larger share of "
                                                   "lines ending with an ellipsis fails.")
    min_alpha_words_ratio: float | None = Field(0.8, ge=0, description="A smaller share of "
                                                "words with a letter fails (datatrove: "
                                                "max_non_alpha_words_ratio).")
    min_stop_words: int | None = Field(2, ge=0, description="Fewer distinct stop words fail.")
    stop_words: list[str] = Field(list(GOPHER_STOP_WORDS), description="Measured with: the "
                                  "stop words (matched case-sensitively, as datatrove does).")


TOP_NGRAMS = (2, 3, 4)  # measured: the most frequent n-gram's share, for these n
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)  # measured: repeated n-grams' share, for these n


def _default_top() -> dict[int, float | None]:
    return {2: 0.20, 3: 0.18, 4: 0.16}


def _default_dup() -> dict[int, float | None]:
    return {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


class GopherRepetitionConfig(_Section):
    """MassiveText's repetition rules (drop reason gopher_repetition): duplicated lines and
    paragraphs, the most frequent short n-grams, and duplicated long n-grams, each as a share
    of the document's characters."""

    enabled: bool = Field(False, description="Drop documents failing any of Gopher's "
                          "repetition rules below (a null limit is not judged).")
    dup_para_frac: float | None = Field(0.3, ge=0, description="A larger share of duplicated "
                                        "paragraphs fails.")
    dup_para_char_frac: float | None = Field(0.2, ge=0, description="A larger share of "
                                             "characters in duplicated paragraphs fails.")
    dup_line_frac: float | None = Field(0.3, ge=0, description="A larger share of duplicated "
                                        "lines fails.")
    dup_line_char_frac: float | None = Field(0.2, ge=0, description="A larger share of "
                                             "characters in duplicated lines fails.")
    top_n_grams: dict[int, float | None] = Field(default_factory=_default_top, description=(
        "n (2, 3 or 4) -> the largest share of characters the most frequent n-gram may cover; "
        "an n left out or null is not judged"))
    dup_n_grams: dict[int, float | None] = Field(default_factory=_default_dup, description=(
        "n (5 to 10) -> the largest share of characters in repeated n-grams; an n left out or "
        "null is not judged"))

    @field_validator("top_n_grams")
    @classmethod
    def _top_measured(cls, value: dict[int, float | None]) -> dict[int, float | None]:
        return _measured(value, TOP_NGRAMS)

    @field_validator("dup_n_grams")
    @classmethod
    def _dup_measured(cls, value: dict[int, float | None]) -> dict[int, float | None]:
        return _measured(value, DUP_NGRAMS)

    def limit(self, rule: str) -> float | None:
        """The limit of a rule by its name: a key, or `top_<n>_gram` / `dup_<n>_gram`."""
        kind, n, gram = rule.split("_") if rule.endswith("_gram") else ("", "0", "")
        if kind == "top":
            return self.top_n_grams.get(int(n))
        if kind == "dup" and gram:
            return self.dup_n_grams.get(int(n))
        return getattr(self, rule)


def _measured(value: dict[int, float | None], sizes: tuple[int, ...]) -> dict[int, float | None]:
    bad = [n for n in value if n not in sizes]
    if bad:
        raise ValueError(f"n-gram sizes {bad} are not measured (measured: {list(sizes)})")
    return dict(sorted(value.items()))


class FineWebQualityConfig(_Section):
    """FineWeb's own rules (drop reason fineweb_quality): lines ending in punctuation, short
    lines, duplicated line characters, and list-like documents."""

    enabled: bool = Field(False, description="Drop documents failing any of FineWeb's rules "
                          "below (a null limit is not judged).")
    line_punct_thr: float | None = Field(0.12, ge=0, description="A smaller share of lines "
                                         "ending in terminal punctuation fails.")
    line_punct_exclude_zero: bool = Field(False, description="Do not fail documents where no "
                                          "line ends in punctuation.")
    short_line_thr: float | None = Field(0.67, ge=0, description="A larger share of short "
                                         "lines fails.")
    short_line_length: int = Field(30, ge=0, description="Measured with: a line this long or "
                                   "shorter (characters) is short.")
    char_duplicates_ratio: float | None = Field(0.01, ge=0, description="A larger share of "
                                                "characters in duplicated lines fails.")
    new_line_ratio: float | None = Field(0.3, ge=0, description="More newlines per word fail "
                                         "(list-like documents).")


class C4QualityConfig(_Section):
    """C4's rules (drop reason c4_quality). C4 removes lines and keeps the rest; siftline never
    rewrites text, so a document is judged by what C4's line removal would leave: it fails with
    too few sentences left, or when a line C4 would keep says "lorem ipsum" or holds a curly
    bracket. The lines themselves stay in the output."""

    enabled: bool = Field(False, description="Drop documents failing C4's rules below, judged "
                          "on the lines C4 would keep; the text itself is never rewritten.")
    min_num_sentences: int | None = Field(5, ge=0, description="Fewer sentences in the lines "
                                          "C4 keeps fail.")
    filter_lorem_ipsum: bool = Field(True, description="Fail on 'lorem ipsum' in a kept line.")
    filter_curly_bracket: bool = Field(True, description="Fail on '{' in a kept line.")
    min_kept_share: float | None = Field(None, ge=0, le=1, description="Optional (not C4's): "
                                         "fail when the kept lines hold a smaller share of the "
                                         "document's characters.")
    remove_citations: bool = Field(True, description="Measured with: drop '[1]', '[edit]', "
                                   "'[citation needed]' before judging a line.")
    filter_no_terminal_punct: bool = Field(True, description="Measured with: remove lines "
                                           "not ending in . ? ! \" ' (or ending in '...').")
    min_words_per_line: int = Field(3, ge=0, description="Measured with: remove lines with "
                                    "fewer words (0: keep all).")
    max_word_length: int | None = Field(1000, ge=1, description="Measured with: remove lines "
                                        "with a longer word (null: no limit).")
    filter_javascript: bool = Field(True, description="Measured with: remove lines that "
                                    "mention javascript.")
    filter_policy: bool = Field(True, description="Measured with: remove lines about terms "
                                "of use, privacy or cookie policies.")
