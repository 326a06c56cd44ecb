"""Labelled output and extraction: xarray DataArrays, zarr stores, whole folders.

* :func:`to_xarray` wraps :meth:`Series.ndarray <lazydicom.Series.ndarray>` in a
  lazy :class:`xarray.DataArray`: dims ``("x", "y", *dims)``, a coordinate per
  dim holding the grid's values, the series' attributes.
* :func:`to_zarr` writes it to a zarr (v3) group that ``xarray.open_zarr``
  opens, coordinates included, one dask task per zarr chunk (chunk-aligned, no
  locks), so it runs in parallel on any dask scheduler, dask.distributed too.
* :func:`extract` writes every series of a folder (optionally filtered) as one
  subgroup of one zarr group, resumably: a series is marked complete only
  after its data is written, and a rerun skips complete series, deciding from
  the index alone (no DICOM file is opened for them).

Layout of an extraction::

    out.zarr/                         root group, attrs: source, dims, format
      003_ax_5_flip_1a2b3c4d/         one group per series (an xarray Dataset)
        003_ax_5_flip_1a2b3c4d        the pixels, dims (x, y, *dims)
        FlipAngle, ...                one coordinate array per dim
        attrs: series attributes, "lazydicom_extract" completion marker

``xarray.open_datatree(out, engine="zarr")`` opens the whole tree;
``xarray.open_zarr(out, group=name)`` one series. xarray is an optional
dependency (``pip install 'lazydicom[xarray]'``).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .grid import axis_key

if TYPE_CHECKING:
    import xarray

    from .records import Database, Series

__all__ = ["to_xarray", "to_zarr", "extract", "series_name", "series_attrs"]

#: Bumped when the extraction layout or marker changes; older series are rewritten.
EXTRACT_FORMAT = 1
_MARKER = "lazydicom_extract"
_CHUNK_BYTES = 8 * 2**20  # target size of one zarr chunk (and one dask task)
_BATCH_FRAMES = 128  # frames computed together on a local scheduler
builtins_slice = builtins.slice  # functions below have a parameter named slice

# Index columns that describe storage or vary per frame by nature: never attributes.
_NOT_ATTRS = {
    "path", "size", "mtime", "IsImage", "PixelDataOffset", "FrameOffset", "FrameLength",
    "FrameNumber", "SOPInstanceUID", "TransferSyntaxUID", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "PlanarConfiguration", "SamplesPerPixel",
    "RedPaletteColorLookupTableDescriptor", "InstanceNumber", "DimensionIndexValues",
}


def _need_xarray():
    try:
        import xarray
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Labelled output needs xarray: pip install 'lazydicom[xarray]'"
        ) from None
    return xarray


# ---------------------------------------------------------------- labels


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


def series_attrs(series: Series, table: pd.DataFrame | None = None) -> dict[str, Any]:
    """Attributes that take one value over all frames of ``series``, JSON-safe.

    Includes patient, study and series identifiers and descriptions, PixelSpacing,
    ImageOrientationPatient (when constant), RescaleType..., as indexed.
    ``table`` is ``series.table()`` if the caller has it already.
    """
    table = series.table() if table is None else table
    attrs: dict[str, Any] = {}
    for column in table.columns:
        if column in _NOT_ATTRS or not len(table):
            continue
        values = table[column].tolist()
        first = values[0]
        try:  # fast path: plain equality (None == None; NaN and arrays fall through)
            same = all(v == first for v in values) and first == first
        except (TypeError, ValueError):
            same = False
        if not same and len({axis_key(v) for v in values}) != 1:
            continue
        value = _json_value(first)
        if value is not None and value != "":
            attrs[column] = value
    attrs["NumberOfFramesInSeries"] = len(table)
    return attrs


def _slug(text: Any) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", str(text or "")).strip("_").lower()
    return slug[:40].rstrip("_") or "series"


def series_name(series: Series, table: pd.DataFrame | None = None) -> str:
    """A readable, stable name: ``f"{SeriesNumber:03d}_{description}_{uid hash}"``.

    Examples
    --------
    >>> import lazydicom
    >>> s = lazydicom.zeros((2, 2, 1), SeriesDescription="ax 5 flip")
    >>> series_name(s).split("_")[1:4]
    ['ax', '5', 'flip']
    """
    table = series.table() if table is None else table

    def first(column: str) -> Any:
        return axis_key(table[column].iloc[0]) if column in table and len(table) else None

    number = first("SeriesNumber")
    try:
        number = int(number)
    except (TypeError, ValueError):
        number = 0
    digest = hashlib.sha1(str(series.uid).encode()).hexdigest()[:8]
    return f"{number:03d}_{_slug(first('SeriesDescription'))}_{digest}"


def _coordinate(dim: str, values: Sequence[Any]) -> dict[str, Any]:
    """xarray coordinates for one dim: the values, plus a numeric table for tuples."""
    keys = [axis_key(v) for v in values]
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in keys):
        if any(v is None for v in keys) or any(isinstance(v, float) for v in keys):
            data = np.array([np.nan if v is None else v for v in keys], dtype=np.float64)
        else:
            data = np.array(keys, dtype=np.int64)
        return {dim: (dim, data)}
    labels = np.array(["" if v is None else "\\".join(map(str, v)) if isinstance(v, tuple)
                       else str(v) for v in keys], dtype=object)
    out: dict[str, Any] = {dim: (dim, labels)}
    lengths = {len(v) for v in keys if isinstance(v, tuple)}
    numeric = all(isinstance(v, tuple) and all(isinstance(x, int | float) for x in v)
                  for v in keys)
    if numeric and len(lengths) == 1:
        # e.g. ImagePositionPatient: each component as a numeric coordinate beside the labels
        table = np.array(keys, dtype=np.float64)
        for i in range(table.shape[1]):
            out[f"{dim}_{i}"] = (dim, table[:, i])
    return out


def _auto_chunks(t: pd.DataFrame, chunks: Any) -> Any:
    if not isinstance(chunks, str) or chunks != "auto":
        return chunks
    if not len(t):
        return 1
    rows, cols = int(t["Rows"].max()), int(t["Columns"].max())
    spp = int(t["SamplesPerPixel"].fillna(1).max()) if "SamplesPerPixel" in t else 1
    frame_bytes = max(rows * cols * spp * 4, 1)  # float32 worst case
    return max(1, _CHUNK_BYTES // frame_bytes)


# ---------------------------------------------------------------- one series


def to_xarray(
    series: Series,
    dims: Sequence[str | int] | str | int = ("InstanceNumber",),
    coords: Mapping[Any, Any] | None = None,
    slice: Mapping[Any, Any] | None = None,
    *,
    fill_value: Any = 0,
    rescale: bool = True,
    chunks: Any = None,
    name: str | None = None,
    attrs: bool = True,
) -> xarray.DataArray:
    """A lazy, labelled :class:`xarray.DataArray` of a series.

    Parameters
    ----------
    series : Series
    dims, coords, slice, fill_value, rescale, chunks
        As :meth:`Series.ndarray <lazydicom.Series.ndarray>`; ``chunks="auto"``
        groups frames into chunks of about 8 MB.
    name : str, optional
        Name of the DataArray; default :func:`series_name`.
    attrs : bool, optional
        Attach the series attributes (:func:`series_attrs`) and ``units``.

    Returns
    -------
    xarray.DataArray
        Dask-backed, dims ``("x", "y", *dims)`` (and ``"rgb"`` for colour);
        each dim has a coordinate with the grid's values (sorted, or in the
        order selected). Multi-valued dims (ImagePositionPatient) are labelled
        with DICOM's ``"a\\b\\c"`` text and get one numeric coordinate per
        component, ``<dim>_0``, ``<dim>_1``...

    Examples
    --------
    >>> import lazydicom
    >>> s = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]})
    >>> da = to_xarray(s, ("SliceLocation",))
    >>> da.dims, da["SliceLocation"].values.tolist()
    (('x', 'y', 'SliceLocation'), [0, 5])
    """
    xr = _need_xarray()
    table = series.table()
    frames = series.frames(dims, coords, slice, fill_value=fill_value, rescale=rescale)
    grid = frames.grid
    arr = frames.to_dask(_auto_chunks(table, chunks))
    names = [str(d) for d in grid.dims]
    labels: dict[str, Any] = {}
    for dim, values in zip(names, grid.coords, strict=True):
        labels.update(_coordinate(dim, values))
    all_dims = ["x", "y", *names]
    if arr.ndim == len(all_dims) + 1:
        all_dims.append("rgb")
        labels["rgb"] = ("rgb", np.array(["R", "G", "B"], dtype=object))
    if arr.shape[2:2 + len(names)] != grid.shape:  # pragma: no cover - a bug if it happens
        raise AssertionError(f"grid {grid.shape} and array {arr.shape} disagree")
    meta: dict[str, Any] = {}
    if attrs:
        meta = series_attrs(series, table)
        if rescale:
            units = meta.get("RescaleType") or ("HU" if meta.get("Modality") == "CT" else None)
            if units:
                meta["units"] = units
        meta["dims"] = names
    return xr.DataArray(arr, dims=all_dims, coords=labels,
                        name=name or series_name(series, table), attrs=meta)


def _encoding(name: str, compressor: str | None) -> dict:
    from zarr.codecs import BloscCodec, ZstdCodec

    codec = {
        "lz4": BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
        "zstd": ZstdCodec(level=3),
        None: None,
    }
    if compressor == "default":
        return {}
    if compressor not in codec:
        raise ValueError(
            f"compressor must be 'lz4', 'zstd', 'default' or None, not {compressor!r}"
        )
    return {name: {"compressors": codec[compressor] and (codec[compressor],)}}


@contextlib.contextmanager
def _quiet_zarr() -> Iterator[None]:
    """Silence zarr's notice that consolidated metadata is not in the v3 spec yet."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        yield


def to_zarr(
    series: Series,
    store: Any,
    dims: Sequence[str | int] | str | int = ("InstanceNumber",),
    coords: Mapping[Any, Any] | None = None,
    slice: Mapping[Any, Any] | None = None,
    *,
    group: str | None = None,
    name: str | None = None,
    chunks: Any = "auto",
    compressor: str | None = "lz4",
    layout: str = "frames",
    mode: str = "w",
    compute: bool = True,
    consolidated: bool = True,
    **kwargs: Any,
) -> Any:
    """Write a series to a zarr (v3) group that ``xarray.open_zarr`` opens.

    Parameters
    ----------
    series : Series
    store : str, PathLike or zarr store
        Where to write; on a cluster, a location every worker can write to.
    dims, coords, slice
        As :meth:`Series.ndarray <lazydicom.Series.ndarray>`.
    group : str, optional
        Subgroup of ``store`` to write into.
    name : str, optional
        Name of the data variable; default :func:`series_name`.
    chunks : "auto", int, dict or tuple
        Frames per zarr chunk (one dask task writes one chunk); "auto" aims
        at about 8 MB per chunk.
    compressor : {'lz4', 'zstd', 'default', None}
        Codec of the pixel chunks (blosc-lz4 by default, fast to write and read;
        'default' is zarr's own default).
    layout : {'frames', 'xy'}
        Order of the dims on disk. ``"frames"`` (default): ``(*reversed(dims),
        "y", "x")``, so every frame is contiguous, as pydicom's ``pixel_array``
        stacks them; these are the same bytes as the Fortran-ordered ``(x, y,
        *dims)`` array lazydicom assembles, so nothing is transposed, and
        ``.transpose("x", "y", *dims)`` on the opened variable gives exactly
        :func:`to_xarray`. ``"xy"``: ``("x", "y", *dims)`` as stored, which
        scatters every pixel on the way (several times slower to write).
    mode : str
        ``"w"`` replaces the group, as in :meth:`xarray.Dataset.to_zarr`.
    compute : bool
        False returns a dask collection whose ``.compute()`` writes the pixels
        (the metadata and coordinates are written at once).
    consolidated : bool
        Consolidate the store's metadata (from its root, as xarray does), so
        that ``xarray.open_zarr`` opens it without a warning.
    **kwargs
        ``fill_value``, ``rescale``, ``attrs``: as :func:`to_xarray`.

    Returns
    -------
    None, or with ``compute=False`` a dask collection (``.compute()`` writes)

    Examples
    --------
    >>> import lazydicom, tempfile, xarray
    >>> s = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]})
    >>> out = tempfile.mkdtemp() + "/s.zarr"
    >>> to_zarr(s, out, ("SliceLocation",), name="pixels")
    >>> xarray.open_zarr(out)["pixels"].dims
    ('SliceLocation', 'y', 'x')
    >>> xarray.open_zarr(out)["pixels"].transpose("x", "y", ...).shape
    (4, 3, 2)
    """
    if layout not in ("frames", "xy"):
        raise ValueError(f"layout must be 'frames' or 'xy', not {layout!r}")
    da = to_xarray(series, dims, coords, slice, chunks=chunks, name=name, **kwargs)
    if layout == "frames":
        # a view of each Fortran-ordered block: C-contiguous, written without a copy
        da = da.transpose(*reversed(da.dims))
    import dask.array
    import zarr

    pixels = da.data
    # xarray writes the metadata, attributes and coordinates; the pixels are written
    # below, so it gets a placeholder whose (discarded) write graph is cheap to build
    placeholder = dask.array.zeros(pixels.shape, dtype=pixels.dtype, chunks=pixels.chunks)
    ds = da.copy(data=placeholder).to_dataset(promote_attrs=True)
    with _quiet_zarr():
        ds.to_zarr(store, group=group, mode=mode,  # type: ignore[call-overload]
                   compute=False, consolidated=consolidated,
                   encoding=_encoding(str(da.name), compressor))
    path = f"{group.strip('/')}/{da.name}" if group else str(da.name)
    writes = _direct_writes(store, path, pixels)
    if writes is None:  # not a local folder, or codecs this does not write: zarr writes
        target = zarr.open_array(_local_path(store) or store, path=path, mode="r+")
        writes = dask.array.store(pixels, target, lock=False,  # type: ignore[arg-type]
                                  compute=False)
    if not compute:
        return writes
    writes.compute()
    return None


def _local_path(store: Any) -> str | None:
    """The folder of a local zarr store given as a path or a LocalStore, else None."""
    if isinstance(store, str | os.PathLike):
        text = os.fspath(store)
        return None if "://" in text else os.path.abspath(text)
    from zarr.storage import LocalStore

    return str(store.root) if isinstance(store, LocalStore) else None


def _direct_writes(store: Any, path: str, arr: Any) -> Any:
    """A Delayed writing each dask block of ``arr`` as one chunk of the zarr array at ``path``.

    The chunk bytes are exactly what zarr writes (bytes codec, then blosc or
    zstd, as the array's metadata says), stored with one atomic store write
    per chunk, without zarr's per-call event-loop round trip (five times the
    cost of compressing the chunk). Returns None, to let zarr write, when the
    store is not a local folder or the array's codecs or chunks are not the
    simple ones this handles.
    """
    import dask
    import zarr

    location = _local_path(store)
    if location is None:
        return None
    z = zarr.open_array(location, path=path, mode="r")
    meta = z.metadata
    codecs = [c.to_dict() for c in getattr(meta, "codecs", ())]
    names = [c["name"] for c in codecs]
    if (meta.zarr_format != 3 or names not in (["bytes"], ["bytes", "blosc"], ["bytes", "zstd"])
            or codecs[0].get("configuration", {}).get("endian", "little") != "little"
            or meta.chunk_key_encoding.to_dict() != {"name": "default",
                                                     "configuration": {"separator": "/"}}
            or any(len(set(c[:-1])) > 1 or c[0] != k
                   for c, k in zip(arr.chunks, z.chunks, strict=True))):
        return None
    codec = codecs[1] if len(codecs) > 1 else None
    # one tiny result per block: a graph built once, not a Delayed per block
    return arr.map_blocks(
        _write_chunk, location=location, path=path, codec=codec, chunk_shape=z.chunks,
        dtype_str=z.dtype.str, chunks=(1,) * arr.ndim, dtype=np.int8,
        meta=np.empty((0,) * arr.ndim, dtype=np.int8),
        name=f"lazydicom-write-{dask.base.tokenize(arr.name, location, path, codec)}",
    )


def _write_chunk(block: np.ndarray, *, location: str, path: str, codec: dict | None,
                 chunk_shape: tuple[int, ...], dtype_str: str,
                 block_id: tuple[int, ...]) -> np.ndarray:
    """Task: encode one block as a zarr chunk and store it (edge blocks padded)."""
    from .cache import _local_store, _set

    key = f"{path}/c/" + "/".join(map(str, block_id))
    dtype = dtype_str

    data = np.asarray(block).astype(np.dtype(dtype).newbyteorder("<"), copy=False)
    if data.shape != tuple(chunk_shape):
        full = np.zeros(chunk_shape, dtype=data.dtype)
        full[tuple(builtins_slice(0, n) for n in data.shape)] = data
        data = full
    data = np.ascontiguousarray(data)
    if codec is None:
        raw = data.tobytes()
    elif codec["name"] == "blosc":
        from numcodecs import Blosc

        cfg = codec["configuration"]
        shuffle = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE,
                   "bitshuffle": Blosc.BITSHUFFLE}[cfg.get("shuffle", "shuffle")]
        raw = bytes(Blosc(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=shuffle,
                          blocksize=cfg.get("blocksize", 0)).encode(data))
    else:
        from numcodecs import Zstd

        cfg = codec.get("configuration", {})
        raw = bytes(Zstd(level=cfg.get("level", 0), checksum=cfg.get("checksum", False))
                    .encode(data))
    _set(_local_store(location), key, raw)
    return np.ones((1,) * data.ndim, dtype=np.int8)


# ---------------------------------------------------------------- many series


def _fingerprint(t: pd.DataFrame, dims: Sequence[Any], options: Mapping[str, Any]) -> str:
    """What the output of a series depends on, from the index alone (no file opened)."""
    h = hashlib.sha1()
    h.update(json.dumps([str(d) for d in dims]).encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    for p, size, mtime in sorted(zip(t["path"].tolist(), t["size"].tolist(),
                                     t["mtime"].tolist(), strict=True)):
        h.update(f"{p}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def _marker(store: Any, name: str) -> dict | None:
    import zarr

    try:
        g = zarr.open_group(store, path=name, mode="r", use_consolidated=False)
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None
    except Exception:  # noqa: BLE001 - zarr raises its own NodeNotFound/containment errors
        return None
    marker = g.attrs.get(_MARKER)
    return marker if isinstance(marker, dict) else None


def _mark_complete(store: Any, name: str, fingerprint: str) -> None:
    import zarr

    g = zarr.open_group(store, path=name, mode="r+", use_consolidated=False)
    g.attrs[_MARKER] = {"format": EXTRACT_FORMAT, "fingerprint": fingerprint,
                        "complete": True}


def _client(scheduler: Any):
    """A dask.distributed Client for ``scheduler`` (address or Client), the active one, or None."""
    if scheduler is None:
        if "distributed" not in sys.modules:  # no Client can exist; importing costs 0.3 s
            return None
        try:
            from distributed import default_client

            return default_client()
        except (ImportError, ValueError):
            return None
    if isinstance(scheduler, str) and (scheduler in ("threads", "processes", "sync",
                                                      "synchronous", "single-threaded")):
        return None
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "A scheduler address needs dask.distributed: pip install 'lazydicom[distributed]'"
        ) from None
    if isinstance(scheduler, Client):
        return scheduler
    return Client(scheduler)


def _progress(total: int, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Extracting", unit="frame")


def extract(
    source: str | os.PathLike | Database,
    out: str | os.PathLike,
    dims: Sequence[str | int] | str | int = ("InstanceNumber",),
    *,
    where: Mapping[Any, Any] | None = None,
    scheduler: Any = None,
    progress: bool | None = None,
    cache: Any = None,
    rescale: bool = True,
    fill_value: Any = 0,
    chunks: Any = "auto",
    compressor: str | None = "lz4",
) -> list[dict[str, Any]]:
    """Extract every (matching) series of a folder into one zarr group, resumably.

    Parameters
    ----------
    source : str, PathLike or Database
        A folder (opened with :func:`lazydicom.open`) or an open database.
    out : str or PathLike
        The zarr group to write (created if needed). On a cluster, a path
        every worker can write to.
    dims : sequence
        Dims of every series' array, as :meth:`Series.ndarray
        <lazydicom.Series.ndarray>`. A series lacking an attribute gets a
        size-1 axis for it.
    where : dict, optional
        Keep the series with frames matching these values (as
        :meth:`Database.series <lazydicom.Database.series>`).
    scheduler : str or distributed.Client, optional
        A scheduler address (``"tcp://host:8786"``) or Client to run on a
        dask.distributed cluster; ``"threads"``, ``"processes"`` or ``"sync"``
        for a local scheduler. Default: the active Client if any, else threads.
    progress : bool, optional
        Show a progress bar (frames); default only on a terminal.
    cache : optional
        As :func:`lazydicom.open` (decoded frames kept for later reads); when
        ``source`` is a Database, its own cache is used.
    rescale, fill_value, chunks, compressor
        As :func:`to_zarr`.

    Returns
    -------
    list of dict
        One per series: ``name``, ``status`` ("written", "skipped" or
        "failed"), ``frames``, ``error``.

    Notes
    -----
    A series is complete once its marker attribute is written, after all of
    its chunks. A rerun skips series whose marker matches the current index
    (same files, sizes, mtimes, dims and options), without opening their
    files; an interrupted or failed series is written again from scratch.
    """
    import zarr

    from .records import Database, open_database

    db = source if isinstance(source, Database) else open_database(
        source, cache=cache, progress=progress)
    dims = (dims,) if isinstance(dims, str | int) else tuple(dims)
    out = _local_path(out) or os.fspath(out)  # absolute: the workers' cwd differs
    options = {"rescale": rescale, "fill_value": fill_value, "chunks": chunks,
               "compressor": compressor, "layout": "frames", "format": EXTRACT_FORMAT}
    # opened without its consolidated metadata, which this rewrite drops: until the
    # run ends (and consolidates once), readers see the groups as they are written
    root = zarr.open_group(out, mode="a", use_consolidated=False)
    root.attrs.update({"lazydicom": {"format": EXTRACT_FORMAT, "source": db.path,
                                     "dims": [str(d) for d in dims]}})

    report: list[dict[str, Any]] = []
    todo: list[tuple[Series, str, str, int]] = []
    found = []
    for series in db.series(where):
        table = series.table()
        found.append((series_name(series, table), series, table))
    for name, series, table in sorted(found, key=lambda f: f[0]):
        frames = len(table)
        fingerprint = _fingerprint(table, dims, options)
        marker = _marker(out, name)
        if marker and marker.get("complete") and marker.get("fingerprint") == fingerprint:
            report.append({"name": name, "status": "skipped", "frames": frames, "error": None})
        else:
            todo.append((series, name, fingerprint, frames))

    bar = _progress(sum(t[3] for t in todo), progress)
    results: dict[str, dict[str, Any]] = {}

    def done(name: str, frames: int, fingerprint: str, error: BaseException | None) -> None:
        if error is None:
            _mark_complete(out, name, fingerprint)
        results[name] = {"name": name, "status": "failed" if error else "written",
                         "frames": frames, "error": None if error is None else
                         f"{type(error).__name__}: {error}"}
        if bar is not None:
            bar.update(frames)

    def writes() -> Iterator[tuple[Any, str, str, int]]:
        """Set up each series (grid, metadata) as the runner asks for it."""
        for series, name, fingerprint, frames in todo:
            try:
                pixels = to_zarr(series, out, dims, group=name, name=name, chunks=chunks,
                                 compressor=compressor, rescale=rescale,
                                 fill_value=fill_value, compute=False, consolidated=False)
            except Exception as exc:  # noqa: BLE001 - grid errors name the series' files
                done(name, frames, fingerprint, exc)
                continue
            yield pixels, name, fingerprint, frames

    client = _client(scheduler)
    try:
        if client is not None:
            _run_distributed(client, writes(), done)
        else:
            _run_local(scheduler, writes(), done)
    finally:
        if bar is not None:
            bar.close()
        if client is not None and client is not scheduler and isinstance(scheduler, str):
            client.close()
        with _quiet_zarr():
            zarr.consolidate_metadata(out)  # the completion markers, for readers
    report += [results[t[1]] for t in todo if t[1] in results]
    return sorted(report, key=lambda r: r["name"])


def _run_distributed(client, writes, done) -> None:
    """Submit each series as soon as it is set up; mark each as it completes."""
    from distributed import as_completed

    futures = {}
    for pixels, name, fingerprint, frames in writes:
        futures[client.compute(pixels)] = (name, fingerprint, frames)
    for future in as_completed(list(futures)):
        name, fingerprint, frames = futures[future]
        done(name, frames, fingerprint, future.exception())


def _run_local(scheduler, writes, done) -> None:
    """Compute batches of series on a local scheduler, setting up the next batch meanwhile.

    Setting a series up (grid, metadata) is Python work in this thread; reading
    and writing pixels mostly releases the GIL, so the two overlap.
    """
    from concurrent.futures import ThreadPoolExecutor

    import dask

    def run(batch) -> None:
        try:
            dask.compute(*[w[0] for w in batch], scheduler=scheduler)
        except Exception:  # noqa: BLE001 - isolate the failing series
            for w in batch:
                try:
                    dask.compute(w[0], scheduler=scheduler)
                except Exception as exc:  # noqa: BLE001
                    done(w[1], w[3], w[2], exc)
                else:
                    done(w[1], w[3], w[2], None)
        else:
            for w in batch:
                done(w[1], w[3], w[2], None)

    with ThreadPoolExecutor(1, thread_name_prefix="lazydicom-extract") as pool:
        pending = None
        batch: list = []
        count = 0
        for w in writes:
            batch.append(w)
            count += w[3]
            if count >= _BATCH_FRAMES:
                if pending is not None:
                    pending.result()
                pending = pool.submit(run, batch)
                batch, count = [], 0
        if pending is not None:
            pending.result()
        if batch:
            run(batch)
