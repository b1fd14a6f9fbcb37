"""Selection quality: train the same small LM on each selection and on random data, compare."""

from siftline.evaluation.efficiency import Efficiency, efficiency_factor
from siftline.evaluation.runner import evaluate_selection

__all__ = ["Efficiency", "efficiency_factor", "evaluate_selection"]
