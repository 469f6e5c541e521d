"""Kill -9 the driver of a real search (real Ray, MLflow sqlite, Optuna journal), twice, then resume it: nothing is
lost, doubled or replayed; and every resume the run cannot honour is refused with nothing changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import ROOT
from mlflow import MlflowClient
from searchcheck import (
    check_invariants,
    cli,
    deleted_children,
    finished_trials,
    journals,
    kill_group,
    live_runs,
    parent_run,
    study_of,
    wait_for,
    write_search,
)

from nas.config.experiment import load_experiment
from nas.errors import ConfigError
from nas.search.api import run_search
from nas.tracking.tracker import trial_runs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRIALS = 8


def _kill_while_a_trial_runs(folder: Path, proc: subprocess.Popen, finished: int) -> dict[int, str]:
    """Kill -9 the driver once ``finished`` trials are done and a trial is running with an epoch in its live child
    run; returns the live child runs (trial number -> run id) seen just before the kill."""
    live: dict[int, str] = {}
    try:
        def ready() -> bool:
            live.clear()
            live.update(live_runs(folder))
            return finished_trials(folder) >= finished and bool(live)

        wait_for(ready, 300, proc, f"{finished} finished trials and one running")
    finally:
        kill_group(proc)
    return dict(live)


@pytest.mark.timeout(1500)  # several drivers, each starting Ray, on a shared 2-core box
def test_kill_twice_then_resume_continues_without_replay(tmp_path, ray_cluster):
    """Issue 17 reported, on the code before this branch: the second crash turned the interrupted trials into failures (8 planned
    trials ended with fewer trained), and the resumed sampler repeated the params of trials 0-3.

    The cluster e2e test (test_driver_killed_then_resumed) then saw, after child runs became live at trial start:
    a trial running at the kill got a second child run (resume deleted the live one, softly, and wrote a new
    one; every reader still listed both). Reproduced here (sqlite, local Ray): the trials live at each kill must
    keep their one child run, ended as interrupted, with the epochs it had logged. Child runs are live from a
    trial's start here (``live_after_s: 0``): these trials take about a second, and the kill must find one live."""
    write_search(tmp_path, trials=TRIALS, live_after_s=0.0)
    proc = cli(tmp_path)
    live = _kill_while_a_trial_runs(tmp_path, proc, 2)
    run_id = parent_run(tmp_path).info.run_id
    first = {t.number: t.params for t in study_of(tmp_path, run_id).trials}

    proc = cli(tmp_path, "--resume", run_id)  # the resumed driver dies too
    live.update(_kill_while_a_trial_runs(tmp_path, proc, 4))

    exp = load_experiment(tmp_path / "exp.yaml")
    result = run_search(exp, resume=run_id, storage_path=str(tmp_path / "nas_runs"))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = {int(r.data.tags["nas.trial_number"]): r for r in trial_runs(client, client.get_run(run_id))}
    assert len(runs) == len(trial_runs(client, client.get_run(run_id))), "a trial number with two child runs"
    assert not deleted_children(tmp_path, run_id), "child runs deleted and written again"
    assert {n: runs[n].info.run_id for n in live} == live, "a live child run was replaced"
    ended = [runs[n] for n in live if runs[n].data.tags["nas.status"] == "interrupted"]
    assert ended, "no trial was running at a kill"  # one may have finished between the look and the kill
    for r in ended:
        assert r.info.status == "KILLED" and r.data.tags["nas.failure_reason"].startswith("interrupted")
        assert any(k.startswith("epoch/") for k in r.data.metrics), "the epochs it ran were lost"
    figures = check_invariants(tmp_path, run_id, planned=TRIALS)
    assert figures["interrupted"] >= 1  # trials in flight at each kill, still interrupted, never failed
    later = [t.params for t in study_of(tmp_path, run_id).trials if t.number not in first]
    assert not [p for p in later if p in first.values()], "a resumed driver replayed earlier draws"
    assert {r.number for r in result.pareto} == set(figures["front"])
    assert len(journals(tmp_path)) == 1 and journals(tmp_path)[0].stem == run_id


@pytest.mark.timeout(900)
def test_pareto_models_whose_weights_were_removed_before_the_resume_fail_to_load_in_one_paragraph(tmp_path,
                                                                                                  ray_cluster):
    """Issue 17 reported, and seen here before the fix: with nas_runs/ removed before a resume, `nas.load_model`
    raised a raw MlflowException for a Pareto model whose weights were gone."""
    import nas

    write_search(tmp_path, trials=3, epochs=1, concurrency=1)
    proc = cli(tmp_path)
    try:
        wait_for(lambda: finished_trials(tmp_path) >= 1, 300, proc, "a finished trial")
    finally:
        kill_group(proc)
    run_id = parent_run(tmp_path).info.run_id
    done = finished_trials(tmp_path)
    shutil.rmtree(tmp_path / "nas_runs", ignore_errors=True)  # the trials' weights
    # nothing new to train: the front is the trials the dead driver finished, all without weights
    exp = load_experiment(tmp_path / "exp.yaml").with_overrides(trials=done)
    result = run_search(exp, resume=run_id, storage_path=str(tmp_path / "nas_runs"))
    assert result.pareto
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    assert all(client.get_run(r.run_id).data.tags.get("nas.model_missing") for r in result.pareto)
    with pytest.raises(ConfigError) as err:
        nas.load_model(run_id, tracking_uri=uri)
    text = str(err.value)
    assert result.pareto[0].run_id in text and f"trial {result.pareto[0].number} " in text, text
    assert "nas_runs/ removed" in text and "Fix:" in text and "\n" not in text, text


# ---- refusals: one finished search, then every resume it cannot honour ----------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory, ray_cluster):
    folder = tmp_path_factory.mktemp("finished")
    write_search(folder, trials=3, epochs=2)
    result = run_search(load_experiment(folder / "exp.yaml"), storage_path=str(folder / "nas_runs"))
    return folder, result.run_id


def _snapshot(folder: Path, run_id: str) -> dict:
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    run = client.get_run(run_id)
    children = client.search_runs([run.info.experiment_id], f"tags.`nas.search_run_id` = '{run_id}'")
    journal = folder / "nas_studies" / f"{run_id}.journal"
    return {"status": run.info.status, "end": run.info.end_time, "tags": run.data.tags,
            "metrics": run.data.metrics, "children": len(children),
            "journal": journal.read_bytes() if journal.exists() else None}


def _refused(folder: Path, run_id: str, match: str, **changes) -> None:
    exp = load_experiment(folder / "exp.yaml")
    if changes:
        import yaml

        doc = yaml.safe_load((folder / "exp.yaml").read_text())
        for section, values in changes.items():
            doc[section] = {**doc.get(section, {}), **values} if isinstance(values, dict) else values
        (folder / "changed.yaml").write_text(yaml.safe_dump(doc))
        exp = load_experiment(folder / "changed.yaml")
    with pytest.raises(ConfigError, match=match):
        run_search(exp, resume=run_id, storage_path=str(folder / "nas_runs"))


@pytest.mark.parametrize(("what", "changes", "match"), [
    ("epochs", {"training": {"epochs": 3}}, r"training.epochs: 2 -> 3"),
    ("objectives", {"objectives": [{"name": "val_accuracy", "direction": "maximize"},
                                   {"name": "params", "direction": "minimize"}]}, r"objectives"),
    ("data split", {"data": {"val_fraction": 0.3}}, r"data.val_fraction"),
    ("seed", {"search": {"seed": 5}}, r"search.seed"),
])
def test_changed_experiment_is_refused_and_the_run_is_unchanged(finished, what, changes, match):
    """Issue 17 reported, on the code before this branch: changed epochs and split were accepted; changed objectives crashed with
    KeyError and left the run RUNNING."""
    folder, run_id = finished
    before = _snapshot(folder, run_id)
    _refused(folder, run_id, match, **changes)
    assert _snapshot(folder, run_id) == before


def test_changed_space_is_refused_and_the_finished_run_stays_finished(finished):
    """Issue 17 reported, on the code before this branch: the refusal flipped the FINISHED run to FAILED."""
    folder, run_id = finished
    before = _snapshot(folder, run_id)
    text = (folder / "space.yaml").read_text()
    try:
        (folder / "space.yaml").write_text(text.replace("choices: [4, 8, 16]", "choices: [4, 8]"))
        _refused(folder, run_id, "the space changed")
    finally:
        (folder / "space.yaml").write_text(text)
    assert _snapshot(folder, run_id) == before


@pytest.mark.parametrize("damage", ["emptied", "missing", "another run's"])
def test_missing_or_foreign_study_is_refused_never_recreated(finished, damage, tmp_path):
    """Issue 17 reported, on the code before this branch: an emptied journal was silently re-created and every trial trained again."""
    folder, run_id = finished
    journal = folder / "nas_studies" / f"{run_id}.journal"
    kept = tmp_path / "kept.journal"
    shutil.copy(journal, kept)
    before = _snapshot(folder, run_id)
    try:
        if damage == "emptied":
            journal.write_bytes(b"")
        elif damage == "missing":
            journal.unlink()
        else:  # the journal of another run put in its place: a study with another name and owner
            other = optuna.create_study(study_name="nas-other", storage=f"sqlite:///{tmp_path / 'o.db'}")
            other.set_user_attr("nas_run_id", "other")
            journal.unlink()
            from nas.search.controller import open_storage

            optuna.copy_study(from_study_name="nas-other", from_storage=f"sqlite:///{tmp_path / 'o.db'}",
                              to_storage=open_storage(str(journal)), to_study_name=f"nas-{run_id}")
        _refused(folder, run_id, "missing or empty|no study|belongs to run other")
        after = _snapshot(folder, run_id)
        assert {k: v for k, v in after.items() if k != "journal"} == {k: v for k, v in before.items()
                                                                      if k != "journal"}
    finally:
        shutil.copy(kept, journal)


def test_copied_project_folder_is_refused_and_the_original_untouched(finished, tmp_path):
    """Issue 17 reported, on the code before this branch: the copy wrote into the original's journal and overwrote its search card."""
    folder, run_id = finished
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    write_search(copy, trials=3, epochs=2)  # the same experiment, its tracking URI now the copy's
    before = _snapshot(folder, run_id)
    _refused(copy, run_id, "moved or copied")
    assert _snapshot(folder, run_id) == before


def test_resume_while_a_driver_holds_the_run_is_refused(finished):
    from nas.durable.lease import DriverLease

    folder, run_id = finished
    before = _snapshot(folder, run_id)
    with DriverLease(folder / "nas_studies" / f"{run_id}.journal"):
        _refused(folder, run_id, "being driven by another process")
    assert _snapshot(folder, run_id) == before


def test_resuming_a_finished_search_changes_nothing_and_registers_nothing_twice(finished):
    """Issue 17 reported, on the code before this branch: the card's totals were overwritten with zeros and every model was registered
    again."""
    folder, run_id = finished
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    before = _snapshot(folder, run_id)
    versions = len(client.search_model_versions("name='nas-durable'"))
    card = client.download_artifacts(run_id, "search_card.json", str(folder / "card_before"))
    run_search(load_experiment(folder / "exp.yaml"), resume=run_id, storage_path=str(folder / "nas_runs"))
    after = _snapshot(folder, run_id)
    assert after["status"] == "FINISHED" and after["metrics"] == before["metrics"]
    assert len(client.search_model_versions("name='nas-durable'")) == versions
    again = client.download_artifacts(run_id, "search_card.json", str(folder / "card_after"))
    assert json.loads(Path(again).read_text()) == json.loads(Path(card).read_text())
    check_invariants(folder, run_id, planned=3)


def test_extending_a_finished_search_bills_the_whole_search(finished):
    folder, run_id = finished
    exp = load_experiment(folder / "exp.yaml").with_overrides(trials=4)
    run_search(exp, resume=run_id, storage_path=str(folder / "nas_runs"))
    check_invariants(folder, run_id, planned=4)


def test_impossible_resources_are_refused_before_anything_is_written(tmp_path, ray_cluster):
    """Issue 17 reported, on the code before this branch: `cpu: 4` on the 2-CPU cluster waited forever after writing the parent run."""
    import time

    import yaml

    for key, value in (("cpu", 4), ("gpu", 1)):
        write_search(tmp_path, trials=2)
        doc = yaml.safe_load((tmp_path / "exp.yaml").read_text())
        doc["resources"] = {"cpu": 1, key: value}
        (tmp_path / "exp.yaml").write_text(yaml.safe_dump(doc))
        t0 = time.perf_counter()
        with pytest.raises(ConfigError, match=f"resources/{key}"):
            run_search(load_experiment(tmp_path / "exp.yaml"))
        assert time.perf_counter() - t0 < 10
        assert not journals(tmp_path)
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        exp = client.get_experiment_by_name("durable")
        assert exp is None or not client.search_runs([exp.experiment_id])


def test_cli_refusal_exits_2(finished):
    folder, run_id = finished
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "search", "exp.yaml", "--quiet", "--resume", "nope"],
                          cwd=folder, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "'nope' is not a run id or a prefix of one" in proc.stderr


def test_resume_rebuilds_a_lost_child_run_with_its_epochs_and_bill(finished):
    """A trial told to Optuna whose child run never reached MLflow (a crash between the two writes; here its run
    and registered versions deleted) is rebuilt by the resume from the study. Issue 17 reported, and seen here
    before the fix: the rebuilt run had final values only, no per-epoch metrics (the study's record dropped them)."""
    folder, run_id = finished
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    run = client.get_run(run_id)
    children = client.search_runs([run.info.experiment_id], f"tags.`nas.search_run_id` = '{run_id}'")
    lost = max(children, key=lambda c: int(c.data.tags["nas.trial_number"]))
    number = int(lost.data.tags["nas.trial_number"])
    curve = [(m.step, m.value) for m in client.get_metric_history(lost.info.run_id, "epoch/val_accuracy")]
    assert len(curve) == 2  # the fixture's epochs
    for v in client.search_model_versions("name='nas-durable'"):
        if v.run_id == lost.info.run_id:
            client.delete_model_version("nas-durable", v.version)
    client.delete_run(lost.info.run_id)

    run_search(load_experiment(folder / "exp.yaml").with_overrides(trials=_planned(folder, run_id)), resume=run_id,
               storage_path=str(folder / "nas_runs"))
    (rebuilt,) = [c for c in client.search_runs([run.info.experiment_id], f"tags.`nas.search_run_id` = '{run_id}'")
                  if c.data.tags["nas.trial_number"] == str(number)]
    assert rebuilt.info.run_id != lost.info.run_id
    assert sorted((m.step, m.value) for m in client.get_metric_history(rebuilt.info.run_id, "epoch/val_accuracy")) \
        == sorted(curve), "the rebuilt run lost its per-epoch metrics"
    assert rebuilt.data.metrics["nas_cost/train_tflops"] == pytest.approx(lost.data.metrics["nas_cost/train_tflops"])
    check_invariants(folder, run_id, planned=_planned(folder, run_id))


def test_doctor_tells_the_truth_and_repairs_what_it_can(finished):
    from mlflow.entities import RunTag

    from nas.search.doctor import doctor

    folder, run_id = finished
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    children = client.search_runs([run.info.experiment_id], f"tags.`nas.search_run_id` = '{run_id}'")
    on_front = [c for c in children if c.data.tags.get("nas.pareto") == "true"]
    off_front = [c for c in children if c.data.tags.get("nas.pareto") != "true"]
    client.log_batch(on_front[0].info.run_id, tags=[RunTag("nas.pareto", "false")])  # a tag lost
    if off_front:  # a child run lost (e.g. a crash between tell and the MLflow write)
        client.delete_run(off_front[0].info.run_id)
    journal = folder / "nas_studies" / f"{run_id}.journal"
    journal.write_bytes(journal.read_bytes() + b'{"op_code": 8, "tr')  # and a torn final record

    found = {f.check: f for f in doctor(run_id, uri)}
    assert found["study vs MLflow"].ok is not bool(off_front) and not found["Pareto tags"].ok
    assert "torn final record" in found["study"].detail
    fixed = {f.check: f for f in doctor(run_id, uri, repair=True)}
    assert fixed["study vs MLflow"].repaired is bool(off_front) and fixed["Pareto tags"].repaired
    assert all(f.ok for f in doctor(run_id, uri))
    check_invariants(folder, run_id, planned=_planned(folder, run_id))


def _planned(folder: Path, run_id: str) -> int:
    return sum(t.user_attrs.get("nas_status") in ("complete", "pruned", "failed") for t in study_of(folder, run_id).trials)
