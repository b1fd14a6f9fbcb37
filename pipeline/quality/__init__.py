"""Text-quality measurements: the words and sentences the heuristic quality filters count."""
