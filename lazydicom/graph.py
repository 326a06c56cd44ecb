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


def _int(value: Any, default: int) -> int:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return default
    return int(value)


def _float(value: Any, default: float) -> float:
    if value is None:
        return default
    try:
        f = float(value)
    except (TypeError, ValueError):
        return default
    return default if np.isnan(f) else f


def frame_refs(table: pd.DataFrame, root: str) -> list[FrameRef]:
    """A :class:`FrameRef` per row of an index table (image rows only)."""
    refs = []
    cols = table.columns
    get = {c: table[c].tolist() for c in (
        "path", "FrameNumber", "NumberOfFrames", "PixelDataOffset", "FrameOffset", "FrameLength",
        "TransferSyntaxUID", "Rows", "Columns", "SamplesPerPixel", "BitsAllocated",
        "BitsStored", "PixelRepresentation", "PhotometricInterpretation",
        "PlanarConfiguration", "RescaleSlope", "RescaleIntercept", "size", "mtime",
    ) if c in cols}
    n = len(table)
    none = [None] * n
    for i in range(n):
        bits = _int(get["BitsAllocated"][i], 16)
        refs.append(FrameRef(
            path=f"{root}/{get['path'][i]}",
            index=_int(get["FrameNumber"][i], 1) - 1,
            number_of_frames=_int(get.get("NumberOfFrames", none)[i], 1),
            pixel_offset=_int(get["PixelDataOffset"][i], -1),
            frame_offset=_int(get["FrameOffset"][i], -1),
            frame_length=_int(get["FrameLength"][i], -1),
            transfer_syntax=str(get["TransferSyntaxUID"][i]),
            rows=_int(get["Rows"][i], 0),
            columns=_int(get["Columns"][i], 0),
            samples_per_pixel=_int(get.get("SamplesPerPixel", none)[i], 1),
            bits_allocated=bits,
            bits_stored=_int(get.get("BitsStored", none)[i], bits),
            pixel_representation=_int(get.get("PixelRepresentation", none)[i], 0),
            photometric=str(get.get("PhotometricInterpretation", none)[i] or "MONOCHROME2"),
            planar_configuration=_int(get.get("PlanarConfiguration", none)[i], 0),
            slope=_float(get.get("RescaleSlope", none)[i], 1.0),
            intercept=_float(get.get("RescaleIntercept", none)[i], 0.0),
            size=_int(get["size"][i], -1),
            mtime=_int(get["mtime"][i], -1),
        ))
    return refs


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
) -> np.ndarray:
    """Task: read the frames of one block (``None`` for empty cells) into an array.

    The block is ``(x, y, *dims[, 3])`` in Fortran order, frames in F order over
    the dims, so each transposed frame lands as one contiguous copy.
    """
    grid_shape = block_shape[2 : len(block_shape) - (frame_dims - 2)]
    colour = frame_dims == 3
    if colour:
        # (x, y, *dims, 3): keep samples last for the user, but assemble per frame
        out = np.empty(block_shape, dtype=dtype)
        for flat, ref in enumerate(refs):
            idx = np.unravel_index(flat, grid_shape, order="F")
            out[(slice(None), slice(None), *idx)] = (
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


def fill_block(block_shape: tuple[int, ...], dtype: np.dtype, fill_value: Any) -> np.ndarray:
    """Task: a block with no frame (reads nothing)."""
    return np.full(block_shape, fill_value, dtype=dtype)


def dim_chunks(shape: Sequence[int], chunks: Any, dims: Sequence[str]) -> tuple[tuple[int, ...], ...]:
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
) -> Array:
    """A dask array of shape ``(x, y, *grid.shape[, 3])`` reading the grid's frames.

    ``refs[i]`` is the frame of table position ``i`` as used in ``grid.cells``.
    """
    colour = len(frame) == 3
    shape = grid.shape
    cchunks = dim_chunks(shape, chunks, grid.dims)
    all_chunks = ((frame[0],), (frame[1],), *cchunks) + (((3,),) if colour else ())
    if 0 in shape:
        return _empty(all_chunks, dtype)
    starts = [np.cumsum((0,) + c) for c in cchunks]
    token = tokenize(
        [(r.path, r.index, r.size, r.mtime, r.frame_offset) for r in refs],
        grid.cells, dtype.str, fill_value, rescale, cchunks, frame,
    )
    name = f"lazydicom-{token}"
    dsk: dict = {}
    for block in np.ndindex(*(len(c) for c in cchunks)):
        sl = tuple(slice(int(s[b]), int(s[b + 1])) for s, b in zip(starts, block))
        cells = grid.cells[sl]
        bshape = (frame[0], frame[1], *cells.shape) + ((3,) if colour else ())
        key = (name, 0, 0, *block) + ((0,) if colour else ())
        flat = cells.reshape(-1, order="F")
        if (flat < 0).all():
            dsk[key] = (fill_block, bshape, dtype, fill_value)
        else:
            block_refs = tuple(None if c < 0 else refs[c] for c in flat.tolist())
            dsk[key] = (read_block, block_refs, bshape, len(frame), dtype, fill_value, rescale)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return Array(graph, name, all_chunks, dtype=dtype)


def _empty(chunks, dtype) -> Array:
    import dask.array as da

    shape = tuple(sum(c) for c in chunks)
    return da.zeros(shape, dtype=dtype, chunks=tuple(c if sum(c) else (0,) for c in chunks))
