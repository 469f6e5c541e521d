"""Rebuild a search's state after its driver died: the Optuna study is the durable trial ledger.

Finished and failed trials come back as records (never rerun). Trials that were running when the driver died are
told to Optuna as failed with the status ``interrupted`` and do not count towards the planned trials, so new
trials take their place; they stay interrupted (never failed) across any number of crashes. Child runs the dead
driver had not yet written to MLflow are backfilled from the study. The sampler is seeded afresh from the search
seed and the number of trials so far, so a resumed search continues instead of replaying its first draws.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

import optuna
from optuna.trial import TrialState

from nas.config.experiment import Experiment
from nas.search.controller.core import (
    REASON_ATTR,
    RECORD_ATTR,
    REPEAT_STATUS,
    SAVED_ATTR,
    STATUS_ATTR,
    Controller,
)
from nas.search.controller.samplers import make_sampler
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
        if t.state == TrialState.WAITING:  # enqueued, never asked: it never ran; the next ask runs it
            continue
        if t.state == TrialState.RUNNING:
            _mark_interrupted(study, t)
            records.append(_from_trial(t, "interrupted", INTERRUPTED))
            continue
        text = t.user_attrs.get(RECORD_ATTR)
        if status == "interrupted":  # an earlier crash (or stop) interrupted it: still not a failure
            rec = TrialRecord.from_json(text) if text else _from_trial(t, "interrupted", INTERRUPTED)
            rec.status, rec.reason = "interrupted", str(t.user_attrs.get(REASON_ATTR, INTERRUPTED))
            records.append(rec)
            continue
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


def _mark_interrupted(study: optuna.Study, t: optuna.trial.FrozenTrial, reason: str = INTERRUPTED,
                      record: str | None = None) -> None:
    # A running trial of a dead process: Optuna's Trial handle is the public way to write to it.
    live = optuna.trial.Trial(study, t._trial_id)
    live.set_user_attr(STATUS_ATTR, "interrupted")
    live.set_user_attr(REASON_ATTR, reason)
    if record is not None:
        live.set_user_attr(RECORD_ATTR, record)
    study.tell(t.number, state=TrialState.FAIL)
    log.info("trial %d was running when the driver stopped: marked interrupted", t.number)


def record_in_flight(controller: Controller, records: Iterable[TrialRecord], reason: str,
                     bill: Callable[[TrialRecord], None] | None = None) -> list[TrialRecord]:
    """After the backend ended its run early (a signal, ``time_budget_s``): every trial still running in the
    study is told to Optuna as interrupted with ``reason``; returns their records (status ``interrupted``), to be
    logged as child runs. ``bill`` (e.g. :meth:`SearchLoop.bill`) adds each record's ``nas_cost/*`` metrics
    before the study stores it."""
    by_number = {r.number: r for r in records}
    out = []
    for t in controller.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # WAITING: never ran
        rec = by_number.get(t.number) or _from_trial(t, "interrupted", reason)
        rec.status, rec.reason = "interrupted", f"interrupted: {reason}"
        rec.end_time = time.time()
        if rec.start_time == 0.0:
            rec.start_time = rec.end_time
        rec.metrics = {**rec.profile, **(rec.history[-1] if rec.history else {})}
        if bill is not None:
            bill(rec)
        _mark_interrupted(controller.study, t, rec.reason, rec.to_json())
        out.append(rec)
    return out


def resumed_seed(seed: int, trials_so_far: int) -> int:
    """The sampler seed of a search resumed after ``trials_so_far`` Optuna trials: a function of both, so each
    resume draws new points, and resuming the same state twice draws the same ones."""
    return (seed * 1_000_003 + trials_so_far * 7_919 + 1) % (2**31 - 1)


def reseed_sampler(controller: Controller, exp: Experiment, trials_so_far: int) -> None:
    """Give the controller's study a sampler seeded from (search seed, trials so far): a fresh sampler with the
    search seed would repeat the dead driver's first draws."""
    seeded = replace(exp, search=replace(exp.search, seed=resumed_seed(exp.search.seed, trials_so_far)))
    controller.study.sampler = make_sampler(seeded)


def missing_child_runs(records: list[TrialRecord], logged: dict[int, str]) -> list[TrialRecord]:
    """Records whose child run is not in MLflow yet (``logged``: trial number -> run id); sets known run ids."""
    missing = []
    for r in records:
        if r.number in logged:
            r.run_id = logged[r.number]
        else:
            missing.append(r)
    return missing



def record_of(t: optuna.trial.FrozenTrial) -> TrialRecord:
    """The record of a finished trial as the study keeps it (its per-epoch history too, when it was stored with
    it: records of older versions have none)."""
    status = t.user_attrs.get(STATUS_ATTR)
    text = t.user_attrs.get(RECORD_ATTR)
    fallback = "interrupted" if status == "interrupted" else "failed"
    rec = TrialRecord.from_json(text) if text else _from_trial(t, fallback, str(t.user_attrs.get(REASON_ATTR, fallback)))
    if status == "interrupted":
        rec.status = "interrupted"
    return rec
