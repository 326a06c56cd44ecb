"""DICOMweb as a database: index a PACS by QIDO-RS and metadata, read frames by WADO-RS.

``lazydicom.open("dicomweb+https://pacs.example.org/dicom-web")`` makes a
DICOMweb service root a database like a folder:

- **Index.** A QIDO-RS series search (restricted by ``where``, QIDO query
  parameters such as ``PatientID``, ``StudyInstanceUID``, ``Modality`` or a
  ``StudyDate`` range) lists the series; the series metadata resource
  (``/studies/{st}/series/{se}/metadata``, DICOM JSON) of each gives the
  headers of its instances, which become index rows by the same code as a
  local file's header (``lazydicom.header.dataset_rows``): one row per frame,
  enhanced multi-frame functional groups flattened in. No pixel data is
  downloaded. The index is kept in a user cache folder keyed by the URL and
  ``where`` (or ``index_path=``); a refresh searches again and re-reads the
  metadata of only the series whose number of instances changed, and drops
  the series that are gone.
- **Frames.** A row's ``path`` is the instance's WADO-RS path relative to the
  service root, ``studies/{st}/series/{se}/instances/{sop}``. The frames of
  an instance are fetched several per request (``.../frames/1,2,3``) in the
  transfer syntax the server stores them (``transfer-syntax=*``, the default)
  and decoded here exactly as local frames are, or uncompressed
  (``transfer_syntax="1.2.840.10008.1.2.1"``, the server decodes). Tasks
  carry the URL and headers only; each process (and thread) opens its own
  HTTP session, so dask.distributed workers fetch directly from the server.
- **Errors.** HTTP failures raise [`DicomWebError`][lazydicom.DicomWebError]
  while indexing and [`FrameReadError`][lazydicom.FrameReadError] while
  reading frames, both naming the URL; connection errors, timeouts and
  429/502/503/504 responses are retried with exponential backoff (urllib3's
  ``Retry`` on the session).

The index's ``TransferSyntaxUID`` column holds the stored transfer syntax
when the server reports it in the metadata (``(0002,0010)`` or
AvailableTransferSyntaxUID); Orthanc does not, so it is absent there and
each frame is decoded as its response's ``Content-Type`` says.

The HTTP client is dicomweb-client (``pip install 'lazydicom[dicomweb]'``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .decoders import decode_frame
from .errors import DicomWebError, FrameReadError, InvalidArgumentError, SkippedFilesWarning
from .header import HeaderError, dataset_rows
from .index import Index
from .pixels import NATIVE_SYNTAXES, FrameCacheLike, FrameTable, store_frame
from .tags import Attribute, resolve

__all__ = ["SCHEMES", "is_dicomweb", "Service", "WebFrames", "WebIndex", "open_index",
           "EXPLICIT_VR_LITTLE_ENDIAN", "UNKNOWN_SYNTAX", "instance_rows"]

#: URL prefixes that name a DICOMweb service root.
SCHEMES = ("dicomweb+http://", "dicomweb+https://")
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
#: ``TransferSyntaxUID`` of instances whose metadata does not give it (a storage column,
#: never absent): each frame is decoded as its response says.
UNKNOWN_SYNTAX = ""
_RETRY_STATUS = (429, 502, 503, 504)
_PATH = re.compile(r"^studies/([^/]+)/series/([^/]+)/instances/([^/]+)$")
_TS_PARAM = re.compile(r"transfer-syntax\s*=\s*\"?([0-9.]+|\*)", re.IGNORECASE)
_SERIES_INSTANCES = "00201209"  # NumberOfSeriesRelatedInstances
_IMAGE_DESCRIPTION = (0x00280010, 0x00280011, 0x00280100)  # Rows, Columns, BitsAllocated
_PIXEL_DATA = "7FE00010"
_METADATA_THREADS = 4


def is_dicomweb(path: Any) -> bool:
    """True for a ``dicomweb+http(s)://`` URL."""
    return isinstance(path, str) and path.startswith(SCHEMES)


def _import_client() -> Any:
    try:
        import dicomweb_client
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading from DICOMweb needs dicomweb-client: pip install 'lazydicom[dicomweb]'"
        ) from None
    return dicomweb_client


# ---------------------------------------------------------------- HTTP


@dataclasses.dataclass(frozen=True)
class Service:
    """A DICOMweb service root and how to talk to it; picklable (no session inside).

    ``url`` is the plain ``http(s)://`` root; ``headers`` are sent with every
    request (e.g. ``Authorization: Bearer ...``).
    """

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25

    @classmethod
    def from_url(cls, url: str, headers: Mapping[str, str] | None = None, *,
                 timeout: float = 30.0, retries: int = 3) -> Service:
        if not is_dicomweb(url):
            raise InvalidArgumentError(
                f"{url!r} is not a DICOMweb URL; expected 'dicomweb+http://host/root' "
                "or 'dicomweb+https://host/root'")
        if headers is not None and not (isinstance(headers, Mapping) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
            raise InvalidArgumentError(
                f"headers must be a dict of str to str, e.g. {{'Authorization': 'Bearer ...'}}, "
                f"not {headers!r}")
        return cls(url[len("dicomweb+"):].rstrip("/"), tuple(sorted((headers or {}).items())),
                   float(timeout), int(retries))

    def client(self, on_response: Any = None) -> Any:
        """A dicomweb-client ``DICOMwebClient`` on a session with retries and backoff;
        ``on_response(response)`` is called with every response (a requests hook)."""
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        web = _import_client()
        retry = Retry(total=self.retries, connect=self.retries, read=self.retries,
                      status=self.retries, backoff_factor=self.backoff,
                      status_forcelist=_RETRY_STATUS, allowed_methods=frozenset({"GET"}),
                      raise_on_status=False, respect_retry_after_header=True)
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(dict(self.headers))
        if on_response is not None:
            session.hooks["response"].append(lambda r, *a, **k: on_response(r))
        client = web.DICOMwebClient(self.url, session=session, timeout=self.timeout)
        client.set_http_retry_params(retry=False)  # one retry layer: the session's
        return client

    def error(self, exc: Exception, url: str, what: str, cls: type[Exception] = DicomWebError
              ) -> Exception:
        """A lazydicom error for a failed request, naming the URL and what to do."""
        import requests

        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if status is not None:
            hint = {
                401: "the server wants credentials: pass headers={'Authorization': "
                     "'Bearer <token>'} (or Basic) to lazydicom.open",
                403: "the credentials given are not allowed to read it",
                404: "it does not exist on the server (deleted since indexed? refresh the "
                     "database)",
            }.get(status, "")
            detail = _server_message(response)
            text = f"{what}: HTTP {status} from {url!r}" + (f" ({detail})" if detail else "")
            return cls(text + (f"; {hint}" if hint else ""))
        if isinstance(exc, requests.Timeout) or _timed_out(exc):
            return cls(f"{what}: no answer from {url!r} within {self.timeout:g} s "
                       f"(after {self.retries} retries)")
        if isinstance(exc, requests.ConnectionError):
            return cls(f"{what}: cannot connect to {url!r} (after {self.retries} retries): "
                       f"{_reason(exc)}")
        return cls(f"{what}: request to {url!r} failed ({type(exc).__name__}: {exc})")


def _server_message(response: Any) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            return str(body.get("Message") or body.get("message") or body.get("HttpError") or "")
    except Exception:  # noqa: BLE001 - the body is a courtesy
        pass
    text = (getattr(response, "text", "") or "").strip()
    return text[:200]


def _causes(exc: BaseException) -> list[BaseException]:
    """The chain of causes of a requests/urllib3 error, outermost first."""
    chain = [exc]
    while len(chain) < 16:
        inner = chain[-1]
        nxt = getattr(inner, "reason", None) or inner.__cause__ or inner.__context__
        if nxt is None or not isinstance(nxt, BaseException) or nxt in chain:
            break
        chain.append(nxt)
    return chain


def _timed_out(exc: BaseException) -> bool:
    """A read or connect timeout (urllib3's refused connection is a 'connect timeout' too)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

    return any(isinstance(e, TimeoutError | ReadTimeoutError) or (
        isinstance(e, ConnectTimeoutError) and not isinstance(e, NewConnectionError))
        for e in _causes(exc))


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests/urllib3 error (e.g. 'Connection refused')."""
    return str(_causes(exc)[-1])


class _Sessions:
    """One client per thread and process, made on first use (never pickled)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._local = threading.local()

    def get(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            seen = self._local  # the hook runs in the thread that made the request
            client = self.service.client(
                lambda r: setattr(seen, "content_type", r.headers.get("Content-Type")))
            self._local.client = client
        return client

    def last_content_type(self) -> str:
        return getattr(self._local, "content_type", None) or ""


# ---------------------------------------------------------------- frames


class WebFrames:
    """The ``FrameSource`` of a DICOMweb database: frames by WADO-RS, several per request.

    Pickles as its service (URL, headers), root prefix and options; HTTP
    sessions are made in the process and thread that reads.

    Parameters
    ----------
    service : Service
    root : str
        What the frame table's paths start with (the database's URL); the rest
        is ``studies/{st}/series/{se}/instances/{sop}``.
    frames_per_request : int
        Most frames asked for in one request (``frames/1,2,...``).
    transfer_syntax : str
        ``"*"``: as stored (decoded here, as local files are), or a UID, e.g.
        ``"1.2.840.10008.1.2.1"`` (the server decodes).
    """

    def __init__(self, service: Service, root: str, *, frames_per_request: int = 32,
                 transfer_syntax: str = "*") -> None:
        if not (isinstance(frames_per_request, int) and frames_per_request >= 1):
            raise InvalidArgumentError(
                f"frames_per_request must be a positive int, not {frames_per_request!r}")
        self.service, self.root = service, root.rstrip("/")
        self.frames_per_request, self.transfer_syntax = frames_per_request, transfer_syntax
        self._sessions = _Sessions(service)

    def __getstate__(self) -> dict[str, Any]:
        return {"service": self.service, "root": self.root,
                "frames_per_request": self.frames_per_request,
                "transfer_syntax": self.transfer_syntax}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sessions = _Sessions(self.service)

    def __dask_tokenize__(self) -> tuple:
        return (type(self).__name__, self.service, self.root, self.transfer_syntax)

    def instance(self, path: str) -> tuple[str, str, str]:
        """(StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) of a frame table path."""
        rel = path[len(self.root) + 1:] if path.startswith(self.root + "/") else path
        match = _PATH.match(rel)
        if match is None:
            raise FrameReadError(f"{path!r} is not a DICOMweb instance path "
                                 "(studies/{st}/series/{se}/instances/{sop})")
        return match.group(1), match.group(2), match.group(3)

    def read_file(
        self,
        table: FrameTable,
        frames: np.ndarray,
        out: np.ndarray,
        slots: np.ndarray,
        rescale: bool,
        cache: FrameCacheLike | None,
    ) -> None:
        """Fetch the frames of one instance (several per request) into their slots."""
        path = table.paths[int(table.file[frames[0]])]
        todo: list[tuple[int, int]] = []
        cached = cache is not None and cache.caches(True)  # every remote frame is worth it
        for frame, slot in zip(frames.tolist(), slots.tolist()):
            fmt = table.formats[table.format[frame]]
            if fmt.photometric == "PALETTE COLOR":
                raise FrameReadError(
                    f"{path!r}: PALETTE COLOR frames are not read over DICOMweb yet (the "
                    "lookup tables are not in the index); download the instance instead")
            if cached:
                stored = cache.get(table.identity(frame))  # type: ignore[union-attr]
                if stored is not None:
                    store_frame(stored, table, frame, out[:, :, slot], rescale, path=path)
                    continue
            todo.append((frame, slot))
        study, series, sop = self.instance(path)
        for start in range(0, len(todo), self.frames_per_request):
            batch = todo[start:start + self.frames_per_request]
            numbers = [int(table.index[f]) + 1 for f, _ in batch]
            parts, syntax = self._fetch(study, series, sop, numbers, path)
            if len(parts) != len(batch):
                raise FrameReadError(
                    f"{self._url(path, numbers)!r} returned {len(parts)} frame(s) for "
                    f"{len(batch)} asked")
            for (frame, slot), data, number in zip(batch, parts, numbers):
                try:
                    stored = self._store(data, syntax, table, frame, out[:, :, slot], rescale,
                                         path)
                except FrameReadError:
                    raise
                except Exception as exc:  # noqa: BLE001 - decoders raise many types
                    raise FrameReadError(
                        f"Cannot decode frame {number} of {path!r} (transfer syntax "
                        f"{syntax!r}; {type(exc).__name__}: {exc})") from exc
                if cached:
                    cache.put(table.identity(frame), stored)  # type: ignore[union-attr]

    def _url(self, path: str, numbers: Sequence[int]) -> str:
        study, series, sop = self.instance(path)
        return (f"{self.service.url}/studies/{study}/series/{series}/instances/{sop}/frames/"
                + ",".join(map(str, numbers)))

    def _fetch(self, study: str, series: str, sop: str, numbers: list[int], path: str
               ) -> tuple[list[bytes], str]:
        """The frames' bytes and the transfer syntax the server sent them in."""
        client = self._sessions.get()
        try:
            parts = client.retrieve_instance_frames(
                study, series, sop, numbers,
                media_types=(("application/octet-stream", self.transfer_syntax),))
        except Exception as exc:  # noqa: BLE001 - requests, urllib3 and client errors alike
            raise self.service.error(exc, self._url(path, numbers), "Cannot fetch frames",
                                     FrameReadError) from exc
        match = _TS_PARAM.search(self._sessions.last_content_type())
        syntax = match.group(1) if match else self.transfer_syntax
        if syntax == "*":
            syntax = EXPLICIT_VR_LITTLE_ENDIAN  # application/octet-stream without a syntax
        return list(parts), syntax

    @staticmethod
    def _store(data: bytes, syntax: str, table: FrameTable, frame: int, slot: np.ndarray,
               rescale: bool, path: str) -> np.ndarray:
        fmt = table.formats[table.format[frame]]
        if syntax in NATIVE_SYNTAXES:
            native = dataclasses.replace(fmt, transfer_syntax=syntax)
            expected = fmt.rows * fmt.columns * fmt.samples_per_pixel * fmt.bits_allocated // 8
            if len(data) < expected:
                raise FrameReadError(
                    f"frame {int(table.index[frame]) + 1} of {path!r}: {len(data)} bytes "
                    f"received, {expected} expected for {fmt.rows}x{fmt.columns}")
            one = dataclasses.replace(
                table, formats=tuple(native if i == table.format[frame] else f
                                     for i, f in enumerate(table.formats)))
            return store_frame(memoryview(data)[:expected], one, frame, slot, rescale,
                               path=path)
        stored = decode_frame(data, syntax, **fmt.decode_options())
        return store_frame(stored, table, frame, slot, rescale, path=path)


# ---------------------------------------------------------------- index


def _location(url: str, where: Mapping[str, Any]) -> Path:
    """The default index folder of a URL and search: a user cache folder."""
    key = json.dumps([url, sorted((str(k), str(v)) for k, v in where.items())])
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "lazydicom" / f"dicomweb-{digest}"


def _value(item: Mapping[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value") or [None]
    return values[0]


def _check_where(where: Any) -> dict[str, str]:
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        raise InvalidArgumentError(
            f"where must be a dict of QIDO-RS query parameters, e.g. {{'PatientID': 'P1', "
            f"'StudyDate': '20200101-20201231'}}, not {where!r}")
    out = {}
    for key, value in where.items():
        if not isinstance(key, str) or isinstance(value, dict):
            raise InvalidArgumentError(
                f"where: {key!r}: {value!r} is not a QIDO-RS query parameter "
                "(a keyword or tag and a value)")
        out[key] = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return out


class WebIndex(Index):
    """The persisted index of a DICOMweb service root (see the module description).

    [`lazydicom.open`][lazydicom.open] makes one for a ``dicomweb+http(s)://``
    URL; build it directly for the options below, then
    ``lazydicom.Database(index)`` after ``index.refresh()``. Persistence
    (commit protocol, checks, lock) is ``Index``'s; what differs is where rows
    come from: QIDO-RS and the series metadata resource instead of a folder
    walk and file headers.

    Parameters
    ----------
    url : str
        ``dicomweb+http://host:port/root`` or ``dicomweb+https://...``.
    location : str or PathLike, optional
        Folder of the index; default a user cache folder keyed by ``url`` and
        ``where``.
    where : dict, optional
        QIDO-RS series query parameters restricting what is indexed.
    headers : dict, optional
        HTTP headers of every request, e.g. ``{"Authorization": "Bearer ..."}``.
    timeout : float
        Seconds to wait for a connection or an answer (default 30).
    retries : int
        Retries of a connection error, timeout or 429/502/503/504 answer, with
        exponential backoff (default 3).
    frames_per_request : int
        Most frames of one instance asked for in one WADO-RS request (default 32).
    transfer_syntax : str
        ``"*"`` (default): frames as stored, decoded here; a Transfer Syntax
        UID such as ``"1.2.840.10008.1.2.1"``: the server transcodes.

    Raises
    ------
    InvalidArgumentError
        A URL, ``where`` or ``headers`` lazydicom cannot use.
    """

    def __init__(self, url: str, location: str | os.PathLike | None = None, *,
                 where: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None,
                 timeout: float = 30.0, retries: int = 3, frames_per_request: int = 32,
                 transfer_syntax: str = "*") -> None:
        self.service = Service.from_url(url, headers, timeout=timeout, retries=retries)
        self.url = url.rstrip("/")
        self.where = _check_where(where)
        self.source = WebFrames(self.service, self.url, frames_per_request=frames_per_request,
                                transfer_syntax=transfer_syntax)
        folder = Path(location) if location is not None else _location(self.url, self.where)
        folder.mkdir(parents=True, exist_ok=True)
        # the folder-based machinery (housekeeping, pointer) works in the index folder
        super().__init__(folder, folder)

    @property
    def address(self) -> str:
        return self.url

    def _client(self) -> Any:
        return self.source._sessions.get()

    # -- queries -------------------------------------------------------------------

    def _search(self) -> list[dict[str, Any]]:
        """QIDO-RS series search: (study, series, number of instances or None)."""
        client = self._client()
        try:
            found = client.search_for_series(search_filters=dict(self.where),
                                             fields=[_SERIES_INSTANCES], get_remaining=True)
        except Exception as exc:  # noqa: BLE001 - requests, urllib3 and client errors alike
            query = "&".join(f"{k}={v}" for k, v in self.where.items())
            raise self.service.error(exc, f"{self.service.url}/series" + (
                f"?{query}" if query else ""), "Cannot search for series") from exc
        out = []
        for item in found:
            study, series = _value(item, "0020000D"), _value(item, "0020000E")
            if study and series:
                count = _value(item, _SERIES_INSTANCES)
                out.append({"study": str(study), "series": str(series),
                            "instances": int(count) if count is not None else None})
        return out

    def _metadata(self, study: str, series: str) -> list[dict[str, Any]]:
        """The DICOM JSON of a series' instances; none for a series deleted since the search."""
        client = self._client()
        try:
            return list(client.retrieve_series_metadata(study, series))
        except Exception as exc:  # noqa: BLE001
            if getattr(getattr(exc, "response", None), "status_code", None) == 404:
                return []  # gone between the search and now: not indexed
            raise self.service.error(
                exc, f"{self.service.url}/studies/{study}/series/{series}/metadata",
                "Cannot read series metadata") from exc

    def _series_rows(self, study: str, series: str, extra: Sequence[Attribute]
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rows of a series' instances from its metadata; (rows, skipped)."""
        rows: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for item in self._metadata(study, series):
            sop = _value(item, "00080018")
            path = f"studies/{study}/series/{series}/instances/{sop}"
            try:
                if not sop:
                    raise HeaderError("no SOPInstanceUID in the metadata")
                for row in instance_rows(item, extra):
                    row["path"], row["size"], row["mtime"] = path, 0, 0
                    rows.append(row)
            except HeaderError as exc:
                skipped.append({"path": path, "size": 0, "mtime": 0, "reason": str(exc)})
        return rows, skipped

    # -- refresh -------------------------------------------------------------------

    def refresh(self, *, progress: bool | None = None, workers: int | None = None,
                scheduler: Any = None) -> dict:
        """Search again; re-read the metadata of new series and of series whose number
        of instances changed; drop series that are gone. Returns counts of instances
        ``{"added", "changed", "removed", "skipped"}`` and of ``"series_read"``."""
        found = self._search()
        table = self.table
        indexed: dict[str, int] = {}
        if len(table):
            per = table.groupby("SeriesInstanceUID", sort=False)["path"].nunique()
            indexed = {str(k): int(v) for k, v in per.items()}
        if len(self.skipped):
            for p in self.skipped["path"].tolist():
                match = re.match(r"^studies/[^/]+/series/([^/]+)/", str(p))
                if match:
                    indexed[match.group(1)] = indexed.get(match.group(1), 0) + 1
        todo = [s for s in found if s["instances"] is None
                or indexed.get(s["series"]) != s["instances"]]
        gone = set(indexed) - {s["series"] for s in found}
        counts = {"added": 0, "changed": 0, "removed": 0, "skipped": 0, "series_read": len(todo)}
        if not todo and not gone:
            return counts
        extra = [resolve(c) for c in sorted(self.extra)]
        threads = max(1, min(workers or _METADATA_THREADS, len(todo) or 1))
        bar = None
        if (sys.stderr.isatty() if progress is None else progress) and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="Reading series metadata", unit="series",
                       leave=False)
        try:
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                results = []
                for result in pool.map(
                        lambda s: self._series_rows(s["study"], s["series"], extra), todo):
                    results.append(result)
                    if bar is not None:
                        bar.update()
        finally:
            if bar is not None:
                bar.close()
        stale = {s["series"] for s in todo} | gone
        old_paths = set(table["path"]) if len(table) else set()
        if len(table):
            dropped = table[table["SeriesInstanceUID"].astype(str).isin(stale)]
            table = table[~table["SeriesInstanceUID"].astype(str).isin(stale)]
            old_paths = set(dropped["path"])
        skip = self.skipped
        if len(skip):
            in_stale = skip["path"].astype(str).str.extract(
                r"^studies/[^/]+/series/([^/]+)/", expand=False).isin(stale)
            old_paths |= set(skip["path"][in_stale])
            skip = skip[~in_stale]
        new_rows = [r for rows, _ in results for r in rows]
        new_skipped = [s for _, sk in results for s in sk]
        new_paths = {r["path"] for r in new_rows} | {s["path"] for s in new_skipped}
        if new_rows:
            frame = pd.DataFrame.from_records(new_rows)
            table = pd.concat([table, frame], ignore_index=True) if len(table) else frame
        if new_skipped:
            more = pd.DataFrame.from_records(new_skipped)
            skip = pd.concat([skip, more], ignore_index=True) if len(skip) else more
        if len(table):
            table = table.sort_values(["path", "FrameNumber"], kind="stable")
        self.table = table.reset_index(drop=True)
        self.skipped = skip.reset_index(drop=True)
        for done in self.extra.values():
            done.difference_update(old_paths)
            done.update(new_paths)
        counts.update(added=len(new_paths - old_paths), changed=len(new_paths & old_paths),
                      removed=len(old_paths - new_paths), skipped=len(new_skipped))
        self.save()
        if new_skipped:
            lines = "\n".join(f"  {s['path']!r}: {s['reason']}" for s in new_skipped[:10])
            warnings.warn(f"{len(new_skipped)} instance(s) of {self.url!r} were not "
                          f"indexed:\n{lines}", SkippedFilesWarning, stacklevel=3)
        return counts

    def sync(self, folder: str | os.PathLike) -> dict:
        raise InvalidArgumentError(f"{self.url!r} is a DICOMweb database: it is read-only")

    def update_files(self, paths: Iterable[str | os.PathLike]) -> dict:
        raise InvalidArgumentError(f"{self.url!r} is a DICOMweb database: it is read-only")

    # -- on-demand columns ---------------------------------------------------------

    def ensure(self, names: Iterable[str | int | Attribute], paths: Any = None) -> list[str]:
        """Columns for ``names``; attributes not indexed yet are read from the series
        metadata of the instances in ``paths`` (all by default), then kept."""
        columns, missing, wanted_paths = self._to_read(names, paths)
        if not missing:
            return columns
        todo_paths = {p for p in wanted_paths
                      if any(p not in self.extra.get(a.column, set()) for a in missing)}
        if not todo_paths:
            return columns
        series = sorted({m.groups()[:2] for p in todo_paths
                         if (m := re.match(r"^studies/([^/]+)/series/([^/]+)/", p))})
        values: dict[tuple[str, int], dict[str, Any]] = {}
        for study, se in series:
            rows, _ = self._series_rows(study, se, missing)
            for row in rows:
                values[(row["path"], int(row["FrameNumber"]))] = row
        table = self.table.copy()
        keys = list(zip(table["path"].tolist(), table["FrameNumber"].astype(int).tolist()))
        for a in missing:
            column = [values[k].get(a.column) if k in values else old
                      for k, old in zip(keys, table[a.column].tolist()
                                        if a.column in table.columns else [None] * len(keys))]
            table[a.column] = pd.Series(column, dtype=object, index=table.index)
            self.extra.setdefault(a.column, set()).update(todo_paths)
        self.table = table
        self.save()
        return columns


def instance_rows(item: Mapping[str, Any], extra: Sequence[Attribute] = ()
                  ) -> list[dict[str, Any]]:
    """Index rows of one instance's DICOM JSON metadata (one per frame).

    Bulk data (Pixel Data, lookup tables) is referenced, never fetched. An
    instance has pixels when the metadata lists Pixel Data, or describes an
    image (Rows, Columns, BitsAllocated): servers leave encapsulated Pixel
    Data out of the metadata (Orthanc does).

    Raises
    ------
    HeaderError
        Metadata that is not DICOM JSON, or describes frames inconsistently.
    """
    from pydicom import Dataset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ds = Dataset.from_json(dict(item), bulk_data_uri_handler=lambda *a: None)
    except Exception as exc:  # noqa: BLE001 - any malformed metadata means "skip"
        raise HeaderError(f"unreadable DICOM JSON metadata ({type(exc).__name__}: {exc})"
                          ) from None
    pixels = _PIXEL_DATA in item or all(t in ds for t in _IMAGE_DESCRIPTION)
    syntax = _value(item, "00020010") or _value(item, "00083002")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return dataset_rows(ds, pixels, str(syntax) if syntax else UNKNOWN_SYNTAX, extra)


def open_index(url: str, index_path: str | os.PathLike | None = None, **options: Any
               ) -> WebIndex:
    """The ``WebIndex`` of a DICOMweb URL (not refreshed; see ``lazydicom.open``)."""
    return WebIndex(url, index_path, **options)
