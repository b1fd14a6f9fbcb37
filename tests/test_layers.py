"""Imports point down the layers: every import of a siftline module is read (function-local ones
too), and an edge to a higher layer, a cycle, or an unlisted function-local import fails.

The order is the README's ("Layout of the code"), from the bottom:

  base        errors, documents, progress, sections, every config section and the config
              aggregate, the compiled-kernel loader, the executor contract
  io          storage, inputs (the demo corpus among them), readers, writers, the output
              layout, a finished run's files; kernels (torch only)
  algorithms  dedupe, lm, mixture, color's target text, preselect's pieces, language ID
  methods     what a stage prepares before scoring (color.prepare, preselect.build)
  stages      stage declarations and modules, the registry, selection and cuts
  executors   local and Ray
  job         the job's phases
  interfaces  cli, evaluation, the package's API
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"siftline": ROOT / "pipeline", "siftline.kernels": ROOT / "kernels"}

# (layer, module prefixes); the longest matching prefix decides a module's layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("siftline.errors", "siftline.documents", "siftline.progress", "siftline.sections",
              "siftline.config", "siftline.lm.config", "siftline.mixture.config",
              "siftline.preselect.config", "siftline.io.config", "siftline.color.config",
              "siftline.stages.config", "siftline.quality.config", "siftline.c_kernels",
              "siftline.executors.base")),
    ("io", ("siftline.io", "siftline.layout", "siftline.outputs", "siftline.kernels",
            "siftline.executors.allocator", "siftline.executors.memory", "siftline.demo")),
    ("algorithms", ("siftline.dedupe", "siftline.lm", "siftline.mixture", "siftline.color",
                    "siftline.preselect", "siftline.langid", "siftline.quality")),
    ("methods", ("siftline.color.prepare", "siftline.preselect.build")),
    ("stages", ("siftline.stages", "siftline.selection")),
    ("executors", ("siftline.executors",)),
    ("job", ("siftline.job",)),
    ("interfaces", ("siftline.cli", "siftline.evaluation", "siftline")),
]
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}

# Function-local imports of siftline modules, each with its reason: a heavy dependency that a
# caller may never need (torch, fastText, matplotlib, triton, transformers), or the CLI's
# start-up time. Keyed by the imported module (any importer) or by (importer, imported).
LAZY_TARGETS = {
    "siftline.lm.train": "torch",
    "siftline.lm.loop": "torch",
    "siftline.lm.train_state": "torch",
    "siftline.lm.data": "torch",
    "siftline.lm.scorer": "torch",
    "siftline.lm.checkpoint": "torch",
    "siftline.lm.model": "torch",
    "siftline.lm.hf": "torch and transformers",
    "siftline.lm.tokenizer": "tokenizers",
    "siftline.kernels.token_nll_triton": "triton",
    "siftline.kernels.token_nll_torch": "torch",
    "siftline.preselect.classifier": "fastText",
    "siftline.langid.model": "fastText",
    "siftline.preselect.fasttext_train": "fastText",
    "siftline.preselect.labels": "torch (scores documents under the reference LMs)",
    "siftline.preselect.evaluate": "torch",
    "siftline.selection.plot": "matplotlib",
    "siftline.mixture.plot": "matplotlib",
    "siftline.evaluation.plot": "matplotlib",
    "siftline.executors.ray_executor": "ray",
}
LAZY_IMPORTERS = {
    "siftline.cli": "start-up time: each command imports what it runs",
    "siftline": "the package's API imports the job when a job runs",
}


def module_name(path: Path) -> str:
    for root, folder in sorted(FOLDERS.items(), key=lambda kv: -len(str(kv[1]))):
        if path.is_relative_to(folder):
            parts = [*root.split("."), *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


def layer_of(module: str) -> str:
    best = max(((prefix, name) for name, prefixes in LAYERS for prefix in prefixes
                if module == prefix or module.startswith(prefix + ".")), key=lambda p: len(p[0]))
    return best[1]


def imports(path: Path, module: str, known: set[str]) -> list[tuple[str, bool, int]]:
    """(imported siftline module, function-local?, line) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local_nodes = {id(n) for fn in ast.walk(tree)
                   if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
                   for n in ast.walk(fn)}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                package = module.rsplit(".", node.level)[0]
                base = f"{package}.{node.module}"
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        for name in names:
            if name == "siftline" or name.startswith("siftline."):
                while name not in known and "." in name:
                    name = name.rsplit(".", 1)[0]
                found.append((name, id(node) in local_nodes, node.lineno))
    return found


def graph() -> dict[str, list[tuple[str, bool, int]]]:
    files = {module_name(p): p for folder in FOLDERS.values() for p in folder.rglob("*.py")}
    known = set(files)
    return {module: [(dep, local, line) for dep, local, line in imports(path, module, known)
                     if dep != module]
            for module, path in files.items()}


def upward_edges(edges: dict[str, list[tuple[str, bool, int]]]) -> list[str]:
    return [f"{src}:{line} ({layer_of(src)}) imports {dep} ({layer_of(dep)})"
            for src, deps in edges.items() for dep, _, line in deps
            if RANK[layer_of(dep)] > RANK[layer_of(src)]]


def cycles(edges: dict[str, list[tuple[str, bool, int]]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep, _, _ in edges.get(node, []):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def unlisted_lazy_imports(edges: dict[str, list[tuple[str, bool, int]]]) -> list[str]:
    def allowed(src: str, dep: str) -> bool:
        return dep in LAZY_TARGETS or any(src == p or src.startswith(p + ".")
                                          for p in LAZY_IMPORTERS if p != "siftline") or (
            src == "siftline")

    return [f"{src}:{line} imports {dep} inside a function"
            for src, deps in edges.items() for dep, local, line in deps
            if local and not allowed(src, dep)]


def test_every_module_has_a_layer() -> None:
    for module in graph():
        assert layer_of(module) in RANK


def test_imports_point_down_the_layers() -> None:
    assert upward_edges(graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_function_local_imports_are_the_listed_ones() -> None:
    assert unlisted_lazy_imports(graph()) == []


def test_the_check_sees_an_inverted_import() -> None:
    """An io module importing the job (a function-local import included) is caught."""
    edges = graph()
    edges["siftline.io.storage"] = [*edges["siftline.io.storage"], ("siftline.job.plan", True, 1)]
    assert upward_edges(edges) == [
        "siftline.io.storage:1 (io) imports siftline.job.plan (job)"]
    assert "siftline.io.storage:1 imports siftline.job.plan inside a function" in \
        unlisted_lazy_imports(edges)
    edges["siftline.job.plan"] = [*edges["siftline.job.plan"], ("siftline.io.storage", False, 1)]
    assert any({"siftline.io.storage", "siftline.job.plan"} <= set(c) for c in cycles(edges))
