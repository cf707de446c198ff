"""Read-out transforms applied to a layer's output at extraction time, before it leaves the device.

Spatial pooling and sparse random projection shrink big layers (a ResNet's first stage has
~800k units per image at 224 px) so that thousands of stimuli fit in memory and on disk. They run
inside the forward hook, batch by batch, so the full-size activations never accumulate. A
Readout has an `identifier` that becomes part of the activation-cache key, so pooled, projected
and raw activations never mix.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import InvalidInputError


@dataclass(frozen=True)
class Readout:
    """How to reduce a layer's output per stimulus.

    pool: None (keep every unit), "mean" (per-channel mean over space, or over tokens for
        (batch, tokens, features) outputs), or an int k (adaptive average pool to k x k, or to k
        token groups).
    project: None, or the output dimension of a very sparse random projection (Li, Hastie &
        Church 2006: entries +-sqrt(s/k) with probability 1/(2s) each, s = sqrt(input dim)),
        applied after pooling when the pooled layer has more units than `project`.
    seed: seeds the projection; each layer gets its own matrix derived from (seed, layer, dim).
    """

    pool: str | int | None = None
    project: int | None = None
    seed: int = 0
    _matrices: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if self.pool is not None and self.pool != "mean" and not (isinstance(self.pool, int) and self.pool >= 1):
            raise InvalidInputError(f"Readout pool must be None, 'mean' or a positive int k, got {self.pool!r}")
        if self.project is not None and not (isinstance(self.project, int) and self.project >= 1):
            raise InvalidInputError(f"Readout project must be None or a positive int, got {self.project!r}")

    @property
    def identifier(self) -> str:
        parts = []
        if self.pool is not None:
            parts.append(f"pool{self.pool}")
        if self.project is not None:
            parts.append(f"srp{self.project}-seed{self.seed}")
        return "+".join(parts) or "raw"

    @property
    def is_identity(self) -> bool:
        return self.pool is None and self.project is None

    def __call__(self, layer: str, out: torch.Tensor) -> torch.Tensor:
        """(batch, ...) layer output -> (batch, n_units) float32."""
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
        dim = x.shape[1]
        key = (layer, dim, x.device)
        if key not in self._matrices:
            self._matrices[key] = sparse_projection(dim, self.project, self._layer_seed(layer, dim)).to(x.device)
        return torch.sparse.mm(self._matrices[key], x.T).T

    def _layer_seed(self, layer: str, dim: int) -> int:
        digest = hashlib.sha256(f"{self.seed}|{layer}|{dim}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


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
