"""DICOMweb as a source, against a real server: Orthanc with its DICOMweb plugin on loopback.

The same files are uploaded to Orthanc (its REST API, not lazydicom) and
indexed locally; the DICOMweb database must give the same index (attribute
columns) and the same arrays as the local read, plus the synthetic series'
known pixels. Requests are counted in Orthanc's own log.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid

import lazydicom
from lazydicom.dicomweb import WebIndex
from tests.conftest import DATA
from tests.orthanc import basic_auth, orthanc_available, running_orthanc
from tests.synthetic import (
    encoder_available,
    expected_ndarray,
    write_enhanced_mr,
    write_series,
)

pytestmark = pytest.mark.skipif(
    not orthanc_available(),
    reason="Orthanc is not on PATH (apt-get install orthanc orthanc-dicomweb; .ci/run does)",
)

COORDS = {"SliceLocation": [10.0, -5.0, 0.0], "FlipAngle": [15, 2]}
DIMS = tuple(COORDS)
SHAPE = (6, 4)
CODEC_SHAPE = (32, 32)  # the JPEG-LS and JPEG 2000 encoders refuse smaller frames
ENHANCED = {"InStackPositionNumber": [1, 2, 3, 4], "EffectiveEchoTime": [10.0, 30.0, 20.0]}
#: Attributes that depend on where the frame is stored, not on the DICOM object.
STORAGE = {"path", "size", "mtime", "PixelDataOffset", "FrameOffset", "FrameLength",
           "TransferSyntaxUID"}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".lazydicom" not in p.parts)


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory):
    """Orthanc holding the real corpus and synthetic series; the same files locally."""
    root = tmp_path_factory.mktemp("dicomweb")
    local = root / "local"
    shutil.copytree(DATA, local / "real", ignore=shutil.ignore_patterns("*.md", ".lazydicom"))
    write_series(local / "synthetic" / "plain", COORDS, SHAPE, rescale=(2.0, -100.0),
                 series_description="rescaled", series_number=1)
    write_series(local / "synthetic" / "signed", COORDS, SHAPE, dtype="int16", bits_stored=12,
                 series_description="signed 12 bit", series_number=2)
    write_series(local / "synthetic" / "rle", COORDS, SHAPE, transfer_syntax=RLELossless,
                 series_description="rle", series_number=3)
    write_series(local / "synthetic" / "rgb", COORDS, SHAPE, samples_per_pixel=3,
                 dtype="uint8", series_description="rgb", series_number=4)
    for number, syntax in enumerate((JPEGLSLossless, JPEG2000Lossless), 5):
        if encoder_available(syntax):
            write_series(local / "synthetic" / syntax.name, COORDS, CODEC_SHAPE,
                         transfer_syntax=syntax, series_description=syntax.name,
                         series_number=number)
    write_enhanced_mr(local / "synthetic" / "enhanced.dcm", ENHANCED, SHAPE,
                      rescale=(0.5, 3.0), series_description="enhanced")
    with running_orthanc(root / "orthanc") as server:
        server.upload(_files(local))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
            db = lazydicom.open(local, progress=False)
        yield server, db, root


def _web(server, root, name="index", **options) -> lazydicom.Database:
    index = WebIndex(server.dicomweb, root / name, **options)
    index.refresh()
    return lazydicom.Database(index)


def _frame_requests(lines: list[str]) -> list[str]:
    return [line for line in lines if "/frames/" in line]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b)))
    return a == b


# ---------------------------------------------------------------- index


def test_index_equals_local_index_and_downloads_no_pixels(corpus_server):
    server, local, root = corpus_server
    before = len(server.requests())
    db = lazydicom.open(server.dicomweb, index_path=root / "first")
    requests = server.requests()[before:]
    assert requests and all(r.startswith("GET /dicom-web/series") or r.endswith("/metadata")
                            for r in requests), requests
    assert db.path == server.dicomweb
    web = db.index.table.sort_values(["SOPInstanceUID", "FrameNumber"]).reset_index(drop=True)
    ref = local.index.table.sort_values(["SOPInstanceUID", "FrameNumber"]).reset_index(drop=True)
    assert len(web) == len(ref) and len(db.table()) == len(local.table())
    for column in sorted(set(ref.columns) - STORAGE):
        got, want = web[column].tolist(), ref[column].tolist()
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if not _same(g, w)]
        assert not bad, (column, bad[:3])
    # a row's path is its instance's WADO-RS path (top-level UIDs, as pydicom reads them)
    headers = [pydicom.dcmread(os.path.join(local.path, p), stop_before_pixels=True)
               for p in sorted(set(ref["path"]))]
    assert set(web["path"]) == {
        f"studies/{h.StudyInstanceUID}/series/{h.SeriesInstanceUID}/instances/{h.SOPInstanceUID}"
        for h in headers}
    # reopening loads the index: one search, no metadata read again
    before = len(server.requests())
    again = lazydicom.open(server.dicomweb, index_path=root / "first")
    assert [r for r in server.requests()[before:]] == [
        r for r in server.requests()[before:] if r.startswith("GET /dicom-web/series")]
    assert len(again.table()) == len(db.table())


def test_where_restricts_the_search(corpus_server):
    server, local, root = corpus_server
    db = lazydicom.open(server.dicomweb, where={"Modality": "CT"}, index_path=root / "ct")
    assert set(db.table()["Modality"]) == {"CT"}
    want = local.table()[local.table()["Modality"] == "CT"]
    assert len(db.table()) == len(want)
    # a date range and a list of UIDs, as QIDO-RS takes them
    uids = sorted(local.table()["SeriesInstanceUID"].unique())[:3]
    db = lazydicom.open(server.dicomweb, index_path=root / "uids",
                        where={"SeriesInstanceUID": uids, "StudyDate": "19000101-20991231"})
    dated = local.table()[local.table()["SeriesInstanceUID"].isin(uids)
                          & local.table()["StudyDate"].notna()]
    assert len(dated) and sorted(db.table()["SOPInstanceUID"]) == sorted(dated["SOPInstanceUID"])


def test_on_demand_attribute_matches_local(corpus_server):
    server, local, root = corpus_server
    db = _web(server, root, "ensure")
    web_series = db.series(SeriesDescription="enhanced")[0]
    local_series = local.series(SeriesDescription="enhanced")[0]
    # a per-frame attribute not indexed by default: read from the series metadata
    assert web_series.values("0x00189087") == local_series.values("0x00189087")  # b-value absent
    assert web_series.values("StackID") == local_series.values("StackID")
    assert web_series.values("AcquisitionMatrix") == local_series.values("AcquisitionMatrix")


# ---------------------------------------------------------------- arrays


def _pairs(web: lazydicom.Database, local: lazydicom.Database):
    by_uid = {s.uid: s for s in local.series()}
    for series in web.series():
        if series.table()["PhotometricInterpretation"].iloc[0] != "PALETTE COLOR":
            yield series, by_uid[series.uid]


def test_every_array_equals_the_local_read(corpus_server):
    server, local, root = corpus_server
    web = _web(server, root, "arrays")
    checked = 0
    for series, ref in _pairs(web, local):
        dims = ("FrameNumber",) if series.table()["NumberOfFrames"].fillna(1).max() > 1 else (
            "InstanceNumber",)
        want = ref.numpy(dims)
        got = series.numpy(dims)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(series.ndarray(dims).compute(), want)
        checked += 1
    assert checked == len(local.series()) - 1  # all but the palette colour ultrasound


@pytest.mark.parametrize("description, dtype, rescale, samples", [
    ("rescaled", "uint16", (2.0, -100.0), 1),
    ("signed 12 bit", "int16", None, 1),
    ("rle", "uint16", None, 1),
    ("rgb", "uint8", None, 3),
    (JPEGLSLossless.name, "uint16", None, 1),
    (JPEG2000Lossless.name, "uint16", None, 1),
])
def test_synthetic_series_give_their_known_pixels(corpus_server, description, dtype, rescale,
                                                  samples):
    server, _, root = corpus_server
    web = _web(server, root, "synthetic")
    found = web.series(SeriesDescription=description)
    if not found:
        pytest.skip(f"no encoder for {description} to write the test data")
    series = found[0]
    shape = CODEC_SHAPE if "Lossless" in description else SHAPE
    expected = expected_ndarray(COORDS, shape, dtype=dtype, rescale=rescale,
                                bits_stored=12 if dtype == "int16" else None,
                                samples_per_pixel=samples)
    np.testing.assert_array_equal(series.ndarray(DIMS).compute(), expected)
    np.testing.assert_array_equal(series.numpy(DIMS), expected)
    # selections by value and by index
    np.testing.assert_array_equal(
        series.ndarray(coords={"SliceLocation": [0.0], "FlipAngle": [15]}).compute(),
        expected[:, :, 1:2, 1:2])
    np.testing.assert_array_equal(series.ndarray(DIMS)[:, :, 2, 0].compute(),
                                  expected[:, :, 2, 0])



def test_enhanced_multiframe_per_frame_values(corpus_server):
    server, local, root = corpus_server
    web = _web(server, root, "enhanced")
    series = web.series(SeriesDescription="enhanced")[0]
    dims = tuple(ENHANCED)
    expected = expected_ndarray(ENHANCED, SHAPE, rescale=(0.5, 3.0))
    np.testing.assert_array_equal(series.ndarray(dims).compute(), expected)
    ref = local.series(SeriesDescription="enhanced")[0]
    np.testing.assert_array_equal(series.numpy(dims), ref.numpy(dims))
    assert series.coords(dims)["EffectiveEchoTime"].tolist() == [10.0, 20.0, 30.0]


def test_uncompressed_transfer_from_the_server(corpus_server):
    """The server decodes (JPEG Lossless CT asked as Explicit VR Little Endian)."""
    server, local, root = corpus_server
    web = _web(server, root, "native", transfer_syntax="1.2.840.10008.1.2.1")
    ct = [s for s in web.series(Modality="CT") if len(s.table()) == 8][0]
    ref = [s for s in local.series(Modality="CT") if s.uid == ct.uid][0]
    np.testing.assert_array_equal(ct.numpy(), ref.numpy())


def test_palette_colour_is_a_clear_error(corpus_server):
    server, _, root = corpus_server
    web = _web(server, root, "palette")
    (us,) = [s for s in web.series()
             if s.table()["PhotometricInterpretation"].iloc[0] == "PALETTE COLOR"]
    with pytest.raises(lazydicom.FrameReadError, match="PALETTE COLOR"):
        us.numpy(("FrameNumber",))


# ---------------------------------------------------------------- pruning


def test_selection_fetches_only_its_frames(corpus_server):
    server, _, root = corpus_server
    web = _web(server, root, "pruning", frames_per_request=3)
    series = web.series(SeriesDescription="enhanced")[0]  # one instance, 12 frames
    arr = series.ndarray(tuple(ENHANCED), chunks=-1)  # one chunk: one read of the instance
    sop = series.table()["SOPInstanceUID"].iloc[0]
    before = len(server.requests())
    arr[:, :, 1:3, :].compute()  # 2 x 3 = 6 of 12 frames
    requests = server.requests()[before:]
    frames = _frame_requests(requests)
    assert requests == frames, requests  # nothing but frame requests
    assert len(frames) == 2 and all(sop in r for r in frames)
    asked = sorted(int(n) for r in frames for n in r.rsplit("/", 1)[1].split(","))
    want = sorted(series.table().set_index(list(ENHANCED)).sort_index()
                  .loc[[2, 3]]["FrameNumber"].astype(int).tolist())
    assert asked == want

    # single-frame instances: one request per selected frame
    plain = web.series(SeriesDescription="rescaled")[0]
    before = len(server.requests())
    plain.ndarray(DIMS)[:, :, :2, 1].compute()
    requests = server.requests()[before:]
    assert len(requests) == len(_frame_requests(requests)) == 2


# ---------------------------------------------------------------- refresh


def test_refresh_rereads_only_changed_series(tmp_path):
    first = tmp_path / "first"
    second = tmp_path / "second"
    write_series(first, COORDS, SHAPE, series_description="a", series_number=1)
    write_series(second, COORDS, SHAPE, series_description="b", series_number=2)
    extra = tmp_path / "extra"
    write_series(extra, {"InstanceNumber": [1, 2]}, SHAPE, series_description="c",
                 series_number=3)
    with running_orthanc(tmp_path / "orthanc") as server:
        server.upload(_files(first) + _files(second))
        db = lazydicom.open(server.dicomweb, index_path=tmp_path / "index")
        assert len(db.series()) == 2 and len(db.table()) == 12
        before = len(server.requests())
        assert db.refresh()["series_read"] == 0
        assert not [r for r in server.requests()[before:] if r.endswith("/metadata")]
        server.upload(_files(extra))
        b = db.series(SeriesDescription="b")[0]
        server.delete_series(b.uid)
        before = len(server.requests())
        counts = db.refresh()
        metadata = [r for r in server.requests()[before:] if r.endswith("/metadata")]
        assert counts["series_read"] == 1 and len(metadata) == 1  # only the new one
        assert counts["added"] == 2 and counts["removed"] == 6
        assert sorted(s.table()["SeriesDescription"].iloc[0] for s in db.series()) == ["a", "c"]
        # one more instance in series a (a copy with a new SOP Instance UID, 7th slice)
        ds = pydicom.dcmread(_files(first)[0])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SliceLocation, ds.FlipAngle = 99.0, 15
        ds.save_as(tmp_path / "added.dcm", enforce_file_format=True)
        server.upload([tmp_path / "added.dcm"])
        before = len(server.requests())
        counts = db.refresh()
        metadata = [r for r in server.requests()[before:] if r.endswith("/metadata")]
        assert counts["series_read"] == 1 and len(metadata) == 1
        a = db.series(SeriesDescription="a")[0]
        assert metadata[0].endswith(f"/series/{a.uid}/metadata")
        assert counts["added"] == 1 and counts["changed"] == 6 and counts["removed"] == 0
        assert a.unique("SliceLocation") == [-5.0, 0.0, 10.0, 99.0]


# ---------------------------------------------------------------- errors


def test_http_errors_name_the_url(tmp_path):
    write_series(tmp_path / "data", COORDS, SHAPE)
    with running_orthanc(tmp_path / "orthanc", users={"alice": "secret"}) as server:
        server.upload(_files(tmp_path / "data"))
        with pytest.raises(lazydicom.DicomWebError, match=r"HTTP 401 .*127\.0\.0\.1.*Bearer"):
            lazydicom.open(server.dicomweb, index_path=tmp_path / "denied")
        # the command line: one line naming the URL, then the same with the header
        cli = [sys.executable, "-m", "lazydicom", "index", server.dicomweb, "-q",
               "--index", str(tmp_path / "cli")]
        denied = subprocess.run(cli, capture_output=True, text=True, timeout=120)
        assert denied.returncode == 1 and "HTTP 401" in denied.stderr
        assert len(denied.stderr.strip().splitlines()) == 1
        (name, value), = basic_auth(server.users).items()
        allowed = subprocess.run(cli + ["--header", f"{name}: {value}"], capture_output=True,
                                 text=True, timeout=120)
        assert allowed.returncode == 0, allowed.stderr
        assert "synthetic" in allowed.stdout
        array = subprocess.run([sys.executable, "-m", "lazydicom", "array", server.dicomweb,
                                "-q", "--index", str(tmp_path / "cli"), "--dims",
                                "SliceLocation,FlipAngle", "--compute", "--header",
                                f"{name}: {value}"], capture_output=True, text=True,
                               timeout=120)
        assert array.returncode == 0, array.stderr
        assert "(4, 6, 3, 2)" in array.stdout, array.stdout
        db = lazydicom.open(server.dicomweb, index_path=tmp_path / "index",
                            headers=basic_auth(server.users))
        series = db.series()[0]
        np.testing.assert_array_equal(series.numpy(DIMS), expected_ndarray(COORDS, SHAPE))
        server.delete_series(series.uid)
        with pytest.raises(lazydicom.FrameReadError, match=r"HTTP 404 from '.*/frames/1'"):
            series.numpy(DIMS)
    # the server is gone: connection refused, after retries
    with pytest.raises(lazydicom.FrameReadError, match="cannot connect to 'http://127.0.0.1"):
        series.numpy(DIMS)
    with pytest.raises(lazydicom.DicomWebError, match="cannot connect"):
        db.refresh()


@contextmanager
def _flaky_proxy(upstream: str, folder: Path, fails: int):
    """tests/flaky_proxy.py in its own process: FAILS 503s per URL, then forwards."""
    portfile = folder / f"proxy-{fails}.port"
    proxy = subprocess.Popen([sys.executable, str(Path(__file__).parent / "flaky_proxy.py"),
                              upstream, str(portfile), str(fails)])
    try:
        deadline = time.monotonic() + 20
        while not (portfile.exists() and portfile.read_text()):
            assert proxy.poll() is None and time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{portfile.read_text()}"
    finally:
        proxy.terminate()
        proxy.wait(timeout=20)


def _stats(proxy: str) -> dict:
    with urllib.request.urlopen(proxy + "/proxy-stats", timeout=10) as r:
        return json.loads(r.read())


def test_transient_server_errors_are_retried(tmp_path):
    write_series(tmp_path / "data", COORDS, SHAPE)
    with running_orthanc(tmp_path / "orthanc") as server:
        server.upload(_files(tmp_path / "data"))
        # two 503s for every URL, then the answer: three retries get through
        with _flaky_proxy(server.rest, tmp_path, fails=2) as proxy:
            before = len(server.requests())
            db = lazydicom.open(f"dicomweb+{proxy}/dicom-web", index_path=tmp_path / "i")
            series = db.series()[0]
            np.testing.assert_array_equal(series.numpy(DIMS), expected_ndarray(COORDS, SHAPE))
            reached = server.requests()[before:]  # each reached Orthanc once, after two 503s
            stats = _stats(proxy)
            assert stats["forwarded"] == len(reached) and stats["failed"] == 2 * len(reached)
            assert len(_frame_requests(reached)) == 6
        # more failures than retries: an error naming the status and the URL
        with _flaky_proxy(server.rest, tmp_path, fails=10) as proxy:
            with pytest.raises(lazydicom.DicomWebError,
                               match=rf"HTTP 503 from '{proxy}/dicom-web/series"):
                lazydicom.open(f"dicomweb+{proxy}/dicom-web", index_path=tmp_path / "j")
            assert _stats(proxy) == {"failed": 4, "forwarded": 0}  # 1 + 3 retries


def test_timeout_names_the_url(tmp_path):
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        index = WebIndex(f"dicomweb+http://127.0.0.1:{port}/dicom-web", tmp_path / "i",
                         timeout=0.3, retries=1)
        with pytest.raises(lazydicom.DicomWebError, match=rf"no answer from .*:{port}.* 0.3 s"):
            index.refresh()
    finally:
        listener.close()


def test_bad_arguments_are_clear(tmp_path):
    with pytest.raises(lazydicom.InvalidArgumentError, match="where must be a dict"):
        lazydicom.open("dicomweb+http://127.0.0.1:1/dicom-web", where="PatientID=1",
                       index_path=tmp_path)
    with pytest.raises(lazydicom.InvalidArgumentError, match="headers must be a dict"):
        lazydicom.open("dicomweb+http://127.0.0.1:1/dicom-web", headers="Bearer x",
                       index_path=tmp_path)
    with pytest.raises(lazydicom.InvalidArgumentError, match="DICOMweb URLs"):
        lazydicom.open(tmp_path, where={"PatientID": "1"})


# ---------------------------------------------------------------- processes, clusters, CLI


def test_source_pickles_without_a_session(corpus_server):
    server, _, root = corpus_server
    web = _web(server, root, "pickle")
    series = web.series(SeriesDescription="rle")[0]
    frames = series.frames(DIMS)
    series.numpy(DIMS)  # a session exists in this thread now
    copy = pickle.loads(pickle.dumps(frames))
    np.testing.assert_array_equal(copy.read(scheduler="sync"), expected_ndarray(COORDS, SHAPE))
    got = series.ndarray(DIMS, chunks=2).compute(scheduler="processes", num_workers=2)
    np.testing.assert_array_equal(got, expected_ndarray(COORDS, SHAPE))


@pytest.mark.distributed
def test_cluster_workers_fetch_frames(corpus_server):
    distributed = pytest.importorskip("distributed")
    server, local, root = corpus_server
    web = _web(server, root, "cluster")
    series = web.series(SeriesDescription="enhanced")[0]
    arr = series.ndarray(tuple(ENHANCED), chunks=2)
    before = len(server.requests())
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        got = client.compute(arr).result()
        pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    np.testing.assert_array_equal(got, expected_ndarray(ENHANCED, SHAPE, rescale=(0.5, 3.0)))
    assert len(_frame_requests(server.requests()[before:])) >= 2


def test_cli_extract_from_dicomweb(corpus_server, tmp_path):
    zarr = pytest.importorskip("zarr")
    server, local, root = corpus_server
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    out_web, out_local = tmp_path / "web.zarr", tmp_path / "local.zarr"
    args = ["--dims", "SliceLocation,FlipAngle", "--where",
            "SeriesDescription=rescaled|signed 12 bit|rle", "-q"]
    for source, out in ((server.dicomweb, out_web), (local.path, out_local)):
        done = subprocess.run([sys.executable, "-m", "lazydicom", "extract", source, str(out),
                               *args], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
    web, ref = zarr.open_group(out_web, mode="r"), zarr.open_group(out_local, mode="r")
    names = sorted(name for name, _ in ref.groups())
    assert names == sorted(name for name, _ in web.groups()) and len(names) == 3
    for name in names:
        np.testing.assert_array_equal(web[name]["pixels"][...], ref[name]["pixels"][...])


def test_frame_cache_serves_second_reads(corpus_server):
    server, local, root = corpus_server
    db = lazydicom.open(server.dicomweb, index_path=root / "cached", cache=True)
    series = db.series(SeriesDescription="enhanced")[0]
    dims = tuple(ENHANCED)
    before = len(server.requests())
    first = series.numpy(dims)
    assert _frame_requests(server.requests()[before:])
    before = len(server.requests())
    second = series.ndarray(dims).compute()
    assert not _frame_requests(server.requests()[before:])
    want = local.series(SeriesDescription="enhanced")[0].numpy(dims)
    np.testing.assert_array_equal(first, want)
    np.testing.assert_array_equal(second, want)


def test_read_only(corpus_server):
    server, _, root = corpus_server
    web = _web(server, root, "readonly")
    with pytest.raises(lazydicom.InvalidArgumentError, match="read-only"):
        web.zeros((2, 2, 1))
    series = web.series(SeriesDescription="rle")[0]
    with pytest.raises(lazydicom.InvalidArgumentError, match="read-only"):
        series.set_ndarray(np.zeros((4, 6, 3, 2), np.uint16), coords=series.coords(DIMS))

