"""Effective dimensionality: the participation ratio of the response covariance's eigenvalues.

PR = (sum lambda)^2 / sum lambda^2 = tr(C)^2 / ||C||_F^2, so no eigendecomposition is needed:
with X centred over stimuli, tr(C) ~ ||X||_F^2 and ||C||_F^2 ~ ||X X'||_F^2 (the scale cancels).
It ignores positions, so the shuffled-positions control leaves it unchanged by construction.

CI: resampling stimuli with replacement repeats stimuli, which lowers the covariance's rank and
biases bootstrap PRs downward (badly when stimuli < units), so percentile intervals can miss the
estimate entirely. We report the normal interval PR +- z * SE_boot, using the bootstrap only for
the spread, and keep the bootstrap mean as a diagnostic of that bias.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import stats

from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError
from ._common import UnitMask, as_responses, cpu_threads_for, rng_for


@dataclass(frozen=True)
class DimensionalityResult:
    """Participation ratio with a percentile bootstrap CI over stimuli."""

    participation_ratio: float
    se: float  # bootstrap standard error
    boot_mean: float  # mean bootstrap PR (below the estimate when stimuli repeat; diagnostic)
    ci_low: float
    ci_high: float
    ci_level: float
    n_boot: int
    n_stimuli: int
    n_units: int
    n_constant: int
    seed: int

    def summary(self) -> dict:
        return asdict(self)


def _pr_batch(x: torch.Tensor) -> torch.Tensor:
    """x: (B, S, N) -> PR per batch element, via the smaller Gram matrix."""
    xc = x - x.mean(dim=1, keepdim=True)
    g = xc @ xc.transpose(1, 2) if x.shape[1] <= x.shape[2] else xc.transpose(1, 2) @ xc
    tr = torch.diagonal(g, dim1=1, dim2=2).sum(-1)
    return tr**2 / (g**2).sum((1, 2))


def participation_ratio(responses, *, device="cpu", dtype="float64") -> float:
    """(sum eig)^2 / sum eig^2 of the (n_units x n_units) covariance over stimuli."""
    x = as_responses(responses)
    if x.std(axis=0).max() == 0:
        raise InvalidInputError("every unit is constant: the covariance is zero, PR undefined")
    t = torch.as_tensor(x, device=resolve_device(device), dtype=resolve_dtype(dtype))
    return float(_pr_batch(t[None])[0])


def effective_dimensionality(responses, *, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                             device="cpu", dtype="float64",
                             chunk_bytes: int = 256 * 2**20) -> DimensionalityResult:
    """PR of the layer's responses and a percentile CI from resampling stimuli with replacement."""
    x = as_responses(responses)
    mask = UnitMask.of(x)
    if not mask.valid.any():
        raise InvalidInputError("every unit is constant: the covariance is zero, PR undefined")
    if not 0 < ci < 1:
        raise InvalidInputError(f"ci must be in (0, 1), got {ci}")
    xv = x[:, mask.valid]
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    t = torch.as_tensor(xv, device=dev, dtype=dt)
    pr = float(_pr_batch(t[None])[0])
    s, n = xv.shape
    idx = rng_for(seed).integers(0, s, size=(n_boot, s))
    per = (s * n + min(s, n) ** 2) * dt.itemsize * 3
    step = max(1, int(chunk_bytes // per))
    boots = []
    with cpu_threads_for(per * min(step, n_boot) // dt.itemsize, dev):
        for a in range(0, n_boot, step):
            sel = torch.as_tensor(idx[a:a + step].reshape(-1), device=dev)
            b = _pr_batch(t.index_select(0, sel).reshape(-1, s, n))
            boots.append(b.double().cpu().numpy())
    boot = np.concatenate(boots) if boots else np.empty(0)
    boot = boot[np.isfinite(boot)]  # a resample of identical stimuli has zero covariance
    if boot.size < 2:
        raise InvalidInputError(f"n_boot must be >= 2 for a bootstrap CI, got {n_boot}")
    se = float(boot.std(ddof=1))
    half = float(stats.norm.ppf(0.5 + ci / 2)) * se
    return DimensionalityResult(pr, se, float(boot.mean()), pr - half, pr + half, ci, n_boot, s,
                                int(mask.valid.sum()), mask.n_constant, seed)
