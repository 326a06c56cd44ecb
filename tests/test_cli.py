"""The command line: index report, array summary, help. Counts are checked against pydicom."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pydicom
import pytest

from lazydicom.cli import default_dims, main
from tests.synthetic import write_enhanced_mr, write_junk, write_series


def _headers(folder):
    """Every DICOM file under ``folder`` with pixel data, read by pydicom: the reference."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".lazydicom" not in path.parts:
            try:
                ds = pydicom.dcmread(path, defer_size=256)  # pixels left on disk
            except pydicom.errors.InvalidDicomError:
                continue
            if "PixelData" in ds:
                found.append((path, ds))
    return found


def test_index_lists_series_frames_objects_and_skipped(corpus, capsys):
    junk = write_junk(corpus / "junk")
    assert main(["index", str(corpus), "-q"]) == 0
    out = capsys.readouterr().out
    # the enhanced MOLLI series: frames counted from pydicom's NumberOfFrames
    n = pydicom.dcmread(corpus / "mr-enhanced-molli" / "IM_0001", stop_before_pixels=True)
    assert re.search(rf"'Cor_T1MOLLI_BH' MR [^\n]*: {int(n.NumberOfFrames)} frames in 1 file ",
                     out)
    assert "2 frames in 2 files" in out
    assert "varies: SliceLocation(2)" in out
    assert "mr-enhanced-molli/PS_0002" in out
    for name in ("text", "empty", "truncated"):
        assert junk[name].relative_to(corpus).as_posix() in out
    # each list says how many it holds, in the plural
    for heading in ("objects without pixel data (not frames):", "files skipped:"):
        n, rest = re.search(rf"\n\n(\d+) {re.escape(heading)}\n((?:  .*\n)*)", out).groups()
        assert int(n) == len(rest.splitlines()) > 1


def test_index_and_array_say_1_frame_1_file_and_rows_x_columns(corpus, capsys):
    """Singular counts, and one wording for sizes: DICOM rows x columns, array axes (x, y)."""
    folder = corpus / "mr-siemens-ima"
    (path, ds), = _headers(folder)  # one non-square frame: Rows 576, Columns 396
    assert main(["index", str(folder), "-q"]) == 0
    out = capsys.readouterr().out
    assert f"1 frame in 1 file ({path.stat().st_size / 1024:.1f} KB), " \
           f"{ds.Rows} rows x {ds.Columns} columns;" in out
    assert "frames in" not in out and " files " not in out
    assert main(["array", str(folder), "-q"]) == 0
    out = capsys.readouterr().out
    assert f"shape ({ds.Columns}, {ds.Rows}, 1) on (x, y, InstanceNumber)" in out
    assert f"x: {ds.Columns} columns, y: {ds.Rows} rows" in out
    assert "1 chunk (nothing read yet)" in out
    assert f"InstanceNumber: [{ds.InstanceNumber}]" in out


def test_index_tells_repeated_studies_and_series_apart(corpus, capsys):
    """RIDER: the same descriptions, numbers and (anonymised) dates in several studies."""
    folder = corpus / "mr-rider-neuro"
    assert main(["index", str(folder), "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    studies = [ln.strip() for ln in lines if ln.startswith("  Study ")]
    series = [ln.strip().split(":")[0] for ln in lines if ln.startswith("    Series ")]
    headers = [ds for _, ds in _headers(folder)]
    study_uids = {ds.StudyInstanceUID for ds in headers}
    series_uids = {ds.SeriesInstanceUID for ds in headers}
    assert len(studies) == len(set(studies)) == len(study_uids)
    assert len(series) == len(set(series)) == len(series_uids)
    # every label names its UID by its end, with the date as pydicom reads it
    for ds in headers:
        date = f"{ds.StudyDate[:4]}-{ds.StudyDate[4:6]}-{ds.StudyDate[6:]}"
        assert any(ln.startswith(f"Study {ds.StudyDescription!r} {date}, uid ...")
                   and ds.StudyInstanceUID.endswith(ln.rsplit("...", 1)[1]) for ln in studies)
        assert sum(ln.startswith(f"Series {ds.SeriesNumber} {ds.SeriesDescription!r} MR, uid")
                   and ds.SeriesInstanceUID.endswith(ln.rsplit("...", 1)[1])
                   for ln in series) == 1


def test_array_labels_series_with_their_study(corpus, capsys):
    folder = corpus / "mr-rider-neuro"
    argv = ["array", str(folder), "--where", "SeriesDescription=ax 5 flip", "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    blocks = [b for b in re.split(r"(?m)^(?=Series )", out) if b]
    expected = {(ds.SeriesInstanceUID, ds.StudyInstanceUID) for _, ds in _headers(folder)
                if ds.SeriesDescription == "ax 5 flip"}
    assert len(blocks) == len(expected) == 4
    shown = set()
    for block in blocks:
        series_uid, study_uid = re.findall(r"uid \.\.\.(\S+?)(?:\n| of )", block)
        (match,) = [(a, b) for a, b in expected
                    if a.endswith(series_uid) and b.endswith(study_uid)]
        shown.add(match)
    assert shown == expected


def test_array_reports_every_series_and_goes_on_after_a_failure(corpus, capsys):
    """The ultrasound file's 11 frames share one InstanceNumber: that series fails, alone."""
    argv = ["array", str(corpus), "--dims", "InstanceNumber", "-q"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    blocks = [b for b in re.split(r"(?m)^(?=Series )", captured.out) if b]
    assert len(blocks) == len({ds.SeriesInstanceUID for _, ds in _headers(corpus)})
    failed = [b for b in blocks if "  failed: " in b]
    assert len(failed) == 1 and failed[0].startswith("Series 5829 'IAS FEN2' US")
    assert "share a cell" in failed[0] and "FrameNumber" in failed[0]
    assert all("shape (" in b for b in blocks if b not in failed)
    (line,) = captured.err.splitlines()
    assert line.startswith(f"lazydicom: error: 1 of {len(blocks)} series failed: "
                           "Series 5829 'IAS FEN2'")


def test_array_default_dims_for_multi_frame_files(corpus, tmp_path, capsys):
    """FrameNumber where frames share an InstanceNumber (per series), else InstanceNumber."""
    us = pydicom.dcmread(corpus / "us-palette-color" / "0020.DCM", stop_before_pixels=True)
    assert main(["array", str(corpus), "-q"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split("\n")[0]: b for b in re.split(r"(?m)^(?=Series )", out) if b}
    (block,) = [b for head, b in blocks.items() if "'IAS FEN2'" in head]
    frames = int(us.NumberOfFrames)
    assert f"shape ({us.Columns}, {us.Rows}, {frames}, 3) on (x, y, FrameNumber, rgb)" in block
    assert f"FrameNumber: [1, 2, 3, 4, 5, 6, 7, 8, ...] ({frames} values)" in block
    (block,) = [b for head, b in blocks.items() if "'Cor_T1MOLLI_BH'" in head]
    assert "dims=('InstanceNumber',)" in block  # Philips numbers its frames
    assert sum("dims=('InstanceNumber',)" in b for b in blocks.values()) == len(blocks) - 1
    # a synthetic enhanced file: one InstanceNumber for all frames
    write_enhanced_mr(tmp_path / "enh" / "IM1", {"InStackPositionNumber": [1, 2, 3]})
    assert main(["array", str(tmp_path / "enh"), "-q"]) == 0
    assert "dims=('FrameNumber',)): shape (4, 6, 3)" in capsys.readouterr().out


def test_default_dims_rule():
    """The rule on its own, including several multi-frame files in one series."""
    one_per_file = pd.DataFrame({"InstanceNumber": [1, 2, 3], "FrameNumber": [1, 1, 1]})
    one_file = pd.DataFrame({"InstanceNumber": [7, 7, 7], "FrameNumber": [1, 2, 3]})
    two_files = pd.DataFrame({"InstanceNumber": [1, 1, 2, 2], "FrameNumber": [1, 2, 1, 2]})
    no_numbers = pd.DataFrame({"InstanceNumber": [None, None], "FrameNumber": [1, 1]})
    assert default_dims(one_per_file) == ("InstanceNumber",)
    assert default_dims(one_file) == ("FrameNumber",)
    assert default_dims(two_files) == ("InstanceNumber", "FrameNumber")
    assert default_dims(no_numbers) == ("InstanceNumber",)  # the grid's error says why


def test_array_prints_shape_and_coords(tmp_path, capsys):
    write_series(tmp_path, {"SliceLocation": [5.0, 0.0], "FlipAngle": [10, 2, 5]}, (6, 4),
                 series_description="vfa")
    argv = ["array", str(tmp_path), "--dims", "SliceLocation,FlipAngle",
            "--where", "SeriesDescription=vfa", "--compute", "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "shape (4, 6, 2, 3) on (x, y, SliceLocation, FlipAngle), dtype uint16" in out
    assert "SliceLocation: [0, 5]" in out and "FlipAngle: [2, 5, 10]" in out
    assert "computed: min" in out
    assert main(["array", str(tmp_path), "--where", "SeriesDescription=nope", "-q"]) == 1


@pytest.mark.parametrize("dims", ["(0020,1041),(0018,1314)", "(0020,1041), FlipAngle",
                                  "0x00201041,(0018,1314)"])
def test_dims_accepts_tags_with_their_comma(dims, tmp_path, capsys):
    write_series(tmp_path, {"SliceLocation": [5.0, 0.0], "FlipAngle": [10, 2, 5]}, (6, 4))
    assert main(["array", str(tmp_path), "--dims", "SliceLocation,FlipAngle", "-q"]) == 0
    by_keyword = capsys.readouterr().out
    assert main(["array", str(tmp_path), "--dims", dims, "-q"]) == 0
    out = capsys.readouterr().out
    assert "shape (4, 6, 2, 3)" in out
    assert re.search(r"\n  \S+: \[0, 5\]\n  \S+: \[2, 5, 10\]", out)
    assert out.count("\n") == by_keyword.count("\n")


@pytest.mark.parametrize("dims", ["(0020,1041", "SliceLocation,(0020,1041))", "((0020,1041))"])
def test_dims_with_unbalanced_parentheses_are_refused(dims, tmp_path, capsys):
    assert main(["array", str(tmp_path), "--dims", dims, "-q"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("lazydicom: error: --dims") and "(gggg,eeee)" in line


def test_missing_folder_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope")]) == 1
    assert "No such folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["index"], ["array"], ["extract"]])
def test_help_documents_every_command(command):
    proc = subprocess.run([sys.executable, "-m", "lazydicom", *command, "--help"],
                          capture_output=True, text=True, check=True)
    assert "usage: lazydicom" in proc.stdout
    if not command:
        for name in ("index", "array", "extract"):
            assert name in proc.stdout


def test_the_command_exits_quickly_with_its_output_and_status_intact(tmp_path):
    """``python -m lazydicom`` ends with os._exit after main(): what it printed
    (piped, so block-buffered) arrives whole, and the exit status is main()'s."""
    from tests.synthetic import write_series

    write_series(tmp_path / "dicom", {"SliceLocation": [1.0, 2.0, 3.0]}, (6, 4))
    out = tmp_path / "out.zarr"
    proc = subprocess.run([sys.executable, "-m", "lazydicom", "extract", str(tmp_path / "dicom"),
                           str(out), "--dims", "SliceLocation"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{out}: 1 series written (3 frames), 0 already complete " \
                          "(skipped), 0 failed\n"
    bad = subprocess.run([sys.executable, "-m", "lazydicom", "index", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("lazydicom: error: ")


def test_the_command_imports_pydicom_without_requests_which_stays_importable(tmp_path):
    """The console script imports pydicom without ``requests`` (pydicom loads it
    only to download its test files): after ``extract``, requests is not loaded,
    pydicom falls back to urllib, the data equal a plain pydicom read, and
    ``import requests`` still works in the process; main() called in a process
    that has requests leaves it alone."""
    files = write_series(tmp_path / "dicom", {"SliceLocation": [2.0, 1.0]}, (6, 4))
    probe = (
        "import atexit, sys, lazydicom.cli as c\n"
        "def after():\n"  # run() calls the atexit handlers, then os._exit
        "    import pydicom.data.download as d\n"
        "    print('loaded', 'requests' in sys.modules, d.HAVE_REQUESTS)\n"
        "    import requests\n"
        "    print('importable', callable(requests.get))\n"
        "atexit.register(after)\n"
        "sys.argv = ['lazydicom', *sys.argv[1:]]\n"
        "c.run()\n"
    )
    out = tmp_path / "o.zarr"
    proc = subprocess.run([sys.executable, "-c", probe, "extract", str(tmp_path / "dicom"),
                           str(out), "--dims", "SliceLocation", "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "loaded False False" in proc.stdout.splitlines()
    assert "importable True" in proc.stdout.splitlines()
    import numpy as np
    import zarr

    by_location = sorted(files, key=lambda f: float(pydicom.dcmread(f).SliceLocation))
    group = zarr.open_group(str(out), mode="r")
    (name,) = list(group.group_keys())
    got = group[name]["pixels"][...]
    expected = np.stack([pydicom.dcmread(f).pixel_array for f in by_location])
    np.testing.assert_array_equal(got, expected)

    import requests  # this process already has it: main() must not hide it

    assert main(["index", str(tmp_path / "dicom")]) == 0
    assert sys.modules["requests"] is requests


@pytest.mark.parametrize("command", ["index", "array", "extract"])
def test_the_command_collects_garbage_once_its_libraries_are_loaded(tmp_path, command):
    """The console script turns the cyclic collector off only while a command's
    libraries import: when the command opens the folder it is on again, with
    the imported objects frozen; main() called in a process leaves gc alone."""
    from tests.synthetic import write_series

    write_series(tmp_path / "dicom", {"SliceLocation": [1.0, 2.0]}, (6, 4))
    probe = (
        "import gc, sys, lazydicom.records as r, lazydicom.cli as c\n"
        "opened = r.open_database\n"
        "def spy(*a, **k):\n"
        "    print('gc', gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)\n"
        "    return opened(*a, **k)\n"
        "r.open_database = spy\n"
        "import lazydicom.extract as e\n"
        "e.open_database = spy\n"
        "sys.argv = ['lazydicom', *sys.argv[1:]]\n"
        "c.run()\n"
    )
    args = {"index": ["index", str(tmp_path / "dicom")],
            "array": ["array", str(tmp_path / "dicom")],
            "extract": ["extract", str(tmp_path / "dicom"), str(tmp_path / "o.zarr"),
                        "--dims", "SliceLocation"]}[command]
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "gc True True" in proc.stderr.splitlines()
    import gc

    before = gc.get_freeze_count()
    assert main(["index", str(tmp_path / "dicom")]) == 0
    assert gc.isenabled() and gc.get_freeze_count() == before
