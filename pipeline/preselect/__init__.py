"""PreSelect: predictive-strength labels, a fastText scorer trained on them, and selection.

`predictive_strength` is the paper's S(doc); `labels` runs the reference models over a labelling
sample; `fasttext_train` trains the classifier; `evaluate` measures downstream scores of small LMs
for the offline path (`siftline.preselect.build` builds everything at the start of a run).
"""

from siftline.preselect.strength import choose_labels, predictive_strength

__all__ = ["choose_labels", "predictive_strength"]
