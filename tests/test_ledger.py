"""nas.cost.ledger: trial and search bills by hand, the accounting identity, metric names, the search card."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import pytest

from nas.cost.energy import EnergyConfig, EnergyReading
from nas.cost.ledger import (
    PREFIX,
    SearchBill,
    bill_search,
    bill_trial,
    check_accounting,
    effective_workers,
    search_card,
)
from nas.training.records import TrialRecord

CFG = EnergyConfig(cpu_watts_per_core=10.0, gpu_watts=300.0, grid_g_co2_per_kwh=475.0,
                   price_per_cpu_core_hour=0.05, price_per_gpu_hour=3.0)


@dataclass(frozen=True)
class Res:
    cpu: float = 2.0
    gpu: float = 0.0


def _record(number: int, *, trial_s: float | None, span: tuple[float, float], mflops: float = 1.0,
            samples: int = 1000, status: str = "complete") -> TrialRecord:
    metrics = {"mflops": mflops}
    history = []
    if status == "complete":
        metrics.update(train_flops=3 * mflops * 1e6 * samples, samples_seen=float(samples))
        if trial_s is not None:
            metrics["trial_seconds"] = trial_s
    else:  # a failed trial: only per-epoch values
        history = [{"train_flops": 3 * mflops * 1e6 * samples, "samples_seen": float(samples)}]
    return TrialRecord(number=number, params={}, training={}, profile={"mflops": mflops}, status=status,
                       metrics=metrics, history=history, start_time=span[0], end_time=span[1])


def test_bill_trial_by_hand():
    rec = _record(0, trial_s=360.0, span=(1000.0, 1400.0), mflops=2.0, samples=5000)
    b = bill_trial(rec, Res(cpu=2), CFG)
    assert b.forward_mflops == 2.0
    assert b.train_flops == 3 * 2e6 * 5000
    assert (b.trial_s, b.span_s, b.worker_s) == (360.0, 400.0, 40.0)
    assert b.cpu_core_s == 720.0 and b.gpu_s == 0.0 and b.device_s == 720.0
    assert b.energy_kwh == pytest.approx(0.002)  # 2 cores x 10 W x 360 s = 7200 J
    assert b.co2_g == pytest.approx(0.95)
    assert b.cost == pytest.approx(0.2 * 0.05)  # 0.2 core-hours
    assert b.energy_method == "estimated" and not b.energy_apportioned


def test_bill_trial_gpu_and_failed():
    rec = _record(3, trial_s=None, span=(0.0, 36.0), status="failed", samples=100)
    b = bill_trial(rec, Res(cpu=1, gpu=0.5), CFG)
    assert b.trial_s == 36.0 and b.worker_s == 0.0  # a failed trial's span is its compute
    assert b.train_flops == 3e8  # from its last epoch
    assert b.gpu_s == 18.0 and b.energy_kwh == pytest.approx((36 * 10 + 18 * 300) / 3.6e6)


def _search() -> SearchBill:
    recs = [_record(0, trial_s=10.0, span=(0.0, 12.0)), _record(1, trial_s=20.0, span=(0.0, 21.0)),
            _record(2, trial_s=None, span=(30.0, 35.0), status="failed")]
    overhead = {"sampler_s": 1.0, "profile_s": 2.0, "ray_init_s": 3.0, "propose_s": 0.5, "callbacks_s": 0.5,
                "tracking_s": 4.0, "total_s": 25.0}
    return bill_search(recs, overhead, wall_s=25.0, workers=2, resources=Res(cpu=2), energy_config=CFG,
                       flops_saved_by_rejections=1e9)


def test_bill_search_by_hand():
    b = _search()
    assert b.capacity_s == 50.0
    assert b.trial_s == 35.0  # 10 + 20 + 5 (failed: its span)
    assert b.machinery_s == 15.0 and b.overhead_ratio == pytest.approx(15 / 35)
    assert b.machinery_by_part_s == {"sampler": 1.0, "profile": 2.0, "ray_init": 3.0, "propose": 0.5,
                                     "callbacks": 0.5, "worker": 3.0, "unattributed": 5.0}
    assert b.concurrent_by_part_s == {"tracking": 4.0}
    assert b.attributed_fraction == pytest.approx(10 / 15)
    assert check_accounting(b) == 0.0
    assert b.train_flops == 3 * 1e6 * 1000 * 3
    assert b.cpu_core_hours == pytest.approx(100 / 3600) and b.device_hours == b.cpu_core_hours
    # estimated energy: the whole capacity held, 2 cores x 10 W x 50 s
    assert b.energy_kwh == pytest.approx(1000 / 3.6e6)
    assert b.trial_energy_kwh == pytest.approx(700 / 3.6e6)
    assert b.machinery_energy_kwh == pytest.approx(300 / 3.6e6)
    assert b.co2_g == pytest.approx(b.energy_kwh * 475)
    assert b.cost == pytest.approx(100 / 3600 * 0.05)
    assert (b.n_trials, b.n_failed, b.energy_method) == (3, 1, "estimated")


def test_bill_search_measured_energy_is_apportioned():
    recs = [_record(0, trial_s=10.0, span=(0.0, 10.0)), _record(1, trial_s=30.0, span=(0.0, 30.0))]
    reading = EnergyReading(seconds=50.0, cpu_joules=3.6e6, cpu_method="rapl")  # 1 kWh measured
    cfg = EnergyConfig(pue=1.5)
    b = bill_search(recs, {}, wall_s=50.0, workers=1, resources=Res(cpu=1), energy_config=cfg,
                    measured_energy=reading)
    assert b.energy_method == "rapl" and b.energy_kwh == pytest.approx(1.5)
    assert [t.energy_kwh for t in b.trials] == pytest.approx([1.5 * 10 / 50, 1.5 * 30 / 50])
    assert all(t.energy_apportioned and t.energy_method == "rapl" for t in b.trials)
    assert b.machinery_energy_kwh == pytest.approx(1.5 * 10 / 50)


def test_checkpoint_time_from_the_trials():
    recs = [_record(0, trial_s=10.0, span=(0.0, 13.0)), _record(1, trial_s=10.0, span=(20.0, 31.0))]
    recs[0].metrics["checkpoint_s"] = 2.0
    b = bill_search(recs, {"models_s": 1.0}, wall_s=40.0, workers=1, resources=Res())
    assert b.trials[0].checkpoint_s == 2.0 and b.trials[0].worker_s == 1.0
    assert b.machinery_by_part_s == {"models": 1.0, "checkpoint": 2.0, "worker": 2.0, "unattributed": 15.0}
    assert check_accounting(b) == 0.0
    with pytest.raises(ValueError, match="models_s"):
        bill_search(recs, {"checkpoint_s": 1.0}, wall_s=40.0, workers=1, resources=Res())


def test_idle_slot_time_by_phase():
    recs = [_record(0, trial_s=10.0, span=(105.0, 115.0)), _record(1, trial_s=20.0, span=(108.0, 130.0))]
    b = bill_search(recs, {}, wall_s=40.0, workers=2, resources=Res(), started_at=100.0)
    # before: 2 x 5 s; after: 2 x (140 - 130) s; between: 80 - 32 busy - 10 - 20
    assert b.idle_by_phase_s == {"before_first_trial": 10.0, "between_trials": 18.0, "after_last_trial": 20.0}
    assert b.as_metrics()[PREFIX + "idle_s/between_trials"] == 18.0
    assert bill_search(recs, {}, wall_s=40.0, workers=2, resources=Res()).idle_by_phase_s == {}
    _, md = search_card(b, space_hash="h", seeds={}, hardware={}, versions={}, experiment="x")
    assert "before first trial 10 s" in md


def test_bill_search_ignores_an_unmeasured_reading():
    recs = [_record(0, trial_s=10.0, span=(0.0, 10.0))]
    reading = EnergyReading(seconds=50.0, cpu_joules=123.0, cpu_method="estimated")
    b = bill_search(recs, {}, wall_s=20.0, workers=1, resources=Res(cpu=1), energy_config=CFG, measured_energy=reading)
    assert b.energy_method == "estimated" and b.energy_kwh == pytest.approx(200 / 3.6e6)
    assert not b.trials[0].energy_apportioned


def test_check_accounting_flags_overlapping_parts():
    recs = [_record(0, trial_s=90.0, span=(0.0, 90.0))]
    ok = bill_search(recs, {"sampler_s": 5.0}, wall_s=100.0, workers=1, resources=Res())
    assert check_accounting(ok) == 0.0 and ok.machinery_by_part_s["unattributed"] == pytest.approx(5.0)
    # 30 s of parts in 10 s of machinery: counted twice somewhere
    bad = bill_search(recs, {"sampler_s": 10.0, "propose_s": 20.0}, wall_s=100.0, workers=1, resources=Res())
    assert check_accounting(bad) == pytest.approx(0.2)
    # trials longer than the slots could hold: a wrong worker count
    wrong = bill_search([_record(0, trial_s=90.0, span=(0, 90)), _record(1, trial_s=90.0, span=(0, 90))], {},
                        wall_s=100.0, workers=1, resources=Res())
    assert check_accounting(wrong) == pytest.approx(0.8)


def test_bill_search_rejects_bad_input():
    with pytest.raises(ValueError, match="wall_s"):
        bill_search([], {}, wall_s=0.0, workers=1, resources=Res())
    with pytest.raises(ValueError, match="workers"):
        bill_search([], {}, wall_s=1.0, workers=0, resources=Res())
    with pytest.raises(ValueError, match="sampler_s"):
        bill_search([], {"sampler_s": -1.0}, wall_s=1.0, workers=1, resources=Res())
    with pytest.raises(ValueError, match="computed by the ledger"):
        bill_search([], {"unattributed_s": 1.0}, wall_s=1.0, workers=1, resources=Res())


_UNIT = re.compile(r"^" + re.escape(PREFIX) + r"[a-z0-9_]+_(s|kwh|g|usd|tflops|mflops|hours|ratio|fraction|count)"
                   r"(/[a-z0-9_]+)?$")


def test_metric_names_carry_the_prefix_and_units():
    b = _search()
    metrics = {**b.as_metrics(), **b.trials[0].as_metrics()}
    bad = [k for k in metrics if not _UNIT.match(k)]
    assert not bad, bad
    assert all(isinstance(v, float) and not math.isnan(v) for v in metrics.values())
    m = b.as_metrics()
    for key in ("train_tflops", "energy_kwh", "co2_g", "device_hours", "overhead_ratio", "machinery_s/sampler",
                "machinery_s/unattributed", "concurrent_s/tracking", "cost_usd", "accounting_residual_fraction"):
        assert PREFIX + key in m, key
    assert m[PREFIX + "train_tflops"] == pytest.approx(9e-3)
    assert all(k.startswith(PREFIX) for k in {**b.as_tags(), **b.trials[0].as_tags()})


def test_search_card_round_trip_and_markdown():
    b = _search()
    js, md = search_card(b, space_hash="abcd1234abcd1234", seeds={"search": 0, "data": 1},
                         hardware={"cpu_count": 2}, versions={"torch": "2.13"}, experiment={"name": "digits"})
    card = json.loads(js)
    assert card["schema"] == "nas.search_card/1" and card["space_hash"] == "abcd1234abcd1234"
    assert SearchBill.from_dict(card["bill"]) == b
    assert card["totals"]["energy_kwh"] == pytest.approx(b.energy_kwh)
    assert md.startswith("# Search card: digits")
    for text in ("abcd1234abcd1234", "search=0", "9e+09 FLOPs", "overhead ratio", "estimated", "unattributed",
                 "tracking (concurrent, not added)", "torch: 2.13", "cpu_count: 2", f"{b.co2_g:.4g} g"):
        assert text in md, text


def test_effective_workers():
    assert effective_workers(4, 10, Res(cpu=1), cluster_cpus=2) == 2
    assert effective_workers(4, 3, Res(cpu=1), cluster_cpus=16) == 3
    assert effective_workers(8, 10, Res(cpu=1, gpu=0.5), cluster_cpus=16, cluster_gpus=1) == 2
    assert effective_workers(1, 1, Res(cpu=4), cluster_cpus=2) == 1
