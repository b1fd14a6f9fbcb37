"""Selection quality: train the same small LM on each selection and on random data, compare."""

from pipeline.evaluation.efficiency import Efficiency, efficiency_factor
from pipeline.evaluation.runner import evaluate_selection

__all__ = ["Efficiency", "efficiency_factor", "evaluate_selection"]
