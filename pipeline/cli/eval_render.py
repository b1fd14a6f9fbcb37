"""Terminal table of an `eval-selection` report."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def eval_table(report: dict[str, Any]) -> Table:
    """Target loss per method and budget, with documents, epochs and the efficiency factor."""
    methods = report["methods"]
    budgets = next(iter(methods.values()))["budgets"]
    table = Table(title="Target loss (nats/token) after training on each selection")
    table.add_column("method")
    table.add_column("docs", justify="right")
    table.add_column("tokens", justify="right")
    for budget in budgets:
        table.add_column(f"{budget:,} tok", justify="right")
    has_accuracy = all("accuracy" in m for m in methods.values())
    if has_accuracy:
        table.add_column("accuracy (largest)", justify="right")
    table.add_column("efficiency vs random", justify="right")
    for name, method in methods.items():
        eff = method["efficiency"]
        mark = {"exact": "", "lower": " (at least)", "upper": " (at most)"}[eff["bound"]]
        factor = "1.00 (baseline)" if name == "random" else f"{eff['factor']:.2f}x{mark}"
        losses = [f"{loss:.4f} ({epochs:.1f} ep)" for loss, epochs in
                  zip(method["target_loss"], method["epochs"], strict=True)]
        extra = [f"{method['accuracy'][-1]:.3f}"] if has_accuracy else []
        table.add_row(name, f"{method['documents']:,}", f"{method['tokens']:,}", *losses, *extra,
                      factor)
    return table
