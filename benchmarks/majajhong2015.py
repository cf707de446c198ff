"""Majaj, Hong et al. (2015): V4 and IT multi-unit responses to the HVM images (public BrainIO release).

- `majajhong2015.it-pls`, `majajhong2015.v4-pls`: Brain-Score's `MajajHong2015public.IT-pls` /
  `.V4-pls` protocol: PLS regression (25 components, scale=False) from a layer to the
  repetition-averaged 70-170 ms responses, 10 stratified (by object) shuffle splits of 90% train /
  10% test with scikit-learn's random_state=1, Pearson r per neuroid on the test images, median over
  neuroids, mean over splits; ceiling = Brain-Score's internal consistency (split-half over
  repetitions, Spearman-Brown, median over neuroids, mean over 10 splits). Normalised as every
  encoding benchmark is (`explainable_variance_fraction`: median over neuroids of sign(r) r^2 /
  internal consistency, r = mean over splits), so the PLS and ridge mappings share a column; and
  Brain-Score's own number, `brainscore_explained_variance` = (raw / ceiling)^2 as
  `explained_variance` in brainscore_vision/benchmark_helpers/neural_common.py computes it, is
  reported next to it (`other_normalizations`, a per-layer column of that name).
- `majajhong2015.it-encoding`, `majajhong2015.v4-encoding`: neurobench's cross-validated ridge
  (`score_encoding`) on 10 stratified folds (by object, random_state=1), normalised per neuroid by the
  same split-half reliability (sign(r) r^2 / reliability, median over neuroids).

Files: the BrainIO netCDF assembly `assy_dicarlo_MajajHong2015_public.nc` (one DataArray, dims
neuroid x presentation x time_bin, with flattened MultiIndex levels as plain coords: image_id and
repetition on presentation, neuroid_id / region / animal on neuroid, time_bin_start / time_bin_end on
time_bin) and the stimulus set `image_dicarlo_hvm-public.csv` (image_id, object_name, category_name,
variation, filename, ...) + `.zip` (the PNGs at the archive root).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from neurobench.conventions import (
    BRAINSCORE_EXPLAINED_VARIANCE,
    EXPLAINABLE_VARIANCE_FRACTION,
    NO_INTERVAL,
    STIMULI,
)
from neurobench.data.files import file_state, resolve, unpack
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import AlignmentError, DataFormatError, InvalidInputError, StimulusError
from neurobench.kinds.base import Benchmark
from neurobench.kinds.encoding import EncodingOptions, score_encoding
from neurobench.metrics.ceiling import brainscore_explained_variance, median_scores
from neurobench.metrics.correlation import pearson_columns, weighted_pearson_columns
from neurobench.metrics.inference import bootstrap_counts
from neurobench.metrics.pls import pls_fit
from neurobench.metrics.splits import Splits
from neurobench.options import int_at_least, non_negative_int, one_of, option
from neurobench.registry import register_benchmark
from neurobench.result import Scores

log = logging.getLogger(__name__)

DATASET = "majajhong2015"
ASSEMBLY_FILE = "assy_dicarlo_MajajHong2015_public.nc"
CSV_FILE = "image_dicarlo_hvm-public.csv"
ZIP_FILE = "image_dicarlo_hvm-public.zip"
VARIABLE = "dicarlo.MajajHong2015.public"
STIMULUS_SET = "dicarlo.hvm-public"
TIME_BIN = (70, 170)
REGIONS = {"it": "IT", "v4": "V4"}
N_SPLITS, TRAIN_SIZE, SPLIT_SEED = 10, 0.9, 1  # Brain-Score's CrossValidation defaults
N_COMPONENTS = 25
DATA_FILES = ((DATASET, ASSEMBLY_FILE), (DATASET, CSV_FILE), (DATASET, ZIP_FILE))

# ----------------------------------------------------------------------------------------------
# loading


def _another_release(path: Path, what: str) -> DataFormatError:
    return DataFormatError(f"{path.name}: {what}; is it the BrainIO {VARIABLE} release (sha1 in the manifest)?")


def _coord(da: xr.DataArray, names: tuple[str, ...], dim: str, path: Path) -> str:
    for name in names:
        if name in da.coords and da[name].dims == (dim,):
            return name
    found = sorted(c for c in da.coords if da[c].dims == (dim,))
    raise _another_release(path, f"no {' / '.join(names)} coordinate on '{dim}' (it has {found})")


@functools.lru_cache(maxsize=2)
def _read_assembly(key: tuple) -> xr.DataArray:
    """The assembly's DataArray, loaded into memory (netCDF via xarray; no pickle)."""
    path = Path(key[0][0])
    try:
        with xr.open_dataset(path) as ds:
            names = list(ds.data_vars)
            name = VARIABLE if VARIABLE in names else (names[0] if len(names) == 1 else None)
            if name is None:
                raise _another_release(path, f"expected the variable {VARIABLE!r}, found {names}")
            da = ds[name].load()
    except (OSError, ValueError) as exc:
        raise _another_release(path, f"cannot be read as netCDF ({exc})") from exc
    missing = {"presentation", "neuroid"} - set(da.dims)
    if missing:
        raise _another_release(path, f"dimensions {sorted(missing)} missing (dims are {list(da.dims)})")
    return da


def _select_time_bin(da: xr.DataArray, path: Path) -> xr.DataArray:
    """The (presentation x neuroid) responses of the 70-170 ms bin."""
    if "time_bin" not in da.dims:
        return da.transpose("presentation", "neuroid")
    start = da[_coord(da, ("time_bin_start",), "time_bin", path)].values
    end = da[_coord(da, ("time_bin_end", "time_bin_stop"), "time_bin", path)].values
    hit = np.flatnonzero((start == TIME_BIN[0]) & (end == TIME_BIN[1]))
    if hit.size != 1:
        bins = [(int(a), int(b)) for a, b in zip(start, end)]
        raise _another_release(path, f"no single time bin {TIME_BIN} ms (bins: {bins[:5]})")
    return da.isel(time_bin=int(hit[0])).transpose("presentation", "neuroid")


@dataclass(frozen=True)
class Recording:
    """One region's responses: (images x repetitions x neuroids), NaN where an image lacks a repetition."""

    region: str
    stimulus_ids: list[str]
    neuroid_ids: list[str]
    repetitions: np.ndarray
    responses: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Repetition-averaged responses (Brain-Score's average_repetition, skipna)."""
        with np.errstate(all="ignore"):
            return np.nanmean(self.responses, axis=1)


def load_recording(region: str) -> Recording:
    """The region's 70-170 ms responses from the BrainIO assembly, images sorted by image id."""
    path = resolve(DATASET, ASSEMBLY_FILE)
    return _recording(file_state(path), region)


@functools.lru_cache(maxsize=4)
def _recording(key: tuple, region: str) -> Recording:
    path = Path(key[0][0])
    da = _select_time_bin(_read_assembly(key), path)
    regions = da[_coord(da, ("region",), "neuroid", path)].values.astype(str)
    if region not in set(regions):
        raise InvalidInputError(f"{path.name}: no neuroids in region {region!r}; it has regions {sorted(set(regions.tolist()))}")
    da = da.isel(neuroid=np.flatnonzero(regions == region))
    image_ids = da[_coord(da, ("image_id", "stimulus_id"), "presentation", path)].values.astype(str)
    reps = da[_coord(da, ("repetition",), "presentation", path)].values
    neuroids = da[_coord(da, ("neuroid_id",), "neuroid", path)].values.astype(str).tolist()
    ids = sorted(set(image_ids.tolist()))
    rep_values = np.unique(reps)
    row = pd.Index(ids).get_indexer(image_ids)
    col = np.searchsorted(rep_values, reps)
    if len(set(zip(row.tolist(), col.tolist()))) != len(row):
        raise _another_release(path, "an image has two presentations with the same repetition number")
    values = np.asarray(da.values, dtype=np.float64)
    out = np.full((len(ids), len(rep_values), values.shape[1]), np.nan)
    out[row, col] = values
    log.info("%s %s: %d images x %d repetitions (max) x %d neuroids", ASSEMBLY_FILE, region, *out.shape)
    return Recording(region, ids, neuroids, rep_values, out)


@functools.lru_cache(maxsize=2)
def _stimulus_table(key: tuple) -> pd.DataFrame:
    path = Path(key[0][0])
    try:
        table = pd.read_csv(path, dtype={"image_id": str, "stimulus_id": str, "object_name": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataFormatError(f"{path.name}: cannot be read as CSV ({exc})") from exc
    if "image_id" not in table and "stimulus_id" in table:
        table = table.rename(columns={"stimulus_id": "image_id"})
    if "filename" not in table and "image_file_name" in table:
        table["filename"] = table["image_file_name"]
    missing = [c for c in ("image_id", "object_name", "filename") if c not in table]
    if missing:
        raise DataFormatError(f"{path.name}: missing column(s) {missing} (columns: {list(table.columns)[:12]}); "
                                f"is it the BrainIO {STIMULUS_SET} stimulus set?")
    if table["image_id"].duplicated().any():
        raise InvalidInputError(f"{path.name}: image ids repeat, e.g. {table['image_id'][table['image_id'].duplicated()].iloc[0]!r}")
    return table.set_index("image_id", drop=False).sort_index()


def _image_paths(folder: Path, filenames: list[str]) -> list[str]:
    """Each CSV filename inside the unpacked zip (at its root as BrainIO packs it, or in a sub-folder)."""
    found = {p.name: p for p in folder.rglob("*") if p.is_file()}
    paths, missing = [], []
    for name in filenames:
        direct = folder / name
        path = direct if direct.is_file() else found.get(Path(name).name)
        (paths if path is not None else missing).append(str(path) if path is not None else name)
    if missing:
        raise StimulusError(f"{ZIP_FILE}: {len(missing)} image(s) named in {CSV_FILE} are not in the archive, "
                            f"e.g. {missing[:3]}; are the CSV and the zip from the same release?")
    return paths


def load_stimuli() -> StimulusSet:
    """The HVM public images (sorted by image id), with object/category/variation labels; read lazily from disk."""
    table = _stimulus_table(file_state(resolve(DATASET, CSV_FILE)))
    folder = unpack(DATASET, ZIP_FILE)
    ids = table["image_id"].tolist()
    labels = table.drop(columns=["image_id"]).set_index(pd.Index(ids))
    return StimulusSet(STIMULUS_SET, ids, images=_image_paths(folder, table["filename"].astype(str).tolist()),
                       labels=labels)


def check_ids(recording: Recording, stimuli: StimulusSet) -> None:
    """Raise AlignmentError unless the assembly's images are exactly the stimulus set's."""
    have, want = set(recording.stimulus_ids), set(stimuli.ids)
    if have == want:
        return
    extra, missing = sorted(have - want), sorted(want - have)
    raise AlignmentError(
        f"{ASSEMBLY_FILE} ({recording.region}) and {CSV_FILE} describe different images: {len(extra)} image ids "
        f"in the assembly are not in the stimulus set (e.g. {extra[:3]}), {len(missing)} stimulus-set images "
        f"have no responses (e.g. {missing[:3]}); use the files of one release"
    )


# ----------------------------------------------------------------------------------------------
# splits and ceiling (Brain-Score conventions)


def _sklearn_model_selection():
    try:
        from sklearn import model_selection
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise InvalidInputError("the Majaj-Hong benchmarks use scikit-learn's splitters (Brain-Score's splits); "
                                "pip install scikit-learn") from exc
    return model_selection


def stratified_shuffle_splits(labels, n_splits: int = N_SPLITS, train_size: float = TRAIN_SIZE,
                              seed: int = SPLIT_SEED) -> Splits:
    """Brain-Score's CrossValidation: StratifiedShuffleSplit by object (random_state=seed) over rows."""
    labels = np.asarray(labels).astype(str)
    sss = _sklearn_model_selection().StratifiedShuffleSplit(n_splits=n_splits, train_size=train_size,
                                                            random_state=seed)
    folds = [(np.sort(tr), np.sort(te)) for tr, te in sss.split(np.zeros(len(labels)), labels)]
    return Splits("stratified-shuffle", seed, folds, len(labels),
                  {"stratification": "object_name", "train_size": train_size,
                   "generator": "sklearn.model_selection.StratifiedShuffleSplit"})


def stratified_kfold(labels, n_splits: int = N_SPLITS, seed: int = SPLIT_SEED) -> Splits:
    """Brain-Score's kfold=True variant (StratifiedKFold by object): every image is tested once."""
    labels = np.asarray(labels).astype(str)
    skf = _sklearn_model_selection().StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = [(np.sort(tr), np.sort(te)) for tr, te in skf.split(np.zeros(len(labels)), labels)]
    return Splits("stratified-kfold", seed, folds, len(labels),
                  {"stratification": "object_name", "generator": "sklearn.model_selection.StratifiedKFold"})


def repetition_halves(repetitions: np.ndarray, n_splits: int = N_SPLITS, seed: int = SPLIT_SEED):
    """Brain-Score's internal-consistency halves: ShuffleSplit(train_size=0.5) over the unique repetition values."""
    ss = _sklearn_model_selection().ShuffleSplit(n_splits=n_splits, train_size=0.5, random_state=seed)
    values = np.unique(repetitions)
    return [(np.sort(values[a]), np.sort(values[b])) for a, b in ss.split(np.zeros(len(values)))]


def internal_consistency(recording: Recording, weights: torch.Tensor, halves) -> torch.Tensor:
    """Spearman-Brown-corrected split-half r per (weighting, half split, neuroid): (B, S, t)."""
    data = recording.responses
    out = []
    for a_vals, b_vals in halves:
        a_idx, b_idx = np.isin(recording.repetitions, a_vals), np.isin(recording.repetitions, b_vals)
        with np.errstate(all="ignore"):
            ha, hb = np.nanmean(data[:, a_idx], axis=1), np.nanmean(data[:, b_idx], axis=1)
        r = weighted_pearson_columns(weights, torch.as_tensor(ha, dtype=weights.dtype, device=weights.device),
                                     torch.as_tensor(hb, dtype=weights.dtype, device=weights.device),
                                     finite_only=True)
        out.append(2 * r / (1 + r))
    return torch.stack(out, 1)


def _nanmedian(x: torch.Tensor) -> torch.Tensor:
    """Median over the last axis ignoring NaN, averaging the two middle values (numpy's, not torch.median's)."""
    return torch.nanquantile(x, 0.5, dim=-1)


# ----------------------------------------------------------------------------------------------
# benchmarks


class _MajajHong(Benchmark):
    """Common loading: one region's recording aligned to the HVM public stimulus set."""

    datasets = (DATASET,)
    data_files = DATA_FILES

    def __init__(self, identifier: str, region: str, description: str):
        self.identifier, self.region, self.description = identifier, region, description
        self._load_stimuli = load_stimuli
        self._stimuli = None

    def recording(self) -> Recording:
        rec = load_recording(self.region)
        check_ids(rec, self.stimuli())
        return rec

    def _aligned(self) -> tuple[Recording, np.ndarray, np.ndarray]:
        """Recording, repetition-averaged responses and object labels, rows in stimulus-set order (sorted ids)."""
        stim, rec = self.stimuli(), self.recording()
        order = pd.Index(rec.stimulus_ids).get_indexer(stim.ids)
        rec = Recording(rec.region, list(stim.ids), rec.neuroid_ids, rec.repetitions, rec.responses[order])
        return rec, rec.mean, stim.labels["object_name"].astype(str).to_numpy()


class MajajHongPLSBenchmark(_MajajHong):
    """Brain-Score's public MajajHong2015 PLS benchmark, with stimulus-bootstrap CIs; normalised per
    neuroid (`explainable_variance_fraction`), with Brain-Score's explained variance alongside.

    Parameters
    ----------
    n_components : int
        PLS components (Brain-Score's protocol: 25).
    n_bootstrap : int
        Stimulus-bootstrap resamples for the confidence intervals (0: none).
    dtype : {'float32', 'float64'}
        Precision of the PLS fits.
    """

    metric = "pls"
    n_components = option(N_COMPONENTS, int_at_least(1))
    n_bootstrap = option(1000, non_negative_int)
    dtype = option("float32", one_of("float32", "float64"))

    def __init__(self, identifier: str, region: str, description: str, **options):
        super().__init__(identifier, region, description)
        self.configure(**options)

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        rec, Y, labels = self._aligned()
        n = len(Y)
        splits = stratified_shuffle_splits(labels)
        dev = torch.device(device)  # resolved once by Benchmark.score
        w = torch.as_tensor(bootstrap_counts(n, self.n_bootstrap, seed), device=dev)
        halves = repetition_halves(rec.repetitions)
        ceil_ns = internal_consistency(rec, w, halves)  # (B+1, S, t)
        ceil_b = _nanmedian(ceil_ns).mean(1)  # (B+1,) Brain-Score's aggregate ceiling
        rho_b = ceil_ns.mean(1).cpu().numpy()  # (B+1, t) per-neuroid internal consistency
        rows, per_layer = [], {}
        for name, acts in activations.items():
            res = self._score_layer(np.asarray(acts), Y, labels, splits, w, ceil_b, rho_b, seed, dev)
            per_layer[name] = res
            rows.append(res["row"] | {"layer": name})
        table = pd.DataFrame(rows)[["layer", "raw", "ci_low", "ci_high", "ceiling", "normalized",
                                    "normalized_ci_low", "normalized_ci_high", BRAINSCORE_EXPLAINED_VARIANCE,
                                    "cv_score", "sem", "n_components"]]
        best = str(table.loc[table["cv_score"].idxmax(), "layer"])
        b = per_layer[best]["row"]
        r_best = per_layer[best]["r"].mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            norm_t = np.where(rho_b[0] > 0, np.sign(r_best) * r_best**2 / rho_b[0], np.nan)
        per_target = pd.DataFrame({"neuroid_id": rec.neuroid_ids, "region": rec.region, "r": r_best,
                                   "internal_consistency": rho_b[0], "normalized": norm_t})
        return Scores(
            layers=table, best_layer=best,
            raw=b["raw"], ci_low=b["ci_low"], ci_high=b["ci_high"], ceiling=b["ceiling"],
            normalized=b["normalized"], normalization=EXPLAINABLE_VARIANCE_FRACTION,
            interval=STIMULI if self.n_bootstrap else NO_INTERVAL,
            other_normalizations={BRAINSCORE_EXPLAINED_VARIANCE: b[BRAINSCORE_EXPLAINED_VARIANCE]},
            selection=("layer with the best inner validation score (per outer split, PLS fitted on 90% of its "
                       "training images and scored on the other 10%, stratified by object); scores are held-out"),
            ceiling_note=("Brain-Score internal consistency in r units: split-half over repetitions (10 "
                          "ShuffleSplits of the repetition numbers, random_state=1), Spearman-Brown, median over "
                          "neuroids, mean over splits; normalised = median over neuroids of sign(r) r^2 / internal "
                          "consistency (r = mean over splits); Brain-Score's explained variance = (raw / ceiling)^2"),
            metric="pls", per_target=per_target,
            provenance={"splits": splits.to_record(), "repetition_halves": [[a.tolist(), b_.tolist()] for a, b_ in halves],
                        "n_components": self.n_components, "time_bin_ms": list(TIME_BIN), "region": self.region,
                        "split_medians": {k: v["medians"].tolist() for k, v in per_layer.items()},
                        "n_bootstrap": self.n_bootstrap, "dtype": self.dtype,
                        "normalized_ci": [b["normalized_ci_low"], b["normalized_ci_high"]],
                        "brainscore_explained_variance_ci": b["bs_ci"]},
            bootstrap={k: v["boot"] for k, v in per_layer.items()} if self.n_bootstrap else None,
        )

    def _fit_predict(self, X: torch.Tensor, Y: torch.Tensor, train: np.ndarray, test: np.ndarray) -> torch.Tensor:
        k = min(self.n_components, len(train), X.shape[1])
        if k < self.n_components:
            log.warning("%s: %d PLS components (layer has %d features)", self.identifier, k, X.shape[1])
        tr, te = torch.as_tensor(train, device=X.device), torch.as_tensor(test, device=X.device)
        return pls_fit(X[tr], Y[tr], k).predict(X[te])

    def _score_layer(self, acts, Y, labels, splits, w, ceil_b, rho_b, seed, dev) -> dict:
        if acts.ndim != 2 or acts.shape[0] != len(Y):
            raise InvalidInputError(f"activations must be (stimuli={len(Y)}, units), got shape {acts.shape}")
        dt = getattr(torch, self.dtype)
        X = torch.as_tensor(acts, dtype=dt, device=dev)
        Yt = torch.as_tensor(Y, dtype=dt, device=dev)
        r_b, r0, inner = [], [], []
        for s, (train, test) in enumerate(splits):
            pred = self._fit_predict(X, Yt, train, test).to(torch.float64)
            y = torch.as_tensor(Y[test], dtype=torch.float64, device=dev)
            r_b.append(weighted_pearson_columns(w[:, test], pred, y, finite_only=True))
            r0.append(pearson_columns(pred, y).cpu().numpy())
            sub = stratified_shuffle_splits(labels[train], n_splits=1, seed=seed + s)
            itr, ite = train[sub.folds[0][0]], train[sub.folds[0][1]]
            ipred = self._fit_predict(X, Yt, itr, ite).to(torch.float64)
            inner.append(float(_nanmedian(pearson_columns(ipred, torch.as_tensor(Y[ite], device=dev)))))
        r_all = torch.stack(r_b, 1)  # (B+1, splits, t)
        raw_b = _nanmedian(r_all).mean(1).cpu().numpy()  # (B+1,) Brain-Score's aggregate
        bs_b = brainscore_explained_variance(raw_b, ceil_b.cpu().numpy())
        with np.errstate(all="ignore"):
            _, norm_b = median_scores(np.nanmean(r_all.cpu().numpy(), axis=1), rho_b)  # per neuroid, then median
        medians = np.nanmedian(np.stack(r0), axis=1)
        raw, ceiling = float(medians.mean()), float(ceil_b[0])
        lo = hi = nlo = nhi = blo = bhi = float("nan")
        if len(raw_b) > 1:
            lo, hi = np.nanpercentile(raw_b[1:], [2.5, 97.5])
            nlo, nhi = np.nanpercentile(norm_b[1:], [2.5, 97.5])
            blo, bhi = np.nanpercentile(bs_b[1:], [2.5, 97.5])
        row = {"raw": raw, "ci_low": float(lo), "ci_high": float(hi), "ceiling": ceiling,
               "normalized": float(norm_b[0]), "normalized_ci_low": float(nlo), "normalized_ci_high": float(nhi),
               BRAINSCORE_EXPLAINED_VARIANCE: float(brainscore_explained_variance(raw, ceiling)),
               "bs_ci": [float(blo), float(bhi)], "cv_score": float(np.mean(inner)),
               "sem": float(medians.std() / np.sqrt(len(medians))),
               "n_components": min(self.n_components, X.shape[1])}
        return {"row": row, "r": np.stack(r0), "medians": medians,
                "boot": {"raw": raw_b[1:], "normalized": norm_b[1:]}}


class MajajHongEncodingBenchmark(EncodingOptions, _MajajHong):
    """neurobench's ridge encoding on Brain-Score's stratified folds, ceiling = per-neuroid split-half reliability."""

    splits = None  # the dataset's 10 folds stratified by object (random_state=1)

    def __init__(self, identifier: str, region: str, description: str, **options):
        super().__init__(identifier, region, description)
        self.configure(**options)

    def score_activations(self, activations, seed=0, device="cpu", memory_budget=None):
        rec, Y, labels = self._aligned()
        dev = torch.device(device)  # resolved once by Benchmark.score
        halves = repetition_halves(rec.repetitions)
        uniform = torch.ones(1, len(Y), dtype=torch.float64, device=dev)
        reliability = internal_consistency(rec, uniform, halves)[0].mean(0).cpu().numpy()
        ids = self.stimuli().ids
        result = score_encoding(
            activations, Y[:, None, :], ids, ids, splits=stratified_kfold(labels), seed=seed, device=device,
            memory_budget=memory_budget, ceiling=reliability, **self.encoding_options(),
            ceiling_note=("per-neuroid split-half reliability over repetitions (Brain-Score's internal-consistency "
                          "halves: 10 ShuffleSplits of the repetition numbers, random_state=1), Spearman-Brown, "
                          "mean over the 10 halves"),
        )
        result.per_target.insert(0, "neuroid_id", rec.neuroid_ids)
        result.provenance.update({"reduction": self.reduction, "time_bin_ms": list(TIME_BIN), "region": self.region,
                                  "repetition_halves": [[a.tolist(), b.tolist()] for a, b in halves]})
        return result


def _register(key: str, region: str) -> None:
    pls_id, enc_id = f"{DATASET}.{key}-pls", f"{DATASET}.{key}-encoding"
    what = f"HVM public images, macaque {region} multi-units (70-170 ms)"

    @register_benchmark(pls_id, f"Majaj-Hong 2015 public {region}: Brain-Score PLS (25 components, 10 stratified "
                        "90/10 splits, median Pearson r, internal-consistency ceiling)", dataset=DATASET,
                        modality="spikes")
    def pls_benchmark():
        return MajajHongPLSBenchmark(pls_id, region, f"{what}; Brain-Score PLS")

    @register_benchmark(enc_id, f"Majaj-Hong 2015 public {region}: cross-validated ridge on 10 stratified folds, "
                        "split-half ceiling", dataset=DATASET, modality="spikes")
    def encoding_benchmark():
        return MajajHongEncodingBenchmark(enc_id, region, f"{what}; ridge encoding")


for _key, _region in REGIONS.items():
    _register(_key, _region)
