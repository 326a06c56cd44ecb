"""The dask graph: one read task per chunk of selected cells, nothing for empty ones.

The graph is built from the grid alone; no DICOM file is opened. A task
carries only :class:`~lazydicom.pixels.FrameRef` records (path, offsets,
layout) and small constants, so the same graph runs on threads, processes
and dask.distributed workers. Keys are ``lazydicom-<token>`` with the token
computed from what determines the result (files and their versions, frame
placement, dtype, rescale, fill value, chunking), so equal calls share keys.

Chunks span the whole frame in ``x`` and ``y``. Along the dims the default is
one frame per chunk, so any selection by dask slicing computes only the frames
it touches; ``chunks=`` groups frames into fewer, larger tasks, which is what
full reads want (a dask task costs more than reading a native frame).
Each block is assembled in Fortran order, where a transposed ``(rows, cols)``
frame is one contiguous copy (the C-order scatter costs ten times the read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from dask.array import Array
from dask.array.core import normalize_chunks
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .errors import InconsistentFramesError
from .grid import Grid
from .pixels import FrameRef, frame_shape, read_frame, stored_dtype

__all__ = ["frame_refs", "result_dtype", "build_array", "read_block"]


_REF_COLUMNS = (
    # (index column, FrameRef field, default when absent)
    ("FrameNumber", "index", 1),
    ("NumberOfFrames", "number_of_frames", 1),
    ("PixelDataOffset", "pixel_offset", -1),
    ("FrameOffset", "frame_offset", -1),
    ("FrameLength", "frame_length", -1),
    ("Rows", "rows", 0),
    ("Columns", "columns", 0),
    ("SamplesPerPixel", "samples_per_pixel", 1),
    ("BitsAllocated", "bits_allocated", 16),
    ("BitsStored", "bits_stored", -1),
    ("PixelRepresentation", "pixel_representation", 0),
    ("PlanarConfiguration", "planar_configuration", 0),
    ("size", "size", -1),
    ("mtime", "mtime", -1),
)


def _int_column(table: pd.DataFrame, column: str, default: int) -> list[int]:
    if column not in table.columns:
        return [default] * len(table)
    values = pd.to_numeric(table[column], errors="coerce").fillna(default)
    return values.astype(np.int64).tolist()


def _float_column(table: pd.DataFrame, column: str, default: float) -> list[float]:
    if column not in table.columns:
        return [default] * len(table)
    values = pd.to_numeric(table[column], errors="coerce").fillna(default)
    return values.astype(np.float64).tolist()


def frame_refs(table: pd.DataFrame, root: str) -> list[FrameRef]:
    """A :class:`FrameRef` per row of an index table (image rows only)."""
    n = len(table)
    ints = {field: _int_column(table, col, d) for col, field, d in _REF_COLUMNS}
    ints["index"] = [i - 1 for i in ints["index"]]
    bits = ints["bits_allocated"]
    ints["bits_stored"] = [b if s < 0 else s for s, b in zip(ints["bits_stored"], bits)]
    photometric = (
        table["PhotometricInterpretation"].fillna("MONOCHROME2").astype(str).tolist()
        if "PhotometricInterpretation" in table.columns
        else ["MONOCHROME2"] * n
    )
    paths = [f"{root}/{p}" for p in table["path"].tolist()]
    syntax = table["TransferSyntaxUID"].astype(str).tolist()
    slope = _float_column(table, "RescaleSlope", 1.0)
    intercept = _float_column(table, "RescaleIntercept", 0.0)
    return [
        FrameRef(
            paths[i],
            ints["index"][i],
            ints["number_of_frames"][i],
            ints["pixel_offset"][i],
            ints["frame_offset"][i],
            ints["frame_length"][i],
            syntax[i],
            ints["rows"][i],
            ints["columns"][i],
            ints["samples_per_pixel"][i],
            bits[i],
            ints["bits_stored"][i],
            ints["pixel_representation"][i],
            photometric[i],
            ints["planar_configuration"][i],
            slope[i],
            intercept[i],
            ints["size"][i],
            ints["mtime"][i],
        )
        for i in range(n)
    ]


def result_dtype(refs: Sequence[FrameRef], table: pd.DataFrame | None, rescale: bool) -> np.dtype:
    """The array's dtype, decided from the index before any pixel is read.

    float32 when any frame has a RescaleSlope/Intercept other than 1/0 (and
    ``rescale``), else the stored dtype (the common type if frames differ).
    """
    if not refs:
        return np.dtype(np.float32 if rescale else np.uint16)
    if rescale and any(r.slope != 1 or r.intercept != 0 for r in refs):
        return np.dtype(np.float32)
    palette_bits = None
    if table is not None and "RedPaletteColorLookupTableDescriptor" in table.columns:
        desc = table["RedPaletteColorLookupTableDescriptor"].dropna().tolist()
        if desc and isinstance(desc[0], tuple) and len(desc[0]) == 3:
            palette_bits = int(desc[0][2])
    kinds = {(r.bits_allocated, r.pixel_representation, r.photometric) for r in refs}
    return np.result_type(*(stored_dtype(b, p, ph, palette_bits) for b, p, ph in kinds))


def check_frames(refs: Sequence[FrameRef]) -> tuple[int, ...]:
    """The common frame shape ``(x, y[, 3])``; a clear error when frames differ."""
    shapes: dict[tuple[int, ...], FrameRef] = {}
    for r in refs:
        shapes.setdefault(frame_shape(r), r)
    if len(shapes) > 1:
        described = "; ".join(
            f"{s[1]}x{s[0]}{' colour' if len(s) == 3 else ''} (e.g. {r.path!r})"
            for s, r in shapes.items()
        )
        raise InconsistentFramesError(
            f"The selected frames differ in size (rows x columns): {described}. "
            "Select frames of one size, e.g. with coords or by filtering on Rows/Columns."
        )
    return next(iter(shapes)) if shapes else (0, 0)


def read_block(
    refs: tuple[FrameRef | None, ...],
    block_shape: tuple[int, ...],
    frame_dims: int,
    dtype: np.dtype,
    fill_value: Any,
    rescale: bool,
    cache: Any = None,
) -> np.ndarray:
    """Task: read the frames of one block (``None`` for empty cells) into an array.

    The block is ``(x, y, *dims[, 3])`` in Fortran order, frames in F order over
    the dims, so each transposed frame lands as one contiguous copy. ``cache``
    is an optional :class:`~lazydicom.cache.FrameCache` that frames are read through.
    """
    read_frame = _reader(cache)
    grid_shape = block_shape[2 : len(block_shape) - (frame_dims - 2)]
    colour = frame_dims == 3
    if colour:
        # (x, y, *dims, 3): keep samples last for the user, but assemble per frame
        out = np.empty(block_shape, dtype=dtype)
        for flat, ref in enumerate(refs):
            idx = tuple(int(i) for i in np.unravel_index(flat, grid_shape, order="F"))
            cell: tuple[Any, ...] = (slice(None), slice(None), *idx)
            out[cell] = (
                fill_value if ref is None else read_frame(ref, rescale)
            )
        return out
    out = np.empty(block_shape, dtype=dtype, order="F")
    frames = out.reshape(block_shape[0], block_shape[1], -1, order="F")
    for flat, ref in enumerate(refs):
        if ref is None:
            frames[:, :, flat] = fill_value
        else:
            frames[:, :, flat] = read_frame(ref, rescale)
    return out


def _useful(cache: Any, refs: Sequence[FrameRef]) -> Any:
    """The cache, or None when it caches none of ``refs`` (native frames bypass it)."""
    if cache is None or any(cache.cacheable(r) for r in refs):
        return cache
    return None


def _reader(cache: Any):
    """``read_frame``, or the cache's read-through equivalent."""
    return read_frame if cache is None else cache.read


def fill_block(block_shape: tuple[int, ...], dtype: np.dtype, fill_value: Any) -> np.ndarray:
    """Task: a block with no frame (reads nothing)."""
    return np.full(block_shape, fill_value, dtype=dtype)


def dim_chunks(
    shape: Sequence[int], chunks: Any, dims: Sequence[str]
) -> tuple[tuple[int, ...], ...]:
    """Chunk sizes along the dims.

    ``None`` or 1: one frame per chunk. An int ``n``: about ``n`` frames per
    chunk, taken from the first dim on. A mapping ``{dim: size}`` or a
    sequence of sizes (``-1`` for the whole axis): as in dask.
    """
    if chunks is None:
        chunks = 1
    if isinstance(chunks, Mapping):
        spec = tuple(chunks.get(d, 1) for d in dims)
    elif isinstance(chunks, int | np.integer):
        budget, spec_list = max(int(chunks), 1), []
        for n in shape:
            size = max(1, min(n, budget))
            spec_list.append(size)
            budget = max(1, budget // max(size, 1))
        spec = tuple(spec_list)
    else:
        spec = tuple(chunks)
        if len(spec) != len(dims):
            raise ValueError(
                f"chunks {chunks!r} has {len(spec)} entries, the array has {len(dims)} dims {dims}"
            )
    spec = tuple(n if c in (-1, None) else c for c, n in zip(spec, shape))
    return normalize_chunks(spec, tuple(shape)) if shape else ()


def build_array(
    grid: Grid,
    refs: Sequence[FrameRef],
    dtype: np.dtype,
    frame: tuple[int, ...],
    *,
    fill_value: Any = 0,
    rescale: bool = True,
    chunks: Any = None,
    cache: Any = None,
) -> Array:
    """A dask array of shape ``(x, y, *grid.shape[, 3])`` reading the grid's frames.

    ``refs[i]`` is the frame of table position ``i`` as used in ``grid.cells``.
    ``cache`` (a picklable :class:`~lazydicom.cache.FrameCache`) is passed to
    every read task, unless it caches none of the frames.
    """
    cache = _useful(cache, refs)
    colour = len(frame) == 3
    shape = grid.shape
    cchunks = dim_chunks(shape, chunks, grid.dims)
    all_chunks = ((frame[0],), (frame[1],), *cchunks) + (((3,),) if colour else ())
    if 0 in shape:
        return _empty(all_chunks, dtype)
    name = f"lazydicom-{_token(grid, refs, dtype, fill_value, rescale, cchunks, frame)}"
    extra = (0,) if colour else ()
    dsk: dict = {}
    if all(n == 1 for c in cchunks for n in c):
        # one frame per chunk (the default): block index == cell index
        bshape = (frame[0], frame[1], *(1,) * len(shape)) + ((3,) if colour else ())
        for block, c in zip(np.ndindex(*shape), grid.cells.reshape(-1).tolist()):
            key = (name, 0, 0, *block, *extra)
            if c < 0:
                dsk[key] = (fill_block, bshape, dtype, fill_value)
            else:
                dsk[key] = (
                    read_block,
                    (refs[c],),
                    bshape,
                    len(frame),
                    dtype,
                    fill_value,
                    rescale,
                    cache,
                )
    else:
        starts = [np.cumsum((0,) + c) for c in cchunks]
        for block in np.ndindex(*(len(c) for c in cchunks)):
            sl = tuple(slice(int(s[b]), int(s[b + 1])) for s, b in zip(starts, block))
            cells = grid.cells[sl]
            bshape = (frame[0], frame[1], *cells.shape) + ((3,) if colour else ())
            key = (name, 0, 0, *block, *extra)
            flat = cells.reshape(-1, order="F").tolist()
            if all(c < 0 for c in flat):
                dsk[key] = (fill_block, bshape, dtype, fill_value)
            else:
                block_refs = tuple(None if c < 0 else refs[c] for c in flat)
                dsk[key] = (
                    read_block,
                    block_refs,
                    bshape,
                    len(frame),
                    dtype,
                    fill_value,
                    rescale,
                    cache,
                )
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return Array(graph, name, all_chunks, dtype=dtype)


def _token(grid: Grid, refs: Sequence[FrameRef], *args: Any) -> str:
    """Deterministic token of what determines the array: files, versions, placement."""
    import hashlib

    h = hashlib.sha1()
    h.update("\0".join(r.path for r in refs).encode())
    h.update(
        np.array(
            [(r.index, r.size, r.mtime, r.frame_offset, r.pixel_offset) for r in refs],
            dtype=np.int64,
        ).tobytes()
    )
    h.update(np.array([(r.slope, r.intercept) for r in refs], dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(grid.cells).tobytes())
    return tokenize(h.hexdigest(), grid.shape, *[str(a) for a in args])


def _empty(chunks, dtype) -> Array:
    import dask.array as da

    shape = tuple(sum(c) for c in chunks)
    return da.zeros(shape, dtype=dtype, chunks=tuple(c if sum(c) else (0,) for c in chunks))


def _fill_frames(
    target: np.ndarray,
    positions: Sequence[int],
    refs: Sequence[FrameRef | None],
    fill_value: Any,
    rescale: bool,
    cache: Any = None,
) -> None:
    read_frame = _reader(cache)
    for pos, ref in zip(positions, refs):
        target[:, :, pos] = fill_value if ref is None else read_frame(ref, rescale)


def _read_frames(
    refs: Sequence[FrameRef | None],
    frame: tuple[int, ...],
    dtype: np.dtype,
    fill_value: Any,
    rescale: bool,
    cache: Any = None,
) -> np.ndarray:
    """Task for worker processes: frames stacked on a new axis (F order, contiguous)."""
    out = np.empty((*frame[:2], len(refs), *frame[2:]), dtype=dtype, order="F")
    _fill_frames(out, range(len(refs)), refs, fill_value, rescale, cache)
    return out


def read_into(
    out: np.ndarray,
    grid: Grid,
    refs: Sequence[FrameRef],
    *,
    fill_value: Any = 0,
    rescale: bool = True,
    frames_per_task: int = 64,
    scheduler: str = "threads",
    num_workers: int | None = None,
    cache: Any = None,
) -> np.ndarray:
    """Read the grid's frames straight into ``out``, a Fortran-ordered numpy array.

    The eager fast path: every frame is copied once, into its contiguous slot,
    by tasks of ``frames_per_task`` frames run on dask's threaded (or
    synchronous) scheduler. Nothing is assembled by dask. With
    ``scheduler="processes"`` the tasks run in worker processes (for
    compressed data, whose decoders hold the GIL) and their blocks are copied
    in as they arrive.
    """
    import functools

    cache = _useful(cache, refs)
    if not out.flags.f_contiguous:
        raise ValueError("read_into needs a Fortran-ordered array (np.empty(..., order='F'))")
    if scheduler not in ("threads", "sync", "synchronous", "single-threaded", "processes"):
        raise ValueError(
            f"scheduler {scheduler!r} is not one of 'threads', 'sync' or 'processes'; "
            "for a dask.distributed cluster use ndarray(...) and compute or store it"
        )
    if out.size == 0:
        return out
    tail = out.shape[2 + len(grid.shape) :]
    target = out.reshape(out.shape[0], out.shape[1], -1, *tail, order="F")
    flat = grid.cells.reshape(-1, order="F").tolist()
    step = max(1, int(frames_per_task))
    batches = [
        (start, [None if c < 0 else refs[c] for c in flat[start : start + step]])
        for start in range(0, len(flat), step)
    ]
    if scheduler == "processes":
        from concurrent.futures import ProcessPoolExecutor

        from .index import _pool_context

        frame = (out.shape[0], out.shape[1], *tail)
        with ProcessPoolExecutor(num_workers, mp_context=_pool_context()) as pool:
            futures = {
                pool.submit(_read_frames, b, frame, out.dtype, fill_value, rescale, cache): start
                for start, b in batches
            }
            for future in futures:
                block = future.result()
                start = futures[future]
                target[:, :, start : start + block.shape[2]] = block
        return out
    from dask.local import get_sync
    from dask.threaded import get as get_threaded

    task = functools.partial(_fill_frames, target)
    dsk = {
        ("lazydicom-fill", start): (
            task,
            list(range(start, start + len(b))),
            b,
            fill_value,
            rescale,
            cache,
        )
        for start, b in batches
    }
    if scheduler == "threads":
        get_threaded(dsk, list(dsk), num_workers=num_workers)
    else:
        get_sync(dsk, list(dsk))
    return out
