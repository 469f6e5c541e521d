"""Command-line overrides of an experiment's ``bench:`` section (``nas bench --table/--accuracy-column/...``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nas.config.experiment import Experiment
from nas.config.objectives import METRICS
from nas.errors import ConfigError


def with_bench_overrides(
    exp: Experiment,
    *,
    table: str | None = None,
    accuracy_column: str | None = None,
    low_fidelity_column: str | None = None,
    cost_column: str | None = None,
) -> Experiment:
    """A copy of ``exp`` with ``bench.table`` (a path from the working directory), the full-fidelity accuracy
    column, the low-fidelity one (the largest epochs below the full training), or the column of the first cost
    objective replaced; None keeps the file's value."""
    b = exp.bench
    if table is not None:
        b = replace(b, table=str(Path(table).expanduser().resolve()))
    if accuracy_column is not None:
        if not b.accuracy_columns:
            raise ConfigError("--accuracy-column", "", "the experiment names no accuracy columns to override",
                              "add `bench.accuracy_columns: {200: cifar10_valid_acc}` to the experiment file")
        b = replace(b, accuracy_columns={**b.accuracy_columns, max(b.accuracy_columns): accuracy_column})
    if low_fidelity_column is not None:
        low = [e for e in b.accuracy_columns if e < max(b.accuracy_columns, default=0)]
        if not low:
            raise ConfigError("--low-fidelity-column", "", "the experiment names no low-fidelity accuracy column",
                              "add one to the experiment, e.g. `bench.accuracy_columns: {200: ..., 12: ...}`")
        b = replace(b, accuracy_columns={**b.accuracy_columns, max(low): low_fidelity_column})
    if cost_column is not None:
        costs = [o.name for o in exp.objectives if METRICS[o.name].source != "train"]
        if not costs:
            raise ConfigError("--cost-column", "", "the experiment has no cost objective",
                              "add one, e.g. `{name: mflops, direction: minimize}`")
        b = replace(b, cost_columns={**b.cost_columns, costs[0]: cost_column})
    if b.table is None:
        raise ConfigError(exp.source, "bench/table", "no benchmark table named",
                          "add `bench: {table: ...}` to the experiment file or pass --table")
    return replace(exp, bench=b)
