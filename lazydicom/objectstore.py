"""A folder in an object store (``s3://``, ``gs://``, ``memory://``, any fsspec URL).

The remote counterpart of ``lazydicom.scan`` plus positioned reads: an
``ObjectStore`` lists the objects under a URL with their size and version,
and reads byte ranges of them, many at once (fsspec's ``cat_ranges``, which
async filesystems such as s3fs run concurrently). It never downloads an
object whole unless asked to.

An object's *version* is what tells a changed object from the one indexed,
stored where a local file's modification time goes (the index's ``mtime``
column): a 63-bit digest of its ETag when the store gives one (S3, GCS,
Azure), else its modification time in ns, else -1 (size only).

On S3 a ranged read checks the version for free: each GET's response
carries the object's ETag and total size, compared with the indexed ones,
so a native frame costs exactly one request. Other stores are asked for
the object's info once per read.

An ``ObjectStore`` pickles as its URL and storage options; the fsspec
filesystem is created on first use in each process, so dask ships it to
cluster workers, which then read from the store directly.

Errors of the store (a missing bucket or key, credentials refused, a server
that does not answer) become lazydicom errors naming the URL; transient
failures are retried with backoff by the filesystem (s3fs retries five times).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import (
    DatabaseNotFoundError,
    FrameReadError,
    LazyDicomError,
    StoreAccessError,
    StoreConnectionError,
    StoreError,
)
from .scan import INDEX_DIRNAME, FileStat, Scan

__all__ = ["ObjectStore", "is_url", "version_of", "store_error"]

_S3 = ("s3", "s3a")
_RAISE: Any = object()
_OPEN_BLOCK = 64 * 1024


def is_url(path: Any) -> bool:
    """True for an fsspec URL (``protocol://...``) other than a plain local path."""
    return isinstance(path, str) and "://" in path and not path.startswith("file:///")


def version_of(info: Mapping[str, Any]) -> int:
    """The version of an object from its listing entry (see the module docstring)."""
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("md5")
    if etag:
        digest = hashlib.blake2b(str(etag).strip('"').encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") >> 1  # int64, never negative
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, _dt.datetime):
            value = value.timestamp()
        if isinstance(value, int | float) and value > 0:
            return round(value * 1_000_000) * 1000  # microseconds: listings and infos agree
    return -1


def store_error(exc: BaseException, url: str, what: str, frames: bool = False
                ) -> LazyDicomError:
    """A lazydicom error for a failure of the store while doing ``what`` with ``url``
    (a ``FrameReadError`` when reading frames, else a ``StoreError``)."""
    name = type(exc).__name__
    text = str(exc) or name
    if isinstance(exc, LazyDicomError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return DatabaseNotFoundError(f"{what}: {url!r} does not exist ({text})")
    if isinstance(exc, PermissionError) or name in (
        "NoCredentialsError", "PartialCredentialsError", "InvalidAccessKeyId",
        "SignatureDoesNotMatch", "AccessDenied",
    ) or "AccessDenied" in text or "InvalidAccessKeyId" in text or "credentials" in text.lower():
        return StoreAccessError(
            f"{what}: access to {url!r} was refused ({text}); check the credentials "
            "(storage_options, or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables)"
        )
    if isinstance(exc, TimeoutError | ConnectionError | asyncio.TimeoutError) or any(
        word in name for word in ("Timeout", "Connection", "Endpoint")
    ):
        return StoreConnectionError(
            f"{what}: the store of {url!r} did not answer ({name}: {text}); check the "
            "endpoint and the network, or retry later"
        )
    if frames:
        return FrameReadError(f"{what}: cannot read {url!r} ({name}: {text})")
    return StoreError(f"{what}: {url!r} ({name}: {text})")


class ObjectStore:
    """The objects under one URL of an fsspec filesystem: listing and ranged reads.

    Parameters
    ----------
    url : str
        ``protocol://bucket/prefix``; the folder of the database.
    storage_options : dict, optional
        Passed to the fsspec filesystem (the convention of pandas, xarray and
        zarr), e.g. ``{"anon": True}`` or ``{"key": ..., "secret": ...,
        "client_kwargs": {"endpoint_url": ...}}`` for s3fs.

    Examples
    --------
    >>> import fsspec
    >>> fsspec.filesystem("memory").pipe("/doc-store/a/b.dcm", b"x" * 10)
    >>> store = ObjectStore("memory://doc-store")
    >>> [(f.path, f.size) for f in store.list_objects().files]
    [('a/b.dcm', 10)]
    >>> store.read_ranges(["a/b.dcm"], [2], [5])
    [b'xxx']
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None):
        try:
            import fsspec
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Reading from an object store needs fsspec (and s3fs for s3://): "
                "pip install 'lazydicom[remote]'"
            ) from None
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.protocol = self.url.split("://", 1)[0]
        try:
            cls = fsspec.get_filesystem_class(self.protocol)
        except (ImportError, ValueError) as exc:
            raise ImportError(
                f"No fsspec filesystem for {self.url!r} ({exc}); for s3:// install "
                "lazydicom's remote extra: pip install 'lazydicom[remote]'"
            ) from None
        self.root = cls._strip_protocol(self.url).rstrip("/")
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "storage_options": self.storage_options,
                "protocol": self.protocol, "root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fs = None

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ObjectStore) and self.url == other.url
                and self.storage_options == other.storage_options)

    def __hash__(self) -> int:
        return hash(self.url)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, created on first use in this process."""
        if self._fs is None:
            import fsspec

            self._fs = fsspec.filesystem(self.protocol, **self.storage_options)
        return self._fs

    @property
    def identity(self) -> str:
        """The URL and, when the options name one, the endpoint: what keys the local index
        (``s3://scans`` on AWS and on a MinIO server are two folders)."""
        client = self.storage_options.get("client_kwargs") or {}
        endpoint = self.storage_options.get("endpoint_url") or client.get("endpoint_url")
        return f"{self.url} at {endpoint}" if endpoint else self.url

    def url_of(self, rel: str) -> str:
        """The URL of the object at ``rel`` (relative to the folder)."""
        return f"{self.url}/{rel}"

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.root else rel

    def rel_of(self, url: str) -> str:
        """``rel`` of an object's URL (the inverse of ``url_of``)."""
        prefix = self.url + "/"
        if not url.startswith(prefix):
            raise ValueError(f"{url!r} is not under {self.url!r}")
        return url[len(prefix):]

    # ---------------------------------------------------------------- listing

    def list_objects(self) -> Scan:
        """Every object under the folder with its size and version, sorted by path.

        One listing of the prefix (paged by the store); no object is read.
        lazydicom's own ``.lazydicom`` folder is left out.

        Raises
        ------
        DatabaseNotFoundError
            The bucket or the prefix does not exist (or holds no object).
        StoreAccessError, StoreConnectionError
            Credentials refused; the store does not answer.
        """
        try:
            found = self.fs.find(self.root, detail=True, withdirs=False)
        except Exception as exc:  # noqa: BLE001 - every failure gets a named lazydicom error
            raise store_error(exc, self.url, "Cannot list the folder") from None
        if isinstance(found, list):  # some filesystems ignore detail=True
            found = {p: self.fs.info(p) for p in found}
        files = []
        problems: list[tuple[str, str]] = []
        prefix = self.root + "/" if self.root else ""
        for path, info in found.items():
            path = path.lstrip("/") if not self.root.startswith("/") else path
            if info.get("type", "file") != "file" or not path.startswith(prefix):
                continue
            rel = path[len(prefix):]
            if not rel or rel.split("/", 1)[0] == INDEX_DIRNAME or rel.endswith("/"):
                continue
            files.append(FileStat(rel, int(info.get("size") or 0), version_of(info)))
        if not files and not self._exists():
            raise DatabaseNotFoundError(f"No such folder or bucket: {self.url!r}")
        return Scan.of(files, problems)

    def _exists(self) -> bool:
        try:
            return bool(self.fs.exists(self.root)) if self.root else True
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, self.url, "Cannot list the folder") from None

    def info(self, rel: str) -> tuple[int, int] | None:
        """``(size, version)`` of one object now, None when it does not exist."""
        try:
            info = self.fs.info(self._path(rel))
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, self.url_of(rel), "Cannot read") from None
        return int(info.get("size") or 0), version_of(info)

    # ---------------------------------------------------------------- reading

    def read_ranges(
        self, rels: Sequence[str], starts: Sequence[int], ends: Sequence[int],
        *, missing: Any = _RAISE,
    ) -> list[Any]:
        """Bytes ``[start, end)`` of each object, fetched concurrently (one request each).

        ``missing``: what to return for an object that does not exist (by
        default an error is raised).

        Raises
        ------
        DatabaseNotFoundError, StoreAccessError, StoreConnectionError, FrameReadError
            Naming the URL of the first object that failed.
        """
        if not rels:
            return []
        paths = [self._path(r) for r in rels]
        try:
            out = self.fs.cat_ranges(paths, list(starts), list(ends), on_error="return")
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, self.url_of(rels[0]), "Cannot read") from None
        for k, (rel, data) in enumerate(zip(rels, out)):
            if isinstance(data, FileNotFoundError) and missing is not _RAISE:
                out[k] = missing
            elif isinstance(data, BaseException):
                raise store_error(data, self.url_of(rel), "Cannot read") from None
        return out

    def read_object(self, rel: str, size: int, version: int) -> bytes:
        """The whole object, checked against the size and version the index saw."""
        url = self.url_of(rel)
        self.check_version(rel, size, version)
        try:
            data = self.fs.cat_file(self._path(rel))
        except Exception as exc:  # noqa: BLE001
            raise _frame_error(exc, url) from None
        if size >= 0 and len(data) != size:
            raise _changed(url, f"{len(data)} bytes now, {size} indexed")
        return data

    def check_version(self, rel: str, size: int, version: int) -> None:
        """Raise ``FrameReadError`` unless the object is the one indexed."""
        now = self.info(rel)
        url = self.url_of(rel)
        if now is None:
            raise FrameReadError(
                f"{url!r} was removed after it was indexed; refresh the database "
                "(db.refresh() or lazydicom index URL)"
            )
        if size >= 0 and now[0] != size:
            raise _changed(url, f"{now[0]} bytes now, {size} indexed")
        if version >= 0 and now[1] >= 0 and now[1] != version:
            raise _changed(url, "its ETag or modification time differs")

    def read_many(
        self, requests: Sequence[tuple[str, int, int, Sequence[int], Sequence[int]]]
    ) -> list[list[bytes]]:
        """Byte ranges of several indexed objects, all fetched concurrently.

        ``requests`` holds ``(rel, size, version, starts, ends)`` per object;
        the result holds the bytes of each range, per object. On S3 each range
        is one GET whose response carries the object's ETag and total size,
        compared with the index (the check costs no request); elsewhere each
        object's info is asked once, then the ranges are fetched together
        (``cat_ranges``).

        Raises
        ------
        FrameReadError
            An object was removed or changed since it was indexed, or
            cannot be read (the message names its URL).
        StoreAccessError, StoreConnectionError
            Credentials refused; the store does not answer.
        """
        if not requests:
            return []
        if self.protocol in _S3 and hasattr(self.fs, "_call_s3"):
            return self._read_s3(requests)
        paths, starts, ends, owners = [], [], [], []
        for k, (rel, size, version, first, last) in enumerate(requests):
            self.check_version(rel, size, version)
            paths += [self._path(rel)] * len(first)
            starts += list(first)
            ends += list(last)
            owners += [k] * len(first)
        try:
            out = self.fs.cat_ranges(paths, starts, ends, on_error="return")
        except Exception as exc:  # noqa: BLE001
            raise _frame_error(exc, self.url_of(requests[0][0])) from None
        result: list[list[bytes]] = [[] for _ in requests]
        for k, data in zip(owners, out):
            if isinstance(data, BaseException):
                raise _frame_error(data, self.url_of(requests[k][0])) from None
            result[k].append(data)
        return result

    def _read_s3(
        self, requests: Sequence[tuple[str, int, int, Sequence[int], Sequence[int]]]
    ) -> list[list[bytes]]:
        from fsspec.asyn import sync

        fs = self.fs

        async def get(rel: str, size: int, version: int, start: int, end: int) -> bytes:
            bucket, key, _ = fs.split_path(self._path(rel))
            url = self.url_of(rel)
            try:
                response = await fs._call_s3(
                    "get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}"
                )
            except Exception as exc:  # noqa: BLE001 - named below, per object
                raise _frame_error(exc, url) from None
            try:
                etag = response.get("ETag")
                total = str(response.get("ContentRange") or "").rpartition("/")[2]
                if size >= 0 and total.isdigit() and int(total) != size:
                    raise _changed(url, f"{total} bytes now, {size} indexed")
                if version >= 0 and etag and version_of({"ETag": etag}) != version:
                    raise _changed(url, "its ETag differs")
                try:
                    return await response["Body"].read()
                except Exception as exc:  # noqa: BLE001
                    raise _frame_error(exc, url) from None
            finally:
                response["Body"].close()

        async def get_all() -> list[Any]:
            return await asyncio.gather(
                *(get(rel, size, version, s, e)
                  for rel, size, version, starts, ends in requests
                  for s, e in zip(starts, ends)),
                return_exceptions=True,
            )

        try:
            out = sync(fs.loop, get_all)
        except Exception as exc:  # noqa: BLE001
            raise _frame_error(exc, self.url_of(requests[0][0])) from None
        result: list[list[bytes]] = []
        flat = iter(out)
        for rel, _, _, starts, _ in requests:
            got = [next(flat) for _ in starts]
            for data in got:
                if isinstance(data, BaseException):
                    raise _frame_error(data, self.url_of(rel)) from None
            result.append(got)
        return result

    def open(self, rel: str) -> Any:
        """A read-only, seekable file object of the object (ranged reads of 64 KiB blocks,
        not s3fs's default 5 MB: a header is what is read through it)."""
        try:
            return self.fs.open(self._path(rel), "rb", block_size=_OPEN_BLOCK)
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, self.url_of(rel), "Cannot open") from None


def _changed(url: str, what: str) -> FrameReadError:
    return FrameReadError(
        f"{url!r} changed since it was indexed ({what}); refresh the database "
        "(db.refresh() or lazydicom index URL) and build the array again"
    )


def _frame_error(exc: BaseException, url: str) -> LazyDicomError:
    if isinstance(exc, LazyDicomError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return FrameReadError(
            f"{url!r} was removed after it was indexed; refresh the database "
            "(db.refresh() or lazydicom index URL)"
        )
    return store_error(exc, url, "Cannot read frames", frames=True)
