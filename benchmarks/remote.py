"""Object stores (issue 11): requests and bytes against an S3 server on loopback.

moto's S3 server runs in a process of its own on a free loopback port,
wrapped by a WSGI request log (method, path, range, response bytes), the
server's own view of what crossed the wire. The grid series of :mod:`benchmarks.data` is uploaded,
then, in one run:

- cold index: ranged GETs and bytes per object, time per object, against
  downloading every object whole (the naive way to read headers);
- reopening the unchanged bucket: requests (one listing, no GET);
- a 1/k selection (one FlipAngle of k) of the native frames: bytes
  transferred / bytes of the selected frames (target <= 1.1 for 1/8) and GETs
  per frame (target 1);
- the full read: GETs per native frame (target 1), time per frame;
- a warm cache (``cache=True``): requests for frames (target 0).

Loopback has no latency worth the name, and moto serves about 20 MB/s here
(its own CPU): times show that bound, not lazydicom's; requests and bytes are
what count on a real store. Two rows add 20 ms to every request at the
server, as a real store's round trip: the reads overlap, so the latency is
hidden behind the server's throughput instead of adding up. Needs
``moto[server]`` and ``s3fs`` (the ``test`` extra).
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .common import REPO, Row, fmt_ratio, import_lazydicom
from .data import Manifest

__all__ = ["run_remote", "CountingS3Server"]


class _RequestLog:
    """WSGI middleware: ``(method, path, query, range, response bytes)`` per request.

    ``/_bench/log`` (GET: the entries as JSON), ``/_bench/clear`` and
    ``/_bench/latency?seconds=S`` (a delay added to every request: a real
    store's round trip; each request is answered in its own thread, so the
    waits overlap as they would) are answered by the wrapper itself.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.entries: list[tuple[str, str, str, str, int]] = []
        self._lock = threading.Lock()
        self.latency = 0.0

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_bench/"):
            return self._control(path, environ.get("QUERY_STRING", ""), start_response)
        if self.latency:
            time.sleep(self.latency)
        body = list(self.app(environ, start_response))
        entry = (environ["REQUEST_METHOD"], path,
                 environ.get("QUERY_STRING", ""), environ.get("HTTP_RANGE", ""),
                 sum(len(b) for b in body))
        with self._lock:
            self.entries.append(entry)
        return body

    def _control(self, path: str, query: str, start_response: Any) -> list[bytes]:
        with self._lock:
            if path == "/_bench/clear":
                self.entries.clear()
            elif path == "/_bench/latency":
                self.latency = float(query.partition("=")[2] or 0)
            body = json.dumps(self.entries).encode() if path == "/_bench/log" else b"ok"
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


def _serve(port: int) -> None:
    """The server process: moto's S3 app behind the request log, until killed."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = _RequestLog(DomainDispatcherApplication(create_backend_app))
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


class CountingS3Server:
    """moto's S3 server in a process of its own on a free loopback port, with a request log.

    A process, not a thread: the server's own CPU (moto answers a GET in
    milliseconds) must not take the client's GIL, or the times measure moto.
    """

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from benchmarks.remote import _serve; _serve({port})"],
            cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                self._control("clear")
                break
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.1)
        self.options = {"key": "bench", "secret": "bench",
                        "client_kwargs": {"endpoint_url": self.endpoint,
                                          "region_name": "us-east-1"}}

    def _control(self, what: str) -> Any:
        with urllib.request.urlopen(f"{self.endpoint}/_bench/{what}", timeout=10) as response:
            return json.loads(response.read()) if what == "log" else None

    @property
    def entries(self) -> list[tuple[str, str, str, str, int]]:
        return [tuple(e) for e in self._control("log")]  # type: ignore[misc]

    def set_latency(self, seconds: float) -> None:
        self._control(f"latency?seconds={seconds}")

    def clear(self) -> None:
        self._control("clear")

    def object_gets(self) -> list[tuple[str, str, str, str, int]]:
        return [e for e in self.entries
                if e[0] == "GET" and "list-type" not in e[2] and e[1].count("/") >= 2]

    def requests(self) -> int:
        return len(self.entries)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def _upload(server: CountingS3Server, folder: Path, bucket: str) -> tuple[int, int]:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
    client.create_bucket(Bucket=bucket)
    count = size = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".lazydicom" not in path.parts:
            data = path.read_bytes()
            client.put_object(Bucket=bucket, Key=f"grid/{path.relative_to(folder).as_posix()}",
                              Body=data)
            count, size = count + 1, size + len(data)
    return count, size


def run_remote(manifest: Manifest, repeat: int = 3, verbose: bool = False) -> list[Row]:
    """The rows of the remote group (see the module docstring)."""
    try:
        import moto.server  # noqa: F401 - the S3 server
        import s3fs  # noqa: F401 - the S3 filesystem lazydicom uses
    except ImportError as exc:
        return [Row("object store (S3 on loopback)", note=f"skipped: {exc}; "
                    "pip install 'lazydicom[remote]' 'moto[server]'")]
    lazydicom = import_lazydicom()
    server = CountingS3Server()
    try:
        return _rows(lazydicom, server, manifest, repeat)
    finally:
        server.stop()


def _rows(lazydicom: Any, server: CountingS3Server, manifest: Manifest, repeat: int
          ) -> list[Row]:
    objects, total = _upload(server, manifest.folder, "bench")
    url = "s3://bench/grid"
    coords = manifest.spec.coords
    dims = tuple(coords)
    rows: list[Row] = []
    scratch = Path(tempfile.mkdtemp(prefix="lazydicom-remote-bench-"))

    def open_(name: str, **kw: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lazydicom.open(url, storage_options=server.options,
                                  index_path=scratch / name, progress=False, **kw)

    # cold index, against downloading every object
    times, gets, moved = [], 0, 0
    for i in range(max(1, repeat)):
        server.clear()
        start = time.perf_counter()
        db = open_(f"index-{i}")
        times.append(time.perf_counter() - start)
        gets, moved = len(server.object_gets()), sum(g[4] for g in server.object_gets())
    index_s = float(np.median(times))
    import fsspec

    fs = fsspec.filesystem("s3", **server.options)
    keys = sorted(fs.find("bench/grid"))
    server.clear()
    start = time.perf_counter()
    whole = fs.cat(keys)
    whole_s = time.perf_counter() - start
    whole_bytes = sum(len(v) for v in whole.values())
    rows.append(Row(
        "cold index from S3: lazydicom.open('s3://...'), ranged GETs of object heads",
        seconds=index_s, frames=objects, times=times,
        ratio=moved / total, ratio_text=f"{moved / total:.3f} of the objects' bytes",
        note=f"{gets / objects:.2f} GETs and {moved / objects / 1024:.1f} KiB per object "
             f"({total / objects / 1024:.0f} KiB objects); {objects} objects",
        key="remote.index"))
    rows.append(Row(
        "download every object whole (fsspec cat), for comparison",
        seconds=whole_s, frames=objects, ratio=index_s / whole_s,
        ratio_text=f"index {fmt_ratio(whole_s / index_s)} faster than downloading",
        note=f"{whole_bytes / objects / 1024:.0f} KiB per object"))

    # reopen unchanged
    server.clear()
    start = time.perf_counter()
    db = open_("index-0")
    reopen_s = time.perf_counter() - start
    listings = sum(1 for e in server.entries if "list-type" in e[2])
    rows.append(Row(
        "reopen the unchanged bucket", seconds=reopen_s, frames=objects,
        ratio=len(server.object_gets()), ratio_text=f"{len(server.object_gets())} object GETs",
        target="no GET", met=not server.object_gets(),
        note=f"{server.requests()} request(s), {listings} listing page(s)"))

    series = db.series()[0]
    k = len(coords["FlipAngle"])
    flip = coords["FlipAngle"][k // 2]
    selection = {d: ([flip] if d == "FlipAngle" else list(v)) for d, v in coords.items()}
    frame_bytes = manifest.spec.rows * manifest.spec.cols * 2
    reference = series.numpy(dims)

    # a 1/k selection (after one untimed run: the first compute imports the S3 stack)
    series.ndarray(coords=selection).compute()
    times = []
    for _ in range(max(1, repeat)):
        server.clear()
        start = time.perf_counter()
        part = series.ndarray(coords=selection).compute()
        times.append(time.perf_counter() - start)
    gets_sel = server.object_gets()
    n_sel = int(np.prod([len(v) for v in selection.values()]))
    ratio = sum(g[4] for g in gets_sel) / (n_sel * frame_bytes)
    flip_at = list(coords["FlipAngle"]).index(flip)
    equal = "✓" if np.array_equal(part[:, :, :, 0], reference[:, :, :, flip_at]) else "✗"
    rows.append(Row(
        f"1/{k} selection (one FlipAngle of {k}): bytes transferred / bytes of its frames",
        seconds=float(np.median(times)), frames=n_sel, times=times, ratio=ratio,
        ratio_text=f"{ratio:.3f}", target="<= 1.1 (1/8 selection)", met=ratio <= 1.1,
        equal=equal, note=f"{len(gets_sel) / n_sel:.2f} GETs per frame",
        key="remote.select"))

    # the full read
    times = []
    for _ in range(max(1, repeat)):
        server.clear()
        start = time.perf_counter()
        full = series.ndarray(dims).compute()
        times.append(time.perf_counter() - start)
    per_frame = len(server.object_gets()) / manifest.spec.nframes
    rows.append(Row(
        "full read from S3: ndarray(dims).compute(), GETs per native frame",
        seconds=float(np.median(times)), frames=manifest.spec.nframes, times=times,
        ratio=per_frame, ratio_text=f"{per_frame:.2f} GETs per frame", target="1",
        met=per_frame == 1, equal="✓" if np.array_equal(full, reference) else "✗",
        key="remote.full"))

    # with a store's round trip: concurrency, not bandwidth, sets the time
    latency = 0.020
    server.set_latency(latency)
    try:
        server.clear()
        start = time.perf_counter()
        open_("index-latency")
        index_l = time.perf_counter() - start
        requests = server.requests()
        sequential = requests * latency
        rows.append(Row(
            f"cold index with {latency * 1000:.0f} ms per request (latency added by the server)",
            seconds=index_l, frames=objects, ratio=index_l / sequential,
            ratio_text=f"{index_l / sequential:.2f} of one request at a time",
            note=f"{requests} requests; one at a time would take "
                 f"{sequential:.2f} s"))
        server.clear()
        start = time.perf_counter()
        latent = series.ndarray(dims).compute()
        full_l = time.perf_counter() - start
        gets_l = len(server.object_gets())
        sequential = gets_l * latency
        rows.append(Row(
            f"full read with {latency * 1000:.0f} ms per request",
            seconds=full_l, frames=manifest.spec.nframes, ratio=full_l / sequential,
            ratio_text=f"{full_l / sequential:.2f} of one request at a time",
            equal="✓" if np.array_equal(latent, reference) else "✗",
            note=f"{gets_l} GETs; one at a time would take "
                 f"{sequential:.2f} s"))
    finally:
        server.set_latency(0.0)

    # warm cache
    cached = open_("index-0", cache=scratch / "cache.zarr")
    cached.series()[0].numpy(dims)  # fills it
    server.clear()
    start = time.perf_counter()
    warm = cached.series()[0].ndarray(dims).compute()
    warm_s = time.perf_counter() - start
    rows.append(Row(
        "warm cache (cache=True keeps native frames of a store): requests for frames",
        seconds=warm_s, frames=manifest.spec.nframes, ratio=len(server.object_gets()),
        ratio_text=f"{len(server.object_gets())} GETs", target="0",
        met=not server.object_gets(), equal="✓" if np.array_equal(warm, reference) else "✗"))
    return rows
