"""Cache and extraction benchmarks: warm zarr cache vs decoding, folder extraction, workers.

Four measurements, side by side in one run (``run(quick)`` returns the rows):

1. JPEG Lossless CT (the shared ``ct-skull-jpeg-lossless``, see
   :func:`benchmarks.common.shared_data`, copied to scratch, all 303 frames of
   its 5 series): ``ndarray().compute()`` of every series without a cache and
   with a warm cache, interleaved (issue 8 target: warm >= 5x faster than
   decoding); then ``series.numpy()`` without a cache, with a cold cache
   (decode + write-through) and with a warm cache. Target: warm >= 5x faster
   than decoding.
2. Uncompressed synthetic series (Explicit VR LE, 256x256 uint16, written with
   pydicom): no cache, the default cache (native frames bypass it), and a warm
   ``FrameCache(native=True)``. The default must not be slower.
3. Extraction of a whole folder into one zarr group: ``lazydicom.extract``
   (index built inside the timing) vs the pydicom + numpy + zarr script a user
   would write (:func:`plain_extract`). Target >= 3x. On the CT folder and on a
   folder of uncompressed series.
4. The CT extraction on a dask.distributed LocalCluster with 1 vs 2 worker
   processes (one thread each); cluster start-up is not timed.

Every lazydicom result is compared with the reference (no cache, or the plain
script's output) value for value.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from .common import (
    REPO,
    Row,
    Timing,
    equal_mark,
    error_row,
    fmt_ratio,
    import_lazydicom,
    time_call,
)
from .peers import walk_files
from .realdata import ct_jpeg_source, ensure_ct_folder, missing_reason

__all__ = ["run", "run_rows", "plain_extract"]

_DIM = ("InstanceNumber",)


# ---------------------------------------------------------------- data


def _copy_ct(scratch: Path) -> Path:
    return ensure_ct_folder(scratch, "cache-ct")


def _write_native(folder: Path, series: int, frames: int, shape=(256, 256)) -> Path:
    """``series`` uncompressed series of ``frames`` single-frame files each (kept between runs)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    marker = folder.with_name(folder.name + ".complete")  # outside: not a DICOM file
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, cols = shape
    study = generate_uid()
    for s in range(series):
        uid = generate_uid()
        sub = folder / f"series {s + 1}"
        sub.mkdir()
        for k in range(frames):
            ds = Dataset()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.PatientID, ds.PatientName = "BENCH", "Bench^Cache"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, uid
            ds.SeriesNumber, ds.SeriesDescription = s + 1, f"native {s + 1}"
            ds.Modality = "MR"
            ds.InstanceNumber = k + 1
            ds.SliceLocation = float(k)
            ds.Rows, ds.Columns = rows, cols
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.PixelData = rng.integers(0, 4096, (rows, cols), dtype=np.uint16).tobytes()
            ds.save_as(sub / f"IM{k:05d}.dcm", enforce_file_format=True)
    marker.touch()
    return folder


def _warm(folder: Path) -> None:
    for path in walk_files(folder):
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


# ---------------------------------------------------------------- the plain script


def plain_extract(
    folder: str | os.PathLike, out: str | os.PathLike, dim: str = "InstanceNumber"
) -> dict[str, np.ndarray]:
    """What a user writes: dcmread every file, group by series, sort, stack, zarr.

    Returns
    -------
    dict
        ``{SeriesInstanceUID: (x, y, n) array}`` as written (for the equality check).
    """
    import zarr

    groups: dict[str, list] = defaultdict(list)
    for path in walk_files(folder):
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            continue
        if "PixelData" in ds:
            groups[ds.SeriesInstanceUID].append(ds)
    root = zarr.open_group(str(out), mode="w")
    written = {}
    for uid, datasets in groups.items():
        datasets.sort(key=lambda d: float(getattr(d, dim)))
        frames = []
        for ds in datasets:
            arr = ds.pixel_array
            slope = float(ds.get("RescaleSlope", 1) or 1)
            intercept = float(ds.get("RescaleIntercept", 0) or 0)
            if (slope, intercept) != (1.0, 0.0):
                arr = (arr * slope + intercept).astype(np.float32)
            frames.append(arr.T)
        data = np.stack(frames, axis=-1)
        root.create_array(name=uid.replace(".", "_"), data=data)
        written[uid] = data
    return written


def _lazydicom_outputs(out: Path) -> dict[str, np.ndarray]:
    import zarr

    root = zarr.open_group(str(out), mode="r")
    result = {}
    for _name, group in root.groups():
        # stored frames-major, (n, y, x): reversed, the (x, y, n) of the plain script;
        # integers with CF scale_factor/add_offset where packed (lazydicom.io.zarr.packed)
        pixels = group["pixels"]
        data = np.transpose(pixels[...])
        if "scale_factor" in pixels.attrs:
            data = (data * float(pixels.attrs["scale_factor"])
                    + float(pixels.attrs.get("add_offset", 0))).astype(np.float32)
        result[group.attrs["SeriesInstanceUID"]] = data
    return result


def _compare(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> tuple[str, str]:
    if set(got) != set(ref):
        return "✗", f"series differ: {len(got)} vs {len(ref)}"
    for uid in ref:
        mark, why = equal_mark(got[uid], ref[uid])
        if mark != "✓":
            return mark, why
    return "✓", ""


# ---------------------------------------------------------------- measurements


def _row(
    what: str,
    t,
    frames: int,
    base: float | None = None,
    base_name: str = "",
    target: str = "",
    goal: float | None = None,
    invert: bool = False,
) -> Row:
    row = Row(what, t.median, frames, times=t.times)
    if base is not None:
        ratio = base / t.median if not invert else t.median / base
        row.ratio = ratio
        row.ratio_text = f"{fmt_ratio(ratio)}x {base_name}"
        if goal is not None:
            row.target, row.met = target, ratio >= goal
    return row


def _read_all(db, **kw) -> dict[Any, np.ndarray]:
    return {s.uid: s.numpy(_DIM, **kw) for s in db.series()}


def _equal_all(got: dict, ref: dict) -> tuple[str, str]:
    return _compare({str(k): v for k, v in got.items()}, {str(k): v for k, v in ref.items()})


def _cache_rows(
    folder: Path, label: str, native: bool, repeat: int, verbose: bool, goal: float | None
) -> list[Row]:
    lazydicom = import_lazydicom()
    from lazydicom.cache import FrameCache

    rows: list[Row] = []
    plain = lazydicom.open(folder, progress=False)
    frames = len(plain.table())
    t0 = time_call(lambda: _read_all(plain), repeat, warmup=1)
    ref = t0.result
    rows.append(
        Row(
            f"{label}: numpy(), no cache",
            t0.median,
            frames,
            times=t0.times,
            note=f"{frames / t0.median:,.0f} frames/s",
        )
    )
    location = Path(tempfile.mkdtemp(prefix="lazydicom-bench-cache-"))
    try:
        variants = [("cache=True (default: native frames bypass)", FrameCache(location / "d"))]
        if native:
            variants.append(("FrameCache(native=True)", FrameCache(location / "n", native=True)))
        for name, cache in variants:
            db = lazydicom.open(folder, progress=False, cache=cache)
            try:
                cold = time_call(lambda d=db: _read_all(d), repeat, setup=db.cache.clear)
                row = _row(
                    f"{label}: {name}, cold (read + write-through)",
                    cold,
                    frames,
                    t0.median,
                    "faster than no cache",
                )
                row.equal, why = _equal_all(cold.result, ref)
                row.note = why or "cache emptied before each run"
                rows.append(row)
                warm = time_call(lambda d=db: _read_all(d), repeat, warmup=1)
                target = "" if goal is None else f">= {goal:g}x faster than decoding"
                row = _row(
                    f"{label}: {name}, warm",
                    warm,
                    frames,
                    t0.median,
                    "faster than no cache",
                    target,
                    goal,
                )
                row.equal, why = _equal_all(warm.result, ref)
                stats = db.cache.stats()
                row.note = "; ".join(x for x in (why, f"cache {stats}") if x)
                rows.append(row)
            except Exception as exc:  # noqa: BLE001 - a failed measurement is a row
                rows.append(error_row(f"{label}: {name}", exc, verbose=verbose))
    finally:
        shutil.rmtree(location, ignore_errors=True)
    return rows


def _compute_all(db) -> dict[Any, np.ndarray]:
    return {s.uid: s.ndarray(_DIM).compute() for s in db.series()}


def _ndarray_cache_rows(folder: Path, label: str, repeat: int, verbose: bool) -> list[Row]:
    """``ndarray().compute()`` of every series without a cache and with a warm cache,
    interleaved (issue 8 target: warm >= 5x decoding)."""
    lazydicom = import_lazydicom()
    from lazydicom.cache import FrameCache

    from .common import time_interleaved

    plain = lazydicom.open(folder, progress=False)
    frames = len(plain.table())
    ref = _read_all(plain)
    location = Path(tempfile.mkdtemp(prefix="lazydicom-bench-cache-"))
    names = {
        "decode": f"{label}: ndarray().compute() of every series, no cache (decoding)",
        "warm": f"{label}: ndarray().compute() of every series, warm cache=True",
    }
    rows: list[Row] = []
    try:
        cached = lazydicom.open(folder, progress=False, cache=FrameCache(location / "c"))
        _compute_all(cached)  # fills the cache (cold run, not timed)
        marks: dict[str, tuple[str, str]] = {}
        errors: dict[str, BaseException] = {}
        timings = time_interleaved(
            {"decode": lambda: _compute_all(plain), "warm": lambda: _compute_all(cached)},
            repeat,
            warmup=1,
            check=lambda name, result: marks.__setitem__(name, _equal_all(result, ref)),
            on_error=errors.__setitem__,
        )
        for name, what in names.items():
            if name in errors:
                rows.append(error_row(what, errors[name], verbose=verbose))
                continue
            t = timings[name]
            row = Row(what, t.median, frames, times=t.times, key=f"cache.ndarray.{name}")
            row.equal, row.note = marks.get(name, ("", ""))
            rows.append(row)
        if len(rows) == 2 and rows[0].seconds and rows[1].seconds:
            warm = rows[1]
            warm.ratio = rows[0].seconds / warm.seconds
            warm.ratio_text = f"no cache / warm cache = {fmt_ratio(warm.ratio)}"
            warm.target = "no cache / warm cache >= 5"
            warm.met = warm.ratio >= 5.0
            warm.summary = ("Warm zarr cache through ndarray().compute() >= 5x decoding, "
                            "JPEG Lossless CT (#8)")
            warm.note = "; ".join(x for x in (warm.note, f"cache {cached.cache.stats()}") if x)
    finally:
        shutil.rmtree(location, ignore_errors=True)
    return rows


def _extract_rows(folder: Path, label: str, repeat: int, verbose: bool,
                  compressed: bool = False) -> list[Row]:
    rows: list[Row] = []
    scratch = Path(tempfile.mkdtemp(prefix="lazydicom-bench-extract-"))
    frames = 0
    try:

        def plain() -> dict:
            shutil.rmtree(scratch / "plain.zarr", ignore_errors=True)
            return plain_extract(folder, scratch / "plain.zarr")

        t0 = time_call(plain, repeat)
        ref = t0.result
        frames = sum(a.shape[-1] for a in ref.values())
        rows.append(
            Row(
                f"{label}: plain script (dcmread + pixel_array + np.stack + zarr defaults)",
                t0.median,
                frames,
                times=t0.times,
                note=f"{len(ref)} series",
            )
        )

        variants = [("lz4", "fresh", "blosc-lz4 (default), index built inside"),
                    ("zstd", "fresh", "zstd level 1, index built inside")]
        if compressed:
            variants.append(("lz4", "warm", "re-extraction: index and cache=True warm"))
        for compressor, mode, name in variants:
            try:
                t = _time_child(folder, scratch / "ld.zarr", compressor, repeat, mode)
                row = _row(
                    f"{label}: lazydicom.extract, {name}",
                    t,
                    frames,
                    t0.median,
                    "faster than the plain script",
                    ">= 3x faster than the plain script",
                    3.0,
                )
                row.equal, row.note = _compare(t.result, ref)
                row.key = f"extract.{'jpeg' if compressed else 'native'}.{compressor}.{mode}"
                rows.append(row)
            except Exception as exc:  # noqa: BLE001
                rows.append(
                    error_row(f"{label}: lazydicom.extract {name}", exc, ">= 3x", verbose=verbose)
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def _child_extract(folder: str, out: str, compressor: str, mode: str = "fresh") -> None:
    """In a fresh process (as the CLI runs): time extract().

    ``mode="fresh"``: no index (it is built inside the timing), no cache.
    ``mode="warm"``: the index and a warm frame cache exist (a re-extraction).
    """
    import json
    import time

    import dask.array  # noqa: F401 - imports are not timed (the plain script's are not)
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    import_lazydicom()
    import lazydicom
    import lazydicom.array  # noqa: F401
    from lazydicom.extract import extract

    # one untimed run first, as the plain script's repeats run in a warm process:
    # first-call costs (lazy imports inside xarray, zarr, numcodecs) are not timed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extract(folder, out + ".warmup", _DIM, progress=False, compressor=compressor,
                cache=mode == "warm")
    shutil.rmtree(out + ".warmup", ignore_errors=True)
    if mode == "fresh":
        shutil.rmtree(Path(folder) / ".lazydicom", ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped non-DICOM files, if any
        report = extract(folder, out, _DIM, progress=False, compressor=compressor,
                         cache=mode == "warm")
    seconds = time.perf_counter() - start
    failed = [r for r in report if r["status"] != "written"]
    print(json.dumps({"seconds": seconds, "failed": failed, "version": lazydicom.__version__}))


def _time_child(folder: Path, out: Path, compressor: str, repeat: int,
                mode: str = "fresh") -> Timing:
    """Run :func:`_child_extract` ``repeat`` times in fresh processes.

    A fresh process is what a user gets from ``lazydicom extract``: here zarr's
    and dask's threads are already running, which makes the index choose a
    slower process start method. Imports are not timed (the plain script's are not).
    """
    import json
    import statistics
    import subprocess
    import sys

    times = []
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from benchmarks.cache import _child_extract; "
             "_child_extract(*sys.argv[1:])", str(folder), str(out), compressor, mode],
            cwd=REPO, capture_output=True, text=True, check=False,
            env={**os.environ, "TQDM_DISABLE": "1"},
        )
        if proc.returncode:
            lines = proc.stderr.strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"exit status {proc.returncode}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if result["failed"]:
            raise RuntimeError(f"{len(result['failed'])} series not written: {result['failed'][0]}")
        times.append(result["seconds"])
    if mode == "warm":
        shutil.rmtree(folder / ".lazydicom", ignore_errors=True)
    return Timing(statistics.median(times), times, _lazydicom_outputs(out))


def _worker_rows(folder: Path, repeat: int, verbose: bool) -> list[Row]:
    import_lazydicom()
    from distributed import Client, LocalCluster

    from lazydicom.extract import extract

    rows: list[Row] = []
    scratch = Path(tempfile.mkdtemp(prefix="lazydicom-bench-workers-"))
    base = None
    try:
        import lazydicom

        db = lazydicom.open(folder, progress=False)  # index built once, outside the timing
        frames = len(db.table())
        for n in (1, 2):
            try:
                with (
                    LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                    ) as cluster,
                    Client(cluster) as client,
                ):

                    def call(c=client) -> list:
                        shutil.rmtree(scratch / "w.zarr", ignore_errors=True)
                        return extract(db, scratch / "w.zarr", _DIM, scheduler=c, progress=False)

                    t = time_call(call, repeat, warmup=1)
                what = f"CT JPEG Lossless: extract on LocalCluster, {n} worker process(es)"
                if base is None:
                    base = t.median
                    row = Row(what, t.median, frames, times=t.times)
                else:
                    row = _row(what, t, frames, base, "faster than 1 worker")
                statuses = {r["status"] for r in t.result}
                row.note = f"statuses {sorted(statuses)}; {os.cpu_count()} cores"
                rows.append(row)
            except Exception as exc:  # noqa: BLE001
                rows.append(error_row(f"LocalCluster {n} worker(s)", exc, verbose=verbose))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def run_rows(
    quick: bool = False,
    scratch: str | os.PathLike | None = None,
    repeat: int | None = None,
    verbose: bool = False,
) -> list[Row]:
    """Run every measurement of this module; returns :class:`~benchmarks.common.Row` objects."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    repeat = repeat or (2 if quick else 3)
    scratch = Path(scratch or Path(tempfile.gettempdir()) / "lazydicom-bench")
    scratch.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    reason = missing_reason(ct_jpeg_source())
    if reason is None:
        ct = _copy_ct(scratch)
        shutil.rmtree(ct / ".lazydicom", ignore_errors=True)
        _warm(ct)
        for part in (
            lambda: _ndarray_cache_rows(ct, "CT JPEG Lossless", repeat, verbose),
            lambda: _cache_rows(ct, "CT JPEG Lossless", False, repeat, verbose, 5.0),
            lambda: _extract_rows(ct, "CT JPEG Lossless folder", repeat, verbose, True),
            lambda: _worker_rows(ct, repeat, verbose),
        ):
            try:
                rows += part()
            except Exception as exc:  # noqa: BLE001
                rows.append(error_row("CT JPEG Lossless", exc, verbose=verbose))
    else:
        rows.append(Row("CT JPEG Lossless", note=reason))
    n_series, n_frames = (4, 100) if quick else (4, 300)
    native = _write_native(scratch / f"cache-native-{n_series}x{n_frames}", n_series, n_frames)
    shutil.rmtree(native / ".lazydicom", ignore_errors=True)
    _warm(native)
    label = f"Uncompressed {n_series}x{n_frames} 256x256 uint16"
    for part in (
        lambda: _cache_rows(native, label, True, repeat, verbose, None),
        lambda: _extract_rows(native, f"{label} folder", repeat, verbose),
    ):
        try:
            rows += part()
        except Exception as exc:  # noqa: BLE001
            rows.append(error_row(label, exc, verbose=verbose))
    return rows


def run(quick: bool = False) -> list[dict]:
    """Run the cache and extraction benchmarks; one JSON-ready dict per result row."""
    return [row.to_dict() for row in run_rows(quick)]


if __name__ == "__main__":  # python -m benchmarks.cache [--quick]
    import sys

    from .common import markdown_table

    print(markdown_table(run_rows("--quick" in sys.argv, verbose="--verbose" in sys.argv)))
