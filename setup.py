"""Packaging that pyproject.toml cannot say on its own.

Import names: the repository's folders `pipeline/` and `kernels/` install as the one import
package `siftline` and its subpackage `siftline.kernels`. Generic top-level names collide in
users' environments (Hugging Face's `kernels` is a dependency of `transformers` 5), so nothing
is installed under `pipeline` or `kernels`.

Three compiled kernels (see their .c files): the JSON Lines parser, and the twins of two numba
kernels. `optional`: without a C compiler the install still succeeds, and pyarrow's JSON reader
and the numba kernels serve."""

from setuptools import Extension, find_packages, setup

FOLDERS = {"siftline": "pipeline", "siftline.kernels": "kernels"}


def packages() -> list[str]:
    """Every package under each folder, named under its import root."""
    names = []
    for root, folder in FOLDERS.items():
        names += [root] + [f"{root}.{sub}" for sub in find_packages(folder)]
    return names


setup(
    package_dir=FOLDERS,
    packages=packages(),
    package_data={"siftline.langid": ["lid.176.ftz", "NOTICE"]},  # the bundled LID model
    ext_modules=[
        Extension("siftline.io._jsonl_scan", ["pipeline/io/_jsonl_scan.c"], optional=True),
        Extension("siftline.io._jsonl_parse", ["pipeline/io/_jsonl_parse.c"], optional=True),
        Extension("siftline.dedupe._whitespace", ["pipeline/dedupe/_whitespace.c"], optional=True),
    ],
)
