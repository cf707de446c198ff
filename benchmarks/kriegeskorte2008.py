"""Kriegeskorte et al. (2008): 92 object images, human IT fMRI and monkey IT RDMs.

- `kriegeskorte2008.hit-rsa`: 4 human subjects, one RDM each (mean of its two sessions), Kendall
  tau-a, Nili et al. (2014) noise ceiling, CI resampling subjects and stimuli (Schütt et al. 2023).
- `kriegeskorte2008.mit-rsa`: monkey IT (674 neurons), a single RDM: no subject ceiling exists,
  and the result says so.
- `kriegeskorte2008.hit-trsa`, `kriegeskorte2008.mit-trsa`: the same comparisons after the
  geo-topological transform (topological RSA).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from neurobench.data.files import file_state, resolve
from neurobench.data.matlab import load_mat, text
from neurobench.data.stimuli import StimulusSet
from neurobench.errors import NeurobenchError
from neurobench.kinds.rsa import RSABenchmark
from neurobench.metrics.trsa import gt_transform
from neurobench.registry import register_benchmark

DATASET = "kriegeskorte2008"
SUPPLEMENT = "Kriegeskorte_Neuron2008_supplementalData.mat"
BRAIN_RDMS = "92_brainRDMs.mat"
N_STIMULI = 92
MIT_NOTE = ("monkey IT is a single RDM (674 neurons pooled over two monkeys, Kiani et al. 2007): no per-subject "
            "RDMs exist, so no Nili noise ceiling can be estimated and no normalised score is given")


@functools.lru_cache(maxsize=2)
def _read_supplement(key: tuple) -> dict:
    return load_mat(key[0][0], required=("stimuli_92objs", "RDMs_mIT_hIT_fig1", "categoryVectors", "categoryLabels"))


def _supplement() -> dict:
    return _read_supplement(file_state(resolve(DATASET, SUPPLEMENT)))


def stimulus_ids() -> list[str]:
    return [f"92obj-{i + 1:02d}" for i in range(N_STIMULI)]


def load_stimuli() -> StimulusSet:
    """The 92 images (175x175 RGB) with their category labels, in RDM row order."""
    mat = _supplement()
    stim = mat["stimuli_92objs"].ravel()
    if len(stim) != N_STIMULI:
        raise NeurobenchError(f"{SUPPLEMENT}: expected {N_STIMULI} stimuli, found {len(stim)}")
    ids = stimulus_ids()
    labels = pd.DataFrame({
        "category": [text(s["category"]) for s in stim],
        **{flag: [bool(np.asarray(s[flag]).ravel()[0]) for s in stim] for flag in ("human", "face", "animal", "natural")},
    }, index=ids)
    # face / body / inanimate: the domains topographic analyses contrast
    labels["domain"] = [c.split()[-1].replace("bodypart", "body") for c in labels["category"]]
    names = [text(x) for x in mat["categoryLabels"].ravel()]
    vectors = np.asarray(mat["categoryVectors"]).astype(bool)
    for j, name in enumerate(names):
        labels[f"cat_{name}"] = vectors[:, j]
    images = [np.ascontiguousarray(s["image"]) for s in stim]
    return StimulusSet("kriegeskorte2008-92objects", ids, images=images, labels=labels)


def load_hit_subjects() -> tuple[list[str], np.ndarray, str]:
    """Four subjects' RDMs (92x92), each the mean of its two sessions."""
    rdms = load_mat(resolve(DATASET, BRAIN_RDMS), required=("RDMs",))["RDMs"]
    if rdms.shape != (1, 4, 2):
        raise NeurobenchError(f"{BRAIN_RDMS}: expected RDMs of shape (1, 4, 2) subjects x sessions, got {rdms.shape}")
    subjects = np.stack([
        np.mean([np.asarray(rdms[0, s, k]["RDM"], dtype=np.float64) for k in range(2)], axis=0) for s in range(4)
    ])
    if subjects.shape[1:] != (N_STIMULI, N_STIMULI):
        raise NeurobenchError(f"{BRAIN_RDMS}: expected 92x92 RDMs, got {subjects.shape[1:]}")
    return stimulus_ids(), subjects, ""


def load_mit() -> tuple[list[str], np.ndarray, str]:
    fig1 = _supplement()["RDMs_mIT_hIT_fig1"].ravel()
    entry = next((e for e in fig1 if text(e["name"]).startswith("mIT")), None)
    if entry is None:
        raise NeurobenchError(f"{SUPPLEMENT}: no monkey IT RDM (name starting with 'mIT') in RDMs_mIT_hIT_fig1")
    vec = np.asarray(entry["RDM"], dtype=np.float64).reshape(1, -1)
    if vec.shape[1] != N_STIMULI * (N_STIMULI - 1) // 2:
        raise NeurobenchError(f"{SUPPLEMENT}: monkey IT RDM has {vec.shape[1]} entries, expected 4186")
    return stimulus_ids(), vec, MIT_NOTE


def _make(region: str, comparator: str, transform=None, transform_name: str = "", metric_label: str = "rsa"):
    loader = {"hit": load_hit_subjects, "mit": load_mit}[region]
    what = {"hit": "human IT fMRI (4 subjects)", "mit": "monkey IT spiking (674 neurons)"}[region]

    def factory():
        return RSABenchmark(
            identifier=f"{DATASET}.{region}-{metric_label}",
            description=f"92 objects, {what}; 1-Pearson model RDMs, {comparator}"
            + (f" after {transform_name}" if transform_name else ""),
            datasets=(DATASET,), load_stimuli=load_stimuli, load_data=loader, comparator=comparator,
            transform=transform, transform_name=transform_name,
        )

    factory.__doc__ = (f"Kriegeskorte 2008 92 objects vs {what}, Kendall tau-a"
                       + (f" on {transform_name} RDMs" if transform_name else ""))
    register_benchmark(f"{DATASET}.{region}-{metric_label}", dataset=DATASET,
                       modality="fmri" if region == "hit" else "spikes")(factory)


for _region in ("hit", "mit"):
    _make(_region, "tau_a")
    # Topological RSA (Lin & Kriegeskorte 2024): geo-topological transform with l=0.2, u=0.8,
    # quantiles per RDM, applied to model and data RDMs alike before the tau-a comparison.
    _make(_region, "tau_a", transform=gt_transform, transform_name="gt-transform(l=0.2,u=0.8)",
          metric_label="trsa")
