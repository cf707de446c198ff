"""TopoLoss: the sheet layout, the blur-and-compare loss against a numpy reference, and training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurobench.errors import InvalidInputError, LayerError
from neurobench.models.sheet import sheet_positions
from neurobench.models.topoloss import TopoLoss, TopoLossLayer, cortical_sheet, sheet_loss
from neurobench.topography import smoothness


def _bilinear_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """1-D linear interpolation, half-pixel centres (align_corners=False); src = (o + .5) s - .5."""
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = max((o + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[o, i0] += 1 - lam
        m[o, i1] += lam
    return m


def _reference_loss(sheet: np.ndarray, f: int) -> float:
    h, w, _ = sheet.shape
    dh, dw = _bilinear_matrix(h, h // f, f), _bilinear_matrix(w, w // f, f)
    uh, uw = _bilinear_matrix(h // f, h, 1 / f), _bilinear_matrix(w // f, w, 1 / f)
    smooth = np.einsum("ai,bj,ijk->abk", uh @ dh, uw @ dw, sheet)
    a, b = sheet.reshape(h * w, -1), smooth.reshape(h * w, -1)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return 1 - cos.mean()


@pytest.mark.parametrize("n_units,factor", [(64, 2), (64, 4), (96, 2)])
def test_sheet_loss_matches_numpy_reference(n_units, factor):
    w = torch.randn(n_units, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sheet = cortical_sheet(w)
    got = float(sheet_loss(sheet, factor, factor))
    assert got == pytest.approx(_reference_loss(sheet.numpy(), factor), abs=1e-12)


def test_sheet_layout_matches_neurobench_sheet_positions():
    w = torch.arange(24.0)[:, None].repeat(1, 3)  # unit c carries the value c
    sheet = cortical_sheet(w)
    pos = sheet_positions(24)
    assert sheet.shape == (4, 6, 3)
    for c, (r, col) in enumerate(pos):
        assert float(sheet[r, col, 0]) == c
    conv = torch.randn(32, 3, 3, 3)
    assert torch.equal(cortical_sheet(conv)[1, 2], conv[1 * 8 + 2].reshape(-1))


def test_loss_is_zero_on_a_smooth_sheet_and_invariant_to_global_scale():
    same = torch.ones(64, 5)
    assert float(sheet_loss(cortical_sheet(same), 2, 2)) == pytest.approx(0.0, abs=1e-6)
    w = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    base = float(sheet_loss(cortical_sheet(w), 2, 2))
    assert base > 0.3
    assert float(sheet_loss(cortical_sheet(w * 7.5), 2, 2)) == pytest.approx(base, rel=1e-5)
    # rescaling single units changes their smoothed neighbours; the loss stays in [0, 2]
    assert 0 <= float(sheet_loss(cortical_sheet(w * torch.rand(64, 1) * 10), 2, 2)) <= 2


def test_linear_and_1x1_conv_agree_and_tau_scales():
    torch.manual_seed(0)
    lin = nn.Linear(10, 36)
    conv = nn.Conv2d(10, 36, 1)
    with torch.no_grad():
        conv.weight.copy_(lin.weight[:, :, None, None])
    model = nn.ModuleDict({"lin": lin, "conv": conv})
    loss = TopoLoss([TopoLossLayer("lin", 2, 2, tau=1.0), TopoLossLayer("conv", 2, 2, tau=3.0)])
    raw = {k: v.detach() for k, v in loss.per_layer(model, scaled=False).items()}
    assert float(raw["lin"]) == pytest.approx(float(raw["conv"]), rel=1e-6)
    scaled = {k: v.detach() for k, v in loss.per_layer(model).items()}
    assert float(scaled["conv"]) == pytest.approx(3 * float(raw["conv"]), rel=1e-6)
    total = loss(model).detach()
    assert float(total) == pytest.approx((float(scaled["lin"]) + float(scaled["conv"])) / 2)


def test_for_model_picks_conv_and_linear_layers():
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 36))
    names = [layer.name for layer in TopoLoss.for_model(model, factor=2).layers]
    assert names == ["0", "3"]
    assert torch.isfinite(TopoLoss.for_model(model, factor=2)(model).detach())


def test_bad_layers_and_factors():
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU())
    with pytest.raises(LayerError):
        TopoLoss([TopoLossLayer("nope")])(model)
    with pytest.raises(InvalidInputError, match="conv weight"):
        TopoLoss([TopoLossLayer("1")])(model)
    with pytest.raises(InvalidInputError, match="factors"):
        sheet_loss(cortical_sheet(torch.randn(16, 3)), 8, 8)  # 4 x 4 sheet
    with pytest.raises(InvalidInputError, match="factors"):
        sheet_loss(cortical_sheet(torch.randn(13, 3)), 2, 2)  # prime: a 1 x 13 sheet


def test_gradient_descent_on_topoloss_smooths_the_sheet():
    lin = nn.Linear(12, 64)
    loss = TopoLoss([TopoLossLayer("0", 2, 2)])
    model = nn.Sequential(lin)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = loss(model).item()
    for _ in range(50):
        opt.zero_grad()
        loss(model).backward()
        opt.step()
    assert loss(model).item() < before / 2


def _train(tau: float, seed: int = 0, steps: int = 300):
    """A 20 -> 64 -> 4 MLP on Gaussian classes; TopoLoss on the 64-unit layer when tau > 0."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 20, generator=g) * 2
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    topo = TopoLoss([TopoLossLayer("0", 2, 2, tau=tau)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        y = torch.randint(0, 4, (128,), generator=g)
        x = centres[y] + torch.randn(128, 20, generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        if tau > 0:
            loss = loss + topo(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
    y = torch.arange(4).repeat_interleave(50)
    x = centres[y] + torch.randn(200, 20, generator=g)
    with torch.no_grad():
        hidden = model[0](x)  # pre-activation responses: no dead (constant) units
        acc = float((model(x).argmax(1) == y).float().mean())
    return model, hidden.numpy(), acc


def test_training_with_topoloss_scores_smoother_than_without():
    pos = sheet_positions(64)
    plain, h_plain, acc_plain = _train(tau=0.0)
    topo, h_topo, acc_topo = _train(tau=5.0)
    assert acc_plain > 0.9 and acc_topo > 0.9  # both still solve the task
    s_plain = smoothness(h_plain, pos, n_perm=100)
    s_topo = smoothness(h_topo, pos, n_perm=100)
    assert s_topo.score > s_plain.score + 0.2 and s_topo.p_value <= 0.01
    w_plain = smoothness(plain[0].weight.detach().numpy().T, pos, n_perm=100)
    w_topo = smoothness(topo[0].weight.detach().numpy().T, pos, n_perm=100)
    assert w_topo.score > w_plain.score + 0.2
    assert abs(s_plain.score) < 0.15
