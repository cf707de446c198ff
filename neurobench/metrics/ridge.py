"""Cross-validated ridge encoding in torch: one decomposition per fold, every alpha, every target.

How the work is organised (and why it is fast):

* Per training set, one symmetric eigendecomposition of the smaller Gram matrix: the kernel
  ``Xc Xc^T`` (dual form) when there are fewer training stimuli than features, otherwise the
  covariance ``Xc^T Xc`` (primal form).  Both give ridge solutions for *all* alphas as
  ``W_a = F diag(1 / (lambda + a)) Q^T Y``, with ``F`` (features x rank) and ``Q``
  (train rows x rank).  Eigenvalues below ``lambda_max * eps * sqrt(max(n, p))`` (numerical
  zeros, e.g. the direction removed by centring) are dropped; they carry no signal.
* Validation predictions for all alphas come out of a single large GEMM: the per-alpha
  "prediction operators" ``X_val F D_a Q^T`` are stacked into one (alphas * n_val) x n_train
  matrix and multiplied once by the (centred) training targets of a chunk.  When it is cheaper
  (few targets, or primal form with p << n) the targets are projected first (``Q^T Y``) and
  the stacked operator is (alphas * n_val) x rank.  The choice is made by counting flops.
* Targets are processed in chunks whose size is derived from a memory budget in bytes (default:
  half of the free memory of the device).  Nothing of size alphas x n x t is ever held beyond
  one chunk.  A budget too small for a single target raises `MemoryBudgetError` with the
  minimum needed.
* The alpha grid is relative by default: `relative_alphas` (default logspace(-3, 5, 9)) times
  the mean eigenvalue of the centred training kernel of each outer fit, trace(Xc Xc^T) / n
  (= the summed variance of the features), so the grid follows the layer's scale and width
  (`scaled_alphas`; docs/ridge.md says why).  An explicit `alphas` grid is absolute and used as
  given.  Inner folds and the refit of one outer fit share its absolute grid, recorded per fold
  (`record["alpha_grid"]`); `EncodingResult.alpha_edges` counts targets whose chosen alpha sits
  at an end of the grid.
* The alpha of each target maximises the mean over inner folds of the per-fold score
  (``scoring="mse"``: minus the mean squared error, as himalaya does; ``"r2"``: R^2 around the
  validation mean, as scikit-learn's scorer does).  Ties go to the first alpha in the grid.
* The refit on the whole training set groups targets by chosen alpha, so every target is
  predicted (and, if asked, its weights computed) exactly once.

Intercepts: X and Y are centred on the training rows of each fold (``fit_intercept=True``), which
is exactly an unpenalised intercept.

Bad input is never scored silently: NaN/inf raise `InvalidInputError` naming the array, row and
column; fewer stimuli than folds raise; constant targets get ``r = NaN`` and are counted in
``EncodingResult.constant_targets`` / ``n_constant``; constant features are harmless.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..devices import available_memory_bytes, resolve_device, resolve_dtype
from ..errors import InvalidInputError, MemoryBudgetError
from ..memory import format_size_up
from .correlation import pearson_columns
from .scaling import rescaled
from .splits import Splits, kfold_splits

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_RELATIVE_ALPHAS",
    "AlphaGrid",
    "EncodingResult",
    "RidgeCV",
    "cross_validated_encoding",
    "ridge_cv_multi",
    "r2_score",
    "scaled_alphas",
]

DEFAULT_RELATIVE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 5, 9))
_BUDGET_FRACTION = 0.5
_SCORINGS = ("mse", "r2")
_MAX_CHUNK = 4096
_EIGH_SERIAL_MAX = 2048  # larger chunks stop paying off and hurt cache locality


# --------------------------------------------------------------------------- input checks
def _as_host_tensor(a: Any, name: str) -> torch.Tensor:
    """Host tensor view of an array (no copy when possible), 2-D, finite."""
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (stimuli x columns), got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16,
                                                   torch.uint8, torch.int8)):
        raise InvalidInputError(f"{name} must be numeric, got dtype {t.dtype}")
    _check_finite(t, name)
    return t


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not t.is_floating_point():
        return
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        rows, cols = torch.nonzero(bad, as_tuple=True)
        raise InvalidInputError(
            f"{name} contains {int(bad.sum())} NaN/inf values (first at stimulus row "
            f"{int(rows[0])}, column {int(cols[0])}); remove or impute them before scoring"
        )


def _positive_grid(values, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise InvalidInputError(f"{what} must be a non-empty list of positive numbers, got {a}")
    return a


def scaled_alphas(relative: np.ndarray, trace: float, n: int) -> np.ndarray:
    """Absolute ridge penalties for one fit: `relative` times the mean eigenvalue of its n x n
    centred training kernel, trace(Xc Xc^T) / n (the summed variance of the features; the
    covariance Xc^T Xc has the same trace). A layer scaled by c or widened k-fold with features
    like its own gets a grid scaled by c^2 or k, so its predictions are those of the original."""
    scale = float(trace) / max(int(n), 1)
    if not math.isfinite(scale) or scale <= 0:
        raise InvalidInputError("every feature is constant on these training stimuli (zero variance): no alpha "
                                "grid can be scaled to it; give an absolute grid (alphas=...) or drop the layer")
    return np.asarray(relative, dtype=np.float64) * scale


@dataclass(frozen=True)
class AlphaGrid:
    """The ridge penalty grid: `values` used as given (`relative=False`, an explicit `alphas`),
    or relative to each fit's mean kernel eigenvalue (`scaled_alphas`)."""

    values: np.ndarray
    relative: bool

    @classmethod
    def make(cls, alphas=None, relative_alphas=None) -> AlphaGrid:
        """An explicit `alphas` is absolute; else `relative_alphas` (default
        DEFAULT_RELATIVE_ALPHAS) is relative. Giving both is refused."""
        if alphas is not None and relative_alphas is not None:
            raise InvalidInputError("give either alphas (an absolute grid) or relative_alphas (a grid relative to each "
                                    "layer's mean kernel eigenvalue), not both")
        if alphas is not None:
            return cls(_positive_grid(alphas, "alphas"), False)
        return cls(_positive_grid(DEFAULT_RELATIVE_ALPHAS if relative_alphas is None else relative_alphas,
                                  "relative_alphas"), True)

    def absolute(self, trace: float, n: int) -> np.ndarray:
        return scaled_alphas(self.values, trace, n) if self.relative else self.values

    def for_features_scaled_by(self, factor: float) -> AlphaGrid:
        """The grid for features multiplied by `factor` (an exact power of two, `metrics.scaling`):
        an absolute grid is multiplied by factor^2, so the fit is the same; a relative grid follows
        the kernel's scale by itself."""
        return self if self.relative or factor == 1.0 else AlphaGrid(self.values * factor**2, False)

    def to_record(self) -> dict[str, Any]:
        return {"kind": "relative to trace(K)/n per outer fit" if self.relative else "absolute",
                "values": self.values.tolist()}


def _train_trace(X: torch.Tensor, train: np.ndarray, fit_intercept: bool, kernel: _Kernel | None) -> float:
    """trace of the (centred) training kernel: the squared norm of the centred training rows."""
    if kernel is not None:
        return float(kernel.K[: len(train)].diagonal().sum())
    x = X[torch.as_tensor(train, device=X.device)]
    if fit_intercept:
        x = x - x.mean(0)
    return float((x * x).sum())


# --------------------------------------------------------------------------- the decomposition
@dataclass
class _Decomp:
    """Ridge on centred training rows: W_a = F diag(1/(lam + a)) Q^T Yc, P = Xc_eval F."""

    x_mean: torch.Tensor  # (p,) training mean of X
    Q: torch.Tensor  # (n_tr, r)
    lam: torch.Tensor  # (r,)
    P: torch.Tensor | None  # (n_eval, r): centred evaluation rows mapped by F
    form: str  # "dual" or "primal"
    Xc: torch.Tensor | None = None  # centred training rows (dual form; for weights)
    V: torch.Tensor | None = None  # (p, r) eigenvectors (primal form)

    def F(self) -> torch.Tensor:
        """(p, r) map from ridge coefficients in eigen-space to feature space."""
        return self.V if self.form == "primal" else self.Xc.T @ self.Q


def _eigh(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """eigh; single-threaded on CPU for matrices up to `_EIGH_SERIAL_MAX`.

    LAPACK's tridiagonal reduction is synchronisation-bound: on a 2-core machine with any other
    load, two OpenMP threads made a 1600 x 1600 eigh 5x slower than one thread.
    """
    if G.device.type != "cpu" or G.shape[0] > _EIGH_SERIAL_MAX:
        return torch.linalg.eigh(G)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigh(G)
    finally:
        torch.set_num_threads(before)


def _keep(lam: torch.Tensor, vecs: torch.Tensor, n: int, p: int):
    """Drop numerically-zero eigenvalues (e.g. the direction removed by centring)."""
    eps = torch.finfo(lam.dtype).eps
    keep = lam > lam[-1].clamp_min(0) * eps * math.sqrt(max(n, p))
    return lam[keep], vecs[:, keep]


class _Kernel:
    """Linear kernel of the rows of one (outer) fit, shared by its inner folds.

    K[i, j] = <x_i - m, x_j - m> over `rows` (i) x `train` (j) with m the mean of `train`.
    Any inner fold's centred kernel follows by double-centring a block of K, so the
    O(n^2 p) products are paid once per outer fit instead of once per inner fold.
    """

    def __init__(self, X: torch.Tensor, train: np.ndarray, evalr: np.ndarray | None):
        rows = train if evalr is None or len(evalr) == 0 else np.concatenate([train, evalr])
        self.pos = {int(r): i for i, r in enumerate(rows.tolist())}
        Xr = X[torch.as_tensor(rows, device=X.device)]
        Xr = Xr - Xr[: len(train)].mean(0)
        self.K = Xr @ Xr[: len(train)].T

    def blocks(self, tr: np.ndarray, ev: np.ndarray | None):
        """Centred (tr x tr) and (ev x tr) kernels for training rows `tr` (absolute ids)."""
        dev = self.K.device
        itr = torch.as_tensor([self.pos[int(i)] for i in tr], device=dev)
        Ktt = self.K[itr][:, itr]
        a_tr = Ktt.mean(1)
        mm = a_tr.mean()
        Ktt = Ktt - a_tr[:, None] - a_tr[None, :] + mm
        Kvt = None
        if ev is not None and len(ev):
            iev = torch.as_tensor([self.pos[int(i)] for i in ev], device=dev)
            Kvt = self.K[iev][:, itr]
            Kvt = Kvt - Kvt.mean(1, keepdim=True) - a_tr[None, :] + mm
        return Ktt, Kvt


def _decompose(X: torch.Tensor, tr: np.ndarray, ev: np.ndarray | None, fit_intercept: bool,
               kernel: _Kernel | None, need_weights: bool) -> _Decomp:
    """One eigendecomposition of the smaller Gram matrix of the training rows `tr`."""
    n, p = len(tr), X.shape[1]
    tr_d = torch.as_tensor(tr, device=X.device)
    X_tr = X[tr_d]
    mean = X_tr.mean(0) if fit_intercept else torch.zeros(p, dtype=X.dtype, device=X.device)
    has_ev = ev is not None and len(ev) > 0
    if n <= p:  # dual: eigh of the n x n kernel
        if kernel is not None and fit_intercept:
            Ktt, Kvt = kernel.blocks(tr, ev)
            Xc = X_tr - mean if need_weights else None
        else:
            Xc = X_tr - mean
            Ktt = Xc @ Xc.T
            Kvt = (X[torch.as_tensor(ev, device=X.device)] - mean) @ Xc.T if has_ev else None
        del X_tr
        lam, U = _keep(*_eigh(Ktt), n, p)
        del Ktt
        P = Kvt @ U if Kvt is not None else None
        return _Decomp(mean, U, lam, P, "dual", Xc=Xc)
    Xc = X_tr - mean  # primal: eigh of the p x p covariance
    del X_tr
    lam, V = _keep(*_eigh(Xc.T @ Xc), n, p)
    P = (X[torch.as_tensor(ev, device=X.device)] - mean) @ V if has_ev else None
    return _Decomp(mean, Xc @ V, lam, P, "primal", V=V)


def _weights_diag(dec: _Decomp, alphas: torch.Tensor) -> torch.Tensor:
    """(n_alphas, r) = 1 / (lam + alpha)."""
    return 1.0 / (dec.lam[None, :] + alphas[:, None])


class _Operator:
    """Predicts centred targets at the evaluation rows for every alpha from centred training targets."""

    def __init__(self, dec: _Decomp, alphas: torch.Tensor, n_targets: int):
        self.dec = dec
        self.n_alphas = A = len(alphas)
        P = dec.P  # (n_eval, r)
        self.n_eval = P.shape[0]
        n_tr, r = dec.Q.shape
        D = _weights_diag(dec, alphas)  # (A, r)
        p = dec.V.shape[0] if dec.V is not None else dec.x_mean.shape[0]
        # decided on min(n_train, p), not the rank kept, so that it is the form the memory plan counts
        self.direct = _operator_direct(A, self.n_eval, n_tr, min(n_tr, p), n_targets)
        PD = (P[None, :, :] * D[:, None, :]).reshape(A * self.n_eval, r)
        self.L = PD @ dec.Q.T if self.direct else PD  # (A*n_eval, n_tr or r)
        self.inner = self.L.shape[1]

    def all_alphas(self, Yc_tr: torch.Tensor) -> torch.Tensor:
        """(A, n_eval, c) predictions of centred targets, for every alpha."""
        rhs = Yc_tr if self.direct else self.dec.Q.T @ Yc_tr
        return (self.L @ rhs).view(self.n_alphas, self.n_eval, -1)

    def per_target(self, Yc_tr: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        """(n_eval, c) predictions, each target with its own alpha index in `best`."""
        out = torch.empty(self.n_eval, Yc_tr.shape[1], dtype=Yc_tr.dtype, device=Yc_tr.device)
        rhs = Yc_tr if self.direct else self.dec.Q.T @ Yc_tr
        L = self.L.view(self.n_alphas, self.n_eval, self.inner)
        for a in torch.unique(best).tolist():
            idx = torch.nonzero(best == a, as_tuple=True)[0]
            out[:, idx] = L[a] @ rhs[:, idx]
        return out


def _weights(dec: _Decomp, F: torch.Tensor, Yc_tr: torch.Tensor, best: torch.Tensor,
             alphas: torch.Tensor) -> torch.Tensor:
    """(p, c) primal weights, each target with its own alpha."""
    R = dec.Q.T @ Yc_tr  # (r, c)
    R = R * _weights_diag(dec, alphas)[best].T
    return F @ R


# --------------------------------------------------------------------------- scores
def r2_score(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-column R^2 = 1 - SSE / SST around the column's own mean; NaN when SST == 0."""
    sse = ((y - pred) ** 2).sum(0)
    sst = ((y - y.mean(0)) ** 2).sum(0)
    return torch.where(sst > 0, 1 - sse / sst, torch.full_like(sse, float("nan")))


def _fold_scores(pred_all: torch.Tensor, yv: torch.Tensor, scoring: str) -> torch.Tensor:
    """(A, c) score of each alpha on one validation fold (higher is better)."""
    res = pred_all.sub_(yv[None])  # in place: residuals
    sse = res.square_().sum(1)
    if scoring == "mse":
        return -sse / yv.shape[0]
    sst = ((yv - yv.mean(0)) ** 2).sum(0)
    # scikit-learn's r2_score convention for constant validation targets: 1 if perfect, else 0
    safe = torch.where(sst > 0, 1 - sse / sst.clamp_min(torch.finfo(sst.dtype).tiny),
                       torch.where(sse == 0, torch.ones_like(sse), torch.zeros_like(sse)))
    return safe


# --------------------------------------------------------------------------- memory
def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _operator_direct(n_alphas: int, n_eval: int, n_tr: int, r: int, n_targets: int) -> bool:
    """Whether `_Operator` stacks the full (alphas * n_eval) x n_train operator (else it projects the
    targets first and stacks (alphas * n_eval) x rank): whichever costs fewer flops."""
    return n_alphas * n_eval * n_tr * (r + n_targets) <= r * n_targets * (n_tr + n_alphas * n_eval)


def _stage_cost(n: int, p: int, n_outer: int, n_tr: int, n_eval: int, n_alphas: int, isz: int,
                weights: bool, heldout: bool = False, n_targets: int = 1) -> tuple[int, int]:
    """(fixed, per-target) bytes of one fit stage: an inner fold, or the refit on the outer
    training rows (`heldout`: it also scores the evaluation rows, in float64)."""
    m = min(n_tr, p)
    direct = _operator_direct(n_alphas, n_eval, n_tr, m, n_targets)
    fixed = isz * (
        n * p  # X on device
        + (n_outer * min(n, 2 * n_outer) if n_outer <= p else 0)  # shared kernel
        + 2 * n_tr * p + 3 * m * m + p * m + n_tr * m  # training rows and centred copy, Gram + eigh work, F, Q
        + 2 * n_eval * p + n_eval * m  # evaluation rows, P
        + n_alphas * n_eval * (m + (n_tr if direct else 0))  # the stacked operator (and its build)
    )
    per_target = isz * (
        2 * n + 2 * n_tr + n_eval  # Y chunk (host->device copy), centred train, val
        + 2 * n_alphas * n_eval + m  # stacked predictions (+ residual temp), projection
        + 4 * n_alphas  # scores
        + (p + m if weights else 0)
    ) + 8 * (n_alphas + 8)  # host-side float64 accumulators and outputs
    if heldout:
        per_target += 8 * 6 * n_eval  # prediction, response and the Pearson / R^2 temporaries (float64)
    return fixed, per_target


def _plan_chunk(n_targets: int, fixed: int, per_target: int, budget: int, what: str) -> int:
    check_budget(fixed + per_target, budget, what)
    return int(max(1, min(n_targets, _MAX_CHUNK, (budget - fixed) // per_target)))


def check_budget(need: int, budget: int, what: str) -> None:
    """MemoryBudgetError naming the smallest budget (`need`, rounded up) when `budget` is below it."""
    if budget < need:
        raise MemoryBudgetError(
            f"memory budget of {budget / 1e6:.1f} MB is too small for {what}: at least "
            f"{format_size_up(need)} ({need} bytes) are needed for one target; raise --memory-budget, or shrink the "
            "features (--readout project=N or pool=..., --reduction srp/pca) or use fewer alphas"
        )


def _memory_plan(n: int, p: int, n_outer: int, n_tr: int, n_eval: int, n_alphas: int,
                 n_targets: int, isz: int, budget: int, weights: bool, heldout: bool = False) -> int:
    """Chunk size (targets) whose working set fits in `budget` bytes."""
    fixed, per_target = _stage_cost(n, p, n_outer, n_tr, n_eval, n_alphas, isz, weights, heldout, n_targets)
    return _plan_chunk(n_targets, fixed, per_target, budget, f"n={n}, p={p}, {n_alphas} alphas")


def ridge_min_bytes(n: int, p: int, outer: Splits, inner_per_fold: list, n_alphas: int,
                    dtype: str | torch.dtype = "float32", weights: bool = False, n_targets: int = 1) -> int:
    """The smallest memory budget (bytes) with which every stage of `ridge_cv_multi` on one
    (n x p) layer fits one target at a time: the largest need over all inner folds and refits."""
    isz = _itemsize(resolve_dtype(dtype))
    need = 0
    for k, (tr, te) in enumerate(outer):
        for a, b in inner_per_fold[k]:
            need = max(need, sum(_stage_cost(n, p, len(tr), len(a), len(b), n_alphas, isz, False,
                                             n_targets=n_targets)))
        need = max(need, sum(_stage_cost(n, p, len(tr), len(tr), max(len(te), 1), n_alphas, isz, weights,
                                         heldout=True, n_targets=n_targets)))
    return need


class Targets:
    """Targets (stimuli x targets) read one block of columns at a time, checked once.

    `source` is anything sliced as `source[:, a:b]`: a numpy array or host tensor, a memory map,
    an HDF5 dataset, a `LayerArray`, a spill file. Construction checks every value once, block
    by block (NaN/inf raise `InvalidInputError` naming row and column) and finds the constant
    targets, so several layers are scored against the same targets without checking them again.
    """

    def __init__(self, source: Any, name: str = "targets Y", block_bytes: int = 64 * 2**20):
        if isinstance(source, Targets):
            source = source.source
        if isinstance(source, (list, tuple)) or (not hasattr(source, "shape")):
            source = np.asarray(source)
        if len(source.shape) == 1:
            source = _as_host_tensor(source, name)
        if len(source.shape) != 2:
            raise InvalidInputError(f"{name} must be 2-D (stimuli x columns), got shape {tuple(source.shape)}")
        self.source, self.name = source, name
        self.n, self.t = int(source.shape[0]), int(source.shape[1])
        self.width = max(1, min(self.t, block_bytes // max(1, 8 * self.n)))
        constant = np.empty(self.t, dtype=bool)
        for sl in _chunks(self.t, self.width):
            b = self.block(sl, check=True)
            constant[sl] = (b.max(0).values == b.min(0).values).numpy() if self.n else True
        self.constant = constant

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, self.t

    def block(self, sl: slice, check: bool = False) -> torch.Tensor:
        """Host tensor (n x c) of the columns in `sl` (a view where the source allows)."""
        raw = self.source[:, sl]
        t = raw if isinstance(raw, torch.Tensor) else torch.as_tensor(np.asarray(raw))
        if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8, torch.int8)):
            raise InvalidInputError(f"{self.name} must be numeric, got dtype {t.dtype}")
        if check:
            try:
                _check_finite(t, self.name)
            except InvalidInputError:
                bad = ~torch.isfinite(t)
                rows, cols = torch.nonzero(bad, as_tuple=True)
                raise InvalidInputError(
                    f"{self.name} contains NaN/inf values (first at stimulus row {int(rows[0])}, column "
                    f"{int(cols[0]) + sl.start}); remove or impute them before scoring") from None
        return t

    def full(self) -> torch.Tensor:
        """All targets as one host tensor (a view for a resident source)."""
        return self.block(slice(0, self.t))


# --------------------------------------------------------------------------- core engine
@dataclass
class _FitOut:
    best: np.ndarray  # (t,) alpha index
    cv_score: np.ndarray  # (t,) mean inner score of the chosen alpha
    pred: np.ndarray | None  # (n_eval, t)
    coef: np.ndarray | None  # (p, t)
    intercept: np.ndarray | None  # (t,)
    info: dict[str, Any]
    alphas: np.ndarray  # (A,) the absolute grid of this fit


def _chunks(t: int, size: int):
    for s in range(0, t, size):
        yield slice(s, min(t, s + size))


def _fit_select(
    X: torch.Tensor, Y: Targets, train: np.ndarray, inner: list[tuple[np.ndarray, np.ndarray]],
    eval_idx: np.ndarray | None, grid: AlphaGrid, *, scoring: str, fit_intercept: bool,
    want_weights: bool, budget: int, dtype: torch.dtype, device: torch.device, on_eval=None,
) -> _FitOut:
    """Choose alpha per target by inner CV on `train`, refit on `train`, predict `eval_idx`.

    A relative grid is scaled once, by the kernel of all of `train` (inner folds and refit share
    it). Targets are read a block of columns at a time (`Y.block`) in every stage; each stage's
    decomposition is computed once and shared by all blocks. With `on_eval`, each block's
    predictions at `eval_idx` go to `on_eval(columns, predictions, responses)` (device tensors)
    instead of being collected.
    """
    t = Y.shape[1]
    n, p = X.shape
    isz = _itemsize(dtype)
    n_eval = 0 if eval_idx is None else len(eval_idx)
    kernel = _Kernel(X, train, eval_idx) if fit_intercept and len(train) <= p else None
    alphas = grid.absolute(_train_trace(X, train, fit_intercept, kernel) if grid.relative else 1.0, len(train))
    a_dev = torch.as_tensor(alphas, dtype=dtype, device=device)
    n_a = len(alphas)
    score_sum = torch.zeros(n_a, t, dtype=torch.float64)
    forms = []
    for tr, va in inner:
        chunk = _memory_plan(n, p, len(train), len(tr), len(va), n_a, t, isz, budget, False)
        dec = _decompose(X, tr, va, fit_intercept, kernel, False)
        op = _Operator(dec, a_dev, t)
        forms.append(dec.form)
        tr_d = torch.as_tensor(tr, device=device)
        va_d = torch.as_tensor(va, device=device)
        for sl in _chunks(t, chunk):
            Yc = Y.block(sl).to(device=device, dtype=dtype)
            ytr, yv = Yc[tr_d], Yc[va_d]
            if fit_intercept:
                mu = ytr.mean(0)
                ytr -= mu
                yv -= mu
            pred = op.all_alphas(ytr)
            score_sum[:, sl] += _fold_scores(pred, yv, scoring).to("cpu", torch.float64)
            del Yc, ytr, yv, pred
        del dec, op
    mean_score = score_sum / len(inner)
    best = torch.argmax(mean_score, dim=0)  # first maximum: ties go to the first alpha
    cv_score = mean_score.gather(0, best[None])[0].numpy()

    chunk = _memory_plan(n, p, len(train), len(train), max(n_eval, 1), n_a, t, isz, budget,
                         want_weights, heldout=on_eval is not None)
    dec = _decompose(X, train, eval_idx, fit_intercept, kernel, want_weights)
    del kernel
    op = _Operator(dec, a_dev, t) if n_eval else None
    F = dec.F() if want_weights else None
    tr_d = torch.as_tensor(train, device=device)
    pred_out = np.empty((n_eval, t), dtype=np.float64) if n_eval and on_eval is None else None
    coef = np.empty((p, t), dtype=np.float64) if want_weights else None
    intercept = np.empty(t, dtype=np.float64) if want_weights else None
    ev_h = torch.as_tensor(eval_idx) if n_eval else None
    for sl in _chunks(t, chunk):
        raw = Y.block(sl)
        Yc = raw.to(device=device, dtype=dtype)
        ytr = Yc[tr_d]
        mu = ytr.mean(0) if fit_intercept else torch.zeros_like(ytr[0])
        ytr -= mu
        b = best[sl].to(device)
        if op is not None and on_eval is not None:  # responses in their own precision, for exact scores
            on_eval(sl, op.per_target(ytr, b) + mu, raw[ev_h].to(device))
        elif op is not None:
            pred_out[:, sl] = (op.per_target(ytr, b) + mu).to("cpu", torch.float64).numpy()
        if want_weights:
            W = _weights(dec, F, ytr, b, a_dev)
            coef[:, sl] = W.to("cpu", torch.float64).numpy()
            intercept[sl] = (mu - dec.x_mean @ W).to("cpu", torch.float64).numpy()
    info = {"forms": forms, "refit_form": dec.form, "chunk": chunk,
            "operator": None if op is None else ("direct" if op.direct else "projected"),
            "eigenvalue_range": ([float(dec.lam.min()), float(dec.lam.max())] if dec.lam.numel() else
                                 [float("nan"), float("nan")])}
    return _FitOut(best.numpy(), cv_score, pred_out, coef, intercept, info, alphas)


def _setup(device, dtype, memory_budget) -> tuple[torch.device, torch.dtype, int]:
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    if memory_budget is None:
        budget = int(_BUDGET_FRACTION * available_memory_bytes(dev))
    else:
        budget = int(memory_budget)
        if budget <= 0:
            raise InvalidInputError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    return dev, dt, budget


def _check_scoring(scoring: str) -> None:
    if scoring not in _SCORINGS:
        raise InvalidInputError(f"scoring must be one of {_SCORINGS}, got {scoring!r}")


def _as_folds(cv, n_rows: int, groups, seed: int | None, where: str) -> list:
    """Inner folds as (train, val) index arrays relative to `n_rows` rows."""
    if isinstance(cv, (int, np.integer)):
        return list(kfold_splits(n_rows, int(cv), groups=groups, seed=seed))
    folds = list(cv)
    if len(folds) < 1:
        raise InvalidInputError(f"{where}: no folds given")
    out = []
    for tr, va in folds:
        tr, va = np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64)
        if len(tr) == 0 or len(va) == 0:
            raise InvalidInputError(f"{where}: a fold has an empty train or validation set")
        if tr.max() >= n_rows or va.max() >= n_rows or min(tr.min(), va.min()) < 0:
            raise InvalidInputError(f"{where}: fold indices out of range for {n_rows} rows")
        out.append((tr, va))
    return out


# --------------------------------------------------------------------------- estimator
class RidgeCV:
    """Ridge with alpha chosen per target by k-fold CV; sklearn/himalaya-like estimator.

    `fit(X, Y, groups=None)` selects alphas on `cv` folds (int: seeded k-fold over stimuli,
    grouped by `groups`; or explicit (train, val) index pairs / a `Splits`) and refits on all
    rows.  `alphas`: an absolute grid, used as given (as scikit-learn and himalaya use theirs);
    None: `relative_alphas` (default DEFAULT_RELATIVE_ALPHAS) times trace(Xc Xc^T) / n of X.
    Attributes: `coef_` (p, t), `intercept_` (t,), `best_alphas_` (t,), `alphas_` (the
    absolute grid used), `cv_scores_` (t,), `info_`.  `score` returns per-target R^2 (like
    himalaya).
    """

    def __init__(self, alphas: Sequence[float] | None = None, cv: Any = 5,
                 device: str | torch.device | None = "auto", dtype: str | torch.dtype = "float32",
                 memory_budget: int | None = None, fit_intercept: bool = True,
                 scoring: str = "mse", seed: int | None = 0, relative_alphas: Sequence[float] | None = None):
        self.alphas, self.cv, self.device, self.dtype = alphas, cv, device, dtype
        self.memory_budget, self.fit_intercept = memory_budget, fit_intercept
        self.scoring, self.seed, self.relative_alphas = scoring, seed, relative_alphas

    def fit(self, X, Y, groups=None) -> RidgeCV:
        _check_scoring(self.scoring)
        dev, dt, budget = _setup(self.device, self.dtype, self.memory_budget)
        grid = AlphaGrid.make(self.alphas, self.relative_alphas)
        Xh, Yh = _as_host_tensor(X, "features X"), Targets(Y, "targets Y")
        self._ravel = np.ndim(Y) == 1
        if Xh.shape[0] != Yh.n:
            raise InvalidInputError(
                f"X has {Xh.shape[0]} stimuli but Y has {Yh.n}; they must match row by row"
            )
        n = Xh.shape[0]
        folds = _as_folds(self.cv, n, groups, self.seed, "RidgeCV cv")
        Xs, factor = rescaled(Xh)  # exact: the fit on X * f with alphas * f^2 is the fit on X
        Xd = Xs.to(device=dev, dtype=dt)
        out = _fit_select(Xd, Yh, np.arange(n), folds, None, grid.for_features_scaled_by(factor), scoring=self.scoring,
                          fit_intercept=self.fit_intercept, want_weights=True, budget=budget,
                          dtype=dt, device=dev)
        self.alphas_ = out.alphas / factor**2  # in the units of X
        self.best_alphas_ = self.alphas_[out.best]
        self.cv_scores_ = out.cv_score
        self.coef_, self.intercept_ = out.coef * factor, out.intercept
        self.info_ = out.info
        self.n_features_in_ = Xh.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        Xn = _as_host_tensor(X, "features X").to(torch.float64).numpy()
        if Xn.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {Xn.shape[1]} features; the model was fit on {self.n_features_in_}"
            )
        pred = Xn @ self.coef_ + self.intercept_
        return pred[:, 0] if self._ravel else pred

    def score(self, X, Y) -> np.ndarray:
        """Per-target R^2 (NaN for constant targets)."""
        pred = torch.as_tensor(self.predict(X)).reshape(len(X), -1)
        y = _as_host_tensor(Y, "targets Y").to(torch.float64)
        return r2_score(pred, y).numpy()


# --------------------------------------------------------------------------- encoding
@dataclass
class EncodingResult:
    """Held-out encoding scores of one feature matrix (layer) against every target.

    `r` / `r2`: per target, mean over outer folds of the per-fold Pearson r / R^2 on the
    held-out stimuli (NaN where undefined: constant target or constant prediction in a fold;
    `np.nanmean` over folds).  `alphas` (n_outer, t): chosen alpha per fold; `alpha_index`
    (n_outer, t) its position in that fold's grid, `alpha_grids` (n_outer, A) the absolute grids.
    `constant_targets`: targets with zero variance over all stimuli (r = NaN, never dropped);
    `n_constant` counts them.  `predictions` (n, t): held-out predictions (NaN on rows never
    tested), if asked.
    """

    r: np.ndarray
    r2: np.ndarray
    r_folds: np.ndarray
    r2_folds: np.ndarray
    alphas: np.ndarray
    cv_scores: np.ndarray
    constant_targets: np.ndarray
    splits: Splits
    record: dict[str, Any] = field(default_factory=dict)
    predictions: np.ndarray | None = None
    weights: list[np.ndarray] | None = None
    intercepts: list[np.ndarray] | None = None
    alpha_index: np.ndarray | None = None
    alpha_grids: np.ndarray | None = None
    eigenvalue_ranges: np.ndarray | None = None  # (n_outer, 2) smallest / largest kept kernel eigenvalue

    def alpha_edges(self) -> tuple[int, int]:
        """(low, high): targets whose chosen alpha is the lowest / highest of the grid in most
        outer folds, counted only where that end still constrains the fit: the smallest alpha
        above 1/100 of the smallest kept eigenvalue of the fold's training kernel, the largest
        below 100 times its largest (beyond, a smaller alpha leaves the fit unregularised and a
        larger one only rescales predictions that are already ~0: the grid did not decide).
        Constant targets (no choice) are not counted."""
        if self.alpha_index is None:
            return 0, 0
        last = self.alpha_grids.shape[1] - 1
        low_binds, high_binds = _binding_ends(self.alpha_grids, self.eigenvalue_ranges)
        low = (self.alpha_index == 0) & low_binds[:, None]
        high = (self.alpha_index == last) & high_binds[:, None]
        majority = self.alpha_index.shape[0] / 2
        keep = ~self.constant_targets
        return int((low.sum(0) > majority)[keep].sum()), int((high.sum(0) > majority)[keep].sum())

    @property
    def n_constant(self) -> int:
        return int(self.constant_targets.sum())

    @property
    def n_undefined(self) -> int:
        """Targets whose r is NaN (constant targets included)."""
        return int(np.isnan(self.r).sum())

    def summary(self) -> dict[str, Any]:
        return {
            "median_r": float(np.nanmedian(self.r)) if np.isfinite(self.r).any() else float("nan"),
            "mean_r": float(np.nanmean(self.r)) if np.isfinite(self.r).any() else float("nan"),
            "n_targets": int(self.r.size),
            "n_constant": self.n_constant,
            "n_undefined": self.n_undefined,
        }


_EDGE_MARGIN = 100.0


def _binding_ends(grids: np.ndarray, eig: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per fold: does the grid's smallest / largest alpha still change the fit (module `alpha_edges`)?"""
    if eig is None:
        return np.ones(len(grids), bool), np.ones(len(grids), bool)
    with np.errstate(invalid="ignore"):
        low = ~(grids[:, 0] <= eig[:, 0] / _EDGE_MARGIN)
        high = ~(grids[:, -1] >= eig[:, 1] * _EDGE_MARGIN)
    return low, high


def _nanmean0(a: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a)
    cnt = ok.sum(0)
    s = np.where(ok, a, 0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)


def ridge_cv_multi(
    features: Mapping[str, Any],
    Y: Any,
    splits: Splits | Sequence[tuple[np.ndarray, np.ndarray]] | int = 5,
    alphas: Sequence[float] | None = None,
    *,
    relative_alphas: Sequence[float] | None = None,
    inner_cv: int | Splits | Sequence = 5,
    groups: Sequence | np.ndarray | None = None,
    seed: int | None = 0,
    scoring: str = "mse",
    fit_intercept: bool = True,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype = "float32",
    memory_budget: int | None = None,
    return_predictions: bool = False,
    return_weights: bool = False,
    reduction: str | None = None,
    reduction_kwargs: Mapping[str, Any] | None = None,
    on_predictions: Callable[[int, np.ndarray, slice, torch.Tensor], None] | None = None,
) -> dict[str, EncodingResult]:
    """Score several feature matrices (layers) against the same targets with nested CV.

    `splits` (outer, held-out scoring): a `Splits`, explicit (train, test) pairs, or an int
    (seeded k-fold grouped by `groups`, i.e. stimulus ids per row).  For each outer fold the
    alpha of every target is chosen by `inner_cv` folds over the outer training rows (int:
    seeded grouped k-fold; or one `Splits`/list of pairs with indices *relative to the outer
    training rows*, used for every outer fold; or a list of those, one per outer fold), then
    the model is refit on all outer training rows and scored on the outer test rows.

    `alphas`: an absolute grid, used as given; None: `relative_alphas` (default
    DEFAULT_RELATIVE_ALPHAS) times each outer fit's mean kernel eigenvalue (`scaled_alphas`;
    `record["alpha_grid"]` has every fold's absolute grid).

    `reduction` ("srp", "pca" or None) shrinks wide layers first (see `reduction.py`): the
    random projection once per layer (it ignores the data), PCA per outer fold, fit on that
    fold's training rows only.  What was applied is in `record["reduction"]`.
    """
    _check_scoring(scoring)
    if not isinstance(features, Mapping) or not features:
        raise InvalidInputError("features must be a non-empty mapping of layer name -> (n x p) array")
    dev, dt, budget = _setup(device, dtype, memory_budget)
    grid = AlphaGrid.make(alphas, relative_alphas)
    Yh = Y if isinstance(Y, Targets) else Targets(Y, "targets Y")
    n, t = Yh.shape
    groups_np = None if groups is None else np.asarray(groups)
    if groups_np is not None and len(groups_np) != n:
        raise InvalidInputError(f"{len(groups_np)} stimulus ids for {n} rows of Y")
    if isinstance(splits, Splits):
        outer = splits
    elif isinstance(splits, (int, np.integer)):
        outer = kfold_splits(n, int(splits), groups=groups_np, seed=seed)
    else:
        folds = _as_folds(splits, n, None, None, "outer splits")
        outer = Splits("custom", None, folds, n)
    if outer.n_samples != n:
        raise InvalidInputError(f"splits are for {outer.n_samples} rows, Y has {n}")

    constant = Yh.constant  # exact in any dtype: no float64 copy of Y
    if constant.any():
        log.warning("%d of %d targets are constant over all stimuli; their r is NaN",
                    int(constant.sum()), t)

    inner_per_fold = inner_folds(inner_cv, outer, groups_np, seed)
    results: dict[str, EncodingResult] = {}
    for name, X in features.items():
        Xh = _as_host_tensor(X, f"features[{name!r}]")
        if Xh.shape[0] != n:
            raise InvalidInputError(
                f"features[{name!r}] has {Xh.shape[0]} stimuli but Y has {n}; align them first"
            )
        if Xh.shape[1] == 0:
            raise InvalidInputError(f"features[{name!r}] has no columns (width 0); give at least one feature")
        if reduction in (None, "none"):  # the largest stage's need, so the figure named then works
            need = ridge_min_bytes(n, Xh.shape[1], outer, inner_per_fold, len(grid.values), dt, return_weights, t)
            check_budget(need, budget, f"layer {name!r} (n={n}, p={Xh.shape[1]}, {len(grid.values)} alphas)")
        Xh, factor = rescaled(Xh)  # magnitudes that would overflow/underflow: exact power-of-two rescaling
        x_for_fold, red_records = _reducer(Xh, reduction, dict(reduction_kwargs or {}), dev, dt)
        results[name] = _encode_one(
            x_for_fold, Yh, outer, inner_per_fold, grid, constant, scoring=scoring,
            fit_intercept=fit_intercept, budget=budget, dtype=dt, device=dev,
            return_predictions=return_predictions, return_weights=return_weights, x_factor=factor,
            on_predictions=on_predictions)
        results[name].record.update(layer=name, n_features=int(Xh.shape[1]),
                                    reduction=red_records)
        if factor != 1.0:
            results[name].record["feature_rescaling"] = (
                f"features multiplied by 2^{int(np.log2(factor))} (exact) and alphas by its square: the same fit, "
                "without overflow or underflow")
    return results


def _reducer(Xh: torch.Tensor, reduction: str | None, kwargs: dict, dev, dt):
    """A function outer-train-rows -> device features, and the list it records into."""
    from .reduction import reduce_features

    records: list[dict[str, Any]] = []
    if reduction in (None, "none"):
        Xd = Xh.to(device=dev, dtype=dt)
        return (lambda _tr: Xd), records
    if reduction == "srp":
        Xd, rec = reduce_features(Xh, "srp", device=dev, dtype=dt, **kwargs)
        records.append(rec)
        return (lambda _tr: Xd), records
    if reduction == "pca":
        def per_fold(tr):
            Xd, rec = reduce_features(Xh, "pca", tr, device=dev, dtype=dt, **kwargs)
            records.append(rec)
            return Xd
        return per_fold, records
    raise InvalidInputError(f"reduction must be None, 'srp' or 'pca', got {reduction!r}")


def inner_folds(inner_cv, outer: Splits, groups, seed) -> list[list]:
    """Inner folds (relative to each outer training set) for every outer fold."""
    per_fold = []
    for k, (tr, _te) in enumerate(outer):
        if isinstance(inner_cv, (int, np.integer)):
            g = None if groups is None else groups[tr]
            folds = _as_folds(int(inner_cv), len(tr), g, seed, "inner cv")
        elif (isinstance(inner_cv, Sequence) and len(inner_cv) == len(outer)
              and all(isinstance(s, (Splits, list)) for s in inner_cv)):
            folds = _as_folds(inner_cv[k], len(tr), None, None, f"inner cv of outer fold {k}")
        else:
            folds = _as_folds(inner_cv, len(tr), None, None, "inner cv")
        per_fold.append(folds)
    return per_fold


def _encode_one(x_for_fold, Yh: Targets, outer: Splits, inner_per_fold, grid: AlphaGrid, constant, *, scoring,
                fit_intercept, budget, dtype, device, return_predictions, return_weights, x_factor: float = 1.0,
                on_predictions=None) -> EncodingResult:
    """Nested CV of one layer. `x_factor`: the power of two the features were multiplied by
    (absolute alphas are scaled by its square and weights back by it; alphas and eigenvalues are
    reported in the original units). Held-out scores are computed a block of targets at a time."""
    n, t = Yh.shape
    n_out = len(outer)
    r_f = np.full((n_out, t), np.nan)
    r2_f = np.full((n_out, t), np.nan)
    chosen = np.empty((n_out, t))
    index = np.empty((n_out, t), dtype=np.int64)
    grids = np.empty((n_out, len(grid.values)))
    eig = np.empty((n_out, 2))
    cvs = np.empty((n_out, t))
    pred_dtype = np.float32 if dtype == torch.float32 else np.float64
    preds = np.full((n, t), np.nan, dtype=pred_dtype) if return_predictions else None
    weights, intercepts, infos = ([] if return_weights else None), ([] if return_weights else None), []
    for k, (tr, te) in enumerate(outer):
        inner = [(tr[a], tr[b]) for a, b in inner_per_fold[k]]

        def on_eval(sl, pred, y, k=k, te=te):  # held-out r and R^2 of one block of targets (float64)
            p64, y64 = pred.to(torch.float64), y.to(torch.float64)
            r_f[k, sl] = pearson_columns(p64, y64).cpu().numpy()
            r2_f[k, sl] = r2_score(p64, y64).cpu().numpy()
            if preds is not None:
                preds[te, sl] = pred.cpu().numpy()
            if on_predictions is not None:
                on_predictions(k, te, sl, pred)

        out = _fit_select(x_for_fold(tr), Yh, tr, inner, te, grid.for_features_scaled_by(x_factor), scoring=scoring,
                          fit_intercept=fit_intercept, want_weights=return_weights,
                          budget=budget, dtype=dtype, device=device, on_eval=on_eval)
        unit = x_factor ** 2  # back to the original units of the features
        chosen[k] = out.alphas[out.best] / unit
        index[k] = out.best
        grids[k] = out.alphas / unit
        eig[k] = np.asarray(out.info["eigenvalue_range"]) / unit
        cvs[k] = out.cv_score
        infos.append(out.info)
        if return_weights:
            weights.append(out.coef * x_factor)
            intercepts.append(out.intercept)
    r = _nanmean0(r_f)
    r[constant] = np.nan
    record = {
        "metric": "ridge-cv-encoding",
        "alpha_grid": {**grid.to_record(), "absolute_per_fold": grids.tolist()},
        "scoring": scoring,
        "fit_intercept": fit_intercept,
        "dtype": str(dtype).replace("torch.", ""),
        "device": str(device),
        "n_outer": n_out,
        "n_inner": [len(f) for f in inner_per_fold],
        "r_aggregation": "mean over outer folds of per-fold Pearson r",
        "forms": [i["forms"] + [i["refit_form"]] for i in infos],
        "n_constant_targets": int(constant.sum()),
    }
    return EncodingResult(r, _nanmean0(r2_f), r_f, r2_f, chosen, cvs, constant, outer, record,
                          preds, weights, intercepts, index, grids, eig)


def cross_validated_encoding(
    X: Any, Y: Any, splits: Splits | Sequence | int = 5,
    alphas: Sequence[float] | None = None, **kwargs: Any,
) -> EncodingResult:
    """One feature matrix: `ridge_cv_multi({"X": X}, Y, splits, alphas, **kwargs)["X"]`."""
    return ridge_cv_multi({"X": X}, Y, splits, alphas, **kwargs)["X"]
