"""Terminal tables for domain weights (weights.json) and mixed shards (mix manifests)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _tokens(n: float) -> str:
    """1234567 -> '1.23M': budgets run to trillions, a table cell should not."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}"
    return f"{n:,.0f}"


def weights_table(doc: dict[str, Any]) -> Table:
    """One row per domain: kept tokens, share, the weight in each phase, tokens drawn, epochs."""
    phases = doc["phases"]
    title = (f"domain weights ({doc['counted_with']['method'].replace('_', ' ')}; "
             f"budget {_tokens(doc['train_tokens'])} tokens from {doc['train_tokens_from']})")
    table = Table(title=title, show_footer=True)
    table.add_column("domain", footer="all")
    table.add_column("tokens", justify="right", footer=_tokens(doc["total_tokens"]))
    table.add_column("share", justify="right", footer="100%" if doc["total_tokens"] else "-")
    for p in phases:
        table.add_column(f"{p['start']:g}-{p['end']:g} τ={p['tau']:g}", justify="right",
                         footer=_tokens(p["tokens"]))
    drawn = sum(d["drawn_tokens"] for d in doc["domains"].values())
    table.add_column("drawn", justify="right", footer=_tokens(drawn))
    table.add_column("epochs", justify="right")
    limit = doc.get("max_epochs", float("inf"))
    for name, d in doc["domains"].items():
        epochs = f"{d['epochs']:.2f}"
        if d["capped"]:
            epochs += " (capped)"
        elif d["epochs"] > limit:
            epochs = f"[red]{epochs}[/red]"
        table.add_row(name, _tokens(d["tokens"]), f"{d['share']:.1%}",
                      *(f"{p['weights'].get(name, 0.0):.3f}" for p in phases),
                      _tokens(d["drawn_tokens"]), epochs)
    return table


def warnings_text(doc: dict[str, Any]) -> list[str]:
    return [f"[yellow]warning:[/yellow] {w}" for w in doc.get("warnings", [])]


def mix_table(manifest: dict[str, Any]) -> Table:
    """One row per domain of a mixed phase: target vs drawn tokens and their share."""
    total = manifest["tokens"] or 1
    table = Table(title=f"mix/phase-{manifest['phase']} ({manifest['start']:g}-"
                  f"{manifest['end']:g}, τ={manifest['tau']:g}, seed {manifest['seed']}): "
                  f"{len(manifest['files'])} shard(s), {manifest['rows']:,} rows",
                  show_footer=True)
    footers = {"domain": "all", "share drawn": "1.000" if manifest["tokens"] else "-",
               "target": _tokens(manifest["target_tokens"]), "tokens": _tokens(manifest["tokens"]),
               "docs": f"{manifest['rows']:,}"}
    for name in ("domain", "weight", "share drawn", "target", "tokens", "docs", "unique",
                 "epochs"):
        table.add_column(name, justify="left" if name == "domain" else "right",
                         footer=footers.get(name, ""))
    for name, d in manifest["domains"].items():
        table.add_row(name, f"{manifest['weights'].get(name, 0.0):.3f}",
                      f"{d['tokens'] / total:.3f}", _tokens(d["target_tokens"]),
                      _tokens(d["tokens"]), f"{d['documents']:,}", f"{d['unique_documents']:,}",
                      f"{d['epochs']:.2f}")
    return table
