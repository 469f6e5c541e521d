"""nas.cost.breakeven by hand: a search of 1e12 FLOPs repaid by saving 0.5 MFLOPs per inference takes 2e6 inferences."""

from __future__ import annotations

import pytest

from nas.cost.breakeven import break_even, energy_per_flop_from_bill
from nas.cost.ledger import bill_search
from nas.training.records import TrialRecord

FRONT = [
    {"trial": 0, "val_accuracy": 0.95, "mflops": 1.0},
    {"trial": 1, "val_accuracy": 0.93, "mflops": 0.5},
    {"trial": 2, "val_accuracy": 0.90, "mflops": 0.1},
]


def test_by_hand_against_the_most_accurate():
    rows = break_even(FRONT, search_cost_flops=1e12, search_energy_kwh=2.0, energy_per_flop_kwh=1e-12)
    by = {r.trial: r for r in rows}
    assert [r.trial for r in rows] == [2, 1, 0]  # cheapest first
    assert by[1].inferences_to_repay_flops == pytest.approx(2e6)
    assert by[1].saved_mflops_per_inference == pytest.approx(0.5)
    assert by[1].accuracy_given_up == pytest.approx(0.02)
    # 0.5e6 FLOPs x 1e-12 kWh/FLOP = 5e-7 kWh saved per inference; 2 kWh / 5e-7 = 4e6
    assert by[1].inferences_to_repay_energy == pytest.approx(4e6)
    assert by[1].saved_kwh_per_million_inferences == pytest.approx(0.5)
    assert by[2].inferences_to_repay_flops == pytest.approx(1e12 / 0.9e6)
    assert by[0].inferences_to_repay_flops is None and by[0].reason == "the reference"


def test_named_reference_and_rows_not_cheaper():
    rows = break_even(FRONT, search_cost_flops=1e12, reference=1)
    by = {r.trial: r for r in rows}
    assert by[0].inferences_to_repay_flops is None and "not cheaper" in by[0].reason
    assert by[0].accuracy_given_up == pytest.approx(-0.02)  # more accurate than the reference
    assert by[2].inferences_to_repay_flops == pytest.approx(1e12 / 0.4e6)
    assert by[2].inferences_to_repay_energy is None and "FLOPs only" in by[2].reason
    off_front = {"trial": 9, "val_accuracy": 0.96, "mflops": 2.0}
    by = {r.trial: r for r in break_even(FRONT, 1e12, reference=9, all_rows=[off_front])}
    assert by[0].inferences_to_repay_flops == pytest.approx(1e6)
    with pytest.raises(ValueError, match="no trial 42"):
        break_even(FRONT, 1e12, reference=42)
    assert break_even([], 1e12) == []


def test_energy_per_flop_from_bill():
    rec = TrialRecord(number=0, params={}, training={}, profile={}, status="complete",
                      metrics={"mflops": 1.0, "train_flops": 3.6e12, "trial_seconds": 360.0}, start_time=0, end_time=360)

    class Res:
        cpu, gpu = 1.0, 0.0

    bill = bill_search([rec], {}, wall_s=360.0, workers=1, resources=Res())
    # 1 core x 10 W x 360 s = 3600 J = 0.001 kWh over 3.6e12 FLOPs
    assert energy_per_flop_from_bill(bill) == pytest.approx(0.001 / 3.6e12)
