"""Several seeds of one tabular search, with the yardsticks they are read against (what ``nas bench`` runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nas.bench.loop import BenchRun, run_bench
from nas.bench.summary import aggregate, run_figures
from nas.bench.table import BenchTable, load_table
from nas.bench.targets import reference, true_hypervolume
from nas.config.experiment import Experiment
from nas.errors import ConfigError


@dataclass
class BenchResult:
    """Runs of one experiment on one table; ``true_hypervolume`` is the whole table's under ``reference``."""

    experiment: Experiment
    table: BenchTable
    reference: dict[str, float]
    true_hypervolume: float
    runs: list[BenchRun] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the setting, one entry per run, and the medians/quartiles per hypervolume target."""
        return {
            "experiment": self.experiment.source, "table": self.table.source,
            "objectives": {o.name: o.direction for o in self.experiment.objectives},
            "columns": {**{o.name: self.table.config.cost_columns.get(o.name) for o in self.experiment.objectives},
                        "accuracy": self.table.config.accuracy_columns},
            "reference": self.reference, "true_hypervolume": self.true_hypervolume,
            "runs": [run_figures(r, self.true_hypervolume) for r in self.runs],
            "summary": aggregate(self.runs, self.true_hypervolume),
        }


def bench_experiment(exp: Experiment, seeds: int = 1, table: BenchTable | None = None, **kwargs: Any) -> BenchResult:
    """Run ``exp`` on its table for seeds ``search.seed`` .. ``search.seed + seeds - 1``; ``kwargs`` go to
    :func:`nas.bench.loop.run_bench` (``max_evaluations``, ``max_compute``, ``until_hypervolume``, ``reuse``)."""
    if seeds < 1:
        raise ConfigError("--seeds", "", f"must be >= 1, got {seeds}", "pass --seeds 10")
    table = table or load_table(exp)
    ref = reference(exp, table)
    result = BenchResult(exp, table, ref, true_hypervolume(exp, table, ref))
    for i in range(seeds):
        result.runs.append(run_bench(exp, table, seed=exp.search.seed + i, **kwargs))
    return result
