"""neurobench: how brain-like is a model? Encoding, RSA and topography benchmarks on torch."""

__version__ = "0.1.0"

from .api import load_benchmark, load_model, score  # noqa: E402
from .data.stimuli import StimulusSet  # noqa: E402
from .kinds.base import Benchmark  # noqa: E402
from .models.adapter import (
    Adapter,  # noqa: E402
    TorchAdapter,  # noqa: E402
)
from .models.preprocess import (
    ImagePreprocess,  # noqa: E402
    imagenet_preprocess,  # noqa: E402
)
from .registry import register_benchmark, register_metric, register_model  # noqa: E402
from .result import ScoreResult  # noqa: E402
from .store import ResultStore  # noqa: E402

__all__ = [
    "Adapter", "Benchmark", "ImagePreprocess", "ResultStore", "ScoreResult", "StimulusSet", "TorchAdapter",
    "imagenet_preprocess", "load_benchmark", "load_model", "register_benchmark", "register_metric",
    "register_model", "score", "__version__",
]
