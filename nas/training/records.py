"""Plain records that cross module boundaries (runner -> search -> tracking/ledger): dicts and dataclasses only."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TrialStatus = Literal["pending", "complete", "failed", "pruned", "interrupted"]


@dataclass
class TrialRecord:
    """One trained (or failed, or early-stopped: ``pruned``) trial as the search saw it.

    ``metrics`` are final values (``val_accuracy`` in [0, 1], ``mflops``, ``params``, ``latency_ms``,
    ``train_flops``, ``train_seconds`` ...); ``history`` one dict per epoch; times are ``time.time()`` seconds.
    """

    number: int
    params: dict[str, Any]
    training: dict[str, Any]
    profile: dict[str, Any]
    status: TrialStatus = "pending"
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    start_time: float = 0.0
    end_time: float = 0.0
    checkpoint_dir: str | None = None
    run_id: str | None = None
    pareto: bool = False
    node: dict[str, str] = field(default_factory=dict)  # the Ray node it ran on: {"id": ..., "ip": ...}

    def to_json(self) -> str:
        """The record, per-epoch history included, for the durable trial ledger (Optuna): a child run rebuilt
        from it (a resume's or the doctor's backfill) is the run the driver would have written."""
        d = asdict(self)
        d.pop("run_id")
        d.pop("pareto")
        return json.dumps(d, default=float)

    @classmethod
    def from_json(cls, text: str) -> TrialRecord:
        return cls(**json.loads(text))

    def row(self) -> dict[str, Any]:
        """A flat row for Pareto queries and tables: trial number, status and every metric."""
        return {"trial": self.number, "status": self.status, **self.metrics}
