"""cichy2014.meg-rsa on a miniature of MNE's visual_92_categories release: raw FIF runs with a stim
channel, visual_stimuli.csv, two tar.gz archives; checked against numpy/scipy from the generator."""

from __future__ import annotations

import csv
import tarfile
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

import neurobench as nb
from neurobench.errors import AlignmentError, DataUnavailableError, NeurobenchError
from tests.miniature import EXAMPLE_PLUGIN, example_plugin, run_score

from ..conftest import needs_kriegeskorte

mne = pytest.importorskip("mne")
pytestmark = needs_kriegeskorte

SFREQ, PEAK = 200.0, 0.15
ARCHIVES = ("MNE-visual_92_categories-data-part1.tar.gz", "MNE-visual_92_categories-data-part2.tar.gz")


@pytest.fixture
def features():
    """The tiny model's layer-5 activations on the 92 images: the generator's hidden representation."""
    from neurobench.benchmarks import kriegeskorte2008 as k08

    with example_plugin("my_plugin_cichy"):
        acts = nb.load_model("tiny-convnet").activations(k08.load_stimuli(), ["3", "5"], device="cpu")
    return {k: np.asarray(v, dtype=np.float64) for k, v in acts.items()}


def _labels():
    from neurobench.benchmarks import kriegeskorte2008 as k08

    return k08.load_stimuli().labels


def write_table(path: Path, extra_trigger: int | None = None, swap: bool = False):
    labels = _labels()
    rows = [[t, r["category"], int(r["human"]), int(r["face"]), int(r["animal"]), int(r["natural"])]
            for t, (_, r) in enumerate(labels.iterrows())]
    if swap:
        rows[0][1:], rows[12][1:] = rows[12][1:], rows[0][1:]
    if extra_trigger is not None:
        rows.append([extra_trigger, "artificial inanimate", 0, 0, 0, 0])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trigger", "condition", "human", "face", "animal", "natural"])
        w.writerows(rows)


def make_run(patterns, rng, meg=True):
    """One run: every condition once (random order) plus two catch events (code 200)."""
    n_mag, n_grad = 6, 12
    names = [f"MEG{i:03d}1" for i in range(n_mag)] + [f"MEG{i:03d}{k}" for i in range(n_mag) for k in (2, 3)]
    types = ["mag"] * n_mag + ["grad"] * n_grad
    if not meg:
        types = ["eeg"] * len(types)
    info = mne.create_info(names + ["STI101"], SFREQ, types + ["stim"])
    order = rng.permutation(len(patterns))
    codes = list(order + 1) + [200, 200]
    gap = int(0.8 * SFREQ)
    n = gap * (len(codes) + 2)
    data = np.zeros((len(names) + 1, n))
    scale = np.array([1e-13] * n_mag + [1e-11] * n_grad)[:, None]
    data[:-1] = rng.normal(size=(len(names), n)) * 0.3 * scale
    t = np.arange(int(-0.1 * SFREQ), int(0.5 * SFREQ) + 1) / SFREQ
    env = np.exp(-0.5 * ((t - PEAK) / 0.03) ** 2)
    onsets = []
    for k, code in enumerate(codes):
        onset = gap * (k + 1)
        onsets.append((onset, code))
        data[-1, onset:onset + 3] = code
        if code <= len(patterns):
            seg = slice(onset + int(t[0] * SFREQ), onset + int(t[-1] * SFREQ) + 1)
            data[:-1, seg] += np.outer(patterns[code - 1], env) * scale
    return mne.io.RawArray(data, info, verbose="error"), data, onsets


def build(miniature, features, drop_run=None, meg=True, extra_trigger=None, swap=False, seed=0):
    """Write the miniature release; returns the in-memory runs (float32 as stored) and events."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(features["5"].shape[1], 18))
    patterns = features["5"] @ mixing
    patterns /= patterns.std()
    staging = miniature.root.parent / "staging"
    staging.mkdir(exist_ok=True)
    write_table(staging / "visual_stimuli.csv", extra_trigger, swap)
    runs = []
    for i in range(4):
        raw, data, onsets = make_run(patterns, rng, meg)
        if i != drop_run:
            raw.save(staging / f"sample_subject_{i}_tsss_mc.fif", overwrite=True, verbose="error")
        runs.append((data.astype(np.float32).astype(np.float64), onsets))
    members = {ARCHIVES[0]: ["visual_stimuli.csv", "sample_subject_0_tsss_mc.fif", "sample_subject_1_tsss_mc.fif"],
               ARCHIVES[1]: ["sample_subject_2_tsss_mc.fif", "sample_subject_3_tsss_mc.fif"]}
    folder = miniature.folder("cichy2014")
    for archive, names in members.items():
        with tarfile.open(folder / archive, "w:gz") as tf:
            for name in names:
                if (staging / name).is_file():
                    tf.add(staging / name, arcname=name)
    miniature.publish("cichy2014")
    return runs


def reference_timecourse(runs, model_acts):
    """numpy/scipy: epochs from the generator's arrays, baseline, condition means, noise
    normalisation, 10 ms bins, correlation-distance RDMs, Spearman with the model RDM."""
    t = np.arange(int(-0.1 * SFREQ), int(0.5 * SFREQ) + 1) / SFREQ
    sums = np.zeros((92, 18, len(t)))
    for data, onsets in runs:
        for onset, code in onsets:
            if code <= 92:
                ep = data[:-1, onset + int(t[0] * SFREQ): onset + int(t[-1] * SFREQ) + 1]
                sums[code - 1] += ep - ep[:, t <= 0].mean(axis=1, keepdims=True)
    means = sums / len(runs)
    sd = means[:, :, t < 0].transpose(1, 0, 2).reshape(18, -1).std(axis=1)
    means = means / sd[None, :, None]
    nb_ = len(t) // 2
    binned = means[..., : nb_ * 2].reshape(92, 18, nb_, 2).mean(-1)
    times = t[: nb_ * 2].reshape(nb_, 2).mean(-1)
    model = pdist(model_acts, "correlation")
    r = np.array([spearmanr(model, pdist(binned[:, :, k], "correlation"))[0] for k in range(nb_)])
    return times, r


def test_timecourse_matches_numpy_scipy_and_peaks_where_put(miniature, features):
    runs = build(miniature, features)
    bench = nb.load_benchmark("cichy2014.meg-rsa")
    bench.n_bootstrap, bench.n_bootstrap_latency = 100, 50
    import torch

    result = bench.score_activations(features, seed=0, device=torch.device("cpu"))
    times, expected = reference_timecourse(runs, features["5"])
    got = result.per_target[result.per_target["layer"] == "5"]
    np.testing.assert_allclose(got["time"].to_numpy(), times, atol=1e-9)
    np.testing.assert_allclose(got["r"].to_numpy(), expected, atol=1e-8)
    row = result.layers.set_index("layer").loc["5"]
    assert abs(row["peak_latency"] - PEAK) <= 0.02
    assert row["latency_ci_low"] <= row["peak_latency"] <= row["latency_ci_high"]
    assert result.best_layer == "5" and result.raw > 0.5
    lo, hi = result.provenance["selected_window_s"]
    assert lo - 0.03 <= PEAK <= hi + 0.03
    assert result.ceiling is None and "one participant" in result.ceiling_note
    assert result.provenance["timecourse"]["layers"] == ["3", "5"]


@pytest.mark.slow
def test_cli_and_api(miniature, features, tmp_path):
    build(miniature, features)
    store = tmp_path / "s.sqlite"
    proc = run_score("tiny-convnet", "cichy2014.meg-rsa", store, plugin=EXAMPLE_PLUGIN, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "cichy2014.meg-rsa" in proc.stdout and "one participant" in proc.stdout
    with example_plugin("my_plugin_cichy_api"):
        bench = nb.load_benchmark("cichy2014.meg-rsa")
        bench.n_bootstrap, bench.n_bootstrap_latency = 100, 20
        result = nb.score("tiny-convnet", bench, device="cpu")
    assert set(result.layers["layer"]) == {"1", "3", "5"}
    assert result.ci_low <= result.raw <= result.ci_high
    assert len(nb.ResultStore(store).leaderboard()) == 1


def test_missing_run_is_named(miniature, features):
    build(miniature, features, drop_run=3)
    with pytest.raises(DataUnavailableError, match="sample_subject_3_tsss_mc.fif"):
        nb.load_benchmark("cichy2014.meg-rsa").temporal_data()


def test_no_meg_channels(miniature, features):
    build(miniature, features, meg=False)
    with pytest.raises(NeurobenchError, match="no MEG channels"):
        nb.load_benchmark("cichy2014.meg-rsa").temporal_data()


def test_trigger_without_stimulus(miniature, features):
    build(miniature, features, extra_trigger=92)
    with pytest.raises(AlignmentError, match="trigger 92 .* no matching stimulus"):
        nb.load_benchmark("cichy2014.meg-rsa").temporal_data()


def test_table_in_another_order(miniature, features):
    build(miniature, features, swap=True)
    with pytest.raises(AlignmentError, match="trigger 0 is 'human face'"):
        nb.load_benchmark("cichy2014.meg-rsa").temporal_data()


def reference_trials(runs):
    """numpy: every trial from the generator's arrays in recording order, baseline-corrected, each
    channel divided by its SD over all trials' baselines, 10 ms bins; labels = condition index."""
    t = np.arange(int(-0.1 * SFREQ), int(0.5 * SFREQ) + 1) / SFREQ
    trials, labels = [], []
    for data, onsets in runs:
        for onset, code in onsets:
            if code <= 92:
                ep = data[:-1, onset + int(t[0] * SFREQ): onset + int(t[-1] * SFREQ) + 1]
                trials.append(ep - ep[:, t <= 0].mean(axis=1, keepdims=True))
                labels.append(code - 1)
    x = np.stack(trials)
    sd = np.sqrt((x[:, :, t < 0] ** 2).mean(axis=(0, 2)))
    x = x / sd[None, :, None]
    nb_ = len(t) // 2
    return x[..., : nb_ * 2].reshape(len(x), 18, nb_, 2).mean(-1), np.array(labels)


def test_decoding_rdms_from_single_trials(miniature, features):
    """data_rdm=decoding: pairwise LDA accuracy from the single trials (4 per image, so 4 folds),
    equal to the metric on trials cut from the generator's arrays; decodable around the peak."""
    import torch

    from neurobench.metrics.decoding import condition_folds, pairwise_decoding_rdms

    runs = build(miniature, features)
    bench = nb.load_benchmark("cichy2014.meg-rsa", data_rdm="decoding", n_bootstrap=50, n_bootstrap_latency=20)
    data = bench.temporal_data()
    trials, labels = reference_trials(runs)
    expected = pairwise_decoding_rdms(trials, labels, condition_folds(labels, 4), dtype=torch.float64).numpy()
    got = np.asarray(data.rdms)[0]
    assert got.shape == expected.shape == (len(data.times), 92 * 91 // 2)
    assert np.mean(np.abs(got - expected)) < 1e-3  # float32 storage may flip a near-tied trial
    peak = int(np.argmin(np.abs(data.times - PEAK)))
    assert got[peak].mean() > 0.9 and abs(got[0].mean() - 0.5) < 0.1
    result = bench.score_activations(features, seed=0, device=torch.device("cpu"))
    assert result.metric == "temporal-rsa-spearman-decoding"
    assert result.provenance["data_rdm"] == "decoding" and result.provenance["decoding"]["folds_used"] == [4]
    row = result.layers.set_index("layer").loc["5"]
    assert 0.05 <= row["peak_latency"] <= 0.25  # accuracy saturates near 1 around the peak: an early plateau
