"""Encoding benchmarks: cross-validated ridge from layer activations to repeated-trial responses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import xarray as xr

from ..data.assemblies import align_to
from ..data.stimuli import StimulusSet
from ..metrics.ridge import DEFAULT_ALPHAS
from .base import Benchmark
from .encoding import score_encoding


class EncodingBenchmark(Benchmark):
    """Stimuli + a (presentation x repetition x neuroid) assembly, scored with `score_encoding`.

    Folds are grouped by stimulus and seeded; the layer is chosen by inner cross-validation on
    training stimuli only; scores are normalised per target by the split-half Spearman-Brown
    reliability (sign(r) r^2 / reliability, median over targets with a usable ceiling).
    """

    def __init__(
        self,
        identifier: str,
        description: str,
        datasets: tuple[str, ...],
        load_stimuli: Callable[[], StimulusSet],
        load_assembly: Callable[[], xr.DataArray],
        splits: int = 5,
        inner_cv: int = 5,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        n_bootstrap: int = 1000,
        reduction: str | None = None,
        dtype: str = "float32",
        memory_budget: int | None = None,
    ):
        self.identifier, self.description, self.datasets = identifier, description, datasets
        self._load_stimuli, self._load_assembly = load_stimuli, load_assembly
        self.splits, self.inner_cv, self.alphas = splits, inner_cv, tuple(alphas)
        self.n_bootstrap, self.reduction, self.dtype = n_bootstrap, reduction, dtype
        self.memory_budget = memory_budget  # bytes for ridge target chunks; None: from free memory
        self.metric = "ridge-encoding"
        self._stimuli: StimulusSet | None = None

    def assembly(self) -> xr.DataArray:
        return align_to(self._load_assembly(), self.stimuli().ids, what=f"{self.identifier} responses")

    def score_activations(self, activations, seed, device):
        ids = self.stimuli().ids
        result = score_encoding(
            activations, self.assembly(), ids, ids, benchmark=self.identifier, splits=self.splits,
            inner_cv=self.inner_cv, alphas=self.alphas, n_bootstrap=self.n_bootstrap, seed=seed,
            device=device, dtype=self.dtype, reduction=self.reduction, memory_budget=self.memory_budget,
        )
        result.provenance["reduction"] = self.reduction
        return result
