"""Shared pieces of the benchmarks: result rows, timing, tables and machine facts."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "REPO",
    "Row",
    "Timing",
    "error_row",
    "equal_mark",
    "fmt_ratio",
    "import_lazydicom",
    "machine_info",
    "markdown_table",
    "pydicom_config",
    "pydicom_state",
    "quiet",
    "shared_data",
    "time_call",
    "time_interleaved",
    "time_process",
    "unordered_frames_mark",
]

#: Root of the lazydicom repository (the parent of ``benchmarks/``).
REPO = Path(__file__).resolve().parent.parent



def compile_package() -> None:
    """Byte-compile lazydicom's modules, as ``pip install`` does.

    The fresh processes of the benchmarks import lazydicom from this checkout.
    Where no bytecode can be written beside it (``PYTHONDONTWRITEBYTECODE`` is
    set on the VM of docs/benchmarks.md) every start would compile lazydicom's
    source, 0.13 s that no installed copy pays (its dependencies come
    compiled from their wheels); compiling once here measures what users run.
    """
    import compileall

    compileall.compile_dir(str(REPO / "lazydicom"), quiet=2)


def shared_data() -> Path:
    """The shared corpus of real files: ``$LAZYDICOM_SHARED_DATA``, else ``../shared/data``.

    The default is relative to the repository root (the folder beside it named
    ``shared``), never a machine path; it may not exist, and the groups that
    need it then show a skipped row saying so.
    """
    env = os.environ.get("LAZYDICOM_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


#: Text shown in a row whose measurement failed.
NA_ERROR = "n/a (error)"


@dataclass(slots=True)
class Row:
    """One line of a result table.

    Attributes
    ----------
    what : str
        What was measured (tool and call).
    seconds : float or None
        Median wall time of the whole call, ``None`` if not measured.
    frames : int or None
        Frames handled by the call; gives the per-frame time.
    ratio : float or None
        The row's ratio (see ``ratio_text`` for what over what).
    ratio_text : str
        The ratio as shown in the table, naming both sides.
    target : str
        The issue's target for this row, ``""`` if none.
    met : bool or None
        Whether the target is met; ``None`` when there is no target or no number.
    equal : str
        Result check against the reference: ``"✓"``, ``"✗"`` or ``""``.
    peak_mb : float or None
        Peak resident memory of the process that ran the call, in MB.
    note : str
        Anything the reader should know (errors, caveats).
    times : list of float
        Every timed repeat, in seconds.
    key : str
        Stable name of the tool or call (``"pydicom"``, ``"lazydicom.compute"``...),
        for the plot, the summary and the README table; ``""`` for rows they skip.
    summary : str
        The target as listed in the summary table (``""``: not listed there).
    """

    what: str
    seconds: float | None = None
    frames: int | None = None
    ratio: float | None = None
    ratio_text: str = ""
    target: str = ""
    met: bool | None = None
    equal: str = ""
    peak_mb: float | None = None
    note: str = ""
    times: list[float] = field(default_factory=list)
    key: str = ""
    summary: str = ""

    @property
    def per_frame_us(self) -> float | None:
        """Median microseconds per frame, or ``None``."""
        if self.seconds is None or not self.frames:
            return None
        return self.seconds / self.frames * 1e6

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-ready data."""
        data = asdict(self)
        data["per_frame_us"] = self.per_frame_us
        return data


@dataclass(slots=True)
class Timing:
    """Result of :func:`time_call`: the median, every repeat, and the last return value."""

    median: float
    times: list[float]
    result: Any


def time_call(
    fn: Callable[[], Any],
    repeat: int = 3,
    setup: Callable[[], Any] | None = None,
    warmup: int = 0,
) -> Timing:
    """Time ``fn()`` ``repeat`` times with :func:`time.perf_counter`.

    Parameters
    ----------
    fn : callable
        The call to time, without arguments.
    repeat : int
        Number of timed runs; the median is reported.
    setup : callable, optional
        Called before every run (warm-up and timed), outside the timing.
    warmup : int
        Untimed runs before the timed ones.

    Returns
    -------
    Timing
        Median and all times in seconds, and the result of the last run.
    """
    result: Any = None
    for _ in range(warmup):
        if setup is not None:
            setup()
        result = None  # free the previous result before the next run
        result = fn()
    times = []
    for _ in range(max(1, repeat)):
        if setup is not None:
            setup()
        result = None
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), times, result)


def time_interleaved(
    calls: dict[str, Callable[[], Any]],
    repeat: int = 3,
    warmup: int = 1,
    check: Callable[[str, Any], None] | None = None,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> dict[str, Timing]:
    """Time several calls in interleaved rounds; the median of each is reported.

    Every round runs each call once, the order rotating from round to round, so
    that slow drifts of a shared machine (other work starting or stopping) hit
    every call alike and the ratios between them stay meaningful.

    Parameters
    ----------
    calls : dict
        ``{name: call without arguments}``.
    repeat : int
        Timed rounds.
    warmup : int
        Untimed rounds first; the first warm-up result of each call is passed
        to ``check`` (then dropped: timed results are dropped at once, so that
        only one result is alive at a time).
    check : callable, optional
        ``check(name, result)``, after the first warm-up run.
    on_error : callable, optional
        ``on_error(name, exception)`` when a call raises; that call is then
        dropped from the remaining rounds. Without it the exception propagates.

    Returns
    -------
    dict
        ``{name: Timing}`` for the calls that never raised (``Timing.result`` is ``None``).
    """
    alive = dict(calls)
    times: dict[str, list[float]] = {name: [] for name in calls}

    def run(name: str, timed: bool, first: bool) -> None:
        try:
            start = time.perf_counter()
            result = alive[name]()
            elapsed = time.perf_counter() - start
            if first and check is not None:
                check(name, result)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(name, exc)
            del alive[name]
            return
        del result
        if timed:
            times[name].append(elapsed)

    for r in range(max(0, warmup) + max(1, repeat)):
        names = list(alive)
        if names:
            shift = r % len(names)
            names = names[shift:] + names[:shift]
        for name in names:
            if name in alive:
                run(name, timed=r >= warmup, first=r == 0)
    return {
        name: Timing(statistics.median(times[name]), times[name], None)
        for name in alive
        if times[name]
    }


def time_process(
    cmd: list[str],
    repeat: int = 3,
    setup: Callable[[], Any] | None = None,
    warmup: int = 1,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> Timing:
    """Time a command as a subprocess, end to end (start-up included), ``repeat`` times.

    ``setup`` runs before every run, outside the timing. A run that exits
    with a code not in ``ok_codes`` raises ``RuntimeError`` with the last line
    it printed to stderr. ``Timing.result`` is the list of the timed runs'
    standard outputs, each followed by its standard error when the exit code was not 0.
    """
    times: list[float] = []
    outputs: list[str] = []
    for r in range(max(0, warmup) + max(1, repeat)):
        if setup is not None:
            setup()
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, check=False, env=env, cwd=cwd
        )
        elapsed = time.perf_counter() - start
        if proc.returncode not in ok_codes:
            lines = (proc.stderr or proc.stdout or "").strip().splitlines()
            raise RuntimeError(
                f"{os.path.basename(cmd[0])} exited with {proc.returncode}: "
                + (lines[-1] if lines else "no output")
            )
        if r >= warmup:
            times.append(elapsed)
            outputs.append(proc.stdout + (proc.stderr if proc.returncode else ""))
    return Timing(statistics.median(times), times, outputs)


def fmt_ratio(value: float) -> str:
    """Format a ratio with about two significant digits: ``0.73``, ``4.2``, ``27``."""
    if value >= 10:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"


def error_row(what: str, exc: BaseException, target: str = "", verbose: bool = False) -> Row:
    """Return the row of a measurement that raised ``exc``."""
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    message = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "/")
    if len(message) > 160:
        message = message[:157] + "..."
    return Row(what=what, ratio_text=NA_ERROR, target=target, note=message)


def equal_mark(result: Any, reference: np.ndarray) -> tuple[str, str]:
    """Compare a result with the reference array.

    Returns
    -------
    mark : str
        ``"✓"`` if ``np.array_equal``, else ``"✗"``.
    note : str
        Why not, when it is not equal (shape, dtype or values).
    """
    try:
        arr = np.asarray(result)
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check
        return "✗", f"result not an array ({type(exc).__name__})"
    if arr.shape != reference.shape:
        return "✗", f"shape {arr.shape} != {reference.shape}"
    if np.array_equal(arr, reference):
        return "✓", ""
    if arr.dtype != reference.dtype and np.can_cast(arr.dtype, np.int64):
        wrapped = arr.astype(reference.dtype)
        if np.array_equal(wrapped, reference):
            return "✗", (
                f"dtype {arr.dtype}: values > {np.iinfo(arr.dtype).max} wrapped "
                f"(layout correct after casting back to {reference.dtype})"
            )
    wrong = int(np.count_nonzero(arr != reference))
    return "✗", f"{wrong} of {arr.size} values differ"


def unordered_frames_mark(
    frames: list[np.ndarray], reference: np.ndarray, flips: bool = False
) -> tuple[str, str]:
    """Check that ``frames`` are the reference's frames, in any order (and flipped, if allowed).

    For tools that sort frames their own way (by position rather than by the
    attribute the reference is sorted on) or write them in another
    orientation (dcm2niix flips rows into NIfTI's convention). ``frames`` are
    ``(x, y)`` arrays; ``reference`` is ``(x, y, *grid)``. With ``flips``,
    a frame also matches a reference frame flipped along either axis.

    Returns
    -------
    mark, note : str
        As :func:`equal_mark`.
    """
    ref = reference.reshape(reference.shape[0], reference.shape[1], -1, order="F")
    if len(frames) != ref.shape[2]:
        return "✗", f"{len(frames)} frames, expected {ref.shape[2]}"

    def digest(frame: np.ndarray) -> bytes:
        return np.ascontiguousarray(frame, dtype=np.float64).tobytes()

    wanted: dict[bytes, int] = {}
    for k in range(ref.shape[2]):
        key = hashlib.sha1(digest(ref[:, :, k])).digest()
        wanted[key] = wanted.get(key, 0) + 1
    flipped = 0
    for frame in frames:
        frame = np.asarray(frame)
        if frame.shape != ref.shape[:2]:
            return "✗", f"frame shape {frame.shape} != {ref.shape[:2]}"
        candidates = [frame]
        if flips:
            candidates += [frame[:, ::-1], frame[::-1, :], frame[::-1, ::-1]]
        for i, candidate in enumerate(candidates):
            key = hashlib.sha1(digest(candidate)).digest()
            if wanted.get(key):
                wanted[key] -= 1
                flipped += i > 0
                break
        else:
            return "✗", "a frame matches no frame of the reference"
    note = "frames equal, order not checked" + (f", {flipped} flipped" if flipped else "")
    return "✓", note


def import_lazydicom() -> Any:
    """Import lazydicom from this repository (raises whatever the import raises)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import lazydicom

    return lazydicom


#: pydicom's global options that peers change when imported.
_PYDICOM_OPTIONS = (
    "datetime_conversion",
    "use_DS_numpy",
    "use_IS_numpy",
    "use_DS_decimal",
    "settings.reading_validation_mode",
    "settings.writing_validation_mode",
)


def pydicom_state() -> dict[str, Any]:
    """Return pydicom's global options that peers are known to change."""
    import pydicom.config

    state = {}
    for name in _PYDICOM_OPTIONS:
        owner, _, attr = name.rpartition(".")
        obj = pydicom.config.settings if owner else pydicom.config
        state[attr] = getattr(obj, attr)
    return state


def set_pydicom_state(state: dict[str, Any]) -> None:
    """Set pydicom's global options from :func:`pydicom_state`'s result."""
    import pydicom.config

    for name in _PYDICOM_OPTIONS:
        owner, _, attr = name.rpartition(".")
        setattr(pydicom.config.settings if owner else pydicom.config, attr, state[attr])


#: pydicom's options as they were when the benchmarks were imported, before any peer.
PYDICOM_DEFAULTS = pydicom_state()


@contextlib.contextmanager
def pydicom_config(**changes: Any) -> Iterator[None]:
    """Run the block with pydicom's default options plus ``changes``, then restore the defaults.

    Peers change pydicom's global options when imported: dbdicom 0.3 sets
    ``pydicom.config.datetime_conversion = True`` (which makes every header
    parse slower, for every library in the process) and imagedata sets
    ``settings.reading_validation_mode = IGNORE``. Each measurement runs inside
    this context so that no tool runs with another tool's options: a peer passes
    the options it sets itself, everything else runs with the defaults.

    Parameters
    ----------
    **changes
        Option name (last part, e.g. ``datetime_conversion`` or
        ``reading_validation_mode``) to value.
    """
    set_pydicom_state({**PYDICOM_DEFAULTS, **changes})
    try:
        yield
    finally:
        set_pydicom_state(PYDICOM_DEFAULTS)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence stdout and stderr (progress bars of the peers) inside the block."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "lazydicom"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    """Return the machine and software versions the numbers were measured with."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "lazydicom_git": _git_revision(),
        "versions": {
            name: _version(name)
            for name in (
                "pydicom",
                "numpy",
                "dask",
                "zarr",
                "pandas",
                "dbdicom",
                "SimpleITK",
                "imagedata",
                "pylibjpeg",
                "pylibjpeg-libjpeg",
                "imagecodecs",
                "python-gdcm",
            )
        },
    }


def _fmt_seconds(row: Row) -> str:
    return "" if row.seconds is None else f"{row.seconds:.3f}"


def _fmt_us(row: Row) -> str:
    us = row.per_frame_us
    if us is None:
        return ""
    return f"{us:,.0f}" if us >= 10 else f"{us:.1f}"


def _fmt_met(row: Row) -> str:
    if row.met is None:
        return "n/a" if row.target and row.ratio is None else ""
    return "yes" if row.met else "NO"


def markdown_table(rows: list[Row]) -> str:
    """Render rows as a markdown table; columns nobody uses are left out."""
    columns: list[tuple[str, Callable[[Row], str]]] = [("what", lambda r: r.what)]
    if any(r.frames for r in rows):
        columns.append(("per frame (us)", _fmt_us))
    if any(r.seconds is not None for r in rows):
        columns.append(("total (s)", _fmt_seconds))
    if any(r.peak_mb is not None for r in rows):
        columns.append(
            ("peak RSS (MB)", lambda r: "" if r.peak_mb is None else f"{r.peak_mb:,.0f}")
        )
    columns.append(("ratio", lambda r: r.ratio_text))
    columns.append(("target", lambda r: r.target))
    columns.append(("met?", _fmt_met))
    if any(r.equal for r in rows):
        columns.append(("equal", lambda r: r.equal))
    if any(r.note for r in rows):
        columns.append(("note", lambda r: r.note))
    lines = [
        "| " + " | ".join(name for name, _ in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row) for _, fmt in columns) + " |")
    return "\n".join(lines)
