"""Databases in an object store: a real S3 server (moto's server mode) on loopback.

Nothing is mocked inside the process: the server is moto's HTTP server on a
free loopback port, reached by s3fs over HTTP like any S3 endpoint. A small
WSGI wrapper around the server's application logs every request with the
bytes of its response (the server's request log), which is how requests and
bytes per frame are counted. Arrays are compared with the local read of the
same folder (and the synthetic series with their position-coded pixels).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import boto3  # the test extra installs moto[server] and s3fs: these tests never skip
import moto.server as moto_server
import numpy as np
import pandas as pd
import pydicom
import pytest
import s3fs  # noqa: F401 - the filesystem of s3:// URLs
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

import lazydicom
from tests.synthetic import expected_ndarray, write_series

DATA = Path(__file__).parent / "data"
KEYS = {"key": "testing", "secret": "testing"}


class _RequestLog:
    """WSGI middleware: one entry ``(method, path, query, range, response bytes)`` per request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.entries: list[tuple[str, str, str, str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        body = list(self.app(environ, start_response))
        entry = (environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                 environ.get("QUERY_STRING", ""), environ.get("HTTP_RANGE", ""),
                 sum(len(b) for b in body))
        with self._lock:
            self.entries.append(entry)
        return body

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def gets(self, prefix: str = "") -> list[tuple[str, str, str, str, int]]:
        """GETs of objects (not listings) whose path starts with ``/prefix``."""
        return [e for e in self.entries
                if e[0] == "GET" and e[1].startswith("/" + prefix) and "list-type" not in e[2]
                and e[1].count("/") >= 2]

    def listings(self) -> list[tuple[str, str, str, str, int]]:
        return [e for e in self.entries if e[0] == "GET" and "list-type" in e[2]]


class S3Server:
    """moto's S3 server on a free loopback port, in a thread, with a request log."""

    def __init__(self) -> None:
        from werkzeug.serving import make_server

        app = moto_server.DomainDispatcherApplication(moto_server.create_backend_app)
        self.log = _RequestLog(app)
        self._server = make_server("127.0.0.1", 0, self.log, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.options = {**KEYS, "client_kwargs": {"endpoint_url": self.endpoint,
                                                  "region_name": "us-east-1"}}
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

    def upload(self, folder: Path, bucket: str, prefix: str) -> str:
        """Upload every file under ``folder`` to ``s3://bucket/prefix/``; return the URL."""
        try:
            self.client.create_bucket(Bucket=bucket)
        except self.client.exceptions.BucketAlreadyOwnedByYou:
            pass
        for path in sorted(folder.rglob("*")):
            if path.is_file() and ".lazydicom" not in path.parts:
                key = f"{prefix}/{path.relative_to(folder).as_posix()}"
                self.client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        return f"s3://{bucket}/{prefix}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture(scope="module")
def s3() -> Any:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_aws_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    # a user's ~/.aws must not change what the tests send
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def _open(url: str, s3: S3Server, tmp_path: Path, name: str = "index", **kwargs: Any
          ) -> lazydicom.Database:
    return lazydicom.open(url, storage_options=s3.options, index_path=tmp_path / name,
                          progress=False, **kwargs)


def _open_local(folder: Path, tmp_path: Path) -> lazydicom.Database:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        return lazydicom.open(folder, index_path=tmp_path / "local-index", progress=False)


def _deflate(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=True)


COORDS = {"SliceLocation": [0.0, 5.0, 10.0], "FlipAngle": [15, 2]}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real corpus plus synthetic series of every dtype and transfer syntax at hand."""
    folder = tmp_path_factory.mktemp("study")
    shutil.copytree(DATA, folder / "real", ignore=shutil.ignore_patterns("*.md", ".lazydicom"))
    synth = folder / "synthetic"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("u16-explicit", {}),
        ("i16-implicit-rescale", dict(dtype="int16", transfer_syntax=ImplicitVRLittleEndian,
                                      rescale=(2.0, -1024.0))),
        ("u16-12bit-bigendian", dict(transfer_syntax=ExplicitVRBigEndian, bits_stored=12)),
        ("i32-explicit", dict(dtype="int32")),
        ("u8-rgb", dict(dtype="uint8", samples_per_pixel=3)),
        ("i16-rle", dict(dtype="int16", transfer_syntax=RLELossless)),
        ("u16-deflated", {}),
    ]
    for number, (name, options) in enumerate(cases, start=1):
        files = write_series(synth / name, COORDS, series_description=name,
                             series_number=number, subfolders=False, **options)
        if name.endswith("deflated"):
            for f in files:
                _deflate(f)
    return folder


@pytest.fixture(scope="module")
def uploaded(s3: S3Server, study: Path) -> str:
    return s3.upload(study, "study", "mri/2024")


# ---------------------------------------------------------------- index


def test_index_of_a_bucket_equals_the_local_index(s3, study, uploaded, tmp_path):
    local = _open_local(study, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        remote = _open(uploaded, s3, tmp_path)
    assert remote.path == uploaded
    lt, rt = local.index.table, remote.index.table
    assert len(lt) == len(rt) > 80
    assert list(lt.columns) == list(rt.columns)
    same = [c for c in lt.columns if c != "mtime"]
    pd.testing.assert_frame_equal(lt[same], rt[same])
    assert set(rt["mtime"]) != set(lt["mtime"])  # versions of objects, not file times
    pd.testing.assert_frame_equal(local.skipped().drop(columns="mtime"),
                                  remote.skipped().drop(columns="mtime"))


def test_indexing_reads_one_head_per_object(s3, uploaded, tmp_path):
    s3.log.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        db = _open(uploaded, s3, tmp_path)
    objects = db.index.table["path"].nunique() + len(db.skipped())
    gets = s3.log.gets("study/")
    heads = [g for g in gets if g[3].startswith("bytes=0-")]
    assert len(heads) == objects  # one ranged GET of each object's head...
    assert all(g[3] for g in gets)  # ...no object downloaded without a range
    # native objects whose header ends within the head: that one request only
    table = db.index.table
    native = table[table["TransferSyntaxUID"].isin(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                                    "1.2.840.10008.1.2.2"])
                   & table["PixelDataOffset"].between(0, 60_000)]
    per_object = {}
    for g in gets:
        per_object[g[1]] = per_object.get(g[1], 0) + 1
    prefix = "/" + uploaded.removeprefix("s3://") + "/"
    assert {per_object[prefix + p] for p in native["path"]} == {1}
    # more for encapsulated objects (their fragment items) and long headers only
    assert len(gets) < 1.3 * objects
    sizes = dict(zip(db.index.table["path"], db.index.table["size"]))
    read = sum(g[4] for g in gets)
    assert read < 0.6 * sum(sizes.values())  # the pixel data stay in the bucket


def test_reopening_an_unchanged_bucket_costs_one_listing(s3, uploaded, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        _open(uploaded, s3, tmp_path)
        s3.log.clear()
        db = _open(uploaded, s3, tmp_path)
    assert s3.log.gets("study/") == []
    assert len(s3.log.listings()) == 1
    assert len(db.series()) > 10


def test_refresh_reads_only_changed_objects(s3, tmp_path):
    folder = tmp_path / "small"
    write_series(folder, {"InstanceNumber": [1, 2, 3]}, subfolders=False)
    url = s3.upload(folder, "refresh", "s")
    db = _open(url, s3, tmp_path)
    before = db.series()[0].numpy()
    changed = sorted(folder.iterdir())[0]
    write_series(tmp_path / "new", {"InstanceNumber": [9]}, subfolders=False)
    new = next((tmp_path / "new").iterdir())
    s3.client.put_object(Bucket="refresh", Key=f"s/{changed.name}", Body=new.read_bytes())
    s3.log.clear()
    counts = db.refresh()
    assert counts == {"added": 0, "changed": 1, "removed": 0, "skipped": 0}
    assert {g[1] for g in s3.log.gets("refresh/")} == {f"/refresh/s/{changed.name}"}
    assert len(db.table()) == 3 and 9 in set(db.table()["InstanceNumber"])
    assert before.shape[2] == 3


def test_attributes_not_indexed_are_read_from_the_headers(s3, tmp_path):
    folder = tmp_path / "extra"
    write_series(folder, {"InstanceNumber": [1, 2, 3]}, subfolders=False,
                 extra={"StationName": "SCANNER 7"})
    db = _open(s3.upload(folder, "extra", "x"), s3, tmp_path)
    s3.log.clear()
    assert db.series()[0].unique("StationName") == ["SCANNER 7"]
    gets = s3.log.gets("extra/")
    assert len(gets) == 3 and all(g[3] for g in gets)  # one ranged read per object
    assert sum(g[4] for g in gets) <= 3 * 64 * 1024


# ---------------------------------------------------------------- arrays


def _series_pairs(local: lazydicom.Database, remote: lazydicom.Database) -> list[tuple]:
    pairs = []
    for s in local.series():
        uid = s.uid
        match = [r for r in remote.series() if r.uid == uid]
        assert len(match) == 1
        pairs.append((s, match[0]))
    return pairs


def _dims(series: lazydicom.Series) -> tuple[str, ...]:
    table = series.table()
    if table["path"].nunique() < len(table):  # multi-frame
        return ("InstanceNumber", "FrameNumber")
    return ("SliceLocation", "FlipAngle") if "synthetic" in series.files()[0] else (
        "InstanceNumber", "SOPInstanceUID")


def test_every_array_equals_the_local_read(s3, study, uploaded, tmp_path):
    local = _open_local(study, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        remote = _open(uploaded, s3, tmp_path)
    pairs = _series_pairs(local, remote)
    assert len(pairs) == 17 + 7
    syntaxes = set()
    for here, there in pairs:
        dims = _dims(here)
        expected = here.numpy(dims)
        syntaxes.add(str(here.table()["TransferSyntaxUID"].iloc[0]))
        got = there.numpy(dims)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected, err_msg=str(there))
        lazy = there.ndarray(dims)
        np.testing.assert_array_equal(lazy.compute(), expected, err_msg=str(there))
        np.testing.assert_array_equal(lazy[:, :, -1:].compute(), expected[:, :, -1:])
    # every transfer syntax of the corpus went through the store
    assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
            "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.70"} <= syntaxes


def test_synthetic_series_hold_their_grid(s3, uploaded, tmp_path):
    """An independent oracle: the pixels encode their cell (tests/synthetic.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        db = _open(uploaded, s3, tmp_path)
    (series,) = db.series(SeriesDescription="u16-deflated")
    np.testing.assert_array_equal(series.numpy(tuple(COORDS)), expected_ndarray(COORDS, (6, 4)))
    (series,) = db.series(SeriesDescription="i16-implicit-rescale")
    np.testing.assert_array_equal(
        series.numpy(tuple(COORDS)),
        expected_ndarray(COORDS, (6, 4), dtype="int16", rescale=(2.0, -1024.0)))


def test_a_selection_transfers_only_its_frames(s3, tmp_path):
    """1/8 of a native series: one GET per frame, ~only the frames' bytes."""
    coords = {"SliceLocation": [float(z) for z in range(4)], "FlipAngle": list(range(1, 9))}
    folder = tmp_path / "grid"
    write_series(folder, coords, shape=(64, 48), subfolders=False)
    url = s3.upload(folder, "grid", "g")
    db = _open(url, s3, tmp_path)
    series = db.series()[0]
    s3.log.clear()
    part = series.ndarray(coords={"FlipAngle": [3], "SliceLocation": coords["SliceLocation"]})
    got = part.compute()
    np.testing.assert_array_equal(
        got[:, :, 0, :], expected_ndarray(coords, (64, 48))[:, :, :, 2])
    gets = s3.log.gets("grid/")
    frame_bytes = 64 * 48 * 2
    assert len(gets) == 4  # one request per frame
    moved = sum(g[4] for g in gets)
    assert moved == 4 * frame_bytes  # exactly the frames' bytes: ratio 1.0
    # the whole series: still one request per frame
    s3.log.clear()
    series.numpy(tuple(coords))
    assert len(s3.log.gets("grid/")) == 32


def test_multiframe_objects_read_each_frame_by_range(s3, tmp_path):
    url = s3.upload(DATA / "mr-enhanced-molli", "molli", "m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lazydicom.SkippedFilesWarning)
        db = _open(url, s3, tmp_path)
    series = [s for s in db.series() if len(s.table()) == 10][0]
    s3.log.clear()
    arr = series.ndarray(("FrameNumber",))
    three = arr[:, :, 2:5].compute()
    gets = s3.log.gets("molli/")
    assert len(gets) == 3 and sum(g[4] for g in gets) == 3 * 128 * 128 * 2
    ds = pydicom.dcmread(DATA / "mr-enhanced-molli" / "IM_0001")
    assert three.shape == (128, 128, 3)
    assert np.isfinite(three).all()
    assert ds.NumberOfFrames == 10


def test_a_warm_cache_makes_no_request_for_frames(s3, tmp_path):
    folder = tmp_path / "cached"
    write_series(folder, COORDS, subfolders=False)
    write_series(folder, COORDS, subfolders=False, transfer_syntax=RLELossless,
                 series_number=2, series_description="rle")
    url = s3.upload(folder, "cached", "c")
    db = _open(url, s3, tmp_path, cache=True)
    assert db.cache.native
    cold = {s.uid: s.numpy(tuple(COORDS)) for s in db.series()}
    s3.log.clear()
    again = _open(url, s3, tmp_path, cache=True)  # a new session: one listing, no GET
    for series in again.series():
        np.testing.assert_array_equal(series.ndarray(tuple(COORDS)).compute(), cold[series.uid])
        np.testing.assert_array_equal(series.numpy(tuple(COORDS)), expected_ndarray(COORDS))
    assert s3.log.gets("cached/") == []
    assert len(s3.log.listings()) == 1


def test_any_fsspec_url_works_alike(tmp_path):
    """The generic path (not S3): fsspec's memory filesystem, version by info."""
    import fsspec

    folder = tmp_path / "mem"
    files = write_series(folder, COORDS, subfolders=False, transfer_syntax=RLELossless)
    fs = fsspec.filesystem("memory")
    for f in files:
        fs.pipe(f"/lazydicom-test/{f.name}", f.read_bytes())
    try:
        db = lazydicom.open("memory://lazydicom-test", index_path=tmp_path / "i", progress=False)
        series = db.series()[0]
        np.testing.assert_array_equal(series.numpy(tuple(COORDS)), expected_ndarray(COORDS))
        arr = series.ndarray(tuple(COORDS))
        fs.pipe(f"/lazydicom-test/{files[0].name}", files[0].read_bytes())  # rewritten
        with pytest.raises(lazydicom.FrameReadError, match="memory://lazydicom-test/"):
            arr.compute()
    finally:
        fs.rm("/lazydicom-test", recursive=True)


# ---------------------------------------------------------------- errors


def test_an_object_changed_since_indexed_is_an_error(s3, tmp_path):
    folder = tmp_path / "c"
    files = write_series(folder, {"InstanceNumber": [1, 2]}, subfolders=False)
    url = s3.upload(folder, "changed", "c")
    db = _open(url, s3, tmp_path)
    arr = db.series()[0].ndarray()
    s3.client.put_object(Bucket="changed", Key=f"c/{files[0].name}",
                         Body=files[1].read_bytes())  # same size, other ETag
    with pytest.raises(lazydicom.FrameReadError, match="changed since it was indexed") as err:
        arr.compute()
    assert f"s3://changed/c/{files[0].name}" in str(err.value)
    s3.client.delete_object(Bucket="changed", Key=f"c/{files[0].name}")
    with pytest.raises(lazydicom.FrameReadError, match="removed after it was indexed"):
        arr.compute()


def test_a_missing_bucket_or_prefix_is_named(s3, tmp_path):
    with pytest.raises(lazydicom.DatabaseNotFoundError, match="s3://no-such-bucket/x"):
        _open("s3://no-such-bucket/x", s3, tmp_path)
    s3.client.create_bucket(Bucket="empty")
    with pytest.raises(FileNotFoundError, match="s3://empty/nothing"):
        _open("s3://empty/nothing", s3, tmp_path)


def test_an_endpoint_that_does_not_answer_is_a_clear_error(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections, never answers
    try:
        options = {**KEYS, "client_kwargs": {
            "endpoint_url": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "region_name": "us-east-1"},
            "config_kwargs": {"connect_timeout": 1, "read_timeout": 1,
                              "retries": {"max_attempts": 1}}}
        start = time.monotonic()
        with pytest.raises(lazydicom.StoreConnectionError, match="s3://b/p") as err:
            lazydicom.open("s3://b/p", storage_options=options, index_path=tmp_path / "i")
        assert "did not answer" in str(err.value)
        assert time.monotonic() - start < 30
    finally:
        silent.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_credentials_are_a_clear_error(tmp_path):
    """A second moto server, in its own process, that checks credentials (IAM)."""
    port = _free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        options = {"key": "wrong", "secret": "wrong", "client_kwargs": {
            "endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"}}
        with pytest.raises(lazydicom.StoreAccessError, match="s3://guarded/p") as err:
            lazydicom.open("s3://guarded/p", storage_options=options, index_path=tmp_path / "i")
        assert "credentials" in str(err.value)
        assert isinstance(err.value, PermissionError)
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_store_database_is_read_only(s3, tmp_path):
    folder = tmp_path / "ro"
    write_series(folder, {"InstanceNumber": [1]}, subfolders=False)
    db = _open(s3.upload(folder, "readonly", "r"), s3, tmp_path)
    with pytest.raises(lazydicom.InvalidArgumentError, match="reads only"):
        db.zeros((2, 2, 1))
    with pytest.raises(lazydicom.InvalidArgumentError, match="reads only"):
        db.series()[0].set_ndarray(np.zeros((4, 6, 1), np.uint16))


# ---------------------------------------------------------------- cluster


@pytest.mark.distributed
def test_a_local_cluster_reads_from_the_bucket(s3, tmp_path):
    import distributed

    folder = tmp_path / "cluster"
    write_series(folder, COORDS, subfolders=False, dtype="int16", rescale=(1.0, -1024.0))
    url = s3.upload(folder, "cluster", "c")
    reference = _open(url, s3, tmp_path, "local-index").index.table
    s3.log.clear()
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        # the headers too are read by the workers
        db = _open(url, s3, tmp_path, scheduler=client)
        pd.testing.assert_frame_equal(db.index.table, reference)
        assert len(s3.log.gets("cluster/")) == 6
        series = db.series()[0]
        s3.log.clear()
        got = client.compute(series.ndarray(tuple(COORDS), chunks=1)).result()
    np.testing.assert_array_equal(
        got, expected_ndarray(COORDS, (6, 4), dtype="int16", rescale=(1.0, -1024.0)))
    assert len(s3.log.gets("cluster/")) == 6  # the workers read the frames themselves


# ---------------------------------------------------------------- command line


def test_cli_extract_from_a_bucket(s3, tmp_path, capsys):
    import zarr

    from lazydicom.cli import main

    folder = tmp_path / "cli"
    write_series(folder, COORDS, subfolders=False, dtype="int16", rescale=(1.0, -1024.0))
    url = s3.upload(folder, "cli", "study")
    out = tmp_path / "out.zarr"
    status = main(["extract", url, str(out), "--dims", "SliceLocation,FlipAngle", "-q", "--no-pack",
                   "--index", str(tmp_path / "index"),
                   "--storage-option", "key=testing", "--storage-option", "secret=testing",
                   "--storage-option", f"client_kwargs.endpoint_url={s3.endpoint}",
                   "--storage-option", "client_kwargs.region_name=us-east-1"])
    assert status == 0, capsys.readouterr().err
    (name,) = [n for n, _ in zarr.open_group(out, mode="r").groups()]
    pixels = zarr.open_group(out, mode="r")[name]["pixels"]
    expected = expected_ndarray(COORDS, (6, 4), dtype="int16", rescale=(1.0, -1024.0))
    np.testing.assert_array_equal(pixels[...], expected.T)  # (*reversed(dims), y, x)


def test_cli_reads_the_standard_aws_variables(s3, tmp_path):
    folder = tmp_path / "env"
    write_series(folder, {"InstanceNumber": [1, 2]}, subfolders=False)
    url = s3.upload(folder, "env", "e")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_ENDPOINT_URL=s3.endpoint, AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    done = subprocess.run([sys.executable, "-m", "lazydicom", "array", url, "--compute", "-q",
                           "--index", str(tmp_path / "index")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2" in done.stdout and "synthetic" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "lazydicom", "index", "s3://nope/x", "-q",
                          "--index", str(tmp_path / "index2")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.startswith("lazydicom: error:") and "s3://nope/x" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_zarr_output_into_a_bucket_is_written_in_whole_shards(s3, tmp_path, monkeypatch):
    """to_zarr into an S3 store: each shard is one PUT through the store, read back by zarr."""
    import zarr
    from zarr.storage import FsspecStore

    from lazydicom.io.shards import ShardWriter

    coords = {"SliceLocation": [3.0, 1.0, 2.0, 5.0, 4.0]}
    write_series(tmp_path / "dicom", coords, (6, 4), rescale=(2.0, -1024.0), dtype="int16")
    (series,) = lazydicom.open(tmp_path / "dicom", progress=False).series()
    s3.client.create_bucket(Bucket="zarr-out")
    store = FsspecStore.from_url("s3://zarr-out/one.zarr", storage_options=s3.options)
    shards = []
    real = ShardWriter.store
    monkeypatch.setattr(ShardWriter, "store",
                        lambda self, at, chunks: shards.append(at) or real(self, at, chunks))
    s3.log.clear()
    series.to_zarr(store, ("SliceLocation",), shard_bytes=6 * 4 * 2 * 2)  # 2 frames a shard
    assert len(shards) == 3  # 2 + 2 + the edge shard of 1
    puts = [e[1] for e in s3.log.entries if e[0] == "PUT" and "/pixels/c." in e[1]]
    assert sorted(puts) == [f"/zarr-out/one.zarr/pixels/c.{i}.0.0" for i in range(3)]
    stored = zarr.open_array(store, path="pixels", mode="r")
    assert stored.attrs["scale_factor"] == 2.0 and stored.attrs["add_offset"] == -1024.0
    values = stored[...].T * 2.0 - 1024.0
    np.testing.assert_array_equal(
        values, expected_ndarray(coords, (6, 4), dtype="int16", rescale=(2.0, -1024.0)))
