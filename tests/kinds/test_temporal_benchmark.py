"""The generic time-resolved RSA benchmark on synthetic RDMs with a known time course."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from neurobench.data.stimuli import StimulusSet
from neurobench.errors import AlignmentError
from neurobench.kinds.temporal_rsa import TemporalData, TemporalRSABenchmark, sliding_windows

N, T = 20, 30
TIMES = np.arange(T) * 0.01 - 0.05


def make(ids=None, subjects=3):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(N, 5))
    truth = pdist(feats, "correlation")
    env = np.exp(-0.5 * ((TIMES - 0.1) / 0.03) ** 2)
    rdms = np.stack([[env[t] * truth + rng.normal(size=truth.size) * 0.3 for t in range(T)] for _ in range(subjects)])
    sids = [f"s{i:02d}" for i in range(N)]
    stim = StimulusSet("syn", sids, images=[np.zeros((4, 4, 3), np.uint8)] * N)
    data = TemporalData(ids or sids, rdms, TIMES, [f"sub{i}" for i in range(subjects)])
    bench = TemporalRSABenchmark("syn.meg-rsa", "synthetic", (), lambda: stim, lambda: data, n_bootstrap=50,
                                 n_bootstrap_layers=20, allow_negative=True)  # signal x envelope + noise: signed
    return bench, {"good": feats, "noise": rng.normal(size=(N, 5))}, rdms


def test_timecourse_window_and_selection():
    bench, acts, rdms = make()
    res = bench.score_activations(acts, seed=1, device=torch.device("cpu"))
    got = res.per_target[res.per_target.layer == "good"]
    model = pdist(acts["good"], "correlation")
    expected = [np.mean([spearmanr(model, rdms[s, t])[0] for s in range(3)]) for t in range(T)]
    np.testing.assert_allclose(got["r"], expected, atol=1e-10)
    assert res.best_layer == "good" and res.ceiling is not None
    lo, hi = res.provenance["selected_window_s"]
    assert lo >= 0 and lo - 0.05 <= 0.1 <= hi + 0.05
    assert len(res.provenance["selection_stimuli"]) == N // 2
    assert abs(res.layers.set_index("layer").loc["good", "peak_latency"] - 0.1) <= 0.03


def test_sliding_windows_are_boxcar_means():
    x = torch.arange(2 * 6 * 3, dtype=torch.float64).reshape(2, 6, 3)
    win, starts, ends = sliding_windows(x, np.arange(6) * 0.01, 3)
    np.testing.assert_allclose(win[:, 1], x[:, 1:4].mean(1))
    assert starts[1] == 0.01 and ends[1] == 0.03


def test_misaligned_ids_refused():
    bench, acts, _ = make(ids=[f"x{i}" for i in range(N)])
    with pytest.raises(AlignmentError):
        bench.score_activations(acts, seed=0, device=torch.device("cpu"))
