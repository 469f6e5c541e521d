"""``nas doctor RUN_ID``: check a search's durable state, repair what can be repaired, say the truth about the rest.

Checks, in order: the parent run; the study (its journal file, a torn or damaged tail, that it is this run's);
whether a driver holds the run now; trials left running by a dead driver; the study against MLflow (every trial
has a finished child run, no child run without a trial); Pareto tags against the study's front; the Pareto
models (weights on disk, logged, registered once). With ``repair=True``, and only when no driver holds the run:
trials left running are marked interrupted, missing child runs are written from the study's records (bill and per-epoch
history included), half-written ones completed, and Pareto tags and registered versions set to the front. A lost checkpoint or a damaged journal
record cannot be repaired; the report says so.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.config.runtime import Resources
from nas.cost.ledger import bill_if_missing
from nas.durable.journal import JournalCorruptError, journal_tail
from nas.durable.lease import DriverLease, LeaseHeldError
from nas.durable.study import StudyLocation, owner, recorded_location
from nas.pareto import pareto_mask
from nas.search.controller import RECORD_ATTR, STATUS_ATTR, open_storage
from nas.search.resume import INTERRUPTED, _mark_interrupted, record_of
from nas.tracking.sync import registered_versions, sync_pareto
from nas.tracking.tracker import TAG_PARETO, SearchTracker, client_for, get_search_run, trial_runs


@dataclass
class Finding:
    """One check: ``ok`` after any repair; ``detail`` says what was found (and done)."""

    check: str
    ok: bool
    detail: str
    repaired: bool = False


def doctor(run_id: str, tracking_uri: str, *, repair: bool = False) -> list[Finding]:
    """Check (and with ``repair``, fix) search ``run_id``; one :class:`Finding` per check."""
    client = client_for(tracking_uri)
    run = get_search_run(client, run_id)
    out: list[Finding] = []
    if run.info.run_id != run_id:
        return [Finding("parent run", False, f"{run_id} is a trial of search {run.info.run_id}: run the doctor on it")]
    stop = run.data.tags.get("nas.stop_reason", "")
    out.append(Finding("parent run", True, f"{run.info.status}" + (f", stop reason: {stop}" if stop else "")))
    try:
        where = recorded_location(tracking_uri, run_id, run.data.tags)
    except LookupError as e:
        return [*out, Finding("study", False, f"{e}: nothing durable to check or repair")]
    study, finding = _load_study(where, run_id)
    out.append(finding)
    if study is None:
        return out
    with _lease_if_free(where, repair) as (held_by, may_repair):
        out.append(Finding("driver", True, f"a live driver holds the run ({held_by})" if held_by else
                           "no live driver holds the run"))
        if run.info.status == "RUNNING" and not held_by:
            out.append(Finding("parent status", False, "RUNNING but no driver holds it: its driver died; "
                               f"`nas search EXPERIMENT --resume {run_id}` continues it"))
        out.append(_running_trials(study, may_repair))
        experiment = client.get_experiment(run.info.experiment_id).name
        out.append(_children(client, run, study, tracking_uri, experiment, may_repair))
        out += _front(client, run, study, may_repair)
    if repair and held_by:
        out.append(Finding("repair", False, "not attempted: a live driver holds the run"))
    return out


def _load_study(where: StudyLocation, run_id: str) -> tuple[optuna.Study | None, Finding]:
    if where.journal is not None:
        if not where.journal.is_file() or where.journal.stat().st_size == 0:
            return None, Finding("study", False, f"journal {where.journal} is missing or empty: the trials' ledger "
                                 "is lost (MLflow still has the child runs); restore it from a backup")
        tail = journal_tail(where.journal)
        torn = (f"; a torn final record of {tail.torn_bytes} bytes is ignored (it never reached the study, and is "
                "cut off at the next append)") if tail.torn_bytes else ""
    else:
        torn = ""
    try:
        study = optuna.load_study(study_name=where.study_name, storage=open_storage(where.storage))
    except JournalCorruptError as e:
        return None, Finding("study", False, f"{e}; cannot be repaired automatically")
    except KeyError:
        return None, Finding("study", False, f"no study {where.study_name!r} in {where.storage}")
    belongs = owner(study.user_attrs)
    if belongs not in (None, run_id):
        return None, Finding("study", False, f"{where.storage} holds the study of run {belongs}, not {run_id}")
    return study, Finding("study", True, f"{len(study.trials)} trials in {where.storage}{torn}")


@contextlib.contextmanager
def _lease_if_free(where: StudyLocation, repair: bool) -> Iterator[tuple[str, bool]]:
    """(holder description or '', whether repairs may run): repairs need the lease."""
    if where.journal is None:
        yield "", repair
        return
    lease = DriverLease(where.journal)
    try:
        lease.acquire()
    except LeaseHeldError as e:
        yield ", ".join(f"{k} {v}" for k, v in e.holder.items()), False
        return
    try:
        yield "", repair
    finally:
        lease.release()


def _running_trials(study: optuna.Study, repair: bool) -> Finding:
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))  # WAITING (enqueued) never ran
    if not running:
        return Finding("trials left running", True, "none")
    numbers = ", ".join(str(t.number) for t in running)
    if not repair:
        return Finding("trials left running", False, f"trials {numbers} (a dead driver's); resume or --repair "
                       "marks them interrupted")
    for t in running:
        _mark_interrupted(study, t, INTERRUPTED)
    return Finding("trials left running", True, f"trials {numbers} marked interrupted", repaired=True)


def _children(client: Any, run: Any, study: optuna.Study, uri: str, experiment: str, repair: bool) -> Finding:
    runs = _active(trial_runs(client, run))
    by_number: dict[int, Any] = {}
    for r in runs:
        by_number.setdefault(int(r.data.tags["nas.trial_number"]), r)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)
              if t.user_attrs.get(STATUS_ATTR) not in ("infeasible", "screened") and t.state.is_finished()}
    half = [n for n, r in by_number.items() if r.info.status not in ("FINISHED", "FAILED", "KILLED")]
    missing = sorted(set(trials) - {n for n in by_number if n not in half})
    extra = sorted(set(by_number) - set(trials) - {t.number for t in study.get_trials(deepcopy=False)})
    problems = []
    if missing:
        problems.append(f"trials {missing} have no (finished) child run")
    if extra:
        problems.append(f"child runs for trials {extra} that the study does not hold (cannot be repaired)")
    if not problems:
        return Finding("study vs MLflow", True, f"{len(trials)} trials, each with its child run")
    if not repair or not missing:
        return Finding("study vs MLflow", False, "; ".join(problems))
    tracker = SearchTracker(uri, experiment)
    tracker.run_id = run.info.run_id  # write children under the run without re-opening it
    tracker.logged_trials()  # half-written (unterminated) runs are adopted: completed, never written twice
    without_epochs = 0
    for n in missing:
        rec = record_of(trials[n])
        without_epochs += not rec.history and n not in half
        # billed as the driver bills, with the run's resources (energy with the default assumptions: the
        # experiment's are not on the run)
        params = run.data.params
        bill_if_missing(rec, Resources(cpu=float(params.get("resources_cpu", 1.0)),
                                       gpu=float(params.get("resources_gpu", 0.0))))
        tracker.log_trial(rec)
    tracker.flush()
    note = (f" ({without_epochs} without per-epoch metrics: their records in the study, from an older version, "
            "keep final values only)") if without_epochs else ""
    return Finding("study vs MLflow", not extra, f"wrote child runs for trials {missing}{note}"
                   + (f"; {problems[-1]}" if extra else ""), repaired=True)


def _front(client: Any, run: Any, study: optuna.Study, repair: bool) -> list[Finding]:
    objectives = [tuple(o.split(":")) for o in run.data.params.get("objectives", "").split(",") if ":" in o]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.user_attrs.get(STATUS_ATTR) == "complete"]
    rows = [{name: t.values[i] for i, (name, _) in enumerate(objectives)} for t in complete]
    mask = pareto_mask(rows, objectives) if rows else []
    front = {t.number for t, m in zip(complete, mask, strict=True) if m}
    runs = {int(r.data.tags["nas.trial_number"]): r for r in _active(trial_runs(client, run))}
    tagged = {n for n, r in runs.items() if r.data.tags.get(TAG_PARETO) == "true"}
    name = f"nas-{client.get_experiment(run.info.experiment_id).name}"
    front_runs = {runs[n].info.run_id: n for n in front if n in runs}
    registered = registered_versions(client, name, front_runs)
    out = []
    if tagged == front:
        out.append(Finding("Pareto tags", True, f"{len(front)} trials, equal to the study's front"))
    elif repair:
        accuracy = [t for t in complete if t.number in front]
        order = sorted(accuracy, key=lambda t: -t.values[0])
        sync_pareto(client, run.info.run_id, {runs[t.number].info.run_id: i for i, t in enumerate(order)
                                              if t.number in runs}, name)
        out.append(Finding("Pareto tags", True, f"set to the front {sorted(front)} (were {sorted(tagged)})", True))
    else:
        out.append(Finding("Pareto tags", False, f"tagged {sorted(tagged)}, but the study's front is {sorted(front)}"))
    unregistered = sorted(n for rid, n in front_runs.items() if rid not in registered)
    if run.info.status != "FINISHED":
        out.append(Finding("Pareto models", True, "logged when the search finishes"))
    elif unregistered:
        lost = [n for n in unregistered if not _checkpoint_exists(study, n)]
        out.append(Finding("Pareto models", False, f"trials {unregistered} are not registered as {name}"
                           + (f"; the weights of {lost} are gone from disk (nas_runs/ removed?) and cannot be "
                              "recovered" if lost else "; `--resume` logs and registers them")))
    else:
        out.append(Finding("Pareto models", True, f"{len(front_runs)} registered as {name}, once each"))
    return out


def _active(runs: list[Any]) -> list[Any]:
    """Runs not deleted (a deleted child run is as good as lost)."""
    return [r for r in runs if r.info.lifecycle_stage == "active"]


def _checkpoint_exists(study: optuna.Study, number: int) -> bool:
    (t,) = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    path = json.loads(t.user_attrs.get(RECORD_ATTR, "{}")).get("checkpoint_dir")
    return bool(path) and Path(path).is_dir()
