"""Model comparison: paired bootstrap tests of several models on one RSA benchmark, and
model-vs-model representational similarity (layer x layer linear CKA).

`compare` scores each model's layer RDM against the benchmark's data RDMs on the *same* stimuli
and subjects and tests every pair on the same resamples (`metrics.inference.compare_models`, as
rsatoolbox's model comparison: bootstrap over stimuli and subjects with >= 2 subject RDMs, over
stimuli with one), then adjusts the pairwise p-values for multiple comparisons (Holm and
Benjamini-Hochberg, both reported: `metrics.inference.adjust_pvalues`).

Which layer: `layers[model]` when given; else the layer the store's latest headline of that model
on the benchmark selected (chosen on one half of the stimuli). Everything is then computed on the
other, held-out half of the same seeded split (`kinds.selection.half_split`), so no layer choice
peeks at the stimuli it is compared on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import DataUnavailableError, InvalidInputError
from ..store import ResultStore
from . import figures

log = logging.getLogger(__name__)


@dataclass
class Comparison:
    """`scores`: one row per model (layer, raw, CI); `pairs`: one row per pair (difference a - b,
    its CI, p, p_holm, p_fdr_bh); the comparator, bootstrap and what was resampled."""

    benchmark: str
    scores: pd.DataFrame
    pairs: pd.DataFrame
    comparator: str
    bootstrap: str
    n_bootstrap: int
    n_stimuli: int
    n_subjects: int
    figure: str  # SVG data URI: scores with CIs

    @property
    def description(self) -> str:
        return (f"{self.benchmark}: {self.comparator} on {self.n_stimuli} held-out stimuli x {self.n_subjects} "
                f"subject RDM(s); paired bootstrap ({self.n_bootstrap} resamples of {self.bootstrap}); two-sided "
                "p adjusted for the family of pairs: p_holm = Holm (family-wise error), p_fdr_bh = "
                "Benjamini-Hochberg (false discovery rate)")


def _stored_layer(store: ResultStore, model: str, benchmark: str) -> str | None:
    rows = store.rows()
    if rows.empty:
        return None
    heads = rows[(rows["model"] == model) & (rows["benchmark"] == benchmark) & (rows["row_kind"] == "headline")]
    return None if heads.empty else str(heads.iloc[-1]["layer"])


def _load(models, weights, seed):
    from ..api import load_model

    adapters = [load_model(m, weights=weights, seed=seed) for m in models]
    labels = [a.display_name for a in adapters]
    if len(set(labels)) != len(labels):
        raise InvalidInputError(f"compare needs distinct models; got {labels}")
    return adapters, labels


def compare(models: list[str], benchmark: str, layers: dict[str, str] | None = None, weights: str | None = None,
            store=None, n_bootstrap: int = 1000, seed: int = 0, device: str = "cpu",
            batch_size: int = 32) -> Comparison:
    """Paired comparison of `models` on the RSA benchmark `benchmark` (module docstring)."""
    from ..api import load_benchmark
    from ..kinds.rsa import RSABenchmark, model_rdms
    from ..kinds.selection import half_split
    from ..metrics.inference import adjust_pvalues, compare_models, score_rdms
    from ..metrics.rdm import subset_condensed
    from ..progress import progress_bar

    if len(models) < 2:
        raise InvalidInputError(f"compare needs at least two models; got {models}")
    bench = load_benchmark(benchmark)
    if not isinstance(bench, RSABenchmark):
        raise InvalidInputError(f"{benchmark} is a {type(bench).__name__}: compare tests models on RSA benchmarks "
                                "(their data RDMs); give an RSA benchmark (`neurobench list benchmarks`)")
    st = store if isinstance(store, ResultStore) else ResultStore(store, writable=False)
    adapters, labels = _load(models, weights, seed)
    layers = dict(layers or {})
    chosen = []
    for name, adapter in zip(models, adapters):
        layer = layers.get(name) or layers.get(adapter.identifier) or _stored_layer(st, adapter.identifier, benchmark)
        if layer is None:
            raise DataUnavailableError(f"no layer for {adapter.display_name}: score it first (`neurobench score --model "
                                       f"{name} --benchmark {benchmark}`) or give --layer {name}=LAYER")
        chosen.append(adapter.check_layers([layer])[0])
    stim = bench.stimuli()
    data, _ = bench.data_rdms(torch.device(device))
    _select, held_out = half_split(len(stim), seed)
    rdms = []
    with progress_bar(len(adapters), f"{benchmark}: model RDMs") as bar:
        for adapter, layer in zip(adapters, chosen):
            acts = adapter.activations(stim, [layer], batch_size=batch_size, device=device)
            rdms.append(model_rdms(acts, stim.ids, bench.rdm_method, device, benchmark)[0])
            bar.advance()
    x = bench.prepare(subset_condensed(torch.stack(rdms), held_out))
    y = bench.prepare(subset_condensed(data, held_out))
    kind = "both" if y.shape[0] >= 2 else "stimuli"
    scored = score_rdms(x, y, method=bench.comparator, n_bootstrap=n_bootstrap, seed=seed, bootstrap=kind,
                        ceiling=False)
    scores = pd.DataFrame({"model": labels, "layer": chosen, "raw": scored.score.cpu().numpy(),
                           "ci_low": scored.ci_low.cpu().numpy(), "ci_high": scored.ci_high.cpu().numpy()})
    pairs = []
    n_pairs = len(labels) * (len(labels) - 1) // 2
    with progress_bar(n_pairs, f"{benchmark}: paired bootstraps") as bar:
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                c = compare_models(x[i], x[j], y, method=bench.comparator, n_bootstrap=n_bootstrap, seed=seed,
                                   bootstrap=kind)
                pairs.append({"model_a": labels[i], "model_b": labels[j], "difference": c.difference,
                              "ci_low": c.ci_low, "ci_high": c.ci_high, "p": c.p_value})
                bar.advance()
    pairs = pd.DataFrame(pairs)
    pairs["p_holm"] = adjust_pvalues(pairs["p"], "holm")
    pairs["p_fdr_bh"] = adjust_pvalues(pairs["p"], "fdr_bh")
    uri = figures.comparison(labels, scores["raw"], scores["ci_low"], scores["ci_high"],
                             f"{benchmark} (held-out half)", f"raw ({bench.comparator})")
    return Comparison(benchmark, scores, pairs, bench.comparator, kind, n_bootstrap, len(held_out),
                      int(y.shape[0]), uri)


def cka_matrix(acts_a, acts_b, layers_a: list[str], layers_b: list[str], debiased: bool = False,
               device: str = "cpu") -> np.ndarray:
    """Linear CKA (Kornblith et al. 2019; `metrics.cka.linear_cka`) of every layer of a against
    every layer of b, on the same stimuli (rows), in float64: (len(layers_a), len(layers_b))."""
    from ..metrics.cka import linear_cka

    out = np.full((len(layers_a), len(layers_b)), np.nan)
    for i, la in enumerate(layers_a):
        xa = torch.as_tensor(np.asarray(acts_a[la]).reshape(len(np.asarray(acts_a[la])), -1), dtype=torch.float64)
        for j, lb in enumerate(layers_b):
            xb = np.asarray(acts_b[lb])
            out[i, j] = float(linear_cka(xa, xb.reshape(len(xb), -1), debiased=debiased, device=device,
                                         dtype=torch.float64))
    return out


def layer_cka(model_a: str, model_b: str, benchmark: str, weights: str | None = None, seed: int = 0,
              layers_a: list[str] | None = None, layers_b: list[str] | None = None, debiased: bool = False,
              device: str = "cpu", batch_size: int = 32) -> tuple[pd.DataFrame, str]:
    """Layer x layer linear CKA between two models on a benchmark's stimuli: (DataFrame with the
    layers of a as rows and of b as columns, heatmap SVG data URI)."""
    from ..api import load_benchmark

    stim = load_benchmark(benchmark).stimuli()
    (a, b), (label_a, label_b) = _load([model_a, model_b], weights, seed)
    la = a.check_layers(layers_a)
    lb = b.check_layers(layers_b)
    acts_a = a.activations(stim, la, batch_size=batch_size, device=device)
    acts_b = b.activations(stim, lb, batch_size=batch_size, device=device)
    m = cka_matrix(acts_a, acts_b, la, lb, debiased, device)
    frame = pd.DataFrame(m, index=la, columns=lb)
    frame.index.name = "layer (a)"
    uri = figures.heatmap(m, la, lb, f"{'debiased ' if debiased else ''}linear CKA on {benchmark}'s {len(stim)} stimuli",
                          "CKA", label_b, label_a)
    return frame, uri
