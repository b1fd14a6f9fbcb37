"""Help strings that `--help` shows as written.

typer reads every help string as rich markup, where `[word]` is a style tag and `:name:` an
emoji code: `--schedule`'s `START:END:TAU` was shown as `START🔚TAU`. Rich has no escape for
emoji codes, but it looks for them one text run at a time, so an empty style span after a colon
that another colon follows splits every would-be code in two; brackets get rich's own escape.
"""

from __future__ import annotations

import re

from rich.markup import escape

_SPLIT = "[i][/i]"  # an empty span: renders as nothing
_CODE_START = re.compile(r":(?=\S*?:)")  # a colon that could open an emoji code (rich's regex)


def literal(text: str) -> str:
    """`text` as rich markup that renders as `text` itself."""
    return _CODE_START.sub(":" + _SPLIT, escape(text))
