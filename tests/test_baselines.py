"""Classical baselines (nas.report.baselines) on digits: accuracy, FLOP estimates, params, speed."""

from __future__ import annotations

import pytest

from nas.data import load_data
from nas.report.baselines import BaselineResult, fit_baselines, logreg_flops


@pytest.fixture(scope="module")
def digits_results() -> dict[str, BaselineResult]:
    splits = load_data("digits", seed=0)
    return {r.name: r for r in fit_baselines(splits, seed=0)}


def test_logreg_accuracy_and_exact_flops(digits_results):
    lr = digits_results["logreg"]
    assert lr.val_accuracy > 0.9 and lr.test_accuracy > 0.9
    # 64 features x 10 classes multiply-adds, plus 10 bias adds (the nas.profile convention)
    assert lr.details["macs"] == 64 * 10 == 640
    assert lr.details["flops"] == 650
    assert lr.mflops == 650 / 1e6
    assert lr.params == 650


def test_logreg_flops_match_nas_profile_for_the_equivalent_linear_layer():
    torch = pytest.importorskip("torch")
    profile = pytest.importorskip("nas.profile")
    total, _, _ = profile.count_flops(torch.nn.Linear(64, 10), (64,))
    assert logreg_flops(64, 10)[0] == total


def test_logreg_flops_binary():
    assert logreg_flops(64, 2) == (65, 64)


def test_trees_flops(digits_results):
    gbt = digits_results["gbt"]
    assert gbt.val_accuracy > 0.8
    d = gbt.details
    assert gbt.mflops > 0
    assert d["trees"] == d["iterations"] * 10  # one tree per class per iteration
    # expected comparisons: at least one per tree (no stump-less trees on digits), at most the worst case
    assert d["trees"] <= d["comparisons"] < d["worst_case_flops"]
    assert gbt.mflops == pytest.approx((d["comparisons"] + d["trees"] + 10) / 1e6)
    assert gbt.params == d["nodes"] and d["leaves"] < d["nodes"]


def test_rows_for_pareto_plot_and_timing(digits_results):
    for r in digits_results.values():
        row = r.row()
        assert {"val_accuracy", "mflops", "params"} <= set(row)
        assert 0 <= row["val_accuracy"] <= 1
        assert r.fit_seconds < 10


def test_which_and_unknown_baseline():
    splits = load_data("digits", seed=0)
    assert [r.name for r in fit_baselines(splits, which=("logreg",))] == ["logreg"]
    with pytest.raises(ValueError, match="Did you mean 'logreg'"):
        fit_baselines(splits, which=("logreg2",))
