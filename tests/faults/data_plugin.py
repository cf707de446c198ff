"""A plugin for the data-side fault tests (loaded with `neurobench --plugin`): a pixel model and
RSA benchmarks whose data come through the data layer.

- model `faults-pixels`: 8x8 average-pooled pixels (layer "1"), so its RDM follows image content;
- `faults.npy-rsa`: 24 colour images against the RDM in the manifest file faultset/rdm.npy;
- `faults.images-rsa`: the images of the folder $FAULTS_IMAGES (any bit depth) against the
  correlation-distance RDM of their reference pixels; `faults.reference-rsa`: the same images given as the uint8 arrays
  in $FAULTS_IMAGES/reference.npy (the reference conversion);
- model `faults-net`: weights from a URL source checked by the sha256 prefix of its file name
  ($FAULTS_WEIGHTS_FILE), for `neurobench fetch faults-net`.
"""

import os
from pathlib import Path

import numpy as np
import torch

import neurobench as nb
from neurobench.data.files import resolve
from neurobench.models.weights import WeightSource

IDS = [f"hue{i:02d}" for i in range(24)]


@nb.register_model("faults-pixels", family="custom")
def pixels(seed: int = 0):
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(8), torch.nn.Flatten())
    return nb.TorchAdapter(net, layers=["1"], preprocess=nb.ImagePreprocess(resize=32, crop=32), trained=False)


def colours() -> nb.StimulusSet:
    hues = np.linspace(0, 1, 24, endpoint=False)
    rgb = (np.stack([np.cos(2 * np.pi * (hues + k / 3)) for k in range(3)], 1) * 0.5 + 0.5) * 255
    return nb.StimulusSet("colours24", IDS, images=[np.full((32, 32, 3), c, dtype=np.uint8) for c in rgb.round()])


def npy_rdm():
    rdm = np.load(resolve("faultset", "rdm.npy"))
    return IDS, rdm[None], "toy: no noise ceiling"


@nb.register_benchmark("faults.npy-rsa")
def npy_benchmark():
    return nb.RSABenchmark("faults.npy-rsa", "colours vs faultset/rdm.npy", ("faultset",), colours, npy_rdm,
                           comparator="spearman", n_bootstrap=20)


def _folder() -> Path:
    return Path(os.environ["FAULTS_IMAGES"])


def folder_images() -> nb.StimulusSet:
    return nb.StimulusSet.from_folder(_folder(), "faults-images")


def reference_images() -> nb.StimulusSet:
    ids = folder_images().ids
    arrays = np.load(_folder() / "reference.npy")
    return nb.StimulusSet("faults-reference", ids, images=list(arrays))


def pixel_rdm():
    """1 - Pearson RDM of the reference pixels; files a test added after the reference was written
    (e.g. a decompression bomb) get seeded random patterns, so the data RDM is valid and the run
    reaches the images themselves."""
    ids = folder_images().ids
    reference = np.load(_folder() / "reference.npy")
    pixels = reference.reshape(len(reference), -1).astype(np.float64)
    extra = np.random.default_rng(0).standard_normal((len(ids) - len(pixels), pixels.shape[1]))
    return ids, (1 - np.corrcoef(np.vstack([pixels, extra])))[None], "toy: no noise ceiling"


@nb.register_benchmark("faults.images-rsa")
def images_benchmark():
    return nb.RSABenchmark("faults.images-rsa", "image files", (), folder_images, pixel_rdm,
                           comparator="spearman", n_bootstrap=20)


@nb.register_benchmark("faults.reference-rsa")
def reference_benchmark():
    return nb.RSABenchmark("faults.reference-rsa", "uint8 reference", (), reference_images, pixel_rdm,
                           comparator="spearman", n_bootstrap=20)


# Weights: a URL source checked by the sha256 prefix in its file name ($FAULTS_WEIGHTS_FILE).
WEIGHTS = WeightSource(os.environ.get("FAULTS_WEIGHTS_FILE", "faults-net-00000000.pth"),
                       url="https://weights.invalid/faults-net.pth", cache="faults-weights", sha256="file-name")


@nb.register_model("faults-net", family="custom", weights=WEIGHTS)
def faults_net(weights=None, seed: int = 0):
    if weights is None:
        WEIGHTS.fetch()  # verified before any use
    return pixels(seed)
