"""The tabular benchmark harness (``nas bench``): the search loop over the table backend, read against the table.

- :mod:`nas.bench.session`: one seed's search (:func:`search_table`) and several (:func:`bench_experiment`).
- :mod:`nas.bench.targets`: the table's true hypervolume, compute to reach a fraction of it.
- :mod:`nas.bench.summary`: per-run and per-method figures. :mod:`nas.bench.overrides`: ``nas bench`` flags.

The table itself and its backend live in :mod:`nas.search.backends.table`.
"""

from nas.bench.session import BenchResult, BenchRun, bench_experiment, search_table
from nas.bench.targets import TARGETS, median_iqr, reached, reference, true_hypervolume
from nas.search.backends.table import BenchTable, SimulatedCompute, load_table
from nas.search.loop import Point

__all__ = ["TARGETS", "BenchResult", "BenchRun", "BenchTable", "Point", "SimulatedCompute", "bench_experiment",
           "load_table", "median_iqr", "reached", "reference", "search_table", "true_hypervolume"]
