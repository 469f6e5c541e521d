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
    finished_trials,
    journals,
    kill_group,
    parent_run,
    study_of,
    wait_for,
    write_search,
)

from nas.config.experiment import load_experiment
from nas.errors import ConfigError
from nas.search.api import run_search

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRIALS = 8


@pytest.mark.timeout(1500)  # several drivers, each starting Ray, on a shared 2-core box
def test_kill_twice_then_resume_continues_without_replay(tmp_path, ray_cluster):
    """Issue 17 reported, on the code before this branch: the second crash turned the interrupted trials into failures (8 planned
    trials ended with fewer trained), and the resumed sampler repeated the params of trials 0-3."""
    write_search(tmp_path, trials=TRIALS)
    proc = cli(tmp_path)
    try:
        wait_for(lambda: finished_trials(tmp_path) >= 2, 300, proc, "2 finished trials")
    finally:
        kill_group(proc)
    run_id = parent_run(tmp_path).info.run_id
    first = {t.number: t.params for t in study_of(tmp_path, run_id).trials}

    proc = cli(tmp_path, "--resume", run_id)  # the resumed driver dies too
    try:
        wait_for(lambda: finished_trials(tmp_path) >= 4, 300, proc, "4 finished trials")
    finally:
        kill_group(proc)

    exp = load_experiment(tmp_path / "exp.yaml")
    result = run_search(exp, resume=run_id, storage_path=str(tmp_path / "nas_runs"))
    figures = check_invariants(tmp_path, run_id, planned=TRIALS)
    assert figures["interrupted"] >= 1  # trials in flight at each kill, still interrupted, never failed
    later = [t.params for t in study_of(tmp_path, run_id).trials if t.number not in first]
    assert not [p for p in later if p in first.values()], "a resumed driver replayed earlier draws"
    assert {r.number for r in result.pareto} == set(figures["front"])
    assert len(journals(tmp_path)) == 1 and journals(tmp_path)[0].stem == run_id


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


@pytest.mark.xfail(strict=False, reason="known bug after merging live child runs (issue 12) with the whole-search "
                   "bill (issue 17): the doctor's bill differs from the sum over child runs; open in issue 17")
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
