"""The xarray backend: ``xr.open_dataset(folder, engine="lazydicom", dims=...)``.

Registered as the ``lazydicom`` engine (``xarray.backends`` entry point), so
xarray opens a DICOM folder as it opens a netCDF or zarr store::

    ds = xr.open_dataset("study/", engine="lazydicom", dims=("SliceLocation",),
                         where={"SeriesDescription": "ax 5 flip"})
    tree = xr.open_datatree("study/", engine="lazydicom", dims=("SliceLocation",))

Each series becomes a variable (``open_dataset``) or a group with a variable
``pixels`` (``open_datatree``), dims ``("x", "y", *dims)``, with the grid's
coordinates and the series' attributes. The data are a
``DicomBackendArray`` over the series' [`DicomFrames`][lazydicom.array.DicomFrames]:
xarray indexes it lazily, so ``ds.isel(SliceLocation=3).load()`` reads only
those frames, with or without dask (``chunks={}`` gives dask arrays with
lazydicom's default chunks).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from .errors import InvalidArgumentError, LazyDicomError, LazyDicomWarning
from .io.labels import cell_labels, series_attrs, series_name, units
from .io.xarray import labels
from .records import Database, open_database

if TYPE_CHECKING:
    import xarray

    from .array import DicomFrames

__all__ = ["LazyDicomBackendEntrypoint", "DicomBackendArray"]


class DicomBackendArray(BackendArray):
    """xarray's lazily indexed view of a [`DicomFrames`][lazydicom.array.DicomFrames]."""

    def __init__(self, frames: DicomFrames) -> None:
        self.frames = frames
        self.shape = frames.shape
        self.dtype = frames.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        # DicomFrames takes ints, slices and 1-D integer arrays per axis (outer indexing)
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self.frames.__getitem__)


def _open_series(filename_or_obj: Any, dims: Any, where: Any, options: Mapping[str, Any]
                 ) -> list[tuple[str, Any, DicomFrames]]:
    """(name, table, frames) of every series that can be laid out on ``dims``; warns for others."""
    if isinstance(filename_or_obj, Database):
        db = filename_or_obj
    elif isinstance(filename_or_obj, str | os.PathLike):
        db = open_database(filename_or_obj, progress=False, index_path=options.get("index_path"),
                           cache=options.get("cache"))
    else:
        raise InvalidArgumentError(
            f"engine='lazydicom' opens a folder (a path) or a lazydicom.Database, not "
            f"{type(filename_or_obj).__name__}")
    found, refused = [], []
    for series in db.series(where):
        table = series.table()
        try:
            frames = series.frames(dims, fill_value=options.get("fill_value", 0),
                                   rescale=options.get("rescale", True))
        except LazyDicomError as exc:  # e.g. duplicates: the dims do not separate its frames
            refused.append(f"{series_name(table)}: {exc}")
            continue
        found.append((series_name(table), table, frames))
    if refused:
        warnings.warn(f"{len(refused)} series cannot be laid out on dims {tuple(dims)} and were "
                      "left out: " + "; ".join(r[:300] for r in refused[:5]),
                      LazyDicomWarning, stacklevel=4)
    return found


def _dataset(name: str, table: Any, frames: DicomFrames, rescale: bool) -> xarray.Dataset:
    import xarray as xr

    attrs = series_attrs(table)
    unit = units(attrs, rescale)
    if unit:
        attrs["units"] = unit
    extra, geometry = cell_labels(table, frames)
    attrs.update(geometry)
    data = indexing.LazilyIndexedArray(DicomBackendArray(frames))
    variable = xr.Variable(frames.dims, data, attrs=attrs)
    ds = xr.Dataset({name: variable}, coords={**labels(frames), **extra})
    ds.set_close(None)
    return ds


class LazyDicomBackendEntrypoint(BackendEntrypoint):
    """Open a DICOM folder with xarray: ``xr.open_dataset(folder, engine="lazydicom", dims=...)``.

    Parameters of ``open_dataset``/``open_datatree`` (besides xarray's own):

    dims : sequence of str
        Dims of every series, as [`Series.ndarray`][lazydicom.Series.ndarray]
        (default ``("InstanceNumber",)``).
    where : dict, optional
        Keep the series with frames matching these values (as
        [`Database.series`][lazydicom.Database.series]).
    fill_value, rescale : optional
        As [`Series.ndarray`][lazydicom.Series.ndarray].
    index_path, cache : optional
        As [`lazydicom.open`][lazydicom.open].

    ``open_dataset`` puts every matching series in one Dataset, a variable per
    series named ``SeriesNumber_description_uidhash``; they must share the
    coordinate values of their dims (e.g. one series per echo on the same
    slices), else a clear error suggests ``open_datatree`` or ``where``.
    ``open_datatree`` gives one group per series, each with a variable
    ``pixels``. Series whose frames the dims cannot separate are left out
    with a warning.
    """

    description = "Lazy arrays from folders of DICOM files, with DICOM attributes as dims"
    url = "https://github.com/lazydicom/lazydicom"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "dims", "where",
                               "fill_value", "rescale", "index_path", "cache")
    supports_groups = True

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Never guessed: DICOM folders hold no extension to recognise; name the engine."""
        return False

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        dims: Sequence[str | int] | str = ("InstanceNumber",),
        where: Mapping[Any, Any] | None = None,
        fill_value: Any = 0,
        rescale: bool = True,
        index_path: Any = None,
        cache: Any = None,
    ) -> xarray.Dataset:
        import xarray as xr

        dims = (dims,) if isinstance(dims, str | int) else tuple(dims)
        options = dict(fill_value=fill_value, rescale=rescale, index_path=index_path, cache=cache)
        found = _open_series(filename_or_obj, dims, where, options)
        drop = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables or ())
        datasets = [_dataset(n, t, f, rescale) for n, t, f in found if n not in drop]
        if not datasets:
            return xr.Dataset()
        try:
            merged = xr.merge(datasets, join="exact", combine_attrs="drop_conflicts",
                              compat="no_conflicts")
        except ValueError as exc:
            raise InvalidArgumentError(
                f"the {len(datasets)} series do not share the coordinates of dims {dims} (or "
                f"their frame size), so they cannot be variables of one Dataset ({exc}). "
                "Open them with xr.open_datatree(..., engine='lazydicom'), or select series "
                "with where={...}") from None
        return merged

    def open_groups_as_dict(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        dims: Sequence[str | int] | str = ("InstanceNumber",),
        where: Mapping[Any, Any] | None = None,
        fill_value: Any = 0,
        rescale: bool = True,
        index_path: Any = None,
        cache: Any = None,
    ) -> dict[str, xarray.Dataset]:
        import xarray as xr

        dims = (dims,) if isinstance(dims, str | int) else tuple(dims)
        options = dict(fill_value=fill_value, rescale=rescale, index_path=index_path, cache=cache)
        groups: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs={"dims": [str(d) for d in dims]})}
        for name, table, frames in _open_series(filename_or_obj, dims, where, options):
            ds = _dataset("pixels", table, frames, rescale)
            ds.attrs.update(ds["pixels"].attrs)
            groups[f"/{name}"] = ds
        return groups

    def open_datatree(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> xarray.DataTree:
        import xarray as xr

        return xr.DataTree.from_dict(self.open_groups_as_dict(filename_or_obj, **kwargs))
