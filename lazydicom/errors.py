"""Exceptions and warnings raised by lazydicom.

Every error derives from :class:`LazyDicomError` and from the builtin that
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
    "InvalidArgumentError",
    "InvalidSelectionError",
    "InvalidChunksError",
    "GeometryError",
    "LazyDicomWarning",
    "SkippedFilesWarning",
]


class LazyDicomError(Exception):
    """Base class of every error raised by lazydicom."""


class DatabaseNotFoundError(LazyDicomError, FileNotFoundError):
    """The path given to :func:`lazydicom.open` does not exist."""


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


class InvalidArgumentError(LazyDicomError, ValueError, TypeError):
    """An argument has a type or value lazydicom cannot use; the message says which is accepted.

    Also a ``ValueError`` and a ``TypeError``, so either ``except`` keeps working.
    """


class InvalidSelectionError(InvalidArgumentError, IndexError):
    """Indices or keys of a selection (``slice=``, ``arr[...]``) that are not valid indices."""


class InvalidChunksError(InvalidArgumentError):
    """A ``chunks`` argument that is not a valid chunking of the array."""


class GeometryError(LazyDicomError, ValueError):
    """Frames that do not lie on one regular grid in patient space (the message says why)."""


class LazyDicomWarning(UserWarning):
    """Base class of every warning emitted by lazydicom."""


class SkippedFilesWarning(LazyDicomWarning):
    """Some files under the database folder were not indexed (see the message)."""
