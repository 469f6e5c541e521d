"""Scaling fits (nas.report.scaling): slope recovery, form comparison, plateau flag, extrapolation, validation, NB201."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nas.report.scaling import (
    ScalingError,
    best_so_far,
    errors_from_accuracy,
    fit_form,
    fit_scaling,
    fit_search_scaling,
    fit_trials,
)

NB201 = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "nb201" / "nb201_cifar10.csv"


def power_law(seed: int = 0, n: int = 200, exponent: float = 0.3, sigma: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """error = 0.5 · c^-exponent × lognormal noise, c log-uniform over 4 decades (1e6..1e10 FLOPs)."""
    rng = np.random.default_rng(seed)
    c = 10 ** rng.uniform(6, 10, n)
    return c, 0.5 * c**-exponent * np.exp(rng.normal(0.0, sigma, n))


def exponential(seed: int = 0, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Thompson et al.'s exponential form: error linear in log10(compute), 0.6 down to 0.04 over 4 decades."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 4, n)
    return 10 ** (6 + x), 0.6 - 0.14 * x + rng.normal(0.0, 0.01, n)


def test_power_law_exponent_recovered_within_5_percent_and_ci_covers_it():
    c, e = power_law()
    r = fit_scaling(c, e)
    poly = r.fits["polynomial"]
    assert abs(poly.slope - (-0.3)) < 0.05 * 0.3
    assert poly.slope_ci[0] < -0.3 < poly.slope_ci[1]
    assert poly.slope_ci[0] < poly.slope < poly.slope_ci[1]
    assert r.best.form == "polynomial"
    assert poly.r2 > 0.9 and poly.n == 200
    assert math.isclose(10**poly.intercept, 0.5, rel_tol=0.15)


def test_ci_coverage_is_about_95_percent():
    cis = [fit_form(*power_law(seed=s, n=40, sigma=0.2), "polynomial").slope_ci for s in range(200)]
    hits = sum(lo < -0.3 < hi for lo, hi in cis)
    assert 0.90 <= hits / 200 <= 0.99


def test_exponential_data_prefers_exponential():
    c, e = exponential()
    r = fit_scaling(c, e)
    assert r.best.form == "exponential"
    assert r.fits["exponential"].r2 > r.fits["polynomial"].r2
    assert abs(r.best.slope - (-0.14)) < 0.05 * 0.14
    # constant gain per 10x in the exponential form
    assert math.isclose(r.best.marginal_gain_per_10x(1e6), -r.best.slope, rel_tol=1e-9)
    assert "exponential fits better than polynomial" in r.summary


def test_r2_equals_papers_regression_of_log_compute_so_forms_are_comparable():
    """R² of each forward fit equals that of regressing log(compute) on the error transform (shared y)."""
    c, e = power_law(sigma=0.3)
    lc = np.log10(c)
    for form, f in (("polynomial", np.log10(e)), ("exponential", e)):
        slope, icpt = np.polyfit(f, lc, 1)
        resid = lc - (slope * f + icpt)
        r2_paper = 1 - resid @ resid / ((lc - lc.mean()) @ (lc - lc.mean()))
        assert math.isclose(fit_form(c, e, form).r2, r2_paper, rel_tol=1e-9)


def test_plateau_flagged_on_flat_curve_not_on_steep_one():
    rng = np.random.default_rng(1)
    c = 10 ** rng.uniform(0, 4, 100)
    flat = fit_scaling(c, 0.1 + rng.normal(0, 0.002, 100))
    assert flat.plateau and abs(flat.marginal_gain_at_max) < 0.005
    assert "a plateau" in flat.summary
    steep = fit_scaling(c, 0.5 * c**-0.3)
    assert not steep.plateau and steep.marginal_gain_at_max > 0.005
    assert fit_scaling(c, 0.5 * c**-0.3, plateau_threshold=0.05).plateau  # the threshold is configurable


def test_error_rising_with_compute_is_a_plateau_and_never_reaches_target():
    c = np.array([1.0, 10.0, 100.0, 1000.0])
    r = fit_scaling(c, [0.10, 0.12, 0.15, 0.18], target_error=0.05)
    assert r.plateau and r.compute_for_target is None
    assert all(f.compute_for_error(0.05) is None for f in r.fits.values())
    assert "no amount of compute" in r.summary


@pytest.mark.parametrize("form", ["polynomial", "exponential"])
def test_compute_for_error_round_trip(form):
    c, e = power_law() if form == "polynomial" else exponential()
    f = fit_form(c, e, form)
    far = 1e12 if form == "polynomial" else 5e9  # the exponential line reaches 0 error near 1.9e10
    for compute in (1e5, 3e7, far):
        target = f.predict_error(compute)
        assert math.isclose(f.compute_for_error(target), compute, rel_tol=1e-9)
        lo, hi = f.compute_for_error_interval(target)
        assert lo < compute < hi
    # an extrapolation further out is less certain
    lo1, hi1 = f.compute_for_error_interval(f.predict_error(1e8))
    lo2, hi2 = f.compute_for_error_interval(f.predict_error(far))
    assert hi2 / lo2 > hi1 / lo1


def test_report_extrapolates_target_and_describes_it():
    c, e = power_law()
    r = fit_scaling(c, e, target_error=1e-4, compute_unit="FLOPs")
    assert r.compute_for_target == r.best.compute_for_error(1e-4)
    assert r.compute_for_target > r.compute_max
    assert r.compute_for_target_ci[0] < r.compute_for_target < r.compute_for_target_ci[1]
    assert "× the largest trial" in r.summary and "compute^-0.3" in r.summary
    d = r.to_dict("scaling_")
    assert d["scaling_best_form"] == "polynomial" and "scaling_exponential_r2" in d


def test_marginal_gain_of_power_law():
    f = fit_form(*power_law(sigma=0.0), "polynomial")
    assert math.isclose(f.marginal_gain_per_10x(1e8), 0.5 * 1e8**-0.3 * (1 - 10**-0.3), rel_tol=1e-9)


def test_exponential_prediction_clipped_at_zero():
    f = fit_form(*exponential(), "exponential")
    assert f.predict_error(1e20) == 0.0
    assert np.all(f.predict_error(np.array([1e6, 1e20])) >= 0)


def test_single_form_and_ties():
    c, e = power_law()
    r = fit_scaling(c, e, forms=("exponential",))
    assert list(r.fits) == ["exponential"] and r.best.form == "exponential"
    flat = fit_scaling([1.0, 10.0, 100.0], [0.2, 0.2, 0.2])
    assert flat.best.form == "polynomial" and flat.best.r2 == 0.0 and flat.plateau


@pytest.mark.parametrize(
    ("compute", "error", "match"),
    [
        ([1, 0, 10], [0.1, 0.2, 0.3], "compute must be > 0"),
        ([1, -5, 10], [0.1, 0.2, 0.3], "compute must be > 0"),
        ([1, 2, 10], [0.1, 0.0, 0.3], "error must be > 0"),
        ([1, 2, 10], [0.1, 1.5, 0.3], "fraction in"),
        ([1, 2, 10], [10.0, 20.0, 30.0], "percent"),
        ([1, 10], [0.1, 0.2], "at least 3 points"),
        ([5, 5, 5], [0.1, 0.2, 0.3], "same compute"),
        ([1, np.nan, 10], [0.1, 0.2, 0.3], "non-finite"),
        ([1, 2, 10], [0.1, 0.2], "equal length"),
    ],
)
def test_input_validation(compute, error, match):
    with pytest.raises(ValueError, match=match):
        fit_scaling(compute, error)


def test_other_argument_validation():
    c, e = power_law()
    for kwargs, match in (({"forms": ()}, "forms is empty"), ({"forms": ("cubic",)}, "unknown form"),
                          ({"target_error": 0.0}, "target_error"), ({"target_error": 5.0}, "target_error"),
                          ({"plateau_threshold": -1.0}, "plateau_threshold")):
        with pytest.raises(ScalingError, match=match):
            fit_scaling(c, e, **kwargs)
    with pytest.raises(ScalingError, match="compute must be > 0"):
        fit_form(c, e, "polynomial").predict_error(0.0)


def test_errors_from_accuracy():
    np.testing.assert_allclose(errors_from_accuracy([90.0, 99.5], percent=True), [0.1, 0.005])
    np.testing.assert_allclose(errors_from_accuracy([0.9, np.nan], percent=False), [0.1, np.nan])
    with pytest.raises(ScalingError, match="percent=True"):
        errors_from_accuracy([90.0], percent=False)
    with pytest.raises(ScalingError):
        errors_from_accuracy([101.0], percent=True)


def test_best_so_far():
    cum = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    err = [np.nan, 0.5, 0.6, 0.3, np.nan, 0.3]
    c, b = best_so_far(cum, err)
    np.testing.assert_array_equal(c, [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(b, [0.5, 0.5, 0.3, 0.3, 0.3])
    c, b = best_so_far(cum, err, improvements_only=True)
    np.testing.assert_array_equal(c, [2, 4])
    np.testing.assert_array_equal(b, [0.5, 0.3])
    assert best_so_far([1.0, 2.0], [np.nan, np.nan])[0].size == 0
    with pytest.raises(ScalingError, match="non-decreasing"):
        best_so_far([2.0, 1.0], [0.1, 0.2])


def test_search_level_fit():
    rng = np.random.default_rng(3)
    per_trial = rng.uniform(1e12, 1e13, 300)
    errors = 0.05 + rng.exponential(0.2, 300)
    r = fit_search_scaling(per_trial, errors, target_error=0.04)
    assert r.n == 300 and r.best.slope < 0
    assert r.compute_max == pytest.approx(per_trial.sum())
    assert r.best_observed_error == pytest.approx(errors.min())


def test_fit_trials_from_rows():
    rng = np.random.default_rng(4)
    rows = []
    for i in range(30):
        mflops = float(10 ** rng.uniform(-1, 2))
        acc = 1 - 0.2 * mflops**-0.25 * float(np.exp(rng.normal(0, 0.05)))
        rows.append({"trial": i, "status": "complete", "val_accuracy": acc, "mflops": mflops,
                     "train_flops": 3 * mflops * 1e6 * 5000})
    rows.append({"trial": 30, "status": "failed", "train_flops": 1e12})
    rows.append({"trial": 31, "status": "complete", "val_accuracy": 1.0, "mflops": 50.0, "train_flops": 7.5e14})
    out = fit_trials(rows, target_error=0.01)
    assert set(out) == {"inference", "training", "search"}
    assert out["inference"].n == 31 and out["inference"].compute_unit == "MFLOPs"
    assert out["inference"].best_observed_error == pytest.approx(1e-3)  # accuracy 1 raised to error_floor
    assert out["training"].best.slope < 0
    assert out["search"].compute_max == pytest.approx(sum(r["train_flops"] for r in rows))
    assert fit_trials(rows[:2]) == {}  # too few trials: left out, not raised


def test_nb201_table_reports_slope_and_r2():
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(NB201, usecols=["flops_M", "cifar10_valid_acc"])
    r = fit_scaling(df["flops_M"], errors_from_accuracy(df["cifar10_valid_acc"], percent=True),
                    target_error=0.05, compute_unit="MFLOPs")
    for f in r.fits.values():
        assert math.isfinite(f.slope) and 0.0 <= f.r2 <= 1.0
        assert f.slope < 0 and f.n == len(df)
    assert r.best.form == "polynomial"
    assert r.compute_for_target is not None and r.compute_for_target > r.compute_max
