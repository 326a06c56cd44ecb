"""Benchmarks of lazydicom against the tools a user would pick instead.

Run ``python -m benchmarks`` from the repository root; see ``README.md`` here.
Modules: :mod:`.data` generates and caches the synthetic data, :mod:`.realdata`
derives data sets from the shared corpus of real files, :mod:`.peers` holds
the peer implementations and the raw-read limits, :mod:`.fullread` times a
list of tools on one series (the ``read``, ``ct`` and ``jpeg`` groups);
:mod:`.index`, :mod:`.read`, :mod:`.ct`, :mod:`.compressed`, :mod:`.layout`,
:mod:`.decoders`, :mod:`.memory`, :mod:`.write` and :mod:`.cache` run one
group each; :mod:`.common` has the row, timing and table helpers and
:mod:`.report` the targets table, the plot and the generated parts of the docs.
"""
