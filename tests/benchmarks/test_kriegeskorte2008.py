"""The 92-object benchmark on the real data: reference figures and end-to-end scoring."""

import numpy as np
import pytest

import neurobench as nb
from neurobench.benchmarks import kriegeskorte2008 as k08
from neurobench.cli import main
from neurobench.metrics.rdm import upper_triangle
from neurobench.metrics.rsa import compare_rdms, noise_ceiling

from ..conftest import needs_kriegeskorte

pytestmark = needs_kriegeskorte


def _subjects():
    return upper_triangle(np.asarray(k08.load_hit_subjects()[1]))


def _mit():
    return np.asarray(k08.load_mit()[1])


@pytest.mark.parametrize("method, lower, upper", [
    ("tau_a", 0.2539, 0.4767), ("spearman", 0.3723, 0.6657), ("pearson", 0.3944, 0.6804)])
def test_noise_ceiling_matches_source(method, lower, upper):
    lo, up = noise_ceiling(_subjects(), method)
    assert lo == pytest.approx(lower, abs=1e-4) and up == pytest.approx(upper, abs=1e-4)


@pytest.mark.parametrize("method, expected", [("tau_a", 0.2009), ("spearman", 0.2963), ("pearson", 0.3335)])
def test_mit_vs_subjects_matches_source(method, expected):
    assert float(compare_rdms(_mit(), _subjects(), method).mean()) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("method, expected", [("tau_a", 0.3040), ("spearman", 0.4389), ("pearson", 0.4912)])
def test_mit_vs_group_hit_matches_source(method, expected):
    from neurobench.benchmarks.kriegeskorte2008 import _supplement

    fig1 = _supplement()["RDMs_mIT_hIT_fig1"].ravel()
    hit = np.asarray(fig1[1]["RDM"], dtype=float).reshape(1, -1)
    assert float(compare_rdms(_mit(), hit, method)[0, 0]) == pytest.approx(expected, abs=1e-4)


def test_stimuli_and_labels():
    stim = k08.load_stimuli()
    assert len(stim) == 92 and stim.ids[0] == "92obj-01"
    assert stim.labels["face"].sum() > 0 and "cat_animate" in stim.labels
    assert np.asarray(stim.images[0]).shape == (175, 175, 3)


def test_data_rdms_are_brought_to_the_benchmark_order():
    bench = nb.load_benchmark("kriegeskorte2008.hit-rsa")
    data, _ = bench.data_rdms(device=__import__("torch").device("cpu"))
    assert tuple(data.shape) == (4, 4186)


@pytest.fixture(scope="module")
def tiny_acts():
    """Cheap stand-in activations: pixels of the 92 images at two resolutions."""
    stim = k08.load_stimuli()
    imgs = np.stack([np.asarray(im, dtype=np.float32) for im in stim.images])
    return {"pixels": imgs[:, ::5, ::5].reshape(92, -1), "coarse": imgs[:, ::25, ::25].reshape(92, -1)}


def test_score_activations_headline_is_held_out(tiny_acts):
    import torch

    bench = nb.load_benchmark("kriegeskorte2008.hit-rsa")
    bench.n_bootstrap = 100
    res = bench.score_activations(tiny_acts, seed=0, device=torch.device("cpu"))
    assert res.best_layer in tiny_acts and res.ceiling_upper > res.ceiling > 0
    assert res.ci_low <= res.raw <= res.ci_high
    assert res.layers["ceiling"].iloc[0] == pytest.approx(0.2539, abs=1e-4)  # all-stimuli ceiling
    assert len(res.provenance["selection_stimuli"]) == 46
    mit = nb.load_benchmark("kriegeskorte2008.mit-rsa")
    mit.n_bootstrap = 50
    res = mit.score_activations(tiny_acts, seed=0, device=torch.device("cpu"))
    assert res.ceiling is None and res.normalized is None and "single RDM" in res.ceiling_note


@pytest.mark.slow
def test_cli_end_to_end_untrained_toporesnet18(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    code = main(["score", "--model", "toporesnet18", "--weights", "random", "--store", str(store),
                 "--device", "cpu", "--quiet"])
    assert code == 0
    captured = capsys.readouterr()
    shown = captured.out
    assert "kriegeskorte2008.hit-rsa" in shown and "[untrained]" in shown
    assert "skipped synthetic.fmri-encoding" in captured.err
    assert main(["leaderboard", "--store", str(store), "--export", str(tmp_path / "lb.csv")]) == 0
    board = nb.ResultStore(store).leaderboard()
    assert set(board["benchmark"]) == {"kriegeskorte2008.hit-rsa", "kriegeskorte2008.mit-rsa",
                                       "kriegeskorte2008.hit-trsa", "kriegeskorte2008.mit-trsa",
                                       "topo.near-far-similarity", "topo.tdann-face-smoothness", "topo.face-selectivity-clusters",
                                       "topo.effective-dim"}
    assert set(board["model"]) == {"toporesnet18-tau10"} and not board["trained"].any()


def test_trsa_benchmarks_transform_both_sides(tiny_acts):
    import torch

    from neurobench.metrics.rsa import noise_ceiling as nc
    from neurobench.metrics.trsa import gt_transform

    bench = nb.load_benchmark("kriegeskorte2008.hit-trsa")
    bench.n_bootstrap = 50
    res = bench.score_activations(tiny_acts, seed=0, device=torch.device("cpu"))
    expected_lower, _ = nc(gt_transform(_subjects()), "tau_a")
    assert res.layers["ceiling"].iloc[0] == pytest.approx(expected_lower, abs=1e-9)
    assert res.metric == "rsa-tau_a+gt-transform(l=0.2,u=0.8)"
    assert nb.load_benchmark("kriegeskorte2008.mit-trsa").comparator == "tau_a"


# ------------------------------------------------------------------ two-factor intervals (Schütt et al. 2023)

def _rsatoolbox_dual(method: str, n: int, seed: int, record: bool):
    """rsatoolbox 0.3.2's `eval_dual_bootstrap` of the mIT RDM (a fixed model) against the 4 hIT
    subject RDMs, optionally recording each draw of its `bootstrap_sample`."""
    import rsatoolbox.inference.evaluate as evaluate
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    draws, original = [], evaluate.bootstrap_sample

    def recording(data, rdm_descriptor="index", pattern_descriptor="index"):
        out = original(data, rdm_descriptor=rdm_descriptor, pattern_descriptor=pattern_descriptor)
        draws.append((np.asarray(out[2]), np.asarray(out[1])))
        return out

    if record:
        evaluate.bootstrap_sample = recording
    np.random.seed(seed)
    try:
        result = evaluate.eval_dual_bootstrap(ModelFixed("mIT", RDMs(_mit())), RDMs(_subjects().numpy()),
                                              method=method, N=n)
    finally:
        evaluate.bootstrap_sample = original
    return result, draws


def test_dual_bootstrap_equals_rsatoolbox_on_its_own_draws():
    """On rsatoolbox's draws, every resample's three evaluations and the corrected variance agree."""
    import torch

    from neurobench.metrics.inference import corrected_variance, dual_bootstrap

    ref, draws = _rsatoolbox_dual("corr", 40, seed=1, record=True)
    stim, subj = (np.stack(d) for d in zip(*draws))
    ours = dual_bootstrap(torch.tensor(_mit()), _subjects(), "pearson", 40, indices=(stim, subj))
    evaluations = ref.evaluations[:, 0, 0, 0, :]  # (N, [both, rdm, pattern])
    for k, part in enumerate((ours.both, ours.subjects, ours.stimuli)):
        np.testing.assert_allclose(part[:, 0].numpy(), evaluations[:, k], atol=1e-12)
    v = [np.var(p[:, 0].numpy(), ddof=1) for p in (ours.both, ours.subjects, ours.stimuli)]
    assert corrected_variance(*v, 4, 92) == pytest.approx(float(ref.model_var[0]), rel=1e-10)


def test_two_factor_variance_matches_rsatoolbox_within_monte_carlo_error():
    """Independent draws: neurobench's seeded 4,000 against rsatoolbox's own 300 (its RNG). The
    variances over resamples of both factors, of subjects and of stimuli each agree within 3.5
    Monte-Carlo standard errors, and so does the corrected variance (rsatoolbox's `model_var`)."""
    import torch

    from neurobench.metrics.inference import dual_bootstrap, two_factor_interval

    n_ref, n_ours = 300, 4000
    ref, _ = _rsatoolbox_dual("corr", n_ref, seed=7, record=False)
    ours = dual_bootstrap(torch.tensor(_mit()), _subjects(), "pearson", n_ours, seed=3)
    estimate = float(compare_rdms(_mit(), _subjects(), "pearson").mean())
    lo, hi, var = two_factor_interval([estimate], ours.both, ours.subjects, ours.stimuli, 4, 92)

    def se_of_variance(x):  # standard error of a sample variance of N draws, from their fourth moment
        m2, m4 = np.var(x), np.mean((x - x.mean()) ** 4)
        return np.sqrt((m4 - m2**2) / n_ref + (m4 - m2**2) / n_ours)

    for k, part in enumerate((ours.both, ours.subjects, ours.stimuli)):  # rsatoolbox: both, rdm, pattern
        x = part[:, 0].numpy()
        assert ref.variances[k, 0, 0] == pytest.approx(np.var(x, ddof=1), abs=3.5 * se_of_variance(x))
    assert float(ref.model_var[0]) == pytest.approx(var[0], abs=3.5 * se_of_variance(ours.both[:, 0].numpy()))
    assert hi[0] - lo[0] == pytest.approx(2 * 3.182446 * np.sqrt(var[0]), rel=1e-5)  # t(0.975, 3 dof)
    assert lo[0] < estimate < hi[0]


def test_hit_rsa_intervals_resample_subjects_and_stimuli(tiny_acts):
    """Multi-subject RSA reports the corrected two-factor interval (wider than stimuli alone);
    the single-RDM benchmark resamples stimuli; both are named in the result and the store."""
    import torch

    bench = nb.load_benchmark("kriegeskorte2008.hit-rsa", n_bootstrap=200)
    two = bench.score_activations(tiny_acts, seed=0, device=torch.device("cpu"))
    stim = nb.load_benchmark("kriegeskorte2008.hit-rsa", n_bootstrap=200, bootstrap="stimuli").score_activations(
        tiny_acts, seed=0, device=torch.device("cpu"))
    assert two.interval == "subjects+stimuli (Schütt 2023 corrected)" and stim.interval == "stimuli"
    assert two.normalization == "nili_lower" and two.raw == stim.raw
    assert two.ci_high - two.ci_low > stim.ci_high - stim.ci_low
    assert two.provenance["ci_variance"] > 0
    mit = nb.load_benchmark("kriegeskorte2008.mit-rsa", n_bootstrap=50).score_activations(
        tiny_acts, seed=0, device=torch.device("cpu"))
    assert mit.interval == "stimuli" and mit.normalization == "none"
