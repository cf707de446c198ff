"""Pearson r per column, plain and under observation weights: the one implementation of each.

`pearson_columns(a, b)`: r between column j of `a` and column j of `b` (rows are observations),
computed around the column means (two passes).  Every encoding score, PLS score and split-half
reliability uses it.

`weighted_pearson_columns(w, a, b)`: the same r under each row of non-negative observation weights
`w` (B, n) at once, from weighted sums (a few (B, n) @ (n, c) products, one pass).  A bootstrap
resample that draws row i c_i times is the weighting c_i (counts or frequencies alike: r does not
depend on the scale of a weight row), so B resamples cost B rows of `w`, not B copies of the data.
Two variants compose on the same weighted sums:

* `groups`: centre each group of rows (e.g. the test rows of one outer CV fold) on its own weighted
  means and pool the co-moments over groups.  Pooling out-of-fold predictions without this adds a
  spurious negative correlation (each fold's intercept comes from the other folds' responses).
* `finite_only`: per column, use only the rows where both values are finite (NaN marks a missing
  value, e.g. an image without responses in one half of the repetitions).

Both return NaN where a column is constant (weighted: under that weighting), detected exactly
rather than from a variance that rounding leaves slightly above zero.  They compute in the dtype and on the device
of their inputs (no casts, no copies to another device).

Not the same computation: `weighted.py` correlates every pair of *rows* of two RDM stacks over
their entries, under pair weights c_i c_j (B, M, N outputs, 0 for constant rows, as rsatoolbox's
comparators), which needs no per-column pairing and no grouping; it stays there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["pearson_columns", "weighted_pearson_columns"]


def _nan_where_undefined(num: torch.Tensor, den: torch.Tensor, constant: torch.Tensor) -> torch.Tensor:
    return torch.where(constant | ~(den > 0), torch.full_like(num, float("nan")), num / den)


def pearson_columns(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(c,) Pearson r of each column of a with the same column of b (both n x c); NaN where either
    column is constant (all its values equal)."""
    ac = a - a.mean(0)
    bc = b - b.mean(0)
    den = torch.sqrt((ac * ac).sum(0) * (bc * bc).sum(0))
    constant = (a == a[:1]).all(0) | (b == b[:1]).all(0)  # exact, whatever rounding does to the mean
    return _nan_where_undefined((ac * bc).sum(0), den, constant)


def _flat(x: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
    """(c,) whether all values of a column (where `m`, if given) are equal."""
    if x.shape[0] == 0:
        return torch.ones(x.shape[1], dtype=torch.bool, device=x.device)
    if m is None:
        return (x == x[:1]).all(0)
    return torch.where(m, x, float("inf")).amin(0) == torch.where(m, x, float("-inf")).amax(0)


def _weighted_sums(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor, finite_only: bool):
    """(B, c) weighted co-moment sums about the weighted means: sum w (a - ma)(b - mb) and the two
    sums of squares, from sum w, sum w a, sum w ab, ... (one pass); and where there is no spread
    to measure (a or b constant, or at most one row drawn), exactly, whatever the rounding."""
    if finite_only:
        m = torch.isfinite(a) & torch.isfinite(b)
        mw = m.to(w.dtype)
        a, b = torch.nan_to_num(a) * mw, torch.nan_to_num(b) * mw
        tot, drawn = w @ mw, (w > 0).to(w.dtype) @ mw
    else:
        m = None
        tot, drawn = w.sum(1, keepdim=True), (w > 0).sum(1, keepdim=True)
    no_spread = (drawn <= 1) | _flat(a, m) | _flat(b, m)
    tot = tot.clamp_min(torch.finfo(tot.dtype).tiny)  # a resample without these rows: all sums 0
    ma, mb = (w @ a) / tot, (w @ b) / tot
    cov = w @ (a * b) - tot * ma * mb
    return cov, w @ (a * a) - tot * ma * ma, w @ (b * b) - tot * mb * mb, no_spread


def weighted_pearson_columns(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *,
                             groups: Sequence[torch.Tensor] | None = None,
                             finite_only: bool = False) -> torch.Tensor:
    """(B, c) Pearson r of each column of a with the same column of b (n x c) under each row of
    observation weights w (B, n); NaN where a column is constant under a weighting (all its values
    equal, or at most one row with positive weight; with `groups`: so in every group).

    `groups`: index tensors of disjoint row groups; each group is centred on its own weighted means
    and the co-moments are pooled over groups (rows in no group are left out).  `finite_only`: per
    column, only rows where both a and b are finite count.
    """
    if groups is None:
        cov, va, vb, constant = _weighted_sums(w, a, b, finite_only)
    else:
        cov = torch.zeros(w.shape[0], a.shape[1], dtype=a.dtype, device=a.device)
        va, vb = torch.zeros_like(cov), torch.zeros_like(cov)
        constant = torch.ones_like(cov, dtype=torch.bool)
        for idx in groups:
            c, x, y, flat = _weighted_sums(w[:, idx], a[idx], b[idx], finite_only)
            cov += c
            va += x
            vb += y
            constant &= flat
    return _nan_where_undefined(cov, torch.sqrt(va.clamp_min(0) * vb.clamp_min(0)), constant)
