"""Terminal output: progress bars for the phases and summary tables for stats and manifests."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from siftline.progress import SilentReporter

# For a stats.json written before `phase_order`: the order phases run in, by name (`prepare X`
# and `cut X` by prefix; a shuffle is named after its stage, and any name not listed here runs
# between scoring and the cuts).
PHASE_ORDER = ("warm_up", "prepare ", "read+score", None, "cut ", "select+write", "weights")


class RichReporter(SilentReporter):
    """One bar per phase, drawn on stderr so `--json` output on stdout stays clean."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, name: str, total: int) -> None:
        self.task = self.progress.add_task(name, total=max(total, 1))

    def advance(self, done: int, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=done, total=max(total, 1))

    def message(self, text: str) -> None:
        self.console.print(text)


def stats_table(stats: dict[str, Any]) -> Table:
    table = Table(title="records by domain", show_footer=True)
    table.add_column("domain", footer="all")
    for name in ("input", "kept", "chars_in", "chars_kept"):
        total = sum(d[name] for d in stats["by_domain"].values())
        table.add_column(name, justify="right", footer=f"{total:,}")
    for domain, counts in stats["by_domain"].items():
        table.add_row(domain, *(f"{counts[k]:,}" for k in ("input", "kept", "chars_in",
                                                           "chars_kept")))
    return table


def accounting_line(stats: dict[str, Any]) -> str:
    dropped = sum(stats["dropped"].values())
    reasons = ", ".join(f"{k} {v:,}" for k, v in stats["dropped"].items()) or "none"
    ok = stats["input_records"] == stats["quarantined"] + stats["kept"] + dropped
    mark = "[green]holds[/green]" if ok else "[red]DOES NOT HOLD[/red]"
    return (
        f"input_records {stats['input_records']:,} = quarantined {stats['quarantined']:,}"
        f" + kept {stats['kept']:,} + dropped {dropped:,} ({reasons}): {mark}"
    )


def rejects_line(output: str, stats: dict[str, Any], inspect_hint: bool = True) -> str | None:
    """Where the quarantined records are, when there are any: a count alone sends the user
    looking."""
    if not stats.get("quarantined"):
        return None
    hint = f"; `siftline inspect {output}` shows examples" if inspect_hint else ""
    return (f"quarantined records are in {output.rstrip('/')}/rejects/ (JSON Lines: source, "
            f"position, error, raw){hint}")


def rejects_table(examples: list[dict[str, Any]], total: int) -> Table:
    """A few quarantined records: where each was and what was wrong with it."""
    table = Table(title=f"quarantined records ({len(examples)} of {total:,})")
    for name, justify in (("source", "left"), ("position", "right"), ("error", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for reject in examples:
        if "line" in reject:
            position = f"line {reject['line']:,}"
        elif "row" in reject:
            position = f"row {reject['row']:,}"
        else:
            position = f"byte {reject.get('byte_offset', 0):,}"
        table.add_row(Text(reject["source"]), position, Text(reject["error"]))  # not markup
    return table


def near_dedupe_line(stats: dict[str, Any]) -> str | None:
    """Near dedupe's candidate pairs, the edges verification kept, and its clusters."""
    near = stats.get("near_dedupe", {})
    if "candidate_pairs" not in near:
        return None
    return (f"near dedupe (verify {near['verify']}, threshold {near['threshold']:g}): "
            f"{near['candidate_pairs']:,} candidate pairs -> {near['verified_edges']:,} edges; "
            f"{near['clusters']:,} clusters of {near['clustered_documents']:,} documents, "
            f"the largest {near['largest_cluster']:,}")


def timings_table(stats: dict[str, Any], prefix: str = "") -> Table:
    """Wall time per phase in the order the phases ran (stats.json's `phase_order`: its keys
    are sorted); `prefix="select_"`: the last `siftline select`'s phases."""
    title = "wall time per phase" + (" (last select)" if prefix else "")
    table = Table(title=title, min_width=len(title) + 4)  # the title on one line
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    timings = stats.get(f"{prefix}wall_time_s", {})
    order = [name for name in stats.get(f"{prefix}phase_order", []) if name in timings]
    order += sorted((name for name in timings if name not in order), key=_phase_rank)
    for name in order:
        table.add_row(name, f"{timings[name]:.2f}")
    return table


def _phase_rank(name: str) -> int:
    for rank, start in enumerate(PHASE_ORDER):
        if start is not None and (name == start or start.endswith(" ") and name.startswith(start)):
            return rank
    return PHASE_ORDER.index(None)


def outputs_table(manifest: dict[str, Any]) -> Table:
    table = Table(title="outputs")
    for name in ("kind", "files", "rows", "bytes"):
        table.add_column(name, justify="left" if name == "kind" else "right")
    for kind in ("data", "scored"):
        files = manifest["outputs"][kind]
        table.add_row(kind, str(len(files)), f"{sum(f['rows'] for f in files):,}",
                      f"{sum(f['bytes'] for f in files):,}")
    table.add_row("rejects", str(len(manifest["outputs"]["rejects"])), "", "")
    return table


def inputs_table(manifest: dict[str, Any]) -> Table:
    table = Table(title="inputs")
    for name in ("uri", "format", "splits", "records", "quarantined", "status"):
        table.add_column(name, justify="left" if name in ("uri", "format", "status") else "right")
    for entry in manifest["inputs"]:
        table.add_row(entry["uri"], entry["format"], str(entry["splits"]),
                      f"{entry['records']:,}", f"{entry['quarantined']:,}", entry["status"])
    return table


def duplicates_table(examples: list[dict[str, Any]]) -> Table:
    table = Table(title="example near-duplicate pairs (dropped -> kept)", show_lines=True)
    for name in ("domain", "dropped", "kept"):
        table.add_column(name, overflow="fold")
    for ex in examples:
        table.add_row(ex["domain"], f"{ex['dropped_id']}\n{ex['dropped_text']}",
                      f"{ex['kept_id']}\n{ex['kept_text']}")
    if not examples:
        table.add_row("-", "no near duplicates (or near_dedupe was off)", "")
    return table


def rules_table(stats: dict[str, Any], examples: dict[str, dict[str, Any]]) -> Table:
    """Rows dropped by each rule of the rule stages, with one dropped document per rule."""
    table = Table(title="dropped by rule (the first rule each row fails)", show_lines=True)
    for name, justify in (("stage", "left"), ("rule", "left"), ("rows", "right"),
                          ("example", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for stage, rules in stats.get("dropped_by_rule", {}).items():
        for rule, count in rules.items():
            ex = examples.get(f"{stage}.{rule}")
            shown = f"{ex['id']}\n{ex['text']}" if ex else ""
            table.add_row(stage, rule, f"{count:,}", shown)
    return table
