"""Reading a whole series with every tool: the engine of the read, ct and jpeg groups.

A group lists its :class:`Tool` s (what each does, how its result is checked)
and its :class:`Target` s (issue targets, each a ratio of two tools' times);
:func:`run_tools` times them and returns one :class:`~benchmarks.common.Row`
per tool, and :func:`apply_targets` writes the ratios into the rows.

Timing:

- the tools the targets compare (reading the bytes, the raw-read limit, the
  pydicom loop, lazydicom's calls) run in interleaved rounds (every tool once
  per round, the order rotating; :func:`benchmarks.common.time_interleaved`),
  at least :data:`MIN_ROUNDS` of them, after one untimed warm-up round whose
  results are checked against the reference;
- the other in-process peers (SimpleITK, highdicom) are then timed alone,
  ``repeat`` runs after one warm-up run, not inside the rounds: on this
  virtual machine a large allocation right after SimpleITK or highdicom
  returns spends up to ten times longer in the kernel (page faults), which
  made the lazydicom call that followed them 2-5x slower than in any other
  position (0.36 s against 0.03 s of system time for the same compute);
- slow peers (dbdicom, imagedata: seconds per run) are timed alone,
  ``min(repeat, 2)`` runs after one warm-up run;
- commands (dcm2niix, a fresh lazydicom process) are timed as subprocesses,
  end to end (interpreter start-up and imports included), after one warm-up run.

Every in-process call runs with pydicom's default options
(:func:`benchmarks.common.pydicom_config`); peers set their own inside their call.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import peers
from .common import (
    REPO,
    Row,
    Timing,
    equal_mark,
    error_row,
    fmt_ratio,
    pydicom_config,
    time_call,
    time_interleaved,
    time_process,
    unordered_frames_mark,
)

__all__ = [
    "Tool",
    "Target",
    "run_tools",
    "apply_targets",
    "array_check",
    "mean_check",
    "lazydicom_tools",
    "dcm2niix_tool",
]

Check = Callable[[Any], tuple[str, str]]

#: Interleaved rounds at least (they are cheap; on a loaded machine single runs of
#: the same call differ by up to 5x, so the median needs more than three).
MIN_ROUNDS = 5
#: A row whose slowest run took this many times its fastest notes the spread.
SPREAD_NOTE = 1.5


@dataclass(slots=True)
class Tool:
    """One row of a full-read table: a call (or a command) and how to check its result.

    Attributes
    ----------
    key : str
        Stable name (``"pydicom"``, ``"lazydicom.compute"``...), see
        :class:`~benchmarks.common.Row`.
    what : str
        Row label.
    call : callable, optional
        The in-process call to time.
    check : callable, optional
        ``check(result) -> (equal mark, note)``; for a command, ``check(stdout of
        its first run)`` after all runs.
    alone : bool
        Timed alone (``repeat`` runs), not in the interleaved rounds.
    slow : bool
        Seconds per run: timed alone, ``min(repeat, 2)`` runs.
    command : list of str, optional
        A command timed as a subprocess instead of ``call``.
    setup : callable, optional
        Before every run of ``command`` (outside the timing).
    ok_codes : tuple of int
        Exit codes of ``command`` that are timed rather than an error.
    note : str
        Shown in the row's note.
    """

    key: str
    what: str
    call: Callable[[], Any] | None = None
    check: Check | None = None
    alone: bool = False
    slow: bool = False
    command: list[str] | None = None
    setup: Callable[[], Any] | None = None
    ok_codes: tuple[int, ...] = (0,)
    note: str = ""


@dataclass(slots=True)
class Target:
    """An issue target: ``time(num) / time(den)`` compared with ``goal``.

    The ratio is shown on the row of ``row`` as ``"num / den = ratio"``.
    ``at_least``: met when the ratio is >= ``goal`` (e.g. pydicom loop /
    lazydicom >= 5, lazydicom is 5x faster), else when it is <= ``goal``
    (e.g. lazydicom / numpy() <= 1.5).
    """

    summary: str
    row: str
    num: str
    den: str
    goal: float
    at_least: bool = True


def array_check(reference: np.ndarray, any_order: bool = False, flips: bool = False) -> Check:
    """A check comparing a result with ``reference`` value for value.

    ``any_order``: when the values differ, accept the reference's frames in
    another order (tools that sort by position), and with ``flips`` flipped.
    """

    def check(result: Any) -> tuple[str, str]:
        mark, note = equal_mark(result, reference)
        if mark == "✓" or not any_order:
            return mark, note
        arr = np.asarray(result)
        frames = arr.reshape(arr.shape[0], arr.shape[1], -1, order="F")
        return unordered_frames_mark(
            [frames[:, :, k] for k in range(frames.shape[2])], reference, flips=flips
        )

    return check


def mean_check(reference: np.ndarray) -> Check:
    """A check of a mean against the reference's (float64, relative tolerance 1e-6)."""
    expected = float(reference.mean(dtype=np.float64))

    def check(result: Any) -> tuple[str, str]:
        value = float(np.asarray(result))
        if abs(value - expected) <= 1e-6 * max(1.0, abs(expected)):
            return "✓", ""
        return "✗", f"mean {value!r}, expected {expected!r}"

    return check


def _process_check(reference: np.ndarray) -> Check:
    digest = hashlib.sha1(np.asfortranarray(reference).tobytes(order="F")).hexdigest()

    def check(outputs: Any) -> tuple[str, str]:
        lines = str(outputs[0] if outputs else "").strip().splitlines()
        if not lines:
            return "✗", "the child printed nothing"
        got = json.loads(lines[-1])
        if "sha1" not in got:
            return "✗", "the child printed no digest"
        if tuple(got["shape"]) != reference.shape or got["dtype"] != str(reference.dtype):
            return "✗", f"shape {got['shape']} {got['dtype']}, expected {reference.shape}"
        return ("✓", "") if got["sha1"] == digest else ("✗", "values differ")

    return check


#: The fresh-process lazydicom call: open the folder (cold index), compute the series;
#: it prints how long each step took (and, when asked, a digest of the result).
_CHILD = """\
import time
t0 = time.perf_counter()
import hashlib, json, sys
import numpy as np
import lazydicom
import dask.array
t1 = time.perf_counter()
folder, filters, dims = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
(series,) = lazydicom.open(folder, progress=False).series(**filters)
t2 = time.perf_counter()
arr = series.ndarray(dims=tuple(dims)).compute()
t3 = time.perf_counter()
out = {"imports": t1 - t0, "open": t2 - t1, "compute": t3 - t2}
if sys.argv[4] == "1":
    out.update(shape=arr.shape, dtype=str(arr.dtype),
               sha1=hashlib.sha1(np.asfortranarray(arr).tobytes(order="F")).hexdigest())
print(json.dumps(out))
"""


def _stages(outputs: list[str], times: list[float]) -> str:
    """The steps of the fresh-process run whose total was the median, as a note.

    (Medians of each step need not add up to the median total, so one run is shown.)
    """
    runs = []
    for text, total in zip(outputs, times):
        lines = text.strip().splitlines()
        if lines:
            steps = {k: v for k, v in json.loads(lines[-1]).items() if isinstance(v, float)}
            runs.append((total, steps))
    if not runs:
        return ""
    total, steps = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    names = {"imports": "imports", "open": "cold index", "compute": "compute"}
    parts = [f"{names.get(k, k)} {v:.2f} s" for k, v in steps.items()]
    rest = total - sum(steps.values())
    return (f"the median run: {total:.2f} s, of which " + ", ".join(parts)
            + f", interpreter start-up and exit {rest:.2f} s")


def _child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "TQDM_DISABLE": "1"}


def lazydicom_tools(
    series: Any,
    folder: Path,
    filters: dict[str, Any],
    dims: Sequence[str],
    reference: np.ndarray,
    mean: bool = True,
    process: bool = True,
) -> list[Tool]:
    """The lazydicom rows: ``ndarray(dims).compute()``, ``numpy(dims)``, the streamed mean,
    and the same compute in a fresh process (``python -c``: imports, cold index of
    ``folder``, ``db.series(**filters)``, compute), timed end to end like dcm2niix.
    """
    dims = tuple(dims)
    tools = [
        Tool(
            "lazydicom.compute",
            "lazydicom ndarray(dims).compute()",
            lambda: series.ndarray(dims=dims).compute(),
            array_check(reference),
        ),
        Tool("lazydicom.numpy", "lazydicom numpy(dims)", lambda: series.numpy(dims=dims),
             array_check(reference)),
    ]
    if mean:
        tools.append(
            Tool(
                "lazydicom.mean",
                "lazydicom ndarray(dims).mean().compute() (streamed)",
                lambda: series.ndarray(dims=dims).mean().compute(),
                mean_check(reference),
            )
        )
    if process:
        args = [json.dumps(filters), json.dumps(list(dims))]
        tools.append(
            Tool(
                "lazydicom.process",
                "lazydicom in a fresh process: python -c 'open(folder) + ndarray(dims).compute()'",
                command=[sys.executable, "-c", _CHILD, str(folder), *args, "0"],
                setup=lambda: shutil.rmtree(Path(folder) / ".lazydicom", ignore_errors=True),
                check=_process_check(reference),
                note="end to end",
            )
        )
    return tools


def dcm2niix_tool(
    folder: Path, out: Path, reference: np.ndarray, options: Sequence[str] = (), why: str = ""
) -> Tool:
    """``dcm2niix -z n [OPTIONS] -o OUT FOLDER`` as a timed subprocess; its NIfTI frames
    checked against the reference in any order, flips allowed (NIfTI's row order).
    ``why`` explains ``options`` in the row's note."""
    out = Path(out)

    def setup() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

    def check(outputs: Any) -> tuple[str, str]:
        mark, note = unordered_frames_mark(peers.nifti_frames(out), reference, flips=True)
        errors = sorted({line.strip() for text in outputs or () for line in text.splitlines()
                         if line.strip().startswith("Error")})
        if errors:
            note = _join(f"dcm2niix: {'; '.join(errors)[:160]}", note)
        return mark, note

    what = f"dcm2niix -z n {' '.join(options)}{' ' if options else ''}-o OUT FOLDER"
    try:
        command = peers.dcm2niix_command(folder, out, options)
    except FileNotFoundError as exc:
        return Tool("dcm2niix", what, note=f"skipped: {exc}")
    return Tool(
        "dcm2niix",
        f"{what}: convert to NIfTI, as a subprocess",
        command=command,
        setup=setup,
        check=check,
        ok_codes=(0, 8),  # 8: some files not converted (the check then fails and says why)
        note=_join("end to end: process start-up, reading, writing the .nii files", why),
    )


def _row(tool: Tool, t: Timing, frames: int) -> Row:
    note = tool.note
    if t.times and min(t.times) > 0 and max(t.times) / min(t.times) > SPREAD_NOTE:
        low, high = (1e6 * x / frames for x in (min(t.times), max(t.times)))
        note = _join(note, f"runs spread {low:,.0f}-{high:,.0f} us/frame")
    return Row(tool.what, t.median, frames, times=t.times, key=tool.key, note=note)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def run_tools(tools: list[Tool], repeat: int, frames: int, verbose: bool = False) -> list[Row]:
    """Time every tool (see the module docstring); one row per tool, in the tools' order."""
    rows: dict[str, Row] = {}
    errors: dict[str, BaseException] = {}
    marks: dict[str, tuple[str, str]] = {}
    fast = {t.key: t for t in tools
            if t.call is not None and not (t.slow or t.alone) and t.command is None}

    def check(key: str, result: Any) -> None:
        if fast[key].check is not None:
            marks[key] = fast[key].check(result)

    def guarded(call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with pydicom_config():
                return call()

        return run

    timings = time_interleaved(
        {k: guarded(t.call) for k, t in fast.items() if t.call is not None},
        max(repeat, MIN_ROUNDS),
        warmup=1,
        check=check,
        on_error=errors.__setitem__,
    )
    for key, t in timings.items():
        rows[key] = _row(fast[key], t, frames)
    rest = [t for t in tools if t.alone] + [t for t in tools if not t.alone]
    for tool in rest:
        if tool.key in rows or tool.key in errors:
            continue
        try:
            if tool.command is not None:
                t = time_process(tool.command, repeat, setup=tool.setup, env=_child_env(),
                                 cwd=REPO, ok_codes=tool.ok_codes)
                if tool.key == "lazydicom.process" and tool.check is not None:
                    tool.note = _join(tool.note, _stages(t.result, t.times))
                    # one more, untimed run that prints the digest of the result
                    t_check = time_process(tool.command[:-1] + ["1"], 1, setup=tool.setup,
                                           warmup=0, env=_child_env(), cwd=REPO)
                    marks[tool.key] = tool.check(t_check.result)
                elif tool.check is not None:
                    marks[tool.key] = tool.check(t.result)
            elif tool.call is not None:
                with pydicom_config():
                    t = time_call(tool.call, min(repeat, 2) if tool.slow else repeat, warmup=1)
                if tool.check is not None:
                    marks[tool.key] = tool.check(t.result)
                t.result = None
            else:
                rows[tool.key] = Row(tool.what, key=tool.key, note=tool.note)
                continue
            rows[tool.key] = _row(tool, t, frames)
        except Exception as exc:  # noqa: BLE001 - a failed tool is a row, not a crash
            errors[tool.key] = exc
    for key, exc in errors.items():
        tool = next(t for t in tools if t.key == key)
        rows[key] = error_row(tool.what, exc, verbose=verbose)
        rows[key].key = key
    for key, (mark, note) in marks.items():
        if key in rows:
            rows[key].equal = mark
            rows[key].note = _join(note, rows[key].note)
    return [rows[t.key] for t in tools if t.key in rows]


_SHORT = {
    "bytes": "bytes read",
    "sitk": "SimpleITK",
    "highdicom": "highdicom",
    "highdicom.volume": "highdicom volume",
    "imagedata": "imagedata",
    "limit": "raw-read limit",
    "pydicom": "pydicom loop",
    "dbdicom": "dbdicom",
    "dcm2niix": "dcm2niix (process)",
    "lazydicom.compute": "ndarray().compute()",
    "lazydicom.numpy": "numpy()",
    "lazydicom.mean": "mean().compute()",
    "lazydicom.process": "lazydicom (process)",
}


def short_name(key: str) -> str:
    """A short label for a row key, as used in ratio texts."""
    return _SHORT.get(key, key)


def apply_targets(
    rows: list[Row],
    targets: list[Target],
    floor: str = "bytes",
    compare: dict[str, str] | None = None,
) -> None:
    """Write targets, ratios and met/not met into the rows.

    Every timed row also gets its time relative to the ``floor`` row (reading
    the files' bytes), and a row without a target whose key is in ``compare``
    its time relative to that row (for the reader, no target; by default peers
    against ``ndarray().compute()``, commands against the fresh lazydicom process).
    """
    if compare is None:
        compare = dict.fromkeys(("pydicom", "dbdicom", "sitk", "highdicom", "highdicom.volume",
                                 "imagedata"), "lazydicom.compute")
        compare["dcm2niix"] = "lazydicom.process"
    by_key = {r.key: r for r in rows if r.key}
    base = by_key.get(floor)
    targeted = {t.row for t in targets}
    for row in rows:
        if base is not None and base.seconds and row.seconds is not None and row is not base:
            row.ratio_text = f"{fmt_ratio(row.seconds / base.seconds)}x {short_name(floor)}"
        elif row is base and row.seconds is not None:
            row.ratio_text = "1 (floor)"
        other = by_key.get(compare.get(row.key, ""))
        if row.key not in targeted and other is not None and other.seconds and row.seconds:
            text = (f"{short_name(row.key)} / {short_name(other.key)} = "
                    f"{fmt_ratio(row.seconds / other.seconds)}")
            row.ratio_text = _join(text, row.ratio_text)
    for target in targets:
        row = by_key.get(target.row)
        if row is None:
            continue
        sign = ">=" if target.at_least else "<="
        row.target = f"{short_name(target.num)} / {short_name(target.den)} {sign} {target.goal:g}"
        row.summary = target.summary
        num, den = by_key.get(target.num), by_key.get(target.den)
        if num is None or den is None or num.seconds is None or not den.seconds:
            row.ratio = None
            row.met = None
            continue
        ratio = num.seconds / den.seconds
        row.ratio = ratio
        row.met = ratio >= target.goal if target.at_least else ratio <= target.goal
        text = f"{short_name(target.num)} / {short_name(target.den)} = {fmt_ratio(ratio)}"
        if target.den == floor:
            row.ratio_text = text
        else:
            row.ratio_text = _join(text, row.ratio_text)
