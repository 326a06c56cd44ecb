"""Index benchmark: scanning a folder's headers once, and reopening it unchanged.

Issue targets: lazydicom's cold index >= 3x faster than a plain pydicom
``dcmread(stop_before_pixels=True)`` loop over the same files and >= 5x faster
than dbdicom 0.3's first open of the folder; a reopen with nothing changed takes
<= 5% of the cold time.

Every tool runs in its own fresh Python process, which imports only that tool,
so no tool pays for what another imported (lazydicom's parallel scan forks
worker processes, and forking a process that has imported dbdicom's stack
measurably slows it). Inside the child, only the call is timed: one untimed
warm-up run (imports, first-call set-up), then ``repeat`` timed runs; the median
is reported. The files are in the page cache, and lazydicom's ``.lazydicom/``
and dbdicom's ``index.json`` are removed before every cold run, outside the
timing.

Extra lazydicom rows, for the reader (no target):

- the first call in a fresh process (the warm-up run above: includes lazy
  imports and worker start-up);
- a cold open while an idle extra thread is alive (as in Jupyter, or once any
  tqdm progress bar has started its monitor thread);
- a cold open in a process that has also imported the peers. Importing
  dbdicom 0.3 sets ``pydicom.config.datetime_conversion = True`` for the whole
  process, and imagedata sets ``reading_validation_mode = IGNORE``; this row
  shows what that costs lazydicom (the other groups shield each tool from the
  others' options, see :func:`benchmarks.common.pydicom_config`).

The reopen child also records every file under the data folder (outside
``.lazydicom/``) that it opens through Python's ``open``/``os.open`` during the
timed reopens: the ``equal`` column of that row says whether any was opened.

Run one child by hand with ``python -m benchmarks.index TOOL FOLDER REPEAT``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import PYDICOM_DEFAULTS, REPO, Row, error_row, fmt_ratio, pydicom_state
from .data import Manifest, clean_indexes, warm_page_cache

__all__ = ["run_index", "TOOLS"]

#: Child measurements: name -> row label.
TOOLS: dict[str, str] = {
    "pydicom": "pydicom loop: dcmread(stop_before_pixels=True)",
    "dbdicom": "dbdicom 0.3 first open: dbdicom.open(folder)",
    "lazydicom": "lazydicom cold: lazydicom.open(folder)",
    "lazydicom-reopen": "lazydicom reopen, nothing changed",
    "lazydicom-thread": "lazydicom cold, an idle extra thread alive",
    "lazydicom-peers": "lazydicom cold, dbdicom/SimpleITK/imagedata imported in the process",
}


def _call_for(tool: str, folder: str) -> tuple[Callable[[], Any], Callable[[], None] | None]:
    """Return (call to time, setup before each run) for one child measurement."""
    if tool == "pydicom":
        from . import peers

        return (lambda: peers.pydicom_headers(folder)), (lambda: clean_indexes(Path(folder)))
    if tool == "dbdicom":
        from . import peers

        return (lambda: peers.dbdicom_open(folder)), (lambda: clean_indexes(Path(folder)))
    sys.path.insert(0, str(REPO))
    import lazydicom

    if tool == "lazydicom-peers":
        import dbdicom  # noqa: F401
        import SimpleITK  # noqa: F401

        try:  # optional peer: the pydicom options of dbdicom still apply without it
            import imagedata.series  # noqa: F401
        except ImportError:
            pass
    if tool == "lazydicom-thread":
        stop = threading.Event()
        threading.Thread(target=stop.wait, name="idle", daemon=True).start()

    def open_() -> Any:
        return lazydicom.open(folder, progress=False)

    if tool == "lazydicom-reopen":
        clean_indexes(Path(folder))
        open_()
        _watch_opens(folder)
        return open_, None
    return open_, (lambda: clean_indexes(Path(folder)))


#: Data files (outside ``.lazydicom/``) opened through Python since :func:`_watch_opens`.
_OPENED: list[str] = []


def _watch_opens(folder: str) -> None:
    """Record every data file this process opens through ``open``/``io.open``/``os.open``.

    Files under ``folder`` but not under its ``.lazydicom/`` index folder are
    recorded in :data:`_OPENED`. Opens from C code, or in worker processes,
    are not seen.
    """
    import builtins
    import io

    root = os.path.realpath(folder)
    index = os.path.join(root, ".lazydicom")

    def record(file: Any) -> None:
        if isinstance(file, (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(file))
            if path.startswith(root + os.sep) and not path.startswith(index + os.sep):
                _OPENED.append(path)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def opener(file: Any, *args: Any, **kwargs: Any) -> Any:
            record(file)
            return fn(file, *args, **kwargs)

        return opener

    builtins.open = io.open = wrap(builtins.open)  # type: ignore[assignment]
    os.open = wrap(os.open)  # type: ignore[assignment]


def _child(tool: str, folder: str, repeat: int) -> dict[str, Any]:
    fn, setup = _call_for(tool, folder)
    times = []
    for _ in range(repeat + 1):  # the first run is the warm-up
        if setup is not None:
            setup()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    info: dict[str, Any] = {"warmup": times[0], "times": times[1:]}
    if tool == "pydicom":
        info["files"] = result
    elif tool == "dbdicom":
        info["files"] = sum(
            len(s["instances"])
            for p in result.register
            for st in p["studies"]
            for s in st["series"]
        )
    else:
        info["files"] = sum(len(s.files()) for s in result.series())
    if tool == "lazydicom-reopen":
        info["opened"] = sorted(set(_OPENED))
    state = pydicom_state()
    info["pydicom_changed"] = {k: repr(v) for k, v in state.items() if v != PYDICOM_DEFAULTS[k]}
    clean_indexes(Path(folder))
    return info


def _run_child(tool: str, folder: Path, repeat: int, timeout: float = 3600) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.index", tool, str(folder), str(repeat)]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        lines = (proc.stderr or "").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_index(manifest: Manifest, repeat: int = 3, verbose: bool = False) -> list[Row]:
    """Time the header index of the grid data set, each tool in a fresh process.

    Parameters
    ----------
    manifest : Manifest
        The data set (its folder is scanned).
    repeat : int
        Timed runs per row (median reported); reopen uses ``max(5, repeat)``.
    verbose : bool
        Print tracebacks of failed measurements.

    Returns
    -------
    list of Row
    """
    folder = manifest.folder
    n = manifest.spec.nframes
    clean_indexes(folder)
    warm_page_cache(manifest.files)
    rows: dict[str, Row] = {}
    first_call = None
    for tool, what in TOOLS.items():
        try:
            runs = max(5, repeat) if tool == "lazydicom-reopen" else repeat
            info = _run_child(tool, folder, runs)
            note = "" if info["files"] == n else f"indexed {info['files']} files, expected {n}"
            rows[tool] = Row(
                what, statistics.median(info["times"]), n, times=info["times"], note=note,
                key=tool,
            )
            if info.get("pydicom_changed"):
                changed = ", ".join(f"{k}={v}" for k, v in info["pydicom_changed"].items())
                rows[tool].note = "; ".join(x for x in (note, f"pydicom options: {changed}") if x)
            if "opened" in info:
                opened = info["opened"]
                rows[tool].note = "; ".join(
                    x for x in (note, f"opened {len(opened)} data files" if opened else "") if x
                )
                rows[tool].equal = "✗" if opened else "✓ no data file opened"
            if tool == "lazydicom":
                first_call = Row(
                    "lazydicom cold, first call in a fresh process",
                    info["warmup"],
                    n,
                    times=[info["warmup"]],
                    note="includes lazy imports",
                )
        except Exception as exc:  # noqa: BLE001 - a failed measurement is a row, not a crash
            rows[tool] = error_row(what, exc, verbose=verbose)
    if first_call is not None:
        rows["lazydicom-first"] = first_call
    clean_indexes(folder)
    _set_ratios(rows)
    order = [
        "pydicom",
        "dbdicom",
        "lazydicom",
        "lazydicom-reopen",
        "lazydicom-first",
        "lazydicom-thread",
        "lazydicom-peers",
    ]
    return [rows[k] for k in order if k in rows]


def _set_ratios(rows: dict[str, Row]) -> None:
    cold = rows["lazydicom"].seconds
    for key, target, need in (
        ("pydicom", "lazydicom cold >= 3x faster", 3.0),
        ("dbdicom", "lazydicom cold >= 5x faster", 5.0),
    ):
        row = rows[key]
        row.target = target
        if row.seconds is not None and cold:
            row.ratio = row.seconds / cold
            row.ratio_text = f"{fmt_ratio(row.ratio)}x lazydicom cold"
            row.met = row.ratio >= need
        elif row.seconds is not None:
            row.ratio_text = "n/a (lazydicom)"
    if rows["lazydicom"].seconds is not None:
        rows["lazydicom"].ratio_text = "1 (reference)"
    reopen = rows["lazydicom-reopen"]
    reopen.target = "<= 5% of cold, no data file read"
    if reopen.seconds is not None and cold:
        reopen.ratio = reopen.seconds / cold
        reopen.ratio_text = f"{100 * reopen.ratio:.1f}% of cold"
        reopen.met = reopen.ratio <= 0.05 and not reopen.equal.startswith("✗")
    for key in ("lazydicom-first", "lazydicom-thread", "lazydicom-peers"):
        row = rows.get(key)
        if row is not None and row.seconds is not None and cold:
            row.ratio = row.seconds / cold
            row.ratio_text = f"{fmt_ratio(row.ratio)}x cold"


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m benchmarks.index TOOL FOLDER REPEAT``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in TOOLS:
        print(
            f"usage: python -m benchmarks.index {{{','.join(TOOLS)}}} FOLDER REPEAT",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(_child(args[0], args[1], int(args[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
