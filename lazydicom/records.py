"""Database, Patient, Study and Series: views on the index.

A record is a filter on the index table (by PatientID, StudyInstanceUID or
SeriesInstanceUID); it holds no data of its own, so it always reflects the
index as it is now. Attributes that are not in the index are read from the
headers of the record's own files when first asked for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import dicomweb
from .array import DicomFrames, select
from .columns import Columns, TableColumns
from .errors import InvalidArgumentError
from .geometry import affine, spatial_axis
from .grid import axis_key, sorted_unique
from .index import Index
from .io.labels import series_attrs, series_name, units
from .io.nifti import to_nifti
from .io.xarray import to_xarray
from .io.zarr import to_zarr as write_zarr
from .objectframes import ObjectFrameSource
from .objectstore import ObjectStore, is_url
from .tags import resolve
from .writers import database_folder, database_zeros, set_ndarray

if TYPE_CHECKING:
    import dask.array

__all__ = ["Database", "Patient", "Study", "Series", "open_database", "zeros"]

_LEVELS = {"patient": "PatientID", "study": "StudyInstanceUID", "series": "SeriesInstanceUID"}


def _matches(column: pd.Series, wanted: Any) -> np.ndarray:
    """Rows whose value equals ``wanted`` (or is in it, for a list), numbers as numbers."""
    if isinstance(wanted, list | set | frozenset | np.ndarray):
        keys = {axis_key(w) for w in wanted}
    else:
        keys = {axis_key(wanted)}
    return np.fromiter((axis_key(v) in keys for v in column.tolist()), dtype=bool,
                       count=len(column))

# pandas 3 always copies on write; pandas 2 when asked to
_COPY_ON_WRITE = (int(pd.__version__.split(".")[0]) >= 3
                  or pd.get_option("mode.copy_on_write") is True)


class _Arrays:
    """Arrays of the frames of a record or a whole database (one grid, same semantics)."""

    @property
    def database(self) -> Database:  # pragma: no cover - defined by the classes below
        raise NotImplementedError

    def table(self) -> pd.DataFrame:  # pragma: no cover - defined by the classes below
        raise NotImplementedError

    def ensure(self, names: Sequence[Any]) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def _selected(self, where: Mapping[Any, Any] | None) -> pd.DataFrame:
        """The frames of [`table`][lazydicom.Series.table] whose attributes match ``where``."""
        if where is not None and not isinstance(where, Mapping):
            raise InvalidArgumentError(f"where must be a dict {{keyword: value}}, not {where!r}")
        if not where:
            return self.table()
        columns = self.ensure(list(where))
        table = self.table()
        mask = np.ones(len(table), dtype=bool)
        for column, wanted in zip(columns, where.values()):
            mask &= _matches(table[column], wanted)
        return table[mask]

    def coords(self, dims: Sequence[str | int] | str | int, *,
               where: Mapping[Any, Any] | None = None) -> dict[Any, Any]:
        """Sorted unique coordinate values of each dim.

        Parameters
        ----------
        dims : str, int or sequence of them
            Keywords, tags or derived attributes.
        where : dict, optional
            Only frames with these attribute values (as
            [`Database.series`][lazydicom.Database.series]).

        Returns
        -------
        dict
            ``{dim: values}``; numeric values as a numpy array, others as a list
            (multi-valued attributes as tuples).
        """
        dims = _as_dims(dims)
        columns = self.ensure(dims)
        table = self._selected(where)
        return {d: _coord_array(sorted_unique(table[c].tolist())) for d, c in zip(dims, columns)}

    def frames(
        self,
        dims: Sequence[str | int] | str | int = ("InstanceNumber",),
        coords: Mapping[Any, Any] | None = None,
        slice: Mapping[Any, Any] | None = None,
        *,
        where: Mapping[Any, Any] | None = None,
        fill_value: Any = 0,
        rescale: bool = True,
    ) -> DicomFrames:
        """The selection as a [`DicomFrames`][lazydicom.array.DicomFrames], the array-like
        that [`ndarray`][lazydicom.Series.ndarray], [`numpy`][lazydicom.Series.numpy] and
        [`xarray`][lazydicom.Series.xarray] read through.

        Same arguments as [`ndarray`][lazydicom.Series.ndarray]. Reads no pixel file;
        ``frames[key]`` reads only the frames of the cells ``key`` selects.
        """
        if coords is not None and slice is not None:
            raise InvalidArgumentError("Give coords (by value) or slice (by index), not both")
        for name, given in (("coords", coords), ("slice", slice)):
            if given is not None and not isinstance(given, Mapping):
                raise InvalidArgumentError(
                    f"{name} must be a dict {{dim: values}}, not {type(given).__name__}")
        if coords is not None:
            dims = tuple(coords)
        elif slice is not None:
            dims = tuple(slice)
        dims = _as_dims(dims)
        columns = self.ensure(dims)
        return self._planned(self._selected(where), dims, columns, coords, slice,
                             fill_value=fill_value, rescale=rescale)

    def _planned(self, table: pd.DataFrame, dims: tuple[Any, ...], columns: list[str],
                 coords: Mapping[Any, Any] | None = None,
                 slice: Mapping[Any, Any] | None = None, *, fill_value: Any = 0,
                 rescale: bool = True, rows: Columns | None = None) -> DicomFrames:
        """``frames`` of ``table`` (this record's, already selected; ``columns`` of ``dims``
        ensured): extract plans a series from the table it already holds. ``rows``:
        ``table`` as a view of the database's converted columns, when it is one."""
        _check_distinct(dims, columns)
        by_column = lambda m: None if m is None else {  # noqa: E731
            resolve(k).column: v for k, v in m.items()}
        return select(table, columns, by_column(coords), by_column(slice),
                      root=self.database.path, rescale=rescale, fill_value=fill_value,
                      cache=self.database.cache, source=self.database.source,
                      columns=rows)

    def ndarray(
        self,
        dims: Sequence[str | int] | str | int = ("InstanceNumber",),
        coords: Mapping[Any, Any] | None = None,
        slice: Mapping[Any, Any] | None = None,
        *,
        where: Mapping[Any, Any] | None = None,
        fill_value: Any = 0,
        rescale: bool = True,
        chunks: Any = None,
    ) -> dask.array.Array:
        """Return the pixel data as a lazy dask array on a grid of tag values.

        Parameters
        ----------
        dims : tuple, optional
            Dimensions of the result, as DICOM keywords, tags or derived
            attributes (``FrameNumber``, ``SlicePosition``). Defaults to
            ``('InstanceNumber',)``.
        coords : dict, optional
            ``{dim: values}``: keep the cells with these coordinate values, in
            the order given. If coords is provided, ``dims`` is ignored.
        slice : dict, optional
            ``{dim: indices}``: as coords, but by index into the sorted
            coordinate values (an int, a list of ints or a Python ``slice``).
            If slice is provided, ``dims`` is ignored.
        where : dict, optional
            Only the frames with these attribute values (``{keyword or tag:
            value or list of values}``, as [`Database.series`][lazydicom.Database.series]). On a
            Study or a Database this picks the series whose frames share one grid,
            e.g. one series per flip angle, echo or b-value.
        fill_value : scalar, optional
            Value of cells that hold no frame (they are not read). Default 0.
            A value the frames' dtype cannot hold (``np.nan``, -1 for unsigned
            data) makes the dtype one that holds both.
        rescale : bool, optional
            Apply RescaleSlope/RescaleIntercept. The dtype is float32 when a
            selected frame has a slope or intercept other than 1/0, else the
            stored dtype. ``False`` returns stored values.
        chunks : str, int, dict or tuple, optional
            Default (``None`` or ``"auto"``): about 32 MiB of frames per chunk
            (a size such as ``"128MiB"`` sets another), frames taken from the
            first dim on. An int: that many cells along every dim; ``-1``: the
            whole axis; a tuple: one entry per dim; a dict ``{dim: size}``.
            Selections read only their frames whatever the chunks: dask passes
            slices of a chunk to the read task.

        Returns
        -------
        dask.array.Array
            Shape ``(x, y, *dims)``, plus a trailing axis of 3 for colour data
            (returned as RGB). ``arr[:, :, k]`` is pydicom's ``pixel_array``
            of the frame in cell ``k``, transposed. Size 0 when nothing is
            selected. ``arr.compute()`` is Fortran-ordered, as [`numpy`][lazydicom.Series.numpy].

        Raises
        ------
        DuplicateCellError
            Two frames fall into one cell (a ValueError naming both files).
        InconsistentFramesError
            The selected frames differ in size.
        InvalidArgumentError, InvalidSelectionError, InvalidChunksError
            Arguments lazydicom cannot use (ValueError/TypeError/IndexError subclasses).

        See Also
        --------
        numpy : the same selection, read at once into one numpy array.
        frames : the array-like this array reads through.
        """
        return self.frames(dims, coords, slice, where=where, fill_value=fill_value,
                           rescale=rescale).to_dask(chunks)

    def numpy(
        self,
        dims: Sequence[str | int] | str | int = ("InstanceNumber",),
        coords: Mapping[Any, Any] | None = None,
        slice: Mapping[Any, Any] | None = None,
        *,
        where: Mapping[Any, Any] | None = None,
        fill_value: Any = 0,
        rescale: bool = True,
        frames_per_task: int | None = None,
        scheduler: str = "threads",
        num_workers: int | None = None,
    ) -> np.ndarray:
        """Read a selection eagerly into one numpy array, fast.

        Same arguments and values as [`ndarray`][lazydicom.Series.ndarray], read at once: each frame
        is copied straight into its slot of a Fortran-ordered array (where a
        transposed frame is contiguous), ``frames_per_task`` frames per task
        (default: about four tasks per core, at most 64 frames each) on
        dask's threaded scheduler (``scheduler="sync"`` for one thread,
        ``"processes"`` for decoders that hold the GIL).

        Returns
        -------
        numpy.ndarray
            Fortran-ordered; ``np.ascontiguousarray`` gives a C-ordered copy.
        """
        frames = self.frames(dims, coords, slice, where=where, fill_value=fill_value,
                             rescale=rescale)
        return frames.read(scheduler=scheduler, num_workers=num_workers,
                           frames_per_task=frames_per_task)

    def affine(
        self,
        dims: Sequence[str | int] | str | int = ("SlicePosition",),
        coords: Mapping[Any, Any] | None = None,
        slice: Mapping[Any, Any] | None = None,
        *,
        where: Mapping[Any, Any] | None = None,
        dim: str | None = None,
    ) -> np.ndarray:
        """The 4x4 matrix from voxel ``(x, y, k)`` of ``ndarray(dims)`` to patient mm (LPS).

        ``k`` indexes the spatial dim among ``dims`` (``SlicePosition``,
        ``ImagePositionPatient`` or ``SliceLocation``; ``dim=`` picks one);
        other dims do not move a voxel. The same origin, spacing and direction
        as SimpleITK's reading of the series (see ``lazydicom.geometry``).

        Raises
        ------
        GeometryError
            No spatial dim, slices that are not parallel or not evenly spaced
            (with the spacings found), or frames that do not agree on one grid.

        Examples
        --------
        >>> import lazydicom, numpy as np
        >>> s = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]},
        ...                     PixelSpacing=[0.5, 0.25])
        >>> s.affine(("SliceLocation",)) @ [1, 2, 1, 1]
        array([0.25, 1.  , 5.  , 1.  ])
        """
        frames = self.frames(dims, coords, slice, where=where)
        names = list(frames.dims[2 : 2 + len(frames.grid.dims)])
        axis = spatial_axis(names, None if dim is None else resolve(dim).column)
        return affine(self._selected(where).iloc[frames.rows], frames.grid, axis)

    def xarray(
        self,
        dims: Sequence[str | int] | str | int = ("InstanceNumber",),
        coords: Mapping[Any, Any] | None = None,
        slice: Mapping[Any, Any] | None = None,
        *,
        where: Mapping[Any, Any] | None = None,
        fill_value: Any = 0,
        rescale: bool = True,
        chunks: Any = None,
        name: str | None = None,
        attrs: bool = True,
    ) -> Any:
        """A lazy ``xarray.DataArray`` of ``ndarray``, labelled with the grid.

        Dims ``("x", "y", *dims)`` (``"rgb"`` last for colour), a coordinate per
        dim with its values (multi-valued ones as ``"a\\b\\c"`` text plus one
        numeric coordinate per component, ``<dim>_0``...), and with ``attrs``
        the attributes constant over the series (and ``units`` when rescaled).
        ``name`` defaults to ``SeriesNumber_description_uidhash`` (of the first
        series). Needs the ``xarray`` extra.

        Examples
        --------
        >>> import lazydicom
        >>> s = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]})
        >>> da = s.xarray(("SliceLocation",))
        >>> da.dims, da["SliceLocation"].values.tolist()
        (('x', 'y', 'SliceLocation'), [0, 5])
        """
        frames = self.frames(dims, coords, slice, where=where, fill_value=fill_value,
                             rescale=rescale)
        table = self._selected(where)
        if name is None:  # one series: its name; frames of several series: "pixels"
            one = "SeriesInstanceUID" in table and table["SeriesInstanceUID"].nunique() == 1
            name = series_name(table) if one else "pixels"
        return to_xarray(frames, name=name, chunks=chunks,
                         attrs=self._attrs(table, frames, rescale) if attrs else None,
                         table=table)

    def _attrs(self, table: pd.DataFrame, frames: DicomFrames, rescale: bool) -> dict:
        attrs = series_attrs(table)
        unit = units(attrs, rescale)
        if unit:
            attrs["units"] = unit
        attrs["dims"] = list(frames.dims[2 : 2 + len(frames.grid.dims)])
        return attrs


class _Record(_Arrays):
    """Common behaviour of records: a filtered view of the index."""

    _level = ""

    def __init__(self, database: Database, uid: Any):
        self._database = database
        self.uid = uid

    @property
    def database(self) -> Database:
        """The database this record is a view of."""
        return self._database

    @property
    def _key(self) -> str:
        return _LEVELS[self._level]

    def _rows(self) -> slice | np.ndarray:
        """This record's rows of the database's table: a slice when side by side."""
        positions = self.database._positions(self._key, self.uid)
        n = len(positions)
        if n and int(positions[-1]) - int(positions[0]) == n - 1 and (
                n < 3 or bool((np.diff(positions) == 1).all())):
            return slice(int(positions[0]), int(positions[-1]) + 1)
        return positions

    def table(self) -> pd.DataFrame:
        """The index rows of this record's frames, one row per frame."""
        frames = self.database.table()
        rows = self._rows()
        if isinstance(rows, slice) and _COPY_ON_WRITE:
            # the usual case (a series' files side by side in the index): a slice,
            # not a take of every column (0.4 against 1.6 ms a series of 90
            # columns); copy-on-write keeps the index's table as it is whatever a
            # caller does with the slice
            return frames.iloc[rows]
        if isinstance(rows, slice):
            rows = np.arange(rows.start, rows.stop)
        return frames.iloc[rows]

    def _columns(self) -> Columns:
        """The rows of ``table()`` as a view of the database's converted columns
        (``lazydicom.columns``): what planning many series reads."""
        return self.database._frames()[3].rows(self._rows())

    def files(self) -> list[str]:
        """Absolute paths of the files holding this record's frames, sorted."""
        root = self.database.path
        return [os.path.join(root, p) for p in sorted(set(self.table()["path"]))]

    def ensure(self, names: Sequence[Any]) -> list[str]:
        """Index columns of ``names`` (keywords or tags), read from this record's headers
        when the index does not hold them yet (never from pixel data)."""
        # the record's files, only if an attribute must be read from headers
        return self.database.index.ensure(names, lambda: self.table()["path"].unique().tolist())

    def values(self, tag: str | int) -> list[Any]:
        """The value of ``tag`` for each frame (None where absent), in index order."""
        (column,) = self.ensure([tag])
        return [axis_key(v) for v in self.table()[column].tolist()]

    def unique(self, tag: str | int) -> list[Any]:
        """Sorted unique values of ``tag`` over the frames (numbers as numbers, None last)."""
        return sorted_unique(self.values(tag))

    def _first(self, column: str) -> Any:
        t = self.table()
        if column not in t.columns or not len(t):
            return None
        return axis_key(t[column].iloc[0])

    def __eq__(self, other: object) -> bool:
        return (type(self) is type(other) and self.uid == other.uid  # type: ignore[attr-defined]
                and self.database is other.database)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.uid))


class Series(_Record):
    """One series: the frames sharing a SeriesInstanceUID.

    Examples
    --------
    >>> import lazydicom, numpy as np
    >>> series = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]})
    >>> series.unique("SliceLocation")
    [0, 5]
    >>> series.ndarray(("SliceLocation",)).shape
    (4, 3, 2)
    """

    _level = "series"

    def __repr__(self) -> str:
        t = self.table()
        desc = self._first("SeriesDescription")
        number = self._first("SeriesNumber")
        return (f"Series({desc!r}, SeriesNumber={number!r}, frames={len(t)}, "
                f"files={t['path'].nunique() if len(t) else 0})")

    def study(self) -> Study:
        """The study this series belongs to."""
        return Study(self.database, self._first("StudyInstanceUID"))

    def to_zarr(
        self,
        store: Any,
        dims: Sequence[str | int] | str | int = ("InstanceNumber",),
        coords: Mapping[Any, Any] | None = None,
        slice: Mapping[Any, Any] | None = None,
        *,
        group: str | None = None,
        fill_value: Any = None,
        rescale: bool = True,
        compressor: str | None = "lz4",
        shard_bytes: str | int = "16MiB",
        compute: bool = True,
        scheduler: Any = None,
        pack: bool = True,
    ) -> Any:
        """Write the selection to a zarr group that ``xarray.open_zarr`` opens.

        The pixels are the variable ``pixels`` with dims ``(*reversed(dims),
        "y", "x")`` (each frame one contiguous chunk, many frames per shard;
        ``.transpose("x", "y", ...)`` gives [`xarray`][lazydicom.Series.xarray]'s order), beside one
        coordinate array per dim and the series' attributes. ``fill_value``
        defaults to NaN for float data (so empty cells read back as missing)
        and 0 for integers; the coordinate ``has_frame`` marks the cells that
        hold a frame either way. With ``pack`` (default) a series with one
        integer RescaleSlope/Intercept (CT) is stored as its integers with CF
        ``scale_factor``/``add_offset``, which xarray decodes to the same values
        (see ``lazydicom.io.zarr.packed``). See
        ``lazydicom.io.zarr`` and ``docs/clusters.md``.

        Examples
        --------
        >>> import lazydicom, tempfile, xarray
        >>> s = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]})
        >>> out = tempfile.mkdtemp() + "/s.zarr"
        >>> s.to_zarr(out, ("SliceLocation",))
        >>> xarray.open_zarr(out)["pixels"].dims
        ('SliceLocation', 'y', 'x')
        """
        frames = self.frames(dims, coords, slice, fill_value=fill_value or 0, rescale=rescale)
        if fill_value is None:
            frames = frames.marking_empty()
        table = self.table()
        return write_zarr(frames, store, group=group, compressor=compressor,
                          attrs=self._attrs(table, frames, rescale), table=table,
                          shard_bytes=shard_bytes, compute=compute, scheduler=scheduler,
                          pack=pack)

    def to_nifti(
        self,
        path: str | os.PathLike,
        dims: Sequence[str | int] | str | int = ("SlicePosition",),
        coords: Mapping[Any, Any] | None = None,
        slice: Mapping[Any, Any] | None = None,
        *,
        dim: str | None = None,
        rescale: bool = True,
    ) -> str:
        """Write the selection to a NIfTI-1 file (nibabel), world coordinates in RAS.

        Needs a spatial dim (see [`affine`][lazydicom.Series.affine]); voxel axes are ``(x, y,
        spatial dim, other dims...)``. Returns the path.

        Examples
        --------
        >>> import lazydicom, tempfile, nibabel
        >>> s = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]})
        >>> image = nibabel.load(s.to_nifti(tempfile.mkdtemp() + "/s.nii"))
        >>> image.shape, image.affine[2, 2]
        ((4, 3, 2), np.float64(5.0))
        """
        frames = self.frames(dims, coords, slice, rescale=rescale)
        names = list(frames.dims[2 : 2 + len(frames.grid.dims)])
        axis = spatial_axis(names, None if dim is None else resolve(dim).column)
        matrix = affine(self.table().iloc[frames.rows], frames.grid, axis)
        return to_nifti(frames, matrix, axis, path)

    def set_ndarray(
        self,
        array: Any,
        coords: Mapping[Any, Any] | None = None,
        slice: Mapping[Any, Any] | None = None,
    ) -> None:
        """Write an array ``(x, y, *dims)`` into the series, cell by cell.

        Parameters
        ----------
        array : numpy.ndarray or dask.array.Array
            ``array[:, :, i, j, ...]`` is the frame (transposed, as
            [`ndarray`][lazydicom.Series.ndarray] returns it) of the cell at index ``i, j, ...``.
            Dask arrays are written block by block, in parallel under the current dask scheduler.
        coords : dict, optional
            ``{dim: values}``, one value per index along each dim: index ``i`` of a
            dim goes to the cell with the ``i``-th value given. Cells that exist
            are overwritten; others are new files made from the header of the
            series' first file, with their coordinate attributes set.
        slice : dict, optional
            ``{dim: indices}`` into the sorted unique values of each dim in the
            series, as [`ndarray`][lazydicom.Series.ndarray] counts them.

        Raises
        ------
        ValueError
            Neither or both of coords and slice; dims that do not match the array's
            shape (the message names the dim and both sizes); NaN or infinite values
            (DICOM pixels are integers); frames of another size; two frames in one
            cell of the series ([`DuplicateCellError`][lazydicom.DuplicateCellError]).
        IndexError
            A slice index out of range.

        Notes
        -----
        Integers that fit 16 bits are stored exactly; other values are stored
        per frame as 16-bit integers with RescaleSlope/RescaleIntercept (within
        1/131070 of the frame's range). Every file is written to a temporary
        file and renamed into place only after the whole array was written, so
        a refused or failed call changes nothing. See ``docs/writing.md``.

        Examples
        --------
        >>> import lazydicom, numpy as np
        >>> s = lazydicom.zeros((3, 2, 2), {"FlipAngle": [15, 30]})
        >>> values = np.arange(12).reshape(3, 2, 2)
        >>> s.set_ndarray(values, coords={"FlipAngle": [30, 15]})
        >>> s.ndarray(coords={"FlipAngle": [30, 15]}).compute()[..., 0].tolist()
        [[0, 2], [4, 6], [8, 10]]
        """
        self.database.check_writable("set_ndarray")
        set_ndarray(self, array, coords=coords, slice=slice)


class Study(_Record):
    """One study: the frames sharing a StudyInstanceUID."""

    _level = "study"

    def __repr__(self) -> str:
        t = self.table()
        n = t["SeriesInstanceUID"].nunique(dropna=False) if len(t) else 0
        return f"Study({self._first('StudyDescription')!r}, series={n}, frames={len(t)})"

    def series(self, where: Mapping[Any, Any] | None = None, **filters: Any) -> list[Series]:
        """Series of this study, optionally filtered (see ``Database.series``)."""
        return self.database.series(where, StudyInstanceUID=self.uid, **filters)


class Patient(_Record):
    """One patient: the frames sharing a PatientID."""

    _level = "patient"

    def __repr__(self) -> str:
        t = self.table()
        n = t["StudyInstanceUID"].nunique(dropna=False) if len(t) else 0
        return f"Patient({self.uid!r}, name={self._first('PatientName')!r}, studies={n})"

    def studies(self, where: Mapping[Any, Any] | None = None, **filters: Any) -> list[Study]:
        """Studies of this patient."""
        return self.database.studies(where, PatientID=self.uid, **filters)

    def series(self, where: Mapping[Any, Any] | None = None, **filters: Any) -> list[Series]:
        """Series of this patient."""
        return self.database.series(where, PatientID=self.uid, **filters)


class Database(_Arrays):
    """A folder of DICOM files, indexed. Create with [`lazydicom.open`][lazydicom.open].

    Examples
    --------
    >>> import lazydicom, tempfile
    >>> db = lazydicom.open(tempfile.mkdtemp())
    >>> db.series()
    []
    """

    def __init__(self, index: Index, cache: Any = None):
        self._index = index
        #: The ``FrameCache`` frames are read through, or None.
        self.cache = cache
        # (index table, its image rows, {key: {uid: positions}}), rebuilt when the
        # index table is replaced (refresh, on-demand columns): records are views
        # and filtering the whole index on every call cost milliseconds each
        self._views: tuple[pd.DataFrame, pd.DataFrame, dict, TableColumns] | None = None

    @property
    def index(self) -> Index:
        """The ``Index`` behind the database (the engine)."""
        return self._index

    @property
    def database(self) -> Database:
        """The database itself (records have a ``database``; arrays use it alike)."""
        return self

    def ensure(self, names: Sequence[Any]) -> list[str]:
        """Index columns of ``names`` (keywords or tags), read from the headers when the
        index does not hold them yet (never from pixel data)."""
        return self._index.ensure(names)

    @property
    def path(self) -> str:
        """The folder of the database: its path, or its URL (object store, DICOMweb)."""
        return self._index.address

    @property
    def source(self) -> Any:
        """Where frames are read from when not from local files (an object store,
        a DICOMweb server), or None."""
        store = self._index.store
        return ObjectFrameSource(store) if store is not None else self._index.source

    def __repr__(self) -> str:
        t = self.table()
        n = t["SeriesInstanceUID"].nunique() if len(t) else 0
        return f"Database({self.path!r}, series={n}, frames={len(t)})"

    def refresh(self, *, progress: bool | None = None) -> dict[str, int]:
        """Re-read new and changed files, drop removed ones. Returns counts."""
        return self._index.refresh(progress=progress)

    def _frames(self) -> tuple[pd.DataFrame, pd.DataFrame, dict, TableColumns]:
        t = self._index.table
        if self._views is None or self._views[0] is not t:
            frames = t[t["IsImage"].astype(bool).to_numpy()] if len(t) else t
            self._views = (t, frames, {}, TableColumns(frames))
        return self._views

    def _positions(self, key: str, uid: Any) -> np.ndarray:
        """Positions in ``table`` of the frames whose ``key`` equals ``uid``."""
        _, frames, groups, _ = self._frames()
        if key not in groups:
            groups[key] = {
                (None if pd.isna(k) else k): v
                for k, v in frames.groupby(key, dropna=False, sort=False).indices.items()
            } if len(frames) else {}
        return groups[key].get(uid, np.empty(0, dtype=np.int64))

    def table(self) -> pd.DataFrame:
        """The index: one row per frame (objects without pixel data excluded)."""
        return self._frames()[1]

    def objects(self) -> pd.DataFrame:
        """Indexed DICOM objects without pixel data (presentation states, raw data, SR...)."""
        t = self._index.table
        if not len(t):
            return t
        return t[~t["IsImage"].astype(bool).to_numpy()]

    def skipped(self) -> pd.DataFrame:
        """Files under the folder that are not indexed, with the reason."""
        return self._index.skipped.copy()

    def _select(self, level: str, where: Mapping[Any, Any] | None, filters: dict) -> list:
        conditions = dict(where or {})
        conditions.update(filters)
        table = self.table()
        if conditions and len(table):
            columns = self._index.ensure(list(conditions))
            table = self.table()
            mask = np.ones(len(table), dtype=bool)
            for column, wanted in zip(columns, conditions.values()):
                mask &= _matches(table[column], wanted)
            table = table[mask]
        key = _LEVELS[level]
        if not len(table):
            return []
        cls = {"patient": Patient, "study": Study, "series": Series}[level]
        uids = pd.unique(table[key])
        return [cls(self, None if pd.isna(u) else u) for u in uids]

    def patients(self, where: Mapping[Any, Any] | None = None, **filters: Any) -> list[Patient]:
        """Patients, optionally filtered by attribute values (see ``series``)."""
        return self._select("patient", where, filters)

    def studies(self, where: Mapping[Any, Any] | None = None, **filters: Any) -> list[Study]:
        """Studies, optionally filtered by attribute values (see ``series``)."""
        return self._select("study", where, filters)

    def series(self, where: Mapping[Any, Any] | None = None, **filters: Any) -> list[Series]:
        """Series holding at least one frame that matches every filter.

        Parameters
        ----------
        where : dict, optional
            ``{keyword or tag: value}``; for tags that are not Python names,
            e.g. ``{"(2005,100E)": 0.5}``.
        **filters
            ``keyword=value``; a list value matches any of its values.
            Numbers compare as numbers.

        Examples
        --------
        >>> import lazydicom
        >>> s = lazydicom.zeros((2, 2, 1), SeriesDescription="ax 5 flip")
        >>> db = lazydicom.open(s.database.path)
        >>> db.series(SeriesDescription="ax 5 flip") == [s]
        False
        >>> len(db.series(SeriesDescription="ax 5 flip"))
        1
        """
        return self._select("series", where, filters)

    def zeros(
        self, shape: Sequence[int], coords: Mapping[Any, Any] | None = None, **attributes: Any
    ) -> Series:
        """Create a new series of zeros in this database, one file per cell.

        Parameters
        ----------
        shape : tuple of int
            ``(x, y, *dims)``: columns, rows and one size per dim.
        coords : dict, optional
            ``{dim: values}``, keywords or tags, one entry per dim after (x, y)
            and one value per index. Default: ``SliceLocation`` 0, 1, 2... mm for
            a 3rd dim, ``TemporalPositionIdentifier`` 1, 2... for a 4th.
        **attributes
            DICOM keywords set on every frame, e.g. ``SeriesDescription="T1 map"``,
            ``PixelSpacing=[0.8, 0.8]``, or the ``StudyInstanceUID`` of an existing
            study to add the series to it.

        Returns
        -------
        Series
            A series of MR Image Storage files with uint16 zeros, under
            ``<database>/<PatientID>/<study>/Series_<number>_<description>/``.

        Raises
        ------
        ValueError
            Coordinates that do not match the shape or cannot be inferred.

        Examples
        --------
        >>> import lazydicom, tempfile
        >>> db = lazydicom.open(tempfile.mkdtemp())
        >>> s = db.zeros((4, 3, 2, 5), {"SliceLocation": [0, 5], "EchoTime": [1, 2, 3, 4, 5]},
        ...              SeriesDescription="T2 map")
        >>> s.ndarray(("SliceLocation", "EchoTime")).shape
        (4, 3, 2, 5)
        """
        self.check_writable("zeros")
        return Series(self, database_zeros(self, shape, coords, **attributes))

    def check_writable(self, what: str = "writing") -> None:
        """Raise ``InvalidArgumentError`` for a database that is not a local folder."""
        if self._index.store is not None:
            raise InvalidArgumentError(
                f"{what} writes DICOM files into the database folder; {self.path!r} is in "
                "an object store, which lazydicom reads only"
            )
        if self._index.source is not None:
            raise InvalidArgumentError(
                f"{self.path!r} is read-only (frames come from a remote source); write "
                "to a folder: lazydicom.open(folder).zeros(...)")


def _as_dims(dims: Any) -> tuple:
    if isinstance(dims, str | int):
        return (dims,)
    if not isinstance(dims, Sequence):
        raise InvalidArgumentError(
            f"dims must be a keyword, a tag or a sequence of them, not {dims!r}")
    return tuple(dims)


def _check_distinct(dims: Sequence[Any], columns: Sequence[str]) -> None:
    """One attribute may be one dim only (``FlipAngle`` and ``0x00181314`` are the same)."""
    seen: dict[str, Any] = {}
    for dim, column in zip(dims, columns):
        if column in seen:
            raise InvalidArgumentError(
                f"dims {tuple(dims)!r} name {column!r} twice ({seen[column]!r} and {dim!r}); "
                "each attribute can be one dim only")
        seen[column] = dim


def _coord_array(values: Sequence[Any]) -> Any:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values)
    return list(values)


def open_database(
    path: str | os.PathLike,
    *,
    storage_options: Mapping[str, Any] | None = None,
    index_path: str | os.PathLike | None = None,
    progress: bool | None = None,
    workers: int | None = None,
    scheduler: Any = None,
    cache: Any = None,
    where: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Database:
    """Open a folder of DICOM files (or a DICOMweb server); index or refresh its headers.

    Parameters
    ----------
    path : str or PathLike
        The folder. Nested folders are walked; files need no extension.
        A ``dicomweb+http://host/root`` or ``dicomweb+https://...`` URL
        opens a DICOMweb service root instead (see ``lazydicom.dicomweb``
        and docs/dicomweb.md); its index is kept in a user cache folder.
        An fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``memory://...``)
        opens the objects under that prefix in an object store: headers are
        indexed by ranged reads, frames read by ranged reads (see
        docs/clusters.md, "Reading from an object store"); ``file://`` URLs
        are local folders.
    storage_options : dict, optional
        For a URL: options of its fsspec filesystem (credentials, endpoint),
        as in pandas, xarray and zarr; e.g. ``{"anon": True}`` or
        ``{"client_kwargs": {"endpoint_url": "http://localhost:9000"}}``.
        Default: the filesystem's own (for S3, the standard AWS variables
        and files).
    index_path : str or PathLike, optional
        Folder for the index. Default ``path/.lazydicom``, or a user cache
        folder when ``path`` is read-only or in an object store (keyed by the
        URL). A refresh of a store costs one listing when nothing changed.
    progress : bool, optional
        Show a progress bar; default only on a terminal.
    workers : int, optional
        Processes reading headers; default the number of cores.
    scheduler : str or distributed.Client, optional
        Where headers are read: ``"processes"`` (default, local worker
        processes), ``"threads"``/``"sync"`` (this process), or a
        dask.distributed Client or scheduler address, whose workers read
        batches of headers (the folder must be reachable from them) and send
        back their rows; the index is the same as a local scan's.
    cache : bool, str, PathLike, zarr store or FrameCache, optional
        Keep decoded frames in a zarr store and read them from there
        afterwards (see ``lazydicom.cache``). ``True``: ``cache.zarr``
        beside the index. Compressed frames only, unless a
        ``FrameCache(..., native=True)`` is given, or the folder is in an
        object store (then native frames too: a warm cache makes no request
        for frames). Default: no cache.
    where : dict, optional
        DICOMweb only: QIDO-RS query parameters restricting what is indexed,
        e.g. ``{"PatientID": "P1", "StudyDate": "20200101-20201231"}``.
    headers : dict, optional
        DICOMweb only: HTTP headers sent with every request, e.g.
        ``{"Authorization": "Bearer <token>"}``.

    Returns
    -------
    Database

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (a ``DatabaseNotFoundError``; also a
        missing bucket or prefix).
    StoreAccessError, StoreConnectionError
        The object store refuses the credentials, or does not answer.
    """
    if dicomweb.is_dicomweb(path):
        if storage_options:
            raise InvalidArgumentError(
                "storage_options are for object-store URLs (s3://...); give a DICOMweb "
                "server its HTTP headers with headers=")
        index: Index = dicomweb.open_index(str(path), index_path, where=where, headers=headers)
    elif where is not None or headers is not None:
        raise InvalidArgumentError(
            f"where= and headers= apply to DICOMweb URLs (dicomweb+http://...), not {path!r}")
    else:
        text = os.fspath(path)
        if isinstance(text, str) and text.startswith("file://"):
            text = text[len("file://"):]
        if is_url(text):
            index = Index(text, index_path, store=ObjectStore(str(text), storage_options))
        else:
            if storage_options:
                raise InvalidArgumentError(
                    f"storage_options are for URLs (s3://...); {text!r} is a local folder")
            index = Index(text, index_path)
    index.refresh(progress=progress, workers=workers, scheduler=scheduler)
    if cache is not None and cache is not False:
        from .cache import FrameCache, open_cache

        if index.store is not None and (cache is True or isinstance(cache, str | os.PathLike)):
            # a positioned local read beats a round trip to the store: native frames
            # too; entries are keyed by the object's size and ETag as indexed (there
            # is no file to stat), so a hit serves the version of the last refresh
            cache = FrameCache(os.fspath(index.location / "cache.zarr" if cache is True
                                         else cache), native=True, verify=False)
        cache = open_cache(cache, index.location / "cache.zarr")
    return Database(index, cache or None)


def zeros(
    shape: Sequence[int],
    coords: Mapping[Any, Any] | None = None,
    path: str | os.PathLike | None = None,
    **attributes: Any,
) -> Series:
    """Create a series of zeros in a database folder (by default a new temporary one).

    Parameters
    ----------
    shape : tuple of int
        ``(x, y, *dims)``: columns, rows, then one size per dim.
    coords : dict, optional
        ``{dim: values}`` with one value per index along each dim, in the
        order of the dims in ``shape``; keys are keywords or tags. Default
        from ``lazydicom.writers.default_coords``.
    path : str or PathLike, optional
        Database folder, created if missing. Default: a new temporary folder,
        removed when the interpreter exits.
    **attributes
        DICOM keywords to set on every frame, e.g. ``SeriesDescription``.

    Returns
    -------
    Series
        Its ``ndarray(dims=tuple(coords))`` has shape ``shape`` and dtype uint16.

    Examples
    --------
    >>> import lazydicom
    >>> s = lazydicom.zeros((4, 3, 2), {"FlipAngle": [15, 2]})
    >>> s.ndarray(("FlipAngle",)).shape
    (4, 3, 2)
    >>> s.unique("FlipAngle")
    [2, 15]
    """
    return open_database(database_folder(path), progress=False).zeros(shape, coords,
                                                                       **attributes)
