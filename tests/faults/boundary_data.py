"""Data for the boundary fault-injection tests: 24 stimuli, hidden features, and data that is
wrong in one way each (RSA and time-resolved data RDMs, encoding responses and assemblies).
Importing it registers nothing (`boundary_plugin` does, as a `--plugin`)."""

from __future__ import annotations

import numpy as np

import neurobench as nb
from neurobench.data.assemblies import repeated_assembly

N = 24
IDS = [f"img{i:02d}" for i in range(N)]
_rng = np.random.default_rng(12)
HIDDEN = _rng.standard_normal((N, 4))  # what the stimuli "are": their colours come from it
_IMAGES = [np.clip(128 + 40 * np.outer(np.ones(16 * 16), HIDDEN[i, :3]).reshape(16, 16, 3)
                   + _rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8) for i in range(N)]


def stimuli() -> nb.StimulusSet:
    return nb.StimulusSet("faults24", IDS, images=_IMAGES)


def _distances() -> np.ndarray:
    return np.sqrt(((HIDDEN[:, None] - HIDDEN[None]) ** 2).sum(-1))


def _similarity() -> np.ndarray:
    return np.corrcoef(HIDDEN)


def rdm_cases() -> dict[str, np.ndarray]:
    """Data RDMs (1 subject) that are wrong in one way each; 'good' is right."""
    d = _distances()
    iu = np.triu_indices(N, 1)
    asym = d.copy()
    asym[2, 5] += 0.5
    diag = d + np.eye(N) * 0.3
    neg = d - np.median(d)
    np.fill_diagonal(neg, 0)
    cond = d[iu]
    inf, nan = cond.copy(), cond.copy()
    inf[7], nan[7] = np.inf, np.nan
    return {"good": d[None], "asymmetric": asym[None], "diagonal": diag[None], "similarity": _similarity()[None],
            "lower": np.tril(d)[None], "negative": neg[None], "short": cond[None, :-1], "inf": inf[None],
            "nan": nan[None], "constant": (1 - np.eye(N))[None]}


def temporal_cases() -> dict[str, np.ndarray]:
    """(1 subject, 5 times, n, n) data RDMs; the fault sits at time point 3."""
    good = np.stack([_distances() * (1 + 0.1 * t) for t in range(5)])[None]
    sim, lower = good.copy(), good.copy()
    sim[0, 3] = _similarity()
    lower[0, 3] = np.tril(lower[0, 3])
    return {"good": good, "similarity": sim, "lower": lower}


def responses(constant: bool = False) -> np.ndarray:
    """(stimuli, 3 repetitions, 6 targets) driven by the hidden features, rows in IDS order."""
    rng = np.random.default_rng(5)
    if constant:
        return np.ones((N, 3, 6))
    return (HIDDEN @ rng.standard_normal((4, 6)))[:, None, :] + 0.3 * rng.standard_normal((N, 3, 6))


ASSEMBLY_ORDER = list(np.random.default_rng(9).permutation(N))  # the order a dataset's file lists the stimuli in
ASM_IDS = [IDS[i] for i in ASSEMBLY_ORDER]
TEST_IDS = ASM_IDS[-6:]  # the dataset's test set: the last 6 presentations of its file


def assembly(constant: bool = False):
    return repeated_assembly(responses(constant)[ASSEMBLY_ORDER], ASM_IDS)
