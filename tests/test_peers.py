"""The benchmark's peers: one billing for every method, the successive-halving baseline, Syne Tune's MOASHA with
its priority fixed, and replays under another reference or billing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.peers import PeerTable, run_peer, true_hypervolume
from benchmarks.peers.ledger import Ledger
from nas.pareto import crowding_distance, front_order

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "benchmarks" / "data" / "nb201" / "nb201_cifar10.csv"


@pytest.fixture(scope="module")
def table() -> PeerTable:
    return PeerTable.load(CSV, accuracy_column="cifar10_valid_acc", low_column="cifar10_valid_acc_12ep",
                          cost_column="flops_M")


def _ref(table: PeerTable) -> tuple[float, float]:
    return 0.0, 1.01 * float(table.cost.max())


def test_billing_low_full_promotion_and_repeats(table):
    free = Ledger(table, _ref(table), max_compute=100)
    assert free.low(5) == pytest.approx(table.low_accuracy[5])
    assert free.spent == pytest.approx(0.06)                      # 12 of 200 epochs
    free.full_training(5)                                          # a promotion is a separate 200-epoch run
    assert free.spent == pytest.approx(1.06)
    free.low(5), free.full_training(5)                             # repeats: answered from the record
    assert free.spent == pytest.approx(1.06) and free.repeats == 2 and free.full == 1
    paid = Ledger(table, _ref(table), max_compute=100, repeats_paid=True)
    for _ in range(2):
        paid.low(5), paid.full_training(5)
    assert paid.spent == pytest.approx(2.12) and paid.repeats == 2 and paid.full == 1
    assert [p.evaluations for p in paid.trajectory] == [1, 2, 3, 4]


def test_hypervolume_of_the_whole_table_is_reached_by_training_its_front(table):
    ref = _ref(table)
    ledger = Ledger(table, ref, max_compute=1e9)
    loss = np.column_stack([-table.accuracy, table.cost])
    for row in front_order(loss)[:40]:  # the first layers hold the front
        ledger.full_training(int(row))
    assert ledger.hypervolume == pytest.approx(true_hypervolume(table, ref))
    # a hand-checkable case: one cell, reference (0, c): hv = accuracy × (c - cost)
    one = Ledger(table, (0.0, 1000.0), max_compute=10)
    one.full_training(3)
    assert one.hypervolume == pytest.approx(table.accuracy[3] * (1000.0 - table.cost[3]))


def test_crowding_and_front_order():
    loss = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0], [3.0, 3.0]])
    assert np.isinf(crowding_distance(loss[:4])[[0, 3]]).all()
    order = front_order(loss)
    assert set(order[:4]) == {0, 1, 2, 3} and order[4] == 4 and set(order[:2]) == {0, 3}


@pytest.mark.parametrize("method", ["sha", "random", "nsga2", "tpe"])
def test_peers_spend_their_budget_and_improve(table, method):
    ledger = run_peer(method, table, seed=0, reference=_ref(table), max_compute=20)
    assert 20 <= ledger.spent < 21 + 1e-9
    assert ledger.hypervolume > 0.5 * true_hypervolume(table, _ref(table))
    assert all(b.compute >= a.compute for a, b in zip(ledger.trajectory, ledger.trajectory[1:], strict=False))


def test_sha_promotes_the_top_share(table):
    ledger = run_peer("sha", table, seed=1, reference=_ref(table), max_compute=10, eta=4)
    low = ledger.evaluations - ledger.full
    # as in ASHA, the current top quarter is always promoted (a cell may drop out of it after its promotion, so
    # more than a quarter may be promoted in all), and the rest is never trained in full
    assert low // 4 - 1 <= ledger.full < low


def test_moasha_priority_patch():
    pytest.importorskip("syne_tune")
    from syne_tune.optimizer.schedulers.asha import Bracket
    from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import NonDominatedPriority

    from benchmarks.peers.moasha import _priority_class

    def new_best(priority) -> str:
        b = Bracket(12, 200, 3, 0, priority)
        for tid, (err, cost) in enumerate([(0.3, 50.0), (0.5, 100.0), (0.9, 300.0)]):
            b.on_result(tid, 12, {"error": err, "cost": cost})
        return b.on_result(9, 12, {"error": 0.1, "cost": 10.0})  # dominates every recorded trial

    assert new_best(NonDominatedPriority()) == "STOP"      # Syne Tune 0.16: the ordering read as ranks
    assert new_best(_priority_class()()) == "CONTINUE"


def test_moasha_runs_on_the_table(table):
    pytest.importorskip("syne_tune")
    ledger = run_peer("moasha", table, seed=0, reference=_ref(table), max_compute=8)
    assert ledger.full >= 1 and ledger.evaluations > ledger.full and ledger.spent >= 8


def test_score_replays_a_run_under_another_reference_and_billing(table):
    from benchmarks.peers.ledger import score

    ledger = run_peer("sha", table, seed=2, reference=_ref(table), max_compute=15)
    same = score(ledger.events, table, _ref(table), repeats_paid=False, max_compute=15)
    assert same == ledger.trajectory
    paid = score(ledger.events, table, _ref(table), repeats_paid=True, max_compute=15)
    assert len(paid) <= len(same) and all(p.compute >= f.compute - 1e-12 for p, f in zip(paid, same, strict=False))
    ref80 = (0.80, _ref(table)[1])
    high = score(ledger.events, table, ref80, repeats_paid=False, max_compute=15)
    assert [p.compute for p in high] == [p.compute for p in same]
    assert high[-1].hypervolume < same[-1].hypervolume
