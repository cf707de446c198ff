"""Time-resolved RSA on MEG/EEG data simulated with MNE on a real sensor layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurobench.metrics.rdm import compute_rdms, upper_triangle
from neurobench.metrics.temporal import data_rdms_over_time, time_resolved_rsa

mne = pytest.importorskip("mne")
PEAK = 0.15


def simulate(seed, n_cond=10, n_trials=8, peak=PEAK):
    """EEG epochs on the BioSemi 32-channel layout whose condition patterns follow the model's
    representation, with a Gaussian envelope peaking at `peak` seconds."""
    rng = np.random.default_rng(seed)
    montage = mne.channels.make_standard_montage("biosemi32")
    chans = montage.ch_names[:32]
    info = mne.create_info(chans, sfreq=100.0, ch_types="eeg")
    features = np.random.default_rng(99).normal(size=(n_cond, 6))  # shared model space
    mixing = rng.normal(size=(6, len(chans)))
    times = np.arange(-0.1, 0.5, 0.01)
    env = np.exp(-0.5 * ((times - peak) / 0.03) ** 2)
    data, events = [], []
    for c in range(n_cond):
        pattern = features[c] @ mixing
        for _ in range(n_trials):
            trial = pattern[:, None] * env[None] + 0.8 * rng.normal(size=(len(chans), len(times)))
            data.append(trial * 1e-6)
            events.append([len(events) * 100, 0, c + 1])
    epochs = mne.EpochsArray(np.array(data), info, events=np.array(events), tmin=times[0],
                             event_id={f"c{c}": c + 1 for c in range(n_cond)}, verbose=False)
    epochs.set_montage(montage)
    return epochs, features


def test_peak_latency_recovered_with_ci():
    subjects = [simulate(s)[0] for s in range(3)]
    _, features = simulate(0)
    data, times = data_rdms_over_time(subjects, dtype=torch.float64)
    assert data.shape == (3, len(times), 45)
    model = upper_triangle(compute_rdms(np.stack([features, np.random.default_rng(5).normal(
        size=features.shape)]), "correlation", dtype=torch.float64))
    res = time_resolved_rsa(model, data, times, "spearman", n_bootstrap=200, seed=0)
    assert res.timecourse.shape == (2, len(times))
    assert abs(res.peak_latency[0] - PEAK) <= 0.02
    assert res.peak_ci_low[0] <= PEAK <= res.peak_ci_high[0]
    assert res.timecourse[0].max() > 0.5 > res.timecourse[1].max()
    # stimulus bootstrap for a single subject works too
    one = time_resolved_rsa(model[:1], data[0], times, "pearson", n_bootstrap=50, seed=1)
    assert one.bootstrap == "stimuli" and np.isfinite(one.peak_ci_low[0])


def test_evoked_list_input_matches_epochs():
    epochs, _ = simulate(1)
    evokeds = [epochs[c].average() for c in epochs.event_id]
    a, _ = data_rdms_over_time(epochs, dtype=torch.float64)
    b, _ = data_rdms_over_time(evokeds, dtype=torch.float64)
    torch.testing.assert_close(a, b)


def test_peak_latency_interval_resamples_subjects_and_stimuli_by_default():
    subjects = [simulate(s)[0] for s in range(3)]
    _, features = simulate(0)
    data, times = data_rdms_over_time(subjects, dtype=torch.float64)
    model = upper_triangle(compute_rdms(features[None], "correlation", dtype=torch.float64))
    both = time_resolved_rsa(model, data, times, "spearman", n_bootstrap=100, seed=0)
    subj = time_resolved_rsa(model, data, times, "spearman", n_bootstrap=100, seed=0, bootstrap="subjects")
    assert both.bootstrap == "both" and subj.bootstrap == "subjects"
    assert both.peak_ci_high[0] - both.peak_ci_low[0] >= subj.peak_ci_high[0] - subj.peak_ci_low[0]
