"""neurobench: how brain-like is a model? Encoding, RSA and topography benchmarks on torch."""

__version__ = "0.1.0"

from .adapter import Adapter, TorchAdapter  # noqa: E402
from .api import load_benchmark, load_model, score  # noqa: E402
from .benchmark import Benchmark  # noqa: E402
from .preprocess import ImagePreprocess, imagenet_preprocess  # noqa: E402
from .registry import register_benchmark, register_metric, register_model  # noqa: E402
from .result import ScoreResult  # noqa: E402
from .stimuli import StimulusSet  # noqa: E402
from .store import ResultStore  # noqa: E402

__all__ = [
    "Adapter", "Benchmark", "ImagePreprocess", "ResultStore", "ScoreResult", "StimulusSet", "TorchAdapter",
    "imagenet_preprocess", "load_benchmark", "load_model", "register_benchmark", "register_metric",
    "register_model", "score", "__version__",
]
