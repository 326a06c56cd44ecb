"""Memory benchmark: peak resident memory of reducing a series larger than the target.

A 2.1 GB series (4,000 frames of 512x512 uint16; 210 MB with ``--quick``) is
reduced to its mean. Each measurement runs in a fresh Python process that
reports its own peak RSS (``VmHWM`` from ``/proc/self/status``, the high-water
mark of that process's memory; ``ru_maxrss`` where /proc is missing), so
nothing the parent allocated is counted.

Rows:

- lazydicom cold index of the folder (``lazydicom.open``), for scale;
- lazydicom ``series.ndarray(dims).mean().compute()`` (index present): issue
  target < 500 MB, and flat: the same mean over a tenth of the frames
  (``slice={last dim: first tenth}``) is measured too, and the full mean's
  peak is shown as a multiple of it;
- dbdicom 0.3 ``db.pixel_data(series, dims=[...]).mean()``, an eager read;
- the size of the array itself, the least any eager read must hold.

Run one measurement by hand with
``python -m benchmarks.memory TOOL FOLDER DESCRIPTION DIM [DIM ...]``.
"""

from __future__ import annotations

import builtins
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import REPO, Row, error_row, fmt_ratio
from .data import BIG_DIMS, Manifest, clean_indexes, warm_page_cache

__all__ = ["run_memory", "peak_rss_mb", "TOOLS"]

#: The measurements a child process can run.
TOOLS = ("lazydicom-index", "lazydicom-mean", "lazydicom-mean-tenth", "dbdicom-mean")
#: Every frame holds each value 0..65535 equally often (see benchmarks.data).
EXPECTED_MEAN = 32767.5


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (10**6 bytes)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss * (1 if sys.platform == "darwin" else 1024) / 1e6


def _child(tool: str, folder: str, description: str, dims: list[str]) -> dict[str, Any]:
    """Run one measurement in this (fresh) process; return what to report."""
    if tool.startswith("lazydicom"):
        sys.path.insert(0, str(REPO))
        import lazydicom

        baseline = peak_rss_mb()
        start = time.perf_counter()
        db = lazydicom.open(folder, progress=False)
        if tool == "lazydicom-index":
            return {
                "seconds": time.perf_counter() - start,
                "baseline_mb": baseline,
                "peak_mb": peak_rss_mb(),
                "mean": None,
            }
        series = db.series(SeriesDescription=description)[0]
        if tool == "lazydicom-mean-tenth":
            n = len(series.unique(dims[-1]))
            part = {d: builtins.slice(None) for d in dims[:-1]}
            part[dims[-1]] = builtins.slice(0, max(1, n // 10))
            mean = float(series.ndarray(slice=part).mean().compute())
        else:
            mean = float(series.ndarray(dims=tuple(dims)).mean().compute())
    elif tool == "dbdicom-mean":
        import dbdicom
        import numpy as np

        baseline = peak_rss_mb()
        start = time.perf_counter()
        db = dbdicom.open(folder)
        series = db.series(desc=description)[0]
        arr = db.pixel_data(series, dims=dims[1:], verbose=0)
        # dbdicom returns MR pixels as int16: read them back as the stored uint16
        mean = float((arr.view(np.uint16) if arr.dtype == np.int16 else arr).mean())
    else:
        raise ValueError(f"unknown tool {tool!r}, expected one of {TOOLS}")
    return {
        "seconds": time.perf_counter() - start,
        "baseline_mb": baseline,
        "peak_mb": peak_rss_mb(),
        "mean": mean,
    }


def _run_child(tool: str, manifest: Manifest, timeout: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.memory",
        tool,
        str(manifest.folder),
        manifest.spec.description,
        *manifest.dims,
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        lines = (proc.stderr or "child failed").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_memory(manifest: Manifest, verbose: bool = False, timeout: float = 3600) -> list[Row]:
    """Measure peak RSS of lazydicom's and dbdicom's mean of the big series.

    Parameters
    ----------
    manifest : Manifest
        The big data set (:func:`benchmarks.data.big_spec`).
    verbose : bool
        Print tracebacks of failed measurements.
    timeout : float
        Seconds allowed for each child process.

    Returns
    -------
    list of Row
    """
    if tuple(manifest.dims) != BIG_DIMS:
        raise ValueError(f"memory benchmark expects dims {BIG_DIMS}")
    folder = manifest.folder
    n = manifest.spec.nframes
    size_mb = manifest.spec.nbytes / 1e6
    clean_indexes(folder)
    warm_page_cache(manifest.files)
    rows: dict[str, Row] = {}
    specs = [
        ("index", "lazydicom-index", "lazydicom cold index: lazydicom.open(folder)", ""),
        ("lazy", "lazydicom-mean", "lazydicom ndarray(dims).mean().compute()", "< 500 MB"),
        ("tenth", "lazydicom-mean-tenth",
         f"lazydicom ndarray(slice={{{manifest.dims[-1]}: first tenth}}).mean().compute()", ""),
        (
            "dbdicom",
            "dbdicom-mean",
            f"dbdicom 0.3: open + pixel_data(series, dims={list(manifest.dims[1:])}).mean()",
            "",
        ),
    ]
    for key, tool, what, target in specs:
        try:
            if tool == "dbdicom-mean":
                clean_indexes(folder)
            if key == "tenth" and "lazy" in rows and rows["lazy"].seconds is None:
                raise RuntimeError("skipped: the full mean failed")
            result = _run_child(tool, manifest, timeout)
            row = Row(
                what,
                result["seconds"],
                n // 10 if key == "tenth" else n,
                key=f"memory.{key}",
                peak_mb=result["peak_mb"],
                target=target,
                note=f"baseline after imports {result['baseline_mb']:.0f} MB",
            )
            if result["mean"] is not None:
                ok = abs(result["mean"] - EXPECTED_MEAN) < 1e-3
                row.equal = "✓" if ok else "✗"
                if not ok:
                    row.note += f"; mean {result['mean']!r}, expected {EXPECTED_MEAN}"
        except Exception as exc:  # noqa: BLE001 - a failed measurement is a row
            row = error_row(what, exc, target=target, verbose=verbose)
        rows[key] = row
    clean_indexes(folder)
    rows["size"] = Row(
        "the array itself (floor of any eager read)",
        peak_mb=size_mb,
        key="memory.size",
        note=f"{n} frames of {manifest.spec.rows}x{manifest.spec.cols} uint16",
    )

    lazy = rows["lazy"]
    lazy.key = "memory.lazydicom"
    lazy.summary = (f"Peak memory of a streamed reduction stays flat: mean of a "
                    f"{size_mb / 1e3:.1f} GB series < 500 MB (#8)")
    if lazy.peak_mb is not None:
        lazy.ratio = lazy.peak_mb / size_mb
        tenth = rows["tenth"].peak_mb
        flat = f"; {lazy.peak_mb / tenth:.2f}x the peak for a tenth of the frames" if tenth else ""
        lazy.ratio_text = f"{lazy.peak_mb:,.0f} MB, {100 * lazy.ratio:.0f}% of the array{flat}"
        lazy.met = lazy.peak_mb < 500
    dbd = rows["dbdicom"]
    dbd.key = "memory.dbdicom"
    if dbd.peak_mb is not None and lazy.peak_mb:
        dbd.ratio = dbd.peak_mb / lazy.peak_mb
        dbd.ratio_text = f"{fmt_ratio(dbd.ratio)}x lazydicom"
    return list(rows.values())


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m benchmarks.memory TOOL FOLDER DESCRIPTION DIM...``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    tool, folder, description, *dims = args
    print(json.dumps(_child(tool, folder, description, dims)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
