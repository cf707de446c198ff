"""TopoLoss (Deb, Deb & Murty, ICLR 2025): a smoothness penalty on a layer's cortical sheet.

A layer's N output units sit on the h x w grid of `neurobench.sheet` (unit c at c // w, c % w),
each carrying its incoming weight vector (in_features, or in_channels*kh*kw for a conv). The
sheet is blurred by bilinear down-sampling by (factor_h, factor_w) and up-sampling back; the
layer's loss is 1 - mean cosine similarity between each unit's weights and their blurred version,
so it is 0 for a sheet that is already smooth at that scale. Each layer's term is multiplied by
its tau and the terms are averaged over layers. Written from the paper's description and the
public `topoloss` package's documented behaviour; used here to train small test networks and to
score how far a trained layer is from smooth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidInputError, LayerError
from .sheet import sheet_shape

log = logging.getLogger(__name__)


def cortical_sheet(weight: torch.Tensor) -> torch.Tensor:
    """(out, in) or (out, in, kh, kw) weights -> (h, w, e) sheet of per-unit weight vectors."""
    if weight.ndim not in (2, 4):
        raise InvalidInputError(
            f"TopoLoss needs linear (out, in) or conv (out, in, kh, kw) weights, got shape "
            f"{tuple(weight.shape)}"
        )
    h, w = sheet_shape(weight.shape[0])
    return weight.reshape(h, w, -1)


def sheet_loss(sheet: torch.Tensor, factor_h: float, factor_w: float,
               mode: str = "bilinear") -> torch.Tensor:
    """1 - mean cosine(original, down-then-up-sampled) over the cells of an (h, w, e) sheet."""
    if sheet.ndim != 3:
        raise InvalidInputError(f"a sheet must be (h, w, e), got shape {tuple(sheet.shape)}")
    h, w, _ = sheet.shape
    if not (1 <= factor_h <= h and 1 <= factor_w <= w):
        raise InvalidInputError(
            f"down-sampling factors ({factor_h}, {factor_w}) must lie in [1, sheet size] for a "
            f"{h} x {w} sheet ({h * w} units); choose smaller factors (or 1 along a side of "
            "length 1, which happens when the unit count is prime)"
        )
    grid = sheet.permute(2, 0, 1).unsqueeze(0)  # (1, e, h, w)
    down = F.interpolate(grid, scale_factor=(1.0 / factor_h, 1.0 / factor_w), mode=mode)
    up = F.interpolate(down, size=(h, w), mode=mode)
    flat = grid.squeeze(0).flatten(1).T  # (h*w, e)
    smooth = up.squeeze(0).flatten(1).T
    return 1.0 - F.cosine_similarity(flat, smooth, dim=-1).mean()


@dataclass(frozen=True)
class TopoLossLayer:
    """Where to apply the loss and how strongly: a module name, blur factors and tau."""

    name: str
    factor_h: float = 3.0
    factor_w: float = 3.0
    tau: float = 1.0


def _weight_of(model: nn.Module, name: str) -> torch.Tensor:
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise LayerError(f"model has no module {name!r} to apply TopoLoss to") from None
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim not in (2, 4):
        raise InvalidInputError(
            f"module {name!r} ({type(module).__name__}) has no linear or conv weight; TopoLoss "
            "applies to nn.Linear / nn.Conv2d (for wrapped convs name the inner conv, e.g. "
            "'layer2.0.conv1.conv')"
        )
    return weight


class TopoLoss:
    """Mean over layers of tau * sheet_loss(layer weights); call it on the model each step."""

    def __init__(self, layers: Iterable[TopoLossLayer]):
        self.layers = list(layers)
        if not self.layers:
            raise InvalidInputError("TopoLoss needs at least one layer")

    @classmethod
    def for_model(cls, model: nn.Module, factor: float = 3.0, tau: float = 1.0,
                  include: Callable[[str, nn.Module], bool] | None = None) -> TopoLoss:
        """Every nn.Conv2d / nn.Linear (or those `include(name, module)` accepts)."""
        layers = [
            TopoLossLayer(name, factor, factor, tau)
            for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and (include is None or include(name, m))
        ]
        return cls(layers)

    def per_layer(self, model: nn.Module, scaled: bool = True) -> dict[str, torch.Tensor]:
        """Loss per layer name, multiplied by tau when scaled."""
        out = {}
        for layer in self.layers:
            sheet = cortical_sheet(_weight_of(model, layer.name))
            loss = sheet_loss(sheet, layer.factor_h, layer.factor_w)
            out[layer.name] = loss * layer.tau if scaled else loss
        return out

    def __call__(self, model: nn.Module) -> torch.Tensor:
        terms = list(self.per_layer(model).values())
        return torch.stack(terms).mean()
