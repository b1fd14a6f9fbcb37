"""Histograms of a cut stage's score, one panel per domain, to see where the cut falls.

A picture tells at a glance what the stats cannot: whether the cut sits in a tail or in the bulk,
and whether one domain is kept far more than another. The figure is drawn on a private
`Figure` with the Agg canvas (no pyplot, no global backend switch, safe in workers), with a
fixed size, DPI and bin edges shared by all panels, and without the PNG's Software stamp, so the
same scores give the same bytes.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siftline.selection.cut import ALL as CUT_ALL
from siftline.selection.cut import Cut

if TYPE_CHECKING:
    from matplotlib.axes import Axes

ALL = "all"  # default key of the all-domains panel in `scores` and `thresholds`
DPI = 100
BINS = 50
MAX_LABEL = 28
PANEL_INCHES = (4.0, 2.8)  # each panel's cell, margins included
MARGINS = {"left": 0.6, "right": 0.2, "top": 0.55, "bottom": 0.55, "wgap": 0.55, "hgap": 0.6}
BAR_COLOR = "#2b7bba"
CUT_COLOR = "#d62728"


def cut_histograms(cands: pa.Table, cut: Cut, xlabel: str) -> bytes:
    """PNG bytes of a decided cut over its candidates (`siftline.selection.cut.candidates`)."""
    scores = cands.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    by_domain = {CUT_ALL: scores[~np.isnan(scores)]}
    for name in sorted(set(cands.column("domain").to_pylist())):
        values = scores[pc.equal(cands.column("domain"), name).to_numpy(zero_copy_only=False)]
        by_domain[name] = values[~np.isnan(values)]
    title = f"{cut.rule.kind} = {cut.rule.amount:g}, keep the {cut.rule.keep}"
    return render_histograms(by_domain, _thresholds(cut, by_domain), title, all_key=CUT_ALL,
                             xlabel=xlabel, keep=cut.rule.keep)


def _thresholds(cut: Cut, panels: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Each panel's cut score: the last kept row's (one for all panels unless per domain)."""
    if not cut.rule.per_domain:
        last = cut.groups[CUT_ALL].last if CUT_ALL in cut.groups else None
        return {name: (None if last is None else last[0]) for name in panels}
    out: dict[str, float | None] = {CUT_ALL: None}
    for name in panels:
        group = cut.groups.get(name)
        if name != CUT_ALL:
            out[name] = None if group is None or group.last is None else group.last[0]
    return out


def render_histograms(scores: dict[str, np.ndarray], thresholds: dict[str, float | None],
                      title: str, *, all_key: str = ALL, xlabel: str = "score",
                      keep: str = "top") -> bytes:
    """PNG bytes: an "all domains" panel, then one per domain in sorted order, each a histogram
    of its scores with a vertical line at its threshold (rows scoring at or above it are kept;
    at or below with `keep="bottom"`) and the kept count and share in its title. A missing or
    None threshold draws no line.

    `scores[all_key]`, when present, is the all-domains panel as given; otherwise that panel
    concatenates the domains. `thresholds[all_key]` is its cut."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(scores, all_key)
    edges = _bin_edges([v for _, v in panels], [thresholds.get(name) for name, _ in panels])
    ncols = _columns(len(panels))
    nrows = math.ceil(len(panels) / ncols)
    size = (PANEL_INCHES[0] * ncols, PANEL_INCHES[1] * nrows + 0.5)
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=_spacing(size, nrows, ncols))
    for ax, (name, values) in zip(axes.ravel(), panels, strict=False):
        label = "all domains" if name == all_key else name
        _draw_panel(ax, label, values, thresholds.get(name), edges, keep)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title, y=1 - 0.12 / size[1], va="top")
    fig.supxlabel(f"{xlabel}; dashed: the cut", y=0.08 / size[1], va="bottom", fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _panels(scores: dict[str, np.ndarray], all_key: str) -> list[tuple[str, np.ndarray]]:
    """(all_key, every score) first, then each domain by name."""
    arrays = {name: np.asarray(values, dtype=np.float64).ravel()
              for name, values in scores.items()}
    given = arrays.pop(all_key, None)
    names = sorted(arrays)
    if given is None:
        given = np.concatenate([arrays[n] for n in names]) if names else np.zeros(0)
    return [(all_key, given)] + [(name, arrays[name]) for name in names]


def _columns(panels: int) -> int:
    """1 column for one panel, 2 up to 4, 3 up to 9, then 4 (13 panels: 4 x 4)."""
    if panels <= 1:
        return 1
    if panels <= 4:
        return 2
    return 3 if panels <= 9 else 4


def _spacing(size: tuple[float, float], nrows: int, ncols: int) -> dict[str, float]:
    """Fixed margins in inches as figure fractions: constrained layout would cost as much as
    the drawing itself, and the panel sizes are fixed anyway."""
    width, height = size
    axes_w = (width - MARGINS["left"] - MARGINS["right"] - (ncols - 1) * MARGINS["wgap"]) / ncols
    axes_h = (height - MARGINS["top"] - MARGINS["bottom"] - (nrows - 1) * MARGINS["hgap"]) / nrows
    return {"left": MARGINS["left"] / width, "right": 1 - MARGINS["right"] / width,
            "top": 1 - MARGINS["top"] / height, "bottom": MARGINS["bottom"] / height,
            "wspace": MARGINS["wgap"] / axes_w, "hspace": MARGINS["hgap"] / axes_h}


def _bin_edges(arrays: list[np.ndarray], cuts: list[float | None]) -> np.ndarray:
    """Edges shared by every panel, so bars compare across domains; thresholds stay in range."""
    finite = [a[np.isfinite(a)] for a in arrays]
    points = [float(a.min()) for a in finite if a.size] + [float(a.max()) for a in finite if a.size]
    points += [float(c) for c in cuts if c is not None and math.isfinite(c)]
    low, high = (min(points), max(points)) if points else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, BINS + 1)


def _draw_panel(ax: Axes, label: str, values: np.ndarray, cut: float | None,
                edges: np.ndarray, keep: str) -> None:
    finite = values[np.isfinite(values)]
    ax.set_title(_panel_title(label, values, cut, keep), fontsize=9)
    ax.tick_params(labelsize=7)
    ax.set_xlim(edges[0], edges[-1])
    if finite.size == 0:
        empty = "no finite score" if values.size else "no documents"
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    else:
        counts, _ = np.histogram(finite, bins=edges)
        ax.stairs(counts, edges, fill=True, color=BAR_COLOR)  # one patch, not one per bin
    if cut is not None and math.isfinite(cut):
        ax.axvline(cut, color=CUT_COLOR, linewidth=1.2, linestyle="--")


def _panel_title(label: str, values: np.ndarray, cut: float | None, keep: str) -> str:
    if len(label) > MAX_LABEL:  # a long domain name must not run into the next panel
        label = label[: MAX_LABEL - 1] + "…"
    n = int(values.size)
    if cut is None:
        return f"{label}: {n:,} docs"
    kept = int(np.count_nonzero(values >= cut if keep == "top" else values <= cut))
    share = kept / n if n else 0.0
    return f"{label}: kept {kept:,} of {n:,} ({share:.1%})"
