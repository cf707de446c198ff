"""RSA benchmarks: model RDMs per layer against one or more data RDMs.

Per-layer scores use all stimuli. The headline uses a layer chosen without peeking: stimuli are
split in two halves (seeded); the layer that scores best on the selection half is scored, with
its ceiling and bootstrap CI, on the held-out half only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from ..data.stimuli import StimulusSet
from ..metrics.inference import score_rdms
from ..metrics.rdm import compute_rdms, subset_condensed, upper_triangle
from ..options import non_negative_int, option
from ..result import Scores
from .base import Benchmark
from .selection import half_split

log = logging.getLogger(__name__)


class RSABenchmark(Benchmark):
    """Compare layer RDMs with data RDMs using an rsatoolbox-compatible comparator.

    `load_data` returns (stimulus ids, data RDMs (S, n, n) or condensed (S, K), ceiling note or "").
    With S >= 2 subjects the Nili et al. (2014) noise ceiling is estimated; with one RDM the result
    carries no ceiling and says why. `transform` (e.g. the geo-topological transform) is applied to
    model and data RDMs alike before comparison. The comparator, RDM method and transform are part
    of what the benchmark is (its declaration), not options.

    Parameters
    ----------
    n_bootstrap : int
        Stimulus-bootstrap resamples for the confidence intervals (percentile, 95%); 0 for none.
    """

    n_bootstrap = option(1000, non_negative_int)

    def __init__(
        self,
        identifier: str,
        description: str,
        datasets: tuple[str, ...],
        load_stimuli: Callable[[], StimulusSet],
        load_data: Callable[[], tuple[list[str], np.ndarray, str]],
        comparator: str = "tau_a",
        rdm_method: str = "correlation",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        transform_name: str = "",
        **options,
    ):
        self.identifier, self.description, self.datasets = identifier, description, datasets
        self._load_stimuli, self._load_data = load_stimuli, load_data
        self.comparator, self.rdm_method = comparator, rdm_method
        self.transform, self.transform_name = transform, transform_name
        self.configure(**options)
        self.metric = f"rsa-{comparator}" + (f"+{transform_name}" if transform_name else "")
        self._stimuli: StimulusSet | None = None

    def data_rdms(self, device: torch.device) -> tuple[torch.Tensor, str]:
        ids, rdms, note = self._load_data()
        self.stimuli().check_aligned(ids, what=f"{self.identifier} data RDMs")
        t = torch.as_tensor(np.asarray(rdms), dtype=torch.float64, device=device)
        if t.ndim == 3:
            t = upper_triangle(t)
        return t, note

    def _prepare(self, condensed: torch.Tensor) -> torch.Tensor:
        return self.transform(condensed) if self.transform is not None else condensed

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        names = list(activations)
        data, note = self.data_rdms(device)
        model = torch.stack([
            upper_triangle(compute_rdms(torch.as_tensor(np.asarray(activations[n])), self.rdm_method, device=device,
                                        dtype=torch.float64))
            for n in names
        ])
        n_stim = len(self.stimuli())
        common = dict(method=self.comparator, n_bootstrap=self.n_bootstrap, bootstrap="stimuli")

        full = score_rdms(self._prepare(model), self._prepare(data), seed=seed, **common)
        ceiling = full.ceiling_lower
        table = pd.DataFrame({
            "layer": names,
            "raw": full.score.cpu().numpy(),
            "ci_low": full.ci_low.cpu().numpy(),
            "ci_high": full.ci_high.cpu().numpy(),
            "ceiling": ceiling if ceiling is not None else np.nan,
            "normalized": (full.score.cpu().numpy() / ceiling) if ceiling else np.nan,
        })
        if full.ceiling_upper is not None:
            table["ceiling_upper"] = full.ceiling_upper

        select, held_out = half_split(n_stim, seed)
        sel = score_rdms(self._prepare(subset_condensed(model, select)), self._prepare(subset_condensed(data, select)),
                         seed=seed, method=self.comparator, n_bootstrap=0, bootstrap="stimuli")
        best = int(torch.argmax(sel.score))
        test = score_rdms(self._prepare(subset_condensed(model[best:best + 1], held_out)),
                          self._prepare(subset_condensed(data, held_out)), seed=seed, **common)
        raw = float(test.score[0])
        ceil_h = test.ceiling_lower
        return Scores(
            layers=table,
            best_layer=names[best], raw=raw, ci_low=float(test.ci_low[0]), ci_high=float(test.ci_high[0]),
            ceiling=ceil_h, normalized=(raw / ceil_h) if ceil_h else None,
            ceiling_lower=ceil_h, ceiling_upper=test.ceiling_upper,
            selection=(f"layer chosen on a random half of the {n_stim} stimuli (seed {seed}); headline scored on the "
                       f"other {len(held_out)} stimuli, with ceiling and {self.n_bootstrap}-sample stimulus-bootstrap CI "
                       "on that half; the per-layer table uses all stimuli"),
            ceiling_note=note or (test.ceiling_note or "Nili et al. (2014) lower bound; normalised = raw / lower bound"),
            metric=self.metric,
            provenance={"comparator": self.comparator, "rdm_method": self.rdm_method,
                        "transform": self.transform_name or None, "n_bootstrap": self.n_bootstrap,
                        "selection_stimuli": [self.stimuli().ids[i] for i in select],
                        "n_subjects": int(data.shape[0])},
        )
