"""Read-outs applied to a layer's output at extraction time, before it leaves the device.

Spatial pooling, sparse random projection and PCA shrink big layers (a ResNet's first
stage has ~800k units per image at 224 px) so that thousands of stimuli fit in memory and on disk.
Pooling and projection run inside the forward hook, batch by batch; PCA is fitted in one
streaming pass over a declared fitting set before the pass that projects every stimulus, so the
full-size activations never accumulate. The steps apply in the order pool -> project -> pca.

A read-out is written as a spec string (the command line's `--readout`, and a sweep file's
`readout:` entry) and parsed into the `Readout` dataclass; `Readout.spec` writes it back, so
`Readout.parse(r.spec) == r`:

    pool=mean                      per-channel mean over space (or over tokens)
    pool=2                         adaptive average pool to a 2 x 2 grid per channel
    project=4096                   very sparse random projection to 4,096 dims (seed=0)
    pool=2,project=4096,seed=1     both, with another projection seed
    pca=256,fit=first:1000         PCA to 256 components fitted on the first 1,000 stimuli
    pca=256,fit=label:split=train  ... fitted on the stimuli whose `split` label is `train`
    none                           keep every unit

The identifier (`Readout.identifier`) is part of the activation-cache key and of every result's
configuration, so pooled, projected and raw activations never mix.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidInputError

_KEYS = ("pool", "project", "pca", "fit", "seed")


@dataclass(frozen=True)
class Readout:
    """How to reduce a layer's output per stimulus.

    pool: None (keep every unit), "mean" (per-channel mean over space, or over tokens for
        (batch, tokens, features) outputs), or an int k (adaptive average pool to k x k, or to k
        token groups).
    project: None, or the output dimension of a very sparse random projection (Li, Hastie &
        Church 2006: entries +-sqrt(s/k) with probability 1/(2s) each, s = sqrt(input dim)),
        applied after pooling when the pooled layer has more units than `project`
        (Johnson-Lindenstrauss: distances kept within 1 +- eps for k >= 4 ln n / (eps^2/2 - eps^3/3)).
    pca: None, or the number of principal components kept, fitted in one streaming pass over
        `fit` after pooling and projection: exact PCA (the accumulated covariance) for layers of
        up to 8,192 units, incremental PCA (Ross et al. 2008, as scikit-learn's
        IncrementalPCA) for wider ones.
    fit: the PCA fitting set: "all", "first:N" (the first N stimuli of the set) or
        "label:COLUMN=VALUE" (stimuli whose label COLUMN equals VALUE).
    seed: seeds the projection; each layer gets its own matrix derived from (seed, layer, dim).
    """

    pool: str | int | None = None
    project: int | None = None
    pca: int | None = None
    fit: str = "all"
    seed: int = 0
    _matrices: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if self.pool is not None and self.pool != "mean" and not (isinstance(self.pool, int) and self.pool >= 1):
            raise InvalidInputError(f"Readout pool must be None, 'mean' or a positive int k, got {self.pool!r}")
        for name in ("project", "pca"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise InvalidInputError(f"Readout {name} must be None or a positive int, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InvalidInputError(f"Readout seed must be an int, got {self.seed!r}")
        _check_fit(self.fit)
        if self.pca is None and self.fit != "all":
            raise InvalidInputError(f"fit={self.fit} declares a PCA fitting set, but no pca=N is asked for")

    # ------------------------------------------------------------------ the spec string
    @classmethod
    def parse(cls, spec: str | Readout | None) -> Readout:
        """'pool=2,project=4096' -> Readout(pool=2, project=4096); 'none' or '' -> Readout()."""
        if isinstance(spec, Readout):
            return spec
        text = (spec or "").strip()
        if text.lower() in ("", "none", "raw"):
            return cls()
        values: dict = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not value:
                raise InvalidInputError(f"--readout {spec!r}: {part!r} is not KEY=VALUE; keys: {', '.join(_KEYS)}")
            if key not in _KEYS:
                raise InvalidInputError(f"--readout {spec!r}: unknown key {key!r}; keys: {', '.join(_KEYS)}")
            if key in values:
                raise InvalidInputError(f"--readout {spec!r}: {key} given twice")
            values[key] = value
        out: dict = {}
        if "pool" in values:
            out["pool"] = "mean" if values["pool"].lower() == "mean" else _int(values["pool"], "pool", spec)
        for key in ("project", "pca", "seed"):
            if key in values:
                out[key] = _int(values[key], key, spec)
        if "fit" in values:
            out["fit"] = values["fit"]
        return cls(**out)

    def _steps(self) -> list[tuple[str, str]]:
        """(spec text, identifier text) of each step, in the order they apply."""
        steps = []
        if self.pool is not None:
            steps.append((f"pool={self.pool}", f"pool{self.pool}"))
        if self.project is not None:
            steps.append((f"project={self.project}" + (f",seed={self.seed}" if self.seed else ""),
                          f"srp{self.project}-seed{self.seed}"))
        if self.pca is not None:
            steps.append((f"pca={self.pca}" + (f",fit={self.fit}" if self.fit != "all" else ""),
                          f"pca{self.pca}-fit[{self.fit}]"))
        return steps

    @property
    def spec(self) -> str:
        """The spec string this read-out parses from (canonical order; 'none' for the identity)."""
        return ",".join(text for text, _ in self._steps()) or "none"

    @property
    def identifier(self) -> str:
        """The read-out's part of the activation-cache key."""
        return "+".join(ident for _, ident in self._steps()) or "raw"

    @property
    def is_identity(self) -> bool:
        return self.pool is None and self.project is None and self.pca is None

    @property
    def needs_fit(self) -> bool:
        return self.pca is not None

    def to_record(self) -> dict:
        return {"spec": self.spec, "pool": self.pool, "project": self.project, "pca": self.pca,
                "fit": self.fit if self.pca is not None else None,
                "seed": self.seed if self.project is not None else None,
                "convention": "pool -> very sparse random projection -> incremental PCA, per layer, at extraction"}

    # ------------------------------------------------------------------ the fitting set
    def fit_rows(self, n: int, labels=None) -> np.ndarray:
        """Row positions of the PCA fitting set in a stimulus set of `n` stimuli with `labels`."""
        kind, _, arg = self.fit.partition(":")
        if kind == "all":
            rows = np.arange(n)
        elif kind == "first":
            k = int(arg)
            if k > n:
                raise InvalidInputError(f"fit=first:{k} asks for more stimuli than the set's {n}")
            rows = np.arange(k)
        else:
            column, _, value = arg.partition("=")
            if labels is None or column not in getattr(labels, "columns", ()):
                raise InvalidInputError(f"fit={self.fit}: the stimulus set has no label column {column!r}")
            rows = np.flatnonzero(labels[column].astype(str).to_numpy() == value)
        if self.pca is not None and len(rows) < self.pca:
            raise InvalidInputError(f"pca={self.pca} needs at least {self.pca} fitting stimuli; fit={self.fit} "
                                    f"selects {len(rows)}")
        return rows

    def fit_digest(self, ids: Sequence[str], labels=None) -> str:
        """Short hash of the fitting set's ids (part of the cache key when PCA is fitted)."""
        rows = self.fit_rows(len(ids), labels)
        h = hashlib.sha256()
        for r in rows:
            h.update(str(ids[r]).encode() + b"\0")
        return h.hexdigest()[:12]

    # ------------------------------------------------------------------ the stateless steps
    def __call__(self, layer: str, out: torch.Tensor) -> torch.Tensor:
        """(batch, ...) layer output -> (batch, n_units) float32: pooling and projection."""
        x = self._pool(out.float())
        x = x.reshape(x.shape[0], -1)
        if self.project is not None and x.shape[1] > self.project:
            x = self._project(layer, x)
        return x

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is None or x.dim() <= 2:
            return x
        if x.dim() == 4:  # (batch, channels, height, width)
            return x.mean(dim=(2, 3)) if self.pool == "mean" else F.adaptive_avg_pool2d(x, self.pool)
        if x.dim() == 3:  # (batch, tokens, features): pool over tokens
            if self.pool == "mean":
                return x.mean(dim=1)
            return F.adaptive_avg_pool1d(x.transpose(1, 2), self.pool).transpose(1, 2)
        raise InvalidInputError(f"cannot pool a layer output of shape {tuple(x.shape)}")

    def _project(self, layer: str, x: torch.Tensor) -> torch.Tensor:
        """x (batch, dim) @ R^T. On a CPU through scipy's dense @ sparse product (one pass over the
        matrix per batch: 4-5x faster than torch's CSR product on a transposed batch); on a GPU
        torch's sparse product."""
        dim = x.shape[1]
        key = (layer, dim, x.device.type if x.device.type == "cpu" else x.device)
        if key not in self._matrices:
            matrix = sparse_projection(dim, self.project, self._layer_seed(layer, dim))
            self._matrices[key] = _scipy_transpose(matrix) if x.device.type == "cpu" else matrix.to(x.device)
        if x.device.type == "cpu":
            return torch.from_numpy(np.ascontiguousarray(x.numpy() @ self._matrices[key], dtype=np.float32))
        return torch.sparse.mm(self._matrices[key], x.T).T

    def _layer_seed(self, layer: str, dim: int) -> int:
        digest = hashlib.sha256(f"{self.seed}|{layer}|{dim}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _int(value: str, key: str, spec) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(f"--readout {spec!r}: {key} must be an integer, got {value!r}") from None


def _check_fit(fit: str) -> None:
    kind, _, arg = str(fit).partition(":")
    ok = (kind == "all" and not arg) or (kind == "first" and arg.isdigit() and int(arg) >= 1) or \
         (kind == "label" and "=" in arg and arg.partition("=")[0] and arg.partition("=")[2])
    if not ok:
        raise InvalidInputError(f"fit must be 'all', 'first:N' or 'label:COLUMN=VALUE', got {fit!r}")


def _scipy_transpose(matrix: torch.Tensor):
    """R (k, dim) torch CSR -> R^T (dim, k) scipy CSR, for x @ R^T on a CPU."""
    from scipy import sparse

    k, dim = matrix.shape
    csr = sparse.csr_matrix((matrix.values().numpy(), matrix.col_indices().numpy(), matrix.crow_indices().numpy()),
                            shape=(k, dim))
    return csr.T.tocsr()


def sparse_projection(dim: int, k: int, seed: int) -> torch.Tensor:
    """A (k, dim) very sparse random projection matrix in CSR form (density 1/sqrt(dim)).

    Expected squared norms are preserved: E ||R x||^2 = ||x||^2.
    """
    s = max(1.0, dim ** 0.5)
    gen = torch.Generator().manual_seed(seed)
    total = dim * k
    if s > 1:  # the expected count of non-zeros, at uniformly drawn positions
        flat = torch.randint(0, total, (round(total / s),), generator=gen)
    else:
        flat = torch.arange(total)
    flat = torch.unique(flat)  # duplicates are rare (density 1/sqrt(dim)); dropping them is harmless
    signs = torch.randint(0, 2, (flat.numel(),), generator=gen).float() * 2 - 1
    values = signs * (s / k) ** 0.5
    rows, cols = flat // dim, flat % dim
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (k, dim), check_invariants=True)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops we use are stable
        warnings.simplefilter("ignore", UserWarning)
        return coo.coalesce().to_sparse_csr()


EXACT_PCA_MAX_UNITS = 8192  # up to here the fitting pass accumulates the covariance (exact PCA)


class StreamingPCA:
    """PCA fitted in one streaming pass: exact for layers of up to `EXACT_PCA_MAX_UNITS` units
    (the covariance is accumulated in float64 around the first batch's mean, then
    eigendecomposed), incremental PCA (`IncrementalPCA`, an approximation) for wider ones.
    Components are signed as scikit-learn's `svd_flip` signs them."""

    def __init__(self, n_components: int, dtype: torch.dtype = torch.float64):
        self.k, self.dtype = int(n_components), dtype
        self.method: str | None = None
        self._ipca: IncrementalPCA | None = None
        self._shift = self._sum = self._cov = None
        self.n_seen = 0

    def partial_fit(self, X: torch.Tensor) -> StreamingPCA:
        if self.method is None:
            self.method = "covariance" if X.shape[1] <= EXACT_PCA_MAX_UNITS else "incremental"
            if self.method == "incremental":
                self._ipca = IncrementalPCA(self.k, self.dtype)
        if self._ipca is not None:
            self._ipca.partial_fit(X)
            return self
        X = X.to(torch.float64)
        if self._shift is None:
            self._shift = X.mean(0)
            self._sum = torch.zeros_like(self._shift)
            self._cov = torch.zeros(X.shape[1], X.shape[1], dtype=torch.float64, device=X.device)
        Xs = X - self._shift
        self._sum += Xs.sum(0)
        self._cov += Xs.T @ Xs
        self.n_seen += X.shape[0]
        return self

    def finish(self) -> StreamingPCA:
        if self._ipca is not None:
            self._ipca.finish()
            self.components_, self.singular_values_ = self._ipca.components_, self._ipca.singular_values_
            self.mean_, self.n_seen = self._ipca.mean_, self._ipca.n_seen
            return self
        if self._cov is None or self.n_seen < 2:
            raise InvalidInputError(f"PCA with {self.k} components saw {self.n_seen} fitting stimuli")
        if self._cov.shape[0] < self.k:
            raise InvalidInputError(f"the layer has {self._cov.shape[0]} units, fewer than pca={self.k}")
        m = self._sum / self.n_seen
        lam, V = torch.linalg.eigh(self._cov - self.n_seen * torch.outer(m, m))
        lam, V = lam.flip(0)[: self.k].clamp_min(0), V.flip(1)[:, : self.k].T
        idx = torch.argmax(V.abs(), dim=1)
        V = V * torch.sign(V[torch.arange(V.shape[0], device=V.device), idx])[:, None]
        self.components_, self.singular_values_ = V.to(self.dtype), lam.sqrt().to(self.dtype)
        self.mean_ = (self._shift + m).to(self.dtype)
        self._cov = None
        return self

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        comps = self.components_.to(device=X.device, dtype=X.dtype)
        return (X - self.mean_.to(device=X.device, dtype=X.dtype)) @ comps.T


class IncrementalPCA:
    """Incremental PCA (Ross et al. 2008; scikit-learn's IncrementalPCA), in torch, on any device.

    `partial_fit(X)` takes batches of at least `n_components` rows (smaller batches are held until
    enough rows arrive); the state is the running mean, the top singular values and the
    components. Signs follow scikit-learn's `svd_flip` (largest |loading| of each component
    positive). Float64 accumulation on CPU; float32 on a GPU.
    """

    def __init__(self, n_components: int, dtype: torch.dtype = torch.float64):
        self.k = int(n_components)
        self.dtype = dtype
        self.n_seen = 0
        self.mean_: torch.Tensor | None = None
        self.var_: torch.Tensor | None = None
        self.singular_values_: torch.Tensor | None = None
        self.components_: torch.Tensor | None = None
        self._held: list[torch.Tensor] = []
        self._held_rows = 0

    def partial_fit(self, X: torch.Tensor) -> IncrementalPCA:
        X = X.to(self.dtype)
        self._held.append(X)
        self._held_rows += X.shape[0]
        if self._held_rows >= self.k:
            self._update(torch.cat(self._held))
            self._held, self._held_rows = [], 0
        return self

    def finish(self) -> IncrementalPCA:
        """Fold in rows still held (fewer than n_components) and check that a fit happened."""
        if self._held_rows:
            if self.components_ is None and self._held_rows < self.k:
                raise InvalidInputError(f"PCA with {self.k} components needs at least {self.k} fitting stimuli, "
                                        f"got {self._held_rows}")
            self._update(torch.cat(self._held))
            self._held, self._held_rows = [], 0
        if self.components_ is None:
            raise InvalidInputError("PCA saw no fitting stimuli")
        if self.components_.shape[0] < self.k:
            raise InvalidInputError(f"the layer has {self.components_.shape[0]} units, fewer than pca={self.k}")
        return self

    def _update(self, X: torch.Tensor) -> None:
        n_new = X.shape[0]
        batch_mean = X.mean(0)
        if self.mean_ is None:
            total_mean = batch_mean
            M = X - batch_mean
        else:
            n_old = self.n_seen
            total = n_old + n_new
            total_mean = (n_old * self.mean_ + n_new * batch_mean) / total
            correction = math.sqrt(n_old * n_new / total) * (self.mean_ - batch_mean)
            M = torch.cat([self.singular_values_[:, None] * self.components_, X - batch_mean, correction[None]])
        _U, S, Vt = torch.linalg.svd(M, full_matrices=False)
        # svd_flip (u_based_decision=False): the largest |entry| of each row of Vt is positive
        idx = torch.argmax(Vt.abs(), dim=1)
        signs = torch.sign(Vt[torch.arange(Vt.shape[0], device=Vt.device), idx])
        Vt = Vt * signs[:, None]
        k = min(self.k, Vt.shape[0])
        self.components_, self.singular_values_ = Vt[:k], S[:k]
        self.mean_ = total_mean
        self.n_seen += n_new

    @property
    def explained_variance_(self) -> torch.Tensor:
        return self.singular_values_ ** 2 / max(1, self.n_seen - 1)

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        comps = self.components_.to(device=X.device, dtype=X.dtype)
        return (X - self.mean_.to(device=X.device, dtype=X.dtype)) @ comps.T
