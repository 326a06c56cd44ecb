"""The page docs/reliability.md lists exactly the kinds the fault suite runs."""

from __future__ import annotations

from tests.faults import catalog


def test_docs_table_is_generated_from_the_suite():
    kinds = catalog.load_all()
    assert len(kinds) >= 60
    page = catalog.DOCS.read_text(encoding="utf-8")
    assert catalog.docs_section(page) == catalog.markdown(kinds), (
        "docs/reliability.md is out of date with tests/faults: run "
        "`python -m tests.faults.catalog --write`"
    )


def test_every_class_has_kinds_and_outcomes_are_known():
    kinds = catalog.load_all()
    assert {k.issue_class for k in kinds.values()} == set(catalog.CLASSES)
    assert {k.outcome for k in kinds.values()} <= set(catalog.OUTCOMES)
