"""`topo.*` benchmarks: topographic signatures of a model's sheet layers on the 92 objects.

Declarations of the topographic kind (`neurobench.kinds.topographic`): which signature, on which
stimuli. Headline = mean over the scored layers that have sheet positions (a signature of the
whole model, no layer picked by peeking); the per-layer table carries every layer's value with
its p-value or CI. There is no noise ceiling.

Two smoothness definitions, each under its own name (docs/topography.md):
- `topo.near-far-similarity` (neurobench's definition, formerly `topo.smoothness`): mean tuning
  correlation of near unit pairs minus that of far pairs, centred on shuffled positions;
- `topo.tdann-face-smoothness` (TDANN, Margalit et al. 2024, `spacetorch.utils.spatial_utils.
  smoothness`): (max(curve) - curve[0]) / max(curve) of the curve of mean |face-selectivity t
  difference| vs sheet distance, with its shuffled-distance chance level.
"""

from __future__ import annotations

import numpy as np

from neurobench.benchmarks.kriegeskorte2008 import load_stimuli
from neurobench.conventions import STIMULI_NORMAL
from neurobench.kinds.topographic import TopographicBenchmark
from neurobench.registry import benchmarks, register_benchmark
from neurobench.topography import (
    effective_dimensionality,
    selectivity,
    smoothness,
    tdann_category_smoothness,
)

DATASET = "kriegeskorte2008"


def _near_far(x, pos, labels, seed, device):
    r = smoothness(x, pos, seed=seed, device=device)
    return r.score, np.nan, np.nan, {"p_value": r.p_value, "z": r.z, "n_constant": r.n_constant}


def _tdann_face(x, pos, labels, seed, device):
    r = tdann_category_smoothness(x, labels["face"].to_numpy(bool), pos, seed=seed)
    return r.smoothness, np.nan, np.nan, {"chance": r.chance, "n_samples": r.n_samples,
                                         "sample_size": r.sample_size, "n_constant": r.n_constant}


def _face_clusters(x, pos, labels, seed, device):
    lab = np.where(labels["face"].to_numpy(bool), "face", "non-face")
    s = selectivity(x, lab, pos, categories=["face"], seed=seed).per_category["face"]
    return s.moran.i, np.nan, np.nan, {"morans_i_p": s.moran.p_value,
                                       "n_clusters": s.clusters.n_clusters,
                                       "largest_cluster": s.clusters.largest,
                                       "largest_cluster_p": s.clusters.largest_p,
                                       "selective_fraction": s.selective_fraction}


def _effective_dim(x, pos, labels, seed, device):
    r = effective_dimensionality(x, seed=seed, device=device)
    return r.participation_ratio, r.ci_low, r.ci_high, {"n_constant": r.n_constant, "interval": STIMULI_NORMAL}


@register_benchmark("topo.near-far-similarity", dataset="kriegeskorte2008", modality="topography")
def topo_near_far_similarity():
    """Near-minus-far tuning similarity on the sheet, centred on shuffled positions (neurobench's definition; 92 objects)"""
    return TopographicBenchmark("topo.near-far-similarity", topo_near_far_similarity.__doc__,
                                "topo-near-far-similarity", _near_far, load_stimuli, datasets=(DATASET,))


benchmarks.rename("topo.smoothness", "topo.near-far-similarity",
                  "it is neurobench's near-minus-far tuning similarity, not a published smoothness index; "
                  "TDANN's smoothness is `topo.tdann-face-smoothness`")


@register_benchmark("topo.tdann-face-smoothness", dataset="kriegeskorte2008", modality="topography")
def topo_tdann_face_smoothness():
    """TDANN's smoothness (Margalit et al. 2024) of face selectivity over the sheet: (max - first) / max of |t difference| vs distance (92 objects)"""
    return TopographicBenchmark("topo.tdann-face-smoothness", topo_tdann_face_smoothness.__doc__,
                                "topo-tdann-smoothness", _tdann_face, load_stimuli, datasets=(DATASET,))


@register_benchmark("topo.face-selectivity-clusters", dataset="kriegeskorte2008", modality="topography")
def topo_face_clusters():
    """Moran's I of face-vs-rest t maps, with face patch counts and sizes (92 objects)"""
    return TopographicBenchmark("topo.face-selectivity-clusters", topo_face_clusters.__doc__,
                                "topo-face-morans-i", _face_clusters, load_stimuli, datasets=(DATASET,))


@register_benchmark("topo.effective-dim", dataset="kriegeskorte2008", modality="topography")
def topo_effective_dim():
    """Participation ratio of layer responses to the 92 objects, bootstrap CI over stimuli"""
    return TopographicBenchmark("topo.effective-dim", topo_effective_dim.__doc__, "participation-ratio",
                                _effective_dim, load_stimuli, datasets=(DATASET,), needs_positions=False)
