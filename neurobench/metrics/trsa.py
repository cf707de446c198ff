"""Topological RSA (Lin & Kriegeskorte, PNAS 2024): geo-topological and geodesic RDMs.

`gt_transform` follows the authors' definition, per RDM: rank-transform the dissimilarities,
scale the ranks to [0, 1], then map values at or below the l-quantile to 0, at or above the
u-quantile to 1, and linearly in between (defaults l = 0.2, u = 0.8). l = 0, u = 1 keeps the
(rank) geometry; l close to u keeps only the topology (which pairs are "near").

`geodesic_rdms` is the authors' two-step RGDM (`doerlbh/TopologicalRSA`, `utils_transform.py`:
`geodesic_transform(gt_transform(rdm, l, u), gd_type="twostep")`): geo-topologically transform,
min-max scale to [0, 1], build the stimulus graph whose edges are the entries strictly between 0
and 1 (entries equal to 1 are removed on purpose; entries equal to 0 are absent too, because the
authors build the graph with networkx's `from_numpy_array`, which reads a zero as "no edge"), take
all-pairs shortest paths over those weights (batched Floyd-Warshall) and rank-transform the path
lengths (average ranks 1..K, as scipy's `rankdata`; disconnected pairs are infinite and tie at
the top). rsatoolbox's `geodesic_transform` is the graph step of the same recipe.

`isomap_geodesic_rdms` is a different construct, kept under its own name: Isomap's neighbourhood
graph (Tenenbaum, de Silva & Langford 2000) on the raw dissimilarities (each stimulus's k nearest
neighbours, or every pair at or below the u-quantile), shortest paths, ranks scaled to [0, 1].

All return condensed RDMs, so any comparator applies. See docs/rsa.md for where `gt_transform`
differs from rsatoolbox's `geotopological_transform`.
"""

from __future__ import annotations

import torch

from ..errors import InvalidInputError
from .ranks import average_ranks
from .rdm import as_tensor, square_form, upper_triangle
from .rsa import compare_rdms


def _check_lu(lower: float, upper: float) -> None:
    if not 0.0 <= lower <= upper <= 1.0:
        raise InvalidInputError(f"need 0 <= lower <= upper <= 1; got lower={lower}, upper={upper}")


def _scaled_ranks(v: torch.Tensor) -> torch.Tensor:
    """Average ranks of the non-NaN entries of each row, scaled to [0, 1]; NaN stays NaN."""
    out = torch.full_like(v, float("nan"))
    flat = v.reshape(-1, v.shape[-1])
    res = out.reshape(-1, v.shape[-1])
    for i in range(flat.shape[0]):
        ok = ~torch.isnan(flat[i])
        r = average_ranks(flat[i, ok][None])[0]
        lo, hi = r.min(), r.max()
        res[i, ok] = (r - lo) / (hi - lo) if hi > lo else torch.zeros_like(r)
    return res.reshape(v.shape)


def gt_transform(rdms, lower: float = 0.2, upper: float = 0.8, device=None, dtype=None) -> torch.Tensor:
    """Geo-topological transform of condensed RDMs (..., K), quantiles taken per RDM."""
    _check_lu(lower, upper)
    v = as_tensor(rdms, device, dtype)
    r = _scaled_ranks(v)
    flat = r.reshape(-1, r.shape[-1])
    q = torch.tensor([lower, upper], dtype=r.dtype, device=r.device)
    ql, qu = torch.nanquantile(flat, q, dim=-1)  # (R,) each
    ql, qu = ql[:, None], qu[:, None]
    width = qu - ql
    lin = (flat - ql) / torch.where(width > 0, width, torch.ones_like(width))
    step = (flat > ql).to(flat.dtype)  # lower == upper: pure topology
    out = torch.where(width > 0, lin.clamp(0.0, 1.0), step)
    out = torch.where(torch.isnan(flat), flat, out)
    return out.reshape(v.shape)


def shortest_paths(weights: torch.Tensor) -> torch.Tensor:
    """All-pairs shortest path lengths (..., n, n) by Floyd-Warshall; inf marks missing edges."""
    d = weights.clone()
    n = d.shape[-1]
    d.diagonal(dim1=-2, dim2=-1).zero_()
    for k in range(n):
        d = torch.minimum(d, d[..., :, k:k + 1] + d[..., k:k + 1, :])
    return d


def _complete(rdms, device, dtype, what: str) -> torch.Tensor:
    v = as_tensor(rdms, device, dtype)
    if bool(torch.isnan(v).any()):
        raise InvalidInputError(f"{what} need complete RDMs (no NaN)")
    return v


def geodesic_rdms(rdms, lower: float = 0.2, upper: float = 0.8, device=None, dtype=None) -> torch.Tensor:
    """The authors' two-step RGDM of condensed RDMs (..., K): average ranks 1..K of geodesic
    distances over the geo-topologically transformed graph (module docstring)."""
    v = _complete(rdms, device, dtype, "geodesic RDMs")
    g = gt_transform(v, lower, upper)
    lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    if bool((hi <= lo).any()):
        raise InvalidInputError("an RDM is constant after the geo-topological transform: no graph to walk")
    sq = square_form((g - lo) / (hi - lo))
    edge = (sq > 0) & (sq != 1)
    graph = torch.where(edge, sq, torch.full_like(sq, float("inf")))
    return average_ranks(upper_triangle(shortest_paths(graph)))


def isomap_geodesic_rdms(rdms, upper: float | None = 0.8, k_nearest: int | None = None, device=None,
                         dtype=None) -> torch.Tensor:
    """Isomap-style geodesic RDMs (..., K): graph distances over the raw dissimilarities of a
    neighbourhood graph, ranks scaled to [0, 1]. Not the authors' tRSA RGDM (`geodesic_rdms`).

    The graph keeps either the pairs at or below the per-RDM `upper` quantile (an epsilon ball)
    or, with `k_nearest`, each stimulus's k nearest (an edge kept by either end). Pairs left
    disconnected tie at the top.
    """
    v = _complete(rdms, device, dtype, "geodesic RDMs")
    sq = square_form(v)
    n = sq.shape[-1]
    inf = torch.tensor(float("inf"), dtype=v.dtype, device=v.device)
    if k_nearest is not None:
        if not 1 <= k_nearest < n:
            raise InvalidInputError(f"k_nearest must be in [1, {n - 1}], got {k_nearest}")
        masked = sq + torch.diag(torch.full((n,), float("inf"), dtype=v.dtype, device=v.device))
        idx = masked.topk(k_nearest, dim=-1, largest=False).indices
        keep = torch.zeros_like(sq, dtype=torch.bool).scatter_(-1, idx, True)
        keep = keep | keep.transpose(-1, -2)
    else:
        if upper is None or not 0.0 < upper <= 1.0:
            raise InvalidInputError(f"upper must be in (0, 1], got {upper}")
        thr = torch.quantile(v.reshape(-1, v.shape[-1]), upper, dim=-1)
        keep = sq <= thr.reshape(*v.shape[:-1], 1, 1)
    graph = torch.where(keep, sq, inf)
    paths = upper_triangle(shortest_paths(graph))
    finite_max = torch.where(torch.isinf(paths), torch.zeros_like(paths), paths).amax(-1, keepdim=True)
    paths = torch.where(torch.isinf(paths), finite_max + 1, paths)  # disconnected: tie at the top
    return _scaled_ranks(paths)


def compare_trsa(model_rdms, data_rdms, method: str = "tau_a", lower: float = 0.2,
                 upper: float = 0.8, **kwargs) -> torch.Tensor:
    """Topological RSA: compare geo-topologically transformed model and data RDMs."""
    return compare_rdms(gt_transform(model_rdms, lower, upper), gt_transform(data_rdms, lower, upper),
                        method, **kwargs)


def compare_rgdm(model_rdms, data_rdms, method: str = "tau_a", lower: float = 0.2,
                 upper: float = 0.8, **kwargs) -> torch.Tensor:
    """Topological RSA on the authors' two-step RGDMs of model and data RDMs."""
    return compare_rdms(geodesic_rdms(model_rdms, lower, upper), geodesic_rdms(data_rdms, lower, upper),
                        method, **kwargs)
