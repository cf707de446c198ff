"""Topographic signatures of model layers and brain maps (issue 6).

Pure functions on (n_stimuli, n_units) responses and (n_units, d) positions: smoothness of
tuning over the sheet, category selectivity maps and patches, Moran's I, effective
dimensionality, and lesion (localised processing) effects. Two smoothness definitions: neurobench's
near-minus-far tuning similarity (`smoothness`) and TDANN's (`tdann_smoothness`). See docs/topography.md.
"""

from ._common import NO_POSITIONS_HINT, require_positions, shuffled_positions
from .brain import mesh_graph, voxel_coordinates, voxel_size
from .contrasts import Contrast, contrast_selectivity, resolve_contrasts
from .dimensionality import DimensionalityResult, effective_dimensionality, participation_ratio
from .lesion import LesionResult, RidgeReadout, lesion_effect, stratified_split
from .selectivity import (
    CategorySignature,
    ClusterResult,
    SelectivityResult,
    TMaps,
    category_t_maps,
    map_similarity,
    most_selective_patch,
    selectivity,
    selectivity_clusters,
)
from .smoothness import SmoothnessResult, smoothness
from .spatial import (
    MoranResult,
    component_sizes,
    connected_components,
    morans_i,
    neighbourhood_graph,
)
from .tdann import TDANNSmoothnessResult, tdann_category_smoothness, tdann_smoothness

__all__ = [
    "NO_POSITIONS_HINT",
    "CategorySignature",
    "ClusterResult",
    "Contrast",
    "DimensionalityResult",
    "LesionResult",
    "MoranResult",
    "RidgeReadout",
    "SelectivityResult",
    "SmoothnessResult",
    "TDANNSmoothnessResult",
    "TMaps",
    "category_t_maps",
    "component_sizes",
    "connected_components",
    "contrast_selectivity",
    "effective_dimensionality",
    "lesion_effect",
    "map_similarity",
    "mesh_graph",
    "morans_i",
    "most_selective_patch",
    "neighbourhood_graph",
    "participation_ratio",
    "require_positions",
    "resolve_contrasts",
    "selectivity",
    "selectivity_clusters",
    "shuffled_positions",
    "smoothness",
    "stratified_split",
    "tdann_category_smoothness",
    "tdann_smoothness",
    "voxel_coordinates",
    "voxel_size",
]
