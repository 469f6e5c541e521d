"""Rebuild a search's state after its driver died: the Optuna study is the durable trial ledger.

Finished and failed trials come back as records (never rerun). Trials that were running when the driver died are
told to Optuna as failed with the reason ``interrupted`` and do not count towards the planned trials, so new
trials take their place. Child runs the dead driver had not yet written to MLflow are backfilled from the study.
"""

from __future__ import annotations

import logging

import optuna
from optuna.trial import TrialState

from nas.search.controller.core import (
    REASON_ATTR,
    RECORD_ATTR,
    REPEAT_STATUS,
    SAVED_ATTR,
    STATUS_ATTR,
    Controller,
)
from nas.training.records import TrialRecord

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the search driver stopped before this trial finished"


def recover_records(controller: Controller) -> list[TrialRecord]:
    """Records of every trained, failed or interrupted trial in the controller's study; restores its counters."""
    study = controller.study
    records: list[TrialRecord] = []
    for t in study.get_trials(deepcopy=False):
        status = t.user_attrs.get(STATUS_ATTR)
        if status == "infeasible":
            controller.stats.rejected += 1
            controller.stats.rejected_saved_train_flops += float(t.user_attrs.get(SAVED_ATTR, 0.0))
            continue
        if status == "screened":  # drawn and scored, never trained: not a trial of the search
            controller.stats.screened_out += 1
            continue
        if status == REPEAT_STATUS:  # answered from a known result, never trained: not a trial of the search
            controller.stats.repeats += 1
            continue
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            _mark_interrupted(study, t)
            records.append(_from_trial(t, "interrupted", INTERRUPTED))
            continue
        text = t.user_attrs.get(RECORD_ATTR)
        if text:
            rec = TrialRecord.from_json(text)
        else:  # failed before a record existed (e.g. could not be built)
            rec = _from_trial(t, "failed", str(t.user_attrs.get(REASON_ATTR, "failed")))
        if t.state == TrialState.COMPLETE:
            controller.stats.told_complete += 1
        elif t.state == TrialState.PRUNED:
            controller.stats.told_pruned += 1
        else:
            controller.stats.told_failed += 1
        records.append(rec)
        controller.remember(rec.number, rec.params, rec.training, rec.status, rec.metrics, rec.reason, t.params)
    return records


def _from_trial(t: optuna.trial.FrozenTrial, status: str, reason: str) -> TrialRecord:
    arch = {k: v for k, v in t.params.items() if not k.startswith("train/")}
    training = {k[len("train/"):]: v for k, v in t.params.items() if k.startswith("train/")}
    start = t.datetime_start.timestamp() if t.datetime_start else 0.0
    end = t.datetime_complete.timestamp() if t.datetime_complete else start
    return TrialRecord(number=t.number, params=arch, training=training, profile={}, status=status,  # type: ignore[arg-type]
                       reason=reason, start_time=start, end_time=end)


def _mark_interrupted(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
    # A running trial of a dead process: Optuna's Trial handle is the public way to write to it.
    live = optuna.trial.Trial(study, t._trial_id)
    live.set_user_attr(STATUS_ATTR, "interrupted")
    live.set_user_attr(REASON_ATTR, INTERRUPTED)
    study.tell(t.number, state=TrialState.FAIL)
    log.info("trial %d was running when the driver stopped: marked interrupted", t.number)


def missing_child_runs(records: list[TrialRecord], logged: dict[int, str]) -> list[TrialRecord]:
    """Records whose child run is not in MLflow yet (``logged``: trial number -> run id); sets known run ids."""
    missing = []
    for r in records:
        if r.number in logged:
            r.run_id = logged[r.number]
        else:
            missing.append(r)
    return missing

