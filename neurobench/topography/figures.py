"""Figures and a Markdown summary for topographic signatures (PNG + SVG, no display needed).

Figures are built on matplotlib.figure.Figure directly, so no pyplot state or GUI backend is
touched; this is the one module of the package that writes files on purpose.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..errors import InvalidInputError
from .dimensionality import DimensionalityResult
from .selectivity import SelectivityResult, TMaps
from .smoothness import SmoothnessResult
from .spatial import is_grid

log = logging.getLogger(__name__)

FORMATS = ("png", "svg")


def _save(fig: Figure, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in FORMATS:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150, bbox_inches="tight")
        out.append(path)
    log.info("wrote %s", ", ".join(str(p) for p in out))
    return out


def _raster(values: np.ndarray, pos: np.ndarray, valid: np.ndarray) -> np.ndarray:
    ip = pos.astype(np.int64) - pos.astype(np.int64).min(axis=0)
    img = np.full(tuple(ip.max(axis=0) + 1), np.nan)
    img[ip[valid, 0], ip[valid, 1]] = values[valid]
    return img


def plot_tmaps(tmaps: TMaps, positions, path_stem, *, threshold: float | None = 3.0,
               title: str | None = None, label: str = "t (category vs rest)") -> list[Path]:
    """One panel per category: t map on the sheet (red = prefers it), outline at t > threshold.

    Integer 2-D positions are drawn as an image of the sheet; other coordinates (voxels,
    vertices) as a scatter of their first two axes. Constant units are left blank.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape[0] != tmaps.t.shape[1]:
        raise InvalidInputError(f"{pos.shape[0]} positions for {tmaps.t.shape[1]} units")
    n = len(tmaps.categories)
    lim = float(np.nanpercentile(np.abs(tmaps.t[:, tmaps.valid]), 99)) or 1.0
    fig = Figure(figsize=(3.2 * n + 0.8, 3.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    im = None
    for ax, cat, t in zip(axes, tmaps.categories, tmaps.t, strict=True):
        if is_grid(pos):
            img = _raster(t, pos, tmaps.valid)
            cmap = "RdBu_r"
            im = ax.imshow(img, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
            if threshold is not None and np.nanmax(img) > threshold:
                ax.contour(np.nan_to_num(img, nan=-np.inf) > threshold, levels=[0.5],
                           colors="k", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            v = tmaps.valid
            im = ax.scatter(pos[v, 0], pos[v, 1] if pos.shape[1] > 1 else np.zeros(v.sum()),
                            c=t[v], cmap="RdBu_r", vmin=-lim, vmax=lim, s=8)
            ax.set_aspect("equal")
        ax.set_title(f"{cat}")
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=label)
    if title:
        fig.suptitle(title)
    return _save(fig, Path(path_stem))


def plot_smoothness(curves: Mapping[str, SmoothnessResult] | SmoothnessResult, path_stem, *,
                    title: str | None = None, distance_unit: str = "sheet units") -> list[Path]:
    """Tuning similarity vs distance, each curve with its shuffled-positions 95% band."""
    if isinstance(curves, SmoothnessResult):
        curves = {"layer": curves}
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.subplots()
    for k, (label, r) in enumerate(curves.items()):
        color = f"C{k}"
        ax.fill_between(r.bin_centers, r.null_low, r.null_high, color=color, alpha=0.18, lw=0)
        ax.plot(r.bin_centers, r.null_mean, color=color, ls="--", lw=0.8)
        ax.plot(r.bin_centers, r.similarity, color=color, marker="o", ms=3,
                label=f"{label} (near-far similarity {r.score:.2f})")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xlabel(f"distance ({distance_unit})")
    ax.set_ylabel("tuning similarity (Pearson r)")
    ax.legend(frameon=False, fontsize=8, title="shaded: shuffled positions, 95%",
              title_fontsize=7)
    if title:
        ax.set_title(title)
    return _save(fig, Path(path_stem))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v[:8]) + (" …" if len(v) > 8 else "")
    return str(v)


def markdown_table(rows: list[dict]) -> list[str]:
    """Rows of dicts as Markdown table lines (with a trailing blank line)."""
    if not rows:
        return []
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return lines + [""]


def write_summary(path, *, title: str = "Topographic signatures",
                  smoothness: Mapping[str, SmoothnessResult] | None = None,
                  selectivity: Mapping[str, SelectivityResult] | None = None,
                  dimensionality: Mapping[str, DimensionalityResult] | None = None,
                  figures: list | None = None, notes: list[str] | None = None) -> Path:
    """Markdown page: one table per signature (rows = layers or regions) and the figures."""
    path = Path(path)
    lines = [f"# {title}", ""]
    for note in notes or []:
        lines += [note, ""]
    if smoothness:
        lines += ["## Smoothness", "",
                  "Near-minus-far tuning similarity, centred on shuffled positions (0 = none).", ""]
        lines += markdown_table([{"layer": k, "near-far similarity": r.score, "z": r.z, "p": r.p_value,
                          "distance corr.": r.distance_correlation, "units": r.n_units,
                          "constant units": r.n_constant} for k, r in smoothness.items()])
    if selectivity:
        lines += ["## Category selectivity", ""]
        rows = []
        for k, res in selectivity.items():
            for s in res.summary():
                rows.append({"layer": k, **{c: v for c, v in s.items() if c != "n_selective"}})
        lines += markdown_table(rows)
        for k, res in selectivity.items():
            if res.similarity is not None:
                cats = [str(c) for c in res.tmaps.categories]
                lines += [f"t-map correlations, {k}:", ""]
                lines += markdown_table([{"": a, **{b: float(res.similarity[i, j]) for j, b in
                                            enumerate(cats)}} for i, a in enumerate(cats)])
    if dimensionality:
        lines += ["## Effective dimensionality", ""]
        lines += markdown_table([{"layer": k, "participation ratio": r.participation_ratio,
                          f"{int(r.ci_level * 100)}% CI": f"{r.ci_low:.3g} – {r.ci_high:.3g}",
                          "stimuli": r.n_stimuli, "units": r.n_units}
                         for k, r in dimensionality.items()])
    if figures:
        lines += ["## Figures", ""]
        for f in figures:
            f = Path(f)
            if f.suffix == ".png":
                rel = f.relative_to(path.parent) if f.is_relative_to(path.parent) else f
                lines += [f"![{f.stem}]({rel.as_posix()})", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    log.info("wrote %s", path)
    return path
