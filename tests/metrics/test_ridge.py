"""Cross-validated ridge: agreement with scikit-learn and himalaya, and bad-input handling."""

import re

import numpy as np
import pytest
import torch

from neurobench.errors import InvalidInputError, MemoryBudgetError
from neurobench.memory import parse_size
from neurobench.metrics import ridge as R
from neurobench.metrics.ridge import RidgeCV, cross_validated_encoding, ridge_cv_multi
from neurobench.metrics.splits import Splits, kfold_splits

sklearn = pytest.importorskip("sklearn")
from sklearn.linear_model import Ridge as SkRidge  # noqa: E402
from sklearn.linear_model import RidgeCV as SkRidgeCV  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

ALPHAS = np.logspace(-2, 6, 9)
SHAPES = [(40, 90, 1), (40, 90, 12), (150, 25, 1), (150, 25, 12), (60, 60, 5)]


def problem(n, p, t, seed=0, offset=3.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + offset
    W = rng.standard_normal((p, t)) * rng.uniform(0.01, 1, size=t) / np.sqrt(p)
    Y = (X - offset) @ W * 3 + rng.standard_normal((n, t)) + offset
    return X, Y


@pytest.mark.parametrize("n,p,t", SHAPES)
def test_fixed_alpha_matches_sklearn_ridge(n, p, t):
    X, Y = problem(n, p, t)
    for alpha in (0.1, 30.0):
        ours = RidgeCV([alpha], cv=3, dtype="float64", device="cpu").fit(X, Y)
        ref = SkRidge(alpha=alpha, fit_intercept=True).fit(X, Y)
        np.testing.assert_allclose(ours.coef_, np.reshape(ref.coef_, (t, p)).T, atol=1e-5)
        np.testing.assert_allclose(ours.intercept_, np.reshape(ref.intercept_, t), atol=1e-5)
        np.testing.assert_allclose(ours.predict(X), np.reshape(ref.predict(X), (n, t)), atol=1e-5)


@pytest.mark.parametrize("n,p", [(40, 90), (150, 25)])
def test_single_target_matches_sklearn_ridgecv_same_folds(n, p):
    X, Y = problem(n, p, 1, seed=2)
    folds = list(KFold(5).split(X))
    ref = SkRidgeCV(alphas=ALPHAS, cv=folds, fit_intercept=True).fit(X, Y[:, 0])
    ours = RidgeCV(ALPHAS, cv=folds, dtype="float64", device="cpu", scoring="r2").fit(X, Y[:, 0])
    assert ours.best_alphas_[0] == pytest.approx(ref.alpha_)
    np.testing.assert_allclose(ours.coef_[:, 0], ref.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-5)


@pytest.mark.parametrize("n,p,t", SHAPES)
def test_matches_himalaya_ridgecv_same_folds(n, p, t):
    himalaya = pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV as HRidgeCV

    set_backend("torch")
    X, Y = problem(n, p, t, seed=3)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    ref = HRidgeCV(alphas=ALPHAS, cv=folds, fit_intercept=True, solver_params={"warn": False})
    ref.fit(torch.tensor(X), torch.tensor(Y))
    ours = RidgeCV(ALPHAS, cv=folds, dtype="float64", device="cpu").fit(X, Y)
    np.testing.assert_allclose(ours.best_alphas_, ref.best_alphas_.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.cv_scores_, ref.cv_scores_.numpy(), atol=1e-5)
    assert himalaya is not None


@pytest.mark.parametrize("n,p,t", [(60, 150, 20), (200, 30, 20)])
def test_nested_encoding_matches_himalaya_on_held_out_rows(n, p, t):
    pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV as HRidgeCV

    set_backend("torch")
    X, Y = problem(n, p, t, seed=4)
    outer = kfold_splits(n, 3, seed=0)
    res = cross_validated_encoding(X, Y, outer, ALPHAS, inner_cv=4, seed=5, dtype="float64",
                                   device="cpu", return_predictions=True)
    for k, (tr, te) in enumerate(outer):
        inner = [(tr_i, va_i) for tr_i, va_i in kfold_splits(len(tr), 4, seed=5)]
        ref = HRidgeCV(alphas=ALPHAS, cv=inner, fit_intercept=True, solver_params={"warn": False})
        ref.fit(torch.tensor(X[tr]), torch.tensor(Y[tr]))
        pred = ref.predict(torch.tensor(X[te])).numpy()
        np.testing.assert_allclose(res.predictions[te], pred, atol=1e-5)
        np.testing.assert_allclose(res.alphas[k], ref.best_alphas_.numpy())
        rr = [np.corrcoef(pred[:, j], Y[te, j])[0, 1] for j in range(t)]
        np.testing.assert_allclose(res.r_folds[k], rr, atol=1e-5)
    np.testing.assert_allclose(res.r, res.r_folds.mean(0))
    assert res.record["n_outer"] == 3 and res.splits is outer


def test_float32_default_close_to_float64():
    X, Y = problem(120, 200, 30, seed=6, offset=50.0)  # large offsets: centring must come first
    r64 = cross_validated_encoding(X, Y, 4, ALPHAS, dtype="float64", device="cpu").r
    r32 = cross_validated_encoding(X, Y, 4, ALPHAS, device="cpu").r
    np.testing.assert_allclose(r32, r64, atol=1e-3)


def test_small_memory_budget_chunks_targets_with_identical_results():
    X, Y = problem(50, 40, 64, seed=7)
    big = cross_validated_encoding(X, Y, 3, ALPHAS, dtype="float64", device="cpu")
    need = R._memory_plan(50, 40, 34, 34, 17, 9, 64, 8, 10**12, False)
    assert need == 64
    small = cross_validated_encoding(X, Y, 3, ALPHAS, dtype="float64", device="cpu",
                                     memory_budget=220_000)
    np.testing.assert_allclose(small.r, big.r, atol=1e-12)
    np.testing.assert_array_equal(small.alphas, big.alphas)


def test_direct_and_projected_operators_agree(monkeypatch):
    X, Y = problem(80, 20, 6, seed=8)  # primal: projection is cheaper for few targets
    a = cross_validated_encoding(X, Y, 3, ALPHAS, dtype="float64", device="cpu",
                                 return_predictions=True)
    orig = R._Operator.__init__

    def force_direct(self, dec, alphas, n_targets):
        orig(self, dec, alphas, 10**9)

    monkeypatch.setattr(R._Operator, "__init__", force_direct)
    b = cross_validated_encoding(X, Y, 3, ALPHAS, dtype="float64", device="cpu",
                                 return_predictions=True)
    np.testing.assert_allclose(a.predictions, b.predictions, atol=1e-9)


def test_several_layers_in_one_call_equal_separate_calls():
    X, Y = problem(60, 30, 8, seed=9)
    X2 = np.random.default_rng(0).standard_normal((60, 70))
    multi = ridge_cv_multi({"a": X, "b": X2}, Y, 3, ALPHAS, dtype="float64", device="cpu")
    assert set(multi) == {"a", "b"}
    single = cross_validated_encoding(X2, Y, 3, ALPHAS, dtype="float64", device="cpu")
    np.testing.assert_allclose(multi["b"].r, single.r)
    assert multi["a"].record["layer"] == "a"


def test_grouped_repeats_never_straddle_in_ridge_cv():
    X, Y = problem(60, 10, 3, seed=10)
    ids = np.repeat(np.arange(20), 3)
    res = cross_validated_encoding(X, Y, 4, ALPHAS, groups=ids, device="cpu")
    for tr, te in res.splits:
        assert not set(ids[tr]) & set(ids[te])


# ----------------------------------------------------------------------------- bad input
def test_nan_or_inf_is_an_error_naming_where():
    X, Y = problem(30, 10, 3)
    Xb = X.copy()
    Xb[4, 2] = np.nan
    with pytest.raises(InvalidInputError, match=r"features.*row 4, column 2"):
        cross_validated_encoding(Xb, Y, 3, device="cpu")
    Yb = Y.copy()
    Yb[7, 1] = np.inf
    with pytest.raises(InvalidInputError, match=r"targets Y.*row 7, column 1"):
        RidgeCV(cv=3, device="cpu").fit(X, Yb)


def test_constant_target_gives_nan_r_and_is_counted_constant_feature_is_harmless():
    X, Y = problem(60, 10, 4, seed=11)
    Y[:, 2] = 5.0
    Xc = np.concatenate([X, np.full((60, 1), 7.0)], 1)
    res = cross_validated_encoding(Xc, Y, 3, ALPHAS, dtype="float64", device="cpu")
    assert np.isnan(res.r[2]) and res.constant_targets.tolist() == [False, False, True, False]
    assert res.n_constant == 1 and res.n_undefined == 1 and res.summary()["n_constant"] == 1
    ref = cross_validated_encoding(X, Y, 3, ALPHAS, dtype="float64", device="cpu")
    np.testing.assert_allclose(np.delete(res.r, 2), np.delete(ref.r, 2), atol=1e-10)
    assert np.isfinite(np.delete(res.r, 2)).all()


def test_fewer_stimuli_than_folds_is_an_error():
    X, Y = problem(4, 3, 2)
    with pytest.raises(InvalidInputError, match="4 distinct stimuli"):
        cross_validated_encoding(X, Y, 5, device="cpu")
    with pytest.raises(InvalidInputError, match="distinct stimuli"):
        RidgeCV(cv=10, device="cpu").fit(X, Y)


def test_memory_budget_too_small_says_minimum_and_that_minimum_works():
    X, Y = problem(30, 10, 3)
    with pytest.raises(MemoryBudgetError, match=r"at least (\S+) \(") as info:
        cross_validated_encoding(X, Y, 3, device="cpu", memory_budget=1000)
    figure = re.search(r"at least (\S+) \(", str(info.value)).group(1)
    budget = parse_size(figure)
    res = cross_validated_encoding(X, Y, 3, device="cpu", memory_budget=budget)
    full = cross_validated_encoding(X, Y, 3, device="cpu")
    np.testing.assert_allclose(res.r, full.r, rtol=1e-5, atol=1e-6)
    with pytest.raises(MemoryBudgetError):
        cross_validated_encoding(X, Y, 3, device="cpu", memory_budget=budget - 1000)


def test_mismatched_rows_and_bad_alphas_are_errors():
    X, Y = problem(30, 10, 3)
    with pytest.raises(InvalidInputError, match="30"):
        cross_validated_encoding(X[:20], Y, 3, device="cpu")
    with pytest.raises(InvalidInputError, match="alphas"):
        cross_validated_encoding(X, Y, 3, alphas=[1.0, -1.0], device="cpu")
    with pytest.raises(InvalidInputError, match="scoring"):
        cross_validated_encoding(X, Y, 3, scoring="acc", device="cpu")
    outer = Splits("custom", None, [(np.arange(10), np.arange(10, 40))], 40)
    with pytest.raises(InvalidInputError, match="rows"):
        cross_validated_encoding(X, Y, outer, device="cpu")


def test_perf_harness_neurobench_and_himalaya_agree_in_process():
    pytest.importorskip("himalaya")
    from neurobench.perf import ridge as perf

    X, Y = perf.make_problem(120, 60, 15, seed=0, dtype="float64")
    train, test, inner = perf.make_splits(120, 5, 0.2, 0)
    assert len(test) == 24 and len(inner) == 5
    cfg = {"device": "cpu", "dtype": "float64", "memory_budget": None}
    a = perf._fit_predict("neurobench", X, Y, train, test, inner, ALPHAS, cfg)
    b = perf._fit_predict("himalaya", X, Y, train, test, inner, ALPHAS, cfg)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert perf.parse_alphas("3").tolist() == [0.01, 100.0, 1e6]
    assert perf.parse_alphas("1,2").tolist() == [1.0, 2.0]


@pytest.mark.slow
def test_perf_run_reports_every_tool():
    import argparse

    from neurobench.perf import add_arguments
    from neurobench.perf import ridge as perf

    parser = argparse.ArgumentParser()
    add_arguments("ridge", parser)
    args = parser.parse_args("--n 200 --p 50 --t 40 --repeats 1".split())
    rows = perf.run(args)
    by = {r["tool"]: r for r in rows}
    assert "error" not in by["neurobench"] and by["neurobench"]["peak_mb"] > 0
    if "himalaya" in by:
        assert abs(by["himalaya"]["mean_r"] - by["neurobench"]["mean_r"]) < 1e-3
    assert "nb faster" in perf.format_table(rows)


# ----------------------------------------------------------------------------- alpha grids
def test_relative_grid_is_the_relative_values_times_the_mean_kernel_eigenvalue():
    X, Y = problem(60, 150, 5, seed=12)
    outer = kfold_splits(60, 3, seed=0)
    res = cross_validated_encoding(X, Y, outer, dtype="float64", device="cpu")
    for k, (tr, _te) in enumerate(outer):
        Xc = X[tr] - X[tr].mean(0)
        expected = np.asarray(R.DEFAULT_RELATIVE_ALPHAS) * np.trace(Xc @ Xc.T) / len(tr)
        np.testing.assert_allclose(res.alpha_grids[k], expected, rtol=1e-10)
        assert set(np.unique(res.alphas[k])) <= set(res.alpha_grids[k])
    rec = res.record["alpha_grid"]
    assert rec["kind"].startswith("relative") and rec["values"] == list(R.DEFAULT_RELATIVE_ALPHAS)
    np.testing.assert_allclose(rec["absolute_per_fold"], res.alpha_grids)
    # the estimator: the same grid from all rows; explicit absolute alphas are used as given
    est = RidgeCV(cv=3, dtype="float64", device="cpu").fit(X, Y)
    Xc = X - X.mean(0)
    np.testing.assert_allclose(est.alphas_, np.asarray(R.DEFAULT_RELATIVE_ALPHAS) * (Xc**2).sum() / 60, rtol=1e-10)
    assert RidgeCV(ALPHAS, cv=3, dtype="float64", device="cpu").fit(X, Y).alphas_.tolist() == ALPHAS.tolist()
    with pytest.raises(InvalidInputError, match="not both"):
        cross_validated_encoding(X, Y, 3, alphas=ALPHAS, relative_alphas=[1.0], device="cpu")


@pytest.mark.parametrize("n,p", [(60, 150), (150, 25)])  # dual and primal forms
def test_relative_grid_makes_the_fit_independent_of_feature_scale_and_copies(n, p):
    X, Y = problem(n, p, 6, seed=13)
    base = cross_validated_encoding(X, Y, 3, dtype="float64", device="cpu", return_predictions=True)
    scaled = cross_validated_encoding(X * 1e3, Y, 3, dtype="float64", device="cpu", return_predictions=True)
    doubled = cross_validated_encoding(np.hstack([X, X]), Y, 3, dtype="float64", device="cpu",
                                       return_predictions=True)
    for other in (scaled, doubled):
        np.testing.assert_allclose(other.predictions, base.predictions, atol=1e-8)
        np.testing.assert_array_equal(other.alpha_index, base.alpha_index)
    np.testing.assert_allclose(scaled.alpha_grids, base.alpha_grids * 1e6, rtol=1e-10)
    # an absolute grid is not: the same alphas on 1000x the features regularise a million times less
    fixed = cross_validated_encoding(X * 1e3, Y, 3, ALPHAS, dtype="float64", device="cpu", return_predictions=True)
    assert not np.allclose(fixed.predictions, base.predictions, atol=1e-3)


def _check_wide_layer(p: int, t: int, seed: int, folds: int, compare_old: bool):
    """n=300 stimuli, a ReLU layer of p units with large activations, targets at signal/noise 0.15
    (`neurobench.perf.alphagrid`); the oracle is a numpy float64 kernel ridge with one alpha for all."""
    from neurobench.perf.alphagrid import OLD_DEFAULT, fixed_alpha_oracle, wide_layer

    X, Y = wide_layer(p, t, seed)
    outer = kfold_splits(300, folds, seed=0)
    ours = cross_validated_encoding(X, Y, outer, inner_cv=5, device="cpu")  # the default: relative grid
    oracle = fixed_alpha_oracle(X, Y, outer, np.logspace(0, 14, 57))
    at_top = (ours.alpha_index == ours.alpha_grids.shape[1] - 1).mean()  # over (target, outer fold) choices
    assert at_top < 0.05 and ours.alpha_edges() == (0, 0)
    assert np.median(ours.r) > oracle - 0.01
    if compare_old:  # the old absolute default, logspace(-2, 6, 9): (nearly) every target at its top, r lost
        old = cross_validated_encoding(X, Y, outer, OLD_DEFAULT, inner_cv=5, device="cpu")
        assert old.alpha_edges()[1] > 0.9 * t and np.median(old.r) < np.median(ours.r) - 0.005


def test_wide_layer_relative_grid_reaches_the_fixed_alpha_oracle():
    """p = 100,000 float32 units, 300 stimuli, low SNR, 3 outer folds (fast version of the slow
    test below)."""
    _check_wide_layer(100_000, 32, seed=0, folds=3, compare_old=False)


@pytest.mark.slow
def test_wide_layer_relative_grid_reaches_the_fixed_alpha_oracle_200k():
    """p = 200,000 units, 300 stimuli, 200 targets at low SNR, 5 outer folds; the old absolute grid
    fails the same checks."""
    _check_wide_layer(200_000, 200, seed=1, folds=5, compare_old=True)
