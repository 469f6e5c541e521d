"""A tabular benchmark: one CSV row per architecture, with accuracies at several fidelities, costs and proxies.

:func:`load_table` reads and checks the CSV an experiment's ``bench:`` section names and refuses, with file,
field and fix, a missing file, a missing column, a duplicated or absent architecture. :class:`BenchTable` looks
an architecture up by its string (for the ``nb201`` builder, :func:`nas.builders.nb201.params_to_arch`).
Accuracies come back multiplied by ``bench.accuracy_scale``; costs and proxy scores in their columns' units.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.builders.nb201 import params_to_arch
from nas.config.experiment import BenchConfig, Experiment
from nas.errors import ConfigError, did_you_mean
from nas.profile import Profile

#: builder name -> params -> the architecture string of the table's ``arch_column``
ARCH_KEYS: dict[str, Callable[[Mapping[str, Any]], str]] = {"nb201": params_to_arch}


def table_path(exp: Experiment) -> Path:
    """The CSV ``bench.table`` names: relative paths are resolved against the experiment file's folder."""
    if exp.bench.table is None:
        raise ConfigError(exp.source, "bench/table", "this experiment names no benchmark table",
                          "add a `bench:` section with `table: ../benchmarks/data/nb201/nb201_cifar10.csv`, "
                          "or pass --table")
    p = Path(exp.bench.table).expanduser()
    if not p.is_absolute() and exp.source != "<string>":
        p = Path(exp.source).parent / p
    return p


@dataclass(frozen=True)
class BenchTable:
    """The columns an experiment uses, as float arrays, and the row of each architecture string.

    ``full_epochs`` is the largest key of ``bench.accuracy_columns``: the full training, whose column is the only
    accuracy a hypervolume is computed on.
    """

    source: str
    config: BenchConfig
    archs: tuple[str, ...]
    rows: dict[str, int]
    columns: dict[str, np.ndarray]

    @property
    def full_epochs(self) -> int:
        return max(self.config.accuracy_columns)

    @property
    def fidelities(self) -> list[int]:
        """Epochs with an accuracy column, ascending."""
        return sorted(self.config.accuracy_columns)

    def __len__(self) -> int:
        return len(self.archs)

    def row(self, arch: str) -> int:
        try:
            return self.rows[arch]
        except KeyError:
            raise KeyError(f"architecture {arch!r} is not in {self.source}") from None

    def accuracy(self, arch: str, epochs: int | None = None) -> float:
        """Accuracy after ``epochs`` (default: the full training), times ``accuracy_scale``."""
        col = self.config.accuracy_columns[self.full_epochs if epochs is None else epochs]
        return float(self.columns[col][self.row(arch)]) * self.config.accuracy_scale

    def test_accuracy(self, arch: str) -> float | None:
        """The reporting-only test accuracy (times ``accuracy_scale``), or None without a ``test_column``."""
        col = self.config.test_column
        return None if col is None else float(self.columns[col][self.row(arch)]) * self.config.accuracy_scale

    def costs(self, arch: str) -> dict[str, float]:
        """Every ``cost_columns`` metric of ``arch``, in its column's unit."""
        i = self.row(arch)
        return {m: float(self.columns[c][i]) for m, c in self.config.cost_columns.items()}

    def scores(self, arch: str) -> dict[str, float]:
        """Every ``proxy_columns`` score of ``arch`` (NaN where the table has none)."""
        i = self.row(arch)
        return {p: float(self.columns[c][i]) for p, c in self.config.proxy_columns.items()}

    def profile(self, arch: str) -> Profile:
        """A :class:`Profile` from the cost columns; metrics the table lacks are NaN (or 0 params)."""
        c = self.costs(arch)
        return Profile(
            mflops=c.get("mflops", math.nan), params=c.get("params", 0), latency_ms=c.get("latency_ms"),
            peak_mem_mb=c.get("peak_mem_mb"), train_peak_mem_mb=None, batch_size=1, device="table",
            flops_by_op={}, unsupported_ops={},
        )

    def values(self, metric: str) -> np.ndarray:
        """A cost metric's (or ``val_accuracy``'s, scaled) column over the whole table."""
        if metric in self.config.cost_columns:
            return self.columns[self.config.cost_columns[metric]]
        return self.columns[self.config.accuracy_columns[self.full_epochs]] * self.config.accuracy_scale


def arch_key(exp: Experiment, builder: str) -> Callable[[Mapping[str, Any]], str]:
    """The function from sampled params to the table's architecture string for spaces of ``builder``."""
    if builder not in ARCH_KEYS:
        raise ConfigError(exp.source, "space", f"nas bench cannot name {builder!r} architectures in a table",
                          f"use a space whose builder is one of: {', '.join(ARCH_KEYS)}")
    return ARCH_KEYS[builder]


def load_table(exp: Experiment, path: str | Path | None = None) -> BenchTable:
    """Read and check the CSV of ``exp.bench`` (or ``path``); see the module docstring."""
    b = exp.bench
    p = Path(path) if path is not None else table_path(exp)
    src = str(p)
    if not p.is_file():
        raise ConfigError(exp.source, "bench/table", f"table {src!r} not found",
                          "give the CSV path relative to the experiment file (or pass --table)")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ConfigError(src, "", f"not a readable CSV: {e}", "give a comma-separated file with a header row") from None
    wanted: list[tuple[str, str]] = [("bench/arch_column", b.arch_column)]
    wanted += [(f"bench/accuracy_columns/{k}", v) for k, v in b.accuracy_columns.items()]
    wanted += [(f"bench/cost_columns/{k}", v) for k, v in b.cost_columns.items()]
    wanted += [(f"bench/proxy_columns/{k}", v) for k, v in b.proxy_columns.items()]
    if b.test_column is not None:
        wanted.append(("bench/test_column", b.test_column))
    for field, col in wanted:
        if col not in df.columns:
            raise ConfigError(src, field, f"no column {col!r}{did_you_mean(col, df.columns)}",
                              f"set `{field.rsplit('/', 1)[-1]}` in {exp.source} to one of: {', '.join(df.columns)}")
    archs = tuple(str(a) for a in df[b.arch_column])
    rows = {a: i for i, a in enumerate(archs)}
    if len(rows) != len(archs):
        dup = df[b.arch_column][df[b.arch_column].duplicated()].iloc[0]
        raise ConfigError(src, "bench/arch_column", f"architecture {dup!r} appears more than once",
                          "keep one row per architecture")
    columns: dict[str, np.ndarray] = {}
    for field, col in wanted[1:]:
        try:
            columns[col] = df[col].to_numpy(dtype=float)
        except ValueError:
            raise ConfigError(src, field, f"column {col!r} is not numeric", "give numbers (NaN for missing)") from None
        finite_needed = not field.startswith("bench/proxy_columns")
        if finite_needed and not np.isfinite(columns[col]).all():
            raise ConfigError(src, field, f"column {col!r} has missing or non-finite values",
                              "fill them, or drop those rows from the table")
    return BenchTable(source=src, config=b, archs=archs, rows=rows, columns=columns)
