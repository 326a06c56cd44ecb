"""The coordinate grid: dims -> sorted unique values per axis -> one frame per cell.

This is where dbdicom's semantics are fixed: frames are placed by the VALUE
of their attributes, never by their position in a list. A cell without a
frame stays empty (filled later without reading anything); two frames in one
cell are an error that names both files.

Selections (``coords`` by value, ``slice`` by index) are applied here, to the
table, before anything touches pixel data.
"""

from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import DuplicateCellError, InvalidSelectionError

__all__ = ["Grid", "build_grid", "axis_key", "sorted_unique"]

# Columns that identify a file or a frame's storage, never useful as extra dims.
_NOT_DIMS = {
    "path",
    "size",
    "mtime",
    "SOPInstanceUID",
    "PixelDataOffset",
    "FrameOffset",
    "FrameLength",
    "IsImage",
}


def axis_key(value: Any) -> Any:
    """A hashable, comparable key for a coordinate value.

    Numbers compare as numbers (``10 == 10.0``), NaN becomes None,
    sequences (ImagePositionPatient) become tuples of keys.

    Examples
    --------
    >>> axis_key(np.float64(10.0)) == axis_key(10)
    True
    >>> axis_key([1, 2.5, "a"])
    (1, 2.5, 'a')
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, str | int):
        return value
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, tuple | list | np.ndarray | pd.Series):
        return tuple(axis_key(v) for v in value)
    return value


def _order(key: Any) -> tuple:
    """Sort order: numbers, then strings, then tuples; None last."""
    if key is None:
        return (3, 0)
    if isinstance(key, int | float):
        return (0, key)
    if isinstance(key, str):
        return (1, key)
    if isinstance(key, tuple):
        return (2, tuple(_order(k) for k in key))
    return (1, str(key))


def sorted_unique(values: Sequence[Any]) -> list[Any]:
    """Sorted unique keys of ``values`` (numbers as numbers, None last)."""
    return sorted({axis_key(v) for v in values}, key=_order)


@dataclass(frozen=True, slots=True)
class Grid:
    """Frames placed on a grid of coordinate values.

    Attributes
    ----------
    dims : tuple of str
        Index column per axis.
    coords : tuple of tuple
        Coordinate values along each axis, in axis order.
    cells : numpy.ndarray
        Integer array of the grid's shape: the position (row label) of the
        frame in the table, or -1 for an empty cell.
    """

    dims: tuple[str, ...]
    coords: tuple[tuple[Any, ...], ...]
    cells: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.cells.shape

    @property
    def size(self) -> int:
        return int(self.cells.size)


def _codes(column: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """The sorted unique keys of a column, and for every row the position of its key.

    Vectorised (pandas' hash tables): values are keyed once per distinct value,
    not once per row, which keeps a grid over a million frames in fractions of
    a second. Absent values (None, NaN) are the key None, sorted last.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    keys = [axis_key(u) for u in (uniques.tolist() if hasattr(uniques, "tolist")
                                  else list(uniques))]
    if (codes < 0).any():
        keys.append(None)
        codes = np.where(codes < 0, len(keys) - 1, codes)
    values = sorted(set(keys), key=_order)  # 10 and 10.0 are one key
    where = {v: i for i, v in enumerate(values)}
    remap = np.fromiter((where[k] for k in keys), dtype=np.int64, count=len(keys))
    return remap[codes] if len(codes) else np.empty(0, dtype=np.int64), values


def _select_axis(values: list[Any], coords: Any, name: str, by_index: bool) -> list[Any]:
    """The axis values kept by a coords (by value) or slice (by index) entry."""
    if coords is None:
        return values
    if by_index:
        return [values[i] for i in _indices(coords, len(values), name)]
    if isinstance(coords, np.ndarray) and coords.ndim == 0 or isinstance(coords, str | int | float):
        coords = [coords]
    selected: list[Any] = []
    seen: set = set()
    present = set(values)
    for v in coords:
        key = axis_key(v)
        if key in present and key not in seen:
            seen.add(key)
            selected.append(key)
    return selected


def _indices(spec: Any, n: int, name: str) -> list[int]:
    """Positions along an axis of ``n`` values kept by a ``slice=`` entry, in the order given.

    An int, a sequence of ints, or a Python ``slice``; out-of-range indices are
    left out (as absent coordinate values are); duplicates are kept once.
    """
    if isinstance(spec, builtins.slice):
        return list(range(n))[spec]
    items = spec.tolist() if isinstance(spec, np.ndarray) else spec
    if not isinstance(items, list | tuple):
        items = [items]
    out: list[int] = []
    for i in items:
        if isinstance(i, bool | np.bool_) or not isinstance(i, numbers.Integral):
            raise InvalidSelectionError(
                f"slice={{{name!r}: ...}} selects by position along the sorted values; "
                f"{i!r} is not an integer index (use coords= to select by value)"
            )
        i = int(i)
        if -n <= i < n and i % n not in out:
            out.append(i % n)
    return out


def build_grid(
    table: pd.DataFrame,
    dims: Sequence[str],
    coords: Mapping[str, Any] | None = None,
    slice: Mapping[str, Any] | None = None,
) -> Grid:
    """Place every frame of ``table`` in the cell of its ``dims`` values.

    Parameters
    ----------
    table : pandas.DataFrame
        Frames (one row each); must hold a column per dim.
    dims : sequence of str
        Column names, one per axis.
    coords : mapping, optional
        ``{dim: values}`` to keep, by value, in the order given. Values that
        are not present are left out.
    slice : mapping, optional
        ``{dim: indices}`` into the sorted unique values, in the order given.

    Returns
    -------
    Grid

    Raises
    ------
    DuplicateCellError
        Two frames have the same values for all dims (a ``ValueError``).
    """
    dims = tuple(dims)
    axes: list[list[Any]] = []
    positions: list[np.ndarray] = []
    keep = np.ones(len(table), dtype=bool)
    for dim in dims:
        codes, every = _codes(table[dim])
        values = every
        if coords is not None:
            values = _select_axis(every, coords.get(dim), dim, by_index=False)
        elif slice is not None:
            values = _select_axis(every, slice.get(dim), dim, by_index=True)
        where = {v: i for i, v in enumerate(values)}
        lut = np.fromiter((where.get(v, -1) for v in every), dtype=np.int64, count=len(every))
        pos = lut[codes] if len(codes) else codes
        keep &= pos >= 0
        axes.append(values)
        positions.append(pos)
    shape = tuple(len(a) for a in axes)
    cells = np.full(shape, -1, dtype=np.int64)
    rows = np.flatnonzero(keep)
    if rows.size and dims:
        flat = np.ravel_multi_index(tuple(p[rows] for p in positions), shape)
        order = np.argsort(flat, kind="stable")
        flat_sorted = flat[order]
        dup = np.flatnonzero(flat_sorted[1:] == flat_sorted[:-1])
        if dup.size:
            a, b = rows[order[dup[0]]], rows[order[dup[0] + 1]]
            cells_hit = np.unique(flat_sorted[dup])
            frames = int(np.isin(flat_sorted, cells_hit).sum())
            raise _duplicate_error(table, dims, a, b, frames, cells_hit.size)
        cells.reshape(-1)[flat] = rows
    elif rows.size and not dims:
        cells = np.array(rows[0] if rows.size == 1 else -1)
        if rows.size > 1:
            raise _duplicate_error(table, dims, rows[0], rows[1], rows.size, 1)
    return Grid(dims, tuple(tuple(a) for a in axes), cells)


def _duplicate_error(
    table: pd.DataFrame, dims, a: int, b: int, frames: int, cells: int
) -> DuplicateCellError:
    ra, rb = table.iloc[a], table.iloc[b]
    cell = ", ".join(f"{d}={axis_key(ra[d])!r}" for d in dims) or "(no dims)"
    differ = []
    for col in table.columns:
        if col in _NOT_DIMS or col in dims:
            continue
        va, vb = axis_key(ra[col]), axis_key(rb[col])
        if va != vb:
            differ.append(col)
    hint = (
        f"Attributes that differ between them, candidates for an extra dim: {differ[:8]}"
        if differ
        else "No indexed attribute tells them apart (duplicate files?)"
    )
    where_a = f"{ra['path']!r}" + (
        f" frame {ra['FrameNumber']}"
        if ra.get("NumberOfFrames", 1) and (ra.get("NumberOfFrames") or 1) > 1
        else ""
    )
    where_b = f"{rb['path']!r}" + (
        f" frame {rb['FrameNumber']}" if (rb.get("NumberOfFrames") or 1) > 1 else ""
    )
    return DuplicateCellError(
        f"{frames} frames share a cell; e.g. {where_a} and {where_b} both have {cell}. "
        f"{hint}. Add such a dim, or select one of them with coords."
    )
