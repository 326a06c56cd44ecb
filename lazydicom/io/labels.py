"""Names, attributes and coordinate labels of a series, for labelled outputs.

Pure functions of the index table of a series' frames and of a grid's
coordinate values: the same labels serve xarray output, zarr output and
batch extraction.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..columns import Columns, columns_of
from ..errors import GeometryError
from ..geometry import SPATIAL_DIMS, affine, pixel_spacing, spatial_axis
from ..grid import axis_key

if TYPE_CHECKING:
    import pandas as pd

    from ..array import DicomFrames

__all__ = ["series_attrs", "series_name", "coordinates", "units", "cell_labels"]

# Index columns that describe storage or vary per frame by nature: never attributes.
_NOT_ATTRS = {
    "path", "size", "mtime", "IsImage", "PixelDataOffset", "FrameOffset", "FrameLength",
    "FrameNumber", "SOPInstanceUID", "TransferSyntaxUID", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "PlanarConfiguration", "SamplesPerPixel",
    "RedPaletteColorLookupTableDescriptor", "InstanceNumber", "DimensionIndexValues",
}


def _json_value(value: Any) -> Any:
    """A JSON-safe version of an index value, or None to leave it out."""
    value = axis_key(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, tuple):
        items = [_json_value(v) for v in value]
        return None if any(v is None for v in items) else items
    return str(value)


def series_attrs(table: pd.DataFrame | Columns) -> dict[str, Any]:
    """Attributes that take one value over all frames of a series' ``table``, JSON-safe.

    Includes patient, study and series identifiers and descriptions, PixelSpacing,
    ImageOrientationPatient (when constant), RescaleType..., as indexed, and
    ``NumberOfFramesInSeries``. ``table`` may be a ``Columns`` view of the index
    (``lazydicom.columns``): its columns are converted once for every series.
    """
    table = columns_of(table)
    n = len(table)
    if not n:
        return {"NumberOfFramesInSeries": 0}
    attrs: dict[str, Any] = {}
    probes = sorted({0, n // 2, n - 1})
    # Column by column on its own storage: numbers compared in numpy, text by
    # its category codes; only the other columns become Python objects, and
    # values that vary are mostly told by the first, middle and last frame
    # before all are compared. Taking those three rows of every column first
    # (one object matrix) and the ``.cat`` accessor cost 4-8 ms per CT series
    # of 150 frames and 90 columns, a third of an extract's planning.
    for column in table.names:
        if column in _NOT_ATTRS:
            continue
        kind, values, categories = table.storage(column)
        if kind == "category":
            codes = values
            if (codes < 0).any():  # missing in some frame: not one value
                continue
            if (codes == codes[0]).all():
                first = categories[codes[0]]
            else:  # categories that are one key (10 and 10.0) count as one value
                if len({axis_key(categories[codes[i]]) for i in probes}) != 1:
                    continue  # positions, UIDs, times: they differ at the probes
                used = categories[np.unique(codes)].tolist()
                if len({axis_key(v) for v in used}) != 1:
                    continue
                first = used[0]
        elif kind == "number":
            first = values[0]
            if first != first or not (values == first).all():  # NaN is absent, not a value
                continue
        else:
            first = values[0]
            # positions, UIDs and times differ between the first, middle and last
            # frame: decided from those before every value is compared
            if len({axis_key(values[i]) for i in probes}) != 1:
                continue
            try:  # fast path: plain equality (None == None; NaN and arrays fall through)
                same = all(v == first for v in values) and first == first
            except (TypeError, ValueError):
                same = False
            if not same:
                keys = {axis_key(v) for v in values}
                if len(keys) != 1 or None in keys:
                    continue
        value = _json_value(first)
        if value is not None and value != "":
            attrs[str(column)] = value
    attrs["NumberOfFramesInSeries"] = n
    return attrs


def units(attrs: dict[str, Any], rescale: bool) -> str | None:
    """The unit of rescaled values: RescaleType, or HU for CT; None for stored values."""
    if not rescale:
        return None
    return attrs.get("RescaleType") or ("HU" if attrs.get("Modality") == "CT" else None)


def _slug(text: Any) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", str(text or "")).strip("_").lower()
    return slug[:40].rstrip("_") or "series"


def series_name(table: pd.DataFrame) -> str:
    """A readable, stable name: ``f"{SeriesNumber:03d}_{description}_{uid hash}"``.

    Examples
    --------
    >>> import lazydicom
    >>> s = lazydicom.zeros((2, 2, 1), SeriesDescription="ax 5 flip")
    >>> series_name(s.table()).split("_")[1:4]
    ['ax', '5', 'flip']
    """

    def first(column: str) -> Any:
        return axis_key(table[column].iloc[0]) if column in table and len(table) else None

    number = first("SeriesNumber")
    try:
        number = int(number)
    except (TypeError, ValueError, OverflowError):
        number = 0
    digest = hashlib.sha1(str(first("SeriesInstanceUID")).encode()).hexdigest()[:8]
    return f"{number:03d}_{_slug(first('SeriesDescription'))}_{digest}"


def coordinates(dim: str, values: Sequence[Any]) -> dict[str, tuple[str, np.ndarray]]:
    """Coordinates of one dim: ``{name: (dim, values)}``.

    Numbers as int64 or float64 (absent values NaN); text and multi-valued
    attributes as DICOM's ``"a\\b\\c"`` text, and for numeric multi-valued
    attributes (ImagePositionPatient) one numeric coordinate per component,
    ``<dim>_0``, ``<dim>_1``...
    """
    keys = [axis_key(v) for v in values]
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in keys):
        if any(v is None for v in keys) or any(isinstance(v, float) for v in keys):
            data = np.array([np.nan if v is None else v for v in keys], dtype=np.float64)
        else:
            data = np.array(keys, dtype=np.int64)
        return {dim: (dim, data)}
    labels = np.array(["" if v is None else "\\".join(map(str, v)) if isinstance(v, tuple)
                       else str(v) for v in keys], dtype=object)
    out: dict[str, tuple[str, np.ndarray]] = {dim: (dim, labels)}
    lengths = {len(v) for v in keys if isinstance(v, tuple)}
    numeric = all(isinstance(v, tuple) and all(isinstance(x, int | float) for x in v)
                  for v in keys)
    if numeric and len(lengths) == 1:
        table = np.array(keys, dtype=np.float64)
        for i in range(table.shape[1]):
            out[f"{dim}_{i}"] = (dim, table[:, i])
    return out


def cell_labels(table: pd.DataFrame, frames: DicomFrames
                ) -> tuple[dict[str, tuple[tuple[str, ...], np.ndarray]], dict[str, Any]]:
    """Geometry and presence of the cells of ``frames``: extra coordinates and attributes.

    ``table`` is the index table the frames were selected from (``frames.rows``
    index it). Coordinates: ``x``/``y`` in mm from the first pixel (when every
    frame has the same PixelSpacing), ``has_frame`` (False for empty cells,
    whose values are the fill value), and the ImagePositionPatient of every
    cell as ``ImagePositionPatient_0``, ``_1``, ``_2`` (patient L, P, S in mm;
    NaN where empty; not when a dim is itself ImagePositionPatient).
    Attributes: ``affine`` (voxel ``(x, y, k)`` to patient LPS mm, see
    [`lazydicom.geometry.affine`][lazydicom.geometry.affine]) when the array has one spatial dim on
    a regular grid, and ``empty_cells``.
    """
    coords: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    attrs: dict[str, Any] = {}
    dims = tuple(frames.dims[2 : 2 + len(frames.grid.dims)])
    cells = frames.grid.cells
    rows = table.iloc[frames.rows] if frames.rows is not None else table.iloc[:0]
    spacing = pixel_spacing(rows)
    if spacing is not None:
        coords["x"] = (("x",), np.arange(frames.shape[0]) * spacing[1])
        coords["y"] = (("y",), np.arange(frames.shape[1]) * spacing[0])
    coords["has_frame"] = (dims, cells >= 0)
    attrs["empty_cells"] = int((cells < 0).sum())
    if "ImagePositionPatient" in rows.columns and "ImagePositionPatient" not in dims:
        positions = np.full(cells.shape + (3,), np.nan)
        values = rows["ImagePositionPatient"].tolist()  # one list, not an iloc per cell
        for index in zip(*np.nonzero(cells >= 0)):
            value = values[int(cells[index])]
            if isinstance(value, tuple | list) and len(value) == 3:
                positions[index] = value
        if not np.isnan(positions).all():
            for i in range(3):
                coords[f"ImagePositionPatient_{i}"] = (dims, positions[..., i])
    if sum(d in SPATIAL_DIMS for d in dims) == 1 and frames.rows is not None:
        try:
            matrix = affine(rows, frames.grid, spatial_axis(dims))
        except GeometryError:
            pass  # not a regular grid: no affine, never an approximate one
        else:
            attrs["affine"] = matrix.round(9).tolist()
    return coords, attrs
