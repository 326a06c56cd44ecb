"""DICOMweb source: requests, bytes and time, against Orthanc on loopback.

``python -m benchmarks.dicomweb [--data DIR] [--frames N]`` starts Orthanc
(``tests/orthanc.py``: Debian ``orthanc`` and ``orthanc-dicomweb``), uploads
generated series and the real corpus in ``tests/data``, and measures

- index: ``lazydicom.open(url)`` (QIDO-RS + series metadata, no pixels) per
  instance, against downloading the instances (WADO-RS, the way users fetch a
  study today) and indexing the download locally;
- full read: ``Series.numpy()`` over DICOMweb against "download the series
  with WADO-RS, then read locally", with requests and bytes per frame;
- selection: a few frames of a large multi-frame instance: requests and bytes
  per selected frame (the pruning).

Requests are counted in Orthanc's log, bytes of response bodies in this
process (a counting wrapper around ``requests.Session.send``, a measuring
device here, not part of lazydicom). Prints one markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.orthanc import running_orthanc  # noqa: E402
from tests.synthetic import write_enhanced_mr, write_series  # noqa: E402

_received = [0]
_send = requests.Session.send


def _counting_send(self: requests.Session, request: Any, **kwargs: Any) -> requests.Response:
    response = _send(self, request, **kwargs)
    if not kwargs.get("stream"):
        _received[0] += len(response.content)
    return response


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".lazydicom" not in p.parts)


class _Meter:
    """Requests (Orthanc's log), bytes received (this process) and seconds of a block."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def __enter__(self) -> _Meter:
        self.requests0 = len(self.server.requests())
        self.bytes0 = _received[0]
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.requests = len(self.server.requests()) - self.requests0
        self.bytes = _received[0] - self.bytes0


def _download(client: Any, study: str, series: str, folder: Path) -> int:
    """WADO-RS retrieve of a whole series into files; returns the number of instances."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for n, ds in enumerate(client.retrieve_series(study, series), 1):
        ds.save_as(folder / f"{n:05d}.dcm", enforce_file_format=True)
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--frames", type=int, default=200,
                        help="frames of the generated series (default 200)")
    args = parser.parse_args(argv)
    import lazydicom
    from lazydicom.dicomweb import WebIndex

    requests.Session.send = _counting_send  # type: ignore[method-assign]
    work = Path(args.data or tempfile.mkdtemp(prefix="lazydicom-dicomweb-"))
    shutil.rmtree(work, ignore_errors=True)
    local = work / "local"
    n = args.frames
    slices = n // 10
    write_series(local / "single", {"SliceLocation": list(range(slices)),
                                    "FlipAngle": list(range(1, 11))}, (256, 256),
                 series_description="single-frame 256x256", series_number=1)
    write_enhanced_mr(local / "enhanced" / "e.dcm",
                      {"InStackPositionNumber": list(range(1, slices + 1)),
                       "EffectiveEchoTime": [float(e) for e in range(1, 11)]}, (256, 256),
                      series_description="enhanced 256x256")
    shutil.copytree(REPO / "tests" / "data" / "ct-skull-jpeg-lossless", local / "ct")
    rows: list[tuple[str, ...]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with running_orthanc(work / "orthanc") as server:
            server.upload(_files(local))
            instances = len(_files(local))
            with _Meter(server) as m:
                db = lazydicom.open(server.dicomweb, index_path=work / "index")
            rows.append(("index: lazydicom.open(url), cold", f"{instances} instances",
                         f"{m.seconds / instances * 1e3:.2f} ms/instance", str(m.requests),
                         f"{m.bytes / instances / 1e3:.1f} kB/instance"))
            client = db.index.source._sessions.get()  # lazydicom's own session: same headers
            with _Meter(server) as m:
                for s in db.series():
                    t = s.table()
                    _download(client, t["StudyInstanceUID"].iloc[0], s.uid,
                              work / "download" / s.uid)
            rows.append(("download the instances (WADO-RS retrieve series)",
                         f"{instances} instances", f"{m.seconds / instances * 1e3:.2f} ms/instance",
                         str(m.requests), f"{m.bytes / instances / 1e3:.1f} kB/instance"))
            t0 = time.perf_counter()
            lazydicom.open(work / "download", progress=False, index_path=work / "dl-index")
            seconds = time.perf_counter() - t0
            rows.append(("  then index the download locally", f"{instances} instances",
                         f"{seconds / instances * 1e3:.2f} ms/instance", "0", "0"))
            targets = [("single-frame 256x256", ("SliceLocation", "FlipAngle")),
                       ("enhanced 256x256", ("InStackPositionNumber", "EffectiveEchoTime"))]
            ct = [s for s in db.series(Modality="CT") if len(s.table()) == 8]
            for description, dims in targets:
                series = db.series(SeriesDescription=description)[0]
                frames = len(series.table())
                with _Meter(server) as m:
                    got = series.numpy(dims)
                rows.append((f"full read, DICOMweb: {description}", f"{frames} frames",
                             f"{m.seconds / frames * 1e3:.2f} ms/frame",
                             f"{m.requests} ({m.requests / frames:.2f}/frame)",
                             f"{m.bytes / frames / 1e3:.1f} kB/frame"))
                t = series.table()
                with _Meter(server) as m:
                    folder = work / "full" / series.uid
                    _download(client, t["StudyInstanceUID"].iloc[0], series.uid, folder)
                    ref = lazydicom.open(folder, progress=False).series()[0].numpy(dims)
                assert np.array_equal(got, ref)
                rows.append(("  download the series, then read locally", f"{frames} frames",
                             f"{m.seconds / frames * 1e3:.2f} ms/frame", str(m.requests),
                             f"{m.bytes / frames / 1e3:.1f} kB/frame"))
            for series in ct:
                frames = len(series.table())
                with _Meter(server) as m:
                    series.numpy()
                rows.append(("full read, DICOMweb: CT JPEG Lossless 512x512 (stored syntax)",
                             f"{frames} frames", f"{m.seconds / frames * 1e3:.2f} ms/frame",
                             f"{m.requests} ({m.requests / frames:.2f}/frame)",
                             f"{m.bytes / frames / 1e3:.1f} kB/frame"))
                native = WebIndex(server.dicomweb, work / "native",
                                  transfer_syntax="1.2.840.10008.1.2.1")
                native.refresh()
                same = lazydicom.Database(native).series(SeriesInstanceUID=series.uid)[0]
                with _Meter(server) as m:
                    same.numpy()
                rows.append(("  the same asked uncompressed (the server decodes)",
                             f"{frames} frames", f"{m.seconds / frames * 1e3:.2f} ms/frame",
                             f"{m.requests} ({m.requests / frames:.2f}/frame)",
                             f"{m.bytes / frames / 1e3:.1f} kB/frame"))
            series = db.series(SeriesDescription="enhanced 256x256")[0]
            arr = series.ndarray(("InStackPositionNumber", "EffectiveEchoTime"), chunks=-1)
            for k in (1, 10):
                runs = []
                for _ in range(3):  # the median of 3 (the server parses the whole instance)
                    with _Meter(server) as m:
                        arr[:, :, :k, 0].compute()  # k frames of one instance of n
                    runs.append(m)
                m = sorted(runs, key=lambda r: r.seconds)[1]
                rows.append((f"selection: {k} of {n} frames of one enhanced instance",
                             f"{k} frames", f"{m.seconds / k * 1e3:.2f} ms/frame",
                             f"{m.requests} ({m.requests / k:.2f}/frame)",
                             f"{m.bytes / k / 1e3:.1f} kB/frame"))
    head = ("what", "size", "time", "requests", "bytes received")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
