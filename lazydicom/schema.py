"""The index schema: every column of the index and its type, decided from the VR.

One place for one rule: the type of an index column comes from its
attribute's value representation (VR) and multiplicity (VM) in the DICOM
dictionary, never from what the first values look like. So one odd file
(an IS value of 2**64, a multi-valued SliceLocation, text where a number is
expected) can only ever lose that file's value, never change the type of a
column or make the folder impossible to save or load.

======================  ============================================
VR                      Arrow type (``list<...>`` when VM is not 1)
======================  ============================================
IS, SS, US, SL, UL,     ``int64`` (values within +-2**53, which the
SV, AT, ``US or SS``    in-memory float64 of a column with absent values holds)
UV                      ``uint64`` (within 2**53)
DS, FL, FD              ``float64``
text, bytes, SQ         ``string`` (bytes as short text or hex, SQ absent)
private, unknown tags   inferred from all the values (see below)
======================  ============================================

A value that does not fit its column (a number beyond ``int64``, a fraction
in an IS column, text in a number column, several values in a VM 1 column)
is stored as absent and reported once, when its file is read, with an
[`InvalidValueWarning`][lazydicom.InvalidValueWarning] naming the file.

Private tags (and ``OB or OW`` style VRs) have no dictionary type; their
column takes the narrowest type holding every value: ``int64``, then
``float64``, then ``string`` (numbers written as text), as a list when any
value is multi-valued.

In memory the index is a ``pandas.DataFrame`` as pyarrow converts it
(nullable integers as float64), with multi-valued values as tuples and
single values of multi-valued attributes as scalars (as
``lazydicom.tags.plain_value`` gives them), so a fresh and a reopened
index are equal. ``check_index`` validates a loaded table: columns,
types and the invariants of the storage columns (offsets within the file).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydicom.datadict import dictionary_VM, dictionary_VR

from .errors import UnknownAttributeError
from .tags import KEYWORDS, resolve

__all__ = [
    "KEYWORDS",
    "STORAGE",
    "SKIPPED",
    "NATIVE_SYNTAXES",
    "Problem",
    "SchemaError",
    "column_type",
    "to_arrow",
    "from_arrow",
    "check_index",
    "check_skipped",
    "parse_text",
]

#: Columns lazydicom computes itself (where a frame is, which file version).
#: A new column must be declared here: saving an undeclared column is refused.
STORAGE: dict[str, pa.DataType] = {
    "TransferSyntaxUID": pa.string(),
    "IsImage": pa.bool_(),
    "PixelDataOffset": pa.int64(),
    "FrameNumber": pa.int64(),
    "FrameOffset": pa.int64(),
    "FrameLength": pa.int64(),
    "SlicePosition": pa.float64(),
    "path": pa.string(),
    "size": pa.int64(),
    "mtime": pa.int64(),
}

#: Columns of the table of files that are not indexed (``Database.skipped()``).
SKIPPED: dict[str, pa.DataType] = {
    "path": pa.string(),
    "size": pa.int64(),
    "mtime": pa.int64(),
    "reason": pa.string(),
}

#: Transfer syntaxes whose frames are addressed byte by byte (FrameOffset).
NATIVE_SYNTAXES = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
)

_INT_VRS = ("IS", "SS", "US", "SL", "UL", "SV", "AT", "US or SS")
_TEXT_VRS = (
    "AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR",
    "UT", "OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ",
)  # fmt: skip
_VR_TYPES: dict[str, pa.DataType] = {
    **dict.fromkeys(_INT_VRS, pa.int64()),
    "UV": pa.uint64(),
    **dict.fromkeys(("DS", "FL", "FD"), pa.float64()),
    **dict.fromkeys(_TEXT_VRS, pa.string()),
}
_INFERRED = (pa.int64(), pa.float64(), pa.string())
_NULLABLE_STORAGE = {"SlicePosition"}
# Integers an index column holds exactly: in memory a column of integers with
# absent values is float64 (pandas), exact up to 2**53; IS values are int32.
_EXACT = 2**53  # excluded: a float 2**53 may be a rounded 2**53 + 1
_INT64 = (-_EXACT + 1, _EXACT - 1)
_UINT64 = (0, _EXACT - 1)


class Problem(NamedTuple):
    """A value that does not fit its column: row position, column, value, why."""

    row: int
    column: str
    value: Any
    expected: str


class SchemaError(ValueError):
    """A persisted table does not match the schema (the index is then rebuilt)."""


@lru_cache(maxsize=4096)
def column_type(column: str) -> pa.DataType | None:
    """The Arrow type of an index column, None when it is inferred from the values.

    Examples
    --------
    >>> column_type("SeriesNumber"), column_type("PatientID")
    (DataType(int64), DataType(string))
    >>> column_type("ImagePositionPatient")
    ListType(list<item: double>)
    >>> column_type("(2005,100E)") is None  # private: inferred
    True
    """
    if column in STORAGE:
        return STORAGE[column]
    try:
        attr = resolve(column)
    except UnknownAttributeError:
        return None
    if attr.tag is None or attr.column != column or (attr.tag >> 16) % 2:
        return None
    try:
        vr, vm = str(dictionary_VR(attr.tag)), str(dictionary_VM(attr.tag))
    except KeyError:
        return None
    base = _VR_TYPES.get(vr)
    if base is None:
        return None
    return base if vm == "1" else pa.list_(base)


def _is_null(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    return isinstance(v, float | np.floating) and math.isnan(v)


_BAD = object()


def _fit(v: Any, kind: pa.DataType, lenient: bool) -> Any:
    """``v`` as a value of ``kind``, or _BAD when it does not fit."""
    if isinstance(v, np.generic):
        v = v.item()
    if pa.types.is_string(kind):
        if isinstance(v, str):
            return v
        if lenient and isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
        return _BAD
    if isinstance(v, bool):
        return v if pa.types.is_boolean(kind) else _BAD
    if pa.types.is_boolean(kind):
        return _BAD
    if pa.types.is_floating(kind):
        if isinstance(v, int | float):
            try:
                return float(v)
            except OverflowError:
                return _BAD
        return _BAD
    low, high = _UINT64 if pa.types.is_unsigned_integer(kind) else _INT64
    if isinstance(v, float) and v.is_integer() and abs(v) < _EXACT:
        v = int(v)
    if isinstance(v, int) and low <= v <= high:
        return v
    return _BAD


def _infer(values: Iterable[Any]) -> pa.DataType:
    """The narrowest of int64, float64, string (as a list if any value is) for values."""
    seen: set[str] = set()
    is_list = False
    for v in values:
        if _is_null(v):
            continue
        items = v if isinstance(v, tuple | list) else (v,)
        is_list = is_list or isinstance(v, tuple | list)
        for x in items:
            if isinstance(x, np.generic):
                x = x.item()
            if isinstance(x, bool) or not isinstance(x, int | float):
                seen.add("str")
            elif isinstance(x, float):
                seen.add("float")
            elif _INT64[0] <= x <= _INT64[1]:
                seen.add("int")
            else:
                seen.add("str")  # exact as text, not rounded to a float
    if "str" in seen:
        base = pa.string()
    elif "float" in seen:
        base = pa.float64()
    elif "int" in seen:
        base = pa.int64()
    else:
        base = pa.string()
    return pa.list_(base) if is_list else base


_CONVERT_ERRORS = (pa.ArrowException, OverflowError, TypeError, ValueError)


def _fast_array(values: pd.Series, kind: pa.DataType, exact: bool = True) -> pa.Array:
    if isinstance(values.dtype, pd.CategoricalDtype):  # see from_arrow: distinct values once
        categories = _fast_array(pd.Series(values.cat.categories, dtype=object), kind, exact)
        codes = values.cat.codes.to_numpy()
        return categories.take(pa.array(codes, mask=codes < 0, type=pa.int32()))
    if not pa.types.is_list(kind):
        array = pa.array(values, type=kind, from_pandas=True)
        if exact and pa.types.is_integer(kind) and array.null_count < len(array):
            bounds = pc.min_max(array).as_py()
            if bounds["min"] <= -_EXACT or bounds["max"] >= _EXACT:
                raise ValueError("integers beyond 2**53")  # the slow path reports them
        return array
    if values.dtype != object and not isinstance(values.dtype, pd.StringDtype):
        # one scalar per row (a reopened index): wrap without Python objects
        items = pa.array(values, type=kind.value_type, from_pandas=True)
        offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, items, mask=pc.is_null(items))
    if values.isna().all():
        return pa.nulls(len(values), type=kind)
    wrapped = [
        list(v) if isinstance(v, tuple | list) else (None if _is_null(v) else [v])
        for v in values.tolist()
    ]
    return pa.array(wrapped, type=kind, from_pandas=True)


def _slow_array(
    values: pd.Series, kind: pa.DataType, name: str, lenient: bool, problems: list[Problem]
) -> pa.Array:
    """Value by value: what does not fit becomes null and is reported."""
    is_list = pa.types.is_list(kind)
    item_kind = kind.value_type if is_list else kind
    out: list[Any] = []
    for row, v in enumerate(values.tolist()):
        if _is_null(v):
            out.append(None)
            continue
        if isinstance(v, tuple | list) and not is_list:
            fitted: Any = _BAD
        elif is_list:
            given = v if isinstance(v, tuple | list) else (v,)
            items = [_fit(x, item_kind, lenient) for x in given]
            fitted = _BAD if any(x is _BAD for x in items) else items
        else:
            fitted = _fit(v, kind, lenient)
        if fitted is _BAD:
            problems.append(Problem(row, name, v, _describe(kind)))
            out.append(None)
        else:
            out.append(fitted)
    return pa.array(out, type=kind)


def _describe(kind: pa.DataType) -> str:
    if pa.types.is_list(kind):
        return f"values of type {_describe(kind.value_type)}"
    return {
        "int64": "an integer within +-2**53",
        "uint64": "a non-negative integer within 2**53",
        "double": "a number",
        "string": "text",
        "bool": "True or False",
    }.get(str(kind), str(kind))


def to_arrow(
    df: pd.DataFrame, extra: Iterable[str] = (), *, types: dict[str, pa.DataType] | None = None
) -> tuple[pa.Table, list[Problem]]:
    """The Arrow table of an index DataFrame, typed by the schema.

    Parameters
    ----------
    df : pandas.DataFrame
        The index (or rows about to join it).
    extra : iterable of str
        Columns read on demand (``Index.extra``); any other column that is
        neither a default attribute nor a storage column is a programming error.
        The default columns (``KEYWORDS``, ``STORAGE``) that are
        missing are added, as absent values.
    types : dict, optional
        Instead of the index schema, exactly these columns and types (e.g.
        ``SKIPPED``).

    Returns
    -------
    (pyarrow.Table, list of Problem)
        The table, and the values that did not fit their column (stored as
        absent), with their row position.
    """
    names = [str(c) for c in df.columns]
    if types is None:
        allowed = set(KEYWORDS) | set(STORAGE) | set(extra)
        undeclared = [n for n in names if n not in allowed]
        names += [c for c in (*KEYWORDS, *STORAGE) if c not in set(names)]
    else:
        undeclared = [n for n in names if n not in types]
        names = list(types)
    if undeclared:
        raise RuntimeError(
            f"index columns {undeclared!r} are not declared in lazydicom.schema "
            "(STORAGE, KEYWORDS) nor read on demand; declare them there"
        )
    n = len(df)
    arrays: list[pa.Array] = []
    problems: list[Problem] = []
    for name in names:
        kind = column_type(name) if types is None else types[name]
        if name not in df.columns:
            arrays.append(pa.nulls(n, type=kind or pa.string()))
            continue
        values = df[name]
        lenient = kind is None
        if kind is None:
            kind = _infer(values.tolist())
        try:
            # storage columns (offsets, mtime in ns) are never absent: int64 in memory too
            arrays.append(_fast_array(values, kind, exact=name not in STORAGE))
        except _CONVERT_ERRORS:
            arrays.append(_slow_array(values, kind, name, lenient, problems))
    return pa.Table.from_arrays(arrays, names=names), problems


#: Rows from which repeated values are kept once (pandas categoricals): a series'
#: UIDs, descriptions and orientation repeat on every frame; a million frames
#: of them as separate objects cost gigabytes.
_DICTIONARY_ROWS = 512


def _repeats(column: pa.ChunkedArray | pa.Array) -> bool:
    """True when a column has few distinct values for its length (worth a dictionary)."""
    n = len(column)
    return n >= _DICTIONARY_ROWS and pc.count_distinct(column).as_py() <= n // 4


def _shared_tuples(column: pa.ChunkedArray) -> np.ndarray | None:
    """A list column of numbers whose values all have one length (2 or more) as an
    object array of tuples (None where absent or empty), one tuple per distinct value.

    The values of ``to_pylist`` without a tuple and floats per row: a million
    rows of ImageOrientationPatient repeat a few values. None when the column
    is not like that (other lengths, absent or NaN items): convert it row by row.
    """
    array = column.combine_chunks()
    kind = array.type.value_type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
        return None
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
    present = lengths > 0
    if not present.any():
        return None
    width = int(lengths[present][0])
    if width < 2 or (lengths[present] != width).any():
        return None
    flat = pc.list_flatten(array)
    if flat.null_count or len(flat) != width * int(present.sum()):
        return None
    items = flat.to_numpy(zero_copy_only=False)
    if items.dtype.kind == "f" and np.isnan(items).any():
        return None  # NaN is not equal to itself: each row keeps its own tuple
    rows = np.ascontiguousarray(items.reshape(-1, width))
    # distinct by their bytes, so each row gets exactly its own values back (-0.0 too)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * width))).ravel()
    _, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    distinct = np.empty(len(first), dtype=object)
    for j, i in enumerate(first.tolist()):
        distinct[j] = tuple(rows[i].tolist())
    out = np.full(len(lengths), None, dtype=object)
    out[present] = distinct[codes.ravel()]
    return out


def from_arrow(table: pa.Table) -> pd.DataFrame:
    """The DataFrame of an index table (see the module docstring for the representation).

    Columns whose values repeat (UIDs, descriptions, orientations, pixel
    formats) are pandas categoricals: each distinct value is one object, each
    row a small integer code. Values, comparisons and grouping are those of
    the plain column.
    """
    tuples: dict[str, list[Any] | np.ndarray] = {}
    for i, field in enumerate(table.schema):
        if not (pa.types.is_list(field.type) or pa.types.is_large_list(field.type)):
            continue
        column = table.column(i)
        if column.null_count < len(column):
            bounds = pc.min_max(pc.list_value_length(column)).as_py()
            if bounds["min"] == 1 and bounds["max"] == 1:
                # every value single (the usual WindowCenter): a plain typed column
                table = table.set_column(i, field.name, pc.list_element(column, 0))
                continue
            shared = _shared_tuples(column)
            # to_pylist is C-fast; pandas' own conversion of list columns is not
            tuples[field.name] = shared if shared is not None else [
                None if not v else (v[0] if len(v) == 1 else tuple(v))
                for v in column.to_pylist()
            ]
        # absent values (a null column converts to None in C), or a placeholder
        table = table.set_column(i, field.name, pa.nulls(len(column)))
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) and _repeats(table.column(i)):
            table = table.set_column(i, field.name, table.column(i).dictionary_encode())
    # A table of our own, released column by column as pandas fills (self_destruct):
    # when the caller holds no reference to ``table``, each Arrow column's memory
    # is freed once converted, so the two copies never coexist whole. The
    # caller's table object itself stays valid either way.
    column = None
    table = pa.Table.from_arrays(table.columns, schema=table.schema)
    df = table.to_pandas(self_destruct=True)
    del table
    for name, values in tuples.items():
        column = pd.Series(values, index=df.index, dtype=object)
        if len(values) >= _DICTIONARY_ROWS and column.nunique(dropna=True) <= len(values) // 4:
            column = column.astype("category")
        df[name] = column
    return df


def _check_types(table: pa.Table, declared: dict[str, pa.DataType | None], what: str) -> None:
    types = {field.name: field.type for field in table.schema}
    for name, kind in declared.items():
        if name not in types:
            raise SchemaError(f"{what} has no column {name!r}")
        got = types[name]
        if kind is None:
            ok = got in _INFERRED or (pa.types.is_list(got) and got.value_type in _INFERRED)
        else:
            ok = got == kind
        if not ok:
            raise SchemaError(f"{what} column {name!r} is {got}, expected {kind or 'inferred'}")
    others = set(table.column_names) - set(declared)
    if others:
        raise SchemaError(f"{what} has undeclared columns {sorted(others)!r}")
    if len(set(table.column_names)) != len(table.column_names):
        raise SchemaError(f"{what} repeats a column")


def _ints(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    if column.null_count:
        raise SchemaError(f"column {name!r} has absent values")
    return column.to_numpy()


def check_index(table: pa.Table, extra: Iterable[str]) -> None:
    """Validate a loaded index table; raise ``SchemaError`` saying what is wrong.

    Checks the columns and their types, and that the storage columns are
    consistent: relative paths inside the folder, one row per (path,
    FrameNumber), frame numbers and byte offsets within their file.
    """
    declared: dict[str, pa.DataType | None] = {c: column_type(c) for c in KEYWORDS}
    declared.update(STORAGE)
    declared.update({c: column_type(c) for c in extra if c not in declared})
    _check_types(table, declared, "index")
    if not table.num_rows:
        return
    for name in STORAGE:
        if name not in _NULLABLE_STORAGE and table.column(name).null_count:
            raise SchemaError(f"column {name!r} has absent values")
    _check_paths(table.column("path"))
    size = _ints(table, "size")
    number = _ints(table, "FrameNumber")
    pixel = _ints(table, "PixelDataOffset")
    offset = _ints(table, "FrameOffset")
    length = _ints(table, "FrameLength")
    image = table.column("IsImage").to_numpy(zero_copy_only=False).astype(bool)
    native = pc.is_in(
        table.column("TransferSyntaxUID"), value_set=pa.array(sorted(NATIVE_SYNTAXES))
    ).to_numpy(zero_copy_only=False)
    checks = {
        "a negative file size": size < 0,
        "a frame number below 1": image & (number < 1),
        "an object without pixels with a frame number": ~image & (number != 0),
        "Pixel Data outside its file": image & (pixel != -1) & ((pixel < 8) | (pixel > size)),
        "frame bytes outside their file": (offset != -1)
        & ((offset < pixel) | (pixel < 0) | (length <= 0) | (offset + length > size)),
        "a native frame at the wrong position": image
        & native
        & (offset != -1)
        & (offset != pixel + (number - 1) * length),
        "a frame length without a frame offset": (offset == -1) & (length != -1),
    }
    for what, bad in checks.items():
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise SchemaError(f"row {row} ({table.column('path')[row]}) has {what}")
    # rows are saved sorted by (path, FrameNumber): paths never decrease (UTF-8
    # bytes compare as code points, as the scan sorts), frame numbers increase
    # within a file, so no frame is listed twice. (Comparing neighbours: the
    # dictionary encoding this used was 0.23 s of a 1M-row reopen.)
    paths = table.column("path").combine_chunks()
    before, after = paths.slice(0, len(paths) - 1), paths.slice(1)
    same = pc.equal(before, after).to_numpy(zero_copy_only=False)
    if (not pc.all(pc.less_equal(before, after), min_count=0).as_py()
            or (np.diff(number)[same] <= 0).any()):
        raise SchemaError("a frame is listed twice, or the rows are not in order")


def _check_paths(paths: pa.ChunkedArray) -> None:
    # relative POSIX paths inside the folder: no root, drive, '..' or NUL
    bad = pc.match_substring_regex(paths, r"(^$|^/|(^|/)\.\.(/|$)|\x00)")
    if pc.any(bad).as_py():
        row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        raise SchemaError(f"path {paths[row].as_py()!r} is not a path inside the folder")


def check_skipped(table: pa.Table) -> None:
    """Validate a loaded table of skipped files (see ``SKIPPED``)."""
    _check_types(table, dict(SKIPPED), "skipped-files table")
    for name in ("path", "size", "mtime", "reason"):
        if table.column(name).null_count:
            raise SchemaError(f"skipped-files column {name!r} has absent values")


def parse_text(column: str, text: str) -> list[Any]:
    """The values ``text`` may stand for in ``column``, by the column's type.

    Text columns keep text as it is (``PatientID=0123`` stays ``'0123'``),
    number columns parse it, columns of private tags accept both.

    Raises
    ------
    ValueError
        Text that is not a number for a column of numbers.

    Examples
    --------
    >>> parse_text("PatientID", "0123"), parse_text("FlipAngle", "10")
    (['0123'], [10.0])
    """
    kind = column_type(column)
    if kind is not None and pa.types.is_list(kind):
        kind = kind.value_type
    if kind is not None and pa.types.is_string(kind):
        return [text]
    number: Any
    try:
        number = int(text) if kind is not None and pa.types.is_integer(kind) else float(text)
    except ValueError:
        if kind is None:
            return [text]
        raise ValueError(f"{column!r} holds numbers; {text!r} is not a number") from None
    return [number] if kind is not None else [text, number]
