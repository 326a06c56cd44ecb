"""Outputs of a [`DicomFrames`][lazydicom.array.DicomFrames]: labels, xarray and zarr.

Each module takes the frames object (and a table of the series' frames for
its attributes), never a Series, so output code sits below the records in
the import graph:

- ``lazydicom.io.labels``: names, attributes and coordinates of a series;
- ``lazydicom.io.xarray``: a lazy, labelled ``xarray.DataArray``;
- ``lazydicom.io.zarr``: a sharded zarr group that ``xarray.open_zarr`` opens.
"""
