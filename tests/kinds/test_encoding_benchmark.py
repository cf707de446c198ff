"""score_encoding: recovers a known ceiling-normalised score and ranks layers correctly."""

import numpy as np
import pytest

from neurobench.errors import AlignmentError
from neurobench.ids import check_same_ids
from neurobench.kinds.encoding import score_encoding


def synthetic(n=500, k=8, t=30, reps=4, seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((n, k))
    sig = hidden @ rng.standard_normal((k, t))
    noise = np.linspace(1, 3, t) * sig.std(0)
    data = sig[:, None, :] + rng.standard_normal((n, reps, t)) * noise
    ids = [f"s{i}" for i in range(n)]
    return hidden, data, ids, rng


def test_true_features_layer_recovers_normalised_one_and_wins():
    hidden, data, ids, rng = synthetic()
    acts = {"noise": rng.standard_normal((len(ids), 8)),
            "true": hidden @ rng.standard_normal((8, 20))}  # linear mix of the hidden features
    res = score_encoding(acts, data, ids, ids, device="cpu", n_bootstrap=200, seed=1)
    assert res.best_layer == "true"
    lo, hi = res.provenance["normalized_ci"]
    assert lo <= 1.0 <= hi + 0.05 and res.normalized == pytest.approx(1.0, abs=0.1)
    noise = res.layers.set_index("layer").loc["noise"]
    assert noise["normalized"] < 0.05 < res.normalized
    assert res.per_target["usable"].all() and len(res.per_target) == 30


def test_misaligned_stimuli_are_an_alignment_error():
    hidden, data, ids, _ = synthetic(n=40)
    with pytest.raises(AlignmentError, match="different order"):
        score_encoding({"a": hidden}, data, ids[::-1], ids, device="cpu")
    with pytest.raises(AlignmentError, match="different stimuli"):
        check_same_ids(ids, ids[:-1] + ["zz"])
