"""Tabular benchmark backend (``nas bench``): the real controller and stopping rules, metrics from a table.

- :mod:`nas.bench.table`: load and check the CSV an experiment's ``bench:`` section names; look rows up.
- :mod:`nas.bench.compute`: simulated compute in full-training equivalents (a 12-of-200-epoch stop costs 0.06).
- :mod:`nas.bench.loop`: one seed's search, returning its trajectory of (evaluations, compute, hypervolume).
- :mod:`nas.bench.targets`: reference point, the table's true hypervolume, compute to reach a fraction of it.
"""

from nas.bench.compute import SimulatedCompute
from nas.bench.loop import BenchRun, run_bench
from nas.bench.table import BenchTable, load_table
from nas.bench.targets import TARGETS, Point, median_iqr, reached, reference, true_hypervolume

__all__ = ["TARGETS", "BenchRun", "BenchTable", "Point", "SimulatedCompute", "load_table", "median_iqr",
           "reached", "reference", "run_bench", "true_hypervolume"]
