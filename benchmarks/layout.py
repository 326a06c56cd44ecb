"""Layout benchmark (group ``layout``): what assembling ``(x, y, *dims)`` costs, and chunk sizes.

A DICOM frame is ``(rows, columns)`` in C order: the memory of ``(x, y)`` in
Fortran order. These rows measure the ways of putting a stack of such frames,
held as a Fortran-ordered ``(x, y, n)`` array, into a result
(docs/semantics.md, "Memory order", cites them):

- (a) ``C[...] = F``: numpy's copy into a C-ordered result, the corner turn
  dask's default assembly does;
- (b) the same copy in 64x64 (x, y) tiles, each tile a smaller corner turn;
- (c) OpenCV two-step: ``cv2.transpose`` of every frame into an ``(n, x, y)``
  C-ordered buffer, then one ``cv2.transpose`` of that ``(n, x*y)`` matrix into
  the ``(x*y, n)`` memory of the C-ordered result (skipped without
  ``opencv-python-headless``);
- (d) ``F[...] = F``: the Fortran-ordered copy, what
  :class:`lazydicom.dask_array.FrameArray` pays to assemble its blocks;
- (e) ``memcpy`` of the same bytes (``ctypes.memmove``): the floor.

For 512x512 float32 (a rescaled CT) and 256x256 uint16 (an MR) stacks of 150
frames (64 with ``--quick``), in interleaved rounds; every result is checked
against the source values.

Then a row per chunking of lazydicom's ``ndarray(dims).compute()`` and
``ndarray(dims).mean().compute()`` on the grid MR series and the uncompressed
CT: the default (bytes: dask's ``array.chunk-size``), ``chunks=-1`` (one
chunk), about 64 frames per chunk (a byte budget of 64 frames) and one frame
per chunk (``chunks=1``), interleaved (at least 5 rounds).
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .common import Row, error_row, fmt_ratio, import_lazydicom, time_interleaved
from .data import Manifest, clean_indexes, warm_page_cache

__all__ = [
    "STACKS",
    "corner_turn",
    "corner_turn_tiled",
    "corner_turn_cv2",
    "copy_fortran",
    "copy_memcpy",
    "copy_methods",
    "run_layout",
]

#: The stacks timed: (label, frame shape (x, y), dtype).
STACKS = (("512x512 float32", (512, 512), np.float32), ("256x256 uint16", (256, 256), np.uint16))
TILE = 64


def corner_turn(src: np.ndarray) -> np.ndarray:
    """(a) numpy ``C[...] = F``: a C-ordered copy of ``src``."""
    out = np.empty(src.shape, src.dtype, order="C")
    out[...] = src
    return out


def corner_turn_tiled(src: np.ndarray, tile: int = TILE) -> np.ndarray:
    """(b) a C-ordered copy of an ``(x, y, n)`` array, ``tile`` x ``tile`` pixels at a time."""
    out = np.empty(src.shape, src.dtype, order="C")
    nx, ny = src.shape[:2]
    for x0 in range(0, nx, tile):
        for y0 in range(0, ny, tile):
            out[x0 : x0 + tile, y0 : y0 + tile] = src[x0 : x0 + tile, y0 : y0 + tile]
    return out


def corner_turn_cv2(src: np.ndarray) -> np.ndarray:
    """(c) a C-ordered copy of an F-ordered ``(x, y, n)`` array with two ``cv2.transpose`` steps."""
    import cv2

    nx, ny, n = src.shape
    frames = np.empty((n, nx, ny), src.dtype)
    for k in range(n):
        # frame k of the F-ordered source is the C-ordered (y, x) matrix src[:, :, k].T
        cv2.transpose(src[:, :, k].T, dst=frames[k])
    out = np.empty(src.shape, src.dtype, order="C")
    cv2.transpose(frames.reshape(n, nx * ny), dst=out.reshape(nx * ny, n))
    return out


def copy_fortran(src: np.ndarray) -> np.ndarray:
    """(d) numpy ``F[...] = F``: a Fortran-ordered copy."""
    out = np.empty(src.shape, src.dtype, order="F")
    out[...] = src
    return out


def copy_memcpy(src: np.ndarray) -> np.ndarray:
    """(e) ``memcpy`` of ``src``'s bytes into a new array of the same layout."""
    if not (src.flags.c_contiguous or src.flags.f_contiguous):
        raise ValueError("memcpy needs a contiguous array")
    out = np.empty_like(src, order="K")
    ctypes.memmove(out.ctypes.data, src.ctypes.data, src.nbytes)
    return out


def copy_methods() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The copies timed, by row label (OpenCV's only when it is installed)."""
    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "(a) numpy C[...] = F (corner turn)": corner_turn,
        f"(b) numpy C[...] = F in {TILE}x{TILE} tiles": corner_turn_tiled,
    }
    if importlib.util.find_spec("cv2") is not None:
        methods["(c) OpenCV: cv2.transpose per frame, then of the (n, x*y) matrix"] = (
            corner_turn_cv2
        )
    methods["(d) numpy F[...] = F (FrameArray's assembly)"] = copy_fortran
    methods["(e) memcpy of the same bytes"] = copy_memcpy
    return methods


def _stack(shape: tuple[int, int], dtype: Any, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.asfortranarray(rng.integers(0, 4096, (*shape, n)).astype(dtype))


def copy_rows(n: int, repeat: int, verbose: bool = False) -> list[Row]:
    """The copy rows: every method on every stack of :data:`STACKS`, ``n`` frames."""
    rows: list[Row] = []
    methods = copy_methods()
    for label, shape, dtype in STACKS:
        src = _stack(shape, dtype, n)
        marks: dict[str, str] = {}

        def check(name: str, result: Any, src: np.ndarray = src,
                  marks: dict[str, str] = marks) -> None:
            marks[name] = "✓" if np.array_equal(result, src) else "✗"

        errors: dict[str, BaseException] = {}
        timings = time_interleaved(
            {name: (lambda f=f, s=src: f(s)) for name, f in methods.items()},
            max(repeat, 5),
            warmup=1,
            check=check,
            on_error=errors.__setitem__,
        )
        floor = next((t.median for name, t in timings.items() if name.startswith("(e)")), None)
        for name in methods:
            what = f"{label} x {n}: {name}"
            if name in errors:
                rows.append(error_row(what, errors[name], verbose=verbose))
                continue
            t = timings[name]
            row = Row(what, t.median, n, times=t.times, equal=marks.get(name, ""),
                      key=f"layout.{name[1]}")
            if floor:
                row.ratio = t.median / floor
                row.ratio_text = f"{fmt_ratio(row.ratio)}x memcpy"
            rows.append(row)
        if "cv2" not in " ".join(methods):
            rows.append(Row(f"{label}: (c) OpenCV", note="opencv-python-headless not "
                            "installed: skipped"))
        del src
    return rows


def _chunkings(frame_nbytes: int) -> list[tuple[str, Any]]:
    return [
        ("default (chunks=None: dask's array.chunk-size in bytes)", None),
        ("chunks=-1 (one chunk)", -1),
        ("about 64 frames per chunk (a byte budget of 64 frames)", f"{64 * frame_nbytes}B"),
        ("one frame per chunk (chunks=1)", 1),
    ]


def chunk_rows(label: str, series: Any, dims: tuple[str, ...], repeat: int,
               verbose: bool = False) -> list[Row]:
    """``ndarray(dims, chunks=...).compute()`` and ``.mean().compute()`` per chunking."""
    arr = series.ndarray(dims=dims)
    frames = int(np.prod(arr.shape[2:]))
    frame_nbytes = arr.shape[0] * arr.shape[1] * arr.dtype.itemsize
    calls: dict[str, Callable[[], Any]] = {}
    notes: dict[str, str] = {}
    for name, chunks in _chunkings(frame_nbytes):
        a = series.ndarray(dims=dims, chunks=chunks)
        per = int(max(np.prod([max(c) for c in a.chunks[2:]]), 1))
        notes[name] = f"{a.npartitions} chunk(s), up to {per} frames each"
        calls[f"{name}: compute()"] = lambda c=chunks: series.ndarray(dims=dims,
                                                                       chunks=c).compute()
        calls[f"{name}: mean().compute()"] = lambda c=chunks: series.ndarray(
            dims=dims, chunks=c).mean().compute()
    errors: dict[str, BaseException] = {}
    timings = time_interleaved(calls, max(repeat, 5), warmup=1, on_error=errors.__setitem__)
    rows = []
    for call in calls:
        name, _, op = call.rpartition(": ")
        what = f"{label}: ndarray(dims).{op}, {name}"
        if call in errors:
            rows.append(error_row(what, errors[call], verbose=verbose))
            continue
        t = timings[call]
        row = Row(what, t.median, frames, times=t.times, note=notes[name])
        default = timings.get(f"{_chunkings(frame_nbytes)[0][0]}: {op}")
        if default is not None:
            row.ratio = t.median / default.median
            row.ratio_text = "1 (default)" if t is default else f"{fmt_ratio(row.ratio)}x default"
        rows.append(row)
    return rows


def run_layout(
    grid: Manifest | None,
    scratch: Path,
    quick: bool = False,
    repeat: int = 3,
    verbose: bool = False,
) -> list[Row]:
    """The copy rows, then the chunking rows on the grid MR and the uncompressed CT."""
    rows = copy_rows(64 if quick else 150, repeat, verbose)
    lazydicom = import_lazydicom()
    if grid is not None:
        try:
            clean_indexes(grid.folder)
            warm_page_cache(grid.files)
            db = lazydicom.open(grid.folder, progress=False)
            (series,) = db.series(SeriesDescription=grid.spec.description)
            label = f"MR {grid.spec.nframes} x 256x256 uint16"
            rows += chunk_rows(label, series, grid.dims, repeat, verbose)
        except Exception as exc:  # noqa: BLE001 - a failed part is a row
            rows.append(error_row("chunkings, grid MR", exc, verbose=verbose))
        finally:
            clean_indexes(grid.folder)
    from .realdata import ct_jpeg_source, ensure_ct_uncompressed, missing_reason

    reason = missing_reason(ct_jpeg_source())
    if reason:
        rows.append(Row("chunkings, uncompressed CT", note=reason))
        return rows
    stack = ensure_ct_uncompressed(scratch, quick)
    try:
        shutil.rmtree(stack.folder / ".lazydicom", ignore_errors=True)
        warm_page_cache(stack.files)
        db = lazydicom.open(stack.folder, progress=False)
        (series,) = db.series(SeriesDescription="ct uncompressed")
        label = f"CT {stack.nframes} x 512x512 int16 -> float32"
        rows += chunk_rows(label, series, ("InstanceNumber",), repeat, verbose)
    except Exception as exc:  # noqa: BLE001
        rows.append(error_row("chunkings, uncompressed CT", exc, verbose=verbose))
    finally:
        shutil.rmtree(stack.folder / ".lazydicom", ignore_errors=True)
    return rows
