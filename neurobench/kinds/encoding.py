"""Encoding scores: per-layer cross-validated ridge against repeated-trial neural responses.

`score_encoding` is the numeric heart of an encoding benchmark: it checks that activations and
responses describe the same stimuli in the same order, averages responses over repetitions,
estimates the split-half ceiling, scores every layer with nested cross-validated ridge
(`metrics.ridge`, alphas relative to each layer's mean kernel eigenvalue unless an absolute grid
is given), and normalises per target (`metrics.ceiling`: sign(r) r^2 / reliability, median over
usable targets: the `explainable_variance_fraction` convention).  The headline layer is chosen by the inner cross-validation score
(computed on training stimuli only), never by held-out scores.  Held-out r per target correlates
every stimulus's out-of-fold prediction with its response, both centred within the outer fold
(pooled over folds, free of the fold-intercept bias of naive pooling); CIs are percentile
bootstraps over stimuli (seeded), resampling predictions, responses and the split-half ceiling
together, so they cover the uncertainty of generalising to new stimuli (interval `stimuli`).

Each layer's row counts the targets whose ridge alpha sits at the low / high end of the grid
(`alpha_at_min`, `alpha_at_max`); above 5% of the targets a warning is logged and a note added
to the result (`Scores.notes`): the grid, not the data, chose those alphas.

At the boundary: activations are checked (`check_activations`: one finite row per stimulus, at
least one unit), splits are put in the responses' order by stimulus id (`Splits.aligned_to`),
responses whose magnitude would overflow are rescaled by an exact power of two (r, ceilings and
normalised scores do not depend on it; `cv_score`, minus the inner-CV MSE, is then in the rescaled
units, as `provenance["response_rescaling"]` says), and when
no target can be scored (constant targets, unusable ceilings, constant predictions) the error
says which; a layer's NaN score always has a NaN interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ..conventions import EXPLAINABLE_VARIANCE_FRACTION, NO_INTERVAL, STIMULI
from ..data.assemblies import DIMS, align_to
from ..data.stimuli import StimulusSet
from ..devices import resolve_device
from ..errors import InvalidInputError
from ..ids import check_same_ids
from ..metrics.ceiling import (
    REPETITION_DIMS,
    median_scores,
    normalize_scores,
    split_half_reliability,
)
from ..metrics.correlation import weighted_pearson_columns
from ..metrics.inference import bootstrap_counts
from ..metrics.ridge import DEFAULT_RELATIVE_ALPHAS, EncodingResult, ridge_cv_multi
from ..metrics.scaling import max_abs, power_of_two_factor
from ..metrics.splits import Splits, kfold_splits
from ..options import int_at_least, non_negative_int, one_of, option, parse_floats, positive_floats
from ..result import Scores
from .base import Benchmark, check_activations
from .targets import layer_target_table

log = logging.getLogger(__name__)

__all__ = ["EncodingBenchmark", "EncodingOptions", "score_encoding", "ALPHA_EDGE_LIMIT"]

ALPHA_EDGE_LIMIT = 0.05  # share of targets at an end of the alpha grid above which a result says so


def _held_out_scores(pred: np.ndarray, data: np.ndarray, test_folds: list[np.ndarray], halves,
                     weights: np.ndarray, dev: torch.device, chunk_bytes: int = 256 * 2**20,
                     fixed_ceiling=None):
    """Per-target held-out r (fold-centred) and split-half reliability, for each weighting, on `dev`.

    Row 0 of `weights` is the plain sample; the other rows are bootstrap resamples of stimuli,
    expressed as multinomial weights, so every resample costs a few matrix products (chunked
    over targets) and the same resamples serve every layer. A `fixed_ceiling` (given by the
    dataset) is the same in every resample; otherwise the split-half reliability is resampled.
    """
    _n, _, t = data.shape
    w = torch.as_tensor(weights, dtype=torch.float64, device=dev)
    folds = [torch.as_tensor(f, device=dev) for f in test_folds]
    with np.errstate(all="ignore"):
        y = torch.as_tensor(np.nanmean(data, axis=1), dtype=torch.float64, device=dev)
    p = torch.as_tensor(pred, dtype=torch.float64, device=dev)
    chunk = max(1, chunk_bytes // (8 * w.shape[0] * 6))
    r_all = torch.empty(w.shape[0], t, dtype=torch.float64, device=dev)
    rel_all = torch.empty_like(r_all)
    for s0 in range(0, t, chunk):
        sl = slice(s0, s0 + chunk)
        if fixed_ceiling is not None:
            rel_all[:, sl] = torch.as_tensor(np.asarray(fixed_ceiling)[sl], dtype=torch.float64, device=dev)
        else:
            block = torch.as_tensor(data[:, :, sl], dtype=torch.float64, device=dev)
            rel = torch.zeros(w.shape[0], block.shape[2], dtype=torch.float64, device=dev)
            for a_idx, b_idx in halves:
                r_half = weighted_pearson_columns(w, block[:, a_idx].mean(1), block[:, b_idx].mean(1))
                rel += 2 * r_half / (1 + r_half)
            rel_all[:, sl] = rel / len(halves)
        r_all[:, sl] = weighted_pearson_columns(w, p[:, sl], y[:, sl], groups=folds)
    return r_all.cpu().numpy(), rel_all.cpu().numpy()


def alpha_edge_note(layer: str, res: EncodingResult) -> tuple[dict[str, int], str | None]:
    """The layer's counts of targets at the ends of the alpha grid, and a note (also logged as a
    warning) when more than ALPHA_EDGE_LIMIT of its non-constant targets sit at either end."""
    low, high = res.alpha_edges()
    n = int(res.r.size - res.n_constant)
    counts = {"alpha_at_min": low, "alpha_at_max": high}
    if n == 0 or (low + high) / n <= ALPHA_EDGE_LIMIT:
        return counts, None
    grid = res.alpha_grids
    note = (f"layer {layer}: {high} of {n} targets chose the largest ridge alpha and {low} the smallest "
            f"(grid {grid.min():.3g} to {grid.max():.3g}); their penalty is set by the grid, not the data: "
            "widen it (-o relative_alphas=logspace(lo,hi,n)) or reduce the layer")
    log.warning(note)
    return counts, note


def _external_ceiling(ceiling, n_targets: int, note: str | None):
    """A per-target ceiling in r^2 units given by the dataset (e.g. NSD's ncsnr-based NC)."""
    values = np.asarray(ceiling, dtype=np.float64).reshape(-1)
    if values.size != n_targets:
        raise InvalidInputError(f"{values.size} ceiling values for {n_targets} targets; give one per target")
    usable = np.isfinite(values) & (values > 0)
    median = float(np.median(values[usable])) if usable.any() else float("nan")
    record = {"kind": "given", "median": median, "n_unusable": int((~usable).sum()), "note": note or ""}
    return values, median, int((~usable).sum()), record


def _split_halves(reps: int, n_splits: int, seed: int):
    rng = np.random.default_rng(seed)
    return [(np.sort(pm[: reps // 2]), np.sort(pm[reps // 2:]))
            for pm in (rng.permutation(reps) for _ in range(n_splits))]


def score_encoding(
    activations: Mapping[str, Any],
    responses: Any,
    activation_ids: Sequence,
    response_ids: Sequence,
    *,
    splits: int | Splits = 5,
    inner_cv: int = 5,
    alphas: Sequence[float] | None = None,
    relative_alphas: Sequence[float] | None = None,
    n_ceiling_splits: int = 10,
    n_bootstrap: int = 1000,
    seed: int = 0,
    device: Any = "auto",
    dtype: str = "float32",
    memory_budget: int | None = None,
    reduction: str | None = None,
    ceiling: Any = None,
    ceiling_note: str | None = None,
    test_repetitions: Any = None,
    keep_layer_targets: bool = False,
) -> Scores:
    """Score layers against `responses` (presentations x repetitions x targets).

    Rows of every activation matrix must follow `activation_ids`; presentations of
    `responses` follow `response_ids`; both must be identical lists (AlignmentError otherwise).

    `splits`: an int (seeded k-fold grouped by stimulus) or a `Splits` (e.g. a dataset's fixed
    train/test split); held-out r, the ceiling and the bootstrap use the test rows only.
    `responses` may hold NaN for repetitions a presentation lacks (the response is the mean of
    those it has). `ceiling`: a per-target ceiling in r^2 units given by the dataset; it replaces
    the split-half reliability (then a single repetition is enough).
    `test_repetitions`: the repeated responses of the test rows (test rows in index order x
    repetitions x targets) when `responses` holds one (mean) response per row, e.g. training
    images shown once and test images shown twelve times, without padding every row to twelve.
    `keep_layer_targets`: also return every layer's per-target frame (`result.layer_targets`).
    `alphas`: an absolute ridge grid; None: `relative_alphas` (default DEFAULT_RELATIVE_ALPHAS)
    times each layer's mean kernel eigenvalue per outer fold (`metrics.ridge.scaled_alphas`).
    """
    check_same_ids(activation_ids, response_ids, "activations", "responses",
                   hint="extract activations for the benchmark's own stimulus set")
    check_activations(activations, activation_ids)
    from ..metrics.ceiling import as_repeated_array

    dev = resolve_device(device)  # once: the ridge and the bootstrap both run on it

    single = ceiling is not None or test_repetitions is not None
    if test_repetitions is not None and np.ndim(responses) == 2:
        responses = np.asarray(responses)[:, None, :]
    data, _ = as_repeated_array(responses, min_repetitions=1 if single else 2, allow_missing=True)
    if data.shape[0] != len(response_ids):
        raise InvalidInputError(f"{data.shape[0]} presentations but {len(response_ids)} ids")
    groups = np.asarray([str(i) for i in response_ids])
    if isinstance(splits, Splits):
        outer = splits.aligned_to(groups, "the responses")  # by stimulus id, never by position
    else:
        outer = kfold_splits(len(groups), int(splits), groups=groups, seed=seed)
    test_rows = np.unique(np.concatenate([np.asarray(te) for _tr, te in outer.folds]))
    test_folds = [np.searchsorted(test_rows, np.asarray(te)) for _tr, te in outer.folds]
    test_data = data[test_rows]
    if test_repetitions is not None:
        test_data, _ = as_repeated_array(test_repetitions, min_repetitions=1 if ceiling is not None else 2,
                                         allow_missing=True)
        if test_data.shape[0] != len(test_rows) or test_data.shape[2] != data.shape[2]:
            raise InvalidInputError(f"test_repetitions has shape {test_data.shape}; expected ({len(test_rows)} test "
                                    f"rows, repetitions, {data.shape[2]} targets)")
    y_factor = _safe_factor(data, test_data if test_repetitions is not None else None)
    if y_factor != 1.0:  # exact; r, ceilings and normalised scores do not depend on it
        data, test_data = data * y_factor, test_data * y_factor
    with np.errstate(all="ignore"):
        Y = np.nanmean(data, axis=1)
        if test_repetitions is not None:  # the test rows' responses are their repetitions' mean
            Y[test_rows] = np.nanmean(test_data, axis=1)
    n_test, reps, n_targets = test_data.shape
    if ceiling is not None:
        rel0, ceiling_median, n_unusable, ceiling_record = _external_ceiling(ceiling, n_targets, ceiling_note)
        halves = None
    else:
        if np.isnan(test_data).any():
            raise InvalidInputError("test presentations lack some repetitions (NaN): a split-half ceiling needs "
                                    "complete repetitions on the test stimuli; give the dataset's ceiling instead")
        est = split_half_reliability(test_data, n_splits=n_ceiling_splits, seed=seed)
        rel0, ceiling_median, n_unusable, ceiling_record = est.reliability, est.median, est.n_unusable, est.to_record()
        halves = _split_halves(reps, n_ceiling_splits, seed)  # the same halves as the point estimate

    def fit(name):  # one layer at a time: only one layer's out-of-fold predictions are ever held
        return ridge_cv_multi({name: activations[name]}, Y, outer, alphas, relative_alphas=relative_alphas,
                              inner_cv=inner_cv, groups=groups,
                              seed=seed, device=dev, dtype=dtype, memory_budget=memory_budget,
                              reduction=reduction, return_predictions=True)[name]

    what = (ceiling_note or "ceiling given by the dataset") if halves is None else (
        "split-half Spearman-Brown reliability per target")
    weights = bootstrap_counts(n_test, n_bootstrap, seed) / n_test  # as frequencies (r is the same up to rounding)
    rows, norm, pooled, boot, frames = [], {}, {}, {}, {}
    records, notes = {}, []
    for name in activations:
        res = fit(name)
        records[name] = (res.splits, res.record)
        r_w, rel_w = _held_out_scores(res.predictions[test_rows], test_data, test_folds, halves, weights,
                                      dev, fixed_ceiling=rel0 if halves is None else None)
        r = r_w[0]
        pooled[name] = r
        ns = normalize_scores(r, rel0)
        norm[name] = ns
        frames[name] = pd.DataFrame({"r": r, "r_fold_mean": res.r, "normalized": ns.per_target, "reliability": rel0,
                                     "usable": ns.usable, "alpha": np.median(res.alphas, axis=0)})
        usable_r = r[ns.usable]
        raw = float(np.median(usable_r)) if usable_r.size else float("nan")
        lo = hi = nlo = nhi = float("nan")
        edges, note = alpha_edge_note(name, res)
        if note:
            notes.append(note)
        if n_bootstrap > 0 and usable_r.size:  # a score that is not defined has no interval
            braw, bnorm = median_scores(r_w[1:], rel_w[1:])
            boot[name] = {"raw": braw, "normalized": bnorm}
            lo, hi = np.nanpercentile(braw, [2.5, 97.5])
            nlo, nhi = np.nanpercentile(bnorm, [2.5, 97.5])
        rows.append({"layer": name, "raw": raw, "ci_low": float(lo), "ci_high": float(hi),
                     "ceiling": ceiling_median, "normalized": ns.score,
                     "normalized_ci_low": float(nlo), "normalized_ci_high": float(nhi),
                     "cv_score": _cv_score(res.cv_scores), "n_targets": int(r.size),
                     "n_used": int(ns.usable.sum()), "n_constant": res.n_constant, **edges})
    table = pd.DataFrame(rows)
    _check_scorable(table, norm, activations, n_targets, n_unusable, what)
    best = str(table.loc[table["cv_score"].idxmax(), "layer"])
    b = table[table["layer"] == best].iloc[0]
    return Scores(
        layers=table, best_layer=best, raw=float(b["raw"]), ci_low=float(b["ci_low"]),
        ci_high=float(b["ci_high"]), ceiling=ceiling_median, normalized=float(b["normalized"]),
        selection=("layer with the best inner-CV score (median over targets of minus the "
                   "validation MSE, on training stimuli only); scores are held-out"
                   + (f" on the {n_test} test stimuli of the dataset's split" if outer.kind == "fixed" else "")),
        ceiling_note=(f"{what}; normalised = median of sign(r) r^2 / ceiling; {n_unusable} targets with unusable "
                      "ceilings excluded and counted"),
        metric="ridge-encoding", normalization=EXPLAINABLE_VARIANCE_FRACTION,
        interval=STIMULI if n_bootstrap > 0 else NO_INTERVAL, notes=notes,
        per_target=frames[best],
        provenance={"splits": records[best][0].to_record() if len(Y) <= 5000 else
                    {"kind": records[best][0].kind, "seed": records[best][0].seed},
                    "ridge": records[best][1], "ceiling": ceiling_record,
                    "alpha_grids": {name: rec["alpha_grid"]["absolute_per_fold"] for name, (_s, rec) in records.items()},
                    "normalized_ci": [float(b["normalized_ci_low"]), float(b["normalized_ci_high"])],
                    "n_bootstrap": n_bootstrap, "n_test_stimuli": int(n_test),
                    **({"response_rescaling": f"responses multiplied by 2^{int(np.log2(y_factor))} (exact) against "
                                              "overflow; cv_score is in these units"} if y_factor != 1.0 else {})},
        bootstrap=boot or None,
        layer_targets=frames if keep_layer_targets else None,
    )


def _safe_factor(data: np.ndarray, extra: np.ndarray | None) -> float:
    """The exact power of two that brings responses of overflowing magnitude into range (1.0: none)."""
    with np.errstate(all="ignore"):
        largest = max(_nan_max_abs(data), _nan_max_abs(extra) if extra is not None else 0.0)
    return power_of_two_factor(largest)


def _nan_max_abs(a: np.ndarray) -> float:
    finite = np.isfinite(a)
    return max_abs(a[finite]) if not finite.all() else max_abs(a)


def _cv_score(cv_scores: np.ndarray) -> float:
    """Median over targets of the inner-CV score (minus the MSE)."""
    finite = np.isfinite(cv_scores)
    return float(np.median(cv_scores[finite])) if finite.any() else float("nan")


def _check_scorable(table: pd.DataFrame, norm: dict, activations, n_targets: int, n_unusable: int,
                    ceiling: str) -> None:
    """InvalidInputError, saying why, when no layer has a single target it can score."""
    if np.isfinite(table["raw"].to_numpy(dtype=float)).any() and np.isfinite(table["cv_score"].to_numpy(float)).any():
        return
    first = next(iter(norm.values()))
    if n_unusable == n_targets:
        why = (f"none of the {n_targets} targets has a usable ceiling ({ceiling} <= 0 or undefined: constant or "
               "pure-noise responses); check the responses, or give the dataset's ceiling")
    elif first.n_undefined_r == n_targets:
        why = (f"the held-out correlation is undefined for every target of every layer ({', '.join(activations)}): "
               "the layers' predictions are constant (constant activations, or activations so small against the "
               "ridge penalties that the fit predicts the mean; rescale them or give smaller alphas) or the "
               "responses are constant over stimuli")
    else:
        why = "no target has both a usable ceiling and a defined held-out correlation in any layer"
    raise InvalidInputError(f"nothing to score: {why}")


def _splits(value):
    if isinstance(value, Splits):
        if value.ids is None:
            raise ValueError("a Splits without stimulus ids is positional, and the benchmark's rows follow its "
                             "stimulus set, not the assembly: build it with its ids (fixed_split(ids=..., "
                             "train_ids=...), or fixed_split(mask, ids=assembly.stimulus_id.values))")
        return value
    return int_at_least(2)(value)


def _inner_cv(value):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int_at_least(2)(value)
    return value  # explicit folds (a Splits, or one per outer fold) from a dataset declaration


REDUCTIONS = one_of(None, "srp", "pca", "none")

def check_assembly(assembly, what: str = "responses") -> xr.DataArray:
    """An encoding assembly as `EncodingBenchmark` reads it: an xarray DataArray with 3 dims,
    'presentation' (with a `stimulus_id` coordinate), a repetition dim and the neuroids (see
    `data.assemblies.DIMS`); InvalidInputError naming what is missing otherwise."""
    expected = (f"an xarray.DataArray with dims {DIMS} and a 'stimulus_id' coordinate on 'presentation' "
                "(neurobench.data.assemblies.repeated_assembly(values, stimulus_ids) makes one)")
    if not isinstance(assembly, xr.DataArray):
        shape = getattr(assembly, "shape", None)
        raise InvalidInputError(f"{what}: got {type(assembly).__name__}" + (f" of shape {tuple(shape)}" if shape else "")
                                + f"; expected {expected}, so that responses are matched to stimuli by id")
    if assembly.ndim != 3 or "presentation" not in assembly.dims or not set(assembly.dims) & set(REPETITION_DIMS):
        raise InvalidInputError(f"{what}: dims {tuple(assembly.dims)}; expected {expected}")
    coord = assembly.coords.get("stimulus_id")
    if coord is None or coord.dims != ("presentation",):
        raise InvalidInputError(f"{what}: no 'stimulus_id' coordinate along 'presentation'; expected {expected}")
    if not np.issubdtype(assembly.dtype, np.number):
        raise InvalidInputError(f"{what}: values of dtype {assembly.dtype}; expected numbers")
    return assembly


class EncodingOptions:
    """The options of the encoding kinds (a mixin: `EncodingBenchmark`, `PerSubjectEncodingBenchmark`).

    Parameters
    ----------
    splits : int or Splits
        Outer cross-validation: k seeded folds grouped by stimulus, or a dataset's fixed split
        (`fixed_split`); scores are held out on the test rows.
    inner_cv : int
        Inner folds (on each outer training set) that choose every target's ridge alpha and the
        headline layer.
    alphas : list of float or None
        An absolute ridge penalty grid, used as given for every layer (command line:
        comma-separated, or logspace(lo,hi,n)); None: the relative grid below.
    relative_alphas : list of float
        The ridge penalty grid in units of each layer's mean kernel eigenvalue, trace(Xc Xc^T) / n
        of each outer training set (the summed feature variance), so wide and narrow layers get
        comparable penalties (docs/ridge.md); used when `alphas` is None.
    n_bootstrap : int
        Bootstrap resamples for the 95% confidence intervals (0: none): over stimuli for one
        subject; combined over >= 2 subjects, over subjects and stimuli (Schütt et al. 2023
        corrected variance; docs/conventions.md).
    reduction : {None, 'srp', 'pca'}
        Shrink wide layers before the ridge: sparse random projection to the
        Johnson-Lindenstrauss dimension, or PCA fitted on each outer fold's training rows.
    dtype : {'float32', 'float64'}
        Precision of the ridge (float64 for validation against references).
    """

    splits = option(5, _splits)
    inner_cv = option(5, _inner_cv)
    alphas = option(None, positive_floats, parse=parse_floats, nullable=True)
    relative_alphas = option(DEFAULT_RELATIVE_ALPHAS, positive_floats)
    n_bootstrap = option(1000, non_negative_int)
    reduction = option(None, REDUCTIONS)
    dtype = option("float32", one_of("float32", "float64"))
    metric = "ridge-encoding"

    def encoding_options(self) -> dict:
        """The keyword arguments of `score_encoding` that come from this kind's options (all but
        the outer splits, which a per-subject dataset may define itself)."""
        return {"inner_cv": self.inner_cv, "alphas": self.alphas, "n_bootstrap": self.n_bootstrap,
                "relative_alphas": None if self.alphas is not None else self.relative_alphas,
                "dtype": self.dtype, "reduction": None if self.reduction == "none" else self.reduction}


class EncodingBenchmark(EncodingOptions, Benchmark):
    """Stimuli + a (presentation x repetition x neuroid) assembly, scored with `score_encoding`.

    Folds are grouped by stimulus and seeded; the layer is chosen by inner cross-validation on
    training stimuli only; scores are normalised per target by the split-half Spearman-Brown
    reliability (sign(r) r^2 / reliability, median over targets with a usable ceiling:
    `explainable_variance_fraction`).
    """

    def __init__(self, identifier: str, description: str, datasets: tuple[str, ...],
                 load_stimuli: Callable[[], StimulusSet], load_assembly: Callable[[], xr.DataArray],
                 **options):
        self.identifier, self.description, self.datasets = identifier, description, datasets
        self._load_stimuli, self._load_assembly = load_stimuli, load_assembly
        self._stimuli: StimulusSet | None = None
        self.configure(**options)

    def assembly(self) -> xr.DataArray:
        """The responses, checked (`check_assembly`) and reordered to the stimulus set's ids."""
        assembly = check_assembly(self._load_assembly(), f"{self.identifier} responses")
        return align_to(assembly, self.stimuli().ids, what=f"{self.identifier} responses")

    def check_data(self) -> None:
        self.assembly()

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        ids = self.stimuli().ids
        result = score_encoding(activations, self.assembly(), ids, ids, splits=self.splits, seed=seed,
                                device=device, memory_budget=memory_budget, keep_layer_targets=True,
                                **self.encoding_options())
        result.provenance["reduction"] = self.reduction
        result.targets, result.layer_targets = layer_target_table(result.layer_targets), None
        return result
