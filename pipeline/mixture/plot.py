"""Each domain's sampling weight over training, as a step plot (one step per phase).

Drawn like `siftline.selection.plot`: a private `Figure` on the Agg canvas (no pyplot, no global
backend switch), fixed size and DPI, and no Software stamp, so the same weights give the same
PNG bytes.
"""

from __future__ import annotations

import io
from typing import Any

DPI = 100
SIZE = (7.5, 4.2)
MAX_LABEL = 24


def render_weights(doc: dict[str, Any]) -> bytes:
    """PNG bytes from a weights.json document: weight (y) against the fraction of training (x),
    one stepped line per domain, its epochs in the legend, phase boundaries dotted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    phases = doc["phases"]
    edges = [phases[0]["start"]] + [p["end"] for p in phases] if phases else [0.0, 1.0]
    fig = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.09, 0.13, 0.6, 0.76))
    names = list(doc["domains"])
    colors = _colors(len(names))
    top = 0.0
    for name, color in zip(names, colors, strict=True):
        values = [p["weights"].get(name, 0.0) for p in phases]
        top = max([top, *values])
        label = name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"
        epochs = doc["epochs"].get(name, 0.0)
        capped = ", capped" if name in doc.get("capped", []) else ""
        ax.stairs(values, edges, color=color, linewidth=2.0, baseline=None,
                  label=f"{label} ({epochs:.2f} ep{capped})")
    for edge in edges[1:-1]:
        ax.axvline(edge, color="#888888", linewidth=0.8, linestyle=":")
    for phase in phases:
        ax.text((phase["start"] + phase["end"]) / 2, 1.0, f"τ = {phase['tau']:g}",
                ha="center", va="bottom", fontsize=8, transform=ax.get_xaxis_transform())
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0.0, max(top * 1.08, 0.05))
    ax.set_xlabel("fraction of training", fontsize=9)
    ax.set_ylabel("sampling weight", fontsize=9)
    ax.tick_params(labelsize=8)
    if names:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                  title="domain (epochs)", title_fontsize=8)
    fig.suptitle(_title(doc), fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _title(doc: dict[str, Any]) -> str:
    capped = " (capped)" if doc.get("capped") else ""
    return (f"domain weights: {doc['total_tokens']:,} kept tokens, "
            f"budget {doc['train_tokens']:,}{capped}")


def _colors(n: int) -> list[str]:
    """tab10 then tab20 colours, cycled: stable for a given number of domains."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [_hex(cmap(i % cmap.N)) for i in range(n)]


def _hex(rgba: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])
