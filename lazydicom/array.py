"""The frames array: one lazy array-like over the selected frames of a grid.

[`DicomFrames`][lazydicom.array.DicomFrames] is what every output reads through. It knows its
``shape`` ``(x, y, *dims[, 3])``, ``dtype``, ``dims`` and ``coords`` before any
pixel is read, and ``frames[key]`` reads exactly the frames of the cells that
``key`` selects (one open per file), fills empty cells without reading, and
returns a numpy array. It is small and picklable (a columnar
``FrameTable`` plus the grid's cell array), so the same
object serves:

- [`DicomFrames.to_dask`][lazydicom.array.DicomFrames.to_dask]: a dask array with one
  ``getter`` task per chunk (as ``dask.array.from_array`` builds). Chunks are
  sized in bytes and span many frames; dask fuses later slicing into the ``getter`` task, so
  ``arr[:, :, 3, 1, 0]`` still reads one frame even from a chunk of hundreds.
- [`DicomFrames.read`][lazydicom.array.DicomFrames.read]: the eager read into one numpy
  array, frames written straight into their slots by parallel tasks.
- xarray and zarr output, which take a ``DicomFrames`` rather than a Series.

Memory order. A DICOM frame is ``(rows, columns)`` in C order, which is the
memory of ``(x, y)`` in Fortran order. Blocks are therefore Fortran-ordered
``(x, y, *dims)``: every frame is one contiguous copy, reductions and zarr
writes of frames need no transposition. dask's default ``compute()`` would
assemble the result in C order, scattering every pixel (a corner turn that
costs several times the read, measured in docs/semantics.md), so the array
returned by [`to_dask`][lazydicom.array.DicomFrames.to_dask] is a
[`FrameArray`][lazydicom.dask_array.FrameArray]: a ``dask.array.Array`` whose
``compute()`` assembles blocks in Fortran order (one chunk is returned as
is). Arrays derived from it (slices, arithmetic) are plain dask arrays and
compute as dask does.

Selection planning is here too: ``select`` turns a table of frames and
``dims``/``coords``/``slice`` into a ``DicomFrames``.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .columns import Columns, columns_of
from .errors import (
    InconsistentFramesError,
    InvalidArgumentError,
    InvalidChunksError,
    InvalidSelectionError,
)
from .grid import Grid
from .pixels import FrameCacheLike, FrameSource, FrameTable, PixelFormat, read_frames
from .workers import process_pool, processes_allowed, thread_pool

if TYPE_CHECKING:
    import pandas as pd

    from .dask_array import FrameArray

__all__ = ["DicomFrames", "select", "frame_table", "normalize_chunks"]

_FRAMES_PER_TASK = 64  # frames per task of the eager read
_MIN_DECODE_CHUNK = 8  # frames per chunk below which splitting compressed data stops

builtins_slice = builtins.slice  # parameters below are named slice


# ---------------------------------------------------------------- the array-like


@dataclass(frozen=True, eq=False)
class DicomFrames:
    """The selected frames of a series, placed on a grid of coordinate values.

    Build with [`Series.frames`][lazydicom.Series.frames] (or ``select``).

    Attributes
    ----------
    table : FrameTable
        The frames that are read, columnar.
    grid : Grid
        Dims, coordinate values, and for every cell the frame in ``table`` (-1: empty).
    dtype : numpy.dtype
        Decided from the index: stored dtype, float32 when rescaled, promoted
        to hold ``fill_value``.
    frame_shape : tuple of int
        ``(x, y)`` or ``(x, y, 3)`` for colour.
    fill_value : scalar
        Value of empty cells.
    rescale : bool
        Whether RescaleSlope/Intercept are applied.
    cache : optional
        A frame cache ([`FrameCache`][lazydicom.cache.FrameCache]) frames are read through.
    rows : numpy.ndarray, optional
        For each frame of ``table``, its position in the index table the
        selection was planned from (to look up other attributes of a cell).

    Examples
    --------
    >>> import lazydicom
    >>> s = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 5.0]})
    >>> frames = s.frames(("SliceLocation",))
    >>> frames.shape, frames.dims, frames.coords["SliceLocation"].tolist()
    ((4, 3, 2), ('x', 'y', 'SliceLocation'), [0, 5])
    >>> frames[:, :, 1].shape
    (4, 3)
    """

    table: FrameTable
    grid: Grid
    dtype: np.dtype
    frame_shape: tuple[int, ...]
    fill_value: Any = 0
    rescale: bool = True
    cache: FrameCacheLike | None = None
    rows: np.ndarray | None = None

    # -- what it is ------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.frame_shape[:2] + tuple(self.grid.shape) + self.frame_shape[2:]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def marking_empty(self) -> DicomFrames:
        """The same frames with NaN as fill value when the dtype is float (else as is).

        For outputs kept for later (zarr, extraction): a missing cell of float
        data then reads back as NaN, never as a real-looking 0.
        """
        import dataclasses

        if self.dtype.kind != "f" or isinstance(self.fill_value, float) and math.isnan(
                self.fill_value):
            return self
        return dataclasses.replace(self, fill_value=float("nan"))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def dims(self) -> tuple[str, ...]:
        """Names of the axes: ``("x", "y", *dims)``, plus ``"rgb"`` for colour."""
        return ("x", "y", *map(str, self.grid.dims)) + (("rgb",) if self.colour else ())

    @property
    def coords(self) -> dict[str, Any]:
        """``{dim: values}`` along each grid axis (numbers as a numpy array)."""
        return {str(d): _coord_values(v) for d, v in zip(self.grid.dims, self.grid.coords)}

    @property
    def colour(self) -> bool:
        return len(self.frame_shape) == 3

    @property
    def frame_nbytes(self) -> int:
        """Bytes of one frame of the result."""
        return math.prod(self.frame_shape) * self.dtype.itemsize

    def __repr__(self) -> str:
        dims = ", ".join(f"{d}: {n}" for d, n in zip(self.dims, self.shape))
        return (f"<DicomFrames ({dims}) {self.dtype}, {int((self.grid.cells >= 0).sum())} "
                f"frames in {len(self.table.paths)} files>")

    def __len__(self) -> int:
        return self.shape[0]

    def __dask_tokenize__(self) -> str:
        return self.token

    @property
    def token(self) -> str:
        """A digest of everything that determines the values (files and their versions,
        frame positions, placement, dtype, fill value, rescale)."""
        cached = self.__dict__.get("_token")
        if cached is None:
            t = self.table
            h = hashlib.sha1()
            h.update("\0".join(t.paths).encode())
            for arr in (t.sizes, t.mtimes, t.file, t.index, t.offset, t.length,
                        t.pixel_offset, t.format, t.slope, t.intercept, self.grid.cells):
                h.update(np.ascontiguousarray(arr).tobytes())
                h.update(str(arr.shape).encode())
            h.update(repr((t.formats, self.grid.dims, self.grid.coords, str(self.dtype),
                           self.frame_shape, repr(self.fill_value), self.rescale,
                           getattr(self.cache, "token", None))).encode())
            cached = h.hexdigest()
            object.__setattr__(self, "_token", cached)
        return cached

    # -- reading ---------------------------------------------------------------

    def __getitem__(self, key: Any) -> np.ndarray:
        """Read the cells ``key`` selects (ints, slices, integer lists or arrays per axis).

        Lists index each axis independently (outer indexing, as xarray's
        ``OuterIndexer`` and dask's ``getter`` pass them). Only the frames of
        the selected cells are read; ``x``/``y`` selections are applied to the
        frames after reading them whole.
        """
        indices, drop = _normalize_key(key, self.shape)
        ngrid = len(self.grid.shape)
        grid_idx = indices[2 : 2 + ngrid]
        cells = self.grid.cells[np.ix_(*grid_idx)] if ngrid else self.grid.cells.reshape(())
        block = self.read_cells(cells)
        # x, y (and rgb) selections on whole frames
        for axis in [0, 1] + ([self.ndim - 1] if self.colour else []):
            idx = indices[axis]
            if not (idx.size == self.shape[axis] and np.array_equal(idx, np.arange(idx.size))):
                block = np.take(block, idx, axis=axis)
        if any(drop):
            block = block[tuple(0 if d else builtins_slice(None) for d in drop)]
        return block

    def read_cells(self, cells: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A Fortran-ordered ``(x, y, *cells.shape[, 3])`` block of these grid cells.

        ``cells`` are indices into ``grid.cells``' values (frame rows, -1 for
        an empty cell), e.g. ``frames.grid.cells[region]``; ``out``: an array of
        that shape, dtype and Fortran order to read into (a reused buffer).
        """
        shape = self.frame_shape[:2] + cells.shape + self.frame_shape[2:]
        if out is None:
            out = np.empty(shape, dtype=self.dtype, order="F")
        elif out.shape != shape or out.dtype != self.dtype or not out.flags.f_contiguous:
            raise ValueError(f"out must be a Fortran-ordered {shape} {self.dtype} array")
        slots = out.reshape(*self.frame_shape[:2], -1, *self.frame_shape[2:], order="F")
        read_frames(self.table, cells.reshape(-1, order="F"), slots,
                    fill_value=self.fill_value, rescale=self.rescale, cache=self.cache)
        return out

    def read(
        self,
        *,
        scheduler: str = "threads",
        num_workers: int | None = None,
        frames_per_task: int | None = None,
    ) -> np.ndarray:
        """Read every cell into one Fortran-ordered numpy array, in parallel.

        Each task reads ``frames_per_task`` frames straight into their slots
        of the result (no block is assembled afterwards); by default about four
        tasks per core, at most 64 frames each. ``scheduler`` is
        ``"threads"`` (default; decoders and reads release the GIL),
        ``"sync"`` (one thread) or ``"processes"`` (worker processes send
        their frames back, for decoders that hold the GIL).
        """
        if scheduler not in ("threads", "sync", "synchronous", "single-threaded", "processes"):
            raise ValueError(
                f"scheduler {scheduler!r} is not one of 'threads', 'sync' or 'processes'; "
                "for a dask.distributed cluster compute or store ndarray(...) instead"
            )
        if frames_per_task is None:
            cores = os.cpu_count() or 1
            frames_per_task = min(_FRAMES_PER_TASK, max(1, -(-self.grid.size // (4 * cores))))
        if not isinstance(frames_per_task, numbers.Integral) or frames_per_task < 1:
            raise InvalidChunksError(f"frames_per_task must be a positive integer, not "
                                     f"{frames_per_task!r}")
        out = np.empty(self.shape, dtype=self.dtype, order="F")
        if out.size == 0:
            return out
        slots = out.reshape(*self.frame_shape[:2], -1, *self.frame_shape[2:], order="F")
        flat = self.grid.cells.reshape(-1, order="F")
        step = int(frames_per_task)
        starts = range(0, len(flat), step)
        if scheduler == "processes":
            if not processes_allowed():
                raise InvalidArgumentError(
                    "scheduler='processes' cannot start worker processes here: this is a "
                    "daemonic process (e.g. a multiprocessing.Pool worker); use 'threads'")
            with process_pool(num_workers) as pool:
                futures = {
                    pool.submit(self.read_cells, flat[s : s + step]): s for s in starts
                }
                for future, s in futures.items():
                    block = future.result()
                    slots[:, :, s : s + block.shape[2]] = block
            return out

        def task(s: int) -> None:
            read_frames(self.table, flat[s : s + step], slots[:, :, s : s + step],
                        fill_value=self.fill_value, rescale=self.rescale, cache=self.cache)

        tasks = {("lazydicom-read", s): (task, s) for s in starts}
        if scheduler == "threads":
            from dask.threaded import get

            get(tasks, list(tasks), pool=thread_pool(num_workers))
        else:
            from dask.local import get_sync

            get_sync(tasks, list(tasks))
        return out

    # -- dask -----------------------------------------------------------------

    def chunks(self, chunks: Any = None) -> tuple[tuple[int, ...], ...]:
        """Normalised dask chunks of the whole array for a ``chunks`` argument.

        ``None``/``"auto"``: up to dask's ``array.chunk-size`` (128 MiB by
        default; a byte string such as ``"64MiB"`` sets another size) per
        chunk, frames taken from the first dim on, so each chunk is one
        contiguous run of the Fortran-ordered result. Compressed frames are
        decoding-bound, so they are also split into about two chunks per core
        (at least 8 frames each) for the decoders to run on every core. An
        int: that size along every dim; ``-1``: the whole axis; a tuple: one
        entry per dim (or per axis, x and y included); a dict ``{dim: size}``:
        those dims, the others by bytes.
        Frames are never split: ``x`` and ``y`` are whole unless given.
        """
        max_frames = None
        if any(f.encapsulated for f in self.table.formats):
            cells = max(int(math.prod(self.grid.shape)), 1)
            max_frames = max(_MIN_DECODE_CHUNK, -(-cells // (2 * (os.cpu_count() or 1))))
        return normalize_chunks(chunks, self.shape, self.dims, self.frame_nbytes, self.colour,
                                max_frames=max_frames)

    def to_dask(self, chunks: Any = None) -> FrameArray:
        """A dask array reading these frames, one ``getter`` task per chunk.

        See [`chunks`][lazydicom.array.DicomFrames.chunks] for ``chunks``. Building it opens no
        file.
        """
        from .dask_array import frame_array  # imports dask: not at lazydicom's import

        return frame_array(self, self.chunks(chunks))


# ---------------------------------------------------------------- keys and chunks


def _normalize_key(key: Any, shape: tuple[int, ...]) -> tuple[list[np.ndarray], list[bool]]:
    """Integer index arrays per axis, and which axes an integer drops."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key):
        raise InvalidSelectionError("new axes (None) are not supported when reading frames")
    n_ellipsis = sum(k is Ellipsis for k in key)
    if n_ellipsis > 1:
        raise InvalidSelectionError("an index can only have a single ellipsis ('...')")
    if n_ellipsis:
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (builtins_slice(None),) * (len(shape) - len(key) + 1) + key[i + 1 :]
    if len(key) > len(shape):
        raise InvalidSelectionError(f"too many indices ({len(key)}) for an array of "
                                    f"{len(shape)} dimensions")
    key = key + (builtins_slice(None),) * (len(shape) - len(key))
    indices, drop = [], []
    for k, n in zip(key, shape):
        if isinstance(k, builtins_slice):
            indices.append(np.arange(n)[k])
            drop.append(False)
        elif isinstance(k, numbers.Integral) and not isinstance(k, bool | np.bool_):
            k = int(k)
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for an axis of size {n}")
            indices.append(np.array([k % n]))
            drop.append(True)
        else:
            arr = np.asarray(k)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise IndexError(f"boolean index of shape {arr.shape} for an axis of {n}")
                arr = np.flatnonzero(arr)
            elif arr.dtype.kind not in "iu" or arr.ndim != 1:
                raise InvalidSelectionError(
                    f"an index is an int, a slice, or a 1-D list of ints, not {k!r}")
            if arr.size and (arr.min() < -n or arr.max() >= n):
                raise IndexError(f"index out of bounds for an axis of size {n}")
            indices.append(arr % n if n else arr)
            drop.append(False)
    return indices, drop


def normalize_chunks(
    chunks: Any,
    shape: tuple[int, ...],
    dims: tuple[str, ...],
    frame_nbytes: int,
    colour: bool,
    *,
    max_frames: int | None = None,
) -> tuple[tuple[int, ...], ...]:
    """Chunks of ``(x, y, *dims[, 3])`` from a ``chunks`` argument (see DicomFrames.chunks).

    ``max_frames`` caps the frames per chunk of dims that are not given.
    Imports no dask (a second of start-up that extraction does not need): the
    byte budget is dask's ``array.chunk-size`` when dask is loaded, else dask's
    default of 128 MiB.
    """
    grid_dims = dims[2 : len(dims) - (1 if colour else 0)]
    grid_shape = shape[2 : 2 + len(grid_dims)]
    budget = _default_budget()
    fixed: dict[int, Any] = {}  # grid axis -> spec
    frame_axes: dict[int, Any] = {}  # 0, 1 (and last for colour) when given
    if chunks is None or (isinstance(chunks, str) and chunks == "auto"):
        pass
    elif isinstance(chunks, str):
        try:
            budget = parse_bytes(chunks)
        except (ValueError, TypeError):
            raise InvalidChunksError(f"chunks {chunks!r} is not 'auto', a byte size such as "
                                     "'64MiB', an int, a tuple or a dict") from None
    elif isinstance(chunks, numbers.Integral) and not isinstance(chunks, bool):
        fixed = dict.fromkeys(range(len(grid_dims)), int(chunks))
    elif isinstance(chunks, Mapping):
        for key, value in chunks.items():
            if key in grid_dims:
                fixed[grid_dims.index(key)] = value
            elif key in ("x", "y") or (colour and key == "rgb"):
                frame_axes[{"x": 0, "y": 1, "rgb": len(shape) - 1}[key]] = value
            elif isinstance(key, numbers.Integral) and -len(shape) <= int(key) < len(shape):
                axis = int(key) % len(shape)
                if 2 <= axis < 2 + len(grid_dims):
                    fixed[axis - 2] = value
                else:
                    frame_axes[axis] = value
            else:
                raise InvalidChunksError(
                    f"chunks has an entry for {key!r}, which is not a dim of the array "
                    f"{dims}")
    elif isinstance(chunks, Sequence):
        spec = list(chunks)
        if len(spec) == len(grid_dims):
            fixed = dict(enumerate(spec))
        elif len(spec) == len(shape):
            fixed = dict(enumerate(spec[2 : 2 + len(grid_dims)]))
            frame_axes = {0: spec[0], 1: spec[1]}
            if colour:
                frame_axes[len(shape) - 1] = spec[-1]
        else:
            raise InvalidChunksError(
                f"chunks {chunks!r} has {len(spec)} entries; the array has {len(grid_dims)} "
                f"dims {grid_dims} (or {len(shape)} axes {dims} with x and y)")
    else:
        raise InvalidChunksError(f"chunks {chunks!r} is not 'auto', a byte size, an int, a "
                                 "tuple or a dict")
    for axis, value in fixed.items():
        _check_chunk_spec(value, grid_dims[axis])
    for axis, value in frame_axes.items():
        _check_chunk_spec(value, dims[axis])
    # dims not given: as many frames as fit the byte budget, from the first dim on
    per_chunk = max(1, budget // max(frame_nbytes, 1))
    if max_frames is not None:
        per_chunk = min(per_chunk, max_frames)
    for axis, value in fixed.items():
        n = grid_shape[axis]
        size = n if value in (-1, None) else value
        if isinstance(size, Sequence):
            size = max(size) if len(size) else 1
        per_chunk = max(1, per_chunk // max(int(size), 1))
    spec_grid: list[Any] = []
    for axis, n in enumerate(grid_shape):
        if axis in fixed:
            value = fixed[axis]
            spec_grid.append(n if value in (-1, None) else value)
        else:
            size = max(1, min(n, per_chunk))
            if size < n:  # as many chunks as needed, of even sizes
                size = -(-n // -(-n // size))
            spec_grid.append(size)
            per_chunk = max(1, per_chunk // size) if size == n else 1
    spec_all: list[Any] = [shape[0], shape[1], *spec_grid] + ([3] if colour else [])
    for axis, value in frame_axes.items():
        spec_all[axis] = shape[axis] if value in (-1, None) else value
    return tuple(_axis_chunks(spec, n, chunks) for spec, n in zip(spec_all, shape))


def _axis_chunks(spec: Any, n: int, given: Any) -> tuple[int, ...]:
    """One axis' chunk sizes from a size (regular, last one shorter) or explicit sizes."""
    if isinstance(spec, Sequence):
        sizes = tuple(int(v) for v in spec)
        if sum(sizes) != n:
            raise InvalidChunksError(f"chunks {given!r}: the sizes {sizes} add up to "
                                     f"{sum(sizes)}, the axis has {n}")
        return sizes
    size = int(spec)
    if n == 0:
        return (0,)
    return (size,) * (n // size) + ((n % size,) if n % size else ())


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """``"64MiB"``, ``"1 GB"``, ``"5e6"`` as a number of bytes (as dask.utils.parse_bytes).

    >>> parse_bytes("64MiB"), parse_bytes("1.5 kB"), parse_bytes("100")
    (67108864, 1500, 100)
    """
    value = text.strip().lower().replace(" ", "")
    unit = value.lstrip("0123456789.e+-")
    number = value[: len(value) - len(unit)] if unit else value
    try:
        result = float(number or "1") * _UNITS[unit or "b"]
    except (KeyError, ValueError):
        raise ValueError(f"{text!r} is not a size such as '64MiB'") from None
    if result < 1:
        raise ValueError(f"{text!r} is less than one byte")
    return int(result)


def _default_budget() -> int:
    """dask's array.chunk-size if dask is loaded (the user may have set it), else 128 MiB."""
    if "dask" in sys.modules:
        import dask

        chunk_size = dask.config.get("array.chunk-size", "128MiB")
        return chunk_size if isinstance(chunk_size, int) else parse_bytes(str(chunk_size))
    return 128 * 2**20


def _check_chunk_spec(value: Any, what: str) -> None:
    if value in (-1, None):
        return
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            raise InvalidChunksError(
                f"a chunk size must be a positive integer or -1 (the whole axis); got "
                f"{value!r} for {what!r}")
        return
    if isinstance(value, Sequence) and not isinstance(value, str) and all(
            isinstance(v, numbers.Integral) and int(v) >= 0 for v in value):
        return
    raise InvalidChunksError(f"chunk size {value!r} for {what!r} is not a positive integer, "
                             "-1 or a tuple of sizes")


# ---------------------------------------------------------------- planning


_FORMAT_COLUMNS = (
    # (index column, PixelFormat field, default when absent)
    ("TransferSyntaxUID", "transfer_syntax", "1.2.840.10008.1.2.1"),
    ("Rows", "rows", 0),
    ("Columns", "columns", 0),
    ("SamplesPerPixel", "samples_per_pixel", 1),
    ("BitsAllocated", "bits_allocated", 16),
    ("BitsStored", "bits_stored", -1),
    ("PixelRepresentation", "pixel_representation", 0),
    ("PhotometricInterpretation", "photometric", "MONOCHROME2"),
    ("PlanarConfiguration", "planar_configuration", 0),
    ("NumberOfFrames", "number_of_frames", 1),
)


def _numeric(default: Any, dtype: Any) -> Any:
    def convert(col: pd.Series) -> np.ndarray:
        import pandas as pd

        return pd.to_numeric(col, errors="coerce").fillna(default).to_numpy(dtype=dtype)
    return convert


def _text(default: Any) -> Any:
    def convert(col: pd.Series) -> np.ndarray:
        return col.astype(object).where(col.notna(), default).astype(str).str.strip().to_numpy()
    return convert


def _column(table: Columns, name: str, default: Any, dtype: Any) -> np.ndarray:
    """The column ``name`` as ``dtype``, ``default`` where absent or not a value."""
    if name not in table:
        return np.full(len(table), default, dtype=dtype)
    if np.dtype(dtype).kind in "if":
        key = ("numeric", name, default, np.dtype(dtype).str)
        return table.derived(key, _numeric(default, dtype))
    return table.derived(("text", name, default), _text(default))


def _format_value(value: Any, default: Any, field: str) -> Any:
    """One distinct value of a pixel-format column, as PixelFormat holds it."""
    if field == "palette_bits":
        return int(value[2]) if isinstance(value, tuple | list) and len(value) == 3 else 0
    if isinstance(default, str):
        return str(value).strip() if value is not None else default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return int(number) if math.isfinite(number) else default


def frame_table(table: pd.DataFrame | Columns, root: str, source: FrameSource | None = None
                ) -> FrameTable:
    """The ``FrameTable`` of the image rows of an index table (vectorised); ``source``
    reads the frames of a remote database (None: files under ``root``).

    ``table`` may be a ``Columns`` view of the index (``lazydicom.columns``),
    whose columns are converted once for every series planned from it.
    """
    table = columns_of(table)
    n = len(table)
    file_codes, paths = table.factorized("path")
    first = np.unique(file_codes, return_index=True)[1] if n else np.empty(0, dtype=np.int64)
    sizes = _column(table, "size", -1, np.int64)[first]
    mtimes = _column(table, "mtime", -1, np.int64)[first]
    # one format code per row: each column factorised (codes by first appearance),
    # the codes combined in mixed radix, and that factorised; a PixelFormat per
    # distinct row, built from its first row (a few per series, not one per frame)
    combined = np.zeros(n, dtype=np.int64)
    columns: dict[str, tuple[np.ndarray, list[Any]]] = {}
    for column, field, default in _FORMAT_COLUMNS + (("RedPaletteColorLookupTableDescriptor",
                                                      "palette_bits", 0),):
        if column in table and n:
            codes, uniques = table.factorized(column)
            values = [_format_value(u, default, field) for u in uniques] + [default]
            codes = np.where(codes < 0, len(values) - 1, codes)
        else:
            codes, values = np.zeros(n, dtype=np.int64), [default]
        columns[field] = (codes, values)
        combined = combined * len(values) + codes
    if n:
        _, first_rows, format_codes = np.unique(combined, return_index=True,
                                                return_inverse=True)
    else:
        first_rows = format_codes = np.empty(0, np.int64)
    formats = []
    for row in first_rows.tolist():
        fields = {f: vals[int(codes[row])] for f, (codes, vals) in columns.items()}
        if fields["bits_stored"] < 0:
            fields["bits_stored"] = fields["bits_allocated"]
        formats.append(PixelFormat(**fields))
    return FrameTable(
        paths=tuple(f"{root}/{p}" for p in paths),
        sizes=sizes,
        mtimes=mtimes,
        formats=tuple(formats),
        file=file_codes.astype(np.int32),
        index=(_column(table, "FrameNumber", 1, np.int64) - 1).astype(np.int32),
        offset=_column(table, "FrameOffset", -1, np.int64),
        length=_column(table, "FrameLength", -1, np.int64),
        pixel_offset=_column(table, "PixelDataOffset", -1, np.int64),
        format=np.asarray(format_codes, dtype=np.int16).reshape(-1),
        slope=_column(table, "RescaleSlope", 1.0, np.float64),
        intercept=_column(table, "RescaleIntercept", 0.0, np.float64),
        source=source,
    )


def select(
    table: pd.DataFrame,
    dims: Sequence[str],
    coords: Mapping[str, Any] | None = None,
    slice: Mapping[str, Any] | None = None,
    *,
    root: str,
    rescale: bool = True,
    fill_value: Any = 0,
    cache: FrameCacheLike | None = None,
    source: FrameSource | None = None,
    columns: Columns | None = None,
) -> DicomFrames:
    """Plan a selection: the grid of ``table``'s frames and the frames it reads.

    ``dims`` are index columns; ``coords``/``slice`` are keyed by index column.
    ``source``: where the bytes come from when not from local files (the
    ``FrameTable.source``; ``root`` is then the folder's URL). ``columns``: the
    same rows as a ``Columns`` view of the index, whose converted columns are
    shared by every series planned from it. Reads no pixel file.
    """
    from .grid import build_grid

    grid = build_grid(table, dims, coords, slice)
    used = np.unique(grid.cells[grid.cells >= 0])
    # every row, in order (the usual series): no copy of the table's columns
    every = len(used) == len(table) and (not len(used) or int(used[-1]) == len(used) - 1)
    rows = columns_of(table) if columns is None else columns
    frames = frame_table(rows if every else rows.take(used), root, source)
    cells = np.where(grid.cells >= 0, np.searchsorted(used, grid.cells), -1)
    grid = Grid(grid.dims, grid.coords, cells)
    formats = frames.formats or frame_table(rows.take(np.arange(min(1, len(rows)))),
                                            root).formats
    shape = _frame_shape(frames) if len(frames) else (
        formats[0].frame_shape if formats else (0, 0))
    dtype = _result_dtype(frames, formats, rescale)
    dtype = _with_fill(dtype, fill_value)
    return DicomFrames(frames, grid, dtype, shape, fill_value, rescale, cache, rows=used)


def _frame_shape(frames: FrameTable) -> tuple[int, ...]:
    """The common frame shape ``(x, y[, 3])``; a clear error when frames differ."""
    used = np.unique(frames.format)
    shapes: dict[tuple[int, ...], int] = {}
    for code in used.tolist():
        shapes.setdefault(frames.formats[code].frame_shape, code)
    if len(shapes) > 1:
        example = {}
        for shape, code in shapes.items():
            frame = int(np.flatnonzero(frames.format == code)[0])
            example[shape] = frames.paths[frames.file[frame]]
        described = "; ".join(
            f"{s[1]}x{s[0]}{' colour' if len(s) == 3 else ''} (e.g. {p!r})"
            for s, p in example.items()
        )
        raise InconsistentFramesError(
            f"The selected frames differ in size (rows x columns): {described}. "
            "Select frames of one size, e.g. with coords or by filtering on Rows/Columns."
        )
    return next(iter(shapes))


def _result_dtype(frames: FrameTable, formats: Sequence[PixelFormat], rescale: bool
                  ) -> np.dtype:
    """float32 when a frame is rescaled, else the (common) stored dtype."""
    if rescale and len(frames) and frames.rescaled():
        return np.dtype(np.float32)
    used = [formats[c] for c in np.unique(frames.format).tolist()] if len(frames) else formats[:1]
    if not used:
        return np.dtype(np.float32 if rescale else np.uint16)
    return np.result_type(*(f.dtype for f in used))


def _with_fill(dtype: np.dtype, fill_value: Any) -> np.dtype:
    """The smallest dtype holding the frames and ``fill_value`` (NaN makes it float)."""
    value = np.asarray(fill_value) if isinstance(fill_value, numbers.Number | np.number) else None
    if value is None or value.dtype.kind not in "iuf":
        raise InvalidArgumentError(
            f"fill_value must be a real number (the value of cells without a frame), not "
            f"{fill_value!r}")
    number = value.item()
    if dtype.kind in "iu":
        if isinstance(number, float):
            if not number.is_integer():
                return np.promote_types(dtype, np.float32)  # as xarray does for a NaN fill
            number = int(number)
        info = np.iinfo(dtype)
        if info.min <= number <= info.max:
            return dtype
        return np.result_type(dtype, np.min_scalar_type(number))
    if dtype.kind == "f" and math.isfinite(number) and abs(number) > np.finfo(dtype).max:
        return np.dtype(np.float64)
    return dtype


def _coord_values(values: Sequence[Any]) -> Any:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values)
    return list(values)
