"""``bench:``: ``nas bench`` looks metrics up in a tabular benchmark instead of training (nas.bench)."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from nas.config._schema import Float, Int, Name, check, section
from nas.config.objectives import METRICS

if TYPE_CHECKING:
    from nas.config.experiment import Experiment

COSTS = tuple(k for k, m in METRICS.items() if m.source == "profile")


@section
class BenchConfig:
    """``table``: CSV path, relative to the experiment file; ``arch_column`` holds each row's architecture string.
    ``accuracy_columns``: epochs -> column; the largest epochs is the full training (its column is the
    validation accuracy the search sees), the others are the lower fidelities Pareto-ASHA may stop at.
    ``cost_columns``: metric -> column for the costs (every cost objective needs one; extra ones fill the profile).
    ``proxy_columns``: proxy name -> column of precomputed zero-cost scores (higher = better).
    ``test_column``: reported, never shown to the search. ``accuracy_scale`` multiplies accuracies (0.01: % ->
    fraction). ``reference``: hypervolume reference per objective (default: 0 for accuracy, 1.01 × the table's
    largest value for a minimized cost). ``train_samples``: training images per epoch, for simulated FLOPs.
    """

    table: Name | None = None
    arch_column: Name = "arch_str"
    accuracy_columns: dict[Int, Name] = field(default_factory=dict)
    cost_columns: dict[Name, Name] = field(default_factory=dict)
    proxy_columns: dict[Name, Name] = field(default_factory=dict)
    test_column: Name | None = None
    accuracy_scale: Float = Field(1.0, gt=0)
    reference: dict[Name, Float] = field(default_factory=dict)
    train_samples: Int = Field(25_000, ge=1)

    @field_validator("accuracy_columns", mode="after")
    @classmethod
    def _epochs(cls, columns: dict[int, str]) -> dict[int, str]:
        check(all(e >= 1 for e in columns), f"must map epochs (ints >= 1) to columns, got {columns}",
              "e.g. `accuracy_columns: {200: cifar10_valid_acc, 12: cifar10_test_acc_12ep}`")
        return columns

    @field_validator("cost_columns", mode="after")
    @classmethod
    def _costs(cls, columns: dict[str, str]) -> dict[str, str]:
        check(all(k in COSTS for k in columns), f"keys must be cost metrics, got {list(columns)}",
              f"use: {', '.join(COSTS)}")
        return columns


def check_bench(exp: Experiment) -> None:
    """The ``bench:`` section against the rest of the experiment (only when it names a table; the columns
    are checked when the table is loaded). Paths are from the experiment's top."""
    b = exp.bench
    if b.table is None:
        return
    epochs = list(b.accuracy_columns)
    full = max(epochs) if epochs else None
    train = [o for o in exp.objectives if METRICS[o.name].source == "train"]
    costs = [o.name for o in exp.objectives if METRICS[o.name].source != "train"]
    rungs = exp.early_stopping.rungs or []
    check(bool(epochs), "must map epochs (ints >= 1) to columns, got none",
          "e.g. `accuracy_columns: {200: cifar10_valid_acc, 12: cifar10_test_acc_12ep}`", "bench/accuracy_columns")
    check(len(train) == 1 and train[0].direction == "maximize",
          "a bench search needs exactly one maximized accuracy objective", "keep `{name: val_accuracy}`", "objectives")
    missing = [c for c in costs if c not in b.cost_columns]
    check(not missing, f"every cost objective needs a column: missing {missing}",
          "add e.g. `mflops: flops_M` under bench/cost_columns", "bench/cost_columns")
    check(exp.training.epochs == full, f"is {exp.training.epochs}, but the table's full training is {full} epochs",
          f"set `training.epochs: {full}`", "training/epochs")
    check(exp.early_stopping.method == "none" or (bool(rungs) and all(r in epochs for r in rungs)),
          f"rungs must be epochs the table has an accuracy for ({epochs}), got {rungs or 'default'}",
          f"set `rungs:` to some of {sorted(e for e in epochs if e != full)}", "early_stopping/rungs")
    check(exp.proxy.use == "off" or "params" in b.proxy_columns,
          "proxy screening needs the `params` baseline among the proxy columns", "add `params: params_M`",
          "bench/proxy_columns")
    check(exp.proxy.use == "off" or exp.proxy.name in ("auto", *b.proxy_columns),
          f"{exp.proxy.name!r} has no column under bench/proxy_columns", "add it there or use `name: auto`", "proxy/name")
    names = {o.name for o in exp.objectives}
    check(all(k in names for k in b.reference), f"keys must be objectives, got {list(b.reference)}",
          "e.g. `reference: {val_accuracy: 0.8}`", "bench/reference")
