"""The benchmark harness's pure parts, on tiny inputs, so they cannot rot between runs.

The benchmarks themselves (``python -m benchmarks``) take minutes and are not
run here; these tests cover the helpers whose mistakes would make a table
wrong rather than slow: the layout copies, interleaved timing, the checks,
target ratios, and what the report writes into the docs.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import layout, report
from benchmarks.common import (
    REPO,
    Row,
    shared_data,
    time_interleaved,
    unordered_frames_mark,
)
from benchmarks.fullread import Target, apply_targets, array_check


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_layout_copies_keep_values_and_order(dtype):
    src = np.asfortranarray(np.arange(70 * 50 * 3).reshape(70, 50, 3).astype(dtype))
    for name, method in layout.copy_methods().items():
        out = method(src)
        assert np.array_equal(out, src), name
        if name.startswith(("(a)", "(b)", "(c)")):
            assert out.flags.c_contiguous, name
        else:
            assert out.flags.f_contiguous, name


def test_layout_opencv_row_present_when_installed():
    names = " ".join(layout.copy_methods())
    assert ("cv2" in names) == (importlib.util.find_spec("cv2") is not None)


def test_layout_copy_rows_quick():
    rows = layout.copy_rows(2, repeat=1)
    assert rows and all(r.equal == "✓" for r in rows if r.seconds is not None)
    assert any(r.ratio_text == "1.0x memcpy" for r in rows)


def test_time_interleaved_rotates_checks_and_drops_failures():
    calls, checked, errors = [], {}, {}

    def make(name):
        def call():
            calls.append(name)
            return name

        return call

    def broken():
        raise ValueError("no")

    timings = time_interleaved(
        {"a": make("a"), "b": make("b"), "bad": broken},
        repeat=3,
        warmup=1,
        check=checked.__setitem__,
        on_error=errors.__setitem__,
    )
    assert set(timings) == {"a", "b"}
    assert all(len(t.times) == 3 for t in timings.values())
    assert checked == {"a": "a", "b": "b"}
    assert set(errors) == {"bad"}
    assert calls[:2] == ["a", "b"] and calls[2:4] == ["b", "a"]  # the order rotates


def test_unordered_frames_mark():
    ref = np.arange(4 * 3 * 5, dtype=np.float32).reshape(4, 3, 5, order="F")
    frames = [ref[:, :, k] for k in (4, 2, 0, 1, 3)]
    assert unordered_frames_mark(frames, ref)[0] == "✓"
    flipped = [f[:, ::-1] for f in frames]
    assert unordered_frames_mark(flipped, ref)[0] == "✗"
    mark, note = unordered_frames_mark(flipped, ref, flips=True)
    assert mark == "✓" and "5 flipped" in note
    assert unordered_frames_mark(frames[:4], ref)[0] == "✗"
    assert unordered_frames_mark(frames[:4] + [frames[0]], ref)[0] == "✗"  # a duplicate


def test_array_check_any_order():
    ref = np.arange(2 * 2 * 3).reshape(2, 2, 3, order="F")
    assert array_check(ref)(ref[:, :, ::-1])[0] == "✗"
    assert array_check(ref, any_order=True)(ref[:, :, ::-1])[0] == "✓"


def _rows() -> list[Row]:
    return [
        Row("bytes", 1.0, 10, key="bytes"),
        Row("pydicom", 12.0, 10, key="pydicom"),
        Row("sitk", 6.0, 10, key="sitk"),
        Row("compute", 3.0, 10, key="lazydicom.compute"),
        Row("numpy", 2.5, 10, key="lazydicom.numpy"),
        Row("broken", key="dbdicom", ratio_text="n/a (error)"),
    ]


def test_apply_targets():
    rows = _rows()
    apply_targets(rows, [
        Target("loop (#8)", "pydicom", "pydicom", "lazydicom.compute", 5.0),
        Target("numpy (#8)", "lazydicom.compute", "lazydicom.compute", "lazydicom.numpy", 1.5,
               at_least=False),
        Target("dbdicom (#8)", "dbdicom", "dbdicom", "lazydicom.compute", 10.0),
    ])
    by = {r.key: r for r in rows}
    assert by["pydicom"].ratio == 4.0 and by["pydicom"].met is False
    assert by["pydicom"].ratio_text.startswith("pydicom loop / ndarray().compute() = 4.0")
    assert by["lazydicom.compute"].met is True and by["lazydicom.compute"].ratio == 1.2
    assert by["dbdicom"].met is None and by["dbdicom"].summary == "dbdicom (#8)"
    assert by["sitk"].ratio_text.startswith("SimpleITK / ndarray().compute() = 2.0")
    assert by["bytes"].ratio_text == "1 (floor)"


def _payload() -> dict:
    rows = _rows()
    apply_targets(rows, [Target("loop (#8)", "pydicom", "pydicom", "lazydicom.compute", 5.0)])
    other = Row("numpy", 2.0, 10, key="lazydicom.numpy", target="<= 3x limit", ratio=0.9,
                ratio_text="0.9x limit", met=True)
    return {
        "created": "now",
        "quick": False,
        "groups": {
            "read": {"load_average": 0.5, "rows": [r.to_dict() for r in rows]},
            "select": {"rows": [other.to_dict()]},
        },
        "markdown": "# lazydicom benchmarks\n\n## Targets\n\nT\n\n## Read\n\ntable\n",
        "markdown_results": "# lazydicom benchmarks\n\nhead\n\n## Read\n\ntable\n",
    }


def test_targets_table_lists_issue_targets_first():
    table = report.targets_table(_payload()).splitlines()
    assert table[2].startswith("| loop (#8) | read | pydicom loop / ndarray().compute() = 4.0")
    assert table[2].endswith("| **no** |")
    assert table[3].startswith("| numpy: <= 3x limit | select | 0.9x limit")


def test_readme_table_and_blocks(tmp_path):
    payload = _payload()
    table = report.readme_table(payload)
    assert "full read, MR 256x256" in table and "pydicom loop 4.0x" in table
    docs, readme, semantics = tmp_path / "b.md", tmp_path / "R.md", tmp_path / "s.md"
    docs.write_text("a\n<!-- begin: targets -->\nold\n<!-- end: targets -->\n"
                    "<!-- begin: results -->\n<!-- end: results -->\nz\n")
    readme.write_text("<!-- begin: performance -->\nold\n<!-- end: performance -->\n")
    semantics.write_text("<!-- begin: layout -->\nold\n<!-- end: layout -->\n")
    written = report.update_docs(payload, docs, readme, semantics)
    assert semantics not in written and "old" in semantics.read_text()  # no layout group
    text = docs.read_text()
    assert "old" not in text and "| loop (#8) |" in text
    assert "### Read" in text and "lazydicom benchmarks" not in text
    assert "pydicom loop 4.0x" in readme.read_text()
    with pytest.raises(ValueError, match="markers"):
        report.replace_block("no markers", "targets", "x")


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                    reason="matplotlib not installed")
def test_plot_read(tmp_path):
    path = report.plot_read(_payload(), tmp_path / "p.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def _scale_extract_payload() -> dict:
    """Rows as benchmarks.scale and benchmarks.extract name them."""
    scale = []
    for n, cold in ((10_000, 1.5), (100_000, 15.0)):
        scale += [
            Row(f"{n:,} frames: cold index", cold, n).to_dict(),
            Row(f"{n:,} frames: reopen, nothing changed", cold / 20, n).to_dict(),
            Row(f"{n:,} frames: build ndarray over every cell", cold / 100, n).to_dict(),
            Row(f"{n:,} frames: compute one cell", 0.01, 1).to_dict(),
            Row(f"{n:,} frames: peak RSS of open + ndarray", None, n,
                peak_mb=n / 1000).to_dict(),
        ]
    extract = [Row("CT 8 series x 150, uncompressed: lazydicom cold", 4.0, 1200).to_dict(),
               Row("CT 8 series x 150, uncompressed: dcm2niix", 1.2, 1200).to_dict()]
    return {"created": "now", "groups": {"scale": {"rows": scale, "load_average": 0.5},
                                         "extract": {"rows": extract, "load_average": 0.5}}}


def test_scale_points_follow_the_row_labels():
    points = report._scale_points(_scale_extract_payload())
    assert points["cold index (s)"] == [(10_000, 1.5), (100_000, 15.0)]
    assert points["one cell (s)"] == [(10_000, 0.01), (100_000, 0.01)]
    assert points["peak RSS (MB)"] == [(10_000, 10.0), (100_000, 100.0)]
    assert set(points) == {"cold index (s)", "reopen (s)", "build ndarray (s)",
                           "one cell (s)", "peak RSS (MB)"}


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                    reason="matplotlib not installed")
def test_plot_scale_and_extract(tmp_path):
    payload = _scale_extract_payload()
    for draw in (report.plot_scale, report.plot_extract):
        path = draw(payload, tmp_path / f"{draw.__name__}.png")
        assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="scale"):
        report.plot_scale({"groups": {}}, tmp_path / "none.png")


def test_docs_blocks_exist():
    """The generated blocks python -m benchmarks --docs rewrites are present."""
    docs = (REPO / "docs" / "benchmarks.md").read_text()
    for name in ("targets", "results"):
        assert f"<!-- begin: {name} -->" in docs and f"<!-- end: {name} -->" in docs
    assert "<!-- begin: performance -->" in (REPO / "README.md").read_text()
    assert "<!-- begin: layout -->" in (REPO / "docs" / "semantics.md").read_text()


def test_layout_table():
    rows = layout.copy_rows(2, repeat=1)
    payload = {"created": "now", "groups": {"layout": {"load_average": 1.0,
                                                      "rows": [r.to_dict() for r in rows]}}}
    table = report.layout_table(payload).splitlines()
    assert table[0].startswith("| per frame (multiple of memcpy) | 512x512 float32 x 2 |")
    assert any(line.startswith("| (e) memcpy of the same bytes |") for line in table)


def test_shared_data_location(monkeypatch, tmp_path):
    monkeypatch.setenv("LAZYDICOM_SHARED_DATA", str(tmp_path))
    assert shared_data() == tmp_path
    monkeypatch.delenv("LAZYDICOM_SHARED_DATA")
    assert shared_data() == REPO.parent / "shared" / "data"


def test_options(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what importing benchmarks.__main__ sets
    from benchmarks.__main__ import _parse

    assert _parse(["--quick", "--only", "ct,layout"]).groups == ["ct", "layout"]
    with pytest.raises(SystemExit):
        _parse(["--quick", "--docs"])
    args = _parse(["--plot"])
    assert Path(args.plot).name == "benchmarks-read.png"


def test_results_roundtrip_json():
    """A payload with rows survives JSON (what --from-results reads)."""
    payload = json.loads(json.dumps(_payload()))
    assert report.find_row(payload, "read", "pydicom")["ratio"] == 4.0


def test_merge_payloads_replaces_groups_and_their_sections():
    """A later run's group replaces the earlier run's, in the data and in the report text."""
    def run(created, git, groups):
        sections = "".join(f"\n## {g}\n\nrows of {g} from {created}\n" for g in groups)
        return {"created": created, "command": ["python", "-m", "benchmarks"],
                "machine": {"lazydicom_git": git},
                "groups": {g: {"title": g, "rows": [Row(f"{g} row", 1.0, 1).to_dict()]}
                           for g in groups},
                "markdown_results": f"# lazydicom benchmarks\n\nhead of {created}\n{sections}"}

    merged = report.merge_payloads([run("first", "aaa", ["index", "scale"]),
                                    run("second", "bbb", ["scale"])])
    assert list(merged["groups"]) == ["index", "scale"]
    assert merged["groups"]["scale"]["created"] == "second"  # for the plots' titles
    text = merged["markdown_results"]
    assert "head of first" in text and "rows of index from first" in text
    assert "rows of scale from second" in text and "rows of scale from first" not in text
    assert "From a separate run: second, lazydicom git bbb" in text
    assert text.index("## index") < text.index("## scale")
    assert "## Targets" in merged["markdown"]


def test_scale_frames_option(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    from benchmarks.__main__ import _parse

    assert _parse([]).scale_frames == [10_000, 50_000, 100_000, 1_000_000]
    assert _parse(["--quick"]).scale_frames == [10_000]
    assert _parse(["--scale-frames", "2000,4000"]).scale_frames == [2000, 4000]
    with pytest.raises(SystemExit):
        _parse(["--scale-frames", "many"])


def test_remote_rows_on_a_tiny_grid(tmp_path):
    """The object-store group end to end on 8 tiny files: every target met, arrays equal."""
    from benchmarks import remote
    from benchmarks.data import GridSpec, ensure_dataset

    spec = GridSpec(name="tiny", coords={"SliceLocation": [0.0, 5.0], "FlipAngle": [2.0, 4.0],
                                         "RepetitionTime": [5.0, 10.0]},
                    rows=8, cols=6, description="t1 vfa", layout="flat")
    rows = remote.run_remote(ensure_dataset(tmp_path, spec, log=lambda *a: None), repeat=1)
    assert len(rows) == 8
    assert all(r.met for r in rows if r.target), [(r.what, r.ratio_text) for r in rows]
    assert all(r.equal == "✓" for r in rows if r.equal)
