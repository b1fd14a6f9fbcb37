"""The compiled twins of two numba kernels (see their .c files). `optional`: without a C
compiler the install still succeeds, and the numba kernels serve."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("pipeline.io._jsonl_scan", ["pipeline/io/_jsonl_scan.c"], optional=True),
    Extension("pipeline.stages._whitespace", ["pipeline/stages/_whitespace.c"], optional=True),
])
