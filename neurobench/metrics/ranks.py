"""Exact rank statistics for RDM comparison: average ranks and Kendall tau-a, batched.

Two back ends compute the same integers/ranks:
- torch (any device): average ranks by sort + searchsorted; tau-a by chunked pairwise sign
  products (one matmul per chunk), which is what a GPU does fastest;
- numba (CPU, when installed): per-row sorts and an O(K log K) Fenwick-tree count of discordant
  pairs per (model, data) pair, in parallel threads. On a CPU this is ~100x less work than the
  pairwise products, which is why it exists.
Both are exact (ties count as neither concordant nor discordant); tests check them against each
other and against rsatoolbox.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

log = logging.getLogger(__name__)

try:  # optional accelerator for the CPU path
    if os.environ.get("NEUROBENCH_NO_NUMBA"):
        raise ImportError("disabled by NEUROBENCH_NO_NUMBA")
    # numba's compiled-kernel cache goes under NEUROBENCH_HOME, not beside the installed sources
    from ..paths import subdir

    os.environ.setdefault("NUMBA_CACHE_DIR", str(subdir("numba-cache")))
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None
    HAVE_NUMBA = False


def argsort_rows(a: np.ndarray) -> np.ndarray:
    """Row-wise argsort of a 2-D float array, split across threads (numpy releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(os.cpu_count() or 1, a.shape[0] // 64))
    if workers == 1:
        return np.argsort(a, axis=1)
    out = np.empty(a.shape, dtype=np.int64)
    bounds = np.linspace(0, a.shape[0], workers + 1).astype(int)

    def part(i):
        out[bounds[i]:bounds[i + 1]] = np.argsort(a[bounds[i]:bounds[i + 1]], axis=1)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(part, range(workers)))
    return out


def _use_numba(t: torch.Tensor, backend: str) -> bool:
    if backend == "torch":
        return False
    if backend == "numba":
        if not HAVE_NUMBA:
            raise ImportError("backend='numba' needs the numba package (pip install numba)")
        return True
    return HAVE_NUMBA and t.device.type == "cpu"


def average_ranks(x: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Ranks 1..K along the last axis, ties get their average rank (scipy `rankdata` default)."""
    if x.shape[-1] == 0:
        return x.clone()
    if _use_numba(x, backend):
        flat = x.detach().reshape(-1, x.shape[-1]).cpu().numpy().astype(np.float64, copy=False)
        flat = np.ascontiguousarray(flat)
        out = _nb_average_ranks(flat, argsort_rows(flat))
        return torch.from_numpy(out).to(dtype=x.dtype).reshape(x.shape)
    s, _ = torch.sort(x, dim=-1)
    lo = torch.searchsorted(s, x.contiguous(), right=False)
    hi = torch.searchsorted(s, x.contiguous(), right=True)
    return (lo + hi + 1).to(x.dtype) / 2


def tau_a(x: torch.Tensor, y: torch.Tensor, backend: str = "auto",
          max_elements: int = 2**26) -> torch.Tensor:
    """Kendall tau-a between every row of x (M, K) and every row of y (N, K) -> (M, N) float64.

    tau-a = (concordant - discordant) / (K (K - 1) / 2); a pair tied in x or y counts as neither.
    """
    m, k = x.shape
    n = y.shape[0]
    total = k * (k - 1) // 2
    if m == 0 or n == 0:
        return torch.zeros(m, n, dtype=torch.float64, device=x.device)
    if total == 0:
        return torch.full((m, n), float("nan"), dtype=torch.float64, device=x.device)
    if _use_numba(x, backend):
        xa = np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float64, copy=False))
        ya = np.ascontiguousarray(y.detach().cpu().numpy().astype(np.float64, copy=False))
        num = _nb_tau_a_numerator(xa, ya, argsort_rows(xa), argsort_rows(ya))
        out = torch.from_numpy(num.astype(np.float64) / total)
        return out.to(x.device)
    return _torch_tau_a_numerator(x, y, max_elements).to(torch.float64) / total


def _torch_tau_a_numerator(x: torch.Tensor, y: torch.Tensor, max_elements: int) -> torch.Tensor:
    """sum over element pairs of sign(dx) * sign(dy), by chunks of rows of the pair matrix."""
    m, k = x.shape
    n = y.shape[0]
    # float32 sums of +-1 are exact below 2**24 terms per chunk; use float64 beyond that.
    work = torch.float32 if k * k < 2**24 else torch.float64
    acc = torch.zeros(m, n, dtype=torch.float64, device=x.device)
    # rows of the pair matrix per chunk so that the (m + n, rows, k) sign tensor fits the budget
    rows = max(1, min(k, max_elements // max(1, (m + n) * k)))
    xs, ys = x.to(work), y.to(work)
    for start in range(0, k, rows):
        stop = min(k, start + rows)
        sx = torch.sign(xs[:, start:stop, None] - xs[:, None, :]).reshape(m, -1)
        sy = torch.sign(ys[:, start:stop, None] - ys[:, None, :]).reshape(n, -1)
        acc += (sx @ sy.T).to(torch.float64)
    return acc / 2  # every unordered pair was counted twice


if HAVE_NUMBA:

    @numba.njit(cache=True, parallel=True)
    def _nb_average_ranks(x, orders):  # pragma: no cover - compiled
        r, k = x.shape
        out = np.empty((r, k), dtype=np.float64)
        for i in numba.prange(r):
            order = orders[i]
            j = 0
            while j < k:
                v = x[i, order[j]]
                e = j + 1
                while e < k and x[i, order[e]] == v:
                    e += 1
                avg = 0.5 * (j + e - 1) + 1.0
                for t in range(j, e):
                    out[i, order[t]] = avg
                j = e
        return out

    @numba.njit(cache=True)
    def _nb_dense(row, order):  # pragma: no cover - compiled
        """dense 0-based ranks, number of distinct values, tied pairs, given an argsort order."""
        k = row.shape[0]
        dense = np.empty(k, dtype=np.int64)
        d = 0
        ties = 0
        run = 1
        dense[order[0]] = 0
        for j in range(1, k):
            if row[order[j]] != row[order[j - 1]]:
                d += 1
                ties += run * (run - 1) // 2
                run = 1
            else:
                run += 1
            dense[order[j]] = d
        ties += run * (run - 1) // 2
        return dense, d + 1, ties

    @numba.njit(cache=True, parallel=True)
    def _nb_tau_a_numerator(x, y, xo, yo):  # pragma: no cover - compiled
        m, k = x.shape
        n = y.shape[0]
        xd = np.empty((m, k), dtype=np.int64)
        xt = np.empty(m, dtype=np.int64)
        for i in numba.prange(m):
            d, _, t = _nb_dense(x[i], xo[i])
            xd[i] = d
            xt[i] = t
        yd = np.empty((n, k), dtype=np.int64)
        yn = np.empty(n, dtype=np.int64)
        yt = np.empty(n, dtype=np.int64)
        for j in range(n):
            d, nd, t = _nb_dense(y[j], yo[j])
            yd[j] = d
            yn[j] = nd
            yt[j] = t
        total = k * (k - 1) // 2
        out = np.empty((m, n), dtype=np.int64)
        for p in numba.prange(m * n):
            i = p // n
            j = p - i * n
            z = np.empty(k, dtype=np.int64)
            for t in range(k):
                z[t] = yd[j, xo[i, t]]
            # within runs tied in x, order by y so tied-x pairs are never counted as discordant,
            # and count pairs tied in both (joint ties)
            joint = 0
            s = 0
            while s < k:
                e = s + 1
                xv = xd[i, xo[i, s]]
                while e < k and xd[i, xo[i, e]] == xv:
                    e += 1
                if e - s > 1:
                    seg = np.sort(z[s:e])
                    z[s:e] = seg
                    run = 1
                    for t in range(s + 1, e):
                        if z[t] == z[t - 1]:
                            run += 1
                        else:
                            joint += run * (run - 1) // 2
                            run = 1
                    joint += run * (run - 1) // 2
                s = e
            # discordant pairs: earlier (smaller x) with strictly larger y; Fenwick tree over y ranks
            size = yn[j]
            tree = np.zeros(size + 1, dtype=np.int64)
            dis = 0
            for t in range(k):
                v = z[t] + 1
                le = 0
                q = v
                while q > 0:
                    le += tree[q]
                    q -= q & (-q)
                dis += t - le
                q = v
                while q <= size:
                    tree[q] += 1
                    q += q & (-q)
            out[i, j] = total - xt[i] - yt[j] + joint - 2 * dis
        return out


def weighted_tau_a(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Kendall tau-a of x (M, K) vs y (N, K) when entry k is repeated weights[b, k] times
    (non-negative integers, (B, K)) -> (B, M, N). Copies of one entry are tied with each other.

    This is the stimulus bootstrap without materialising resampled RDMs: a pair of stimuli (i, j)
    drawn c_i and c_j times appears c_i * c_j times. Needs numba (CPU).
    """
    if not HAVE_NUMBA:
        raise ImportError("weighted_tau_a needs numba")
    xa = np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float64, copy=False))
    ya = np.ascontiguousarray(y.detach().cpu().numpy().astype(np.float64, copy=False))
    wa = np.ascontiguousarray(weights.detach().cpu().numpy().astype(np.int64, copy=False))
    num, tot = _nb_weighted_tau_a(xa, ya, wa, argsort_rows(xa), argsort_rows(ya))
    out = np.where(tot[:, None, None] > 0, num / np.maximum(tot, 1)[:, None, None], np.nan)
    return torch.from_numpy(out).to(x.device)


if HAVE_NUMBA:

    @numba.njit(cache=True, parallel=True)
    def _nb_weighted_tau_a(x, y, w, xo, yo):  # pragma: no cover - compiled
        m, k = x.shape
        n = y.shape[0]
        nb = w.shape[0]
        xd = np.empty((m, k), dtype=np.int64)
        for i in range(m):
            d, _, _ = _nb_dense(x[i], xo[i])
            xd[i] = d
        yd = np.empty((n, k), dtype=np.int64)
        yn = np.empty(n, dtype=np.int64)
        for j in range(n):
            d, nd, _ = _nb_dense(y[j], yo[j])
            yd[j] = d
            yn[j] = nd
        tot = np.empty(nb, dtype=np.int64)
        ytie = np.zeros((nb, n), dtype=np.int64)
        for b in numba.prange(nb):
            s = 0
            for t in range(k):
                s += w[b, t]
            tot[b] = s * (s - 1) // 2
            for j in range(n):
                cnt = np.zeros(yn[j], dtype=np.int64)
                for t in range(k):
                    cnt[yd[j, t]] += w[b, t]
                acc = 0
                for g in range(yn[j]):
                    acc += cnt[g] * (cnt[g] - 1) // 2
                ytie[b, j] = acc
        out = np.empty((nb, m, n), dtype=np.int64)
        for p in numba.prange(nb * m * n):
            b = p // (m * n)
            r = p - b * m * n
            i = r // n
            j = r - i * n
            z = np.empty(k, dtype=np.int64)
            wz = np.empty(k, dtype=np.int64)
            for t in range(k):
                z[t] = yd[j, xo[i, t]]
                wz[t] = w[b, xo[i, t]]
            xtie = 0
            joint = 0
            s = 0
            while s < k:
                e = s + 1
                xv = xd[i, xo[i, s]]
                while e < k and xd[i, xo[i, e]] == xv:
                    e += 1
                gw = 0
                for t in range(s, e):
                    gw += wz[t]
                xtie += gw * (gw - 1) // 2
                if e - s > 1:
                    perm = np.argsort(z[s:e], kind="mergesort")
                    zs = z[s:e][perm]
                    ws = wz[s:e][perm]
                    z[s:e] = zs
                    wz[s:e] = ws
                # joint ties: runs of equal y inside the x-tie group (a single entry's copies too)
                t = s
                while t < e:
                    u = t + 1
                    rw = wz[t]
                    while u < e and z[u] == z[t]:
                        rw += wz[u]
                        u += 1
                    joint += rw * (rw - 1) // 2
                    t = u
                s = e
            size = yn[j]
            tree = np.zeros(size + 1, dtype=np.int64)
            seen = 0
            dis = 0
            for t in range(k):
                wt = wz[t]
                if wt == 0:
                    continue
                v = z[t] + 1
                le = 0
                q = v
                while q > 0:
                    le += tree[q]
                    q -= q & (-q)
                dis += wt * (seen - le)
                seen += wt
                q = v
                while q <= size:
                    tree[q] += wt
                    q += q & (-q)
            out[b, i, j] = tot[b] - xtie - ytie[b, j] + joint - 2 * dis
        return out, tot


def weighted_average_ranks(v: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Average ranks of v (R, K) in the multiset where entry k appears weights[b, k] times
    -> (B, R, K); ties (and copies) share their average rank. numba on CPU, torch otherwise."""
    if _use_numba(v, "auto"):
        va = np.ascontiguousarray(v.detach().cpu().numpy().astype(np.float64, copy=False))
        wa = np.ascontiguousarray(weights.detach().cpu().numpy().astype(np.float64, copy=False))
        out = _nb_weighted_ranks(va, wa, argsort_rows(va))
        return torch.from_numpy(out).to(device=v.device, dtype=v.dtype)
    s, order = torch.sort(v, dim=-1, stable=True)
    k = v.shape[-1]
    pos = torch.arange(k, device=v.device).expand_as(s)
    new = torch.ones_like(s, dtype=torch.bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    first = torch.cummax(torch.where(new, pos, torch.zeros_like(pos)), dim=-1).values
    end = torch.ones_like(new)
    end[:, :-1] = new[:, 1:]
    last = torch.flip(torch.cummin(torch.flip(torch.where(end, pos, torch.full_like(pos, k)), [-1]),
                                   dim=-1).values, [-1])
    wp = weights.to(v.dtype)[:, order]
    cw = torch.cumsum(wp, dim=-1)
    below = torch.gather(cw - wp, -1, first.expand_as(wp))
    upto = torch.gather(cw, -1, last.expand_as(wp))
    out = torch.empty_like(wp)
    out.scatter_(-1, order.expand_as(wp), below + (upto - below + 1) / 2)
    return out


if HAVE_NUMBA:

    @numba.njit(cache=True, parallel=True)
    def _nb_weighted_ranks(v, w, orders):  # pragma: no cover - compiled
        r, k = v.shape
        nb = w.shape[0]
        out = np.empty((nb, r, k), dtype=np.float64)
        for p in numba.prange(nb * r):
            b = p // r
            i = p - b * r
            o = orders[i]
            cum = 0.0
            s = 0
            while s < k:
                e = s + 1
                g = w[b, o[s]]
                while e < k and v[i, o[e]] == v[i, o[s]]:
                    g += w[b, o[e]]
                    e += 1
                rank = cum + (g + 1.0) / 2.0
                for t in range(s, e):
                    out[b, i, o[t]] = rank
                cum += g
                s = e
        return out
