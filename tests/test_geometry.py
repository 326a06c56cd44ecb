"""Series.affine against SimpleITK and against nibabel's reading of dcm2niix's NIfTI.

The independent check: for voxels of our array, the affine's patient position
is mapped into the other tool's image by that tool's own geometry, and the
value found there must be the value we read. So a wrong origin, spacing,
direction, axis order or flip fails, even on square frames.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

import lazydicom
from lazydicom import GeometryError

sitk = pytest.importorskip("SimpleITK")


def _spatial_series(corpus: Path) -> list[lazydicom.Series]:
    db = lazydicom.open(corpus, progress=False)
    found = []
    for s in db.series():
        try:
            s.affine(("SlicePosition",))
        except (GeometryError, ValueError):
            continue
        found.append(s)
    return found


def _samples(shape: tuple[int, ...], n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    corners = np.array([[0, 0, 0], [shape[0] - 1, shape[1] - 1, shape[2] - 1],
                        [shape[0] - 1, 0, 0], [0, shape[1] - 1, shape[2] - 1]])
    return np.concatenate([corners, rng.integers(0, shape, size=(n, 3))])


def test_affine_finds_our_values_in_simpleitks_image(corpus):
    series = _spatial_series(corpus)
    assert len(series) >= 5  # real CT and MR, square and non-square frames
    for s in series:
        ours = s.numpy(("SlicePosition",))
        matrix = s.affine(("SlicePosition",))
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(  # SimpleITK (GDCM) sorts the files by position itself
            sitk.ImageSeriesReader.GetGDCMSeriesFileNames(
            str(Path(s.files()[0]).parent), s.uid))
        image = reader.Execute()
        theirs = sitk.GetArrayFromImage(image)  # (k, j, i)
        for voxel in _samples(ours.shape):
            point = (matrix @ np.array([*voxel, 1.0]))[:3]
            i, j, k = (int(round(c)) for c in
                       image.TransformPhysicalPointToContinuousIndex(point.tolist()))
            assert theirs[k, j, i] == pytest.approx(ours[tuple(voxel)]), (s, voxel)


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix is not installed")
def test_affine_finds_our_values_in_dcm2niix_nifti(corpus, tmp_path):
    nib = pytest.importorskip("nibabel")
    for n, s in enumerate(_spatial_series(corpus)):
        source, out = tmp_path / f"src{n}", tmp_path / f"nii{n}"
        source.mkdir()
        out.mkdir()
        for f in s.files():
            shutil.copy(f, source)
        subprocess.run(["dcm2niix", "-z", "n", "-o", str(out), str(source)], check=True,
                       capture_output=True)
        (nifti,) = out.glob("*.nii")
        image = nib.load(nifti)
        data = np.asarray(image.dataobj)  # nibabel applies the NIfTI scaling (CT's -1024)
        to_voxel = np.linalg.inv(image.affine)
        ours = s.numpy(("SlicePosition",))
        matrix = s.affine(("SlicePosition",))
        for voxel in _samples(ours.shape):
            lps = (matrix @ np.array([*voxel, 1.0]))[:3]
            ras = np.array([-lps[0], -lps[1], lps[2], 1.0])  # NIfTI is RAS
            index = tuple(int(round(c)) for c in (to_voxel @ ras)[:3])
            got = data[index] if data.ndim == 3 else data[index][..., 0]
            assert got == pytest.approx(ours[tuple(voxel)]), (s, voxel)


def test_uneven_or_tilted_slices_are_refused(tmp_path):
    s = lazydicom.zeros((4, 3, 3), {"SliceLocation": [0.0, 1.0, 3.0]}, path=tmp_path / "a")
    with pytest.raises(GeometryError, match=r"not evenly spaced: spacings of \[1.0, 2.0\]"):
        s.affine(("SliceLocation",))
    assert s.affine(coords={"SliceLocation": [0.0, 1.0]})[2, 2] == pytest.approx(1.0)
    with pytest.raises(GeometryError, match="exactly one spatial dim"):
        s.affine(("InstanceNumber",))
    tilted = lazydicom.zeros((4, 3, 2), {"SliceLocation": [0.0, 2.0]}, path=tmp_path / "b")
    path = sorted(tilted.files())[1]
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.8, 0.6]  # the second slice is tilted
    ds.save_as(path)
    tilted.database.refresh()
    with pytest.raises(GeometryError, match="not parallel"):
        tilted.affine(("SliceLocation",))
    broken = lazydicom.zeros((4, 3, 3), {"SliceLocation": [0.0, 1.0, 2.0]}, path=tmp_path / "c")
    path = sorted(broken.files())[2]
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient = [0, 0]  # two values: the error names this file
    ds.save_as(path)
    broken.database.refresh()
    name = os.path.relpath(path, broken.database.path)
    with pytest.raises(GeometryError, match=f"{re.escape(repr(name))} has no valid "
                                            "ImagePositionPatient"):
        broken.affine(("SliceLocation",))


def test_one_slice_steps_along_the_normal_by_the_thickness(tmp_path):
    s = lazydicom.zeros((4, 3), path=tmp_path, SliceThickness=2.5, PixelSpacing=[0.7, 0.9])
    matrix = s.affine(("SliceLocation",))
    np.testing.assert_allclose(matrix[:3, :3], np.diag([0.9, 0.7, 2.5]))


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix is not installed")
def test_our_nifti_matches_dcm2niix_voxel_for_voxel_in_world_space(corpus, tmp_path):
    nib = pytest.importorskip("nibabel")
    for n, s in enumerate(_spatial_series(corpus)[:6]):
        source, out = tmp_path / f"src{n}", tmp_path / f"nii{n}"
        source.mkdir()
        out.mkdir()
        for f in s.files():
            shutil.copy(f, source)
        subprocess.run(["dcm2niix", "-z", "n", "-o", str(out), str(source)], check=True,
                       capture_output=True)
        (theirs_path,) = out.glob("*.nii")
        theirs = nib.load(theirs_path)
        ours = nib.load(s.to_nifti(tmp_path / f"ours{n}.nii"))
        data, their_data = np.asarray(ours.dataobj), np.asarray(theirs.dataobj)
        to_theirs = np.linalg.inv(theirs.affine) @ ours.affine
        for voxel in _samples(data.shape[:3]):
            index = tuple(int(round(c)) for c in (to_theirs @ np.array([*voxel, 1.0]))[:3])
            assert their_data[index] == pytest.approx(data[tuple(voxel)]), (s, voxel)


def test_extract_to_nifti_and_rerun(corpus, tmp_path, capsys):
    from lazydicom.cli import main

    folder = corpus / "mr-rider-neuro"
    out = tmp_path / "nifti"
    assert main(["extract", str(folder), str(out), "--dims", "SlicePosition", "--format",
                 "nifti", "-q"]) == 0
    written = sorted(out.glob("*.nii"))
    assert len(written) == 12 and len(list(out.glob("*.json"))) == 12
    assert "12 series written" in capsys.readouterr().out
    assert main(["extract", str(folder), str(out), "--dims", "SlicePosition", "--format",
                 "nifti", "-q"]) == 0
    assert "0 series written (0 frames), 12 already complete" in capsys.readouterr().out
