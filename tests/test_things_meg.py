"""things-meg.*-rsa on a miniature of OpenNeuro ds004212: preprocessed epochs with the sample table
as metadata, split by MNE into four parts per participant, CTF sensor names; images in a
THINGS-style zip. Checked against numpy/scipy from the generator's arrays."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
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
from neurobench.registry import benchmarks, models

mne = pytest.importorskip("mne")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_plugin.py"
CONCEPTS = ["aardvark", "banana", "cello", "donut", "eagle", "fork", "guitar", "hammer", "igloo", "jeep",
            "kettle", "lemon", "mango", "necklace", "owl", "piano"]
TEST_IDS = [f"{c}_13s" for c in CONCEPTS]
SFREQ, PEAK, REPS = 200.0, 0.2, 12
CHANNELS = [f"M{side}{region}{k}1-1609" for region in "OTPFC" for side in "LR" for k in (1, 2)] + ["MZO01-1609"]


def load_plugin(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def unload_plugin():
    models.remove("tiny-convnet")
    benchmarks.remove("toy.colour-rsa")


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
    from neurobench.things_images import load_things_stimuli

    load_plugin("my_plugin_things_meg_features")
    try:
        acts = nb.load_model("tiny-convnet").activations(load_things_stimuli(sorted(TEST_IDS), "t"), ["3", "5"],
                                                          device="cpu")
    finally:
        unload_plugin()
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
    codes = np.nan_to_num(pd.DataFrame(rows)["things_image_nr"].to_numpy(), nan=999999).astype(int)
    events = np.column_stack([np.arange(len(rows)) * 400, np.zeros(len(rows), int), codes])
    arr = np.asarray(data)
    epochs = mne.EpochsArray(arr, info, events, tmin=times[0], event_id={str(c): int(c) for c in set(codes)},
                             metadata=meta, verbose="error")
    out = folder / "derivatives" / "preprocessed"
    out.mkdir(parents=True, exist_ok=True)
    save_in_four_parts(epochs, out / f"preprocessed_P{subject}-epo.fif", arr.size * 4)
    return arr.astype(np.float32).astype(np.float64), meta


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
    assert result.provenance["n_subjects"] == 4 and result.provenance["latency_bootstrap"] == "subjects"


def test_cli_and_api(miniature, setup, tmp_path):
    build(miniature, setup["5"])
    store = tmp_path / "s.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "neurobench.cli", "--plugin", str(EXAMPLE), "score", "--model", "tiny-convnet",
         "--benchmark", "things-meg.occipital-rsa", "--store", str(store), "--quiet", "--device", "cpu"],
        env=os.environ, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "things-meg.occipital-rsa" in proc.stdout
    load_plugin("my_plugin_things_meg_api")
    try:
        result = nb.score("tiny-convnet", "things-meg.all-rsa", device="cpu")
    finally:
        unload_plugin()
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
