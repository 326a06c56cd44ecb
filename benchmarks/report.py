"""What a run's results become: the targets table, the plot, and the generated parts of the docs.

Everything here works on the results payload that ``python -m benchmarks``
writes as JSON (``benchmarks/results/latest.json``), so the docs can be
regenerated from a saved run: ``python -m benchmarks --from-results FILE
--plot --docs``.

- :func:`targets_table`: every row with a target, the issue-8 ones first,
  with the measured ratio and met / not met;
- :func:`plot_read`: per-frame time of every tool on each full-read data set
  (groups ``read``, ``ct``, ``jpeg``), a bar chart (matplotlib);
- :func:`plot_scale`: time and memory against frames, log-log (group ``scale``);
- :func:`plot_extract`: files per second of each extraction tool per folder
  (group ``extract``);
- :func:`update_docs`: rewrites the generated blocks of ``docs/benchmarks.md``
  (targets and results), of ``README.md`` (the Performance table) and of
  ``docs/semantics.md`` (the layout table of "Memory order"), between
  ``<!-- begin: NAME -->`` and ``<!-- end: NAME -->`` markers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import REPO, fmt_ratio

__all__ = [
    "PLOT_GROUPS",
    "iter_rows",
    "find_row",
    "targets_table",
    "merge_payloads",
    "plot_read",
    "plot_scale",
    "plot_extract",
    "readme_table",
    "layout_table",
    "replace_block",
    "update_docs",
]

#: Groups in the plot, with the data set's name.
PLOT_GROUPS = {
    "read": "MR, uncompressed 256x256 uint16",
    "ct": "CT, uncompressed 512x512 int16 + rescale",
    "jpeg": "CT, JPEG Lossless 512x512",
}

#: Row keys in the plot, in order, with their labels.
PLOT_TOOLS = {
    "bytes": "read the files' bytes",
    "limit": "raw-read limit",
    "pydicom": "pydicom loop",
    "dbdicom": "dbdicom 0.3",
    "sitk": "SimpleITK",
    "highdicom": "highdicom imread/get_frame",
    "highdicom.volume": "highdicom get_volume_from_series",
    "imagedata": "imagedata",
    "dcm2niix": "dcm2niix (process, writes NIfTI)",
    "lazydicom.process": "lazydicom (fresh process)",
    "lazydicom.numpy": "lazydicom numpy()",
    "lazydicom.compute": "lazydicom ndarray().compute()",
    "lazydicom.mean": "lazydicom ndarray().mean().compute()",
}

ISSUE_TAG = "(#8)"


def iter_rows(payload: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(group, row)`` for every row of the run, in run order."""
    for group, data in payload.get("groups", {}).items():
        for row in data.get("rows", []):
            yield group, row


def find_row(payload: dict[str, Any], group: str, key: str) -> dict[str, Any] | None:
    """The row with ``key`` in ``group``, or ``None``."""
    for g, row in iter_rows(payload):
        if g == group and row.get("key") == key:
            return row
    return None


def _met(row: dict[str, Any]) -> str:
    if row.get("met") is None:
        return "n/a"
    return "yes" if row["met"] else "**no**"


def targets_table(payload: dict[str, Any]) -> str:
    """The targets of the run as a markdown table: issue 8's first, then the others."""
    found = [(g, r) for g, r in iter_rows(payload) if r.get("target")]
    found.sort(key=lambda item: ISSUE_TAG not in (item[1].get("summary") or ""))
    lines = [
        "| target | group | measured | that row's time per frame (us) | met |",
        "|---|---|---|---|---|",
    ]
    for group, row in found:
        label = row.get("summary") or f"{row['what']}: {row['target']}"
        measured = (row.get("ratio_text") or "").split("; ")[0] or "n/a"
        if row.get("ratio") is None and not row.get("ratio_text") and row.get("note"):
            measured = f"n/a ({row['note'][:80]})"
        per_frame = row.get("per_frame_us")
        us = "" if per_frame is None else f"{per_frame:,.0f}"
        lines.append(f"| {label} | {group} | {measured} | {us} | {_met(row)} |")
    loads = [f"{group} {data['load_average']:.1f}"
             for group, data in payload.get("groups", {}).items()
             if data.get("load_average") is not None]
    if loads:
        lines += ["", "Load average (1 minute) at the start of each group: " + ", ".join(loads)
                  + " (2 cores; above about 0.7 other work was running and the ratios are "
                  "suspect)."]
    return "\n".join(lines)


def _save(fig: Any, path: Path) -> Path:
    """Write a figure as PNG (folders created) and free it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_read(payload: dict[str, Any], path: Path) -> Path:
    """Bar chart of per-frame time per tool per data set; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for group, title in PLOT_GROUPS.items():
        bars = []
        for key, label in PLOT_TOOLS.items():
            row = find_row(payload, group, key)
            if row is not None and row.get("per_frame_us"):
                bars.append((label, row["per_frame_us"], key))
        if bars:
            frames = find_row(payload, group, bars[0][2]) or {}
            panels.append((f"{title} ({frames.get('frames', '?')} frames)", bars))
    if not panels:
        raise ValueError("no full-read rows in these results: run the read, ct or jpeg group")
    height = sum(0.9 + 0.32 * len(bars) for _, bars in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, height), squeeze=False)
    for ax, (title, bars) in zip(axes[:, 0], panels):
        labels = [b[0] for b in bars][::-1]
        values = [b[1] for b in bars][::-1]
        keys = [b[2] for b in bars][::-1]
        colours = [
            "#1f77b4" if k.startswith("lazydicom") else "#bbbbbb" if k in ("bytes", "limit")
            else "#ff7f0e" for k in keys
        ]
        hatches = ["//" if k in ("dcm2niix", "lazydicom.process") else "" for k in keys]
        drawn = ax.barh(labels, values, color=colours)
        for bar, hatch in zip(drawn, hatches):
            bar.set_hatch(hatch)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=10, loc="left")
        ax.tick_params(axis="y", labelsize=8)
        ax.tick_params(axis="x", labelsize=8)
        for y, value in enumerate(values):
            text = f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
            ax.text(value * 1.05, y, text, va="center", fontsize=7)
        ax.set_xlim(min(values) / 2, max(values) * 4)
    axes[-1, 0].set_xlabel("time per frame (us, log scale); hatched: a whole process, end to end")
    created = payload.get("created", "")
    load = ", ".join(
        f"{g} {payload['groups'][g].get('load_average') or 0:.1f}"
        for g in PLOT_GROUPS if g in payload.get("groups", {})
    )
    fig.suptitle(f"Full read of a series, per frame ({created}; load average at start: {load})",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return _save(fig, path)


def _group_rows(payload: dict[str, Any], group: str) -> list[dict[str, Any]]:
    return list(payload.get("groups", {}).get(group, {}).get("rows", []))


def _scale_points(payload: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """``{measure: [(frames, value), ...]}`` from the scale group's rows."""
    measures = {
        "cold index": "cold index (s)",
        "reopen, nothing changed": "reopen (s)",
        "build ndarray over every cell": "build ndarray (s)",
        "compute one cell": "one cell (s)",
    }
    points: dict[str, list[tuple[int, float]]] = {}
    for row in _group_rows(payload, "scale"):
        head, _, what = row["what"].partition(" frames: ")
        try:
            n = int(head.replace(",", ""))
        except ValueError:
            continue
        if what in measures and row.get("seconds") is not None:
            points.setdefault(measures[what], []).append((n, row["seconds"]))
        elif what.startswith("peak RSS") and row.get("peak_mb") is not None:
            points.setdefault("peak RSS (MB)", []).append((n, row["peak_mb"]))
    return {k: sorted(v) for k, v in points.items()}


def plot_scale(payload: dict[str, Any], path: Path) -> Path:
    """Log-log plot of the scale group: seconds and peak memory against frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = _scale_points(payload)
    if not points:
        raise ValueError("no scale rows in these results: run the scale group")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, pts in points.items():
        ax = right if name.endswith("(MB)") else left
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
    for ax, ylabel in ((left, "seconds"), (right, "peak RSS of open + ndarray (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("frames (single-frame files)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    group = payload.get("groups", {}).get("scale", {})
    created = group.get("created", payload.get("created", ""))
    fig.suptitle(f"Scale ({created}; load average at start "
                 f"{group.get('load_average') or 0:.1f})", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, path)


def plot_extract(payload: dict[str, Any], path: Path) -> Path:
    """Bar chart of the extract group: files per second of each tool on each folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[tuple[str, float]]] = {}
    for row in _group_rows(payload, "extract"):
        folder, sep, tool = row["what"].rpartition(": ")
        if not sep or not row.get("seconds") or not row.get("frames"):
            continue
        panels.setdefault(folder, []).append((tool, row["frames"] / row["seconds"]))
    if not panels:
        raise ValueError("no extraction rows in these results: run the extract group")
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.2 + 1.1 * len(panels) * 1.4),
                             squeeze=False)
    for ax, (folder, bars) in zip(axes[:, 0], panels.items()):
        labels = [b[0] for b in bars][::-1]
        values = [b[1] for b in bars][::-1]
        colours = ["#1f77b4" if lab.startswith("lazydicom") else "#ff7f0e" for lab in labels]
        ax.barh(labels, values, color=colours)
        ax.set_title(folder, fontsize=10, loc="left")
        ax.tick_params(labelsize=8)
        for y, value in enumerate(values):
            ax.text(value * 1.01, y, f"{value:,.0f}", va="center", fontsize=7)
        ax.set_xlim(0, max(values) * 1.15)
    axes[-1, 0].set_xlabel("files per second, fresh process, end to end (higher is better)")
    group = payload.get("groups", {}).get("extract", {})
    created = group.get("created", payload.get("created", ""))
    fig.suptitle(f"Batch extraction ({created}; load average at start "
                 f"{group.get('load_average') or 0:.1f})", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return _save(fig, path)


def _us(row: dict[str, Any] | None) -> str:
    if row is None or row.get("per_frame_us") is None:
        return "n/a"
    value = row["per_frame_us"]
    return f"{value:,.0f} us" if value >= 10 else f"{value:.1f} us"


def _times(row: dict[str, Any] | None, than: dict[str, Any] | None) -> str | None:
    if not row or not than or not row.get("seconds") or not than.get("seconds"):
        return None
    return fmt_ratio(row["seconds"] / than["seconds"])


def _peers(payload: dict[str, Any], group: str, lazy: dict[str, Any] | None,
           keys: tuple[str, ...] = ("pydicom", "dbdicom", "sitk", "highdicom")) -> str:
    names = {"pydicom": "pydicom loop", "dbdicom": "dbdicom 0.3", "sitk": "SimpleITK",
             "highdicom": "highdicom"}
    parts = []
    for key in keys:
        ratio = _times(find_row(payload, group, key), lazy)
        if ratio is not None:
            parts.append(f"{names[key]} {ratio}x")
    return ", ".join(parts) + (" slower" if parts else "")


def readme_table(payload: dict[str, Any]) -> str:
    """The README's Performance table, from the run's rows (lines without data are left out)."""
    lines = ["| | lazydicom | compared with |", "|---|---|---|"]

    def add(what: str, lazy: str, compared: str) -> None:
        lines.append(f"| {what} | {lazy} | {compared} |")

    cold = find_row(payload, "index", "lazydicom")
    if cold:
        compared = []
        for key, name in (("pydicom", "pydicom header loop"), ("dbdicom", "dbdicom 0.3")):
            ratio = _times(find_row(payload, "index", key), cold)
            if ratio:
                compared.append(f"{name} {ratio}x slower")
        add("cold index", f"{_us(cold)}/file", ", ".join(compared))
    reopen = find_row(payload, "index", "lazydicom-reopen")
    if reopen and reopen.get("seconds") is not None:
        opened = ", no DICOM file opened" if str(reopen.get("equal", "")).startswith("✓") else ""
        add("reopen, nothing changed",
            f"{reopen['seconds'] * 1e3:.0f} ms ({reopen['ratio_text']}){opened}", "")
    for group, label in (("read", "MR 256x256"), ("ct", "CT 512x512 + rescale"),
                         ("jpeg", "JPEG Lossless CT")):
        lazy = find_row(payload, group, "lazydicom.compute")
        if not lazy or lazy.get("seconds") is None:
            continue
        base = find_row(payload, group, "bytes")
        extra = f", {_times(lazy, base)}x reading the bytes" if _times(lazy, base) else ""
        numpy = find_row(payload, group, "lazydicom.numpy")
        if _times(lazy, numpy):
            extra += f", {_times(lazy, numpy)}x `numpy()`"
        add(f"full read, {label}: `ndarray(dims).compute()`", f"{_us(lazy)}/frame{extra}",
            _peers(payload, group, lazy))
        mean = find_row(payload, group, "lazydicom.mean")
        if mean and _times(mean, base):
            add(f"streamed `ndarray(dims).mean().compute()`, {label}", f"{_us(mean)}/frame",
                f"{_times(mean, base)}x reading the files' bytes")
        process, dcm2niix = (find_row(payload, group, k) for k in ("lazydicom.process",
                                                                   "dcm2niix"))
        if _times(dcm2niix, process):
            add(f"{label}, a fresh process, end to end", f"{_us(process)}/frame",
                f"dcm2niix (to NIfTI) / lazydicom = {_times(dcm2niix, process)}; "
                f"against lazydicom in-process: {_times(dcm2niix, lazy)}")
    select = find_row(payload, "select", "select")
    if select and select.get("ratio_text"):
        add("selecting 1/k of the frames", select["ratio_text"], "")
    memory = find_row(payload, "memory", "memory.lazydicom")
    if memory and memory.get("peak_mb"):
        dbd = find_row(payload, "memory", "memory.dbdicom")
        size = find_row(payload, "memory", "memory.size")
        other = f"dbdicom {dbd['peak_mb']:,.0f} MB" if dbd and dbd.get("peak_mb") else ""
        gb = f"{size['peak_mb'] / 1e3:.1f} GB" if size and size.get("peak_mb") else "large"
        add(f"streamed mean of a {gb} series", f"{memory['peak_mb']:,.0f} MB peak RSS", other)
    warm = find_row(payload, "cache", "cache.ndarray.warm")
    if warm and warm.get("ratio_text"):
        add("JPEG Lossless CT, warm zarr cache, `ndarray().compute()`", warm["ratio_text"], "")
    extract = [(name, find_row(payload, "cache", f"extract.{kind}.lz4.fresh"))
               for kind, name in (("native", "uncompressed"), ("jpeg", "JPEG Lossless CT"))]
    parts = [f"{name}: {row['ratio_text']}" for name, row in extract
             if row and row.get("ratio_text")]
    if parts:
        add("extract a folder to zarr", "; ".join(parts), "")
    extract_rows = {r["what"]: r for r in _group_rows(payload, "extract")}
    for what, row in extract_rows.items():
        folder, _, tool = what.rpartition(": ")
        if tool == "lazydicom cold" and row.get("seconds") and row.get("frames"):
            peer = extract_rows.get(f"{folder}: dcm2niix") or {}
            other = (f"dcm2niix {peer['frames'] / peer['seconds']:,.0f} files/s "
                     f"(dcm2niix time / lazydicom time = {peer['seconds'] / row['seconds']:.2f})"
                     if peer.get("seconds") and peer.get("frames") else "")
            add(f"`lazydicom extract`, fresh process, no index: {folder}",
                f"{row['frames'] / row['seconds']:,.0f} files/s", other)
    scale = {r["what"]: r for r in _group_rows(payload, "scale")}
    for n in sorted({int(k.split(" frames: ")[0].replace(",", ""))
                     for k in scale if " frames: " in k and k[0].isdigit()}):
        label = f"{n:,} frames"
        cells = [scale.get(f"{label}: {what}") for what in (
            "cold index", "reopen, nothing changed", "build ndarray over every cell",
            "compute one cell", "peak RSS of open + ndarray")]
        if all(c is not None for c in cells):
            cold, reopen, build, one, rss = cells
            add(f"{label} (16x16 files)",
                f"cold index {cold['seconds']:.1f} s, reopen {reopen['seconds']:.2f} s, "
                f"`ndarray` built in {build['seconds']:.2f} s, one cell "
                f"{one['seconds']:.3f} s", f"peak RSS {rss.get('peak_mb') or 0:,.0f} MB")
    return "\n".join(lines)


def layout_table(payload: dict[str, Any]) -> str:
    """The copy rows of the layout group as a small table (docs/semantics.md, Memory order)."""
    group = payload.get("groups", {}).get("layout")
    if not group:
        return "(no layout group in this run)"
    columns: dict[str, dict[str, str]] = {}
    stacks: list[str] = []
    for row in group["rows"]:
        key = row.get("key") or ""
        if not key.startswith("layout.") or row.get("per_frame_us") is None:
            continue
        stack, _, method = row["what"].partition(": ")
        if stack not in stacks:
            stacks.append(stack)
        ratio = (row.get("ratio_text") or "").replace("x memcpy", "x")
        columns.setdefault(method, {})[stack] = f"{row['per_frame_us']:,.0f} us ({ratio})"
    lines = [
        "| per frame (multiple of memcpy) | " + " | ".join(stacks) + " |",
        "|---|" + "---|" * len(stacks),
    ]
    for method, cells in columns.items():
        lines.append(f"| {method} | " + " | ".join(cells.get(s, "") for s in stacks) + " |")
    load = group.get("load_average")
    lines += ["", f"From the layout group of the run in [Benchmarks](benchmarks.md) "
              f"({payload.get('created', '')}, load average {load or 0:.2f} at its start)."]
    return "\n".join(lines)


def _sections(markdown: str) -> tuple[str, dict[str, str]]:
    """A report's head and its ``## title`` sections, by title."""
    head, *parts = markdown.split("\n## ")
    sections = {}
    for part in parts:
        title = part.split("\n", 1)[0].strip()
        sections[title] = "## " + part.rstrip("\n")
    return head.rstrip("\n"), sections


def merge_payloads(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """One payload from several runs: a group of a later run replaces the same group.

    A replaced group's section says which run it comes from (date and commit),
    since the head of the report describes the first run.
    """
    import copy

    base = copy.deepcopy(payloads[0])
    if len(payloads) == 1:
        return base
    head, sections = _sections(base.get("markdown_results") or base["markdown"])
    sections.pop("Targets", None)
    titles = {name: g.get("title", name) for name, g in base["groups"].items()}
    for other in payloads[1:]:
        _, theirs = _sections(other.get("markdown_results") or other["markdown"])
        git = other.get("machine", {}).get("lazydicom_git", "?")
        for name, group in other.get("groups", {}).items():
            title = group.get("title", name)
            base["groups"][name] = {**group, "created": other.get("created", "?")}
            titles[name] = title
            text = theirs.get(title, f"## {title}")
            first, _, rest = text.partition("\n")
            sections[title] = (f"{first}\n\nFrom a separate run: {other.get('created', '?')}, "
                               f"lazydicom git {git}, `{' '.join(other.get('command', []))}`."
                               f"\n{rest}")
    base["groups_run"] = list(base["groups"])
    body = [sections[titles[name]] for name in base["groups"] if titles[name] in sections]
    results = "\n\n".join([head, *body]) + "\n"
    base["markdown_results"] = results
    base["markdown"] = "\n\n".join([head, "## Targets\n\n" + targets_table(base), *body]) + "\n"
    return base


def replace_block(text: str, name: str, content: str) -> str:
    """Replace what lies between ``<!-- begin: name -->`` and ``<!-- end: name -->``.

    Raises ``ValueError`` if the markers are missing.
    """
    pattern = re.compile(
        rf"(<!-- begin: {re.escape(name)} -->\n).*?(<!-- end: {re.escape(name)} -->)", re.S
    )
    if not pattern.search(text):
        raise ValueError(f"markers <!-- begin: {name} --> / <!-- end: {name} --> not found")
    return pattern.sub(lambda m: m.group(1) + content.rstrip("\n") + "\n" + m.group(2), text,
                       count=1)


def _results_markdown(payload: dict[str, Any]) -> str:
    """The run's report with its headings one level down (it sits under a heading)."""
    text = payload.get("markdown_results") or payload["markdown"]
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    out = []
    for line in lines:
        out.append("#" + line if line.startswith("#") else line)
    return "\n".join(out).strip("\n")


def update_docs(
    payload: dict[str, Any],
    docs: Path | None = None,
    readme: Path | None = None,
    semantics: Path | None = None,
) -> list[Path]:
    """Rewrite the generated blocks of docs/benchmarks.md, README.md and
    docs/semantics.md (the layout table, when the run has the layout group)."""
    docs = docs or REPO / "docs" / "benchmarks.md"
    readme = readme or REPO / "README.md"
    semantics = semantics or REPO / "docs" / "semantics.md"
    text = docs.read_text()
    text = replace_block(text, "targets", targets_table(payload))
    text = replace_block(text, "results", _results_markdown(payload))
    docs.write_text(text)
    text = readme.read_text()
    readme.write_text(replace_block(text, "performance", readme_table(payload)))
    written = [docs, readme]
    if "layout" in payload.get("groups", {}) and semantics.exists():
        semantics.write_text(replace_block(semantics.read_text(), "layout",
                                           layout_table(payload)))
        written.append(semantics)
    return written
