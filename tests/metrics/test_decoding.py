"""Decoding RDMs: pairwise shrinkage-LDA accuracy against scikit-learn, and MNE's `decoding_rsa`
example reproduced on an MNE-format miniature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import squareform

from neurobench.errors import InvalidInputError
from neurobench.metrics.decoding import (
    condition_folds,
    ledoit_wolf,
    ovr_auc_rdms,
    pairwise_decoding_rdms,
)

F64 = torch.float64


def simulated_trials(n_cond=6, n_rep=8, n_chan=7, n_times=5, seed=0):
    """Condition patterns of graded separation, shared correlated noise, trials in random order."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(n_cond, n_chan, 1)) * np.linspace(0.1, 1.0, n_times)
    mixing = rng.normal(size=(n_chan, n_chan)) / np.sqrt(n_chan)
    labels = np.repeat(np.arange(n_cond), n_rep)
    rng.shuffle(labels)
    noise = np.einsum("ij,njt->nit", mixing, rng.normal(size=(len(labels), n_chan, n_times)))
    return patterns[labels] + noise, labels


def test_ledoit_wolf_is_sklearns():
    from sklearn.covariance import ledoit_wolf as sk_lw

    x = np.random.default_rng(1).normal(size=(3, 40, 9)) * np.arange(1, 10)
    cov, shrink = ledoit_wolf(torch.as_tensor(x))
    for b in range(3):
        ref, ref_shrink = sk_lw(x[b], assume_centered=True)
        np.testing.assert_allclose(cov[b].numpy(), ref, rtol=0, atol=1e-12)
        assert float(shrink[b]) == pytest.approx(ref_shrink, abs=1e-12)


def test_condition_folds_round_robin_per_condition():
    folds = condition_folds(["a", "b", "a", "a", "b", "a", "b"], 3)
    np.testing.assert_array_equal(folds, [0, 0, 1, 2, 1, 0, 2])
    with pytest.raises(InvalidInputError, match="only 3 trials"):
        condition_folds(["a", "b", "a", "a", "b", "a", "b"], 4)


def sklearn_pairwise(trials, labels, folds):
    """Per time bin and fold: Ledoit-Wolf covariance of the within-condition residuals
    (scikit-learn), whitening, and scikit-learn's NearestCentroid per pair of conditions."""
    from sklearn.covariance import ledoit_wolf as sk_lw
    from sklearn.neighbors import NearestCentroid

    classes = np.unique(labels)
    c = len(classes)
    correct = np.zeros((trials.shape[2], c, c))
    for t in range(trials.shape[2]):
        x = trials[:, :, t]
        for f in np.unique(folds):
            tr, te = folds != f, folds == f
            means = {k: x[tr & (labels == k)].mean(0) for k in classes}
            resid = x[tr] - np.stack([means[k] for k in labels[tr]])
            cov, _ = sk_lw(resid, assume_centered=True)
            vals, vecs = np.linalg.eigh(cov)
            whiten = vecs @ np.diag(vals ** -0.5) @ vecs.T
            z = x @ whiten
            for i in range(c):
                for j in range(i + 1, c):
                    pair_tr = tr & np.isin(labels, [i, j])
                    pair_te = te & np.isin(labels, [i, j])
                    clf = NearestCentroid().fit(z[pair_tr], labels[pair_tr])
                    hits = (clf.predict(z[pair_te]) == labels[pair_te]).sum()
                    correct[t, i, j] += hits
    tested = np.bincount(labels)
    return np.stack([squareform(np.triu(correct[t], 1) + np.triu(correct[t], 1).T, checks=False)
                     for t in range(len(correct))]) / np.array(
        [tested[i] + tested[j] for i in range(c) for j in range(i + 1, c)])


def test_pairwise_lda_accuracy_is_sklearns_nearest_centroid_after_whitening():
    trials, labels = simulated_trials()
    folds = condition_folds(labels, 4)
    got = pairwise_decoding_rdms(trials, labels, folds, dtype=F64).numpy()
    ref = sklearn_pairwise(trials, labels, folds)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert got[0].mean() < got[-1].mean()  # separation grows over time bins
    chunked = pairwise_decoding_rdms(trials, labels, folds, dtype=F64, chunk_bytes=1).numpy()
    np.testing.assert_array_equal(chunked, got)


def test_pairwise_decoding_refuses_bad_input():
    trials, labels = simulated_trials(n_cond=3, n_rep=4)
    with pytest.raises(InvalidInputError, match="one of each per trial"):
        pairwise_decoding_rdms(trials, labels[:-1], condition_folds(labels, 2))
    folds = np.where(labels == 0, 0, 1)  # all of condition 0 in one fold
    with pytest.raises(InvalidInputError, match="no training trial"):
        pairwise_decoding_rdms(trials, labels, folds)
    with pytest.raises(InvalidInputError, match="NaN"):
        pairwise_decoding_rdms(np.where(trials > 2, np.nan, trials), labels, condition_folds(labels, 2))


# ------------------------------------------------------------------ MNE's decoding_rsa example
def test_mne_decoding_rsa_example_reproduced_on_an_epochs_miniature():
    """An mne.EpochsArray miniature (12 conditions x 15 trials, 8 magnetometers, 200 Hz, -0.1..0.5 s;
    event codes = condition + 1); the example's own computation with scikit-learn (window 50-300 ms
    averaged, StandardScaler + OneVsRest(LogisticRegression(C=1)), StratifiedKFold(5, shuffle,
    random_state=0), ROC-AUC confusion, upper triangle mirrored) against `ovr_auc_rdms` on the same
    window and folds. Tolerance: 1 - AUC entries within 0.005 (scikit-learn's lbfgs stops at
    tol=1e-4, our Newton fit at 1e-10, so near-tied probabilities can swap ranks), mean within 1e-3."""
    mne = pytest.importorskip("mne")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    n_cond, n_rep, n_chan, sfreq = 12, 15, 8, 200.0
    times = np.arange(-20, 101) / sfreq
    envelope = np.exp(-0.5 * ((times - 0.15) / 0.05) ** 2)
    patterns = rng.normal(size=(n_cond, n_chan)) * 0.6
    codes = np.repeat(np.arange(n_cond), n_rep)
    rng.shuffle(codes)
    data = patterns[codes][:, :, None] * envelope + rng.normal(size=(len(codes), n_chan, len(times)))
    info = mne.create_info([f"MEG{i:03d}1" for i in range(n_chan)], sfreq, "mag")
    events = np.stack([np.arange(len(codes)) * 200, np.zeros(len(codes), int), codes + 1], 1)
    epochs = mne.EpochsArray(data * 1e-13, info, events=events, tmin=times[0],
                             event_id={f"c{k}": k + 1 for k in range(n_cond)}, verbose="error")

    # the example, as written (minus plotting)
    clf = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=1)))
    X = epochs.copy().crop(0.05, 0.3).get_data().mean(axis=2)
    y = epochs.events[:, 2]
    classes = set(y)
    cv = StratifiedKFold(n_splits=5, random_state=0, shuffle=True)
    y_pred = np.zeros((len(y), len(classes)))
    folds = np.zeros(len(y), dtype=int)
    for k, (train, test) in enumerate(cv.split(X, y)):
        clf.fit(X[train], y[train])
        y_pred[test] = clf.predict_proba(X[test])
        folds[test] = k
    confusion = np.zeros((len(classes), len(classes)))
    for ii, train_class in enumerate(classes):
        for jj in range(ii, len(classes)):
            confusion[ii, jj] = roc_auc_score(y == train_class, y_pred[:, jj])
            confusion[jj, ii] = confusion[ii, jj]
    expected = squareform(1 - confusion, checks=False)

    ours = ovr_auc_rdms(X, y, folds, dtype=F64).numpy()[0]
    assert np.max(np.abs(ours - expected)) <= 0.005  # measured: 0.0012, one swapped pair of trials
    assert np.mean(np.abs(ours - expected)) <= 1e-3


def test_perf_decoding_suite_agrees_exactly_with_its_sklearn_definition(capsys, monkeypatch):
    from neurobench.cli import main

    monkeypatch.setenv("COLUMNS", "160")  # the agreement text on one line
    assert main(["perf", "decoding", "--conditions", "4", "--trials", "6", "--channels", "5", "--times", "2",
                 "--folds", "3", "--repeats", "3"]) == 0
    shown = capsys.readouterr().out
    assert "max abs diff 0.0e+00" in shown and "sklearn-lda" in shown and "Spearman" in shown
