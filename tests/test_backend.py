"""The xarray engine: xr.open_dataset / open_datatree(folder, engine="lazydicom").

Values are checked against the pattern the synthetic writer encodes; lazy
indexing is checked by counting the files xarray makes lazydicom open.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import RLELossless

import lazydicom
from tests.conftest import opened_files
from tests.synthetic import expected_ndarray, write_series

xr = pytest.importorskip("xarray")

COORDS = {"SliceLocation": [10.0, -5.0, 2.5], "FlipAngle": [15, 2]}
DIMS = tuple(COORDS)
SHAPE = (6, 4)


def test_the_engine_is_registered():
    assert "lazydicom" in xr.backends.list_engines()


def test_open_dataset_is_lazy_labelled_and_reads_only_what_isel_keeps(tmp_path):
    write_series(tmp_path, COORDS, SHAPE, transfer_syntax=RLELossless, series_number=3,
                 series_description="t1 vfa")
    lazydicom.open(tmp_path, progress=False)  # the headers, indexed once
    with opened_files(tmp_path) as opened:
        ds = xr.open_dataset(tmp_path, engine="lazydicom", dims=DIMS)
    assert opened == []  # opening reads no pixel (nor header: the index has them)
    (name,) = ds.data_vars
    assert name.startswith("003_t1_vfa_")
    da = ds[name]
    assert da.dims == ("x", "y", *DIMS)
    assert ds["SliceLocation"].values.tolist() == [-5.0, 2.5, 10.0]
    assert da.attrs["SeriesDescription"] == "t1 vfa"
    with opened_files(tmp_path) as opened:
        one = da.isel(SliceLocation=1, FlipAngle=0).values  # numpy-backed: no dask
    assert len(opened) == 1
    expected = expected_ndarray(COORDS, SHAPE)
    np.testing.assert_array_equal(one, expected[:, :, 1, 0])
    with opened_files(tmp_path) as opened:
        part = da.sel(FlipAngle=15).isel(x=slice(1, 3)).values
    assert len(opened) == 3
    np.testing.assert_array_equal(part, expected[1:3, :, :, 1])
    np.testing.assert_array_equal(da.values, expected)
    chunked = xr.open_dataset(tmp_path, engine="lazydicom", dims=DIMS, chunks={})
    assert chunked[name].chunks is not None
    np.testing.assert_array_equal(chunked[name].values, expected)


def test_series_on_the_same_grid_share_a_dataset_others_refused(tmp_path):
    for echo in (1, 2):
        write_series(tmp_path, COORDS, SHAPE, series_number=echo,
                     series_description=f"echo {echo}")
    ds = xr.open_dataset(tmp_path, engine="lazydicom", dims=DIMS)
    assert len(ds.data_vars) == 2
    write_series(tmp_path, {"SliceLocation": [1.0], "FlipAngle": [2]}, SHAPE, series_number=9)
    with pytest.raises(lazydicom.InvalidArgumentError, match="open_datatree"):
        xr.open_dataset(tmp_path, engine="lazydicom", dims=DIMS)
    ds = xr.open_dataset(tmp_path, engine="lazydicom", dims=DIMS, where={"SeriesNumber": 9})
    assert list(ds.sizes.values()) == [SHAPE[1], SHAPE[0], 1, 1]


def test_open_datatree_gives_a_group_per_series_and_leaves_out_what_dims_cannot_place(
        tmp_path):
    write_series(tmp_path, COORDS, SHAPE, series_number=1, series_description="a")
    write_series(tmp_path, {"SliceLocation": [0.0, 1.0]}, (5, 3), series_number=2,
                 series_description="b")
    write_series(tmp_path, COORDS, SHAPE, series_number=3, series_description="dup",
                 duplicates={(0, 0)})
    with pytest.warns(lazydicom.LazyDicomWarning, match="cannot be laid out"):
        tree = xr.open_datatree(tmp_path, engine="lazydicom", dims=("SliceLocation",),
                                where={"SeriesNumber": [2, 3]})
    (group,) = tree.children
    assert group.startswith("002_b_")
    pixels = tree[group]["pixels"]
    assert pixels.dims == ("x", "y", "SliceLocation") and pixels.shape == (3, 5, 2)
    np.testing.assert_array_equal(pixels.values, expected_ndarray(
        {"SliceLocation": [0.0, 1.0]}, (5, 3)))
    full = xr.open_datatree(tmp_path, engine="lazydicom", dims=DIMS, where={"SeriesNumber": 1})
    (group,) = full.children
    np.testing.assert_array_equal(full[group]["pixels"].values, expected_ndarray(COORDS, SHAPE))
