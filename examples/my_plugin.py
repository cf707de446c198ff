"""A worked example: register your own model and benchmark from a separate module.

Use it with `neurobench --plugin examples/my_plugin.py score --model tiny-convnet --benchmark toy.colour-rsa`,
from Python with `import my_plugin` before `nb.score(...)`, or ship it in a package that declares
the ids it registers (names or fnmatch patterns), so that `neurobench` imports it when one is asked for:
    [project.entry-points."neurobench.models"]
    tiny-convnet = "my_plugin"
    [project.entry-points."neurobench.benchmarks"]
    "toy.*" = "my_plugin"
(a module that declares nothing goes in the "neurobench.plugins" group: `my_plugin = "my_plugin"`;
it is imported by `neurobench list` and whenever an id is not declared by any plugin).
"""

import numpy as np
import torch

import neurobench as nb


@nb.register_model("tiny-convnet", family="custom")
def tiny_convnet(seed: int = 0):
    """A two-layer conv net (random weights), for the README example."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    )
    return nb.TorchAdapter(net, layers=["1", "3", "5"], preprocess=nb.ImagePreprocess(resize=64, crop=64),
                           trained=False)


def colour_stimuli() -> nb.StimulusSet:
    """24 flat-colour images around the hue circle."""
    hues = np.linspace(0, 1, 24, endpoint=False)
    rgb = (np.stack([np.cos(2 * np.pi * (hues + k / 3)) for k in range(3)], 1) * 0.5 + 0.5) * 255
    images = [np.full((32, 32, 3), c, dtype=np.uint8) for c in rgb.round()]
    return nb.StimulusSet("colours24", [f"hue{i:02d}" for i in range(24)], images=images)


def colour_rdm():
    """The 'brain' RDM: distance between hues on the colour circle."""
    stim = colour_stimuli()
    angle = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    diff = np.abs(angle[:, None] - angle[None, :])
    rdm = np.minimum(diff, 2 * np.pi - diff)
    return stim.ids, rdm[None], "a model RDM, not brain data: no noise ceiling"


@nb.register_benchmark("toy.colour-rsa")
def colour_benchmark():
    """Toy RSA benchmark: hue-circle distances (no download needed)."""
    return nb.RSABenchmark("toy.colour-rsa", "hue circle", (), colour_stimuli, colour_rdm, comparator="spearman",
                           n_bootstrap=200)
