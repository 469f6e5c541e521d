"""When trials or the search stop early: ``early_stopping:``, ``budget:`` and ``plateau:``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from nas.config._schema import Bool, Float, Int, Str, check, in_unit, one_of, section

EARLY_STOPPING = ("none", "pareto-asha", "pareto-promote")


@section
class EarlyStoppingConfig:
    """``pareto-asha``: trials are judged at ``rungs`` (epochs; default ``epochs / eta**k``, k >= 1) and go on
    only in the top ``1/eta`` of the non-dominated order at that rung; the first ``grace`` at a rung always go on.
    ``pareto-promote`` (``nas bench``): every trial stops at the one rung; a stopped trial is trained in full later,
    when it is expected to add the most hypervolume and full trainings have used under ``full_share`` of the
    compute, once ``promote_after`` trials reached the rung, among those within its first ``promote_layers``
    non-dominated layers (0: all) (:class:`nas.stopping.promote.Promoter`)."""

    method: Annotated[Str, one_of(EARLY_STOPPING, "method")] = "none"
    eta: Float = Field(3.0, gt=1)
    rungs: list[Int] | None = None
    grace: Int = Field(1, ge=1)
    full_share: Annotated[Float, in_unit("full_share", 0.5)] = 0.5
    min_pairs: Int = Field(8, ge=2)
    promote_after: Int = Field(0, ge=0)
    promote_layers: Int = Field(3, ge=0)

    @model_validator(mode="after")
    def _one_rung_to_promote_from(self) -> EarlyStoppingConfig:
        rungs = self.rungs or []
        check(self.method != "pareto-promote" or len(rungs) == 1,
              f"pareto-promote stops every trial at one rung; got {rungs or 'none'}", "set one rung, e.g. `rungs: [12]`",
              "rungs")
        return self


def check_rungs(es: EarlyStoppingConfig, epochs: int) -> None:
    """The rungs against ``training.epochs`` (paths from the experiment's top)."""
    rungs = es.rungs or []
    check(all(1 <= r < epochs for r in rungs),
          f"rungs are epochs in [1, training.epochs={epochs}), got {rungs}",
          "e.g. `rungs: [1, 3]` for 9 epochs, or leave it out for epochs/eta^k", "early_stopping/rungs")
    check(es.method == "none" or epochs >= 2, "pareto-asha needs at least 2 epochs to stop anything early",
          "raise `training.epochs` or drop early stopping", "training/epochs")


@section
class BudgetConfig:
    """Total budgets (the search stops cleanly at the first reached) and per-trial caps (None = none), each > 0.
    ``trial_tflops`` rejects before training any candidate whose estimated training compute exceeds it;
    ``trial_seconds`` stops a trial's training at that wall time (recorded as failed, reason given)."""

    train_tflops: Float | None = Field(None, gt=0)
    device_hours: Float | None = Field(None, gt=0)
    wall_hours: Float | None = Field(None, gt=0)
    trial_tflops: Float | None = Field(None, gt=0)
    trial_seconds: Float | None = Field(None, gt=0)


@section
class PlateauConfig:
    """Stop when the hypervolume gained per evaluation-equivalent of compute over the last ``window``
    finished trials falls below ``threshold`` (a fraction of the front's hypervolume), after ``min_trials``."""

    enabled: Bool = False
    window: Int = Field(10, ge=1)
    threshold: Float = Field(0.002, ge=0)
    min_trials: Int = Field(20, ge=0)
