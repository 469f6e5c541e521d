"""Durability without Ray: the journal survives torn writes, interrupted trials stay interrupted, one driver per
run, the experiment fingerprint, bounded YAML aliases, and a store another process is creating."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import FIXTURES, ROOT

from nas.config.experiment import load_experiment, parse_experiment
from nas.errors import ConfigError
from nas.search.controller import STATUS_ATTR, Controller, open_storage
from nas.search.resume import recover_records
from nas.space import load_space

SPACE = FIXTURES / "tiny_cnn.yaml"


def _study(path: Path, name: str = "s") -> optuna.Study:
    return optuna.create_study(study_name=name, storage=open_storage(str(path)), load_if_exists=True,
                               sampler=optuna.samplers.RandomSampler(seed=0))


def _add_trials(study: optuna.Study, n: int) -> None:
    for _ in range(n):
        t = study.ask()
        study.tell(t, t.suggest_float("x", 0, 1))


# ---- a journal that survives a torn write ----------------------------------------------------------------------

@pytest.mark.parametrize("tear", ["cut", "zeros"])
def test_torn_final_record_is_ignored_and_the_next_append_starts_a_fresh_line(tmp_path, tear):
    """Failed first against the old journal (`cut`: the next append was glued onto the cut line, and loading the
    study again raised JSONDecodeError; `zeros`: every load raised)."""
    path = tmp_path / "study.journal"
    _add_trials(_study(path), 3)
    data = path.read_bytes()
    if tear == "cut":  # a write cut short: the last record loses its end and its newline
        path.write_bytes(data[:-25])
    else:  # blocks the file system allocated but never wrote (power cut on some file systems)
        path.write_bytes(data + b"\x00" * 40 + b"\n")
    study = _study(path)
    complete = 3 if tear == "zeros" else 2  # a cut final record (the third tell) never reached the study
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == complete
    _add_trials(study, 2)
    again = _study(path)  # a fresh reader sees every record written after the tear
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in again.trials) == complete + 2
    assert all(json.loads(line) for line in path.read_bytes().splitlines())


def test_torn_tail_is_reported_and_kept_aside(tmp_path, caplog):
    from nas.durable.journal import journal_tail

    path = tmp_path / "study.journal"
    _add_trials(_study(path), 2)
    path.write_bytes(path.read_bytes()[:-10])
    tail = journal_tail(path)
    assert tail.torn_bytes > 0 and tail.records >= 1
    with caplog.at_level("WARNING"):
        _add_trials(_study(path), 1)
    assert "torn final record" in caplog.text
    assert Path(str(path) + ".torn").read_bytes().strip()
    assert journal_tail(path).torn_bytes == 0


def test_damaged_record_in_the_middle_is_named(tmp_path):
    from nas.durable.journal import JournalCorruptError

    path = tmp_path / "study.journal"
    _add_trials(_study(path), 2)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"op_code": 4, "broken\n'
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorruptError, match="record 1 .*damaged"):
        _study(path)


def test_fsync_at_trial_boundaries_only(tmp_path, monkeypatch):
    from nas.durable import journal

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(journal.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    storage = optuna.storages.JournalStorage(journal.DurableJournalFile(str(tmp_path / "j"), sync="trial"))
    study = optuna.create_study(storage=storage)
    synced.clear()
    t = study.ask()
    t.suggest_float("x", 0, 1)
    t.set_user_attr("a", 1)
    assert synced == []  # creating a trial, its params and attributes: flushed, not synced
    study.tell(t, 0.5)
    assert len(synced) == 1  # the trial's end: synced


# ---- interrupted trials stay interrupted ---------------------------------------------------------------------

def _controller(storage: str) -> Controller:
    exp = parse_experiment({"space": str(SPACE), "search": {"sampler": "random", "trials": 4, "seed": 0}},
                           source="exp.yaml")
    return Controller(exp, load_space(exp.space), input_shape=(1, 8, 8), num_classes=10,
                      train_samples_per_trial=1000, storage=storage, study_name="nas-x")


def test_interrupted_trials_stay_interrupted_across_two_crashes(tmp_path):
    """Failed first against the old resume: the second recovery turned the interrupted trial into a failure."""
    storage = str(tmp_path / "j.journal")
    first = _controller(storage)
    first.propose()  # a trial in flight when the driver dies
    (rec,) = recover_records(_controller(storage))  # first resume
    assert rec.status == "interrupted"
    second = _controller(storage)  # the resumed driver dies too; resume again
    (rec,) = recover_records(second)
    assert rec.status == "interrupted"
    assert second.stats.told_failed == 0
    (t,) = second.study.trials
    assert t.state == optuna.trial.TrialState.FAIL and t.user_attrs[STATUS_ATTR] == "interrupted"


def test_an_enqueued_trial_never_asked_is_left_waiting_not_told(tmp_path):
    """Found with the one-shot search's finalists (and the proxy prior's seeds), enqueued and not yet asked when
    the driver stopped: recording the trials in flight, resuming and the doctor's repair told Optuna they were
    interrupted, and Optuna refuses to tell a WAITING trial (ValueError). They never ran: they stay WAITING, and
    a resumed driver's first ask runs them."""
    from nas.search.doctor import _running_trials
    from nas.search.resume import record_in_flight

    storage = str(tmp_path / "j.journal")
    first = _controller(storage)
    first.propose()  # in flight
    first.study.enqueue_trial(first.space.sample_random(7))  # enqueued, never asked
    stopped = record_in_flight(first, [], "interrupted")
    assert [r.number for r in stopped] == [0]
    assert _running_trials(first.study, repair=True).ok
    resumed = _controller(storage)
    assert [r.status for r in recover_records(resumed)] == ["interrupted"]
    waiting = resumed.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert [t.number for t in waiting] == [1]


def test_resumed_sampler_draws_new_points(tmp_path):
    """A sampler rebuilt with the search seed replays the first draws; reseeded from the trials so far it does not."""
    from nas.search.resume import reseed_sampler

    storage = str(tmp_path / "j.journal")
    first = _controller(storage)
    before = [first.propose().params for _ in range(3)]
    replayed = _controller(storage)
    assert replayed.propose().params == before[0]  # the bug, shown with a plain rebuilt sampler
    resumed = _controller(storage)
    reseed_sampler(resumed, resumed.exp, len(resumed.study.trials))
    after = [resumed.propose().params for _ in range(3)]
    assert after != before[: len(after)]


# ---- one driver per run --------------------------------------------------------------------------------------

def test_second_driver_is_refused_naming_the_holder_and_a_dead_holder_releases(tmp_path):
    from nas.durable.lease import DriverLease, LeaseHeldError

    journal = tmp_path / "r.journal"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from nas.durable.lease import DriverLease; "
         f"l = DriverLease({str(journal)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeldError) as info:
            DriverLease(journal).acquire()
        assert info.value.holder["pid"] == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with DriverLease(journal):  # the kernel dropped the dead driver's lock: no stale lease
        pass


# ---- the experiment's fingerprint ----------------------------------------------------------------------------

def test_fingerprint_ignores_extendable_fields_and_names_the_others():
    from nas.durable.fingerprint import differences, fingerprint, fingerprint_doc

    base = parse_experiment({"space": str(SPACE), "search": {"trials": 8}}, source="a.yaml")
    more = parse_experiment({"space": str(SPACE), "search": {"trials": 20, "time_budget_s": 60}},
                            source="b.yaml")
    other = parse_experiment({"space": str(SPACE), "training": {"epochs": 3},
                              "objectives": [{"name": "val_accuracy", "direction": "maximize"},
                                             {"name": "params", "direction": "minimize"}]}, source="a.yaml")
    doc = fingerprint_doc(base.to_dict(), "h")
    assert fingerprint(doc) == fingerprint(fingerprint_doc(more.to_dict(), "h"))
    assert fingerprint(doc) != fingerprint(fingerprint_doc(base.to_dict(), "other-space"))
    diff = differences(doc, fingerprint_doc(other.to_dict(), "h"))
    assert any(d.startswith("training.epochs") for d in diff)
    assert any(d.startswith("objectives") for d in diff)


# ---- files that cannot run away --------------------------------------------------------------------------------

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def test_billion_laughs_experiment_is_refused_fast(tmp_path):
    """Failed first (old loader: still running after 60 s with a timeout of 60 s)."""
    p = tmp_path / "exp.yaml"
    p.write_text(f"space: {SPACE}\n" + LAUGHS.replace("a: &a", "x: &a"))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="expand to more than"):
        load_experiment(p)
    assert time.perf_counter() - t0 < 1.0


def test_billion_laughs_space_is_refused_fast(tmp_path):
    p = tmp_path / "space.yaml"
    p.write_text("builder: mlp\n" + LAUGHS)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="expand to more than"):
        load_space(p)
    assert time.perf_counter() - t0 < 1.0


def test_duplicated_top_level_key_in_an_experiment_is_refused(tmp_path):
    """Failed first: the old loader kept the last `search:` silently."""
    p = tmp_path / "exp.yaml"
    p.write_text(f"space: {SPACE}\nsearch: {{trials: 4}}\nsearch: {{trials: 9}}\n")
    with pytest.raises(ConfigError, match="appears twice"):
        load_experiment(p)


def test_few_aliases_still_load(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text(f"space: {SPACE}\nx: &t {{trials: 4}}\nsearch: *t\n")
    with pytest.raises(ConfigError, match="x"):  # unknown top-level key, but the aliases themselves are fine
        load_experiment(p)


# ---- a store another process is creating ----------------------------------------------------------------------

def test_opening_a_store_another_process_is_creating_waits_for_it(tmp_path):
    """Several plain MLflow clients (not nas: no nas lock) create the same new sqlite store while nas opens it."""
    from nas.tracking.tracker import client_for

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = f"from mlflow import MlflowClient; MlflowClient({uri!r}).search_experiments()"
    others = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL) for _ in range(3)]
    try:
        client = client_for(uri)
        assert client.search_experiments() is not None
    finally:
        for p in others:
            p.wait()


# ---- values checked before training ---------------------------------------------------------------------------

def _csv(path: Path, rows: int, bad: str | None = None) -> None:
    lines = ["a,b,label"] + [f"{i},{i % 5},{['x', 'y'][i % 2]}" for i in range(rows)]
    if bad is not None:
        lines[3] = f"{bad},1,x"
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan"])
def test_non_finite_values_in_a_dataset_are_refused_before_training(tmp_path, bad):
    """Failed first against 21848af: the CSV loaded, and training failed with the advice to lower lr."""
    from nas.data import load_data
    from nas.data.base import DataError

    _csv(tmp_path / "d.csv", 40, bad)
    with pytest.raises(DataError, match="non-finite|NaN cells"):  # the csv loader names NaN cells itself
        load_data("csv", path=tmp_path / "d.csv", seed=0)


def test_too_few_rows_for_the_splits_are_refused(tmp_path):
    """Failed first against 21848af: a 3-row CSV loaded with an empty validation set."""
    from nas.data import load_data
    from nas.data.base import DataError

    _csv(tmp_path / "d.csv", 3)
    with pytest.raises(DataError, match="fewer than"):
        load_data("csv", path=tmp_path / "d.csv", seed=0)


def test_journal_sync_schedule_is_configurable(tmp_path, monkeypatch):
    from nas.search.controller.storage import journal_backend

    monkeypatch.setenv("NAS_JOURNAL_SYNC", "never")
    assert journal_backend(str(tmp_path / "a")).sync == "never"
    monkeypatch.setenv("NAS_JOURNAL_SYNC", "sometimes")
    with pytest.raises(ConfigError, match="NAS_JOURNAL_SYNC"):
        journal_backend(str(tmp_path / "b"))
