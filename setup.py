"""Three compiled kernels (see their .c files): the JSON Lines parser, and the twins of two
numba kernels. `optional`: without a C compiler the install still succeeds, and pyarrow's JSON
reader and the numba kernels serve."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("pipeline.io._jsonl_scan", ["pipeline/io/_jsonl_scan.c"], optional=True),
    Extension("pipeline.io._jsonl_parse", ["pipeline/io/_jsonl_parse.c"], optional=True),
    Extension("pipeline.stages._whitespace", ["pipeline/stages/_whitespace.c"], optional=True),
])
