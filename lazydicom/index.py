"""The index: one row per frame of every DICOM file under a folder.

Built once by reading every header (never the pixels), persisted beside the
data in ``.lazydicom/index.arrow`` and refreshed incrementally: a refresh stats
the folder, re-reads only files that are new or whose size or modification
time changed, and drops rows of removed files. Files that could not be read
are remembered with the reason (and their size/mtime) so that an unchanged
folder is reopened without opening any DICOM file.

The table is a :class:`pandas.DataFrame`; it is persisted as Arrow IPC
(pyarrow), which loads in milliseconds. Writes go to a temporary file that is
then renamed over the old one, so a killed process leaves the last good index.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from .errors import SkippedFilesWarning
from .header import HeaderError, read_attributes, read_header
from .scan import INDEX_DIRNAME, FileStat, scan_folder
from .tags import Attribute, resolve

__all__ = ["Index", "FORMAT_VERSION"]

#: Bumped whenever the columns or their meaning change; older indexes are rebuilt.
FORMAT_VERSION = 2
_INDEX_FILE = "index.arrow"
_SKIPPED_FILE = "skipped.arrow"
_META_FILE = "index.json"
_PARALLEL_MIN_FILES = 96  # below this, starting processes costs more than it saves
_CHUNK = 32  # files per task sent to a worker process


def _read_files(root: str, files: Sequence[tuple[str, int, int]], extra: Sequence[str]):
    """Worker: read headers of ``files``; return (rows, skipped) with path/size/mtime set."""
    attrs = [resolve(e) for e in extra]
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        # pydicom warns about every odd value of every odd file; what matters to
        # the user (files skipped, and why) is reported once, by _warn_skipped
        warnings.simplefilter("ignore", UserWarning)
        _read_into_rows(root, files, attrs, rows, skipped)
    return rows, skipped


def _read_into_rows(root, files, attrs, rows, skipped) -> None:
    for rel, size, mtime in files:
        try:
            frames = read_header(os.path.join(root, rel), attrs)
        except HeaderError as exc:
            skipped.append({"path": rel, "size": size, "mtime": mtime, "reason": str(exc)})
            continue
        for row in frames:
            row["path"], row["size"], row["mtime"] = rel, size, mtime
            rows.append(row)


def _pool_context():
    # The platform's default start method, as dask's process scheduler uses
    # (fork on Linux before Python 3.14, forkserver after; spawn elsewhere), so
    # multiprocessing.set_start_method() set by the user is respected.
    return multiprocessing.get_context()


def _progress(total: int, enabled: bool | None, desc: str):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file", leave=False)


def read_files(
    root: str | os.PathLike,
    files: Sequence[FileStat],
    extra: Sequence[str] = (),
    *,
    workers: int | None = None,
    progress: bool | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read the headers of ``files`` under ``root``, in parallel when worth it.

    Returns ``(rows, skipped)``; rows carry ``path``, ``size`` and ``mtime``.
    """
    root = str(root)
    todo = [(f.path, f.size, f.mtime) for f in files]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    bar = _progress(len(todo), progress, "Reading DICOM headers")
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    try:
        if workers <= 1 or len(todo) < _PARALLEL_MIN_FILES:
            for start in range(0, len(todo), _CHUNK):
                part = todo[start : start + _CHUNK]
                r, s = _read_files(root, part, extra)
                rows += r
                skipped += s
                if bar is not None:
                    bar.update(len(part))
        else:
            chunk = max(1, min(_CHUNK * 4, len(todo) // (workers * 4) or 1))
            parts = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
            with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
                for part, (r, s) in zip(
                    parts, pool.map(_read_files, [root] * len(parts), parts, [extra] * len(parts))
                ):
                    rows += r
                    skipped += s
                    if bar is not None:
                        bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return rows, skipped


# ---------------------------------------------------------------- persistence


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    """Arrow table of the index; tuples become lists, mixed-type columns text."""
    arrays, names = [], []
    for name in df.columns:
        values = df[name]
        if values.dtype == object:
            try:
                arr = pa.array(values.tolist(), from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arr = pa.array([None if v is None else str(v) for v in values.tolist()])
        else:
            arr = pa.array(values.to_numpy(), from_pandas=True)
        arrays.append(arr)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _from_arrow(table: pa.Table) -> pd.DataFrame:
    """DataFrame of the index; list columns (multi-valued attributes) become tuples."""
    lists = [
        f.name for f in table.schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)
    ]
    if not lists:
        return table.to_pandas()
    df = table.drop_columns(lists).to_pandas()
    # to_pylist is C-fast; pandas' own conversion of list columns is not
    tuples = {
        name: [None if v is None else tuple(v) for v in table.column(name).to_pylist()]
        for name in lists
    }
    return pd.concat([df, pd.DataFrame(tuples, index=df.index, dtype=object)], axis=1)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def default_location(root: Path) -> Path:
    """Where the index of ``root`` lives: ``root/.lazydicom`` if writable, else a user cache."""
    here = root / INDEX_DIRNAME
    try:
        here.mkdir(exist_ok=True)
        probe = here / ".write-test"
        probe.touch()
        probe.unlink()
        return here
    except OSError:
        digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return base / "lazydicom" / digest


# ---------------------------------------------------------------- the index


def _empty_skipped() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": pd.Series([], dtype=object),
            "size": [],
            "mtime": [],
            "reason": pd.Series([], dtype=object),
        }
    )


class Index:
    """The persisted per-frame table of one folder.

    Use :func:`lazydicom.open`; this class is the engine behind it.

    Attributes
    ----------
    root : Path
        The folder indexed.
    location : Path
        The folder holding the index files.
    table : pandas.DataFrame
        One row per frame (and one per object without pixels, ``IsImage`` False).
    skipped : pandas.DataFrame
        Files that are not indexed, with columns path, size, mtime, reason.
    """

    def __init__(self, root: str | os.PathLike, location: str | os.PathLike | None = None):
        self.root = Path(root).absolute()
        if not self.root.exists():
            scan_folder(self.root)  # raises the documented FileNotFoundError
        self.location = Path(location) if location is not None else default_location(self.root)
        self.location.mkdir(parents=True, exist_ok=True)
        self._table: pd.DataFrame | None = pd.DataFrame()
        self._arrow: pa.Table | None = None  # the loaded index, until table is first used
        self.skipped = _empty_skipped()
        #: extra columns (non-default attributes) and the files already read for them
        self.extra: dict[str, set[str]] = {}
        self._load()

    # -- persistence -----------------------------------------------------------

    def _load(self) -> None:
        meta_path = self.location / _META_FILE
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("version") != FORMAT_VERSION:
                return
            arrow = feather.read_table(self.location / _INDEX_FILE, memory_map=False)
            skipped = feather.read_table(self.location / _SKIPPED_FILE).to_pandas()
        except (OSError, ValueError, pa.ArrowException):
            return  # no index yet, or an unreadable one: rebuilt from the files
        # Converting ~90 columns to pandas costs more than the rest of a reopen;
        # it is done when the table is first used (refresh needs three columns).
        self._arrow, self._table, self.skipped = arrow, None, skipped
        self.extra = {k: set(v) for k, v in meta.get("extra", {}).items()}

    @property
    def table(self) -> pd.DataFrame:
        """One row per frame (and per object without pixels); see the class docstring."""
        if self._table is None:
            self._table = _from_arrow(self._arrow)
            self._arrow = None
        return self._table

    @table.setter
    def table(self, value: pd.DataFrame) -> None:
        self._table, self._arrow = value, None

    def save(self) -> None:
        """Persist the index atomically (each file is written then renamed)."""
        arrow = _to_arrow(self.table)
        _atomic_write(
            self.location / _INDEX_FILE,
            lambda p: feather.write_feather(arrow, p, compression="uncompressed"),
        )
        # what a later open() loads, so a fresh and a reopened index are equal
        self.table = _from_arrow(arrow)
        skipped = self.skipped
        _atomic_write(
            self.location / _SKIPPED_FILE,
            lambda p: feather.write_feather(
                _to_arrow(skipped.reset_index(drop=True)), p, compression="uncompressed"
            ),
        )
        meta = {
            "version": FORMAT_VERSION,
            "root": str(self.root),
            "extra": {k: sorted(v) for k, v in self.extra.items()},
        }
        _atomic_write(self.location / _META_FILE, lambda p: Path(p).write_text(json.dumps(meta)))

    # -- refresh ------------------------------------------------------------------

    def _known(self) -> dict[str, tuple[int, int]]:
        """(size, mtime) of every file the index has seen, indexed or skipped."""
        known: dict[str, tuple[int, int]] = {}
        if self._table is None and self._arrow is not None:  # loaded Arrow: three columns
            columns = [self._arrow.column(c).to_pylist() for c in ("path", "size", "mtime")]
            known.update(zip(columns[0], zip(columns[1], columns[2])))
        for frame in ((self.table,) if self._table is not None else ()) + (self.skipped,):
            if len(frame):
                # rows of one file repeat the same values: later ones just overwrite
                known.update(
                    zip(
                        frame["path"].tolist(),
                        zip(
                            frame["size"].astype(np.int64).tolist(),
                            frame["mtime"].astype(np.int64).tolist(),
                        ),
                    )
                )
        return known

    def refresh(self, *, progress: bool | None = None, workers: int | None = None) -> dict:
        """Bring the index in line with the folder; read only new or changed files.

        Returns
        -------
        dict
            Counts ``{"added": .., "changed": .., "removed": .., "skipped": ..}``.
        """
        files = scan_folder(self.root)
        known = self._known()
        on_disk = {f.path for f in files}
        todo = [f for f in files if known.get(f.path) != (f.size, f.mtime)]
        removed = set(known) - on_disk
        return self._apply(todo, removed, progress=progress, workers=workers, known=known)

    def _apply(
        self,
        todo: list[FileStat],
        removed: set[str],
        *,
        progress: bool | None,
        workers: int | None,
        known: dict | None = None,
    ) -> dict:
        """Read ``todo``, drop ``removed`` and stale rows, save; return counts."""
        known = self._known() if known is None else known
        stale = removed | {f.path for f in todo if f.path in known}
        counts = {
            "added": sum(f.path not in known for f in todo),
            "changed": sum(f.path in known for f in todo),
            "removed": len(removed),
            "skipped": 0,
        }
        if not todo and not removed:
            return counts
        extra = sorted(self.extra)
        rows, skipped = read_files(self.root, todo, extra, workers=workers, progress=progress)
        table, skip = self.table, self.skipped
        if stale and len(table):
            table = table[~table["path"].isin(stale)]
        if stale and len(skip):
            skip = skip[~skip["path"].isin(stale)]
        if rows:
            new = pd.DataFrame.from_records(rows)
            table = pd.concat([table, new], ignore_index=True) if len(table) else new
        if skipped:
            new_skip = pd.DataFrame.from_records(skipped)
            skip = pd.concat([skip, new_skip], ignore_index=True) if len(skip) else new_skip
        if len(table):
            table = table.sort_values(["path", "FrameNumber"], kind="stable")
            table = table.reset_index(drop=True)
        self.table, self.skipped = table, skip.reset_index(drop=True)
        read_paths = {f.path for f in todo}
        for done in self.extra.values():
            done.difference_update(stale)
            done.update(read_paths)
        counts["skipped"] = len(skipped)
        self.save()
        if skipped:
            _warn_skipped(skipped)
        return counts

    def update_files(self, paths: Iterable[str | os.PathLike]) -> dict:
        """Re-read only ``paths`` (absolute or relative to the root), e.g. files just written.

        Faster than :meth:`refresh` for a known set of files: the folder is not walked.
        """
        stats = []
        gone = set()
        for p in paths:
            p = Path(p)
            rel = (p if not p.is_absolute() else p.relative_to(self.root)).as_posix()
            try:
                st = (self.root / rel).stat()
            except FileNotFoundError:
                gone.add(rel)
                continue
            stats.append(FileStat(rel, st.st_size, st.st_mtime_ns))
        return self._apply(stats, gone, progress=False, workers=1)

    # -- on-demand columns ---------------------------------------------------------

    def ensure(
        self, names: Iterable[str | int | Attribute], paths: Iterable[str] | None = None
    ) -> list[str]:
        """Make sure the index holds columns for ``names``; return the column names.

        Attributes that are not kept by default (any keyword or tag, private tags
        included) are read from the headers of the files in ``paths`` (all files
        by default), never from pixel data, and kept in the index.
        """
        attrs = [n if isinstance(n, Attribute) else resolve(n) for n in names]
        columns = [a.column for a in attrs]
        missing = [a for a in attrs if not a.derived and a.column not in self.table.columns]
        missing += [a for a in attrs if a.column in self.extra and a not in missing]
        if not missing or not len(self.table):
            for a in attrs:
                if a.column not in self.table.columns:
                    self.table[a.column] = None
            return columns
        paths = set(self.table["path"]) if paths is None else set(paths)
        todo: dict[str, list[Attribute]] = {}
        for a in missing:
            done = self.extra.get(a.column, set())
            for p in paths - done:
                todo.setdefault(p, []).append(a)
        if not todo:
            return columns
        table = self.table
        for a in missing:
            if a.column not in table.columns:
                table[a.column] = pd.Series([None] * len(table), dtype=object, index=table.index)
            elif table[a.column].dtype != object:
                table[a.column] = table[a.column].astype(object)
        by_path = table.groupby("path", sort=False).indices
        for p, want in todo.items():
            values = read_attributes(self.root / p, want)
            positions = by_path.get(p, [])
            for pos, frame_values in zip(positions, values):
                for a in want:
                    table.iat[pos, table.columns.get_loc(a.column)] = frame_values.get(a.column)
        for a in missing:
            self.extra.setdefault(a.column, set()).update(paths)
            col = table[a.column]
            if col.map(lambda v: v is None or isinstance(v, int | float)).all():
                table[a.column] = pd.to_numeric(col, errors="coerce") if col.notna().any() else col
        self.table = table
        self.save()
        return columns


def _warn_skipped(skipped: list[dict[str, Any]]) -> None:
    lines = [f"  {s['path']!r}: {s['reason']}" for s in skipped[:10]]
    more = f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    warnings.warn(
        f"{len(skipped)} file(s) were not indexed:\n"
        + "\n".join(lines)
        + more
        + "\nSee Database.skipped() for the full list.",
        SkippedFilesWarning,
        stacklevel=4,
    )
