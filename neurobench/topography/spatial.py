"""Neighbourhoods on a sheet or in a brain volume, connected components, and Moran's I.

Sheets from `neurobench.sheet` are integer grids, where 4- or 8-connectivity is natural; voxel,
vertex and electrode coordinates are irregular, where a k-nearest-neighbour or radius graph is.
Every function takes (n, d) coordinates so model sheets and brain data share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from ..errors import InvalidInputError
from ._common import perm_p_value, permutations


def is_grid(positions: np.ndarray) -> bool:
    """True for 2-D integer coordinates (a sheet), where ndimage labelling applies."""
    pos = np.asarray(positions, dtype=np.float64)
    return pos.ndim == 2 and pos.shape[1] == 2 and bool(np.all(pos == np.round(pos)))


def neighbourhood_graph(positions, kind: str = "auto", connectivity: int = 8, k: int = 6,
                        radius: float | None = None) -> sparse.csr_matrix:
    """Symmetric binary adjacency (n x n, zero diagonal) between units or voxels.

    kind: "grid" (integer 2-D sheet; `connectivity` 4 = edge neighbours, 8 = edge + corner),
    "knn" (each point's k nearest, symmetrised), "radius" (all pairs within `radius`), or
    "auto" (grid for integer 2-D positions, else knn).
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2:
        raise InvalidInputError(f"positions must be (n, d), got shape {pos.shape}")
    n = pos.shape[0]
    if kind == "auto":
        kind = "grid" if is_grid(pos) else "knn"
    tree = cKDTree(pos)
    if kind == "grid":
        if not is_grid(pos):
            raise InvalidInputError("kind='grid' needs integer 2-D positions; use 'knn' or 'radius'")
        if connectivity not in (4, 8):
            raise InvalidInputError(f"grid connectivity must be 4 or 8, got {connectivity}")
        r = 1.0 if connectivity == 4 else np.sqrt(2.0)
        pairs = tree.query_pairs(r * (1 + 1e-9), output_type="ndarray")
    elif kind == "radius":
        if radius is None or radius <= 0:
            raise InvalidInputError(f"kind='radius' needs a positive radius, got {radius!r}")
        pairs = tree.query_pairs(radius, output_type="ndarray")
    elif kind == "knn":
        if not 1 <= k < n:
            raise InvalidInputError(f"kind='knn' needs 1 <= k < n_points={n}, got k={k}")
        _, idx = tree.query(pos, k=k + 1)
        rows = np.repeat(np.arange(n), k)
        cols = idx[:, 1:].ravel()
        pairs = np.stack([rows, cols], axis=1)
    else:
        raise InvalidInputError(f"unknown neighbourhood kind {kind!r}; use grid, knn, radius or auto")
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    a = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    a = ((a + a.T) > 0).astype(np.float64)
    a.setdiag(0)
    a.eliminate_zeros()
    return a.tocsr()


def connected_components(mask, positions, graph: sparse.spmatrix | None = None,
                         connectivity: int = 8) -> np.ndarray:
    """Component label per unit (0 = not in mask, 1..K = component), components of masked units.

    On a grid with no graph given, scipy.ndimage.label does the work (4- or 8-connectivity);
    otherwise the graph's edges among masked units define connectivity.
    """
    mask = np.asarray(mask, dtype=bool)
    pos = np.asarray(positions, dtype=np.float64)
    if mask.shape != (pos.shape[0],):
        raise InvalidInputError(f"mask must have one entry per unit ({pos.shape[0]}), got {mask.shape}")
    labels = np.zeros(mask.shape[0], dtype=np.int64)
    if not mask.any():
        return labels
    if graph is None and is_grid(pos):
        ip = pos.astype(np.int64)
        ip -= ip.min(axis=0)
        shape = tuple(int(v) + 1 for v in ip.max(axis=0))
        if len({(a, b) for a, b in ip}) != len(ip):
            raise InvalidInputError("two units share one grid cell; pass a graph instead")
        img = np.zeros(shape, dtype=bool)
        img[ip[mask, 0], ip[mask, 1]] = True
        structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
        lab_img, _ = ndimage.label(img, structure=structure)
        labels[mask] = lab_img[ip[mask, 0], ip[mask, 1]]
        return _relabel(labels)
    if graph is None:
        graph = neighbourhood_graph(pos, kind="knn")
    idx = np.flatnonzero(mask)
    sub = sparse.csr_matrix(graph)[idx][:, idx]
    _, comp = csgraph.connected_components(sub, directed=False)
    labels[idx] = comp + 1
    return _relabel(labels)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Number components 1..K by first appearance so results do not depend on the route taken."""
    out = np.zeros_like(labels)
    seen: dict[int, int] = {}
    for i, v in enumerate(labels):
        if v:
            out[i] = seen.setdefault(int(v), len(seen) + 1)
    return out


def component_sizes(labels: np.ndarray) -> np.ndarray:
    """Sizes of components 1..K, largest first."""
    sizes = np.bincount(labels)[1:]
    return np.sort(sizes[sizes > 0])[::-1]


@dataclass(frozen=True)
class MoranResult:
    """Moran's I of a map over a neighbourhood graph, with its permutation null."""

    i: float
    expected: float  # -1 / (n - 1), the mean of I under no spatial structure
    p_value: float | None  # one-sided (positive autocorrelation), permutation; None if n_perm=0
    null: np.ndarray
    n_units: int


def morans_i(values, graph: sparse.spmatrix, n_perm: int = 999, seed: int = 0) -> MoranResult:
    """Moran's I = (n / S0) * z'Wz / z'z with binary weights W; p from permuting values over units."""
    x = np.asarray(values, dtype=np.float64)
    w = sparse.csr_matrix(graph, dtype=np.float64)
    n = x.shape[0]
    if w.shape != (n, n):
        raise InvalidInputError(f"graph must be ({n}, {n}) for {n} values, got {w.shape}")
    if n < 3:
        raise InvalidInputError(f"Moran's I needs at least 3 units, got {n}")
    s0 = float(w.sum())
    if s0 == 0:
        raise InvalidInputError("the neighbourhood graph has no edges; use a larger radius or k")
    z = x - x.mean()
    zz = float(z @ z)
    if zz == 0:
        raise InvalidInputError("Moran's I is undefined for a constant map")
    i_obs = n / s0 * float(z @ (w @ z)) / zz
    null = np.empty(0)
    if n_perm:
        perms = permutations(n, n_perm, seed)
        zp = z[perms].T  # (n, n_perm); permuting values keeps z'z fixed
        null = n / s0 * np.einsum("ij,ij->j", zp, w @ zp) / zz
    p = perm_p_value(i_obs, null) if n_perm else None
    return MoranResult(i=i_obs, expected=-1.0 / (n - 1), p_value=p, null=null, n_units=n)
