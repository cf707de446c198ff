"""Representational dissimilarity matrices (RDMs): computed in batches on device, checked, folded.

Conventions (kept identical to rsatoolbox 0.3.2 where it defines the same thing):

- `correlation`: 1 - Pearson correlation between two stimuli's patterns (across features).
- `euclidean`: rsatoolbox's "euclidean", which is the *squared* Euclidean distance divided by the
  number of features (the mean squared difference). The name is rsatoolbox's; the value is not
  scipy's `euclidean`.
- `sqeuclidean`: scipy's `sqeuclidean`, the plain sum of squared differences (no division).
- `cosine`: 1 - cosine similarity (scipy's `cosine`).
- `crossnobis_rdms`: rsatoolbox's `calc_rdm_crossnobis` (leave-one-fold-out, optional noise
  precision, divided by the number of features); unbiased, so it can be negative.

Condensed vectors follow scipy's `squareform` order: row-major upper triangle without diagonal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError

RDM_METHODS = ("correlation", "euclidean", "sqeuclidean", "cosine")


def as_tensor(x, device=None, dtype=None) -> torch.Tensor:
    """Tensor on `device` (None: the tensor's own, else auto) in `dtype` (None: float32).

    A float64 tensor keeps float64 when dtype is None, so validation runs stay exact.
    """
    if isinstance(x, torch.Tensor):
        dev = x.device if device is None else resolve_device(device)
        if dtype is None:
            dt = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        else:
            dt = resolve_dtype(dtype)
        return x.to(device=dev, dtype=dt)
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidInputError(f"expected a numeric array, got dtype {arr.dtype}")
    dt = resolve_dtype(dtype)
    return torch.as_tensor(arr, device=resolve_device("auto" if device is None else device)).to(dt)


def n_stimuli_from_length(k: int) -> int:
    """n such that n(n-1)/2 == k; InvalidInputError if k is not such a number."""
    n = int(round((1 + math.sqrt(1 + 8 * k)) / 2))
    if n * (n - 1) // 2 != k:
        raise InvalidInputError(
            f"a condensed RDM has n(n-1)/2 entries for n stimuli; {k} is not such a number. "
            "Pass the upper triangle in scipy squareform order (or a square matrix)."
        )
    return n


def _triu_index(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.triu_indices(n, n, offset=1, device=device)
    return rows, cols


def upper_triangle(rdms) -> torch.Tensor:
    """(..., n, n) -> (..., n(n-1)/2): row-major upper triangle, scipy `squareform` order."""
    t = rdms if isinstance(rdms, torch.Tensor) else torch.as_tensor(np.asarray(rdms))
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise InvalidInputError(f"expected square RDMs (..., n, n), got shape {tuple(t.shape)}")
    rows, cols = _triu_index(t.shape[-1], t.device)
    return t[..., rows, cols]


def square_form(vectors) -> torch.Tensor:
    """(..., n(n-1)/2) -> (..., n, n) symmetric with a zero diagonal (inverse of upper_triangle)."""
    v = vectors if isinstance(vectors, torch.Tensor) else torch.as_tensor(np.asarray(vectors))
    if v.ndim < 1:
        raise InvalidInputError("expected condensed RDM vectors (..., n(n-1)/2), got a scalar")
    n = n_stimuli_from_length(v.shape[-1])
    rows, cols = _triu_index(n, v.device)
    out = torch.zeros(*v.shape[:-1], n, n, dtype=v.dtype, device=v.device)
    out[..., rows, cols] = v
    out[..., cols, rows] = v
    return out


def pair_positions(n: int, index, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the pairs among stimuli `index` (in that order; repeats allowed) sit in a condensed
    RDM over n stimuli, and which of those pairs are a stimulus with itself (no position of its
    own: its entry is clamped and must be masked by the caller)."""
    idx = torch.as_tensor(np.asarray(index), dtype=torch.long, device=device)
    a, b = torch.triu_indices(len(idx), len(idx), offset=1, device=idx.device)
    ia, ib = idx[a], idx[b]
    lo, hi = torch.minimum(ia, ib), torch.maximum(ia, ib)
    same = lo == hi
    pos = lo * n - lo * (lo + 1) // 2 + (hi - lo - 1)
    return pos.clamp(0, max(n * (n - 1) // 2 - 1, 0)), same


def subset_condensed(vectors: torch.Tensor, index) -> torch.Tensor:
    """Condensed RDMs (..., K) restricted to the (distinct) stimuli in `index`, in that order."""
    n = n_stimuli_from_length(vectors.shape[-1])
    pos, same = pair_positions(n, index, vectors.device)
    if bool(same.any()):
        raise InvalidInputError("subset_condensed takes distinct stimuli; resample with repeats through "
                                "metrics.inference.resample_condensed")
    return vectors[..., pos]


_CHECK_CHUNK_BYTES = 64 * 2**20  # validation works through large stacks of RDMs in blocks of this size


def _where(flat: int, lead: tuple[int, ...], axes: Sequence[str] | None) -> str:
    """' of subject 2 at time point 5' for the RDM at `flat` in a stack with leading shape `lead`."""
    if not lead:
        return ""
    idx = np.unravel_index(flat, lead)
    names = list(axes or ())[-len(lead):] if axes else []
    names = [""] * (len(lead) - len(names)) + names
    parts = [f"{name} {int(i)}" if name else f"[{int(i)}]" for name, i in zip(names, idx)]
    return " of " + ", ".join(parts)


def _pair(i: int, j: int, ids: Sequence | None) -> str:
    return f"stimuli {ids[i]!r} and {ids[j]!r}" if ids is not None else f"stimuli {i} and {j}"


def validate_rdms(rdms, atol: float = 1e-8, rtol: float = 1e-6, *, what: str = "RDMs", allow_nan: bool = True,
                  allow_negative: bool = False, ids: Sequence | None = None,
                  axes: Sequence[str] | None = None) -> torch.Tensor:
    """Check square RDMs (..., n, n) and return them as a tensor; InvalidInputError naming the RDM,
    the stimuli and the fix otherwise.

    Checked: square with n >= 3; no inf; a zero diagonal (a similarity matrix, whose diagonal is
    its largest value, is named as such); symmetric (an RDM with only one triangle filled is
    named as such); no negative dissimilarity (`allow_negative=True` for cross-validated
    distances such as crossnobis, which are unbiased and can be negative). NaN entries off the
    diagonal mark missing dissimilarities: allowed when symmetric (`allow_nan=False` refuses
    them). The tolerance scales with the largest finite dissimilarity. Large stacks are checked
    in blocks (no full-size temporaries). `ids` (stimulus ids) and `axes` (names of the leading
    dimensions, e.g. ('subject', 'time point')) make the messages name what is wrong.
    """
    t = rdms if isinstance(rdms, torch.Tensor) else torch.as_tensor(np.asarray(rdms, dtype=float))
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise InvalidInputError(
            f"{what} must be square (..., n, n); got shape {tuple(t.shape)}. "
            "Condensed vectors can be expanded with square_form()."
        )
    n = t.shape[-1]
    if n < 3:
        raise InvalidInputError(
            f"{what} need at least 3 stimuli (an RDM over {n} has fewer than 3 dissimilarities "
            "and no rank structure to compare); add stimuli"
        )
    if not t.is_floating_point():
        t = t.to(torch.float64)
    lead = tuple(t.shape[:-2])
    flat = t.reshape(-1, n, n)
    step = max(1, _CHECK_CHUNK_BYTES // (n * n * 8))
    for s0 in range(0, flat.shape[0], step):
        _check_square_block(flat[s0:s0 + step], s0, lead, atol, rtol, what, allow_nan, allow_negative, ids, axes)
    return t


def _check_square_block(b: torch.Tensor, offset: int, lead, atol, rtol, what, allow_nan, allow_negative,
                        ids, axes) -> None:
    n = b.shape[-1]
    inf = torch.isinf(b)
    if bool(inf.any()):
        k, i, j = torch.nonzero(inf)[0].tolist()
        raise InvalidInputError(f"{what}: the RDM{_where(offset + k, lead, axes)} holds an infinite dissimilarity "
                                f"between {_pair(i, j, ids)}; dissimilarities must be finite")
    finite = torch.isfinite(b)
    scale = float(b[finite].abs().max()) if bool(finite.any()) else 1.0
    tol = atol + rtol * scale
    off = ~torch.eye(n, dtype=torch.bool, device=b.device)
    if not allow_nan:
        nan = torch.isnan(b) & off
        if bool(nan.any()):
            k, i, j = torch.nonzero(nan)[0].tolist()
            raise InvalidInputError(
                f"{what}: the RDM{_where(offset + k, lead, axes)} has {int(nan[k].sum()) // 2 or 1} missing (NaN) "
                f"dissimilarities, e.g. between {_pair(i, j, ids)}; this benchmark compares complete RDMs: "
                "drop the stimuli without a measurement or fill the missing entries")
    diag = torch.diagonal(b, dim1=-2, dim2=-1)
    bad_diag = ~(diag.abs() <= tol)
    if bool(bad_diag.any()):
        k, i = torch.nonzero(bad_diag)[0].tolist()
        d = diag[k]
        others = b[k][off].reshape(n, n - 1)
        similarity = (bool(torch.isfinite(d).all()) and float(d.min()) > 0 and float(d.max() - d.min()) <= tol
                      and bool((torch.nan_to_num(others, nan=-float("inf")) <= d[:, None] + tol).all()))
        where = f"the RDM{_where(offset + k, lead, axes)}"
        if similarity:
            raise InvalidInputError(
                f"{what}: {where} looks like a similarity matrix, not an RDM: its diagonal is {float(d[0]):g} "
                "everywhere and no entry exceeds it. Pass dissimilarities (e.g. 1 - r for a correlation matrix), "
                "or let neurobench convert them with the option similarity_to_dissimilarity=true "
                "(D_ij = (S_ii + S_jj) / 2 - S_ij)")
        stimulus = repr(ids[i]) if ids is not None else str(i)
        raise InvalidInputError(
            f"{what}: {where} has {float(d[i])} on its diagonal at stimulus {stimulus}; an RDM's diagonal must be "
            "zero (a stimulus is not dissimilar to itself). Pass dissimilarities, not similarities, and set the "
            "diagonal to 0.")
    bt = b.transpose(-1, -2)
    diff = (b - bt).abs()
    asym = (torch.isnan(b) != torch.isnan(bt)) | (diff > tol)
    if bool(asym.any()):
        k, i, j = torch.nonzero(asym)[0].tolist()
        m = torch.nan_to_num(b[k], nan=0.0)
        upper, lower = torch.triu(m, 1), torch.tril(m, -1)
        where = f"the RDM{_where(offset + k, lead, axes)}"
        for filled, empty, name in ((lower, upper, "lower"), (upper, lower, "upper")):
            if bool((empty == 0).all()) and bool((filled != 0).any()):
                raise InvalidInputError(
                    f"{what}: {where} has only its {name} triangle filled (the other is all zero); give the full "
                    f"symmetric matrix, e.g. D + D.T for a triangle with a zero diagonal")
        raise InvalidInputError(
            f"{what}: {where} is not symmetric: the dissimilarity between {_pair(i, j, ids)} is {float(b[k, i, j]):g} "
            f"one way and {float(b[k, j, i]):g} the other (max |D - D^T| = "
            f"{float(torch.nan_to_num(diff[k], nan=0.0).max()):.3g}, tolerance {tol:.3g}). "
            "Symmetrise with (D + D^T) / 2 if the asymmetry is noise.")
    if not allow_negative:
        neg = b < -tol
        if bool(neg.any()):
            k, i, j = torch.nonzero(neg)[0].tolist()
            raise InvalidInputError(
                f"{what}: the RDM{_where(offset + k, lead, axes)} holds negative dissimilarities ({float(b[k, i, j]):g} "
                f"between {_pair(i, j, ids)}; {int(neg[k].sum()) // 2 or 1} in all). Distances are >= 0: a "
                "correlation or similarity matrix with its diagonal zeroed looks like this (pass 1 - r, or the "
                "full similarity matrix with similarity_to_dissimilarity=true); cross-validated distances "
                "(crossnobis) can be negative: declare them with allow_negative=true")


def validate_condensed(vectors, n_stimuli: int | None = None, *, what: str = "RDMs", allow_nan: bool = True,
                       allow_negative: bool = False, ids: Sequence | None = None,
                       axes: Sequence[str] | None = None) -> torch.Tensor:
    """Check condensed RDMs (..., n(n-1)/2) in scipy `squareform` order and return them as a tensor.

    The length must be n(n-1)/2 for n >= 3 stimuli (for `n_stimuli` when given); entries must be
    finite (NaN marks a missing dissimilarity; `allow_nan=False` refuses it) and >= 0 unless
    `allow_negative` (cross-validated distances). Messages name the RDM (`axes`: names of the
    leading dimensions; `ids`: the stimulus ids) and the fix.
    """
    v = vectors if isinstance(vectors, torch.Tensor) else torch.as_tensor(np.asarray(vectors, dtype=float))
    if v.ndim < 1 or v.shape[-1] == 0:
        raise InvalidInputError(f"{what}: expected condensed RDM vectors (..., n(n-1)/2); got shape {tuple(v.shape)}")
    k = v.shape[-1]
    if n_stimuli is not None and k != n_stimuli * (n_stimuli - 1) // 2:
        raise InvalidInputError(
            f"{what}: condensed RDMs of {k} entries, but there are {n_stimuli} stimuli, which make "
            f"{n_stimuli * (n_stimuli - 1) // 2} pairs; give the upper triangle in scipy squareform order "
            "(row by row, without the diagonal) over exactly the benchmark's stimuli, or the square matrices")
    n = n_stimuli_from_length(k)
    if n < 3:
        raise InvalidInputError(f"{what}: RDMs need at least 3 stimuli; got {n}")
    if not v.is_floating_point():
        v = v.to(torch.float64)
    lead = tuple(v.shape[:-1])
    flat = v.reshape(-1, k)
    for bad, problem in ((torch.isinf(flat), "infinite"), (None if allow_nan else torch.isnan(flat), "missing (NaN)"),
                         (None if allow_negative else flat < -1e-8 * max(1.0, _max_abs(flat)), "negative")):
        if bad is not None and bool(bad.any()):
            r, e = torch.nonzero(bad)[0].tolist()
            i, j = _pair_of_position(e, n)
            fix = {"infinite": "dissimilarities must be finite",
                   "missing (NaN)": "this benchmark compares complete RDMs: drop the stimuli without a measurement",
                   "negative": "distances are >= 0 (a correlation or similarity vector? pass 1 - r); cross-validated "
                               "distances (crossnobis) can be negative: declare them with allow_negative=true"}[problem]
            raise InvalidInputError(
                f"{what}: the RDM{_where(r, lead, axes)} holds {int(bad[r].sum())} {problem} dissimilarities "
                f"(the first {float(flat[r, e]):g} between {_pair(i, j, ids)}); {fix}")
    return v


def _max_abs(t: torch.Tensor) -> float:
    finite = torch.isfinite(t)
    return float(t[finite].abs().max()) if bool(finite.any()) else 0.0


def _pair_of_position(pos: int, n: int) -> tuple[int, int]:
    """The stimuli (i, j), i < j, of entry `pos` of a condensed RDM over n stimuli."""
    i = 0
    while pos >= n - 1 - i:
        pos -= n - 1 - i
        i += 1
    return i, i + 1 + pos


def similarity_to_dissimilarity(similarities) -> torch.Tensor:
    """Square similarity matrices (..., n, n) -> dissimilarities D_ij = (S_ii + S_jj) / 2 - S_ij.

    For a correlation matrix this is 1 - r; for a Gram matrix of patterns (inner products) half the
    squared Euclidean distance. The result has a zero diagonal; check it with `validate_rdms`.
    """
    s = similarities if isinstance(similarities, torch.Tensor) else torch.as_tensor(np.asarray(similarities, dtype=float))
    if s.ndim < 2 or s.shape[-1] != s.shape[-2]:
        raise InvalidInputError(
            f"similarity_to_dissimilarity needs square similarity matrices (..., n, n) with their diagonal; got shape "
            f"{tuple(s.shape)} (for condensed correlation similarities pass 1 - r yourself)")
    d = torch.diagonal(s, dim1=-2, dim2=-1)
    out = (d[..., :, None] + d[..., None, :]) / 2 - s
    out.diagonal(dim1=-2, dim2=-1).zero_()
    return out


def constant_rdms(condensed: torch.Tensor) -> torch.Tensor:
    """(...,) True where every finite dissimilarity of a condensed RDM is the same value (no
    structure: a rank or correlation comparison with it is undefined)."""
    finite = torch.isfinite(condensed)
    hi = torch.where(finite, condensed, -float("inf")).amax(-1)
    lo = torch.where(finite, condensed, float("inf")).amin(-1)
    return ~(hi > lo)


def check_data_rdms(rdms, n_stimuli: int, *, what: str, square: bool, similarity: bool = False,
                    allow_negative: bool = False, ids: Sequence | None = None,
                    axes: Sequence[str] | None = None) -> torch.Tensor:
    """A benchmark's data RDMs, checked at the boundary: condensed (..., n(n-1)/2) float64.

    `square`: the input is (..., n, n) matrices (else condensed vectors). `similarity`: the input
    holds similarities, converted with `similarity_to_dissimilarity` (square input only). Refused,
    with a message naming the RDM and the fix: a size other than `n_stimuli`, inf or NaN, a
    non-zero diagonal (similarity matrices named as such), asymmetry (one triangle filled named as
    such), negative values (unless `allow_negative`), and RDMs whose dissimilarities are all equal.
    """
    t = torch.as_tensor(np.asarray(rdms, dtype=np.float64)) if not isinstance(rdms, torch.Tensor) else rdms.double()
    if square:
        if t.ndim < 2 or t.shape[-1] != t.shape[-2] or t.shape[-1] != n_stimuli:
            raise InvalidInputError(f"{what}: expected square RDMs over the {n_stimuli} stimuli (..., {n_stimuli}, "
                                    f"{n_stimuli}); got shape {tuple(t.shape)}")
        if similarity:
            validate_rdms(similarity_to_dissimilarity(t), what=f"{what} (converted from similarities)",
                          allow_nan=False, allow_negative=allow_negative, ids=ids, axes=axes)
            t = similarity_to_dissimilarity(t)
        else:
            validate_rdms(t, what=what, allow_nan=False, allow_negative=allow_negative, ids=ids, axes=axes)
        t = upper_triangle(t)
    else:
        if similarity:
            raise InvalidInputError(
                f"{what}: similarity_to_dissimilarity needs the square similarity matrices (with their diagonal); "
                "these are condensed vectors (for correlations pass 1 - r instead)")
        t = validate_condensed(t, n_stimuli, what=what, allow_nan=False, allow_negative=allow_negative, ids=ids,
                               axes=axes)
    flat = constant_rdms(t.reshape(-1, t.shape[-1]))
    if bool(flat.any()):
        k = int(torch.nonzero(flat)[0])
        value = float(t.reshape(-1, t.shape[-1])[k, 0])
        raise InvalidInputError(
            f"{what}: every dissimilarity of the RDM{_where(k, tuple(t.shape[:-1]), axes)} is {value:g}; an RDM "
            "without structure cannot be compared (every comparator is undefined or 0): check how it was built")
    return t


def compute_rdms(patterns, method: str = "correlation", device=None, dtype=None) -> torch.Tensor:
    """Patterns (..., n_stimuli, n_features) -> RDMs (..., n, n), batched over leading axes."""
    if method not in RDM_METHODS:
        raise InvalidInputError(f"unknown RDM method {method!r}; choose one of {RDM_METHODS}")
    x = as_tensor(patterns, device, dtype)
    if x.ndim < 2:
        raise InvalidInputError(
            f"patterns must be (..., n_stimuli, n_features); got shape {tuple(x.shape)}"
        )
    n, f = x.shape[-2], x.shape[-1]
    if n < 3:
        raise InvalidInputError(f"RDMs need at least 3 stimuli; got {n}")
    if f < 1:
        raise InvalidInputError("patterns have no features")
    if not bool(torch.isfinite(x).all()):
        raise InvalidInputError("patterns contain NaN or inf; remove or impute those features first")
    if method in ("correlation", "cosine"):
        if method == "correlation":
            x = x - x.mean(dim=-1, keepdim=True)
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        if bool((norm == 0).any()):
            bad = torch.nonzero(norm[..., 0] == 0)[0].tolist()
            kind = "constant" if method == "correlation" else "all-zero"
            raise InvalidInputError(
                f"stimulus pattern {bad} is {kind} across features, so its {method} distance is "
                "undefined; drop that stimulus or use method='euclidean'"
            )
        x = x / norm
        rdm = 1.0 - x @ x.transpose(-1, -2)
    else:
        sq = (x * x).sum(dim=-1)
        rdm = sq[..., :, None] + sq[..., None, :] - 2.0 * (x @ x.transpose(-1, -2))
        rdm = rdm.clamp_min(0.0)
        if method == "euclidean":
            rdm = rdm / f
    rdm = 0.5 * (rdm + rdm.transpose(-1, -2))
    rdm.diagonal(dim1=-2, dim2=-1).zero_()
    return rdm


def crossnobis_rdms(patterns, noise=None, device=None, dtype=None) -> torch.Tensor:
    """Cross-validated (crossnobis) RDMs from repeated measurements, as rsatoolbox computes them.

    patterns: (..., n_folds, n_stimuli, n_features), one pattern estimate per fold (run/split).
    noise: optional noise *precision* (n_features, n_features); identity when None (cross-validated
    squared Euclidean). For each fold, the mean of the other folds is crossed with that fold:
    d_ij = (a_i - a_j) P (b_i - b_j)^T / n_features; the RDM is the mean over folds. Noise that is
    independent between folds cancels in expectation, so distances are unbiased (may be negative).
    """
    x = as_tensor(patterns, device, dtype)
    if x.ndim < 3:
        raise InvalidInputError(
            f"crossnobis needs patterns (..., n_folds, n_stimuli, n_features); got {tuple(x.shape)}"
        )
    k, n, f = x.shape[-3], x.shape[-2], x.shape[-1]
    if k < 2:
        raise InvalidInputError(f"cross-validated distances need >= 2 folds (repeats); got {k}")
    if n < 3:
        raise InvalidInputError(f"RDMs need at least 3 stimuli; got {n}")
    if not bool(torch.isfinite(x).all()):
        raise InvalidInputError("patterns contain NaN or inf")
    total = x.sum(dim=-3, keepdim=True)
    train = (total - x) / (k - 1)  # (..., k, n, f): mean of the other folds
    if noise is not None:
        p = as_tensor(noise, x.device, x.dtype)
        if p.shape != (f, f):
            raise InvalidInputError(f"noise precision must be ({f}, {f}); got {tuple(p.shape)}")
        train = train @ p
    kern = train @ x.transpose(-1, -2)  # (..., k, n, n): train_i . test_j
    d = torch.diagonal(kern, dim1=-2, dim2=-1)
    rdm = (d[..., :, None] + d[..., None, :] - kern - kern.transpose(-1, -2)) / f
    rdm = rdm.mean(dim=-3)
    rdm.diagonal(dim1=-2, dim2=-1).zero_()
    return rdm
