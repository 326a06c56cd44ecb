"""The version of lazydicom (one place; written into DICOM files lazydicom writes)."""

__version__ = "0.1.0"
