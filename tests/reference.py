"""A naive, eager reference of the ``ndarray`` semantics in ``design.md``.

The oracle that lazydicom is cross-checked against: pydicom and numpy only,
every file read in full, no cleverness. Keep it short and obviously correct.

Choices the design leaves open, made here (change them together with lazydicom):

- A frame without a value for one of the dims raises ``ValueError``.
- Two frames in one cell raise ``ValueError`` anywhere in the series' grid, even
  outside the selection (the grid is built before ``coords``/``slice`` select).
- Classic multi-frame files (no functional groups) give every frame the file's
  attributes, so their frames collide unless a dim separates them.
- ``coords`` and ``slice`` keep the order the values or indices are given in
  (as xarray's ``sel``/``isel`` with a list); absent ones are left out.
- Rescaled values are computed in float64, then cast to float32.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut

__all__ = [
    "frame_attributes",
    "frame_value",
    "read_frames",
    "read_pixels",
    "reference_coords",
    "reference_ndarray",
]

_FUNCTIONAL_GROUPS = ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")


def _tag(dim: str | int) -> int:
    """Keyword, int tag or ``"(gggg,eeee)"`` to an int tag."""
    if isinstance(dim, int):
        return dim
    if dim.startswith("("):
        group, elem = dim.strip("()").split(",")
        return int(group, 16) << 16 | int(elem, 16)
    tag = tag_for_keyword(dim)
    if tag is None:
        raise ValueError(f"{dim!r} is not a DICOM keyword")
    return tag


def _search(ds: Dataset, tag: int) -> Any:
    """Depth-first search of ``ds`` and its nested sequences; None if absent."""
    if tag in ds:
        return ds[tag].value
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                value = _search(item, tag)
                if value is not None:
                    return value
    return None


def _normalise(value: Any) -> Any:
    """Make a DICOM value hashable and comparable: numbers, str or tuples."""
    if isinstance(value, (MultiValue, list, tuple)):
        return tuple(_normalise(v) for v in value)
    if isinstance(value, (int, float)):  # DSfloat, IS, float, int
        return float(value) if isinstance(value, float) else int(value)
    if isinstance(value, bytes):
        return value
    return str(value)


def frame_value(ds: Dataset, dim: str | int, frame: int | None = None) -> Any:
    """Value of ``dim`` for one frame: per-frame group, then shared group, then top level.

    Functional group items are searched through nested sequences; the top-level
    dataset only directly (its sequences hold other frames' values).
    """
    if dim == "FrameNumber":  # derived: 1-based frame number within the file
        return 1 if frame is None else frame + 1
    tag = _tag(dim)
    if frame is not None:
        for name in _FUNCTIONAL_GROUPS:
            groups = ds.get(name)
            if groups:
                item = groups[frame] if name.startswith("PerFrame") else groups[0]
                value = _search(item, tag)
                if value is not None:
                    return _normalise(value)
    if tag in ds and ds[tag].value is not None:
        return _normalise(ds[tag].value)
    return None


def read_frames(files: Iterable[str | os.PathLike[str]]) -> list[tuple[str, Dataset, int | None]]:
    """One ``(path, dataset, frame)`` per frame; ``frame`` is None for single-frame files.

    Files without Pixel Data are left out.
    """
    out: list[tuple[str, Dataset, int | None]] = []
    for path in files:
        ds = pydicom.dcmread(path)
        if "PixelData" not in ds:
            continue
        n = int(ds.get("NumberOfFrames") or 1)
        multi = "NumberOfFrames" in ds or "PerFrameFunctionalGroupsSequence" in ds
        out += [(str(path), ds, k if multi else None) for k in range(n)]
    return out


def frame_attributes(ds: Dataset, frame: int | None, dims: Sequence[str | int]) -> tuple[Any, ...]:
    """The frame's values of ``dims``; raise ValueError if one is missing."""
    values = tuple(frame_value(ds, d, frame) for d in dims)
    for dim, value in zip(dims, values, strict=True):
        if value is None:
            raise ValueError(f"frame {frame} of {ds.filename!r} has no value for {dim!r}")
    return values


def read_pixels(ds: Dataset, frame: int | None) -> np.ndarray:
    """``(rows, cols)`` or ``(rows, cols, 3)`` of one frame, native byte order, RGB."""
    arr = ds.pixel_array  # YBR is converted to RGB by default in pydicom 3
    if frame is not None and int(ds.get("NumberOfFrames") or 1) > 1:
        arr = arr[frame]
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    # pydicom 3 returns big endian arrays ('>u2') for Explicit VR Big Endian
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def reference_coords(
    files: Iterable[str | os.PathLike[str]], dims: Sequence[str | int]
) -> dict[Any, list[Any]]:
    """``{dim: sorted unique values}`` over the frames of ``files``."""
    frames = read_frames(files)
    values = [frame_attributes(ds, k, dims) for _, ds, k in frames]
    return {d: sorted({v[i] for v in values}) for i, d in enumerate(dims)}


def reference_ndarray(
    files: Iterable[str | os.PathLike[str]],
    dims: Sequence[str | int] = ("InstanceNumber",),
    coords: Mapping[str | int, Any] | None = None,
    slice: Mapping[str | int, Any] | None = None,
    fill_value: float = 0,
    rescale: bool = True,
) -> np.ndarray:
    """Eager ``Series.ndarray``: read every frame of ``files`` and grid it by value.

    Parameters
    ----------
    files : iterable of path
        The files of one series (files without Pixel Data are left out).
    dims : sequence of str or int
        Keywords, int tags or ``"(gggg,eeee)"``; ignored when ``coords`` or
        ``slice`` is given (their keys are the dims then).
    coords : mapping, optional
        ``{dim: values}`` to keep, by value; a list of values (a tuple value of a
        multi-valued dim must be inside a list) or one scalar.
    slice : mapping, optional
        ``{dim: indices}`` to keep, by index into the sorted axis.
    fill_value : float
        Value of cells without a frame.
    rescale : bool
        Apply RescaleSlope/RescaleIntercept (float32 result if any selected frame
        has a rescale other than 1/0).

    Returns
    -------
    numpy.ndarray
        ``(cols, rows, *dims)`` (plus a trailing 3 for colour); ``arr[:, :, *k]``
        is the frame's ``pixel_array.T``. Size 0 when nothing is selected.

    Raises
    ------
    ValueError
        Two frames in one cell (anywhere in the grid), a frame without a dim's
        value, both ``coords`` and ``slice``, or selected frames of different
        shapes.
    """
    if coords is not None and slice is not None:
        raise ValueError("give coords or slice, not both")
    selection = coords if coords is not None else slice
    if selection is not None:
        dims = tuple(selection)
    dims = tuple(dims)
    frames = read_frames(files)
    values = [frame_attributes(ds, k, dims) for _, ds, k in frames]
    axes = [sorted({v[i] for v in values}) for i in range(len(dims))]
    seen: dict[tuple[Any, ...], str] = {}
    for (path, _, k), vals in zip(frames, values, strict=True):  # duplicates anywhere in the grid
        name = path if k is None else f"{path} frame {k}"
        if vals in seen:
            labels = dict(zip(dims, vals, strict=True))
            raise ValueError(f"two frames in one cell {labels!r}: {seen[vals]!r} and {name!r}")
        seen[vals] = name

    if selection is not None:
        for i, dim in enumerate(dims):
            wanted = selection[dim]
            wanted = (
                list(np.atleast_1d(wanted))
                if not isinstance(wanted, (list, tuple))
                else list(wanted)
            )
            # in the order given (as xarray's sel), values or indices absent left out
            if coords is not None:
                present = set(axes[i])
                keys = [_normalise(_py(w)) for w in wanted]
                picked = [w for w in keys if w in present]
            else:
                n = len(axes[i])
                picked = [axes[i][int(w)] for w in wanted if -n <= int(w) < n]
            axes[i] = list(dict.fromkeys(picked))

    position = [{a: j for j, a in enumerate(axis)} for axis in axes]
    cells: dict[tuple[int, ...], tuple[str, Dataset, int | None]] = {}
    for (path, ds, k), vals in zip(frames, values, strict=True):
        if not all(v in pos for v, pos in zip(vals, position, strict=True)):
            continue
        cells[tuple(pos[v] for v, pos in zip(vals, position, strict=True))] = (path, ds, k)

    grid = tuple(len(a) for a in axes)
    if not frames:
        return np.zeros((0, 0, *grid))
    pixels = {cell: read_pixels(ds, k) for cell, (_, ds, k) in cells.items()}
    if not pixels:  # shape and stored dtype from any frame of the series
        _, ds, k = frames[0]
        sample = read_pixels(ds, k)
        shapes, stored = {sample.shape}, sample.dtype
    else:
        shapes, stored = {p.shape for p in pixels.values()}, np.result_type(*pixels.values())
    if len(shapes) > 1:
        raise ValueError(f"frames of different shapes {sorted(shapes)!r}")
    (shape,) = shapes

    scales = {}
    for cell, (_, ds, k) in cells.items():
        slope = frame_value(ds, "RescaleSlope", k)
        intercept = frame_value(ds, "RescaleIntercept", k)
        scales[cell] = (
            1.0 if slope in (None, "") else float(slope),
            0.0 if intercept in (None, "") else float(intercept),
        )
    scaled = rescale and any(s != (1.0, 0.0) for s in scales.values())
    dtype = np.float32 if scaled else stored

    rows, cols = shape[:2]
    out = np.full((cols, rows, *grid, *shape[2:]), fill_value, dtype=dtype)
    for cell, frame in pixels.items():
        if scaled:
            slope, intercept = scales[cell]
            frame = (frame.astype(np.float64) * slope + intercept).astype(np.float32)
        where: tuple[builtins.slice | int, ...] = (np.s_[:], np.s_[:], *cell)
        out[where] = np.swapaxes(frame, 0, 1)
    return out


def _py(value: Any) -> Any:
    """numpy scalars and arrays to Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value
