"""Words and sentences as datatrove's English splitter sees them, at a fraction of its cost.

datatrove's `split_into_words(text, "en")` is spaCy's blank English tokenizer with each token
stripped and whitespace-only ones dropped; `split_into_sentences` adds spaCy's rule-based
Sentencizer. The quality filters count words, characters, n-grams, stop words and sentences, so
this module reproduces the same rules: split on whitespace, then per chunk peel prefixes and
suffixes (stopping at a special case), keep URLs whole, split infixes, re-merge special cases.
Chunks repeat (Zipf), so each chunk's result is cached (bounded), as spaCy caches it too.

Known differences from spaCy (none on the 519 web and 498 demo documents checked):
- spaCy re-merges special cases with a matcher that also matches across a space, and a match
  there blocks an overlapping one: "[ :)<3" is "[", ":", ")", "<3" in spaCy, "[", ":)", "<3" here.
- Letters are Unicode's (Latin, Greek and Cyrillic letters, whole blocks of uncased scripts);
  spaCy lists fixed ranges that miss a few, so "xª-b" and "a,ϊ" split here but not in spaCy, and
  spaCy counts Persian digits as letters ("۱۲۳-ب" splits there).
"""

from __future__ import annotations

import re
from itertools import chain
from typing import NamedTuple

import regex


def _items(text: str) -> list[str]:
    """Space-separated lists read better than list literals for the tables below."""
    return text.split()


# --- character classes (regex V1 sets; "--" subtracts, "&&" intersects) --------------------------
_CASED = r"\p{Latin}\p{Greek}\p{Cyrillic}"
# Scripts without case, counted as letters of both cases: whole blocks, as spaCy lists them.
_UNCASED = "".join(rf"\p{{Block={b}}}" for b in _items(
    "Ethiopic Bengali Sinhala Devanagari Kannada Tamil Telugu Hangul_Syllables Hangul_Jamo "
    "Hiragana Katakana CJK_Radicals_Supplement Kangxi_Radicals Ideographic_Description_Characters "
    "CJK_Symbols_And_Punctuation CJK_Strokes Enclosed_CJK_Letters_And_Months CJK_Compatibility "
    "CJK_Compatibility_Forms Enclosed_Ideographic_Supplement")) + (
    r"\p{Hebrew}\p{Han}[\p{Arabic}&&\p{L}]")
ALPHA = rf"[\p{{L}}&&[{_CASED}]]{_UNCASED}"
LOWER = rf"[\p{{Ll}}&&[{_CASED}]]{_UNCASED}"
UPPER = rf"[\p{{Lu}}&&[{_CASED}]]{_UNCASED}"
# Symbols (emoji, dingbats) are split off like punctuation; spaCy's list is Unicode 11's \p{So},
# so the symbols assigned since then are subtracted.
ICONS = (r"[\p{So}--[\u166d\u2427-\u2429\u2b96\u2b97\u2bc9\u2bff\u2e50\u2e51\u2ffc-\u2fff"
         r"\u31e4-\u31ef\u32ff\ufbc3-\ufbd2\ufd40-\ufd4f\ufd90\ufd91\ufdc8-\ufdcf\ufdfe\ufdff"
         r"\U0001019c\U00010ed1-\U00010ed8\U00011fd5-\U00011ff1\U0001cc00-\U0001cfc3"
         r"\U0001d1e9-\U0001d1ff\U0001d253-\U0001d27f\U0001e14f\U0001ed2e\U0001f10d-\U0001f10f"
         r"\U0001f16c-\U0001f16f\U0001f1ad\U0001f1ae\U0001f6d5-\U0001f6df\U0001f6fa-\U0001f6ff"
         r"\U0001f774-\U0001f77f\U0001f7d9-\U0001f7ff\U0001f8b0-\U0001f8ff\U0001f90c-\U0001f90f"
         r"\U0001f93f\U0001f971\U0001f972\U0001f977-\U0001f979\U0001f97b\U0001f9a3-\U0001f9af"
         r"\U0001f9ba-\U0001f9bf\U0001f9c3-\U0001f9cf\U0001fa00-\U0001fa5f\U0001fa6e-\U0001fbff]]")
PUNCT = "…,:;!?¿؟¡()\\[\\]{}<>_#*&。？！，、；：～·।،۔؛٪"
QUOTES = "'\"”“`‘´’‚,„»«「」『』（）〔〕【】《》〈〉\u2329\u232a⟦⟧"
CURRENCY = "$£¥฿﷼\u20a0-\u20bf"
_SQ = ["", "²", "³"]
UNITS = [b + p for b in _items("km m dm cm mm км м дм см мм كم م سم مم") for p in _SQ] + _items(
    "ha µm nm yd in ft kg g mg µg t lb oz m/s km/h kmh mph hPa Pa mbar mb MB kb KB gb GB tb TB "
    "T G M K % нм кг г мг м/с км/ч кПа Па мбар Кб КБ кб Мб МБ мб Гб ГБ гб Тб ТБ "
    "غرام جرام جم كغ ملغ كوب اكواب")
_UNITS = "|".join(map(regex.escape, sorted(UNITS, key=len, reverse=True)))
_OCTET = r"(?:1?\d{1,2}|2[0-4]\d|25[0-5])"
_HOST = r"[A-Za-z0-9\u00a1-\uffff]"


class Rules(NamedTuple):
    prefix: regex.Pattern[str]  # matched at the start
    suffix: regex.Pattern[str]  # searched for at the end: the earliest start wins
    infix: regex.Pattern[str]  # every match splits
    url: regex.Pattern[str]  # a URL or e-mail address stays one token


def _rules(alpha: str, lower: str, upper: str, icons: str) -> Rules:
    """spaCy's English affix rules over the given letter classes (inside []) and symbol set."""
    dot_after = rf"[0-9{lower}%²\-+{PUNCT}|(?:{QUOTES}]"  # what a split-off final "." may follow
    infixes = [r"\.\.+", "…", *([icons] if icons else []), r"(?<=[0-9])[-+*^](?=[0-9-])",
               rf"(?<=[{lower}{QUOTES}])\.(?=[{upper}{QUOTES}])", rf"(?<=[{alpha}]),(?=[{alpha}])",
               rf"(?<=[{alpha}0-9])(?:-|–|—|--|---|——|~)(?=[{alpha}])",
               rf"(?<=[{alpha}0-9])[:<>=/](?=[{alpha}])"]
    return Rules(*(regex.compile(p, regex.V1) for p in (
        rf"[§%=—–{PUNCT}{QUOTES}{CURRENCY}{icons}]|\+(?![0-9])|\.\.+|(?:US|C|A)\$",
        rf"(?:……|[{PUNCT}{QUOTES}{icons}—–]|\.\.+|['’][sS]|(?<=°[FfCcKk])\.|(?<={dot_after})\."
        rf"|(?<=[0-9])(?:\+|[{CURRENCY}]|(?:US|C|A)\$|{_UNITS})|(?<=[{upper}][{upper}])\.)$",
        "|".join(infixes),
        # the shape of Diego Perini's URL regex, as spaCy's: scheme, user@, IP or host, port, path
        rf"(?:[\p{{L}}\p{{N}}_+\-.]{{2,}}://)?(?:\S+(?::\S*)?@)?"  # \w as Python's re has it
        rf"(?:(?!(?:10|127)(?:\.\d{{1,3}}){{3}}|(?:169\.254|192\.168)(?:\.\d{{1,3}}){{2}}"
        rf"|172\.(?:1[6-9]|2\d|3[01])(?:\.\d{{1,3}}){{2}})(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])"
        rf"(?:\.{_OCTET}){{2}}\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4])"
        rf"|(?:(?:{_HOST}[A-Za-z0-9\u00a1-\uffff_-]{{0,62}})?{_HOST}\.)+[{lower}]{{2,63}})"
        r"(?::\d{2,5})?(?:[/?#]\S*)?")))


def _ascii(cls: str) -> str:
    """The ASCII part of a character class, spelled out (the Unicode sets are slow to test)."""
    pattern = regex.compile(f"[{cls}]", regex.V1)
    return "".join(regex.escape(c) for c in map(chr, range(128)) if pattern.match(c))


UNICODE = _rules(ALPHA, LOWER, UPPER, ICONS)
ASCII = _rules(_ascii(ALPHA), _ascii(LOWER), _ascii(UPPER), _ascii(ICONS))  # most chunks
# Sentence ends: the sentencizer's characters are Unicode's Sentence_Terminal as of Unicode 11.
STERM = regex.compile(r"[\p{STerm}--[\u061d\u061e\u0837\u0839\u083d\u083e\u17d4\u17d5\u1b4e\u1b4f"
                      r"\u1b7d-\u1b7f\u2024\u2cf9-\u2cfb\u2e53\u2e54\u2e60\u2e61\ufe12\ufe15\ufe16"
                      r"\U00010f55-\U00010f59\U00010f86-\U00010f89\U000113d4\U000113d5\U00011944"
                      r"\U00011946\U00011ef7\U00011ef8\U00011f43\U00011f44\U00016d6e\U00016d6f"
                      r"\U00016e98]]", regex.V1).fullmatch
IS_PUNCT = regex.compile(r"\p{P}+").fullmatch


# --- special cases: chunks with a fixed split, checked before and during affix peeling -----------
def _contractions() -> dict[str, tuple[str, ...]]:
    """Pronoun and verb contractions, with and without the apostrophe ("don't", "dont")."""
    rules = [  # (heads, tails): each head, lower case and title case, joined with each tail
        ("i you he she it we they", "'ll 'll|'ve 'd 'd|'ve"), ("i", "'m 'm|a"),
        ("i you we they", "'ve"), ("you we they", "'re"), ("he she it", "'s"),
        ("who what when where why how there that this these those", "'ll 'll|'ve 'd 'd|'ve"),
        ("who what when where why how there that this", "'s"),
        ("who what when where why how there these those", "'re 've"),
        ("ca could do does did had may might must need ought sha should wo would", "n't n't|'ve"),
        ("could might must should would", "'ve"), ("ai are is was were have has dare", "n't"),
    ]
    out: dict[str, tuple[str, ...]] = {}
    for heads, tails in rules:
        for head in heads.split():
            for form in (head, head.title()):
                for tail in tails.split():
                    parts = tuple(tail.split("|"))
                    for pieces in (parts, tuple(p.replace("'", "") for p in parts)):
                        out[form + "".join(pieces)] = (form, *pieces)
    for word in _items("ill its hell shell shed were well whore"):  # words, not contractions
        out.pop(word, None)
        out.pop(word.title(), None)
    return out


_KEEP_WHOLE = _items(  # tokens the affix rules would split
    "' '' \\\") <space> C++ \\t \\n 's 'S ‘s ‘S 're 'd 'bout 'em 'll 'nuff em ll nuff "
    "and/or w/o ma'am Ma'am o'clock O'clock 'cause 'Cause 'cos 'Cos 'coz 'Coz 'cuz 'Cuz "
    # abbreviations ending in a period
    "a.m. p.m. e.g. E.g. E.G. i.e. I.e. I.E. vs. v.s. co. Co. Corp. Inc. Ltd. Bros. Messrs. "
    "Mr. Mrs. Ms. Dr. Prof. Jr. Rev. Gen. Adm. Gov. Sen. Rep. St. Mt. Ph.D. D.C. "
    "Jan. Feb. Mar. Apr. Jun. Jul. Aug. Sep. Sept. Oct. Nov. Dec. "
    "Ak. Ala. Ariz. Ark. Calif. Colo. Conn. Del. Fla. Ga. Ia. Id. Ill. Ind. Kan. Kans. Ky. "
    "La. Mass. Md. Mich. Minn. Miss. Mo. Mont. Neb. Nebr. Nev. Okla. Ore. Pa. Tenn. Va. Wash. "
    "Wis. N.C. N.D. N.H. N.J. N.M. N.Y. S.C. ä. ö. ü. "
    # emoticons
    ":) :-) :)) :-)) :))) :-))) (: (-: =) (= :] :-] [: [-: [= =] :o) (o: :} :-} 8) 8-) (-8 ;) "
    ";-) (; (-; :( :-( :(( :-(( :((( :-((( ): )-: =( >:( :') :'-) :'( :'-( :/ :-/ =/ =| :| "
    ":-| ]= =[ :1 :P :-P :p :-p :O :-O :o :-o :0 :-0 :() >:o :* :-* :3 :-3 =3 :> :-> :X :-X "
    ":x :-x :D :-D ;D ;-D =D xD XD xDD XDD 8D 8-D ^_^ ^__^ ^___^ >.< >.> <.< ._. ;_; -_- -__- "
    "v.v V.V v_v V_V o_o o_O O_o O_O 0_o o_0 0_0 o.O O.o O.O o.o 0.0 o.0 0.o @_@ <3 <33 <333 "
    "</3 (^_^) (-_-) (._.) (>_<) (*_*) (¬_¬) ಠ_ಠ ಠ︵ಠ (ಠ_ಠ) ¯\\(ツ)/¯ (╯°□°）╯︵┻━┻ ><(((*>"
) + [c + "." for c in "abcdefghijklmnopqrstuvwxyz"] + [
    f"{w}{a}" for w in _items("doin goin nothin nuthin ol somethin lovin havin Doin Goin Nothin "
                              "Nuthin Ol Somethin Lovin Havin") for a in ("", "'")]
_SPLIT = {  # fused words and their pieces
    "y'all": "y'|all", "yall": "y|all", "how'd'y": "how|'d|'y", "How'd'y": "How|'d|'y",
    "not've": "not|'ve", "notve": "not|ve", "Not've": "Not|'ve", "Notve": "Not|ve",
    "cannot": "can|not", "Cannot": "Can|not", "gonna": "gon|na", "Gonna": "Gon|na",
    "gotta": "got|ta", "Gotta": "Got|ta", "let's": "let|'s", "Let's": "Let|'s",
    "c'mon": "c'm|on", "C'mon": "C'm|on",
    **{f"°{u}.": f"°|{u}|." for u in "CFKcfk"},
    **{f"{h}{t}": f"{h}|{t}" for h in range(1, 13) for t in ("am", "a.m.", "pm", "p.m.")},
}
SPECIALS: dict[str, tuple[str, ...]] = {
    **_contractions(), **{w: (w,) for w in [*_KEEP_WHOLE, "—"]},
    **{k: tuple(v.split("|")) for k, v in _SPLIT.items()},
}
SPECIALS.update({k.replace("'", "’"): tuple(t.replace("'", "’") for t in v)  # curly apostrophe
                 for k, v in SPECIALS.items() if "'" in k})


# --- the tokenizer ------------------------------------------------------------------------------
_DIGIT = re.compile("[0-9]").search


def _prefix_len(chunk: str, rules: Rules) -> int:
    """Length of the prefix to split off; letters and digits never start one except "US$"."""
    if chunk[0].isalnum() and chunk[0] not in "UCA":
        return 0
    m = rules.prefix.match(chunk)
    return m.end() if m else 0


def _suffix_len(rest: str, rules: Rules) -> int:
    """Length of the suffix to split off: the earliest-starting match that runs to the end.

    Suffixes are short, so only the tail is searched; a run of dots is then followed back. One
    ending in a letter or digit is "'s" or a unit or currency after an ASCII digit ("10km")."""
    if rest[-1].isalnum() and rest[-1] not in "sS" and not _DIGIT(rest):
        return 0
    m = rules.suffix.search(rest, max(len(rest) - 8, 0))
    if m is None:
        return 0
    start = m.start()
    while start and rest[start] == "." and rest[start - 1] == ".":
        start -= 1
    return len(rest) - start


def _peel(chunk: str, specials: dict[str, tuple[str, ...]], rules: Rules,
          ) -> tuple[list[str], str, list[str]]:
    """Strip prefixes and suffixes until none is left or what remains is a special case."""
    prefixes: list[str] = []
    suffixes: list[str] = []
    last = -1
    while chunk and len(chunk) != last and chunk not in specials:
        last = len(chunk)
        pre = _prefix_len(chunk, rules)
        if pre and chunk[pre:] in specials:
            prefixes.append(chunk[:pre])
            return prefixes, chunk[pre:], suffixes
        suf = _suffix_len(chunk[pre:], rules) if pre < len(chunk) else 0
        if suf and chunk[:-suf] in specials:
            suffixes.append(chunk[-suf:])
            return prefixes, chunk[:-suf], suffixes
        if pre:
            prefixes.append(chunk[:pre])
        if suf:
            suffixes.append(chunk[-suf:])
        chunk = chunk[pre:len(chunk) - suf]
    return prefixes, chunk, suffixes


def _infixes(word: str, rules: Rules) -> list[str]:
    """Split at hyphens between letters, "lower.Upper", ellipses, symbols and the like."""
    out, start = [], 0
    for m in rules.infix.finditer(word):
        if m.start() == 0:  # an infix at the very start is not split off
            continue
        if m.start() != start:
            out.append(word[start:m.start()])
        out.append(m.group())
        start = m.end()
    if start < len(word):
        out.append(word[start:])
    return out


_ALWAYS_SPLIT = frozenset((PUNCT + QUOTES).replace("\\", "") + "—–")  # suffixes in any context


def _split_chunk(chunk: str, specials: dict[str, tuple[str, ...]]) -> list[str]:
    """One whitespace-free chunk's tokens before special cases are re-merged."""
    if chunk in specials:
        return list(specials[chunk])
    if chunk.isalpha() or chunk.isascii() and chunk.isdigit():  # nothing to split
        return [chunk]
    head, last = chunk[:-1], chunk[-1]
    if head.isalpha() and (last in _ALWAYS_SPLIT or last == "." and head.isascii() and (
            head[-1].islower() or len(head) > 1 and head[-2:].isupper())):
        return [*specials.get(head, (head,)), last]  # the commonest shape: "word," or "word."
    rules = ASCII if chunk.isascii() else UNICODE
    prefixes, word, suffixes = _peel(chunk, specials, rules)
    if word in specials:
        middle = list(specials[word])
    elif not word or "." in word and rules.url.fullmatch(word):
        middle = [word] if word else []
    else:  # every infix holds a character other than a letter or digit
        middle = [word] if word.isalnum() else _infixes(word, rules)
    return prefixes + middle + suffixes[::-1]


def _merge_patterns() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Special cases that affixes break up ("hi:)" -> "hi", ":", ")"), keyed by those pieces.

    Those whose pieces already are their tokens are kept: their matches still block others."""
    out = {}
    for key, tokens in SPECIALS.items():
        pieces = tuple(_split_chunk(key, {}))
        rules = ASCII if key.isascii() else UNICODE
        if len(pieces) > 1 and (
                rules.prefix.match(key) or rules.suffix.search(key) or rules.infix.search(key)):
            out[pieces] = tokens
    return out


_PATTERNS = _merge_patterns()
_LONGEST = max(map(len, _PATTERNS))
_FIRST = frozenset(pattern[0] for pattern in _PATTERNS)


def tokenize_chunk(chunk: str) -> tuple[str, ...]:
    """spaCy's tokens for one whitespace-free chunk (uncached; `split_words` caches it)."""
    tokens = _split_chunk(chunk, SPECIALS)
    if len(tokens) < 2 or _FIRST.isdisjoint(tokens):
        return tuple(tokens)
    # Re-merge special cases that affixes broke up: longest first, then leftmost; a match whose
    # first or last token an earlier match covered (kept or not) is dropped, as spaCy does.
    found = [(-n, i) for n in range(2, min(_LONGEST, len(tokens)) + 1)
             for i in range(len(tokens) - n + 1) if tuple(tokens[i:i + n]) in _PATTERNS]
    seen: set[int] = set()
    kept = []
    for neg, i in sorted(found):
        if i not in seen and i - neg - 1 not in seen:
            kept.append((i, -neg))
        seen.update(range(i, i - neg))
    for i, n in sorted(kept, reverse=True):
        tokens[i:i + n] = _PATTERNS[tuple(tokens[i:i + n])]
    return tuple(tokens)


_CACHE: dict[str, tuple[str, ...]] = {}
_CACHE_LIMIT = 300_000


def split_words(text: str) -> list[str]:
    """datatrove's `split_into_words(text, "en")`: spaCy's English tokens, whitespace dropped."""
    chunks = text.split()
    found = list(map(_CACHE.get, chunks))
    if None in found:
        if len(_CACHE) > _CACHE_LIMIT:
            _CACHE.clear()
        for i, chunk in enumerate(chunks):
            if found[i] is None:
                found[i] = _CACHE[chunk] = tokenize_chunk(chunk)
    return list(chain.from_iterable(found))


# --- sentences ----------------------------------------------------------------------------------
_WS_SPLIT = re.compile(r"(\s+)").split
_SENT_CACHE: dict[str, tuple[int, bool, int, bool]] = {}


def _sentence_steps(chunk: str) -> tuple[int, bool, int, bool]:
    """The Sentencizer's walk over a chunk's tokens, from either state: (sentence starts, state
    after) when no sentence end is pending, then the same when one is."""
    kinds = [2 if STERM(t) else 1 if IS_PUNCT(t) else 0 for t in tokenize_chunk(chunk)]
    out: list[int | bool] = []
    for pending in (False, True):
        starts = 0
        for kind in kinds:
            if kind == 0 and pending:  # a non-punctuation token after ".", "!", "?" opens one
                starts, pending = starts + 1, False
            elif kind == 2:
                pending = True
        out += [starts, pending]
    return tuple(out)  # type: ignore[return-value]


def count_sentences(text: str) -> int:
    """`len(split_into_sentences(text, "en"))`: spaCy's Sentencizer over the tokens above.

    Whitespace runs other than a single space are tokens too (they open a sentence after a
    full stop, so "Done.\\n" is two sentences), and an empty text is one sentence."""
    parts = _WS_SPLIT(text)
    count, pending = 1, False
    if len(_SENT_CACHE) > _CACHE_LIMIT:
        _SENT_CACHE.clear()
    for i, part in enumerate(parts):
        if i % 2:  # whitespace: a token unless it is the single space after a chunk
            if pending and (part != " " or i == 1 and not parts[0]):
                count, pending = count + 1, False
        elif part:
            steps = _SENT_CACHE.get(part)
            if steps is None:
                steps = _SENT_CACHE[part] = _sentence_steps(part)
            count += steps[2 * pending]
            pending = steps[2 * pending + 1]
    return count
