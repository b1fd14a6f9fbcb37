"""Fused GPU kernels (Triton) and their torch references; populated by the LM loss engine."""
