"""Temporal hierarchy scores on THINGS-MEG miniatures in the release's format: the score is the
Pearson r of relative depth and the peak latency of each layer's subject-mean time course, read
independently from the component benchmark's own result."""

import numpy as np
import pytest
from scipy.stats import pearsonr

import neurobench as nb
from tests.benchmarks.test_things_meg import build, enc, setup  # noqa: F401  (fixtures)
from tests.miniature import example_plugin

LAYERS = ["1", "3", "5"]


def _expected(times, mean_courses):
    latency = np.asarray(times)[np.argmax(mean_courses, axis=1)]
    return latency, (pearsonr(np.linspace(0, 1, len(latency)), latency)[0] if np.std(latency) > 0 else 0.0)


def test_temporal_rsa_component(miniature, setup):  # noqa: F811
    build(miniature, setup["5"])
    with example_plugin("my_plugin_hierarchy_meg_rsa"):
        res = nb.score("tiny-convnet", "hierarchy.things-meg-rsa-temporal", layers=LAYERS, device="cpu",
                       options={"n_bootstrap": 200})
        comp = nb.score("tiny-convnet", "things-meg.all-rsa", layers=LAYERS, device="cpu")
    table = comp.per_target
    subjects = [c for c in table.columns if c.startswith("r_")]
    assert len(subjects) == 4
    times = comp.provenance["timecourse"]["times"]
    per = np.stack([table[c].to_numpy().reshape(len(LAYERS), len(times)) for c in subjects])
    latency, r = _expected(times, per.mean(0))
    np.testing.assert_allclose(res.layers["peak_latency"], latency)
    assert res.raw == pytest.approx(r, abs=1e-9)
    # interval: the component's own joint resamples of every layer's peak latency (stimuli and participants)
    assert res.interval == "subjects+stimuli (percentile)"
    draws = np.asarray(comp.provenance["timecourse"]["peak_latency_samples"])
    null = [pearsonr(np.linspace(0, 1, len(LAYERS)), d)[0] if np.std(d) > 0 else 0.0 for d in draws]
    assert (res.ci_low, res.ci_high) == pytest.approx(tuple(np.percentile(null, [2.5, 97.5])), abs=1e-9)
    np.testing.assert_allclose(res.layers["latency_ci_low"], [lo for lo, _ in comp.provenance["timecourse"]["peak_latency_ci"]])
    assert res.provenance["components"]["things-meg.all-rsa"]["raw"] == pytest.approx(comp.raw)


def test_temporal_encoding_component(enc):  # noqa: F811
    with example_plugin("my_plugin_hierarchy_meg_enc"):
        res = nb.score("tiny-convnet", "hierarchy.things-meg-temporal", layers=LAYERS, device="cpu",
                       options={"n_bootstrap": 200})
        comp = nb.score("tiny-convnet", "things-meg.all-encoding", layers=LAYERS, device="cpu",
                        options={"n_bootstrap": 0})
    course = comp.provenance["timecourse"]
    per = np.stack([np.asarray(course["per_subject"][s]["r"]) for s in course["per_subject"]])
    latency, r = _expected(course["times"], per.mean(0))
    np.testing.assert_allclose(res.layers["peak_latency"], latency)
    assert res.raw == pytest.approx(r, abs=1e-9)
    assert set(res.targets["subject"]) == {"mean", *course["per_subject"]}
