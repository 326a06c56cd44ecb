"""Scale: index, reopen, build and one-cell times and peak memory at 10k to 1M frames.

Issue 10's measurements on generated single-frame series (16x16 pixels, so
headers dominate), each step in a fresh process so that peak RSS is the
step's own:

- cold index (``lazydicom.open`` with no index), per file;
- reopen with nothing changed;
- ``ndarray(3 dims)`` built over every cell;
- one cell computed;
- peak RSS of a fresh process that opens the folder and builds the array;
- (group ``cluster``) the cold index of the 10k-frame folder read on a dask.distributed
  LocalCluster of 1 and of 2 worker processes (one thread each;
  ``lazydicom.open(folder, scheduler=client)``; cluster start-up not timed),
  against the default local scan.

Data: ``SliceLocation x FlipAngle x RepetitionTime`` grids of one series,
written by patching the bytes of one template file (pydicom writes the
template; fixed-width values are patched in place), 100-200 files per folder.
A 1M-frame folder takes ~2 GB and a few minutes to write; it is kept in the
scratch directory between runs.

Run: ``python -m benchmarks.scale [--frames 10000,100000] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["ensure_scale_folder", "run_scale", "cluster_scan", "cluster_rows", "GRIDS"]

#: frames -> (slices, flip angles, repetition times)
GRIDS = {
    10_000: (25, 20, 20),
    50_000: (50, 20, 50),
    100_000: (50, 20, 100),
    1_000_000: (100, 100, 100),
}
_FIELDS = {  # keyword -> width of its padded value in the template
    "SOPInstanceUID": 40,
    "InstanceNumber": 8,
    "SliceLocation": 12,
    "FlipAngle": 8,
    "RepetitionTime": 8,
    "ImagePositionPatient": 20,
}
_MARKERS = {  # valid, distinct placeholder values of exactly those widths
    "SOPInstanceUID": "1.2.3." + "9" * 34,
    "InstanceNumber": "1" * 8,
    "SliceLocation": "4" * 12,
    "FlipAngle": "2" * 8,
    "RepetitionTime": "3" * 8,
    "ImagePositionPatient": "0\\0\\" + "5" * 16,
}


def _template() -> tuple[bytes, dict[str, list[tuple[int, int]]]]:
    """Bytes of one small MR file and the (offset, width) of each patched value
    (the SOPInstanceUID is also the file meta's MediaStorageSOPInstanceUID)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    markers = _MARKERS
    assert all(len(markers[k]) == w for k, w in _FIELDS.items())
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = "1" * 40
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.PatientID, ds.PatientName = "SCALE001", "Scale^Test"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.SeriesDescription, ds.Modality = 1, "scale", "MR"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.zeros((16, 16), np.uint16).tobytes()
    raw = markers  # written as text of the right width, then found by their bytes
    ds.add_new(0x00080018, "UI", raw["SOPInstanceUID"])
    ds.add_new(0x00200013, "IS", raw["InstanceNumber"])
    ds.add_new(0x00201041, "DS", raw["SliceLocation"])
    ds.add_new(0x00181314, "DS", raw["FlipAngle"])
    ds.add_new(0x00180080, "DS", raw["RepetitionTime"])
    ds.add_new(0x00200032, "DS", raw["ImagePositionPatient"])
    from io import BytesIO

    buf = BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    data = buf.getvalue()
    where = {}
    for key, text in markers.items():
        found, start = [], data.find(text.encode())
        while start >= 0:
            found.append((start, len(text)))
            start = data.find(text.encode(), start + 1)
        where[key] = found
    return data, where


def _fixed(text: str, width: int) -> bytes:
    if len(text) > width:
        raise ValueError(f"{text!r} does not fit {width} characters")
    return text.ljust(width).encode()


def ensure_scale_folder(scratch: Path, frames: int) -> Path:
    """The folder of ``frames`` files (written once; a marker file records completion)."""
    folder = scratch / f"scale-{frames}"
    done = folder / ".complete"
    if done.exists():
        return folder
    nz, nf, nt = GRIDS[frames]
    data, where = _template()
    template = bytearray(data)
    folder.mkdir(parents=True, exist_ok=True)
    number = 0
    for t in range(nt):
        sub = folder / f"tr{t:04d}"
        sub.mkdir(exist_ok=True)
        for f in range(nf):
            for z in range(nz):
                number += 1
                values = {
                    "SOPInstanceUID": f"1.2.826.0.1.3680043.9.7.{number}",
                    "InstanceNumber": str(number),
                    "SliceLocation": f"{z * 2.5:g}",
                    "FlipAngle": str(f + 1),
                    "RepetitionTime": str(10 + t),
                    "ImagePositionPatient": f"0\\0\\{z * 2.5:g}",
                }
                for key, places in where.items():
                    for offset, width in places:
                        template[offset:offset + width] = _fixed(values[key], width)
                (sub / f"{f:03d}_{z:04d}.dcm").write_bytes(template)
    done.write_text(str(number))
    return folder


_PEAK = r'''
import resource
def peak_mb():
    # VmHWM: the high-water mark of this process's own memory. ru_maxrss is not:
    # Linux carries the spawning parent's RSS into it across fork/vfork + exec
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
'''

_CHILD = _PEAK + r"""
import json, sys, time
step, folder = sys.argv[1], sys.argv[2]
import lazydicom
import lazydicom.records, lazydicom.array, lazydicom.dask_array  # imports are not timed
import dask.threaded, dask.array.optimization
try:  # dask's first compute imports distributed (when installed) to look for a client
    import distributed
except ImportError:
    pass
dims = ("SliceLocation", "FlipAngle", "RepetitionTime")
result = {}
if step == "cold":
    t = time.perf_counter(); db = lazydicom.open(folder, progress=False)
    result["seconds"] = time.perf_counter() - t
elif step == "reopen":
    t = time.perf_counter(); db = lazydicom.open(folder, progress=False)
    result["seconds"] = time.perf_counter() - t
else:
    db = lazydicom.open(folder, progress=False)
    (series,) = db.series()
    t = time.perf_counter(); arr = series.ndarray(dims)
    result["build"] = time.perf_counter() - t
    t = time.perf_counter(); arr[:, :, 3, 4, 5].compute()
    result["one_cell"] = time.perf_counter() - t
    result["cells"] = int(arr.size // (arr.shape[0] * arr.shape[1]))
result["peak_rss_mb"] = peak_mb()
print(json.dumps(result))
"""


def _child(step: str, folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", _CHILD, step, str(folder)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _baseline_rss() -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = _PEAK + ("import lazydicom, lazydicom.records, lazydicom.array, numpy, pandas, "
                    "dask.array\nprint(peak_mb())")
    return float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True).stdout.strip())


def run_scale(scratch: Path, sizes: list[int], log=print) -> list[dict]:
    """Measure each size; returns one dict per size."""
    rows = []
    base = _baseline_rss()
    for frames in sizes:
        t = time.perf_counter()
        folder = ensure_scale_folder(scratch, frames)
        log(f"scale {frames}: data ready in {time.perf_counter() - t:.0f} s")
        index = folder / ".lazydicom"
        if index.exists():
            import shutil

            shutil.rmtree(index)
        cold = _child("cold", folder)
        reopen = _child("reopen", folder)
        build = _child("build", folder)
        row = {
            "frames": frames,
            "cold_s": cold["seconds"],
            "cold_us_per_file": cold["seconds"] / frames * 1e6,
            "reopen_s": reopen["seconds"],
            "build_s": build["build"],
            "one_cell_s": build["one_cell"],
            "peak_rss_mb": build["peak_rss_mb"],
            "rss_growth_mb": build["peak_rss_mb"] - base,
            "import_rss_mb": base,
        }
        rows.append(row)
        log(json.dumps(row))
    return rows


def cluster_scan(folder: Path, repeat: int = 3, log=print) -> dict[str, list[float]]:
    """Cold index of ``folder`` on LocalClusters of 1 and 2 workers, and locally.

    Each timing builds a fresh index in its own temporary folder
    (``index_path``), so nothing is reused between runs; the rounds are
    interleaved so that a burst of other work hits every variant alike.
    """
    import shutil

    from distributed import Client, LocalCluster

    import lazydicom

    times: dict[str, list[float]] = {"local processes (default)": [],
                                     "LocalCluster, 1 worker": [],
                                     "LocalCluster, 2 workers": []}
    clusters = {name: LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
                for name, n in (("LocalCluster, 1 worker", 1), ("LocalCluster, 2 workers", 2))}
    clients = {name: Client(c, set_as_default=False) for name, c in clusters.items()}
    scratch = Path(tempfile.mkdtemp(prefix="lazydicom-cluster-scan-"))
    try:
        for client in clients.values():  # warm up: imports on the workers
            lazydicom.open(folder, index_path=scratch / "warm", scheduler=client,
                           progress=False)
            shutil.rmtree(scratch / "warm")
        for r in range(repeat):
            for name in times:
                where = scratch / f"{r}-{len(times[name])}-{name[:5]}"
                t = time.perf_counter()
                lazydicom.open(folder, index_path=where, progress=False,
                               scheduler=clients.get(name))
                times[name].append(time.perf_counter() - t)
                shutil.rmtree(where, ignore_errors=True)
            log(f"cluster scan round {r + 1}: "
                + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    finally:
        for client in clients.values():
            client.close()
        for cluster in clusters.values():
            cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return times


def cluster_rows(scratch: Path, frames: int = 10_000, repeat: int = 3, log=print) -> list:
    """Rows of the cluster header scan (issue 10: 1 vs 2 workers)."""
    import statistics

    from .common import Row

    folder = ensure_scale_folder(scratch, frames)
    times = cluster_scan(folder, repeat, log=log)
    median = {k: statistics.median(v) for k, v in times.items()}
    one = median["LocalCluster, 1 worker"]
    rows = []
    for name, seconds in median.items():
        row = Row(f"{frames:,} frames: cold index, {name}", seconds, frames, times=times[name],
                  note=f"{frames / seconds:,.0f} files/s")
        if name != "LocalCluster, 1 worker":
            row.ratio = one / seconds
            row.ratio_text = f"{one / seconds:.2f}x faster than 1 worker"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--frames", default="10000,50000,100000")
    parser.add_argument("--data", type=Path,
                        default=Path(tempfile.gettempdir()) / "lazydicom-bench")
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.frames.split(",")]
    run_scale(args.data, sizes)


if __name__ == "__main__":
    main()


def scale_rows(scratch: Path, sizes: list[int], log=print) -> list:
    """The rows of the scale group, with issue 10's targets."""
    from .common import Row

    rows = []
    measured = run_scale(scratch, sizes, log=log)
    for r in measured:
        n, cold = r["frames"], r["cold_s"]
        label = f"{n:,} frames"
        rows.append(Row(f"{label}: cold index", cold, n, key="scale.cold",
                        note=f"{r['cold_us_per_file']:.0f} us/file"))
        rows.append(Row(f"{label}: reopen, nothing changed", r["reopen_s"], n,
                        ratio=r["reopen_s"] / cold,
                        ratio_text=f"{r['reopen_s'] / cold:.1%} of the cold index",
                        target="<= 2% of cold (50k); <= 2 s (1M)" if n in (50_000, 1_000_000)
                        else "",
                        met=(r["reopen_s"] <= 0.02 * cold if n == 50_000 else
                             r["reopen_s"] <= 2 if n == 1_000_000 else None)))
        rows.append(Row(f"{label}: build ndarray over every cell", r["build_s"], n,
                        ratio=r["build_s"] / cold,
                        ratio_text=f"{r['build_s'] / cold:.1%} of the cold index",
                        target="<= 5% of cold (50k); <= 3 s (1M)" if n in (50_000, 1_000_000)
                        else "",
                        met=(r["build_s"] <= 0.05 * cold if n == 50_000 else
                             r["build_s"] <= 3 if n == 1_000_000 else None)))
        rows.append(Row(f"{label}: compute one cell", r["one_cell_s"], 1,
                        ratio=r["one_cell_s"] / cold,
                        ratio_text=f"{r['one_cell_s'] / cold:.2%} of the cold index",
                        target="<= 1% of cold (50k); <= 0.2 s (1M)" if n in (50_000, 1_000_000)
                        else "",
                        met=(r["one_cell_s"] <= 0.01 * cold if n == 50_000 else
                             r["one_cell_s"] <= 0.2 if n == 1_000_000 else None)))
        rows.append(Row(f"{label}: peak RSS of open + ndarray", None, n,
                        peak_mb=r["peak_rss_mb"],
                        ratio_text=(f"{r['peak_rss_mb']:,.0f} MB peak, "
                                    f"{r['rss_growth_mb']:,.0f} MB over the imports"),
                        note=f"{r['rss_growth_mb']:.0f} MB over the imports "
                             f"({r['rss_growth_mb'] * 1e6 / n / 1024:.2f} KB per frame)",
                        target="growth <= 150 MB (50k); <= 1.5 GB total (1M)"
                        if n in (50_000, 1_000_000) else "",
                        met=(r["rss_growth_mb"] <= 150 if n == 50_000 else
                             r["peak_rss_mb"] <= 1536 if n == 1_000_000 else None)))
    per_file = {r["frames"]: r["cold_us_per_file"] for r in measured}
    smallest, largest = min(per_file), max(per_file)
    if largest > smallest:
        growth = per_file[largest] / per_file[smallest]
        rows.append(Row(f"cold index per file, {largest:,} against {smallest:,} frames",
                        None, None, ratio=growth,
                        ratio_text=f"{growth:.2f}x the per-file time "
                                   f"({per_file[largest]:.0f} against {per_file[smallest]:.0f} us)",
                        target="<= 1.3x (1M against 10k)" if (smallest, largest) == (
                            10_000, 1_000_000) else "",
                        met=growth <= 1.3 if (smallest, largest) == (10_000, 1_000_000)
                        else None,
                        summary="cold index stays linear: per-file time at 1M <= 1.3x 10k"
                        if (smallest, largest) == (10_000, 1_000_000) else ""))
    return rows
