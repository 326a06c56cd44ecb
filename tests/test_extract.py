"""Labelled output (xarray), to_zarr, and batch extraction of whole folders.

Values are compared with the pattern the synthetic writer encodes
(tests.synthetic.expected_ndarray); resumability is checked with the
audit-hook file counter (a rerun opens no DICOM file of a finished series).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
import zarr
from pydicom.uid import RLELossless

import lazydicom
from lazydicom.cli import main
from lazydicom.extract import extract
from lazydicom.io.labels import series_name
from lazydicom.io.xarray import to_xarray
from tests.conftest import opened_files
from tests.synthetic import expected_ndarray, write_series

xr = pytest.importorskip("xarray")

COORDS = {"SliceLocation": [10.0, -5.0, 2.5], "FlipAngle": [15, 2]}
DIMS = tuple(COORDS)
SHAPE = (6, 4)
RESCALE = (2.0, -5.0)


@pytest.fixture
def dicom(tmp_path: Path) -> Path:
    return tmp_path / "dicom"


def _series(folder) -> lazydicom.Series:
    (series,) = lazydicom.open(folder, progress=False).series()
    return series


def _study(folder: Path) -> dict[str, list[Path]]:
    """Three series: two with a (SliceLocation, FlipAngle) grid, one without FlipAngle."""
    return {
        "flip": write_series(folder, COORDS, SHAPE, series_description="ax 5 flip",
                             series_number=3, rescale=RESCALE),
        "rle": write_series(folder, COORDS, SHAPE, series_description="T1 / RLE",
                            series_number=12, transfer_syntax=RLELossless),
        "other": write_series(folder, {"SliceLocation": [1.0, 0.0]}, (5, 3),
                              series_description="localizer", series_number=1,
                              modality="CT"),
    }


# ------------------------------------------------------------------ xarray


def test_xarray_is_lazy_and_labelled_with_the_grid(dicom):
    write_series(dicom, COORDS, SHAPE, rescale=RESCALE, series_description="ax 5 flip")
    series = _series(dicom)
    with opened_files(dicom) as opened:
        da = series.xarray(DIMS)
    assert opened == []
    assert da.dims == ("x", "y", "SliceLocation", "FlipAngle")
    assert da.chunks is not None  # dask-backed
    assert da["SliceLocation"].values.tolist() == [-5.0, 2.5, 10.0]
    assert da["FlipAngle"].values.tolist() == [2, 15]
    assert da.attrs["PixelSpacing"] == [1.5, 1.25]
    assert da.attrs["ImageOrientationPatient"] == [1, 0, 0, 0, 1, 0]
    assert da.attrs["SeriesDescription"] == "ax 5 flip"
    assert da.attrs["units"] == "US" and da.attrs["dims"] == list(DIMS)
    assert da.name == series_name(series.table())
    np.testing.assert_array_equal(da.values, expected_ndarray(COORDS, SHAPE, rescale=RESCALE))
    # label-based selection works on the grid values
    np.testing.assert_array_equal(da.sel(FlipAngle=15, SliceLocation=2.5).values,
                                  series.ndarray(coords={"SliceLocation": [2.5],
                                                         "FlipAngle": [15]}).compute()[..., 0, 0])


def test_xarray_selection_keeps_the_order_asked_for(dicom):
    write_series(dicom, COORDS, SHAPE)
    series = _series(dicom)
    da = series.xarray(coords={"FlipAngle": [15, 2, 99], "SliceLocation": [10.0, -5.0]})
    assert da.dims == ("x", "y", "FlipAngle", "SliceLocation")
    assert da["FlipAngle"].values.tolist() == [15, 2]
    assert da["SliceLocation"].values.tolist() == [10.0, -5.0]
    sel = {"SliceLocation": [2, 0], "FlipAngle": [0, 1]}
    by_index = to_xarray(series.frames(slice=sel), name="pixels")
    assert by_index["SliceLocation"].values.tolist() == [10.0, -5.0] and by_index.name == "pixels"
    np.testing.assert_array_equal(by_index.values, series.ndarray(slice=sel).compute())


def test_multivalued_dim_and_colour(dicom, tmp_path):
    positions = [(0.0, 0.0, 5.0), (0.0, 0.0, -2.5)]
    write_series(dicom, {"ImagePositionPatient": positions}, SHAPE)
    da = _series(dicom).xarray(("ImagePositionPatient",))
    assert da["ImagePositionPatient"].values.tolist() == ["0\\0\\-2.5", "0\\0\\5"]
    assert da["ImagePositionPatient_2"].values.tolist() == [-2.5, 5.0]
    assert da["ImagePositionPatient_2"].dims == ("ImagePositionPatient",)
    _series(dicom).to_zarr(tmp_path / "ipp.zarr", ("ImagePositionPatient",))
    back = xr.open_zarr(tmp_path / "ipp.zarr")
    assert back["ImagePositionPatient_2"].values.tolist() == [-2.5, 5.0]
    assert back["ImagePositionPatient"].values.tolist() == ["0\\0\\-2.5", "0\\0\\5"]
    rgb = tmp_path / "rgb"
    write_series(rgb, {"InstanceNumber": [1, 2]}, SHAPE, dtype="uint8", samples_per_pixel=3)
    da = _series(rgb).xarray()
    assert da.dims == ("x", "y", "InstanceNumber", "rgb") and da.shape[-1] == 3
    _series(rgb).to_zarr(tmp_path / "rgb.zarr")
    back = xr.open_zarr(tmp_path / "rgb.zarr")["pixels"].transpose("x", "y", "InstanceNumber",
                                                                   "rgb")
    np.testing.assert_array_equal(back.values, da.values)
    np.testing.assert_array_equal(back.values, expected_ndarray(
        {"InstanceNumber": [1, 2]}, SHAPE, dtype="uint8", samples_per_pixel=3))


# ------------------------------------------------------------------ to_zarr


def test_to_zarr_round_trips_sharded_with_a_chunk_per_frame(dicom, tmp_path):
    write_series(dicom, COORDS, SHAPE, transfer_syntax=RLELossless)
    series = _series(dicom)
    out = tmp_path / "one.zarr"
    series.to_zarr(out, DIMS, shard_bytes=SHAPE[0] * SHAPE[1] * 2 * 4)  # 4 frames per shard
    ds = xr.open_zarr(out)
    # frames contiguous on disk: dims reversed, then (y, x), as pydicom stacks frames
    assert ds["pixels"].dims == ("FlipAngle", "SliceLocation", "y", "x")
    assert ds["SliceLocation"].values.tolist() == [-5.0, 2.5, 10.0]
    back = ds["pixels"].transpose("x", "y", *DIMS)
    np.testing.assert_array_equal(back.values, expected_ndarray(COORDS, SHAPE))
    assert back.dtype == series.ndarray(DIMS).dtype
    assert ds.attrs["SeriesDescription"] == "synthetic"
    arr = zarr.open_group(out, mode="r")["pixels"]
    assert arr.chunks == (1, 1, SHAPE[0], SHAPE[1])  # one inner chunk per frame
    assert arr.shards == (1, 3, SHAPE[0], SHAPE[1])  # 3 slices x 1 flip angle per shard
    # the two shards are two files side by side (chunk keys "c.i.j.k"), no folders
    assert sorted(p.name for p in (out / "pixels").iterdir()) == ["c.0.0.0.0", "c.1.0.0.0",
                                                                  "zarr.json"]
    # compute=False returns the pixel writes to run later (metadata is already there)
    delayed = series.to_zarr(tmp_path / "later.zarr", DIMS, compute=False)
    assert xr.open_zarr(tmp_path / "later.zarr")["SliceLocation"].size == 3
    delayed.compute()
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "later.zarr")["pixels"].values,
                                  ds["pixels"].values)


@pytest.mark.parametrize("compressor", ["lz4", "zstd", "none"])
def test_to_zarr_codecs_and_stores(dicom, tmp_path, compressor):
    """Folders and other zarr stores; every codec reads back exactly."""
    write_series(dicom, COORDS, SHAPE, rescale=RESCALE)
    series = _series(dicom)
    expected = expected_ndarray(COORDS, SHAPE, rescale=RESCALE)
    store = zarr.storage.MemoryStore()
    for where in (tmp_path / "folder.zarr", store):
        series.to_zarr(where, DIMS, compressor=compressor)
        got = xr.open_zarr(where)["pixels"].transpose("x", "y", *DIMS)
        np.testing.assert_array_equal(got.values, expected)
    with pytest.raises(ValueError, match="compressor"):
        series.to_zarr(tmp_path / "bad.zarr", DIMS, compressor="gzip")


def test_to_zarr_replaces_its_group_and_nothing_else(dicom, tmp_path):
    """A group written again is replaced whole (no array of the old one is left);
    the root's attributes, sibling groups and the parents of a nested group stay."""
    write_series(dicom, COORDS, SHAPE)
    series = _series(dicom)
    out = tmp_path / "tree.zarr"
    root = zarr.open_group(out, mode="w")
    root.attrs["mine"] = 1
    root.create_group("sibling").create_array("keep", shape=(2,), dtype="i2")
    series.to_zarr(out, ("SliceLocation", "FlipAngle"), group="a/b")
    series.to_zarr(out, ("FlipAngle", "SliceLocation"), group="a/b")  # dims swapped
    again = zarr.open_group(out, mode="r")
    assert dict(again.attrs) == {"mine": 1}
    assert "keep" in again["sibling"]
    ds = xr.open_zarr(out, group="a/b")
    assert ds["pixels"].dims == ("SliceLocation", "FlipAngle", "y", "x")
    np.testing.assert_array_equal(ds["pixels"].transpose("x", "y", *DIMS).values,
                                  expected_ndarray(COORDS, SHAPE))
    # at the root, the store's content is replaced
    series.to_zarr(out, DIMS)
    assert sorted(zarr.open_group(out, mode="r").group_keys()) == []
    assert dict(zarr.open_group(out, mode="r").attrs).get("mine") is None


# ------------------------------------------------------------------ extract


def test_extract_writes_every_series_with_readable_names(dicom, tmp_path):
    files = _study(dicom)
    out = tmp_path / "out.zarr"
    report = extract(dicom, out, DIMS, progress=False)
    assert [r["status"] for r in report] == ["written"] * 3
    names = [r["name"] for r in report]
    assert [n.rsplit("_", 1)[0] for n in names] == ["001_localizer", "003_ax_5_flip",
                                                    "012_t1_rle"]
    tree = xr.open_datatree(out, engine="zarr")
    assert tree.attrs["lazydicom"]["dims"] == list(DIMS)
    flip = xr.open_zarr(out, group=names[1])["pixels"].transpose("x", "y", *DIMS)
    np.testing.assert_array_equal(flip.values, expected_ndarray(COORDS, SHAPE, rescale=RESCALE))
    assert flip.attrs["SeriesNumber"] == 3 and flip.attrs["Modality"] == "MR"
    # no empty cell: has_frame stores no chunk, and reads as its fill value, True
    assert sorted(os.listdir(out / names[1] / "has_frame")) == ["zarr.json"]
    assert flip["has_frame"].values.all() and flip["has_frame"].shape == (3, 2)
    # each cell's ImagePositionPatient, as pydicom reads it from the files; the constant
    # ones (x and y of an axial series) are the arrays' fill values: no chunk stored
    position = {}
    for path in files["flip"]:
        ds = pydicom.dcmread(path)
        position[(float(ds.SliceLocation), int(ds.FlipAngle))] = [
            float(v) for v in ds.ImagePositionPatient]
    cells = [(s, f) for s in flip["SliceLocation"].values.tolist()
             for f in flip["FlipAngle"].values.tolist()]
    for i in range(3):
        got = flip[f"ImagePositionPatient_{i}"].transpose(*DIMS).values.reshape(-1)
        np.testing.assert_array_equal(got, [position[c][i] for c in cells])
        stored = sorted(os.listdir(out / names[1] / f"ImagePositionPatient_{i}"))
        assert stored == (["zarr.json"] if len(set(got.tolist())) == 1 else ["c.0.0", "zarr.json"])
    assert len({p[0] for p in position.values()}) == 1  # so the case above was seen
    rle = tree[names[2]].to_dataset()["pixels"].transpose("x", "y", *DIMS)
    np.testing.assert_array_equal(rle.values, expected_ndarray(COORDS, SHAPE))
    loc = xr.open_zarr(out, group=names[0])["pixels"]
    assert loc.sizes == {"x": 3, "y": 5, "SliceLocation": 2, "FlipAngle": 1}
    assert np.isnan(loc["FlipAngle"].values).all()  # the series has no FlipAngle
    assert len(files) == 3


def test_extract_where_filters_series(dicom, tmp_path):
    _study(dicom)
    report = extract(dicom, tmp_path / "o.zarr", DIMS, where={"Modality": "MR",
                                                             "SeriesNumber": [12, 99]},
                     progress=False)
    assert [r["name"].split("_")[0] for r in report] == ["012"]


def test_rerun_skips_finished_series_without_opening_their_files(dicom, tmp_path):
    files = _study(dicom)
    out = tmp_path / "out.zarr"
    first = extract(dicom, out, DIMS, progress=False)
    with opened_files(dicom) as opened:
        again = extract(dicom, out, DIMS, progress=False)
    assert opened == []
    assert [r["status"] for r in again] == ["skipped"] * 3
    # a changed file: only its series is written again
    st = os.stat(files["rle"][0])
    os.utime(files["rle"][0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = extract(dicom, out, DIMS, progress=False)
    assert [r["status"] for r in third] == ["skipped", "skipped", "written"]
    assert [r["name"] for r in first] == [r["name"] for r in third]


def test_interrupted_or_failed_series_are_written_on_the_next_run(dicom, tmp_path):
    files = _study(dicom)
    out = tmp_path / "out.zarr"
    # a truncated file makes its series fail while the others complete
    broken = files["rle"][0]
    data = broken.read_bytes()
    db = lazydicom.open(dicom, progress=False)  # indexed whole, truncated before reading
    broken.write_bytes(data[: len(data) - 20])
    report = extract(db, out, DIMS, progress=False)
    status = {r["name"].split("_")[0]: r["status"] for r in report}
    assert status == {"001": "written", "003": "written", "012": "failed"}
    assert "FrameReadError" in [r for r in report if r["status"] == "failed"][0]["error"]
    broken.write_bytes(data)  # repaired: the next run writes it, and only it
    report = extract(dicom, out, DIMS, progress=False)
    assert [r["status"] for r in report] == ["skipped", "skipped", "written"]
    # an interrupted run leaves no completion marker: simulate by removing one
    name = report[1]["name"]
    group = zarr.open_group(out, path=name, mode="r+", use_consolidated=False)
    del group.attrs["lazydicom_extract"]
    report = extract(dicom, out, DIMS, progress=False)
    assert [r["status"] for r in report] == ["skipped", "written", "skipped"]
    got = xr.open_zarr(out, group=name)["pixels"].transpose("x", "y", *DIMS)
    np.testing.assert_array_equal(got.values, expected_ndarray(COORDS, SHAPE, rescale=RESCALE))


def _consolidated(store) -> dict:
    """The consolidated metadata in the root ``zarr.json`` of a local store, as stored."""
    import json

    doc = json.loads((Path(store) / "zarr.json").read_text())
    return doc["consolidated_metadata"]["metadata"]


def test_consolidated_metadata_is_zarrs_own_for_the_store_as_it_is(dicom, tmp_path):
    """extract consolidates from the metadata it made plus the store's other nodes;
    the reference is zarr.consolidate_metadata run on a copy of the store afterwards:
    after a first run (one series failed), a rerun with one series rewritten and the
    others skipped, and a run that replaces a series a stranger group sits beside."""
    import shutil

    files = _study(dicom)
    out = tmp_path / "out.zarr"

    def check() -> None:
        ref = tmp_path / "ref.zarr"
        shutil.rmtree(ref, ignore_errors=True)
        shutil.copytree(out, ref)
        with pytest.warns(UserWarning, match="Consolidated metadata"):
            zarr.consolidate_metadata(str(ref))
        assert _consolidated(out) == _consolidated(ref)
        names = {k for k in _consolidated(out) if "/" not in k}
        assert names == set(zarr.open_group(out, mode="r", use_consolidated=False)
                            .group_keys())

    broken = files["rle"][0]
    data = broken.read_bytes()
    db = lazydicom.open(dicom, progress=False)
    broken.write_bytes(data[: len(data) - 20])
    assert sorted(r["status"] for r in extract(db, out, DIMS, progress=False)) == [
        "failed", "written", "written"]
    check()
    broken.write_bytes(data)
    zarr.open_group(out, mode="a").create_group("stranger").create_array(
        "a", shape=(3,), dtype="f4", dimension_names=("i",))
    st = os.stat(files["flip"][0])
    os.utime(files["flip"][0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = extract(dicom, out, DIMS, progress=False)
    assert sorted(r["status"] for r in report) == ["skipped", "written", "written"]
    check()
    assert "stranger/a" in _consolidated(out)
    written = [r["name"] for r in report if r["status"] == "written"]
    for name in written:  # the completion marker is in the consolidated metadata too
        assert _consolidated(out)[name]["attributes"]["lazydicom_extract"]["complete"]
    tree = xr.open_datatree(out, engine="zarr")
    assert sorted(tree.children) == sorted([*(r["name"] for r in report), "stranger"])
    # a nested group written into the same store by to_zarr
    lazydicom.open(dicom, progress=False).series()[0].to_zarr(out, DIMS,
                                                              group="nest/inner")
    check()
    assert "nest/inner/pixels" in _consolidated(out)


def test_cli_extract(dicom, tmp_path, capsys):
    _study(dicom)
    out = tmp_path / "cli.zarr"
    rc = main(["extract", str(dicom), str(out), "--dims", "SliceLocation,FlipAngle",
               "--where", "Modality=MR", "--where", "SeriesNumber=3|12", "-q"])
    assert rc == 0
    assert "2 series written (12 frames), 0 already complete" in capsys.readouterr().out
    rc = main(["extract", str(dicom), str(out), "--dims", "SliceLocation,FlipAngle", "-q"])
    assert rc == 0 and "1 series written (2 frames), 2 already complete" in (
        capsys.readouterr().out)
    # a series the dims cannot separate fails with the grid's message, the rest is written
    rc = main(["extract", str(dicom), str(tmp_path / "bad.zarr"), "--dims", "FlipAngle", "-q"])
    captured = capsys.readouterr()
    assert rc == 1 and "DuplicateCellError" in captured.err
    assert main(["extract", str(dicom), str(out), "--dims", "", "-q"]) != 0


@pytest.mark.distributed
def test_extract_on_a_local_cluster(dicom, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    _study(dicom)
    out = tmp_path / "cluster.zarr"
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        rc = main(["extract", str(dicom), str(out), "--dims", "SliceLocation,FlipAngle",
                   "--scheduler", cluster.scheduler_address, "--cache", "-q"])
        assert rc == 0 and "3 series written" in capsys.readouterr().out
        with distributed.Client(cluster) as client:
            report = extract(dicom, out, DIMS, scheduler=client, progress=False)
        # a client that is not dask's default: extraction uses the one it is given
        with distributed.Client(cluster, set_as_default=False) as other:
            again = extract(dicom, tmp_path / "other.zarr", DIMS, scheduler=other,
                            progress=False)
    assert [r["status"] for r in again] == ["written"] * 3
    assert [r["status"] for r in report] == ["skipped"] * 3
    names = [r["name"] for r in report]
    got = xr.open_zarr(out, group=names[2])["pixels"].transpose("x", "y", *DIMS)
    np.testing.assert_array_equal(got.values, expected_ndarray(COORDS, SHAPE))
    got = xr.open_zarr(tmp_path / "other.zarr", group=names[2])["pixels"]
    np.testing.assert_array_equal(got.transpose("x", "y", *DIMS).values,
                                  expected_ndarray(COORDS, SHAPE))
    cache = zarr.open_group(dicom / ".lazydicom" / "cache.zarr", mode="r")
    assert len(list(cache.groups())) > 0  # the RLE series went through the workers' cache


def test_many_folders_and_globs_into_one_store(tmp_path):
    """Series of several folders land in one store; a glob names several folders."""
    for i, syntax in enumerate(("1.2.840.10008.1.2.1", RLELossless, "1.2.840.10008.1.2")):
        write_series(tmp_path / f"scan{i}", COORDS, SHAPE, transfer_syntax=syntax,
                     series_number=10 + i, series_description=f"scan {i}")
    out = tmp_path / "all.zarr"
    report = extract([tmp_path / "scan0", str(tmp_path / "scan[12]")], out, DIMS,
                     progress=False)
    assert [r["status"] for r in report] == ["written"] * 3
    assert sorted({r["source"] for r in report}) == sorted(
        str(tmp_path / f"scan{i}") for i in range(3))
    plain = zarr.open_group(out, mode="r")  # plain zarr reads it back too
    for r in report:
        pixels = plain[r["name"]]["pixels"]
        assert pixels.shards is not None and pixels.chunks[-2:] == SHAPE
        np.testing.assert_array_equal(np.asarray(pixels[...]).T,
                                      expected_ndarray(COORDS, SHAPE))
    tree = xr.open_datatree(out, engine="zarr")
    assert sorted(tree.children) == sorted(r["name"] for r in report)
    with pytest.raises(ValueError, match="no folder matches"):
        extract([str(tmp_path / "nothing*")], out, DIMS, progress=False)
    (tmp_path / "file.zarr").write_text("not a folder")
    with pytest.raises(ValueError, match="is a file"):
        extract(tmp_path / "scan0", tmp_path / "file.zarr", DIMS, progress=False)


_KILLER = """
import os, signal, sys
import lazydicom.extract as ex
real, count = ex.write_shard, [0]
def write_then_die(*args):
    count[0] += 1
    if count[0] > int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # as a user's kill -9, mid-batch
    return real(*args)
ex.write_shard = write_then_die
ex.extract(sys.argv[1], sys.argv[2], ("SliceLocation", "FlipAngle"), progress=False,
           workers=1, shard_bytes=48)
"""


def test_killed_extraction_resumes_and_completes(dicom, tmp_path):
    """SIGKILL after some shards: the next run keeps finished series and redoes the rest."""
    import signal
    import subprocess
    import sys

    files = _study(dicom)
    lazydicom.open(dicom, progress=False)  # index first, so the kill lands in the writes
    out = tmp_path / "killed.zarr"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", _KILLER, str(dicom), str(out), "7"],
                          env=env, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    with opened_files(dicom) as opened:
        report = extract(dicom, out, DIMS, progress=False, shard_bytes=48)
    statuses = {r["name"].split("_")[0]: r["status"] for r in report}
    # series run in name order, a shard per frame: 001 (2 shards) was complete,
    # 003 was killed at its 6th shard, 012 had not started
    assert statuses == {"001": "skipped", "003": "written", "012": "written"}
    rewritten = {os.path.abspath(p) for p in opened}
    assert not rewritten & {os.path.abspath(p) for p in files["other"]}
    for r in report:
        got = xr.open_zarr(out, group=r["name"])["pixels"]
        assert not np.isnan(got.values).any()
    names = {r["name"].split("_")[0]: r["name"] for r in report}
    np.testing.assert_array_equal(
        xr.open_zarr(out, group=names["012"])["pixels"].transpose("x", "y", *DIMS).values,
        expected_ndarray(COORDS, SHAPE))
    np.testing.assert_array_equal(
        xr.open_zarr(out, group=names["003"])["pixels"].transpose("x", "y", *DIMS).values,
        expected_ndarray(COORDS, SHAPE, rescale=RESCALE))


def _many(folder: Path, n: int = 9) -> dict[int, list[Path]]:
    """``n`` small series (numbers 1..n, series k rescaled by slope k): enough for
    extract's worker processes, each series' pixels its own known pattern."""
    return {k: write_series(folder, COORDS, SHAPE, series_number=k,
                            series_description=f"series {k}", rescale=(float(k), -5.0))
            for k in range(1, n + 1)}


def _check_many(out: Path, report: list[dict], written: set[int]) -> None:
    """Every series in ``written`` reads back (xarray, its group) as the pattern it was
    written with; the consolidated metadata is zarr's own for the store."""
    import shutil

    by_number = {int(r["name"].split("_")[0]): r["name"] for r in report}
    for k in written:
        got = xr.open_zarr(out, group=by_number[k])["pixels"].transpose("x", "y", *DIMS)
        np.testing.assert_array_equal(got.values, expected_ndarray(
            COORDS, SHAPE, rescale=(float(k), -5.0)))
    ref = out.parent / "ref.zarr"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(out, ref)
    with pytest.warns(UserWarning, match="Consolidated metadata"):
        zarr.consolidate_metadata(str(ref))
    assert _consolidated(out) == _consolidated(ref)


def test_series_written_by_worker_processes_are_complete_and_resumable(dicom, tmp_path):
    """scheduler="processes" (the default for many series): each series is written by a
    forked worker; the output is each series' known pattern, a series whose file is
    truncated fails alone, the consolidated metadata is zarr's own (including the
    failed series' group, made before its shard failed), and a rerun writes only the
    failed series."""
    files = _many(dicom)
    out = tmp_path / "out.zarr"
    broken = files[4][0]
    data = broken.read_bytes()
    db = lazydicom.open(dicom, progress=False)
    broken.write_bytes(data[: len(data) - 20])
    report = extract(db, out, DIMS, progress=False, scheduler="processes", workers=2)
    status = {int(r["name"].split("_")[0]): r["status"] for r in report}
    assert status == {k: "failed" if k == 4 else "written" for k in range(1, 10)}
    assert "FrameReadError" in [r["error"] for r in report if r["status"] == "failed"][0]
    _check_many(out, report, set(range(1, 10)) - {4})
    assert "lazydicom_extract" not in _consolidated(out)[report[3]["name"]]["attributes"]
    broken.write_bytes(data)
    again = extract(dicom, out, DIMS, progress=False, scheduler="processes", workers=2)
    assert {int(r["name"].split("_")[0]): r["status"] for r in again} == {
        k: "written" if k == 4 else "skipped" for k in range(1, 10)}
    _check_many(out, again, set(range(1, 10)))


def test_a_worker_process_that_dies_fails_its_series_and_a_rerun_completes(
        dicom, tmp_path, monkeypatch):
    """A worker killed mid-series (as by the OOM killer): extract returns, the series
    not finished are reported failed (none marked complete), and the next run
    writes them. The worker dies in write_shard of series 5, patched here and
    inherited by the forked workers."""
    import lazydicom.extract as ex

    _many(dicom)
    out = tmp_path / "out.zarr"
    parent, real = os.getpid(), ex.write_shard

    def dies_in_series_5(frames, target, region):
        if os.getpid() != parent and target.path.startswith("005_"):
            os._exit(9)
        return real(frames, target, region)

    monkeypatch.setattr(ex, "write_shard", dies_in_series_5)
    report = extract(dicom, out, DIMS, progress=False, scheduler="processes", workers=2)
    status = {int(r["name"].split("_")[0]): r["status"] for r in report}
    assert status[5] == "failed" and set(status.values()) <= {"written", "failed"}
    for r in report:  # a failed series' group is gone (removed, perhaps half-written)
        assert (out / r["name"]).exists() == (r["status"] == "written")
        if r["status"] == "written":
            marker = zarr.open_group(out, path=r["name"], mode="r").attrs["lazydicom_extract"]
            assert marker["complete"]
    _check_many(out, report, {k for k, v in status.items() if v == "written"})
    monkeypatch.undo()
    again = extract(dicom, out, DIMS, progress=False)
    assert {r["name"]: r["status"] for r in again} == {
        r["name"]: "written" if r["status"] == "failed" else "skipped" for r in report}
    _check_many(out, again, set(range(1, 10)))


def test_many_series_go_to_worker_processes_by_default(monkeypatch, tmp_path):
    """The local default: processes for at least 4 series per core, threads otherwise
    or when threads, a worker count or one core are asked for, and for frames or a
    store that are not local."""
    from types import SimpleNamespace

    import lazydicom.extract as ex

    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    def job(frames: int, shape=(256, 256), dtype=np.uint16):
        return SimpleNamespace(cells=frames, frames=SimpleNamespace(
            frame_shape=shape, dtype=np.dtype(dtype), table=SimpleNamespace(source=None)))

    jobs = [job(5)] * 8
    assert ex._processes(jobs, None, None) == 2
    # CT series of 150 frames of 512x512 (75 MB each): threads spread their shards
    assert ex._processes([job(150, (512, 512), np.int16)] * 8, None, None) == 0
    assert ex._processes([job(150, (512, 512), np.int16)] * 8, "processes", None) == 2
    assert ex._processes([job(5)] * 5 + [job(150, (512, 512))] * 3, None, None) == 2
    assert ex._processes(jobs[:7], None, None) == 0
    assert ex._processes(jobs, "threads", None) == 0
    assert ex._processes(jobs, None, 3) == 0
    assert ex._processes(jobs[:3], "processes", None) == 2
    assert ex._processes(jobs[:1], "processes", 4) == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert ex._processes(jobs * 4, None, None) == 0
    # forked only for local files written to a local folder
    from zarr.storage import MemoryStore

    from lazydicom.io.zarr import GroupWriter

    local = SimpleNamespace(frames=SimpleNamespace(table=SimpleNamespace(source=None)))
    remote = SimpleNamespace(frames=SimpleNamespace(table=SimpleNamespace(source=object())))
    folder = GroupWriter(str(tmp_path / "out.zarr"))
    assert ex._local([local] * 8, folder)
    assert not ex._local([local] * 7 + [remote], folder)
    assert not ex._local([local] * 8, GroupWriter(MemoryStore()))


def test_extraction_marks_missing_cells_and_keeps_geometry(tmp_path):
    """Float output: empty cells are NaN, has_frame says which; the affine and mm axes kept."""
    folder = tmp_path / "dicom"
    s = lazydicom.zeros((4, 3, 3, 2), {"SliceLocation": [0.0, 2.0, 4.0], "FlipAngle": [5, 20]},
                        path=folder, PixelSpacing=[0.5, 0.25])
    values = np.arange(4 * 3 * 6, dtype=np.float32).reshape(4, 3, 3, 2) * 1.5 - 7
    s.set_ndarray(values, coords={"SliceLocation": [0.0, 2.0, 4.0], "FlipAngle": [5, 20]})
    table = s.table()
    (gone,) = table.path[(table.SliceLocation == 2.0) & (table.FlipAngle == 20)]
    os.remove(folder / gone)  # the cell (SliceLocation 2, FlipAngle 20) is now empty
    report = extract(folder, tmp_path / "o.zarr", ("SliceLocation", "FlipAngle"), progress=False)
    (name,) = [r["name"] for r in report]
    ds = xr.open_zarr(tmp_path / "o.zarr", group=name)
    pixels = ds["pixels"].transpose("x", "y", "SliceLocation", "FlipAngle")
    present = ds["has_frame"].transpose("SliceLocation", "FlipAngle").values
    assert present.sum() == 5 and pixels.dtype == np.float32
    assert np.isnan(pixels.values[:, :, ~present]).all()
    np.testing.assert_allclose(pixels.values[:, :, present], values[:, :, present], atol=1e-3)
    np.testing.assert_allclose(ds["x"].values, [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(ds["y"].values, [0, 0.5, 1.0])
    affine = np.array(ds.attrs["affine"])
    np.testing.assert_allclose(affine @ [2, 1, 1, 1], [0.5, 0.5, 2.0, 1.0])
    ipp = np.stack([ds[f"ImagePositionPatient_{i}"].transpose("SliceLocation", "FlipAngle")
                    .values for i in range(3)], axis=-1)
    np.testing.assert_allclose(ipp[present][:, 2], np.repeat([0.0, 2.0, 4.0], 2)[
        present.reshape(-1)])
    # an integer output keeps 0 for missing cells (has_frame tells them apart)
    report = extract(folder, tmp_path / "raw.zarr", ("SliceLocation", "FlipAngle"),
                     rescale=False, progress=False)
    raw = xr.open_zarr(tmp_path / "raw.zarr", group=name)
    assert raw["pixels"].dtype.kind in "iu"
    raw_pixels = raw["pixels"].transpose("x", "y", "SliceLocation", "FlipAngle").values
    assert (raw_pixels[:, :, ~present] == 0).all()


@pytest.mark.parametrize(("rescale", "bits", "missing", "packed"), [
    ((1.0, -1024.0), 12, True, True),      # CT: int16 + scale_factor/add_offset, NaN fill
    ((2.0, 5.0), 16, False, True),         # integer rescale, every cell has a frame
    ((2.0, 5.0), 16, True, False),         # no integer is free for empty cells: float32
    ((0.5, 1.25), 12, False, False),       # fractional rescale: float32
], ids=["ct", "full-grid", "no-free-integer", "fractional"])
def test_packed_storage_decodes_to_the_ndarray_values(tmp_path, rescale, bits, missing, packed):
    folder = tmp_path / "dicom"
    gone = {(1, 0)} if missing else set()
    write_series(folder, COORDS, SHAPE, dtype="int16", bits_stored=bits, rescale=rescale,
                 missing=gone)
    series = _series(folder)
    out = tmp_path / "p.zarr"
    report = extract(folder, out, DIMS, progress=False)
    (name,) = [r["name"] for r in report]
    ds = xr.open_zarr(out, group=name)
    stored = zarr.open_group(out, mode="r")[name]["pixels"]
    assert (stored.dtype == np.int16) == packed
    expected = series.ndarray(DIMS, fill_value=np.nan).compute()
    got = ds["pixels"].transpose("x", "y", *DIMS).values
    np.testing.assert_array_equal(got, expected)  # NaN where empty, equal elsewhere
    if packed:
        raw = xr.open_zarr(out, group=name, mask_and_scale=False)["pixels"]
        present = ds["has_frame"].transpose(*DIMS).values
        np.testing.assert_array_equal(
            raw.transpose("x", "y", *DIMS).values[:, :, present],
            series.ndarray(DIMS, rescale=False).compute()[:, :, present])
