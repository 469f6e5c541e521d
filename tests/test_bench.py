"""The tabular backend (`nas bench`): table checks, lookups, simulated compute, and a short real run of the same
controller and Pareto-ASHA over the NAS-Bench-201 table (no training), through the library and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nas.bench import SimulatedCompute, load_table, search_table
from nas.cli import main
from nas.config.experiment import load_experiment
from nas.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXP = ROOT / "experiments" / "nb201_bench.yaml"
CSV = ROOT / "benchmarks" / "data" / "nb201" / "nb201_cifar10.csv"


def test_simulated_compute_bills_fidelity_shares():
    c = SimulatedCompute(full_epochs=200)
    assert c.train("a", 12) == pytest.approx(12 / 200)  # stopped at the 12-epoch rung: 0.06 of a training
    assert c.train("a", 200) == pytest.approx(188 / 200)  # promoted: the rest, so 1 in total
    assert c.train("b", 200) == pytest.approx(1.0)
    assert c.spent == pytest.approx(2.0)
    with pytest.raises(ValueError):
        c.train("a", 12)  # cannot train backwards


def test_lookup_equals_the_csv_row():
    exp = load_experiment(EXP)
    table = load_table(exp)
    df = pd.read_csv(CSV)
    row = df.iloc[1]
    arch = row["arch_str"]
    assert table.accuracy(arch) == pytest.approx(row["cifar10_valid_acc"] / 100)
    assert table.accuracy(arch, 12) == pytest.approx(row["cifar10_valid_acc_12ep"] / 100)
    assert table.costs(arch)["mflops"] == pytest.approx(row["flops_M"])
    assert table.profile(arch).mflops == pytest.approx(row["flops_M"])


def test_table_errors_name_file_field_and_fix(tmp_path):
    doc = yaml.safe_load(EXP.read_text())
    doc["space"] = str(ROOT / "search_spaces" / "nb201.yaml")
    doc["bench"]["table"] = str(tmp_path / "missing.csv")
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="bench/table.*not found"):
        load_table(load_experiment(p))
    small = tmp_path / "small.csv"
    pd.read_csv(CSV, nrows=50).drop(columns=["flops_M"]).to_csv(small, index=False)
    doc["bench"]["table"] = str(small)
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="flops_M") as e:
        load_table(load_experiment(p))
    assert str(small) in str(e.value)


def _quick(exp):
    """The shipped experiment with promotions from the start (it waits for 300 rung trials: too long a test)."""
    return replace(exp, early_stopping=replace(exp.early_stopping, promote_after=0))


def _quick_file(tmp_path: Path) -> Path:
    raw = yaml.safe_load(EXP.read_text())
    raw["early_stopping"]["promote_after"] = 0
    raw["space"] = str(ROOT / "search_spaces" / "nb201.yaml")
    raw["bench"]["table"] = str(CSV)
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_short_bench_run_prunes_and_bills():
    exp = _quick(load_experiment(EXP))
    run = search_table(exp, load_table(exp), seed=0, max_evaluations=40)
    assert run.trajectory and run.stop_reason
    last = run.trajectory[-1]
    assert 0 < last.hypervolume
    assert run.stopped_early >= 1
    # every started training costs at least the 12-epoch share; fully trained ones cost 1
    assert last.compute >= 40 * 12 / 200 - 1e-9


def test_a_bench_runs_events_replay_to_its_own_bill():
    """benchmarks/nb201_search.py scores nas like a peer, from its events: replayed under the peers' ledger they
    give nas's own compute and hypervolume, point for point at each trained trial."""
    from benchmarks.nb201_search import DATASETS, nas_run, peer_table, references
    from benchmarks.peers.ledger import score

    ds = DATASETS["cifar10"]
    table = peer_table(ds, "flops")
    ref = references(table, 0.146)["quantile"]
    own, events = nas_run(ds, "flops", table, 0, ref, 25.0, str(EXP))
    replay = score(events, table, ref, repeats_paid=False, max_compute=25.0)
    trained = [p for p, (_, _, repeat) in zip(replay, events, strict=True) if not repeat]
    assert len(trained) == len(own) > 300
    assert [round(p.compute, 9) for p in trained] == [round(p.compute, 9) for p in own]
    assert [p.hypervolume for p in trained] == pytest.approx([p.hypervolume for p in own], rel=1e-12)
    paid = score(events, table, ref, repeats_paid=True, max_compute=25.0)
    assert paid[-1].compute >= replay[-1].compute


def test_a_short_screening_run_screens(tmp_path):
    raw = yaml.safe_load(EXP.read_text())
    raw["surrogate"] = {"enabled": False}
    raw["early_stopping"] = {"method": "pareto-asha", "rungs": [12], "eta": 3}
    raw["proxy"] = {"use": "screen", "name": "naswot", "candidates": 8, "min_pairs": 5}
    raw["space"] = str(ROOT / "search_spaces" / "nb201.yaml")
    raw["bench"]["table"] = str(CSV)
    raw["bench"]["proxy_columns"] = {"naswot": "nwot_score", "params": "params_M"}
    path = tmp_path / "screen.yaml"
    path.write_text(yaml.safe_dump(raw))
    exp = load_experiment(path)
    run = search_table(exp, load_table(exp), seed=0, max_evaluations=40)
    assert run.stopped_early >= 1 and run.screened >= 1 and run.promoted == 0


def test_promotion_bills_a_rung_per_new_architecture_and_a_whole_training_per_promotion():
    exp = _quick(load_experiment(EXP))
    table = load_table(exp)
    run = search_table(exp, table, seed=1, max_compute=12.0)
    last = run.trajectory[-1]
    assert run.promoted >= 3 and run.stopped_early >= 40  # past the surrogate's warm-up
    assert last.full == run.promoted  # in pareto-promote, only promotions train in full
    assert last.evaluations == run.stopped_early + run.promoted
    assert last.compute == pytest.approx(0.06 * run.stopped_early + 1.0 * run.promoted)
    # promotions keep full trainings near their share (one promotion may overshoot it)
    assert run.promoted <= 0.5 * last.compute + 1.0 + 1e-9
    # every front member was fully trained and is a table row at full fidelity
    for row in run.front:
        assert row["val_accuracy"] == pytest.approx(table.accuracy(row["arch"]))
    assert len({row["arch"] for row in run.front}) == len(run.front)


def test_cli_bench_json(capsys):
    assert main(["bench", str(EXP), "--trials", "30", "--seeds", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["runs"]) == 2 and {"hv95", "hv99", "hv100"} <= set(out["summary"])


def test_promote_after_waits_for_the_rung():
    exp = load_experiment(EXP)
    assert exp.early_stopping.promote_after == 300
    run = search_table(exp, load_table(exp), seed=0, max_evaluations=299)
    assert run.promoted == 0 and run.stopped_early == 299


def test_cli_bench_max_compute(capsys, tmp_path):
    assert main(["bench", str(_quick_file(tmp_path)), "--max-compute", "4", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert 4 <= run["compute"] < 4 + 1.0 + 1e-9  # stops at the first evaluation that reaches it
    assert run["promoted"] >= 1 and "reached the limit 4" in run["stop_reason"]
    assert main(["bench", str(EXP), "--max-compute", "0"]) == 2


class _TwoTrials:
    """A hand-driven observer: trial 0 is stopped at its first report, trial 1 promotes it from that epoch."""

    def __init__(self, params):
        from nas.training.trial import RESUME_EPOCH, TrialSpec

        base = {"params": params, "space_yaml": "", "space_source": "", "space_hash": "", "data": {}, "training": {},
                "seed": 0, "mflops": 1.0}
        self.specs = [TrialSpec(number=0, **base), TrialSpec(number=1, **base, extra={RESUME_EPOCH: 12})]
        self.events: list[tuple] = []

    def propose(self):
        return self.specs.pop(0) if self.specs else None

    def on_trial_start(self, number):
        self.events.append(("start", number))

    def on_epoch(self, number, metrics):
        self.events.append(("epoch", number, metrics["epoch"]))

    def should_stop(self, number, metrics):
        return "stop at the rung" if number == 0 else None

    def on_trial_complete(self, number, final, checkpoint_dir):
        self.events.append(("complete", number, final["full_trainings"]))

    def on_trial_pruned(self, number, reason, metrics, checkpoint_dir):
        self.events.append(("pruned", number, metrics["full_trainings"]))

    def on_trial_failed(self, number, reason):
        self.events.append(("failed", number, reason))


@pytest.mark.parametrize(("resumable", "promotion_cost"), [(False, 1.0), (True, 188 / 200)])
def test_the_table_backend_bills_what_its_numbers_mean(resumable, promotion_cost):
    from nas.builders.nb201 import arch_to_params
    from nas.search.backends.table import TableBackend

    exp = load_experiment(EXP)
    table = load_table(exp)
    arch = table.archs[7]
    backend = TableBackend(table, lambda p: arch, "val_accuracy", resumable=resumable)
    obs = _TwoTrials(arch_to_params(arch))
    backend.run(obs, max_trials=10)
    assert obs.events[:3] == [("start", 0), ("epoch", 0, 12.0), ("pruned", 0, pytest.approx(0.06))]
    assert obs.events[-1] == ("complete", 1, pytest.approx(promotion_cost))
    # NB201's 12-epoch column is a separate schedule: a promotion there retrains from scratch (and reports 12)
    assert (("epoch", 1, 12.0) in obs.events) is not resumable
    assert backend.meter.spent == pytest.approx(0.06 + promotion_cost)
