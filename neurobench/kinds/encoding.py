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

import contextlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ..conventions import EXPLAINABLE_VARIANCE_FRACTION, NO_INTERVAL, STIMULI
from ..data.assemblies import DIMS, align_to
from ..data.stimuli import StimulusSet
from ..devices import available_memory_bytes, resolve_device
from ..errors import InvalidInputError
from ..ids import check_same_ids
from ..memory import bound_heap, trim_heap
from ..metrics.ceiling import (
    REPETITION_DIMS,
    Ceiling,
    median_scores,
    normalize_scores,
)
from ..metrics.correlation import weighted_pearson_columns
from ..metrics.inference import bootstrap_counts
from ..metrics.ridge import (
    DEFAULT_RELATIVE_ALPHAS,
    EncodingResult,
    Targets,
    inner_folds,
    ridge_cv_multi,
)
from ..metrics.scaling import max_abs, power_of_two_factor
from ..metrics.splits import Splits, kfold_splits
from ..options import int_at_least, non_negative_int, one_of, option, parse_floats, positive_floats
from ..progress import progress_bar
from ..result import Scores
from .base import Benchmark, check_activations
from .columns import ColumnStore
from .targets import layer_target_table

log = logging.getLogger(__name__)

__all__ = ["EncodingBenchmark", "EncodingOptions", "score_encoding", "ALPHA_EDGE_LIMIT"]

ALPHA_EDGE_LIMIT = 0.05  # share of targets at an end of the alpha grid above which a result says so


def _bootstrap_reliability(block: torch.Tensor, halves, w: torch.Tensor) -> torch.Tensor:
    """(B+1, c) split-half Spearman-Brown reliability of a (test rows x repetitions x c) block under
    each row of bootstrap weights `w` (row 0: the plain sample), averaged over the same halves as
    the point estimate."""
    rel = torch.zeros(w.shape[0], block.shape[2], dtype=torch.float64, device=block.device)
    for a_idx, b_idx in halves:
        r_half = weighted_pearson_columns(w, block[:, a_idx].mean(1), block[:, b_idx].mean(1))
        rel += 2 * r_half / (1 + r_half)
    return rel / len(halves)


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


def _medians(r: np.ndarray, rel: np.ndarray, rows: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """`median_scores` of (B, t) bootstrap r against (B, t) or (t,) ceilings, `rows` resamples at
    a time in float64, so no (resamples x targets) float64 copy is made."""
    raw_out, norm_out = np.empty(len(r)), np.empty(len(r))
    for s0 in range(0, len(r), rows):
        rr = np.asarray(r[s0:s0 + rows], dtype=np.float64)
        ll = np.asarray(rel[s0:s0 + rows] if rel.ndim == 2 else np.broadcast_to(rel, rr.shape), dtype=np.float64)
        raw_out[s0:s0 + rows], norm_out[s0:s0 + rows] = median_scores(rr, ll)
    return raw_out, norm_out


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


def _chunks(t: int, width: int):
    for s0 in range(0, t, max(1, int(width))):
        yield slice(s0, min(t, s0 + max(1, int(width))))


_SCAN_BYTES = 64 * 2**20  # a block of responses read to find their largest magnitude


class _Responses:
    """The responses of a score, read a block of targets at a time.

    `responses`: (presentations x repetitions x targets), NaN for a repetition a presentation
    lacks, as an ndarray, an xarray DataArray, or any array-like sliced as `a[:, :, a:b]` (a
    memory map, an HDF5 dataset) that is never read whole; or (presentations x targets) when one
    response per presentation is enough (a given ceiling, or `test_repetitions`). Each block is
    checked as `metrics.ceiling.as_repeated_array` checks a whole array.
    """

    def __init__(self, responses, test_repetitions, single: bool, n_ids: int, test_rows: np.ndarray | None = None):
        from ..metrics.ceiling import as_repeated_array

        self._check = as_repeated_array
        self.min_reps = 1 if single else 2
        self.meta: dict = {}
        if hasattr(responses, "dims") and hasattr(responses, "transpose"):  # xarray: in memory already
            responses, self.meta = as_repeated_array(responses, min_repetitions=self.min_reps, allow_missing=True)
        shape = tuple(responses.shape) if hasattr(responses, "shape") else np.shape(responses)
        if not hasattr(responses, "shape"):
            responses = np.asarray(responses)
        if single and len(shape) == 2:  # one response per presentation is enough
            self.two_d = True
        elif len(shape) != 3:
            raise InvalidInputError(f"repeated data must be (presentations x repetitions x targets), got shape {shape}")
        else:
            self.two_d = False
        self.data, self.test_repetitions = responses, test_repetitions
        self.n, self.t = int(shape[0]), int(shape[-1])
        if self.n != n_ids:
            raise InvalidInputError(f"{self.n} presentations but {n_ids} ids")
        self.reps = 1 if self.two_d else int(shape[1])
        self.itemsize = int(getattr(responses, "dtype", np.dtype(np.float64)).itemsize)

    factor = 1.0  # the exact power of two every block is multiplied by (`rescale_if_needed`)

    def rescale_if_needed(self) -> float:
        """One read pass: the exact power of two that brings responses of overflowing magnitude
        into range (1.0: none), applied to every block read from then on."""
        width = max(1, _SCAN_BYTES // max(1, self.n * self.reps * self.itemsize))
        largest = 0.0
        with np.errstate(all="ignore"):
            for sl in _chunks(self.t, width):
                largest = max(largest, _nan_max_abs(self.block(sl)))
                if self.test_repetitions is not None:
                    largest = max(largest, _nan_max_abs(self.test_block(sl, None, 1)))
        self.factor = power_of_two_factor(largest)
        return self.factor

    def block(self, sl: slice) -> np.ndarray:
        """(presentations x repetitions x c), checked."""
        raw = np.asarray(self.data[:, sl] if self.two_d else self.data[:, :, sl])
        if self.two_d:
            raw = raw[:, None, :]
        arr, _ = self._check(raw, min_repetitions=self.min_reps, allow_missing=True)
        return arr * self.factor if self.factor != 1.0 else arr

    def test_block(self, sl: slice, test_rows: np.ndarray, min_reps: int) -> np.ndarray:
        """(test rows x repetitions x c): `test_repetitions`, or the test rows of the responses."""
        if self.test_repetitions is None:
            raw = self.block(sl)[test_rows]
        else:
            raw = np.asarray(self.test_repetitions[:, :, sl])
        arr, _ = self._check(raw, min_repetitions=min_reps, allow_missing=True)
        return arr * self.factor if self.factor != 1.0 and self.test_repetitions is not None else arr


def _ceiling_pieces(block: np.ndarray, n_splits: int, seed: int):
    """Split-half reliability of one block of targets, as `split_half_reliability` computes it
    for the whole array (the halves depend only on the seed), without its per-call warning."""
    from ..metrics.ceiling import split_half_reliability

    quiet = logging.getLogger("neurobench.metrics.ceiling")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        est = split_half_reliability(block, n_splits=n_splits, seed=seed)
    finally:
        quiet.setLevel(level)
    return est.reliability, est.half_r


class _Plan:
    """How a score fits its memory budget: what is held, what is spilled to disk, block widths.

    Fixed, whatever the block width: the bootstrap matrices (resamples x targets, for r and the
    resampled reliability), per-target tables, and the largest layer with its checks. The ridge
    then gets the rest (`ridge_budget`). The responses' means and each fold's held-out
    predictions are held in memory when they fit beside that, else spilled to files read a block
    at a time. A budget below `minimum` (everything spilled, one target at a time) is refused with
    MemoryBudgetError naming it (rounded up: that figure then works). The plan spends
    `PLANNED_FRACTION` of the budget; the rest is headroom for what it does not count (Python
    objects, result tables, allocator slack).
    """

    PLANNED_FRACTION = 0.8

    def __init__(self, budget: int, n: int, t: int, n_test: int, reps: int, widths: dict[str, int], outer, inner,
                 n_alphas: int, n_boot: int, split_half: bool, dtype: str, reduction: str | None, itemsize: int,
                 response_reps: int | None = None):
        from ..metrics.ridge import check_budget, ridge_min_bytes

        boot_isz = isz = 8 if dtype == "float64" else 4
        self.fixed = (boot_isz * n_boot * t * (2 if split_half else 1)  # bootstrap r (and reliability)
                      + 8 * t * (16 + 4 * len(outer)))  # per-target tables, fold arrays
        p = max(widths.values()) if widths else 1
        x_extra = 2 * n * p + (8 * n * p if reduction in ("srp", "pca") else 0)  # finite checks; reduced copies
        ridge_need = max(ridge_min_bytes(n, w, outer, inner, n_alphas, dtype, n_targets=t)
                         for w in (widths.values() or [1]))
        self.per_target = max(
            8 * (6 * (n_boot + 1) + 6 * n_test) + 4 * (n + n_test),  # held-out r under every resample
            n_test * reps * (itemsize + 8 + 2) + 8 * 8 * (n_boot + 1),  # a block of the ceiling
            n * (response_reps or reps) * (itemsize + 8 + 2) + 12 * n)  # a block of the responses' means
        need = self.fixed + max(ridge_need + x_extra, self.per_target + 8 * n * p)  # all spilled, one target
        self.minimum = math.ceil(need / self.PLANNED_FRACTION)
        check_budget(self.minimum, budget, f"this score ({n} stimuli, {t} targets, widest layer {p} units, "
                                           f"{n_boot} bootstrap resamples)")
        budget = math.floor(budget * self.PLANNED_FRACTION)  # >= need
        y_bytes, pred_bytes = isz * n * t, isz * n_test * t
        self.spill_y = need + y_bytes > budget
        self.spill_preds = need + (0 if self.spill_y else y_bytes) + pred_bytes > budget
        held = (0 if self.spill_y else y_bytes) + (0 if self.spill_preds else pred_bytes)
        self.ridge_budget = budget - self.fixed - held
        self.width = max(1, min(t, 4096, (self.ridge_budget - 8 * n * p) // self.per_target))

    def record(self, budget: int) -> dict:
        return {"budget_bytes": int(budget), "minimum_bytes": int(self.minimum), "responses": "spilled to disk"
                if self.spill_y else "in memory", "predictions": "spilled to disk" if self.spill_preds else "in memory",
                "target_block": int(self.width)}


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

    At dataset scale everything goes a block of targets at a time under `memory_budget` (bytes;
    None: half the free memory): responses (and activations given as lazily-read arrays) are
    read in blocks, the responses' means and the held-out predictions are spilled to disk when
    they do not fit (`_Plan`), the ceiling, the ridge, the held-out r and the bootstrap are
    computed block by block, and the targets are read and checked once for all layers. What the
    plan chose is in `provenance["memory"]`. Responses of a magnitude that would overflow are
    multiplied by an exact power of two first (`provenance["response_rescaling"]`).
    """
    check_same_ids(activation_ids, response_ids, "activations", "responses",
                   hint="extract activations for the benchmark's own stimulus set")
    check_activations(activations, activation_ids)
    dev = resolve_device(device)  # once: the ridge and the bootstrap both run on it
    if memory_budget is not None:
        bound_heap()  # freed buffers go back to the system, so the budget bounds resident memory
    single = ceiling is not None or test_repetitions is not None
    src = _Responses(responses, test_repetitions, single, len(response_ids))
    groups = np.asarray([str(i) for i in response_ids])
    if isinstance(splits, Splits):
        outer = splits.aligned_to(groups, "the responses")  # by stimulus id, never by position
    else:
        outer = kfold_splits(len(groups), int(splits), groups=groups, seed=seed)
    test_rows = np.unique(np.concatenate([np.asarray(te) for _tr, te in outer.folds]))
    test_folds = [np.searchsorted(test_rows, np.asarray(te)) for _tr, te in outer.folds]
    n_test, n_targets = len(test_rows), src.t
    if test_repetitions is not None:
        shape = tuple(np.shape(test_repetitions)) if not hasattr(test_repetitions, "shape") else \
            tuple(test_repetitions.shape)
        if len(shape) != 3 or shape[0] != n_test or shape[2] != n_targets:
            raise InvalidInputError(f"test_repetitions has shape {shape}; expected ({n_test} test "
                                    f"rows, repetitions, {n_targets} targets)")
        reps = int(shape[1])
    else:
        reps = src.reps
    y_factor = src.rescale_if_needed()  # exact; r, ceilings and normalised scores do not depend on it
    inner_per_fold = inner_folds(inner_cv, outer, groups, seed)
    widths = {name: int(np.shape(a)[1]) if not hasattr(a, "shape") else int(a.shape[1])
              for name, a in activations.items()}
    n_alphas = len(alphas if alphas is not None else
                   relative_alphas if relative_alphas is not None else DEFAULT_RELATIVE_ALPHAS)
    budget = int(memory_budget) if memory_budget is not None else int(0.5 * available_memory_bytes(dev))
    plan = _Plan(budget, src.n, n_targets, n_test, reps, widths, outer, inner_per_fold, n_alphas,
                 n_bootstrap, ceiling is None, dtype, reduction, src.itemsize, src.reps)
    weights = torch.as_tensor(bootstrap_counts(n_test, n_bootstrap, seed) / n_test, dtype=torch.float64,
                              device=dev)  # as frequencies (r is the same up to rounding)
    boot_dtype = np.float64 if dtype == "float64" else np.float32

    # ---- one pass over the responses: means, ceiling, resampled ceiling (shared by every layer)
    means = ColumnStore(src.n, n_targets, spill=plan.spill_y, dtype=boot_dtype)
    if ceiling is not None:
        rel0, ceiling_median, n_unusable, ceiling_record = _external_ceiling(ceiling, n_targets, ceiling_note)
        halves, rel_boot = None, None
    else:
        halves = _split_halves(reps, n_ceiling_splits, seed)  # the same halves as the point estimate
        rel0, half_r = np.empty(n_targets), np.empty(n_targets)
        rel_boot = np.empty((n_bootstrap, n_targets), dtype=boot_dtype)
    for sl in _chunks(n_targets, plan.width):
        block = src.block(sl)
        with np.errstate(all="ignore"):
            y = np.nanmean(block, axis=1)
        test_block = None
        if test_repetitions is not None or halves is not None:
            test_block = src.test_block(sl, test_rows, 1 if ceiling is not None else 2)
            if test_repetitions is not None:  # the test rows' responses are their repetitions' mean
                with np.errstate(all="ignore"):
                    y[test_rows] = np.nanmean(test_block, axis=1)
        means.write(sl, y)
        del block, y
        if halves is not None:
            if np.isnan(test_block).any():
                raise InvalidInputError("test presentations lack some repetitions (NaN): a split-half ceiling "
                                        "needs complete repetitions on the test stimuli; give the dataset's ceiling "
                                        "instead")
            rel0[sl], half_r[sl] = _ceiling_pieces(test_block, n_ceiling_splits, seed)
            if n_bootstrap:
                tb = torch.as_tensor(test_block, dtype=torch.float64, device=dev)
                rel_boot[:, sl] = _bootstrap_reliability(tb, halves, weights[1:]).cpu().numpy()
                del tb
    if halves is not None:
        est = Ceiling(rel0, half_r, n_ceiling_splits, seed, reps, src.meta)
        if est.n_unusable:
            log.warning("%d of %d targets have an unusable ceiling (reliability <= 0 or NaN)", est.n_unusable,
                        n_targets)
        ceiling_median, n_unusable, ceiling_record = est.median, est.n_unusable, est.to_record()
    targets = Targets(means, "responses")  # checked once, for every layer

    what = (ceiling_note or "ceiling given by the dataset") if halves is None else (
        "split-half Spearman-Brown reliability per target")
    rows, norm, boot, frames, records, notes = [], {}, {}, {}, {}, []
    folds_dev = [torch.as_tensor(f, device=dev) for f in test_folds]
    layers_bar = contextlib.ExitStack()
    try:
        bar = layers_bar.enter_context(progress_bar(len(activations), "encoding: ridge fits, layer by layer"))
        for name in activations:
            r, r_boot, res = _score_layer(name, activations[name], targets, outer, inner_per_fold, groups, test_rows,
                                          test_folds, folds_dev, weights, plan, alphas=alphas,
                                          relative_alphas=relative_alphas, seed=seed, dev=dev, dtype=dtype,
                                          reduction=reduction, boot_dtype=boot_dtype)
            records[name] = (res.splits, res.record)
            ns = normalize_scores(r, rel0)
            norm[name] = ns
            frames[name] = pd.DataFrame({"r": r, "r_fold_mean": res.r, "normalized": ns.per_target,
                                         "reliability": rel0, "usable": ns.usable,
                                         "alpha": np.median(res.alphas, axis=0)})
            usable_r = r[ns.usable]
            raw = float(np.median(usable_r)) if usable_r.size else float("nan")
            lo = hi = nlo = nhi = float("nan")
            edges, note = alpha_edge_note(name, res)
            if note:
                notes.append(note)
            if n_bootstrap > 0 and usable_r.size:  # a score that is not defined has no interval
                braw, bnorm = _medians(r_boot, rel_boot if rel_boot is not None else rel0)
                boot[name] = {"raw": braw, "normalized": bnorm}
                lo, hi = np.nanpercentile(braw, [2.5, 97.5])
                nlo, nhi = np.nanpercentile(bnorm, [2.5, 97.5])
            del r_boot
            trim_heap()
            rows.append({"layer": name, "raw": raw, "ci_low": float(lo), "ci_high": float(hi),
                         "ceiling": ceiling_median, "normalized": ns.score,
                         "normalized_ci_low": float(nlo), "normalized_ci_high": float(nhi),
                         "cv_score": _cv_score(res.cv_scores), "n_targets": int(r.size),
                         "n_used": int(ns.usable.sum()), "n_constant": res.n_constant, **edges})
            bar.advance()
    finally:
        layers_bar.close()
        means.close()
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
        provenance={"splits": records[best][0].to_record() if src.n <= 5000 else
                    {"kind": records[best][0].kind, "seed": records[best][0].seed},
                    "ridge": records[best][1], "ceiling": ceiling_record,
                    "alpha_grids": {name: rec["alpha_grid"]["absolute_per_fold"] for name, (_s, rec) in records.items()},
                    "normalized_ci": [float(b["normalized_ci_low"]), float(b["normalized_ci_high"])],
                    "n_bootstrap": n_bootstrap, "n_test_stimuli": int(n_test), "memory": plan.record(budget),
                    **({"response_rescaling": f"responses multiplied by 2^{int(np.log2(y_factor))} (exact) against "
                                              "overflow; cv_score is in these units"} if y_factor != 1.0 else {})},
        bootstrap=boot or None,
        layer_targets=frames if keep_layer_targets else None,
    )


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
def _score_layer(name, acts, targets, outer, inner_per_fold, groups, test_rows, test_folds, folds_dev, weights,
                 plan: _Plan, *, alphas, relative_alphas, seed, dev, dtype, reduction, boot_dtype):
    """One layer: nested-CV ridge (held-out predictions kept per fold, in memory or spilled), then
    the held-out r of every target under every bootstrap resample, a block of targets at a time.
    Returns (r (t,) float64, bootstrap r (B, t), the ridge's EncodingResult)."""
    t = targets.t
    preds = [ColumnStore(len(te), t, spill=plan.spill_preds, dtype=boot_dtype) for _tr, te in outer.folds]

    def keep(k, _te, sl, pred):
        preds[k].write(sl, pred.cpu().numpy())

    blocks_bar = contextlib.ExitStack()
    try:
        x = np.asarray(acts)  # one layer at a time (a lazily-read layer is read here)
        res = ridge_cv_multi({name: x}, targets, outer, alphas, relative_alphas=relative_alphas,
                             inner_cv=inner_per_fold, groups=groups, seed=seed, device=dev, dtype=dtype, memory_budget=plan.ridge_budget, reduction=reduction,
                             on_predictions=keep)[name]
        del x
        r = np.empty(t)
        r_boot = np.empty((weights.shape[0] - 1, t), dtype=boot_dtype)
        blocks = list(_chunks(t, plan.width))
        bar = blocks_bar.enter_context(progress_bar(len(blocks), f"{name}: held-out r and {weights.shape[0] - 1} "
                                                                 f"bootstraps, {len(blocks)} target block(s)"))
        for sl in blocks:
            p = torch.empty(len(test_rows), sl.stop - sl.start, dtype=torch.float64, device=dev)
            for k, pos in enumerate(test_folds):
                p[torch.as_tensor(pos, device=dev)] = torch.as_tensor(preds[k].read(sl), device=dev,
                                                                       dtype=torch.float64)
            y = targets.block(sl)[torch.as_tensor(test_rows)].to(device=dev, dtype=torch.float64)
            r_w = weighted_pearson_columns(weights, p, y, groups=folds_dev)
            r[sl] = r_w[0].cpu().numpy()
            r_boot[:, sl] = r_w[1:].cpu().numpy()
            del p, y, r_w
            bar.advance()
    finally:
        blocks_bar.close()
        for store in preds:
            store.close()
    return r, r_boot, res


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
