"""Report figures as self-contained data URIs (SVG, so they scale; images inside as PNG).

Built on matplotlib.figure.Figure directly (no pyplot state, no display). Every function takes
plain arrays or a `StoredResult` and returns a `data:image/svg+xml;base64,...` string to put in an
<img>, so figures need no file, no network and no script.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.figure import Figure

_BLUE, _GREY, _RED = "#1f5fa8", "#9a9a9a", "#b2182b"


def data_uri(fig: Figure) -> str:
    """The figure as an SVG data URI."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue().encode()).decode()


def _column(frame, name):
    return frame[name].to_numpy(dtype=float) if name in frame else np.full(len(frame), np.nan)


def _first(frame, name) -> float | None:
    values = _column(frame, name)
    values = values[np.isfinite(values)]
    return float(values[0]) if len(values) else None


def layer_profile(result) -> str:
    """Raw score per layer (all stimuli) with its CI band, the ceiling band between its lower and
    upper bounds, and the held-out headline of the selected layer marked with its own CI."""
    layers = result.layers
    x = np.arange(len(layers))
    raw, lo, hi = (_column(layers, c) for c in ("raw", "ci_low", "ci_high"))
    fig = Figure(figsize=(max(5.0, 0.45 * len(x) + 2), 3.4), layout="constrained")
    ax = fig.subplots()
    lower, upper = _first(layers, "ceiling"), _first(layers, "ceiling_upper")  # all stimuli, as the curve
    if lower is None:
        lower, upper = result.ceiling_bounds
    if lower is not None:
        top = upper if upper is not None else lower
        ax.axhspan(lower, top if top > lower else lower + 1e-3, color=_GREY, alpha=0.3,
                   label=f"ceiling [{lower:.3f}, {upper:.3f}]" if upper is not None else f"ceiling {lower:.3f}")
    if np.isfinite(lo).any():
        ax.fill_between(x, lo, hi, color=_BLUE, alpha=0.2, label="CI (all stimuli)")
    ax.plot(x, raw, "-o", color=_BLUE, ms=3, label="raw score (all stimuli)")
    head = result.headline
    names = list(layers["layer"])
    if head["layer"] in names:
        i = names.index(head["layer"])
        err = None
        if head.get("ci_low") is not None and np.isfinite([head["ci_low"], head["ci_high"]]).all():
            err = [[head["raw"] - head["ci_low"]], [head["ci_high"] - head["raw"]]]
        ax.errorbar([i + 0.15], [head["raw"]], yerr=err, fmt="D", color=_RED, ms=6, capsize=3,
                    label=f"headline {head['layer']} (held out)")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"raw ({head.get('metric') or 'score'})")
    ax.axhline(0, color="black", lw=0.5)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"{result.model_display} on {result.benchmark}", fontsize=9)
    return data_uri(fig)


def timecourse(course: dict, best_layer: str, title: str) -> str:
    """Score time courses (`provenance["timecourse"]`): every layer thin, the selected layer bold,
    its peak latency and the latency's CI where recorded."""
    times = np.asarray(course["times"], dtype=float) * 1000.0
    values = np.asarray(course["r"], dtype=float)
    layers = list(course["layers"])
    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, row in zip(layers, values):
        bold = name == best_layer
        ax.plot(times, row, lw=2.0 if bold else 0.7, color=_RED if bold else _GREY, label=name if bold else None)
    if best_layer in layers and "peak_latency" in course:
        i = layers.index(best_layer)
        peak = 1000.0 * float(course["peak_latency"][i])
        ax.axvline(peak, color=_RED, ls="--", lw=1, label=f"peak {peak:.0f} ms")
        if "peak_latency_ci" in course:
            a, b = (1000.0 * float(v) for v in course["peak_latency_ci"][i])
            if np.isfinite([a, b]).all():
                ax.axvspan(a, b, color=_RED, alpha=0.15, label=f"peak CI [{a:.0f}, {b:.0f}] ms")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("r")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return data_uri(fig)


def trajectory(steps, raw, lo, hi, xlabel: str, title: str) -> str:
    """Headline score against checkpoint step, with CIs."""
    steps, raw, lo, hi = (np.asarray(v, dtype=float) for v in (steps, raw, lo, hi))
    fig = Figure(figsize=(5.0, 3.0), layout="constrained")
    ax = fig.subplots()
    if np.isfinite(lo).any():
        ax.fill_between(steps, lo, hi, color=_BLUE, alpha=0.2, label="CI")
    ax.plot(steps, raw, "-o", color=_BLUE, ms=4, label="held-out headline")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("raw score")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return data_uri(fig)


def matrix_pair(left: np.ndarray, right: np.ndarray, titles: tuple[str, str], label: str) -> str:
    """Two square matrices side by side (e.g. model and brain RDMs), each on its own percentile
    scale (rank-based comparators look at order, not magnitude)."""
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, m, t in zip(axes, (left, right), titles):
        m = np.asarray(m, dtype=float)
        iu = np.triu_indices_from(m, 1)
        vals = m[iu]
        ranks = np.full_like(m, np.nan)
        order = vals.argsort().argsort() / max(1, len(vals) - 1) * 100.0
        ranks[iu] = order
        ranks.T[iu] = order
        im = ax.imshow(ranks, cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
        ax.set_title(t, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=label)
    return data_uri(fig)


def heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], title: str, label: str,
            xlabel: str, ylabel: str) -> str:
    """A labelled matrix (e.g. layer x layer CKA)."""
    m = np.asarray(matrix, dtype=float)
    fig = Figure(figsize=(1.6 + 0.4 * len(cols), 1.4 + 0.35 * len(rows)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(m, cmap="magma", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label=label)
    return data_uri(fig)


def comparison(names: list[str], scores, lo, hi, title: str, ylabel: str) -> str:
    """Scores of several models on one benchmark with CIs (bars)."""
    scores, lo, hi = (np.asarray(v, dtype=float) for v in (scores, lo, hi))
    fig = Figure(figsize=(1.5 + 0.9 * len(names), 3.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(names))
    ax.bar(x, scores, color=_BLUE, alpha=0.7)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(x[ok], scores[ok], yerr=[scores[ok] - lo[ok], hi[ok] - scores[ok]], fmt="none", color="black",
                capsize=4)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_title(title, fontsize=9)
    return data_uri(fig)
