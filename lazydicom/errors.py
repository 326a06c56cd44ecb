"""Exceptions and warnings raised by lazydicom.

Every error derives from [`LazyDicomError`][lazydicom.LazyDicomError] and from the builtin that
matches it, so ``except ValueError`` or ``except FileNotFoundError`` keeps
working for callers that do not know lazydicom.
"""

from __future__ import annotations

__all__ = [
    "LazyDicomError",
    "DatabaseNotFoundError",
    "UnknownAttributeError",
    "DuplicateCellError",
    "InconsistentFramesError",
    "MissingDecoderError",
    "FrameReadError",
    "DicomWebError",
    "UnreadableFolderError",
    "StoreError",
    "StoreAccessError",
    "StoreConnectionError",
    "OutsideDatabaseError",
    "InvalidArgumentError",
    "InvalidSelectionError",
    "InvalidChunksError",
    "GeometryError",
    "NonFiniteError",
    "CacheWarning",
    "LazyDicomWarning",
    "SkippedFilesWarning",
    "DamagedIndexWarning",
    "InvalidValueWarning",
]


class LazyDicomError(Exception):
    """Base class of every error raised by lazydicom."""


class DatabaseNotFoundError(LazyDicomError, FileNotFoundError):
    """The path given to [`lazydicom.open`][lazydicom.open] does not exist."""


class UnknownAttributeError(LazyDicomError, KeyError):
    """A dim, coordinate or filter names no DICOM keyword, tag or derived attribute."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DuplicateCellError(LazyDicomError, ValueError):
    """Two frames fall into the same cell of the coordinate grid."""


class InconsistentFramesError(LazyDicomError, ValueError):
    """Frames of one selection cannot share an array (different sizes or colour)."""


class MissingDecoderError(LazyDicomError, ImportError):
    """No installed plugin can decode the frame's transfer syntax."""


class FrameReadError(LazyDicomError, OSError):
    """A frame could not be read from its file (changed, truncated or unreadable)."""


class DicomWebError(LazyDicomError, OSError):
    """A DICOMweb request failed (HTTP error, refused connection, timeout); the message
    names the URL."""


class UnreadableFolderError(LazyDicomError, PermissionError):
    """The database folder exists but cannot be listed (e.g. no read permission)."""


class StoreError(LazyDicomError, OSError):
    """An object store (``s3://``...) failed a request; the message names the URL."""


class StoreAccessError(StoreError, PermissionError):
    """An object store refused access (missing or wrong credentials, no permission)."""


class StoreConnectionError(StoreError, ConnectionError):
    """An object store did not answer (wrong endpoint, network down, timeout)."""


class OutsideDatabaseError(LazyDicomError, PermissionError):
    """A write or delete would not stay inside the database's own folders.

    lazydicom never follows a symbolic link out of the database to write or
    delete: the index folder ``.lazydicom``, its lock and temporary files, and
    the folders of written series must be real folders inside the database
    (not symbolic links, and not files standing where a folder should be).
    """


class InvalidArgumentError(LazyDicomError, ValueError, TypeError):
    """An argument has a type or value lazydicom cannot use; the message says which is accepted.

    Also a ``ValueError`` and a ``TypeError``, so either ``except`` keeps working.
    Raised when the call is made, before anything is read or written: e.g. a
    shape that is not a tuple of positive integers, one attribute given twice
    under two names, a value outside what its attribute's VR can store.
    """


class InvalidSelectionError(InvalidArgumentError, IndexError):
    """Indices or keys of a selection (``slice=``, ``arr[...]``) that are not valid indices."""


class InvalidChunksError(InvalidArgumentError):
    """A ``chunks`` argument that is not a valid chunking of the array."""


class GeometryError(LazyDicomError, ValueError):
    """Frames that do not lie on one regular grid in patient space (the message says why)."""


class NonFiniteError(LazyDicomError, ValueError):
    """A frame to write holds NaN or infinite values, which DICOM integer pixels cannot store."""


class LazyDicomWarning(UserWarning):
    """Base class of every warning emitted by lazydicom."""


class CacheWarning(LazyDicomWarning):
    """The frame cache could not be written (the read itself succeeded)."""


class SkippedFilesWarning(LazyDicomWarning):
    """Some files under the database folder were not indexed (see the message)."""


class DamagedIndexWarning(LazyDicomWarning):
    """The persisted index failed its checks on load and is rebuilt from the DICOM files."""


class InvalidValueWarning(LazyDicomWarning):
    """Some attribute values do not fit their attribute's type and are indexed as absent."""
