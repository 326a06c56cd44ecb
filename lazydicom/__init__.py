"""lazydicom: lazy, chunked N-D arrays from folders of DICOM files.

Index the headers of a folder once with [`open`][lazydicom.open], then ask a series for
its pixels as a dask array whose axes are DICOM attributes::

    db = lazydicom.open("study/")
    series = db.series(SeriesDescription="ax 5 flip")[0]
    arr = series.ndarray(dims=("SliceLocation", "FlipAngle"))

``import lazydicom`` imports only the errors: the records, pandas, pydicom,
zarr and dask are imported when first used (``lazydicom.open``, a submodule
such as ``lazydicom.extract``), so the command line and short jobs start fast
(PEP 562 module ``__getattr__``, as scientific Python packages do).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    CacheWarning,
    DamagedIndexWarning,
    DatabaseNotFoundError,
    DicomWebError,
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
    NonFiniteError,
    OutsideDatabaseError,
    SkippedFilesWarning,
    StoreAccessError,
    StoreConnectionError,
    StoreError,
    UnknownAttributeError,
    UnreadableFolderError,
)
from .version import __version__

if TYPE_CHECKING:
    from .records import Database, Patient, Series, Study, zeros
    from .records import open_database as open

#: Names imported on first use: name -> (module, attribute or None for the module).
_LAZY = {
    "open": ("records", "open_database"),
    "zeros": ("records", "zeros"),
    "Database": ("records", "Database"),
    "Patient": ("records", "Patient"),
    "Study": ("records", "Study"),
    "Series": ("records", "Series"),
    # every public submodule, so that any name the docs use (lazydicom.extract.extract,
    # lazydicom.cache.FrameCache, lazydicom.backend...) works after `import lazydicom`
    **{m: (m, None) for m in ("array", "backend", "cache", "cli", "commits", "dask_array",
                              "decoders", "dicomweb", "disk", "extract", "fragments",
                              "geometry", "grid", "header", "index", "io", "objectframes",
                              "objectstore", "pixels", "records", "scan", "schema", "tags",
                              "workers", "writers")},
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'lazydicom' has no attribute {name!r}") from None
    value = importlib.import_module(f".{module}", __name__)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    "open",
    "zeros",
    "Database",
    "Patient",
    "Study",
    "Series",
    "LazyDicomError",
    "DatabaseNotFoundError",
    "DicomWebError",
    "DuplicateCellError",
    "FrameReadError",
    "GeometryError",
    "NonFiniteError",
    "CacheWarning",
    "InconsistentFramesError",
    "InvalidArgumentError",
    "InvalidChunksError",
    "InvalidSelectionError",
    "MissingDecoderError",
    "UnknownAttributeError",
    "UnreadableFolderError",
    "StoreError",
    "StoreAccessError",
    "StoreConnectionError",
    "OutsideDatabaseError",
    "LazyDicomWarning",
    "SkippedFilesWarning",
    "DamagedIndexWarning",
    "InvalidValueWarning",
]
