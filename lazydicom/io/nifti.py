"""NIfTI output of a ``DicomFrames`` with a spatial dim, through nibabel.

NIfTI stores voxel ``(i, j, k, ...)`` to world coordinates in RAS, DICOM's
patient coordinates are LPS: the NIfTI affine is lazydicom's affine (see
``lazydicom.geometry``) with its first two rows negated. The voxel axes are
those of ``ndarray(dims)``: ``(x, y, spatial dim, other dims...)``, so the
spatial dim is moved to the third axis. The data are the array's values
(float32 when rescaled); nibabel (``pip install nibabel``) writes the file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..array import DicomFrames

__all__ = ["to_nifti", "LPS_TO_RAS"]

#: Patient LPS to NIfTI RAS (x and y flip sign).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def to_nifti(frames: DicomFrames, affine: np.ndarray, axis: int, path: str | os.PathLike,
             **read: Any) -> str:
    """Write ``frames`` to a NIfTI-1 file; ``affine`` maps voxel (x, y, k) to LPS mm.

    ``axis`` is the grid axis of the spatial dim; ``read`` goes to
    [`DicomFrames.read`][lazydicom.array.DicomFrames.read]. Returns the path.
    """
    try:
        import nibabel
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("NIfTI output needs nibabel: pip install nibabel") from None
    if frames.colour:
        raise ValueError("NIfTI output of colour frames is not supported")
    data = frames.read(**read)
    data = np.moveaxis(data, 2 + axis, 2)  # (x, y, k, other dims...)
    image = nibabel.Nifti1Image(data, LPS_TO_RAS @ affine)
    image.header.set_xyzt_units("mm")
    path = os.fspath(path)
    nibabel.save(image, path)
    return path
