"""Hierarchy benchmarks: a model's layers against the order of brain regions (spatial) or of
response latencies (temporal), over the per-target results of other benchmarks (docs/hierarchy.md).

A `HierarchyBenchmark` declares the benchmarks it combines (`components`: id and hierarchical
position, e.g. `nsd.v1-encoding` at 1 ... `nsd.ffa-encoding` at 5) and what it measures:

- `spatial`: every component is an encoding benchmark that keeps every layer's per-target held-out
  r (`Scores.targets`); per target the relative depth of its best layer, correlated with the
  position of the target's region (`metrics.hierarchy.spatial_score`). The per-target table of
  every component, with the region, its position and each target's best layer and depth, is the
  result's sidecar, so `neurobench export --format nifti` draws the best-layer depth on the brain.
- `temporal`: one time-resolved component (`TemporalEncodingBenchmark`: per-subject time courses
  in `provenance["timecourse"]`; `TemporalRSABenchmark`: per-subject courses in its per-target
  table); per layer the latency of its peak, correlated with relative depth
  (`metrics.hierarchy.temporal_score`). Interval: subjects resampled; for a time-resolved RSA
  component, which keeps every resample's peak latencies (stimuli and subjects resampled, the
  same draws for all layers), those resamples instead. The time courses are the sidecar.

Each component is scored with the same model, layers, seed and device (activations come from the
cache after the first); its headline is recorded in the provenance (`components`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import torch

from ..conventions import NO_INTERVAL, STIMULI, SUBJECTS, SUBJECTS_STIMULI_PERCENTILE
from ..errors import InvalidInputError, NeurobenchError
from ..metrics.hierarchy import depth_correlations, relative_depth, spatial_score, temporal_score
from ..options import names as name_list
from ..options import non_negative_int, option
from ..result import ScoreResult, Scores
from .base import Benchmark, _jsonable

log = logging.getLogger(__name__)

__all__ = ["HierarchyBenchmark", "subject_timecourses", "MEASURES"]

MEASURES = ("spatial", "temporal")
_RUN_KEYS = ("neurobench_version", "torch_version", "python", "weights_sha256", "preprocess", "readout", "precision",
             "memory_budget", "seed", "device")


def _registered(identifier: str) -> Benchmark:
    from ..registry import benchmarks

    bench = benchmarks.get(identifier).factory()
    if not bench.identifier:
        bench.identifier = identifier
    return bench


class HierarchyBenchmark(Benchmark):
    """A spatial or temporal hierarchy score over other benchmarks (module docstring).

    Parameters
    ----------
    n_bootstrap : int
        Resamples of the 95% percentile interval (0: none). Spatial: subjects (>= 2), then targets
        within each subject and region; temporal: subjects.
    n_permutations : int
        Orders of the layers for the one-sided permutation p-value (every order when L! is not
        larger; 0: no p-value).
    component_bootstrap : int
        `n_bootstrap` of each component benchmark that takes one (its own headline interval,
        recorded in the provenance; the hierarchy score does not use it). 0 saves time.
    subjects : list of str or None
        Passed to every component that takes `subjects` (None: each component's default).
    """

    n_bootstrap = option(1000, non_negative_int)
    n_permutations = option(1000, non_negative_int)
    component_bootstrap = option(0, non_negative_int)
    subjects = option(None, name_list, nullable=True)

    def __init__(self, identifier: str, description: str, measure: str, components: Sequence[tuple[str, float]],
                 load: Callable[[str], Benchmark] | None = None, **options):
        if measure not in MEASURES:
            raise InvalidInputError(f"hierarchy measure must be one of {MEASURES}, got {measure!r}")
        if not components or (measure == "temporal" and len(components) != 1):
            raise InvalidInputError(f"{identifier}: a spatial hierarchy combines >= 2 region benchmarks, a temporal "
                                    f"one exactly 1 time-resolved benchmark; got {len(components)}")
        if measure == "spatial" and len({float(p) for _, p in components}) < 2:
            raise InvalidInputError(f"{identifier}: the regions need >= 2 distinct hierarchy positions")
        self.identifier, self.description, self.measure = identifier, description, measure
        self.components = tuple((str(c), float(p)) for c, p in components)
        self.metric = f"hierarchy-{measure}"
        self._load = load or _registered
        self._benches: dict[str, Benchmark] = {}
        self.configure(**options)

    # ------------------------------------------------------------------ components

    def component(self, identifier: str) -> Benchmark:
        """A component benchmark, loaded once, with this benchmark's component options set."""
        if identifier not in self._benches:
            self._benches[identifier] = self._load(identifier)
        bench = self._benches[identifier]
        declared = bench.options()
        if "n_bootstrap" in declared:
            bench.configure(n_bootstrap=self.component_bootstrap)
        if self.subjects is not None and "subjects" in declared:
            bench.configure(subjects=list(self.subjects))
        return bench

    def data_status(self) -> tuple[bool, str]:
        for ident, _ in self.components:
            ok, why = self.component(ident).data_status()
            if not ok:
                return False, f"{ident}: {why}"
        return True, ""

    def data_hashes(self) -> dict[str, str]:
        out = {}
        for ident, _ in self.components:
            out.update(self.component(ident).data_hashes())
        return out

    def required_files(self):
        out: dict = {}
        for ident, _ in self.components:
            for ds, names in self.component(ident).required_files().items():
                out[ds] = None if names is None or out.get(ds, []) is None else sorted({*out.get(ds, []), *names})
        return out

    def stimuli(self):
        return self.component(self.components[0][0]).stimuli()

    def check_data(self) -> None:
        for ident, _ in self.components:
            self.component(ident).check_data()

    # ------------------------------------------------------------------ scoring

    def score(self, adapter, layers=None, batch_size: int = 32, device="auto", seed: int = 0, cache=True,
              memory_budget: int | None = None) -> ScoreResult:
        """Score every component with the model, then the hierarchy score over their results."""
        start = time.perf_counter()
        self.check_data()
        results = {}
        for ident, _ in self.components:
            log.info("%s: scoring component %s", self.identifier, ident)
            try:
                results[ident] = self.component(ident).score(adapter, layers=layers, batch_size=batch_size,
                                                             device=device, seed=seed, cache=cache,
                                                             memory_budget=memory_budget)
            except NeurobenchError as exc:
                raise type(exc)(f"{self.identifier}, component {ident}: {exc}") from None
        scores = self.score_results(results, seed=seed)
        first = next(iter(results.values())).provenance
        provenance = {k: first.get(k) for k in _RUN_KEYS}
        provenance.update({
            "data_hashes": {k: v for r in results.values() for k, v in r.provenance.get("data_hashes", {}).items()},
            "stimulus_set_hash": {i: r.provenance.get("stimulus_set_hash") for i, r in results.items()},
            "duration_s": round(time.perf_counter() - start, 3),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "options": {k: _jsonable(v) for k, v in self.option_values().items()},
        })
        return ScoreResult.from_scores(scores, model=adapter.identifier, weights_id=adapter.weights_id,
                                       trained=adapter.trained, benchmark=self.identifier, provenance=provenance)

    def score_results(self, results: Mapping[str, Scores], seed: int = 0) -> Scores:
        """The hierarchy score of the components' results (`{component id: Scores}`)."""
        missing = [i for i, _ in self.components if i not in results]
        if missing:
            raise InvalidInputError(f"{self.identifier}: no result for component(s) {missing}")
        if self.measure == "spatial":
            scores = self._spatial(results, seed)
        else:
            scores = self._temporal(results[self.components[0][0]], seed)
        scores.provenance["components"] = {
            i: {"position": p, "raw": results[i].raw, "ci_low": results[i].ci_low, "ci_high": results[i].ci_high,
                "interval": results[i].interval, "normalized": results[i].normalized,
                "normalization": results[i].normalization, "best_layer": results[i].best_layer}
            for i, p in self.components}
        return scores

    def _spatial(self, results: Mapping[str, Scores], seed: int) -> Scores:
        layers = _shared_layers(results, self.identifier)
        frames = []
        for ident, position in self.components:
            t = results[ident].targets
            if t is None:
                raise InvalidInputError(f"{self.identifier}: {ident} keeps no per-target values (its kind scores "
                                        "RDMs or layers): a spatial score needs every layer's per-target held-out r")
            frames.append(t.assign(region=ident, position=position))
        long = pd.concat(frames, ignore_index=True)
        base = long[long["layer"] == layers[0]][["region", "subject", "target", "position"]].reset_index(drop=True)
        key = ["region", "subject", "target"]
        index = pd.MultiIndex.from_frame(base[key])
        matrix = np.stack([long[long["layer"] == n].set_index(key)["r"].reindex(index).to_numpy(np.float64)
                           for n in layers])
        score, best, depth = spatial_score(
            torch.as_tensor(matrix), torch.tensor(base["position"].to_numpy(np.float64)),
            groups=base["region"].to_numpy(), subjects=base["subject"].to_numpy(),
            n_bootstrap=self.n_bootstrap, n_permutations=self.n_permutations, seed=seed)
        best = best.numpy()
        depth = depth.numpy()
        base["best_layer"] = [layers[b] if b >= 0 else "" for b in best]
        base["best_depth"] = depth
        long = long.merge(base[key + ["best_layer", "best_depth"]], on=key, how="left")
        rel = relative_depth(len(layers)).numpy()
        rows = []
        for i, name in enumerate(layers):
            mine = best == i
            rows.append({"layer": name, "depth": float(rel[i]), "raw": float(np.nanmedian(matrix[i])),
                         "ci_low": np.nan, "ci_high": np.nan, "ceiling": np.nan, "normalized": np.nan,
                         "share_best": float(mine.mean()), "n_best": int(mine.sum()),
                         "mean_position_best": float(base["position"][mine].mean()) if mine.any() else np.nan,
                         "interval": NO_INTERVAL})
        table = pd.DataFrame(rows)
        per_region = {r: {"position": float(g["position"].iloc[0]), "n_targets": len(g),
                          "mean_best_depth": float(np.nanmean(g["best_depth"]))}
                      for r, g in base.groupby("region", sort=False)}
        spaces = {}
        for ident, _ in self.components:
            for subject, space in (results[ident].target_space or {}).items():
                spaces.setdefault(subject, space)
        out = self._headline(table, score, "spatial")
        out.targets, out.target_space = long, spaces or None
        out.selection = ("every layer: per target (voxel) the layer with the best held-out r (each component's "
                         "per-target r); best_layer is the layer with the highest median r over all targets, shown "
                         "for reference and not used by the score")
        out.provenance["hierarchy"] = {
            "measure": "spatial", "layers": layers, "depth": rel.tolist(), "per_region": per_region,
            "statistic": "Pearson r over targets between the relative depth (i / (L - 1)) of each target's best layer "
                         "and its region's hierarchy position", "n_targets": int(np.isfinite(depth).sum()),
            **_test_record(score)}
        return out

    def _temporal(self, result: Scores, seed: int) -> Scores:
        subjects, names, times, courses = subject_timecourses(result, self.identifier)
        score, latency, lat_lo, lat_hi = temporal_score(
            torch.as_tensor(courses), torch.as_tensor(times), n_bootstrap=self.n_bootstrap,
            n_permutations=self.n_permutations, seed=seed)
        score, lat_lo, lat_hi = _joint_latency_interval(result.provenance["timecourse"], score, lat_lo, lat_hi,
                                                        len(names), self.n_bootstrap)
        rel = relative_depth(len(names)).numpy()
        mean = np.nanmean(courses, axis=0)
        table = pd.DataFrame({"layer": names, "depth": rel, "raw": np.nanmax(mean, axis=1), "ci_low": np.nan,
                              "ci_high": np.nan, "ceiling": np.nan, "normalized": np.nan,
                              "peak_latency": latency.numpy(), "latency_ci_low": lat_lo.numpy(),
                              "latency_ci_high": lat_hi.numpy(), "latency_interval": score.interval,
                              "interval": NO_INTERVAL})
        frames = [pd.DataFrame({"layer": np.repeat(names, len(times)), "subject": s, "target": np.tile(
            np.arange(len(times)), len(names)), "time": np.tile(times, len(names)), "r": c.reshape(-1)})
            for s, c in zip(["mean", *subjects], [mean, *courses])]
        out = self._headline(table, score, "temporal")
        out.targets = pd.concat(frames, ignore_index=True)
        out.selection = ("every layer: per layer the latency of the peak of its time course (held-out r, mean over "
                         "subjects); best_layer is the layer with the highest peak, shown for reference and not "
                         "used by the score")
        out.provenance["hierarchy"] = {
            "measure": "temporal", "layers": names, "depth": rel.tolist(), "times": times.tolist(),
            "subjects": subjects, "peak_latency": latency.tolist(),
            "peak_latency_ci": np.stack([lat_lo.numpy(), lat_hi.numpy()], 1).tolist(),
            "statistic": "Pearson r over layers between relative depth (i / (L - 1)) and the latency of the peak of "
                         "the layer's subject-mean time course", **_test_record(score)}
        return out

    def _headline(self, table: pd.DataFrame, score, measure: str) -> Scores:
        notes = []
        if np.isfinite(score.p_value):
            notes.append(f"permutation p = {score.p_value:.4g} ({'all' if score.exact else ''} {score.n_permutations} "
                         "orders of the layers; one-sided, depth aligned with the hierarchy)")
        return Scores(
            layers=table, best_layer=str(table.loc[table["raw"].fillna(-np.inf).idxmax(), "layer"]),
            raw=score.score, ci_low=score.ci_low, ci_high=score.ci_high, ceiling=None, normalized=None,
            selection="", interval=score.interval, metric=self.metric, notes=notes,
            ceiling_note=(f"a {measure} score is a correlation between layer depth and a brain hierarchy (Raugel et "
                          "al. 2025); it has no noise ceiling: 1 is perfect alignment, 0 none"))


_LATENCY_INTERVALS = {"both": SUBJECTS_STIMULI_PERCENTILE, "stimuli": STIMULI, "subjects": SUBJECTS}


def _joint_latency_interval(course: Mapping, score, lat_lo, lat_hi, n_layers: int, n_bootstrap: int):
    """Where the component kept every resample's peak latencies (time-resolved RSA: stimuli and
    subjects resampled, the same draws for every layer), the temporal score's interval and the
    per-layer latency intervals come from those; otherwise the subject bootstrap stays."""
    samples = course.get("peak_latency_samples")
    kind = course.get("latency_bootstrap")
    if not samples or n_bootstrap == 0 or kind not in _LATENCY_INTERVALS:
        return score, lat_lo, lat_hi
    lat = torch.as_tensor(np.asarray(samples, dtype=np.float64))
    if lat.ndim != 2 or lat.shape[1] != n_layers:
        return score, lat_lo, lat_hi
    r = depth_correlations(lat).numpy()
    lo, hi = np.percentile(r, [2.5, 97.5])
    score = dataclasses.replace(score, ci_low=float(lo), ci_high=float(hi), interval=_LATENCY_INTERVALS[kind], samples=r)
    ci = np.asarray(course.get("peak_latency_ci"), dtype=np.float64)
    return score, torch.as_tensor(ci[:, 0]), torch.as_tensor(ci[:, 1])


def _test_record(score) -> dict:
    return {"p_value": score.p_value, "n_permutations": score.n_permutations, "exact_permutation": score.exact,
            "permuted": "the order of the layers", "interval": score.interval,
            "n_bootstrap": len(score.samples)}


def _shared_layers(results: Mapping[str, Scores], what: str) -> list[str]:
    names = None
    for ident, res in results.items():
        mine = [str(n) for n in res.layers["layer"]]
        if names is not None and mine != names:
            raise InvalidInputError(f"{what}: {ident} scored layers {mine}, another component {names}: every "
                                    "component must score the same layers in the same order")
        names = mine
    if names is None or len(names) < 2:
        raise InvalidInputError(f"{what}: a hierarchy score needs >= 2 scored layers, got {names}")
    return names


def subject_timecourses(result: Scores, what: str = "") -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(subjects, layers, times (B,), courses (S, L, B)) of held-out r from a time-resolved result:
    a temporal encoding result (`provenance["timecourse"]["per_subject"]`) or a temporal RSA one
    (per-target columns `r_<subject>`, or the mean course `r` for one subject)."""
    course = result.provenance.get("timecourse")
    if not isinstance(course, dict) or "times" not in course:
        raise InvalidInputError(f"{what}: the component's result has no time courses (provenance['timecourse']); "
                                "a temporal score needs a time-resolved benchmark (things-meg.*, cichy2014.meg-rsa)")
    times = np.asarray(course["times"], dtype=np.float64)
    names = [str(n) for n in course["layers"]]
    if "per_subject" in course:
        subjects = list(course["per_subject"])
        courses = np.stack([np.asarray(course["per_subject"][s]["r"], dtype=np.float64) for s in subjects])
        return subjects, names, times, courses
    table = result.per_target
    cols = [c for c in table.columns if c.startswith("r_")] if isinstance(table, pd.DataFrame) else []
    if cols:
        grid = [table[c].to_numpy(np.float64).reshape(len(names), len(times)) for c in cols]
        return [c[2:] for c in cols], names, times, np.stack(grid)
    return ["all"], names, times, np.asarray(course["r"], dtype=np.float64)[None]
