"""Benchmarks of lazydicom against the tools a user would pick instead.

Run ``python -m benchmarks`` from the repository root; see ``README.md`` here.
Modules: :mod:`.data` generates and caches the data, :mod:`.peers` holds the
peer implementations and the raw-read limit, :mod:`.index`, :mod:`.read`,
:mod:`.compressed`, :mod:`.decoders` and :mod:`.memory` run one group each,
:mod:`.common` has the row, timing and table helpers.
"""
