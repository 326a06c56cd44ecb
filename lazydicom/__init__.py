"""lazydicom: lazy, chunked N-D arrays from folders of DICOM files.

Index the headers of a folder once with :func:`open`, then ask a series for
its pixels as a dask array whose axes are DICOM attributes::

    db = lazydicom.open("study/")
    series = db.series(SeriesDescription="ax 5 flip")[0]
    arr = series.ndarray(dims=("SliceLocation", "FlipAngle"))
"""

from __future__ import annotations

from .errors import (
    DamagedIndexWarning,
    DatabaseNotFoundError,
    DuplicateCellError,
    FrameReadError,
    GeometryError,
    InconsistentFramesError,
    InvalidArgumentError,
    InvalidChunksError,
    InvalidSelectionError,
    InvalidValueWarning,
    LazyDicomError,
    LazyDicomWarning,
    MissingDecoderError,
    OutsideDatabaseError,
    SkippedFilesWarning,
    UnknownAttributeError,
    UnreadableFolderError,
)
from .records import Database, Patient, Series, Study, zeros
from .records import open_database as open

__all__ = [
    "open",
    "zeros",
    "Database",
    "Patient",
    "Study",
    "Series",
    "LazyDicomError",
    "DatabaseNotFoundError",
    "DuplicateCellError",
    "FrameReadError",
    "GeometryError",
    "InconsistentFramesError",
    "InvalidArgumentError",
    "InvalidChunksError",
    "InvalidSelectionError",
    "MissingDecoderError",
    "UnknownAttributeError",
    "UnreadableFolderError",
    "OutsideDatabaseError",
    "LazyDicomWarning",
    "SkippedFilesWarning",
    "DamagedIndexWarning",
    "InvalidValueWarning",
]
