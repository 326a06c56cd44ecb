"""Which file each cell of a written array goes to: validation and placement.

An array ``(x, y, *dims)`` is written cell by cell. With ``coords`` the i-th
index along a dim is the i-th value given (the caller's order); with
``slice`` it is the i-th index given into the sorted unique values of that
dim in the series (as [`Series.ndarray`][lazydicom.Series.ndarray] counts them). A cell whose
values already belong to a frame overwrites that frame's file; any other cell
becomes a new file, in the folder of the series' first file, made from that
file's header with the cell's coordinates set.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, InvalidSelectionError
from .template import Coordinate, coordinate, fix_private_vr

__all__ = [
    "check_selection",
    "axis_values",
    "slice_values",
    "folder_name",
    "unique_folder",
    "instance_path",
    "block_sizes",
]


def _values(dim: Any, given: Any) -> list[Any]:
    if isinstance(given, str | bytes) or np.ndim(given) == 0:
        return [given]
    if isinstance(given, np.ndarray):
        return list(given) if given.ndim == 1 else [tuple(v) for v in given.tolist()]
    return list(given)


def check_selection(
    shape: Sequence[int], selection: Mapping[Any, Any], what: str
) -> tuple[list[Coordinate], list[list[Any]]]:
    """Resolve the dims of ``selection`` and check them against the array shape.

    Raises
    ------
    InvalidArgumentError
        Wrong number of dims, a dim whose number of values differs from the
        array's size along it (the message names the dim and both sizes), a
        dim that cannot be written, or one attribute named twice (e.g.
        ``"FlipAngle"`` and ``"(0018,1314)"``).
    """
    if not isinstance(selection, Mapping):
        raise InvalidArgumentError(
            f"{what} must be a dict {{dim: values}}, not {type(selection).__name__}"
        )
    dims = list(selection)
    if len(shape) != 2 + len(dims):
        raise InvalidArgumentError(
            f"The array has shape {tuple(shape)}: (x, y) and {len(shape) - 2} dim(s), but "
            f"{what} gives {len(dims)} dim(s) {tuple(dims)}; give one entry per dim after (x, y)"
        )
    coords, values = [], []
    seen: dict[str, Any] = {}
    for i, dim in enumerate(dims):
        coord = coordinate(dim)
        column = coord.attr.column
        if column in seen:
            raise InvalidArgumentError(
                f"{what} names one attribute twice: {seen[column]!r} and {dim!r} are both "
                f"{column!r}; give it once"
            )
        seen[column] = dim
        vals = _values(dim, selection[dim])
        if len(vals) != shape[2 + i]:
            raise InvalidArgumentError(
                f"{what}[{dim!r}] has {len(vals)} value(s) but the array has size "
                f"{shape[2 + i]} along that dim (axis {2 + i}); they must be equal"
            )
        fix_private_vr(coord, vals)
        if what == "coords":
            for v in vals:  # each value fits its VR (refused here, before any I/O)
                coord.encode(v)
        coords.append(coord)
        values.append(vals)
    return coords, values


def axis_values(coord: Coordinate, values: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Encoded values and their index keys along one dim; refuse repeated values."""
    encoded = [coord.encode(v) for v in values]
    keys = [coord.key(v) for v in values]
    seen: dict[Any, int] = {}
    for i, k in enumerate(keys):
        if k in seen:
            raise InvalidArgumentError(
                f"{coord.name!r} lists the value {values[i]!r} twice (positions {seen[k]} and "
                f"{i}); two slices of the array cannot go to one cell"
            )
        seen[k] = i
    return encoded, keys


def slice_values(coord: Coordinate, axis: Sequence[Any], indices: Any) -> list[Any]:
    """Axis values at ``indices`` (into the sorted unique values); IndexError when out of range."""
    out = []
    for i in _values(coord.name, indices):
        try:
            if isinstance(i, bool):
                raise TypeError
            j = operator.index(i)  # 1.7 is not an index (int() would truncate it)
        except (TypeError, ValueError):
            raise InvalidSelectionError(
                f"slice[{coord.name!r}] holds {i!r}, not an index (an integer)"
            ) from None
        if not -len(axis) <= j < len(axis):
            raise InvalidSelectionError(
                f"slice[{coord.name!r}] index {j} is out of range: the series has "
                f"{len(axis)} value(s) of {coord.name!r}"
            )
        out.append(axis[j])
    return out


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def folder_name(*parts: Any) -> str:
    """A readable, portable folder name from attribute values."""
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    text = _UNSAFE.sub("_", text).strip("._") or "unnamed"
    return text[:64]


def unique_folder(path: str) -> str:
    """``path``, or ``path_2``, ``path_3``... the first that does not exist."""
    candidate, n = path, 1
    while os.path.exists(candidate):
        n += 1
        candidate = f"{path}_{n}"
    return candidate


def instance_path(folder: str, number: int, width: int = 6) -> str:
    return os.path.join(folder, f"IM_{number:0{width}d}.dcm")


def block_sizes(dims: Sequence[int], frame_bytes: int, workers: int) -> tuple[int, ...]:
    """Chunk sizes along the dims for arrays that are not dask arrays yet.

    Frames per block: enough blocks to keep every worker busy, at most 64
    frames and 64 MB; blocks run along the last dims first (C order).
    """
    total = int(np.prod(dims)) if dims else 1
    budget = max(1, min(64, (64 << 20) // max(frame_bytes, 1), -(-total // (4 * workers))))
    sizes = []
    for n in reversed(dims):
        size = max(1, min(n, budget))
        sizes.append(size)
        budget = max(1, budget // size)
    return tuple(reversed(sizes))
