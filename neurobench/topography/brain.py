"""Coordinates and neighbourhoods of measured data, so brain maps run through the same metrics.

Volumes: voxel centres in scanner millimetres from the image affine, in the order nilearn's
`apply_mask` / `NiftiMasker` return voxels (C order of the mask array). Surfaces: vertex
coordinates as given, with neighbours from the mesh triangles.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ..errors import InvalidInputError


def _load_img(img):
    import nibabel as nib  # optional dependency (extra "fmri")

    if isinstance(img, (str, bytes)) or hasattr(img, "__fspath__"):
        return nib.load(img)
    if not hasattr(img, "affine") or not hasattr(img, "get_fdata"):
        raise InvalidInputError(f"expected a NIfTI image or a path to one, got {type(img).__name__}")
    return img


def voxel_coordinates(mask_img) -> np.ndarray:
    """(n_voxels, 3) millimetre coordinates of the mask's non-zero voxels, in masker order."""
    from nibabel.affines import apply_affine

    img = _load_img(mask_img)
    data = np.asarray(img.get_fdata())
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InvalidInputError(f"a mask image must be 3-D, got shape {data.shape}")
    ijk = np.argwhere(data != 0)  # C order, as boolean-mask indexing in nilearn
    if ijk.size == 0:
        raise InvalidInputError("the mask image has no non-zero voxel")
    return apply_affine(img.affine, ijk)


def voxel_size(mask_img) -> float:
    """Mean voxel edge in mm, a natural radius unit for neighbourhoods in the volume."""
    img = _load_img(mask_img)
    return float(np.mean(np.sqrt((np.asarray(img.affine)[:3, :3] ** 2).sum(0))))


def mesh_graph(faces, n_vertices: int) -> sparse.csr_matrix:
    """Vertex adjacency of a triangle mesh (faces: (m, 3) vertex indices), symmetric, binary."""
    f = np.asarray(faces, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise InvalidInputError(f"faces must be (m, 3) vertex indices, got shape {f.shape}")
    if f.size and (f.min() < 0 or f.max() >= n_vertices):
        raise InvalidInputError(f"faces refer to vertices outside 0..{n_vertices - 1}")
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    a = sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n_vertices, n_vertices))
    a = ((a + a.T) > 0).astype(np.float64)
    a.setdiag(0)
    a.eliminate_zeros()
    return a.tocsr()
