"""Grid semantics on random tables, checked against a naive eager placement.

hypothesis draws dims with numeric, string and multi-valued coordinates,
missing cells, duplicates and shuffled row order; the naive reference places
each row by looking up its values in sorted lists, one at a time.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazydicom.errors import DuplicateCellError
from lazydicom.grid import axis_key, build_grid, sorted_unique

_values = st.one_of(
    st.lists(st.integers(-50, 50), min_size=1, max_size=4, unique=True),
    st.lists(
        st.floats(-1e3, 1e3, allow_nan=False).map(lambda f: round(f, 3)),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    st.lists(st.text("abcXYZ ", min_size=1, max_size=3), min_size=1, max_size=3, unique=True),
    st.lists(
        st.tuples(st.integers(-5, 5), st.integers(-5, 5)), min_size=1, max_size=3, unique=True
    ),
)


def _naive(rows: list[dict], dims: list[str]) -> tuple[list[list], dict[tuple, int]]:
    axes = [sorted({r[d] for r in rows}) for d in dims]
    cells: dict[tuple, int] = {}
    for i, r in enumerate(rows):
        idx = tuple(axes[k].index(r[d]) for k, d in enumerate(dims))
        if idx in cells:
            raise ValueError("duplicate")
        cells[idx] = i
    return axes, cells


@settings(max_examples=150, deadline=None)
@given(
    axes=st.lists(_values, min_size=1, max_size=3),
    data=st.data(),
)
def test_grid_matches_naive_placement(axes, data):
    dims = [f"d{i}" for i in range(len(axes))]
    all_cells = list(itertools.product(*axes))
    present = data.draw(
        st.lists(st.sampled_from(all_cells), unique=True, min_size=1, max_size=len(all_cells))
    )
    duplicate = data.draw(st.booleans()) and len(present) > 0
    rows = [dict(zip(dims, c)) for c in present]
    if duplicate:
        rows.append(dict(rows[data.draw(st.integers(0, len(rows) - 1))]))
    order = data.draw(st.permutations(range(len(rows))))
    rows = [rows[i] for i in order]
    table = pd.DataFrame({d: pd.Series([r[d] for r in rows], dtype=object) for d in dims})
    table["path"] = [f"f{i}" for i in range(len(rows))]
    if duplicate:
        with pytest.raises(DuplicateCellError):
            build_grid(table, dims)
        return
    axes_ref, cells_ref = _naive(rows, dims)
    grid = build_grid(table, dims)
    assert [list(a) for a in grid.coords] == [[axis_key(v) for v in a] for a in axes_ref]
    assert int((grid.cells >= 0).sum()) == len(cells_ref)
    for idx, row in cells_ref.items():
        assert grid.cells[idx] == row


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(0, 20), min_size=1, max_size=8, unique=True), data=st.data())
def test_coords_and_slice_select_the_same_cells(values, data):
    table = pd.DataFrame({"d": values, "path": [str(v) for v in values]})
    sorted_values = sorted(values)
    idx = data.draw(st.lists(st.integers(0, len(values) - 1), unique=True, max_size=5))
    by_index = build_grid(table, ["d"], slice={"d": idx})
    by_value = build_grid(table, ["d"], coords={"d": [sorted_values[i] for i in idx]})
    assert by_index.coords == by_value.coords == (tuple(sorted_values[i] for i in idx),)
    np.testing.assert_array_equal(by_index.cells, by_value.cells)
    for k, i in enumerate(idx):
        assert table["d"].iloc[by_value.cells[k]] == sorted_values[i]


def test_numbers_compare_as_numbers():
    table = pd.DataFrame({"d": pd.Series([10, 10.0, 2.5], dtype=object), "path": list("abc")})
    with pytest.raises(DuplicateCellError):
        build_grid(table, ["d"])  # 10 and 10.0 are one value
    assert sorted_unique([10, 2.5, "a", None, (1, 2)]) == [2.5, 10, "a", (1, 2), None]


def test_missing_attribute_is_its_own_coordinate_sorted_last():
    table = pd.DataFrame({"d": [1.0, np.nan, 3.0], "path": list("abc")})
    grid = build_grid(table, ["d"])
    assert grid.coords == ((1, 3, None),)
    assert grid.cells.tolist() == [0, 2, 1]
