"""things-meg.*-rsa on a miniature of OpenNeuro ds004212: preprocessed epochs with the sample table
as metadata, split by MNE into four parts per participant, CTF sensor names; images in a
THINGS-style zip. Checked against numpy/scipy from the generator's arrays."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import pdist
from scipy.stats import rankdata, spearmanr

import neurobench as nb
from neurobench.errors import DataUnavailableError, NeurobenchError, StimulusError
from tests.miniature import EXAMPLE_PLUGIN, example_plugin, run_score

mne = pytest.importorskip("mne")

CONCEPTS = ["aardvark", "banana", "cello", "donut", "eagle", "fork", "guitar", "hammer", "igloo", "jeep",
            "kettle", "lemon", "mango", "necklace", "owl", "piano"]
TEST_IDS = [f"{c}_13s" for c in CONCEPTS]
SFREQ, PEAK, REPS = 200.0, 0.2, 12
CHANNELS = [f"M{side}{region}{k}1-1609" for region in "OTPFC" for side in "LR" for k in (1, 2)] + ["MZO01-1609"]


def write_images(miniature, missing: str | None = None):
    folder = miniature.folder("things_images")
    rng = np.random.default_rng(5)
    with zipfile.ZipFile(folder / "images_THINGS.zip", "w") as zf:
        for stem in TEST_IDS + [f"{c}_01b" for c in CONCEPTS]:
            if stem == missing:
                continue
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
            zf.writestr(f"object_images/{stem.rsplit('_', 1)[0]}/{stem}.jpg", buf.getvalue())
    miniature.publish("things_images")


def model_features(miniature):
    """The tiny model's layer-5 activations on the miniature test images (the hidden representation)."""
    from neurobench.benchmarks.things_images import load_things_stimuli

    with example_plugin("my_plugin_things_meg_features"):
        acts = nb.load_model("tiny-convnet").activations(load_things_stimuli(sorted(TEST_IDS), "t"), ["3", "5"],
                                                          device="cpu")
    return {k: np.asarray(v, dtype=np.float64) for k, v in acts.items()}


def write_subject(folder: Path, subject: int, feats, channels, meta_columns=None):
    """Epochs in the release layout: 12 repetitions of each test image, some exp and catch trials."""
    rng = np.random.default_rng(100 + subject)
    info = mne.create_info(channels, SFREQ, "mag")
    times = np.arange(-20, 261) / SFREQ
    env = np.exp(-0.5 * ((times - PEAK) / 0.04) ** 2)
    mixing = rng.normal(size=(feats.shape[1], len(channels)))
    patterns = (feats - feats.mean(0)) @ mixing  # stimulus-specific part of the representation
    patterns /= patterns.std()
    order = sorted(TEST_IDS)
    rows, data = [], []
    for session in range(1, REPS + 1):
        for i in rng.permutation(len(order)):
            rows.append(dict(trial_type="test", session_nr=session, image_path=f"images_test_meg/{order[i]}.jpg",
                             things_image_nr=1000 + i, test_image_nr=i + 1))
            data.append(np.outer(patterns[i], env) + rng.normal(size=(len(channels), len(times))) * 1.5)
        c = CONCEPTS[session % len(CONCEPTS)]
        rows.append(dict(trial_type="exp", session_nr=session, image_path=f"images_meg/{c}/{c}_01b.jpg",
                         things_image_nr=2000 + session, test_image_nr=np.nan))
        data.append(rng.normal(size=(len(channels), len(times))))
        rows.append(dict(trial_type="catch", session_nr=session, image_path=f"images_catch_meg/catch{session:03d}.jpg",
                         things_image_nr=np.nan, test_image_nr=np.nan))
        data.append(rng.normal(size=(len(channels), len(times))))
    meta = pd.DataFrame(rows)
    if meta_columns is not None:
        meta = meta[meta_columns]
    codes = pd.DataFrame(rows)["things_image_nr"]  # before any column selection, as the release codes events
    return write_epochs(folder, subject, np.asarray(data), info, times, meta, codes), meta


def write_epochs(folder: Path, subject, arr: np.ndarray, info, times, meta, image_nr) -> np.ndarray:
    """Epochs with the release's metadata and event codes (THINGS image number, catch 999999),
    saved in four parts as released; returns the data as the float32 file holds it."""
    codes = np.nan_to_num(np.asarray(image_nr, dtype=float), nan=999999).astype(int)
    events = np.column_stack([np.arange(len(codes)) * 400, np.zeros(len(codes), int), codes])
    epochs = mne.EpochsArray(arr, info, events, tmin=times[0], event_id={str(c): int(c) for c in set(codes)},
                             metadata=meta, verbose="error")
    out = folder / "derivatives" / "preprocessed"
    out.mkdir(parents=True, exist_ok=True)
    save_in_four_parts(epochs, out / f"preprocessed_P{subject}-epo.fif", arr.size * 4)
    return arr.astype(np.float32).astype(np.float64)


def save_in_four_parts(epochs, path: Path, data_bytes: int):
    """MNE's own split writer, with a split size that gives the release's four parts."""
    split = data_bytes // 4
    for _ in range(40):
        for old in path.parent.glob(path.stem + "*.fif"):
            old.unlink()
        try:
            epochs.save(path, split_size=split, overwrite=True, verbose="error")
        except ValueError:  # below MNE's minimum for one epoch plus overhead
            split = int(split * 1.1)
            continue
        n = len(list(path.parent.glob(path.stem + "*.fif")))
        if n == 4:
            return
        split = int(split * (1.1 if n > 4 else 0.93))
    raise AssertionError("could not make MNE write four parts")


def build(miniature, feats, subjects=(1, 2, 3, 4), channels=CHANNELS, **kw):
    folder = miniature.folder("things_meg")
    truth = {s: write_subject(folder, s, feats, channels, **kw) for s in subjects}
    miniature.publish("things_meg")
    return truth


@pytest.fixture
def setup(miniature):
    write_images(miniature)
    return model_features(miniature)


def reference(truth, model, picks_letter=""):
    """numpy/scipy: per-image means, 10 ms bins, 1-Pearson RDMs per bin, Spearman; subject mean."""
    order = sorted(TEST_IDS)
    idx = [i for i, n in enumerate(CHANNELS) if not picks_letter or n[2] == picks_letter]
    model_rdm = pdist(model, "correlation")
    per_subject, data_rdms = [], []
    for arr, meta in truth.values():
        test = (meta["trial_type"] == "test").to_numpy()
        stems = meta["image_path"][test].str.slice(16, -4).to_numpy()
        means = np.stack([arr[test][stems == s][:, idx].mean(0) for s in order])
        nb_ = means.shape[-1] // 2
        binned = means[..., : 2 * nb_].reshape(len(order), len(idx), nb_, 2).mean(-1)
        rdms = np.stack([pdist(binned[:, :, k], "correlation") for k in range(nb_)])
        data_rdms.append(rdms)
        per_subject.append([spearmanr(model_rdm, r)[0] for r in rdms])
    return np.mean(per_subject, axis=0), np.stack(data_rdms)


def nili_lower_spearman(rdms):
    """Lower bound: each subject vs the mean rank-transformed RDM of the others (Spearman)."""
    ranks = np.stack([rankdata(r) for r in rdms])
    return np.mean([spearmanr(rdms[i], np.delete(ranks, i, 0).mean(0))[0] for i in range(len(rdms))])


def test_four_part_split_layout(miniature, setup):
    build(miniature, setup["5"])
    names = sorted(p.name for p in (miniature.folder("things_meg") / "derivatives" / "preprocessed").iterdir())
    assert names == [f"preprocessed_P{s}-epo{p}.fif" for s in range(1, 5) for p in ("-1", "-2", "-3", "")]


@pytest.mark.parametrize("group, letter", [("all", ""), ("occipital", "O")])
def test_timecourse_and_ceiling_match_numpy_scipy(miniature, setup, group, letter):
    truth = build(miniature, setup["5"])
    bench = nb.load_benchmark(f"things-meg.{group}-rsa")
    bench.n_bootstrap, bench.n_bootstrap_layers = 100, 50
    result = bench.score_activations(setup, seed=0, device=torch.device("cpu"))
    expected, data_rdms = reference(truth, setup["5"], letter)
    got = result.per_target[result.per_target["layer"] == "5"]
    np.testing.assert_allclose(got["r"].to_numpy(), expected, atol=1e-8)
    row = result.layers.set_index("layer").loc["5"]
    # 16 images, 12 noisy repetitions: the peak lands inside the signal's envelope, well after baseline
    assert abs(row["peak_latency"] - PEAK) <= 0.15
    assert got["r"][got["time"].between(0.1, 0.3)].mean() > got["r"][got["time"] < 0].mean() + 0.1
    assert row["latency_ci_low"] <= row["peak_latency"] <= row["latency_ci_high"]
    times = got["time"].to_numpy()
    sel = (times >= row["window_start"] - 1e-9) & (times <= row["window_end"] + 1e-9)
    assert row["ceiling"] == pytest.approx(nili_lower_spearman(data_rdms[:, sel].mean(1)), abs=1e-8)
    assert result.best_layer == "5" and result.ceiling is not None and 0 < result.ceiling <= result.ceiling_upper
    assert result.provenance["n_subjects"] == 4 and result.provenance["latency_bootstrap"] == "both"
    assert result.provenance["latency_interval"] == "subjects+stimuli (percentile)"
    assert result.interval == "subjects+stimuli (Schütt 2023 corrected)" and result.normalization == "nili_lower"


def test_cli_and_api(miniature, setup, tmp_path):
    build(miniature, setup["5"])
    store = tmp_path / "s.sqlite"
    proc = run_score("tiny-convnet", "things-meg.occipital-rsa", store, plugin=EXAMPLE_PLUGIN, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "things-meg.occipital-rsa" in proc.stdout
    with example_plugin("my_plugin_things_meg_api"):
        result = nb.score("tiny-convnet", "things-meg.all-rsa", device="cpu")
    assert set(result.layers["layer"]) == {"1", "3", "5"} and result.ci_low <= result.raw <= result.ci_high
    assert len(nb.ResultStore(store).leaderboard()) == 1


def test_missing_participant(miniature, setup):
    build(miniature, setup["5"], subjects=(1, 2, 4))
    with pytest.raises(DataUnavailableError, match=r"P3 .*present: \['P1', 'P2', 'P4'\]"):
        nb.load_benchmark("things-meg.all-rsa").temporal_data()


def test_missing_sensor_group(miniature, setup):
    build(miniature, setup["5"], channels=[c for c in CHANNELS if c[2] != "O"])
    with pytest.raises(NeurobenchError, match="no occipital sensors.*groups present: \\['central', 'frontal'"):
        nb.load_benchmark("things-meg.occipital-rsa").temporal_data()


def test_image_missing_from_stimulus_set(miniature, setup):
    build(miniature, setup["5"])
    write_images(miniature, missing="cello_13s")
    with pytest.raises(StimulusError, match="cello_13s"):
        nb.load_benchmark("things-meg.all-rsa").stimuli()


def test_metadata_from_another_release(miniature, setup):
    build(miniature, setup["5"], meta_columns=["session_nr", "things_image_nr"])
    with pytest.raises(NeurobenchError, match="lacks \\['trial_type', 'image_path'\\]"):
        nb.load_benchmark("things-meg.all-rsa").temporal_data()


# ------------------------------------------------------------------ encoding ----
# A second miniature: 48 exp images shown once and the 16 test images x 4 repetitions, with sensor
# signals a known linear map of the tiny model's layer-5 features that switches on at 50 ms.

EXP_IDS = [f"{c}_0{k}b" for c in CONCEPTS for k in (1, 2, 3)]
ENC_REPS, SWITCH_ON = 4, 0.05
ALPHA = 10.0


def write_all_images(miniature):
    folder = miniature.folder("things_images")
    rng = np.random.default_rng(6)
    with zipfile.ZipFile(folder / "images_THINGS.zip", "w") as zf:
        for stem in TEST_IDS + EXP_IDS:
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
            zf.writestr(f"object_images/{stem.rsplit('_', 1)[0]}/{stem}.jpg", buf.getvalue())
    miniature.publish("things_images")


def all_features(miniature):
    """The tiny model's activations on every miniature image, keyed by image id."""
    from neurobench.benchmarks.things_images import load_things_stimuli

    ids = sorted(TEST_IDS + EXP_IDS)
    with example_plugin("my_plugin_things_meg_all"):
        acts = nb.load_model("tiny-convnet").activations(load_things_stimuli(ids, "t"), ["1", "3", "5"], device="cpu")
    return ids, {k: np.asarray(v, dtype=np.float64) for k, v in acts.items()}


def write_encoding_subject(folder: Path, subject: int, feats: dict[str, np.ndarray], channels=CHANNELS):
    rng = np.random.default_rng(200 + subject)
    info = mne.create_info(channels, SFREQ, "mag")
    times = np.arange(-20, 81) / SFREQ
    env = (times >= SWITCH_ON).astype(float)
    ids = sorted(feats)
    F = np.stack([feats[i] for i in ids])
    patterns = (F - F.mean(0)) @ rng.normal(size=(F.shape[1], len(channels)))
    patterns /= patterns.std()
    pattern = dict(zip(ids, patterns))
    trials = [("exp", i) for i in EXP_IDS] + [("test", i) for i in TEST_IDS for _ in range(ENC_REPS)]
    trials += [("catch", f"catch{k:03d}") for k in range(3)]
    rows, data = [], []
    for j in rng.permutation(len(trials)):
        kind, image = trials[j]
        folder_name = {"exp": f"images_meg/{image.rsplit('_', 1)[0]}", "test": "images_test_meg",
                       "catch": "images_catch_meg"}[kind]
        rows.append(dict(trial_type=kind, session_nr=1 + len(rows) % 12, image_path=f"{folder_name}/{image}.jpg",
                         things_image_nr=np.nan if kind == "catch" else 1000 + ids.index(image)))
        signal = np.outer(pattern[image], env) if kind != "catch" else 0.0
        data.append(signal + rng.normal(size=(len(channels), len(times))) * 0.7)
    meta = pd.DataFrame(rows)
    return write_epochs(folder, subject, np.asarray(data), info, times, meta, meta["things_image_nr"]), meta, times


@pytest.fixture
def enc(miniature):
    write_all_images(miniature)
    ids, acts = all_features(miniature)
    folder = miniature.folder("things_meg")
    truth = {s: write_encoding_subject(folder, s, dict(zip(ids, acts["5"]))) for s in (1, 2, 3, 4)}
    miniature.publish("things_meg")
    return ids, acts, truth


def binned_split(arr, meta, times, idx, tmin=0.0, tmax=1.0):
    """numpy: 10 ms bins (sample pairs) in the window; exp rows by sorted id, test (images, reps, targets)."""
    nb_ = arr.shape[-1] // 2
    binned = arr[:, idx, : 2 * nb_].reshape(len(arr), len(idx), nb_, 2).mean(-1)
    centres = times[: 2 * nb_].reshape(nb_, 2).mean(-1)
    keep = (centres >= tmin - 1e-9) & (centres <= tmax + 1e-9)
    flat = binned[:, :, keep].reshape(len(arr), -1)
    stems = meta["image_path"].str.rsplit("/", n=1).str[-1].str.slice(0, -4).to_numpy()
    kind = meta["trial_type"].to_numpy()
    train = np.stack([flat[(kind == "exp") & (stems == i)][0] for i in sorted(EXP_IDS)])
    test = np.stack([flat[(kind == "test") & (stems == i)] for i in sorted(TEST_IDS)])
    return train, test, centres[keep]


def numpy_split_half(test, n_splits=10, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_splits):
        pm = rng.permutation(test.shape[1])
        a, b = test[:, np.sort(pm[: test.shape[1] // 2])].mean(1), test[:, np.sort(pm[test.shape[1] // 2:])].mean(1)
        a, b = a - a.mean(0), b - b.mean(0)
        r = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
        out.append(2 * r / (1 + r))
    return np.mean(out, axis=0)


def pinned(bench):
    bench.alphas, bench.dtype, bench.n_bootstrap, bench.inner_cv = (ALPHA,), "float64", 50, 3
    return bench


@pytest.mark.parametrize("group, letter", [("all", ""), ("occipital", "O")])
def test_encoding_matches_sklearn_ridge_and_numpy_ceiling(enc, group, letter):
    from sklearn.linear_model import Ridge

    ids, acts, truth = enc
    bench = pinned(nb.load_benchmark(f"things-meg.{group}-encoding"))
    acts = {"5": acts["5"], "3": acts["3"]}
    assert bench.stimuli().ids == ids  # union of exp and test images
    result = bench.score_activations(acts, seed=0, device=torch.device("cpu"))
    idx = [i for i, n in enumerate(CHANNELS) if not letter or n[2] == letter]
    row = {i: k for k, i in enumerate(ids)}
    X = acts[result.best_layer]
    Xtr, Xte = X[[row[i] for i in sorted(EXP_IDS)]], X[[row[i] for i in sorted(TEST_IDS)]]
    for s, (arr, meta, times) in truth.items():
        train, test, centres = binned_split(arr, meta, times, idx)
        pred = Ridge(alpha=ALPHA).fit(Xtr, train).predict(Xte)
        y = test.mean(1)
        pc, yc = pred - pred.mean(0), y - y.mean(0)
        r = (pc * yc).sum(0) / np.sqrt((pc * pc).sum(0) * (yc * yc).sum(0))
        got = result.per_target[result.per_target["subject"] == f"P{s}"]
        np.testing.assert_allclose(got["r"].to_numpy(), r, atol=1e-6)
        np.testing.assert_allclose(got["reliability"].to_numpy(), numpy_split_half(test), atol=1e-6)  # float32 bins
        np.testing.assert_allclose(got["time"].to_numpy(), np.tile(centres, len(idx)))
        assert list(got["sensor"][:: len(centres)]) == [CHANNELS[i] for i in idx]
    tc = result.provenance["timecourse"]
    assert tc["times"] == pytest.approx(list(centres))
    r5 = np.asarray(tc["r"][tc["layers"].index("5")])
    late = np.asarray(tc["times"]) > SWITCH_ON + 0.01
    assert r5[late].min() > 0.5 and abs(r5[np.asarray(tc["times"]) < SWITCH_ON - 0.01]).max() < 0.5
    assert set(tc["per_subject"]) == {"P1", "P2", "P3", "P4"}
    # the generating layer: well above zero; the headline layer is whichever wins the inner CV
    assert result.layers.set_index("layer").loc["5", "normalized"] > 0.3 and result.ceiling > 0.3 and result.provenance["window_s"] == [0.0, 1.0]


def test_encoding_timecourse_flat_before_onset(enc):
    """With the window opened to the baseline, pre-onset bins carry no signal."""
    from neurobench.benchmarks.things_meg import ThingsMEGEncodingBenchmark

    bench = pinned(ThingsMEGEncodingBenchmark("all", tmin=-0.1, tmax=None))
    result = bench.score_activations(enc[1], seed=0, device=torch.device("cpu"))
    tc = result.provenance["timecourse"]
    times, r = np.asarray(tc["times"]), np.asarray(tc["r"][tc["layers"].index("5")])
    assert times[0] < 0 and abs(r[times < 0]).max() < 0.35 and r[times > SWITCH_ON + 0.01].mean() > 0.6
    assert np.isfinite(r).all()


@pytest.mark.slow
def test_encoding_cli_and_api(enc, tmp_path):
    """The full path (~18 s): CLI with the default alphas, inner CV and bootstrap, then the API."""
    store = tmp_path / "s.sqlite"
    proc = run_score("tiny-convnet", "things-meg.occipital-encoding", store, plugin=EXAMPLE_PLUGIN, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "things-meg.occipital-encoding" in proc.stdout
    with example_plugin("my_plugin_things_meg_enc_api"):
        result = nb.score("tiny-convnet", "things-meg.all-encoding", device="cpu")
    assert set(result.layers["layer"]) == {"1", "3", "5"} and result.ci_low <= result.raw <= result.ci_high
    assert {"subject", "sensor", "time", "r", "normalized"} <= set(result.per_target.columns)
    assert len(nb.ResultStore(store).leaderboard()) == 1


def test_encoding_errors(miniature, setup):
    build(miniature, setup["5"], subjects=(1, 2, 4))
    with pytest.raises(DataUnavailableError, match=r"P3 .*present: \['P1', 'P2', 'P4'\]"):
        nb.load_benchmark("things-meg.all-encoding").stimuli()
    build(miniature, setup["5"], meta_columns=["session_nr", "things_image_nr"])
    with pytest.raises(NeurobenchError, match="lacks \\['trial_type', 'image_path'\\]"):
        nb.load_benchmark("things-meg.all-encoding").stimuli()


def test_encoding_missing_sensor_group_and_image(enc, miniature):
    ids, acts, _ = enc
    write_images(miniature)  # the RSA miniature's archive: lacks most exp images
    with pytest.raises(StimulusError, match="_02b"):
        nb.load_benchmark("things-meg.all-encoding").stimuli()
    write_all_images(miniature)
    folder = miniature.folder("things_meg")
    channels = [c for c in CHANNELS if c[2] != "O"]
    for s in (1, 2, 3, 4):
        write_encoding_subject(folder, s, dict(zip(ids, acts["5"])), channels)
    miniature.publish("things_meg")
    bench = pinned(nb.load_benchmark("things-meg.occipital-encoding"))
    with pytest.raises(NeurobenchError, match="no occipital sensors.*groups present: \\['central', 'frontal'"):
        bench.score_activations(acts, seed=0, device=torch.device("cpu"))


def test_decoding_rdms_from_the_test_trials(miniature, setup):
    """data_rdm=decoding: pairwise LDA accuracy of every two test images from their 12 trials (5
    round-robin folds over repetitions), equal to the metric on the generator's trials."""
    from neurobench.metrics.decoding import condition_folds, pairwise_decoding_rdms

    truth = build(miniature, setup["5"])
    bench = nb.load_benchmark("things-meg.occipital-rsa", data_rdm="decoding", n_bootstrap=20,
                              n_bootstrap_layers=10)
    data = bench.temporal_data()
    order = sorted(TEST_IDS)
    idx = [i for i, n in enumerate(CHANNELS) if n[2] == "O"]
    for s, (arr, meta) in enumerate(truth.values()):
        test = (meta["trial_type"] == "test").to_numpy()
        stems = meta["image_path"][test].str.slice(16, -4).to_numpy()
        trials = np.concatenate([arr[test][stems == name][:, idx] for name in order])
        labels = np.repeat(np.arange(len(order)), [int((stems == name).sum()) for name in order])
        nb_ = trials.shape[-1] // 2
        binned = trials[..., : 2 * nb_].reshape(len(trials), len(idx), nb_, 2).mean(-1)
        expected = pairwise_decoding_rdms(binned, labels, condition_folds(labels, 5), dtype=torch.float64).numpy()
        assert np.mean(np.abs(np.asarray(data.rdms[s]) - expected)) < 1e-3
    result = bench.score_activations(setup, seed=0, device=torch.device("cpu"))
    assert result.provenance["data_rdm"] == "decoding" and result.provenance["decoding"]["folds_used"] == [5] * 4
    assert result.metric.endswith("-decoding") and result.ceiling is not None
