"""RSA benchmarks: model RDMs per layer against one or more data RDMs.

Per-layer scores use all stimuli. The headline uses a layer chosen without peeking: stimuli are
split in two halves (seeded); the layer that scores best on the selection half is scored, with
its ceiling and bootstrap CI, on the held-out half only.

Data RDMs are checked where they enter (`metrics.rdm.check_data_rdms`), before any activation is
extracted: one per subject over exactly the benchmark's stimuli, finite, square ones symmetric
with a zero diagonal, no negative dissimilarity, not constant. Similarity matrices, half-filled
matrices and the like are refused with a message that names them and the fix; similarities are
converted only when the `similarity_to_dissimilarity` option says so. Model RDMs are computed
in float64 from activations checked for width and finiteness (`check_activations`) and rescaled
by an exact power of two when their magnitude would overflow (`metrics.scaling`), which leaves
every comparison unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from ..conventions import NILI_LOWER
from ..data.stimuli import StimulusSet
from ..errors import InvalidInputError
from ..metrics.inference import BOOTSTRAP_CHOICES, score_rdms
from ..metrics.rdm import check_data_rdms, compute_rdms, subset_condensed, upper_triangle
from ..metrics.scaling import rescaled
from ..options import boolean, non_negative_int, one_of, option
from ..progress import progress_bar
from ..result import Scores
from .base import Benchmark, check_activations
from .selection import half_split

log = logging.getLogger(__name__)


def model_rdms(activations, ids, method: str, device, what: str = "") -> torch.Tensor:
    """Condensed float64 RDMs (layers, K) of checked activations (rows follow `ids`), each layer
    rescaled by an exact power of two first when its magnitude would overflow or underflow."""
    check_activations(activations, ids, what)
    out = []
    with progress_bar(len(activations), f"{what or 'model'}: RDMs per layer") as bar:
        for name in activations:
            x = activations[name]
            x, _factor = rescaled(x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x)))
            out.append(upper_triangle(compute_rdms(x, method, device=device, dtype=torch.float64)))
            bar.advance()
    return torch.stack(out)


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
        Bootstrap resamples for the 95% confidence intervals; 0 for none.
    bootstrap : {'auto', 'stimuli', 'subjects', 'both', 'both-corrected'}
        What the intervals resample: 'auto' is 'both-corrected' with >= 2 subject RDMs (subjects
        and stimuli, Schütt et al. 2023 corrected variance, t interval) and 'stimuli' with one;
        'stimuli' / 'subjects' / 'both' are percentile intervals over one factor or both
        (docs/conventions.md).
    similarity_to_dissimilarity : bool
        The data matrices are similarities (e.g. correlation matrices): convert them with
        D_ij = (S_ii + S_jj) / 2 - S_ij (1 - r for correlations) before checking and comparing.
        Without it a similarity matrix is refused, never scored as an RDM.
    allow_negative : bool
        The data RDMs hold cross-validated (unbiased) distances such as crossnobis, which can be
        negative; without it a negative dissimilarity is refused.
    """

    n_bootstrap = option(1000, non_negative_int)
    bootstrap = option("auto", one_of(*BOOTSTRAP_CHOICES))
    similarity_to_dissimilarity = option(False, boolean)
    allow_negative = option(False, boolean)

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
        self._checked: tuple[tuple, torch.Tensor, str] | None = None

    def check_data(self) -> None:
        self.data_rdms("cpu")

    def data_rdms(self, device: torch.device) -> tuple[torch.Tensor, str]:
        """The data RDMs, condensed (subjects, K) float64 on `device`, checked (see the module
        docstring) once per setting of the conversion options; and the loader's note."""
        key = (self.similarity_to_dissimilarity, self.allow_negative)
        if self._checked is None or self._checked[0] != key:
            ids, rdms, note = self._load_data()
            self.stimuli().check_aligned(ids, what=f"{self.identifier} data RDMs")
            rdms = rdms if isinstance(rdms, torch.Tensor) else np.asarray(rdms)
            n = len(ids)
            if rdms.ndim == 2 and tuple(rdms.shape) == (n, n) and n != n * (n - 1) // 2:
                raise InvalidInputError(f"{self.identifier}: the data is one square RDM ({n} x {n}); give it a subject "
                                        "axis (rdms[None]): data RDMs are (subjects, n, n) or (subjects, n(n-1)/2)")
            if rdms.ndim not in (2, 3):
                raise InvalidInputError(
                    f"{self.identifier}: data RDMs of shape {tuple(rdms.shape)}; expected one per subject, square "
                    f"(subjects, {len(ids)}, {len(ids)}) or condensed (subjects, {len(ids) * (len(ids) - 1) // 2})")
            t = check_data_rdms(rdms, len(ids), what=f"{self.identifier} data RDMs", square=rdms.ndim == 3,
                                similarity=self.similarity_to_dissimilarity, allow_negative=self.allow_negative,
                                ids=list(ids), axes=("subject",))
            self._checked = (key, t, note)
        _key, t, note = self._checked
        return t.to(device), note

    def prepare(self, condensed: torch.Tensor) -> torch.Tensor:
        """Condensed RDMs as the comparator sees them: after the benchmark's transform, if any."""
        return self.transform(condensed) if self.transform is not None else condensed

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        names = list(activations)
        data, note = self.data_rdms(device)
        model = model_rdms(activations, self.stimuli().ids, self.rdm_method, device, self.identifier)
        n_stim = len(self.stimuli())
        common = dict(method=self.comparator, n_bootstrap=self.n_bootstrap, bootstrap=self.bootstrap)

        with progress_bar(3, f"{self.identifier}: {self.n_bootstrap} bootstraps of {len(names)} layers, layer "
                             "selection, held-out bootstraps") as bar:
            full = score_rdms(self.prepare(model), self.prepare(data), seed=seed, **common)
            bar.advance()
            _sel, test, select, held_out, best = self._held_out(model, data, n_stim, seed, common, bar)
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

        raw = float(test.score[0])
        ceil_h = test.ceiling_lower
        return Scores(
            layers=table,
            best_layer=names[best], raw=raw, ci_low=float(test.ci_low[0]), ci_high=float(test.ci_high[0]),
            ceiling=ceil_h, normalized=(raw / ceil_h) if ceil_h else None,
            ceiling_lower=ceil_h, ceiling_upper=test.ceiling_upper,
            normalization=NILI_LOWER if ceil_h else None, interval=test.interval,
            selection=(f"layer chosen on a random half of the {n_stim} stimuli (seed {seed}); headline scored on the "
                       f"other {len(held_out)} stimuli, with ceiling and {self.n_bootstrap}-sample CI ({test.interval}) "
                       "on that half; the per-layer table uses all stimuli"),
            ceiling_note=note or (test.ceiling_note or "Nili et al. (2014) lower bound; normalised = raw / lower bound"),
            metric=self.metric,
            provenance={"comparator": self.comparator, "rdm_method": self.rdm_method,
                        "transform": self.transform_name or None, "n_bootstrap": self.n_bootstrap,
                        "bootstrap": test.bootstrap, "ci_variance": _variance(test),
                        "selection_stimuli": [self.stimuli().ids[i] for i in select],
                        "n_subjects": int(data.shape[0])},
        )


    def _held_out(self, model, data, n_stim: int, seed: int, common: dict, bar):
        """The layer chosen on a seeded half of the stimuli, scored on the other half."""
        select, held_out = half_split(n_stim, seed)
        sel = score_rdms(self.prepare(subset_condensed(model, select)), self.prepare(subset_condensed(data, select)),
                         seed=seed, method=self.comparator, n_bootstrap=0)
        bar.advance()
        best = int(torch.argmax(sel.score))
        test = score_rdms(self.prepare(subset_condensed(model[best:best + 1], held_out)),
                          self.prepare(subset_condensed(data, held_out)), seed=seed, **common)
        bar.advance()
        return sel, test, select, held_out, best


def _variance(scores) -> float | None:
    """The headline's corrected two-factor variance (None for percentile intervals)."""
    return None if scores.variance is None else float(scores.variance[0])
