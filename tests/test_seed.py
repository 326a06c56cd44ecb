"""The seed's docstring examples (dbdicom ``Series.ndarray``) run verbatim.

``tests/seed_ndarray.txt`` is the seed text unchanged (plus a provenance note);
its ``>>>`` examples run as a doctest twice: with ``db`` the lazydicom module,
as after ``import lazydicom as db``, and with ``db`` an open database, as after
``db = lazydicom.open(folder)``.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

import lazydicom

SEED = Path(__file__).with_name("seed_ndarray.txt")


def _run(globs: dict) -> tuple[doctest.TestResults, str, dict]:
    text = SEED.read_text()
    test = doctest.DocTestParser().get_doctest(text, globs, "seed_ndarray", str(SEED), 0)
    assert len(test.examples) == 13
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    runner.run(test, out=report.append, clear_globs=False)
    return runner.summarize(verbose=False), "".join(report), test.globs


@pytest.fixture
def module_globals() -> dict:
    globs: dict = {}
    exec("import lazydicom as db\nimport numpy as np", globs)
    return globs


def test_seed_examples_with_import_lazydicom_as_db(module_globals):
    results, report, globs = _run(module_globals)
    assert results.failed == 0, report
    # the examples really ran on lazydicom: a temporary database holds the zeros
    zeros = globs["zeros"]
    assert isinstance(zeros, lazydicom.Series)
    assert zeros.ndarray(("SliceLocation", "FlipAngle", "RepetitionTime")).dtype == np.uint16


def test_seed_examples_with_an_opened_database(tmp_path):
    db = lazydicom.open(tmp_path)
    results, report, globs = _run({"db": db, "np": np})
    assert results.failed == 0, report
    zeros = globs["zeros"]
    assert zeros.database is db
    assert all(Path(p).is_relative_to(tmp_path) for p in zeros.files())
    assert len(zeros.files()) == 8 * 3 * 2
    # and a fresh open of the folder finds the same series
    assert len(lazydicom.open(tmp_path).series()) == 1


def test_seed_set_ndarray_round_trip(tmp_path):
    """The seed's set_ndarray counterpart: values land in the cells of their coordinates."""
    db = lazydicom.open(tmp_path)
    coords = {
        "SliceLocation": 10 * np.arange(8),
        "FlipAngle": [2, 15, 30],
        "RepetitionTime": [2.5, 5.0],
    }
    zeros = db.zeros((128, 128, 8, 3, 2), coords)
    values = np.arange(128 * 128 * 8 * 3 * 2, dtype=np.uint32).reshape(128, 128, 8, 3, 2)
    values = (values % 65536).astype(np.uint16)
    zeros.set_ndarray(values, coords)
    np.testing.assert_array_equal(zeros.ndarray(dims=tuple(coords)).compute(), values)
    flip15 = zeros.ndarray(coords={**coords, "FlipAngle": [15]}).compute()
    np.testing.assert_array_equal(flip15, values[:, :, :, 1:2, :])
