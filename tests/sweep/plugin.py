"""A sweep test plugin, loaded with `--plugin` on the client and on every Dask worker: three tiny
conv nets, one that raises while extracting, and three toy RSA benchmarks on 24 colour images.

`SWEEPTEST_PIDS` names a folder; while it holds a file `sleep` (seconds), every forward pass
leaves a file named after its process id there and sleeps, so a test can kill a busy worker.
"""

import os
import time
from pathlib import Path

import numpy as np
import torch

import neurobench as nb


class _Net(torch.nn.Module):
    def __init__(self, seed: int, broken: bool = False):
        super().__init__()
        torch.manual_seed(seed)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.Tanh(),
                                        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
        self.broken = broken

    def forward(self, x):
        flags = os.environ.get("SWEEPTEST_PIDS")
        if flags and Path(flags, "sleep").is_file():
            Path(flags, str(os.getpid())).touch()
            time.sleep(float(Path(flags, "sleep").read_text()))
        if self.broken:
            raise RuntimeError("sweeptest-broken always fails in its forward pass")
        return self.body(x)


def _adapter(name: str, seed: int, weights=None, broken=False):
    net = _Net(seed, broken)
    if weights not in (None, "random"):
        net.load_state_dict(torch.load(weights, weights_only=True))
    return nb.TorchAdapter(net, layers=["body.0", "body.2", "body.3"], preprocess=nb.ImagePreprocess(resize=16, crop=16),
                           identifier=name)


@nb.register_model("sweeptest-a")
def model_a(weights=None, seed: int = 0):
    """sweep test net a (checkpoints: state dicts of _Net)"""
    return _adapter("sweeptest-a", 1, weights)


@nb.register_model("sweeptest-b")
def model_b(seed: int = 0):
    """sweep test net b"""
    return _adapter("sweeptest-b", 2)


@nb.register_model("sweeptest-c")
def model_c(seed: int = 0):
    """sweep test net c"""
    return _adapter("sweeptest-c", 3)


@nb.register_model("sweeptest-broken")
def model_broken(seed: int = 0):
    """a net whose forward pass raises"""
    return _adapter("sweeptest-broken", 4, broken=True)


def colour_stimuli() -> nb.StimulusSet:
    hues = np.linspace(0, 1, 24, endpoint=False)
    rgb = (np.stack([np.cos(2 * np.pi * (hues + k / 3)) for k in range(3)], 1) * 0.5 + 0.5) * 255
    texture = np.random.default_rng(0).uniform(0.5, 1.0, size=(16, 16, 1))  # no constant activation pattern
    images = [(texture * c).round().astype(np.uint8) for c in rgb]
    return nb.StimulusSet("sweeptest-colours24", [f"hue{i:02d}" for i in range(24)], images=images)


def _rdm(power: float):
    def load():
        stim = colour_stimuli()
        angle = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        diff = np.abs(angle[:, None] - angle[None, :])
        return stim.ids, (np.minimum(diff, 2 * np.pi - diff) ** power)[None], "a model RDM: no noise ceiling"
    return load


for _name, _power, _comparator in (("sweeptest.hue-spearman", 1.0, "spearman"),
                                   ("sweeptest.hue-pearson", 1.0, "pearson"),
                                   ("sweeptest.hue2-spearman", 2.0, "spearman")):
    def _factory(name=_name, power=_power, comparator=_comparator):
        return nb.RSABenchmark(name, "toy hue-circle RSA", (), colour_stimuli, _rdm(power), comparator=comparator,
                               n_bootstrap=50)
    _factory.__doc__ = f"toy RSA ({_comparator}, distance^{_power})"
    _factory.__qualname__ = f"bench_{_name.replace('.', '_').replace('-', '_')}"
    nb.register_benchmark(_name)(_factory)
