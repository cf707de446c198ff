"""Unit positions on the cortical sheet, and the shuffled-positions control.

A topographic result means something only if it beats the same units with their positions
shuffled: `ShuffledPositions(adapter, seed)` keeps the model and its activations exactly (and
shares their cache) but permutes each layer's units over the sheet. It works with any adapter:
a layer without a sheet of its own gets the TopoLoss near-square grid over its output units
(channels), in random order.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..errors import InvalidInputError, NoSheetPositionsError
from .adapter import Adapter
from .sheet import sheet_positions


def shuffled(positions: np.ndarray, seed: int, layer: str) -> np.ndarray:
    """`positions` permuted over units, deterministically per (seed, layer)."""
    rng = np.random.default_rng([seed, zlib.crc32(layer.encode())])
    return positions[rng.permutation(len(positions))]


class ShuffledPositions(Adapter):
    """Wraps an adapter; everything is delegated except `sheet_positions`, which is shuffled."""

    def __init__(self, inner: Adapter, seed: int = 0):
        self.inner, self.seed = inner, int(seed)

    def __getattr__(self, name):  # only called for attributes this wrapper does not have
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def identifier(self) -> str:
        # its own name in results and the leaderboard; activations (and their cache) are the inner model's
        return f"{self.inner.identifier}+{self.control}"

    @property
    def weights_id(self) -> str:
        return self.inner.weights_id

    @property
    def trained(self) -> bool:
        return self.inner.trained

    @property
    def family(self) -> str:
        return self.inner.family

    @property
    def readout(self):
        return self.inner.readout

    @readout.setter
    def readout(self, value) -> None:
        self.inner.readout = value

    def with_readout(self, readout=None, **options) -> ShuffledPositions:
        self.inner.with_readout(readout, **options)
        return self

    @property
    def precision(self) -> str:
        return self.inner.precision

    @precision.setter
    def precision(self, value: str) -> None:
        self.inner.precision = value

    def with_precision(self, precision: str = "float32") -> ShuffledPositions:
        self.inner.with_precision(precision)
        return self

    def extraction_key(self, stimuli) -> str:
        return self.inner.extraction_key(stimuli)

    @property
    def control(self) -> str:
        return f"shuffled-positions-seed{self.seed}"

    @property
    def display_name(self) -> str:
        return f"{self.inner.display_name} [{self.control}]"

    @property
    def preprocess_id(self) -> str:
        return self.inner.preprocess_id

    @property
    def extraction_id(self) -> str:
        return self.inner.extraction_id

    def layers(self):
        return self.inner.layers()

    def default_layers(self):
        return self.inner.default_layers()

    def activations(self, *args, **kwargs):
        return self.inner.activations(*args, **kwargs)

    def sheet_positions(self, layer: str) -> np.ndarray:
        pos = self.inner.sheet_positions(layer)
        if pos is None:
            n = self.inner.channels(layer) if hasattr(self.inner, "channels") else None
            if n is None:
                raise NoSheetPositionsError(
                    f"{self.inner.identifier} layer {layer!r} has no sheet and no known unit count to lay out; "
                    "choose a conv or linear layer"
                )
            pos = sheet_positions(n)
        return shuffled(np.asarray(pos), self.seed, layer)


def with_positions(adapter: Adapter, positions: str = "model", seed: int = 0) -> Adapter:
    """`positions='model'` keeps the model's layout; `'shuffled'` gives the control."""
    if positions == "model":
        return adapter
    if positions == "shuffled":
        return ShuffledPositions(adapter, seed)
    raise InvalidInputError(f"positions must be 'model' or 'shuffled', got {positions!r}")
