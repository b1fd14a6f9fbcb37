"""Built-in demo corpus so siftline can run end to end on real text without downloads."""

from siftline.demo.corpus import build_demo_corpus

__all__ = ["build_demo_corpus"]
