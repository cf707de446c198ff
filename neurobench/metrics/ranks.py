"""Exact rank statistics for RDM comparison: average ranks and Kendall tau-a, batched.

Two back ends compute the same integers/ranks:
- torch (any device): average ranks by sort + searchsorted; tau-a by chunked pairwise sign
  products (one matmul per chunk), which is what a GPU does fastest;
- numba (CPU, when installed): every row is sorted once with numpy's SIMD sort on packed keys
  (the value's bits with the entry's index in the low bits; runs of keys whose value bits agree
  are re-sorted exactly, so ties and near-ties are resolved on the full values), then tau-a
  counts concordant and discordant pairs for each (model, data) pair in one O(K) sweep over a
  bitset of the data ordinals with per-word prefix counts, in parallel threads. On a CPU this is
  far less work than the pairwise products, which is why it exists.
Both are exact (ties count as neither concordant nor discordant); tests check them against each
other and against rsatoolbox.
"""

from __future__ import annotations

import functools
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


# ---------------------------------------------------------------- packed-key row sorts (numba)
#
# Every row is sorted once, by numpy's SIMD sort, as packed keys: the value's order-preserving
# 64-bit pattern with its low `b` bits replaced by the entry's index (b = bits needed for K - 1).
# Keys that agree above the low bits (equal or nearly equal values) are put in exact order on
# the full values afterwards (`_nb_row_order`), so the order and the ties are exact. Non-negative
# finite rows (every RDM) sort as float64 (the fastest numpy sort); others as sign-flipped int64.
# Rows go through key building, sorting and the statistic in cache-sized chunks, one chunk per
# task on a small thread pool (numpy's sort and the nogil kernels release the GIL).

_CHUNK_ROWS = 16


def _key_bits(k: int) -> int:
    """Low bits that hold an entry's index in a packed sort key."""
    return max(1, int(k - 1).bit_length())


@functools.lru_cache(maxsize=4)
def _pool(workers: int):
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(workers, thread_name_prefix="neurobench-ranks")


def _run_row_chunks(a: np.ndarray, kernel, *args) -> bool:
    """Sort the packed keys of the rows of `a` (R, K) chunk by chunk and call
    `kernel(keys, a[chunk], b, *args, start)` on each. False (nothing reliable done) on NaN."""
    r, k = a.shape
    b = _key_bits(k)
    starts = range(0, r, _CHUNK_ROWS)

    def task(s):
        rows = a[s:s + _CHUNK_ROWS]
        keys = np.empty(rows.shape, dtype=np.int64)
        has_nan, odd = _nb_make_keys(rows, b, False, keys)
        if has_nan:
            return False
        if odd:  # negative or infinite values: sort sign-flipped integer keys instead
            _nb_make_keys(rows, b, True, keys)
            keys.sort(axis=1)
        else:
            keys.view(np.float64).sort(axis=1)
        kernel(keys, rows, b, *args, s)
        return True

    workers = max(1, min(os.cpu_count() or 1, len(starts)))
    if workers == 1:
        return all([task(s) for s in starts])
    return all(list(_pool(workers).map(task, starts)))


def _cum_index(k: int) -> np.ndarray:
    """0..nw-1 in the narrowest integer type that holds counts up to K (int16 up to K = 32767):
    the prefix-count words of the tau-a sweep, padded to whole 256-bit vectors."""
    dt = np.int16 if k < 2**15 else np.int32
    per = 16 if dt == np.int16 else 8
    nw = ((k >> 6) + per) // per * per
    return np.arange(nw, dtype=dt)


def _ranks_np(a: np.ndarray) -> np.ndarray | None:
    """Average ranks of the rows of a float64 (R, K) array; None when it holds NaN."""
    out = np.empty(a.shape, dtype=np.float64)
    return out if _run_row_chunks(a, _nb_rank_rows, out) else None


def _ordinals_np(a: np.ndarray):
    """(ordinals, tie-group first ordinal, tie-group last ordinal, has ties) per row, or None."""
    r, k = a.shape
    u = np.empty((r, k), dtype=np.int32)
    lo = np.empty((r, k), dtype=np.int32)
    hi = np.empty((r, k), dtype=np.int32)
    ties = np.zeros(r, dtype=np.bool_)
    return (u, lo, hi, ties) if _run_row_chunks(a, _nb_ordinal_rows, u, lo, hi, ties) else None


def rank_correlations(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray | None:
    """Spearman r ("spearman") or rho-a ("rho_a") of every row of x (M, K) with every row of y
    (N, K), float64, without materialising the model ranks: each model row's centred average
    ranks are dotted with the data's centred ranks while still in cache. None on NaN (numba)."""
    k = x.shape[1]
    ry = _ranks_np(y)
    if ry is None:
        return None
    mean = (k + 1) / 2  # average ranks always sum to K (K + 1) / 2
    ryc = np.ascontiguousarray(ry - mean)
    dots = np.empty((x.shape[0], y.shape[0]), dtype=np.float64)
    sxx = np.empty(x.shape[0], dtype=np.float64)
    if not _run_row_chunks(x, _nb_rank_dot_rows, ryc, dots, sxx):
        return None
    if method == "rho_a":
        return dots * (12.0 / (k**3 - k))
    den = np.sqrt(sxx)[:, None] * np.sqrt((ryc * ryc).sum(axis=1))[None, :]
    return np.where(den > 0, dots / np.where(den > 0, den, 1.0), 0.0)


MERGE_TAU_MIN_K = 30_000  # from here (about 245 stimuli) Knight's O(K log K) count beats the bitset sweep


def _tau_a_numerators(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Exact concordant - discordant counts (M, N) of float64 rows, or None on NaN.

    Up to `MERGE_TAU_MIN_K` dissimilarities: the bitset sweep (`_nb_tau_rows`, O(K^2 / 1024)
    vector operations per pair, fastest for RDMs of up to a few hundred stimuli); beyond:
    Knight's algorithm (`_nb_tau_rows_merge`: sort by x, count the pairs out of order in y with a
    merge sort, O(K log K) per pair, as scipy's kendalltau does)."""
    ords = _ordinals_np(y)
    if ords is None:
        return None
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.int64)
    if x.shape[1] >= MERGE_TAU_MIN_K:
        _u, lo, hi, _ties = ords
        y_tie_pairs = (hi.astype(np.int64) - lo).sum(axis=1) // 2
        ok = _run_row_chunks(x, _nb_tau_rows_merge, lo, y_tie_pairs, out)
    else:
        ok = _run_row_chunks(x, _nb_tau_rows, *ords, _cum_index(x.shape[1]), out)
    return out if ok else None


if HAVE_NUMBA:
    from numba import types as _nbtypes
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _popcount(typingctx, v):  # pragma: no cover - compiled
        sig = _nbtypes.int64(_nbtypes.uint64)

        def codegen(context, builder, signature, args):
            fn = builder.module.declare_intrinsic("llvm.ctpop", [args[0].type])
            return builder.call(fn, args)

        return sig, codegen

    @numba.njit(cache=True, nogil=True)
    def _nb_make_keys(a, b, as_int, keys):  # pragma: no cover - compiled
        """keys[i, t] = (order bits of a[i, t] with the low b bits cleared) | t.
        Returns (any NaN, any negative or infinite value)."""
        r, k = a.shape
        low = np.int64((1 << b) - 1)
        high = ~low
        flip = np.int64(0x7FFFFFFFFFFFFFFF)
        has_nan = False
        odd = False
        for i in range(r):
            row = a[i]
            bits = row.view(np.int64)
            for t in range(k):
                v = row[t]
                has_nan |= v != v
                odd |= (v < 0.0) | (v == np.inf)
                s = bits[t]
                if v == 0.0:
                    s = 0  # -0.0 and 0.0 are the same value
                elif as_int and s < 0:
                    s ^= flip
                keys[i, t] = (s & high) | t
        return has_nan, odd

    @numba.njit(cache=True, nogil=True)
    def _nb_row_order(krow, xrow, b, order):  # pragma: no cover - compiled
        """Row order (argsort) from sorted packed keys, exact on the full values; ties keep index
        order within a run of equal high bits. Returns whether the row has tied values."""
        k = krow.shape[0]
        low = np.int64((1 << b) - 1)
        for t in range(k):
            order[t] = krow[t] & low
        ties = False
        t = 0
        while t < k - 1:
            h = krow[t] >> b
            if (krow[t + 1] >> b) != h:
                t += 1
                continue
            e = t + 2
            while e < k and (krow[e] >> b) == h:
                e += 1
            in_order = True
            for s in range(t + 1, e):
                if xrow[order[s]] < xrow[order[s - 1]]:
                    in_order = False
                    break
            if not in_order:
                vals = np.empty(e - t, dtype=np.float64)
                for s in range(t, e):
                    vals[s - t] = xrow[order[s]]
                perm = np.argsort(vals, kind="mergesort")
                seg = order[t:e][perm]
                order[t:e] = seg
            for s in range(t + 1, e):
                if xrow[order[s]] == xrow[order[s - 1]]:
                    ties = True
                    break
            t = e
        return ties

    @numba.njit(cache=True, nogil=True)
    def _nb_fill_ranks(xrow, order, ties, out):  # pragma: no cover - compiled
        k = xrow.shape[0]
        if not ties:
            for t in range(k):
                out[order[t]] = t + 1.0
            return
        j = 0
        while j < k:
            v = xrow[order[j]]
            e = j + 1
            while e < k and xrow[order[e]] == v:
                e += 1
            avg = 0.5 * (j + e - 1) + 1.0
            for t in range(j, e):
                out[order[t]] = avg
            j = e

    @numba.njit(cache=True, nogil=True)
    def _nb_rank_rows(keys, x, b, out, start):  # pragma: no cover - compiled
        r, k = x.shape
        order = np.empty(k, dtype=np.int64)
        for i in range(r):
            ties = _nb_row_order(keys[i], x[i], b, order)
            _nb_fill_ranks(x[i], order, ties, out[start + i])

    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def _nb_rank_dot_rows(keys, x, b, ryc, dots, sxx, start):  # pragma: no cover - compiled
        """Centred average ranks of each row, dotted with every row of ryc; and their sum of
        squares (reassociated sums: exact to rounding, vectorised)."""
        r, k = x.shape
        n = ryc.shape[0]
        mean = (k + 1) / 2
        order = np.empty(k, dtype=np.int64)
        rk = np.empty(k, dtype=np.float64)
        for i in range(r):
            ties = _nb_row_order(keys[i], x[i], b, order)
            _nb_fill_ranks(x[i], order, ties, rk)
            ss = 0.0
            for p in range(k):
                c = rk[p] - mean
                rk[p] = c
                ss += c * c
            sxx[start + i] = ss
            for j in range(n):
                d = 0.0
                for p in range(k):
                    d += rk[p] * ryc[j, p]
                dots[start + i, j] = d

    @numba.njit(cache=True, nogil=True)
    def _nb_ordinal_rows(keys, x, b, u, lo, hi, ties, start):  # pragma: no cover - compiled
        """Per row: ordinal (position in sorted order, ties in index order) of every entry, the
        first and last ordinal of its tie group, and whether the row has ties."""
        r, k = x.shape
        order = np.empty(k, dtype=np.int64)
        for i in range(r):
            o = start + i
            ties[o] = _nb_row_order(keys[i], x[i], b, order)
            j = 0
            while j < k:
                v = x[i, order[j]]
                e = j + 1
                while e < k and x[i, order[e]] == v:
                    e += 1
                for t in range(j, e):
                    u[o, order[t]] = t
                    lo[o, order[t]] = j
                    hi[o, order[t]] = e - 1
                j = e

    @numba.njit(cache=True, inline="always")
    def _nb_below(bits, cum, v):  # pragma: no cover - compiled
        """How many inserted ordinals are < v."""
        w = v >> 6
        m = (np.uint64(1) << np.uint64(v & 63)) - np.uint64(1)
        return cum[w] + _popcount(bits[w] & m)

    @numba.njit(cache=True, inline="always")
    def _nb_insert(bits, cum, qidx, v):  # pragma: no cover - compiled
        w = v >> 6
        bits[w] |= np.uint64(1) << np.uint64(v & 63)
        wq = qidx[w]  # w in the counts' own integer type, so the loop below is one vector op
        for q in range(qidx.shape[0]):  # per word: how many inserted ordinals lie before it
            cum[q] += qidx[q] > wq

    @numba.njit(cache=True, nogil=True)
    def _nb_tau_rows(keys, x, b, uy, loy, hiy, yties, qidx, out, start):  # pragma: no cover
        """tau-a numerators (concordant - discordant) of every model row (sorted packed keys
        `keys`, values x) with every data row (ordinals uy, tie-group bounds loy/hiy).

        The model's entries are visited in increasing x; each counts the earlier entries whose
        data ordinal lies below its data tie group (concordant) minus those above it
        (discordant), from a bitset of inserted ordinals plus per-word prefix counts. Entries
        tied in x are all counted before any of them is inserted, so pairs tied in x or y count
        as neither."""
        r, k = x.shape
        n = uy.shape[0]
        nw = qidx.shape[0]
        total = k * (k - 1) // 2
        order = np.empty(k, dtype=np.int64)
        gend = np.empty(k, dtype=np.int64)
        bits = np.empty(nw, dtype=np.uint64)
        cum = np.empty_like(qidx)
        for i in range(r):
            xties = _nb_row_order(keys[i], x[i], b, order)
            if xties:  # end of each entry's x tie group, in sorted position
                e = k
                for t in range(k - 1, -1, -1):
                    if t < k - 1 and x[i, order[t]] != x[i, order[t + 1]]:
                        e = t + 1
                    gend[t] = e
            for j in range(n):
                bits[:] = 0
                cum[:] = 0
                u = uy[j]
                if not xties and not yties[j]:
                    below = 0
                    for t in range(k):
                        v = u[order[t]]
                        below += _nb_below(bits, cum, v)
                        _nb_insert(bits, cum, qidx, v)
                    out[start + i, j] = 2 * below - total
                    continue
                lo = loy[j]
                hi = hiy[j]
                num = 0
                t = 0
                while t < k:
                    e = gend[t] if xties else t + 1
                    for s in range(t, e):
                        idx = order[s]
                        above = t - _nb_below(bits, cum, hi[idx] + 1)
                        num += _nb_below(bits, cum, lo[idx]) - above
                    for s in range(t, e):
                        _nb_insert(bits, cum, qidx, u[order[s]])
                    t = e
                out[start + i, j] = num


if HAVE_NUMBA:
    @numba.njit(cache=True, nogil=True)
    def _nb_strict_inversions(a, buf):  # pragma: no cover - compiled
        """Pairs s < t with a[s] > a[t] (equal values are not inversions); sorts `a` (bottom-up
        merge sort, `buf` as scratch of the same length)."""
        k = a.shape[0]
        inv = 0
        width = 1
        src, dst = a, buf
        while width < k:
            for lo in range(0, k, 2 * width):
                mid = min(lo + width, k)
                hi = min(lo + 2 * width, k)
                p, q, o = lo, mid, lo
                while p < mid and q < hi:
                    if src[q] < src[p]:
                        dst[o] = src[q]
                        inv += mid - p
                        q += 1
                    else:
                        dst[o] = src[p]
                        p += 1
                    o += 1
                while p < mid:
                    dst[o] = src[p]
                    p += 1
                    o += 1
                while q < hi:
                    dst[o] = src[q]
                    q += 1
                    o += 1
            src, dst = dst, src
            width *= 2
        return inv

    @numba.njit(cache=True, nogil=True)
    def _nb_tau_rows_merge(keys, x, b, loy, y_tie_pairs, out, start):  # pragma: no cover - compiled
        """tau-a numerators by Knight's algorithm: visit the entries in increasing x (ties in x by
        increasing y), take each entry's data tie group (its first ordinal `loy`), count the
        pairs out of order (discordant) with a merge sort; then concordant - discordant =
        all pairs - pairs tied in x - pairs tied in y + pairs tied in both - 2 discordant."""
        r, k = x.shape
        n = loy.shape[0]
        total = k * (k - 1) // 2
        order = np.empty(k, dtype=np.int64)
        v = np.empty(k, dtype=np.int64)
        buf = np.empty(k, dtype=np.int64)
        bounds = np.empty(k + 1, dtype=np.int64)
        for i in range(r):
            xties = _nb_row_order(keys[i], x[i], b, order)
            n_groups = 0
            x_tie_pairs = 0
            if xties:  # start of every x tie group, in sorted position
                t = 0
                while t < k:
                    e = t + 1
                    while e < k and x[i, order[e]] == x[i, order[t]]:
                        e += 1
                    bounds[n_groups] = t
                    n_groups += 1
                    x_tie_pairs += (e - t) * (e - t - 1) // 2
                    t = e
                bounds[n_groups] = k
            for j in range(n):
                g = loy[j]
                for t in range(k):
                    v[t] = g[order[t]]
                joint = 0
                if xties:
                    for q in range(n_groups):
                        t, e = bounds[q], bounds[q + 1]
                        if e - t > 1:
                            v[t:e].sort()
                            s = t
                            while s < e:
                                f = s + 1
                                while f < e and v[f] == v[s]:
                                    f += 1
                                joint += (f - s) * (f - s - 1) // 2
                                s = f
                d = _nb_strict_inversions(v, buf)
                out[start + i, j] = total - x_tie_pairs - y_tie_pairs[j] + joint - 2 * d


def average_ranks(x: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Ranks 1..K along the last axis, ties get their average rank (scipy `rankdata` default)."""
    if x.shape[-1] == 0:
        return x.clone()
    if _use_numba(x, backend):
        flat = x.detach().reshape(-1, x.shape[-1]).cpu().numpy().astype(np.float64, copy=False)
        flat = np.ascontiguousarray(flat)
        out = _ranks_np(flat)
        if out is None:  # NaN: each NaN is its own value, last (as the argsort path orders them)
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
        num = _tau_a_numerators(xa, ya)
        if num is None:  # NaN: the argsort kernel's conventions (each NaN its own value, last)
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
