"""An index table's columns as numpy arrays, converted once and sliced per record.

Planning a series (its ``FrameTable``, its attributes) reads every column of
its rows. Through pandas each column access of a series' table costs
10-20 microseconds before any work (``DataFrame.__getitem__``, block
lookups, a new Series object), about 4 ms for a series of 90 columns: 1 s of
a 200-series batch extract, more than its pixels. ``TableColumns`` converts
each column of the whole table once, on first use (a view for numbers and
categories, which pandas already stores as numpy arrays), and a
``Columns`` view of a record's rows slices those arrays: a numpy slice, not a
pandas object. Derived columns (``derived``: a numeric conversion, a
factorisation) are cached the same way.

Nothing here changes a value: every array is the pandas column's own (or the
result of the same pandas call on the whole column, for element-wise
conversions), and ``factorized`` returns what ``pandas.factorize`` returns
for the record's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TableColumns", "Columns", "columns_of"]


class TableColumns:
    """The columns of one table, each converted on first use and kept.

    Parameters
    ----------
    table : pandas.DataFrame
        Not modified; a cache is valid as long as the table's columns are not
        changed in place (a ``Database`` keeps one per version of its index).
    """

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self.names: list[Any] = list(table.columns)
        self._names = set(self.names)
        self._cache: dict[Any, Any] = {}
        self._columns: dict[Any, pd.Series] = {}

    def __len__(self) -> int:
        return len(self.table)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def derived(self, key: Any, make: Callable[[pd.Series], Any]) -> Any:
        """``make(table[column])`` for ``key = (kind, column, ...)``, computed once."""
        if key in self._cache:
            return self._cache[key]
        column = self._columns.get(key[1])
        if column is None:  # one pandas Series per column, however many conversions
            column = self._columns[key[1]] = self.table[key[1]]
        value = make(column)
        for array in value if isinstance(value, tuple) else (value,):
            if isinstance(array, np.ndarray):  # shared by every view: never written
                array.flags.writeable = False
        self._cache[key] = value
        return value

    def rows(self, rows: slice | np.ndarray) -> Columns:
        """A view of ``rows`` (a slice or an array of positions)."""
        return Columns(self, rows)


def _storage(col: pd.Series) -> tuple[str, Any, Any]:
    """("category", codes, categories), ("number", values, None) or ("object", values, None)."""
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category", col.array.codes, col.array.categories
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return "number", col.to_numpy(), None
    return "object", col.to_numpy(dtype=object), None


def _factorization(col: pd.Series) -> np.ndarray:
    """The codes of ``pandas.factorize`` of the whole column (NaN/None: -1).

    Without pandas' hashing for the usual column of one value (a series' Rows,
    BitsStored...): 0.1 ms a column, ten columns a series planned on its own.
    """
    import pandas as pd

    dtype = col.dtype
    if len(col) and isinstance(dtype, pd.CategoricalDtype):
        codes = col.array.codes
        if codes[0] >= 0 and (codes == codes[0]).all():
            return np.zeros(len(codes), dtype=np.int64)
    elif len(col) and isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        values = col.to_numpy()
        first = values[0]
        if first == first and (values == first).all():  # NaN is missing: factorize's -1
            return np.zeros(len(values), dtype=np.int64)
    codes, _ = pd.factorize(col, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


class Columns:
    """The rows ``rows`` of a ``TableColumns``: what planning reads of a record."""

    __slots__ = ("_table", "_rows", "_n")

    def __init__(self, table: TableColumns, rows: slice | np.ndarray | None = None):
        self._table = table
        self._rows: slice | np.ndarray = slice(None) if rows is None else rows
        if isinstance(self._rows, slice):
            self._n = len(range(*self._rows.indices(len(table))))
        else:
            self._n = len(self._rows)

    @property
    def names(self) -> list[Any]:
        """Column names, in the table's order."""
        return self._table.names

    def __len__(self) -> int:
        return self._n

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def take(self, positions: np.ndarray) -> Columns:
        """A view of ``positions`` (into these rows)."""
        rows = self._rows
        if isinstance(rows, slice):
            start, _, step = rows.indices(len(self._table))
            return Columns(self._table, start + step * np.asarray(positions, dtype=np.int64))
        return Columns(self._table, rows[positions])

    def _cut(self, values: np.ndarray) -> np.ndarray:
        return values[self._rows]

    def storage(self, name: Any) -> tuple[str, Any, Any]:
        """As ``_storage`` of the column, for these rows (categories are the table's)."""
        kind, values, categories = self._table.derived(("storage", name), _storage)
        return kind, self._cut(values), categories

    def derived(self, key: Any, make: Callable[[pd.Series], np.ndarray]) -> np.ndarray:
        """``make(column)`` of the whole column (an element-wise array), for these rows."""
        return self._cut(self._table.derived(key, make))

    def factorized(self, name: Any) -> tuple[np.ndarray, list[Any]]:
        """``pandas.factorize(column[rows], use_na_sentinel=True)``: codes by first
        appearance in these rows, and each code's value (its first row's value, as
        pandas gives it: values that hash alike, 0.0 and -0.0, stay as they are)."""
        codes = self._cut(self._table.derived(("factorized", name), _factorization))
        if not len(codes):
            return np.zeros(0, dtype=np.intp), []
        first = codes[0]
        if first >= 0 and (codes == first).all():  # the usual column: one value
            return np.zeros(len(codes), dtype=np.intp), self._values(name, np.zeros(1, np.intp))
        present = codes >= 0
        _, first_at, inverse = np.unique(codes[present], return_index=True,
                                         return_inverse=True)
        order = np.argsort(first_at, kind="stable")  # numbered by first appearance
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        out = np.full(len(codes), -1, dtype=np.intp)
        out[present] = rank[inverse.reshape(-1)]
        return out, self._values(name, np.flatnonzero(present)[first_at[order]])

    def _values(self, name: Any, positions: np.ndarray) -> list[Any]:
        """The column's values at ``positions`` of these rows, as pandas holds them."""
        kind, values, categories = self.storage(name)
        if kind == "category":
            return categories[values[positions]].tolist()
        return list(values[positions])


def columns_of(table: pd.DataFrame | Columns) -> Columns:
    """``table`` as a ``Columns`` view (a DataFrame gets its own, uncached beyond this call)."""
    if isinstance(table, Columns):
        return table
    return TableColumns(table).rows(slice(None))
