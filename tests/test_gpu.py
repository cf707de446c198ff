"""GPU results equal CPU ones (marked `gpu`: skipped without CUDA; `make gpu-check` runs them)."""

import numpy as np
import pytest
import torch

import neurobench as nb
from neurobench.kinds.encoding import score_encoding
from neurobench.metrics.ridge import cross_validated_encoding
from neurobench.metrics.rsa import compare_rdms

pytestmark = pytest.mark.gpu


def _problem(n=300, p=40, t=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, t)) / np.sqrt(p) + rng.standard_normal((n, t))
    return X, Y


def test_ridge_on_cuda_matches_cpu():
    X, Y = _problem()
    cpu = cross_validated_encoding(X, Y, 5, device="cpu", dtype="float64")
    gpu = cross_validated_encoding(X, Y, 5, device="cuda", dtype="float64")
    np.testing.assert_allclose(gpu.r, cpu.r, atol=1e-9)
    np.testing.assert_array_equal(gpu.alphas, cpu.alphas)
    small = cross_validated_encoding(X, Y, 5, device="cuda", dtype="float64", memory_budget=4_000_000)
    np.testing.assert_allclose(small.r, cpu.r, atol=1e-9)


def test_score_encoding_on_cuda_matches_cpu_with_spilled_targets():
    X, Y = _problem()
    rng = np.random.default_rng(1)
    responses = Y[:, None, :] + rng.standard_normal((300, 4, 120))
    ids = [f"s{i}" for i in range(300)]
    args = dict(splits=5, inner_cv=3, n_bootstrap=100, seed=0, dtype="float64")
    cpu = score_encoding({"x": X}, responses, ids, ids, device="cpu", **args)
    gpu = score_encoding({"x": X}, responses, ids, ids, device="cuda", memory_budget=3_000_000, **args)
    assert gpu.raw == pytest.approx(cpu.raw, abs=1e-9) and gpu.ci_low == pytest.approx(cpu.ci_low, abs=1e-9)


def test_extraction_on_cuda_pinned_copies_and_half_precision(fresh_home):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(32, 5))
    rng = np.random.default_rng(0)
    s = nb.StimulusSet("g", [f"i{k}" for k in range(20)],
                       images=[rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(20)])

    def adapter():
        return nb.TorchAdapter(net, layers=["0", "4"], preprocess=nb.ImagePreprocess(resize=24, crop=24))

    cpu = adapter().activations(s, device="cpu", cache=False)
    gpu = adapter().activations(s, device="cuda", batch_size=6)
    half = adapter().with_precision("float16").activations(s, device="cuda", batch_size=6)
    for layer in cpu:
        np.testing.assert_allclose(gpu[layer], cpu[layer], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(half[layer], cpu[layer], rtol=2e-2, atol=2e-2)
    pca = adapter().with_readout("pca=4").activations(s, device="cuda", layers=["0"], cache=False)["0"]
    assert pca.shape == (20, 4) and np.isfinite(pca).all()


@pytest.mark.parametrize("method", ["tau_a", "spearman", "pearson"])
def test_rdm_comparators_on_cuda_match_cpu(method):
    rng = np.random.default_rng(0)
    x, y = rng.random((30, 4186)), rng.random((4, 4186))
    cpu = compare_rdms(torch.as_tensor(x), torch.as_tensor(y), method).numpy()
    gpu = compare_rdms(torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda"), method).cpu().numpy()
    np.testing.assert_allclose(gpu, cpu, atol=1e-10)
