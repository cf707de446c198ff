"""Topographic metrics, where the metrics package lists them; the code is in neurobench.topography.

Re-exported here so `neurobench.metrics.topography` is the one obvious import next to ridge and
RSA; the implementation is split by job (smoothness, selectivity, spatial statistics,
dimensionality, lesions, brain coordinates) under `neurobench/topography/`.
"""

from ..topography import *  # noqa: F403
from ..topography import __all__  # noqa: F401
