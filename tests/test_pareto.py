"""Pareto front, ranks, hypervolume and selection, against values worked out by hand."""

from __future__ import annotations

import pytest

from nas.pareto import hypervolume, hypervolume_curve, pareto_mask, pareto_ranks, parse_where, select

OBJ = [("acc", "maximize"), ("mflops", "minimize")]
ROWS = [
    {"acc": 0.90, "mflops": 10.0},  # front
    {"acc": 0.80, "mflops": 2.0},   # front
    {"acc": 0.70, "mflops": 5.0},   # dominated by (0.80, 2)
    {"acc": 0.95, "mflops": 20.0},  # front
]


def test_front_and_ranks():
    assert pareto_mask(ROWS, OBJ) == [True, True, False, True]
    assert pareto_ranks(ROWS, OBJ) == [0, 0, 1, 0]


def test_hypervolume_by_hand():
    # reference (acc 0, mflops 30). Sweep mflops: [2,10) best acc 0.80 -> 6.4; [10,20) 0.90 -> 9.0;
    # [20,30) 0.95 -> 9.5. Total 24.9 (the dominated row adds nothing).
    assert hypervolume(ROWS, OBJ, {"acc": 0.0, "mflops": 30.0}) == pytest.approx(24.9)
    # a row beyond the reference contributes nothing: only (0.8, 2) and (0.9, 10) fit under mflops 15
    # [2,10) 0.8*8 = 6.4; [10,15) 0.9*5 = 4.5
    assert hypervolume(ROWS, OBJ, {"acc": 0.0, "mflops": 15.0}) == pytest.approx(10.9)


def test_hypervolume_curve_accumulates_cost_and_keeps_the_front():
    ref = {"acc": 0.0, "mflops": 30.0}
    # row 0 alone: 0.9 * 20 = 18; a failed step (None) costs but adds nothing; the dominated row adds nothing
    steps = [(2.0, ROWS[0]), (1.0, None), (2.0, ROWS[1]), (2.0, ROWS[2]), (2.0, ROWS[3])]
    curve = hypervolume_curve(steps, OBJ, ref, start=10.0)
    assert [c for c, _ in curve] == [12.0, 13.0, 15.0, 17.0, 19.0]
    assert [hv for _, hv in curve] == pytest.approx([18.0, 18.0, 18.0 + 0.8 * 8, 18.0 + 0.8 * 8, 24.9])
    assert hypervolume_curve(steps, OBJ, ref, at={1, 4}) == [(3.0, pytest.approx(18.0)), (9.0, pytest.approx(24.9))]


def test_hypervolume_edge_cases():
    assert hypervolume([], OBJ, {"acc": 0, "mflops": 1}) == 0.0
    assert hypervolume([{"acc": float("nan"), "mflops": 1.0}], OBJ, {"acc": 0, "mflops": 2}) == 0.0
    assert pareto_mask([{"acc": float("nan"), "mflops": 1.0}, {"acc": 0.5, "mflops": 3.0}], OBJ) == [False, True]


def test_ties_are_kept_on_the_front():
    rows = [{"acc": 0.9, "mflops": 1.0}, {"acc": 0.9, "mflops": 1.0}]
    assert pareto_mask(rows, OBJ) == [True, True]


def test_select_where_and_best():
    picked = select(ROWS, where="mflops<=10, acc>0.75", best="acc")
    assert [r["acc"] for r in picked] == [0.90, 0.80]
    assert select(ROWS, where="mflops<1 and acc>0")== []
    assert [r["mflops"] for r in select(ROWS, best="mflops", direction="minimize")] == [2.0, 5.0, 10.0, 20.0]


@pytest.mark.parametrize("bad", ["mflops<=", "mflops ~ 5", "<=5", "mflops<=five"])
def test_where_rejects_bad_conditions(bad):
    with pytest.raises(ValueError, match="cannot read condition|not a number"):
        parse_where(bad)


def test_select_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric 'flops'"):
        select(ROWS, where="flops<=5")
