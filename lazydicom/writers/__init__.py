"""Writers: new series of zeros and arrays written back to DICOM, cell by cell, by value.

[`zeros`][lazydicom.zeros] creates a series, [`set_ndarray`][lazydicom.Series.set_ndarray] writes an
array ``(x, y, *dims)`` into a series: each cell is one single-frame MR Image
Storage file (Explicit VR Little Endian). The design, layout, stored values
and guarantees are described in ``docs/writing.md``; in short:

- cells are placed by coordinate VALUE (``coords``) or by index into the
  sorted values (``slice``), never by position in a list of files;
- integers are stored exactly, floats quantised to 16 bits per frame with
  RescaleSlope/RescaleIntercept, NaN/inf refused (see ``lazydicom.writers.stored``);
- dask arrays are written block by block in parallel under any dask
  scheduler, each file atomically, and only once every block succeeded
  (see ``lazydicom.writers.store``); the index is updated for the written files only;
- every argument is checked before anything is written
  ([`InvalidArgumentError`][lazydicom.InvalidArgumentError]);
- writers of one database take turns (a lock in ``.lazydicom``), and each
  first reads what other processes wrote in its folder since the database was
  opened, so concurrent writers never share a SeriesNumber, a folder or an
  InstanceNumber;
- folders are created, and files renamed, only inside the database: never
  through a symbolic link ([`OutsideDatabaseError`][lazydicom.OutsideDatabaseError]).
"""

from __future__ import annotations

import atexit
import dataclasses
import operator
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import commits, disk
from ..errors import InvalidArgumentError
from ..tags import resolve
from .cells import (
    axis_values,
    block_sizes,
    check_selection,
    folder_name,
    instance_path,
    slice_values,
    unique_folder,
)
from .encoding import encode_element
from .store import Cell, Job, run, template_elements, write_block
from .stored import NonFiniteError, ds_text
from .template import (
    GEOMETRY_DEFAULTS,
    Coordinate,
    check_attributes,
    new_series_dataset,
    next_series_number,
    slice_normal,
)

if TYPE_CHECKING:
    from ..records import Database, Series

__all__ = ["database_folder", "database_zeros", "set_ndarray", "default_coords", "NonFiniteError"]

_TEMP_FOLDERS: list[str] = []


def _remove_temp_folders() -> None:
    for path in _TEMP_FOLDERS:
        shutil.rmtree(path, ignore_errors=True)


def database_folder(path: str | os.PathLike | None = None) -> str:
    """``path`` (created if missing), or a new temporary folder removed at interpreter exit."""
    if path is None:
        path = tempfile.mkdtemp(prefix="lazydicom-")
        if not _TEMP_FOLDERS:
            atexit.register(_remove_temp_folders)
        _TEMP_FOLDERS.append(path)
    else:
        os.makedirs(path, exist_ok=True)
    return os.fspath(path)


def default_coords(shape: Sequence[int], slice_thickness: float = 1.0) -> dict[str, Any]:
    """Coordinates of a series when none are given.

    No dims for a single frame; ``SliceLocation`` 0, t, 2t... (t the
    SliceThickness, default 1 mm) for a 3rd dim; ``TemporalPositionIdentifier``
    1, 2, 3... for a 4th. More dims cannot be guessed.

    Raises
    ------
    ValueError
        For more than 4 dims in ``shape``.
    """
    dims = list(shape[2:])
    if len(dims) > 2:
        raise ValueError(
            f"Cannot infer coordinates for a shape of {len(shape)} dims {tuple(shape)}: give "
            "coords={keyword: values} with one entry per dim after (x, y), e.g. "
            "{'SliceLocation': ..., 'FlipAngle': ..., 'RepetitionTime': ...}"
        )
    names = ["SliceLocation", "TemporalPositionIdentifier"][: len(dims)]
    out: dict[str, Any] = {}
    for name, n in zip(names, dims, strict=False):
        out[name] = (
            slice_thickness * np.arange(n) if name == "SliceLocation" else np.arange(1, n + 1)
        )
    return out


def _check_shape(shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of ints; refuse strings, floats and sizes below 1."""
    if isinstance(shape, str | bytes) or not hasattr(shape, "__iter__"):
        raise InvalidArgumentError(
            f"shape must be a tuple of ints (x, y, *dims), e.g. (128, 128, 10), not {shape!r}"
        )
    sizes = []
    for n in shape:
        try:
            if isinstance(n, bool):
                raise TypeError
            sizes.append(operator.index(n))  # 8.7 and '8' are not sizes (int() would take them)
        except TypeError:
            raise InvalidArgumentError(
                f"shape must be a tuple of ints (x, y, *dims); {tuple(shape)!r} holds {n!r}"
            ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise InvalidArgumentError(
            f"shape must be (x, y, *dims) with every size >= 1, got {tuple(sizes)}"
        )
    if sizes[0] > 65535 or sizes[1] > 65535:
        raise InvalidArgumentError(
            f"DICOM frames hold at most 65535 rows and columns, got {tuple(sizes[:2])}"
        )
    return tuple(sizes)


@contextmanager
def _writing(database: Database) -> Iterator[None]:
    """Writers of one database take turns: hold its write lock."""
    with disk.locked(disk.private_folder(database.path) / "write.lock"):
        yield


def _check_conflicts(dims: Sequence[Coordinate], attributes: Mapping[str, Any]) -> None:
    """One attribute cannot be both a coordinate and a value for every frame."""
    columns = {c.attr.column: c.name for c in dims}
    for keyword in attributes:
        column = resolve(keyword).column
        if column in columns:
            raise InvalidArgumentError(
                f"{keyword!r} is given as an attribute of every frame and as the coordinate "
                f"{columns[column]!r}; give it once"
            )


def _geometry(ds: Any) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    iop = [
        float(v)
        for v in ds.get("ImageOrientationPatient") or GEOMETRY_DEFAULTS["ImageOrientationPatient"]
    ]
    origin = tuple(
        float(v)
        for v in ds.get("ImagePositionPatient") or GEOMETRY_DEFAULTS["ImagePositionPatient"]
    )
    normal = tuple(slice_normal(iop).tolist())
    location = ds.get("SliceLocation")
    if location in (None, ""):
        location = float(np.dot(origin, normal))
    return origin, normal, float(location)


def database_zeros(
    database: Database,
    shape: Sequence[int],
    coords: Mapping[Any, Any] | None = None,
    **attributes: Any,
) -> str:
    """Write a series of zeros into ``database``; returns its SeriesInstanceUID.

    See [`Database.zeros`][lazydicom.Database.zeros].
    """
    import dask.array as da

    shape = _check_shape(shape)
    check_attributes(attributes)
    if coords is None:
        coords = default_coords(shape, float(attributes.get("SliceThickness", 1.0) or 1.0))
    dims, values = check_selection(shape, coords, "coords")
    _check_conflicts(dims, attributes)
    encoded = [axis_values(c, v)[0] for c, v in zip(dims, values, strict=True)]
    with _writing(database):
        ds = new_series_dataset(attributes, database.index.table)
        root = database.path
        patient = os.path.join(root, folder_name(ds.PatientID))
        database.index.sync(patient)  # series other processes wrote there since
        table = database.index.table
        if "SeriesNumber" not in attributes and len(table):
            if (table["StudyInstanceUID"] == ds.StudyInstanceUID).any():  # an existing study
                ds.SeriesNumber = next_series_number(table, ds.StudyInstanceUID)
        if any(isinstance(v, str) and not v.isascii() for e in encoded for v in e):
            ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8 coordinate values
        if "SliceThickness" not in attributes:
            ds.SliceThickness = ds_text(_spacing(dims, values))
        origin, normal, _ = _geometry(ds)
        if "SliceLocation" in attributes:  # one location for all frames: move the origin there
            location = float(attributes["SliceLocation"])
            origin = tuple(
                np.asarray(origin) + (location - np.dot(origin, normal)) * np.asarray(normal)
            )
        ds.ImagePositionPatient = [ds_text(v) for v in origin]
        ds.SliceLocation = ds_text(round(float(np.dot(origin, normal)), 6))
        folder = unique_folder(
            os.path.join(
                patient,
                folder_name(
                    ds.StudyDate, ds.StudyDescription or "Study", str(ds.StudyInstanceUID)[-8:]
                ),
                folder_name(f"Series_{int(ds.SeriesNumber):03d}", ds.SeriesDescription),
            )
        )
        grid = shape[2:]
        n = int(np.prod(grid)) if grid else 1
        width = max(6, len(str(n)))
        cells = np.empty(grid, dtype=object)
        for number, index in enumerate(np.ndindex(*grid), start=1):
            cells[index] = Cell(
                instance_path(folder, number, width),
                None,
                number,
                tuple(e[i] for e, i in zip(encoded, index, strict=True)),
            )
        job = _job(ds, dims, prefer_signed=False, keep_rescale=False)
        chunks = block_sizes(grid, 2 * shape[0] * shape[1], _workers())
        array = da.zeros(shape, dtype=np.uint16, chunks=(shape[0], shape[1], *chunks))
        paths = _write(database, array, cells, job, [folder])
    if not paths:  # pragma: no cover - shape >= 1 everywhere
        raise ValueError("nothing was written")
    return str(ds.SeriesInstanceUID)


def _spacing(dims: Sequence[Coordinate], values: Sequence[Sequence[Any]]) -> float:
    """SliceThickness of a new series: the smallest step of a SliceLocation dim, else 1."""
    for coord, vals in zip(dims, values, strict=True):
        if coord.geometry == "location" and len(vals) > 1:
            steps = np.diff(np.sort(np.asarray(vals, dtype=float)))
            steps = steps[steps > 0]
            if steps.size:
                return float(steps.min())
    return 1.0


def _workers() -> int:
    return os.cpu_count() or 1


def _job(
    ds: Any,
    dims: Sequence[Coordinate],
    *,
    prefer_signed: bool,
    keep_rescale: bool,
    header: dict[int, bytes] | None = None,
) -> Job:
    origin, normal, location = _geometry(ds)
    header = dict(header if header is not None else template_elements(ds))
    for c in dims:  # a private coordinate needs its private creator
        tag = c.attr.tag
        if tag is not None and tag >> 16 & 1 and tag & 0xFF00:
            creator = (tag & 0xFFFF0000) | (tag >> 8 & 0xFF)
            header.setdefault(creator, encode_element(creator, "LO", "LAZYDICOM"))
    return Job(
        header=header,
        sop_class=str(ds.SOPClassUID),
        dims=tuple((c.attr.tag, c.vr, c.geometry) for c in dims),
        origin=origin,
        normal=normal,
        location=location,
        prefer_signed=prefer_signed,
        keep_rescale=keep_rescale,
        tmpdir="",  # set by _write once everything is checked
    )


def _write(
    database: Database, array: Any, cells: np.ndarray, job: Job, folders: Sequence[str]
) -> list[str]:
    """Write ``array`` (a dask array of whole-frame blocks) to ``cells``; update the index."""
    from dask import delayed

    blocks = array.to_delayed(optimize_graph=True)
    starts = [np.cumsum((0,) + c) for c in array.chunks[2:]]
    pending = commits.begin(database.path)
    job = dataclasses.replace(job, tmpdir=pending.path)
    name = f"lazydicom-write-{os.path.basename(job.tmpdir)[len('writing-') :]}"
    job_task = delayed(job, pure=False, name=f"{name}-job")
    tasks = []
    for block_id, block_index in enumerate(np.ndindex(*blocks.shape[2:])):
        sl = tuple(
            slice(int(s[b]), int(s[b + 1])) for s, b in zip(starts, block_index, strict=True)
        )
        block_cells = tuple(cells[sl].reshape(-1).tolist()) if sl else (cells.item(),)
        tasks.append(
            delayed(write_block, pure=False)(
                blocks[(0, 0, *block_index)],
                _Cells(block_cells),
                job_task,
                block_id,
                dask_key_name=(name, block_id),
            )
        )
    paths = run(tasks, pending, folders)
    database.index.update_files(paths)
    return paths


class _Cells:
    """The cells of one block, in a box dask does not look into for keys or tasks."""

    __slots__ = ("cells",)

    def __init__(self, cells: tuple[Cell, ...]):
        self.cells = cells

    def __iter__(self):
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)

    def __getstate__(self):
        return self.cells

    def __setstate__(self, state):
        self.cells = state


def _as_array(array: Any) -> tuple[Any, bool]:
    import dask.array as da

    if isinstance(array, da.Array):
        return array, True
    return np.asarray(array), False


def set_ndarray(
    series: Series,
    array: Any,
    coords: Mapping[Any, Any] | None = None,
    slice: Mapping[Any, Any] | None = None,
) -> None:
    """Write ``array`` into ``series``; see [`Series.set_ndarray`][lazydicom.Series.set_ndarray]."""
    if (coords is None) == (slice is None):
        raise InvalidArgumentError(
            "Give coords (cells by value) or slice (cells by index), exactly one of them; "
            "its keys are the dims of the array after (x, y)"
        )
    selection = coords if coords is not None else slice
    assert selection is not None
    array, lazy = _as_array(array)
    if array.ndim < 2:
        raise InvalidArgumentError(f"The array must be (x, y, *dims), got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise InvalidArgumentError(
            f"Cannot write {array.dtype} values as DICOM pixels; give real numbers"
        )
    dims, values = check_selection(array.shape, selection, "coords" if coords else "slice")
    if not lazy and array.dtype.kind == "f":
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            raise NonFiniteError(
                f"The array holds {bad} NaN or infinite value(s); DICOM pixels are integers "
                "and cannot store them. Replace them first, e.g. numpy.nan_to_num(array). "
                "Nothing was written."
            )
    with _writing(series.database):
        _set_ndarray(series, array, lazy, dims, values, slice is not None)


def _set_ndarray(
    series: Series,
    array: Any,
    lazy: bool,
    dims: Sequence[Coordinate],
    values: list[list[Any]],
    by_index: bool,
) -> None:
    """``set_ndarray`` once the arguments are checked, holding the write lock."""
    import dask.array as da

    table = series.table()
    if not len(table):
        raise ValueError(f"{series!r} has no frames to take a header from; use zeros() first")
    root = series.database.path
    # files other processes wrote in the series' folder since it was indexed
    series.database.index.sync(os.path.dirname(os.path.join(root, table["path"].iloc[0])))
    columns = series.ensure([c.name for c in dims])
    table = series.table()
    if not len(table):
        raise ValueError(f"{series!r} has no frames to take a header from; use zeros() first")
    _check_frames(series, table, array.shape)
    from ..grid import build_grid

    grid = build_grid(table, columns)
    if by_index:
        values = [
            slice_values(c, axis, v) for c, axis, v in zip(dims, grid.coords, values, strict=True)
        ]
    pairs = [axis_values(c, v) for c, v in zip(dims, values, strict=True)]
    encoded, keys = [p[0] for p in pairs], [p[1] for p in pairs]
    positions = [{k: i for i, k in enumerate(axis)} for axis in grid.coords]
    paths = table["path"].tolist()
    template_path = os.path.join(root, paths[0])
    folder = os.path.dirname(template_path)
    numbers = pd.to_numeric(table["InstanceNumber"], errors="coerce")
    next_number = int(numbers.max()) + 1 if numbers.notna().any() else 1
    shape = array.shape[2:]
    cells = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        at = [pos.get(k[i]) for pos, k, i in zip(positions, keys, index, strict=True)]
        row = grid.cells[tuple(at)] if None not in at else -1
        if row >= 0:
            source = os.path.join(root, paths[row])
            cells[index] = Cell(source, source)
        else:
            cells[index] = Cell(
                instance_path(folder, next_number),
                None,
                next_number,
                tuple(e[i] for e, i in zip(encoded, index, strict=True)),
            )
            next_number += 1
    import pydicom

    template = pydicom.dcmread(template_path, stop_before_pixels=True)
    keep_rescale = "RescaleSlope" in template or "RescaleIntercept" in template
    job = _job(template, dims, prefer_signed=array.dtype.kind == "i", keep_rescale=keep_rescale)
    if lazy:
        array = array.rechunk({0: -1, 1: -1})
    else:
        chunks = block_sizes(shape, 2 * array.shape[0] * array.shape[1], _workers())
        array = da.from_array(array, chunks=(-1, -1, *chunks), name=False)
    _write(series.database, array, cells, job, [folder])


def _check_frames(series: Series, table: Any, shape: Sequence[int]) -> None:
    frames = table.get("NumberOfFrames")
    if frames is not None and (frames.fillna(1).astype(float) > 1).any():
        raise ValueError(
            f"{series!r} holds multi-frame files; set_ndarray writes single-frame files and "
            "cannot rewrite one frame of a multi-frame file. Write to a new series "
            "(Database.zeros) instead."
        )
    spp = table.get("SamplesPerPixel")
    if spp is not None and (spp.fillna(1).astype(float) > 1).any():
        raise ValueError(f"{series!r} holds colour frames; set_ndarray writes grayscale frames")
    for name, axis, size in (("Columns", 0, shape[0]), ("Rows", 1, shape[1])):
        have = sorted({int(v) for v in table[name].dropna().tolist()})
        if have != [size]:
            raise ValueError(
                f"The array has {size} along axis {axis} ({'x' if axis == 0 else 'y'}) but the "
                f"frames of {series!r} have {name}={have[0] if len(have) == 1 else have}; "
                "they must be equal"
            )
