"""One call for `neurobench topo --model M`: signatures of every sheet layer, figures, summary.

Glue between an Adapter (activations + `sheet_positions(layer)`) and the pure functions of this
package. Conv layers must be read out one value per channel (`adapter.with_readout(pool="mean")`)
so that units match the sheet's positions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, NoSheetPositionsError
from ._common import NO_POSITIONS_HINT, shuffled_positions
from .dimensionality import DimensionalityResult, effective_dimensionality
from .selectivity import SelectivityResult, selectivity
from .smoothness import SmoothnessResult, smoothness

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerSignatures:
    """All signatures of one layer, plus its shuffled-positions control."""

    layer: str
    smoothness: SmoothnessResult
    control: SmoothnessResult  # same units, shuffled positions
    selectivity: SelectivityResult | None
    dimensionality: DimensionalityResult

    def row(self) -> dict:
        """Flat scalars for a per-layer table (ScoreResult.layers, CSV, leaderboard)."""
        row = {"layer": self.layer, "smoothness": self.smoothness.score,
               "smoothness_p": self.smoothness.p_value,
               "smoothness_shuffled": self.control.score,
               "distance_correlation": self.smoothness.distance_correlation,
               "participation_ratio": self.dimensionality.participation_ratio,
               "pr_ci_low": self.dimensionality.ci_low, "pr_ci_high": self.dimensionality.ci_high,
               "n_units": self.smoothness.n_units, "n_constant": self.smoothness.n_constant}
        if self.selectivity is not None:
            for s in self.selectivity.summary():
                c = s["category"]
                row.update({f"{c}_selective_fraction": s["selective_fraction"],
                            f"{c}_n_clusters": s["n_clusters"],
                            f"{c}_largest_cluster": s["largest_cluster"],
                            f"{c}_morans_i": s["morans_i"], f"{c}_morans_i_p": s["morans_i_p"]})
        return row


def layer_signatures(responses, positions, labels=None, *, layer: str = "layer", categories=None,
                     threshold: float = 3.0, n_perm: int = 200, n_boot: int = 500, seed: int = 0,
                     device="cpu") -> LayerSignatures:
    """Smoothness (+ shuffled control), selectivity (when labels are given) and PR of one layer."""
    x = np.asarray(responses)
    if positions is None:
        raise NoSheetPositionsError(f"layer {layer!r} has no sheet positions. {NO_POSITIONS_HINT}")
    pos = np.asarray(positions)
    if pos.shape[0] != x.shape[1]:
        raise InvalidInputError(
            f"layer {layer!r}: {x.shape[1]} response units but {pos.shape[0]} sheet positions; "
            "read conv layers out one value per channel with adapter.with_readout(pool='mean')"
        )
    sm = smoothness(x, pos, n_perm=n_perm, seed=seed, device=device, layer=layer)
    ctl = smoothness(x, shuffled_positions(pos, seed), n_perm=n_perm, seed=seed, device=device,
                     layer=layer)
    sel = None
    if labels is not None:
        sel = selectivity(x, labels, pos, categories=categories, threshold=threshold,
                          n_perm=min(n_perm, 199), seed=seed, layer=layer)
    ed = effective_dimensionality(x, n_boot=n_boot, seed=seed, device=device)
    return LayerSignatures(layer, sm, ctl, sel, ed)


def _labels_from(stimuli, labels):
    if labels is None or not isinstance(labels, str):
        return labels
    table = getattr(stimuli, "labels", None)
    if table is None or labels not in table:
        known = list(table.columns) if table is not None else []
        raise InvalidInputError(f"stimulus set has no label column {labels!r}; columns: {known}")
    col = table[labels].to_numpy()
    if col.dtype == bool:  # a flag such as `face`: that category vs the rest
        col = np.where(col, labels, f"non-{labels}")
    return col


def topo_report(adapter, stimuli, out_dir, *, labels=None, layers=None, categories=None,
                threshold: float = 3.0, n_perm: int = 200, n_boot: int = 500, seed: int = 0,
                device="cpu", batch_size: int = 32) -> tuple[Path, list[LayerSignatures]]:
    """Signatures of every requested layer that has a sheet, figures and `summary.md` in out_dir.

    labels: an array (one per stimulus) or the name of a column of `stimuli.labels` (boolean
    columns become "<name>" vs "non-<name>"). Layers without positions are skipped and listed.
    """
    from .figures import plot_smoothness, plot_tmaps, write_summary

    out = Path(out_dir)
    lab = _labels_from(stimuli, labels)
    names = adapter.check_layers(layers)
    positions = {n: adapter.sheet_positions(n) for n in names}
    skipped = [n for n, p in positions.items() if p is None]
    names = [n for n in names if positions[n] is not None]
    if not names:
        raise NoSheetPositionsError(
            f"none of the layers {skipped} of {adapter.identifier} has sheet positions. "
            f"{NO_POSITIONS_HINT}"
        )
    acts = adapter.activations(stimuli, names, batch_size=batch_size, device=device)
    results, figures = [], []
    for n in names:
        sig = layer_signatures(np.asarray(acts[n]), positions[n], lab, layer=n, categories=categories,
                               threshold=threshold, n_perm=n_perm, n_boot=n_boot, seed=seed,
                               device=device)
        results.append(sig)
        safe = n.replace("/", "_").replace(".", "-")
        figures += plot_smoothness({n: sig.smoothness, f"{n} (shuffled)": sig.control},
                                   out / "figures" / f"smoothness_{safe}", title=n)
        if sig.selectivity is not None:
            figures += plot_tmaps(sig.selectivity.tmaps, positions[n],
                                  out / "figures" / f"tmaps_{safe}", threshold=threshold, title=n)
    notes = [f"Model `{adapter.display_name}`, {len(stimuli)} stimuli, seed {seed}."]
    if skipped:
        notes.append(f"Skipped (no sheet positions): {', '.join(skipped)}.")
    path = write_summary(
        out / "summary.md", title=f"Topographic signatures: {adapter.display_name}", notes=notes,
        smoothness={**{r.layer: r.smoothness for r in results},
                    **{f"{r.layer} (shuffled)": r.control for r in results}},
        selectivity={r.layer: r.selectivity for r in results if r.selectivity is not None},
        dimensionality={r.layer: r.dimensionality for r in results}, figures=figures)
    return path, results
