"""The evaluation plot: target loss against training tokens, one line per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DPI = 110


def render_curves(report: dict[str, Any], path: Path) -> None:
    """Write a PNG (log-scaled tokens); random is drawn dashed in black, the reference line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, method in report["methods"].items():
        style = {"color": "black", "linestyle": "--"} if name == "random" else {}
        factor = method["efficiency_factor"]
        label = name if name == "random" else f"{name} ({factor:.2f}x)"
        ax.plot(method["train_tokens"], method["target_loss"], marker="o", label=label, **style)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("target loss (nats / token)")
    ax.set_title("Target loss by selection method (efficiency factor vs random)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    tmp.replace(path)
