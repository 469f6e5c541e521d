"""The tabular backend: a benchmark table behind the same interface as Ray Tune (``nas bench``).

- :mod:`.table`: load and check the CSV an experiment's ``bench:`` section names; look rows up.
- :mod:`.compute`: simulated compute in full-training equivalents (a 12-of-200-epoch stop costs 0.06).
- :mod:`.backend`: :class:`TableBackend`, trials whose epochs are table lookups.
"""

from nas.search.backends.table.backend import COMPUTE_KEY, TableBackend
from nas.search.backends.table.compute import SimulatedCompute
from nas.search.backends.table.table import ARCH_KEYS, BenchTable, arch_key, load_table, table_path

__all__ = ["ARCH_KEYS", "COMPUTE_KEY", "BenchTable", "SimulatedCompute", "TableBackend", "arch_key", "load_table",
           "table_path"]
