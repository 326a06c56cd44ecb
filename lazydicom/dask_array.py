"""The dask array of a [`DicomFrames`][lazydicom.array.DicomFrames], assembled in Fortran order.

``frame_array`` builds the graph ``dask.array.from_array`` would: the
frames object as one graph node and one ``getter`` task per chunk, so that
dask's optimizer fuses later slicing into the ``getter`` (``arr[:, :, 3]``
reaches ``frames[..., 3]``, which reads one frame, whatever the chunk size).

[`FrameArray`][lazydicom.dask_array.FrameArray] is a ``dask.array.Array`` with one difference:
``compute()`` returns a Fortran-ordered array. dask's ``finalize`` copies
every result into a C-ordered array; for ``(x, y, *dims)`` blocks of DICOM
frames (each frame contiguous, i.e. Fortran order) that is a corner turn of
every pixel, several times the cost of reading it (see docs/semantics.md,
"Memory order"), while the Fortran-ordered result is the blocks laid end to
end, and a single chunk is the result itself. Arrays derived from a
``FrameArray`` (slices, arithmetic, persist) are plain dask arrays.

This module imports dask; lazydicom imports it only when a dask array is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from dask.array.core import Array, getter, graph_from_arraylike
from dask.base import tokenize

if TYPE_CHECKING:
    from .array import DicomFrames

__all__ = ["FrameArray", "frame_array"]


class FrameArray(Array):
    """A dask array of DICOM frames whose ``compute()`` assembles in Fortran order.

    Values, chunks and graph are those of a plain ``dask.array.Array``;
    ``np.ascontiguousarray(arr.compute())`` gives a C-ordered result.

    On dask's local threaded or synchronous scheduler, ``arr.compute()`` (and
    ``np.asarray(arr)``) reads the frames straight into one result, as
    ``DicomFrames.read`` does, instead of reading each chunk into its own
    array and copying the chunks into the result afterwards (a second
    allocation and a single-threaded copy of every byte, measured at 1.5x the
    read on real CT). The values are the same; other schedulers (processes,
    dask.distributed) and ``dask.compute`` of several collections take dask's
    path.
    """

    __slots__ = ()

    def compute(self, **kwargs: Any) -> Any:
        frames = self.__dict__.get("_frames")
        if frames is not None and set(kwargs) <= {"scheduler", "num_workers"}:
            import dask.local
            import dask.threaded
            from dask.base import get_scheduler

            get = get_scheduler(scheduler=kwargs.get("scheduler"), collections=[self])
            if get is dask.threaded.get:
                return frames.read(num_workers=kwargs.get("num_workers"))
            if get is dask.local.get_sync:
                return frames.read(scheduler="sync")
        return super().compute(**kwargs)

    def __dask_postcompute__(self) -> tuple[Any, tuple]:
        return assemble_fortran, (self.chunks, self.dtype)

    def __reduce__(self) -> tuple[Any, tuple]:
        return (_rebuild, (self.dask, self.name, self.chunks, self.dtype, self._meta,
                           self.__dict__.get("_frames")))


def _rebuild(dsk: Any, name: str, chunks: Any, dtype: Any, meta: Any,
             frames: DicomFrames | None) -> FrameArray:
    """Unpickle a FrameArray with the frames object its compute() reads."""
    array = FrameArray(dsk, name, chunks, dtype, meta)
    if frames is not None:
        array.__dict__["_frames"] = frames
    return array


def assemble_fortran(results: Any, chunks: tuple[tuple[int, ...], ...], dtype: np.dtype
                     ) -> np.ndarray:
    """dask ``finalize`` of a ``FrameArray``: its blocks in one Fortran-ordered array.

    A single block is returned as is: it was read for this compute and is
    referenced nowhere else (persisted arrays are plain dask arrays, whose
    ``finalize`` copies).
    """
    blocks: list[Any] = []
    stack = [results]
    while stack:  # depth-first, in the order dask nests block results
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        else:
            blocks.append(item)
    if len(blocks) == 1:
        return np.asfortranarray(blocks[0])
    out = np.empty(tuple(sum(c) for c in chunks), dtype=dtype, order="F")
    starts = [np.cumsum((0,) + c).tolist() for c in chunks]
    for block, index in zip(blocks, np.ndindex(*(len(c) for c in chunks))):
        out[tuple(slice(s[i], s[i + 1]) for s, i in zip(starts, index))] = block
    return out


def frame_array(frames: DicomFrames, chunks: tuple[tuple[int, ...], ...]) -> FrameArray:
    """A ``FrameArray`` reading ``frames``, with normalised ``chunks``. Opens no file."""
    import dask.array

    name = f"lazydicom-{tokenize(frames.token, chunks)}"
    meta = np.empty((0,) * frames.ndim, dtype=frames.dtype)
    if dask.array.Array is not Array:  # pragma: no cover - dask's array-expr collections
        return dask.array.from_array(frames, chunks=chunks, name=name, asarray=False, meta=meta)
    graph = graph_from_arraylike(frames, chunks, frames.shape, name, getitem=getter,
                                 inline_array=False)
    array = FrameArray(graph, name, chunks, meta=meta)
    array.__dict__["_frames"] = frames  # not a slot: Array's cached properties live there too
    return array
