"""Shared loaders for the RSA tests: the Kriegeskorte et al. (2008) mirror and rsatoolbox objects."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def k08_dir() -> Path:
    """The read-only mirror of the 92-object data (NEUROBENCH_MIRROR or ../shared/data)."""
    root = os.environ.get("NEUROBENCH_MIRROR")
    candidates = [Path(root)] if root else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if (c / "kriegeskorte2008" / "92_brainRDMs.mat").exists():
            return c / "kriegeskorte2008"
    pytest.skip("Kriegeskorte 2008 mirror not found (set NEUROBENCH_MIRROR)")


def subject_rdms() -> np.ndarray:
    """4 human IT subject RDMs (92 x 92), each the mean of its two sessions."""
    from scipy.io import loadmat

    rdms = loadmat(k08_dir() / "92_brainRDMs.mat")["RDMs"]
    return np.stack([np.mean([rdms[0, s, k]["RDM"] for k in range(2)], axis=0) for s in range(4)])


def fig1_rdms() -> tuple[np.ndarray, np.ndarray]:
    """Condensed monkey IT and human IT group RDMs (1, 4186) each."""
    from scipy.io import loadmat

    fig = loadmat(k08_dir() / "Kriegeskorte_Neuron2008_supplementalData.mat")["RDMs_mIT_hIT_fig1"]
    return (np.asarray(fig[0, 0]["RDM"], float).reshape(1, -1),
            np.asarray(fig[0, 1]["RDM"], float).reshape(1, -1))


def random_condensed(rng, m: int, n: int, ties: bool = False) -> np.ndarray:
    k = n * (n - 1) // 2
    if ties:
        return rng.integers(0, 6, size=(m, k)).astype(float)
    return rng.random((m, k))


RSATOOLBOX_NAMES = {"tau_a": "tau-a", "rho_a": "rho-a", "spearman": "spearman", "pearson": "corr",
                    "cosine": "cosine", "corr_cov": "corr_cov", "cosine_cov": "cosine_cov"}
