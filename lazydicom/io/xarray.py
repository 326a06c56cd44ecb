"""A lazy, labelled ``xarray.DataArray`` of a [`DicomFrames`][lazydicom.array.DicomFrames].

Dims ``("x", "y", *dims)`` (and ``"rgb"`` for colour), a coordinate per dim
holding the grid's values (see ``lazydicom.io.labels.coordinates``), the
series' attributes, and the dask array of the frames as data, so nothing is
read until it is computed and selections read only their frames.
xarray is an optional dependency: ``pip install 'lazydicom[xarray]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .labels import cell_labels, coordinates

if TYPE_CHECKING:
    import pandas as pd
    import xarray

    from ..array import DicomFrames

__all__ = ["to_xarray", "need_xarray"]


def need_xarray() -> Any:
    """The xarray module, or an ImportError naming the extra to install."""
    try:
        import xarray
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Labelled output needs xarray: pip install 'lazydicom[xarray]'") from None
    return xarray


def labels(frames: DicomFrames) -> dict[str, tuple[str, np.ndarray]]:
    """The coordinates of every axis of ``frames`` that has values."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    for dim, values in zip(frames.dims[2:], frames.grid.coords):
        out.update(coordinates(dim, values))
    if frames.colour:
        out["rgb"] = ("rgb", np.array(["R", "G", "B"], dtype=object))
    return out


def to_xarray(
    frames: DicomFrames,
    *,
    name: str | None = None,
    attrs: dict[str, Any] | None = None,
    chunks: Any = None,
    table: pd.DataFrame | None = None,
) -> xarray.DataArray:
    """A lazy, labelled DataArray of ``frames``.

    Parameters
    ----------
    frames : DicomFrames
    name : str, optional
        Name of the DataArray.
    attrs : dict, optional
        Attributes (e.g. ``lazydicom.io.labels.series_attrs``).
    chunks : optional
        Dask chunks, as [`DicomFrames.chunks`][lazydicom.array.DicomFrames.chunks].
    table : pandas.DataFrame, optional
        The index table the frames were selected from: adds x/y in mm, the
        cells' ImagePositionPatient and ``has_frame``, and the ``affine``
        attribute (see ``lazydicom.io.labels.cell_labels``).

    Returns
    -------
    xarray.DataArray
        Dask-backed, dims [`frames.dims`][lazydicom.array.DicomFrames.dims].

    Examples
    --------
    >>> import lazydicom
    >>> s = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]})
    >>> da = to_xarray(s.frames(("SliceLocation",)), name="pixels")
    >>> da.dims, da["SliceLocation"].values.tolist()
    (('x', 'y', 'SliceLocation'), [0, 5])
    """
    xr = need_xarray()
    coords: dict[str, Any] = dict(labels(frames))
    attrs = dict(attrs or {})
    if table is not None:
        extra, more = cell_labels(table, frames)
        coords.update(extra)
        attrs.update(more)
    return xr.DataArray(frames.to_dask(chunks), dims=frames.dims, coords=coords,
                        name=name, attrs=attrs)
