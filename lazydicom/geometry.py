"""Where voxels are in the patient: the affine of an array with a spatial dim.

DICOM places a frame in patient coordinates (LPS, millimetres) by its
ImagePositionPatient (the centre of its first pixel), ImageOrientationPatient
(the directions of increasing column and increasing row) and PixelSpacing
(row spacing, column spacing). For ``ndarray(dims)`` with shape ``(x, y, ...)``
and one spatial dim at axis ``k`` (``SlicePosition``, ``ImagePositionPatient``
or ``SliceLocation``), voxel ``(x, y, k)`` is at::

    IPP_0 + x * PixelSpacing[1] * row_direction
          + y * PixelSpacing[0] * column_direction
          + k * slice_step

which is the 4x4 matrix [`affine`][lazydicom.geometry.affine] returns, as ITK/SimpleITK use it
(origin, spacing and direction; DICOM's LPS, not NIfTI's RAS). It is exact
only when every frame agrees with it: the same orientation and pixel spacing
(parallel slices), and positions evenly spaced along one line. Anything else
is a [`GeometryError`][lazydicom.GeometryError] that says what differs, never an approximate matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GeometryError

if TYPE_CHECKING:
    import pandas as pd

    from .grid import Grid

__all__ = ["GeometryError", "SPATIAL_DIMS", "affine", "spatial_axis", "pixel_spacing"]

#: Dims whose values place a frame along the slice direction.
SPATIAL_DIMS = ("SlicePosition", "ImagePositionPatient", "SliceLocation")
_TOLERANCE_MM = 1e-3  # positions agree to a micrometre (DS values carry ~16 digits)
_TOLERANCE_DIRECTION = 1e-4


def spatial_axis(dims: Sequence[str], dim: str | None = None) -> int:
    """The position in ``dims`` of the spatial dim (``dim`` if given)."""
    if dim is not None:
        if dim not in dims:
            raise GeometryError(f"{dim!r} is not one of the dims {tuple(dims)}")
        return list(dims).index(dim)
    found = [i for i, d in enumerate(dims) if d in SPATIAL_DIMS]
    if len(found) != 1:
        raise GeometryError(
            f"an affine needs exactly one spatial dim among {tuple(dims)} (one of "
            f"{SPATIAL_DIMS}); found {len(found)}. Pass dim= to choose one."
        )
    return found[0]


def _vector(value: Any, n: int, what: str, where: Callable[[], str]) -> np.ndarray:
    """``value`` as ``n`` finite floats; ``where()`` names the frame in the error."""
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.size != n or not np.isfinite(arr).all():
        raise GeometryError(f"{where()} has no valid {what} ({value!r})")
    return arr


def pixel_spacing(table: pd.DataFrame) -> tuple[float, float] | None:
    """``(row spacing, column spacing)`` in mm when every frame has the same, else None."""
    if "PixelSpacing" not in table.columns or not len(table):
        return None
    values = {tuple(v) if isinstance(v, tuple | list) else v for v in table["PixelSpacing"]}
    if len(values) != 1:
        return None
    (value,) = values
    try:
        row, col = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (row, col) if row > 0 and col > 0 else None


def affine(table: pd.DataFrame, grid: Grid, axis: int) -> np.ndarray:
    """The 4x4 matrix from voxel ``(x, y, k)`` to patient LPS mm; ``k`` along grid ``axis``.

    Parameters
    ----------
    table : pandas.DataFrame
        Index rows; ``grid.cells`` holds positions in it.
    grid : Grid
        The grid of the array (its cells as table positions, -1 empty).
    axis : int
        The grid axis of the spatial dim.

    Raises
    ------
    GeometryError
        Frames with other orientations or pixel spacings, positions that are not
        on one line or not evenly spaced (with the spacings found), or no frame.
    """
    cells = grid.cells
    if cells.ndim == 0 or not (cells >= 0).any():
        raise GeometryError("no frame: an affine needs at least one")
    rows = cells[cells >= 0]
    sub = table.iloc[rows]
    where = lambda i: repr(table["path"].iloc[i])  # noqa: E731
    first = int(rows[0])

    def column(name: str) -> list[Any]:  # the values of ``rows``: one pandas access, not one a row
        return sub[name].tolist()

    iop = _vector(table["ImageOrientationPatient"].iloc[first], 6, "ImageOrientationPatient",
                  lambda: where(first)) if "ImageOrientationPatient" in table else None
    if iop is None:
        raise GeometryError("the frames have no ImageOrientationPatient")
    spacing = pixel_spacing(sub)
    if spacing is None:
        raise GeometryError("the frames have no PixelSpacing, or not the same one "
                            f"({sorted({str(v) for v in sub.get('PixelSpacing', [])})[:4]})")
    for i, value in zip(rows.tolist(), column("ImageOrientationPatient")):
        other = _vector(value, 6, "ImageOrientationPatient", lambda: where(i))  # noqa: B023
        if np.abs(other - iop).max() > _TOLERANCE_DIRECTION:
            raise GeometryError(
                f"the slices are not parallel: {where(first)} has ImageOrientationPatient "
                f"{iop.tolist()}, {where(i)} {other.tolist()}")
    row_dir, col_dir = iop[:3], iop[3:]
    if "ImagePositionPatient" not in table:
        raise GeometryError("the frames have no ImagePositionPatient")
    positions = np.stack([_vector(value, 3, "ImagePositionPatient", lambda: where(i))  # noqa: B023
                          for i, value in zip(rows.tolist(), column("ImagePositionPatient"))])
    index = np.stack(np.nonzero(cells >= 0), axis=1)[:, axis] if cells.ndim else np.zeros(1)
    # positions must depend on k alone: every cell of one k at the same place
    n = cells.shape[axis]
    per_k = np.full((n, 3), np.nan)
    for k, pos, row in zip(index.tolist(), positions, rows.tolist()):
        if np.isnan(per_k[k]).any():
            per_k[k] = pos
        elif np.abs(per_k[k] - pos).max() > _TOLERANCE_MM:
            raise GeometryError(
                f"frames at the same index {k} of the spatial dim are at different positions "
                f"({per_k[k].tolist()} and {pos.tolist()} in {where(row)})")
    known = np.flatnonzero(~np.isnan(per_k[:, 0]))
    if known.size >= 2:
        steps = (per_k[known[1:]] - per_k[known[:-1]]) / np.diff(known)[:, None]
        step = (per_k[known[-1]] - per_k[known[0]]) / (known[-1] - known[0])
        off = np.abs(steps - step).max()
        if off > _TOLERANCE_MM * max(1.0, float(np.abs(step).max())):
            found = sorted({round(float(np.linalg.norm(s)), 4) for s in steps})
            raise GeometryError(
                f"the slices are not evenly spaced: spacings of {found[:8]} mm between "
                "neighbours; select evenly spaced slices (coords=) or resample")
        origin = per_k[known[0]] - known[0] * step
    else:
        step = np.cross(row_dir, col_dir)  # one slice: unit step along the normal
        thickness = _thickness(sub)
        step = step * (thickness if thickness else 1.0)
        origin = per_k[known[0]] - known[0] * step
    matrix = np.eye(4)
    matrix[:3, 0] = row_dir * spacing[1]
    matrix[:3, 1] = col_dir * spacing[0]
    matrix[:3, 2] = step
    matrix[:3, 3] = origin
    return matrix


def _thickness(table: pd.DataFrame) -> float | None:
    for column in ("SpacingBetweenSlices", "SliceThickness"):
        if column in table.columns:
            values = [v for v in table[column].tolist() if isinstance(v, int | float)
                      and not math.isnan(v) and v > 0]
            if values:
                return float(values[0])
    return None
