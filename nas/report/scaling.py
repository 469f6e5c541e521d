"""Scaling fits: how error falls as compute grows, in the two forms of Thompson et al. (2020).

*The Computational Limits of Deep Learning* fits, across models, computation against error in two forms:

- **polynomial** (a power law): ``log(compute) = α + β·log(error)``, i.e. ``error = a · compute^slope`` with
  ``slope < 0``. Each 10× of compute divides the error by the same factor ``10^-slope``.
- **exponential**: ``log(compute) = α + β·error``, i.e. error falls *linearly in log(compute)*:
  ``error = intercept + slope · log10(compute)``. Each 10× of compute buys the same ``-slope`` of absolute error,
  so compute grows exponentially as error falls. This is the paper's pessimistic form.

Both are implemented here as straight lines against ``x = log10(compute)``::

    polynomial:   log10(error) = intercept + slope · x        (slope = log-log slope, -b in error ∝ compute^-b)
    exponential:  error        = intercept + slope · x        (slope = change of error per 10× compute)

Why this exponential, and not ``error = a·exp(-c·compute)``: the latter, fitted as ``log(error)`` linear in raw
``compute``, means compute grows only *logarithmically* as error falls, the opposite of what the paper calls
exponential; across several decades of compute it is also fixed almost entirely by the largest trials. The form
above is the paper's model, rearranged.

**How the two forms are compared.** The slopes come from regressing the error transform on ``log10(compute)``,
because the noise is in the error (a trial's compute is known exactly); regressing the other way, as the paper
does, attenuates the slope by R² and would bias the exponent. For R² the direction does not matter: with one
regressor, R² is the squared Pearson correlation of the two variables, so each R² reported here equals the R² of
the paper's regression of ``log(compute)`` on ``log(error)`` (polynomial) or on ``error`` (exponential). Those
two regressions share the dependent variable ``log(compute)`` and the number of parameters, so their R² values
are on the same scale and the form with the higher R² has the smaller residual sum of squares in log-compute
(equivalently the better AIC). That is the comparison :attr:`ScalingReport.best` uses (ties go to polynomial).

Units: compute is whatever positive quantity the caller passes (FLOPs, MFLOPs, cumulative search FLOPs), named by
``compute_unit`` in summaries; errors are fractions in (0, 1] (``1 - accuracy``). Use :func:`errors_from_accuracy`
for accuracies, including accuracies in percent.

Confidence intervals are 95% by default, from the t distribution with ``n - 2`` degrees of freedom on the OLS
standard error of the slope. They assume independent, homoscedastic residuals in the fitted scale; trials from a
search are neither independent nor a random sample, so read them as a measure of fit, not of a population.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

logger = logging.getLogger(__name__)

Form = Literal["polynomial", "exponential"]
FORMS: tuple[Form, ...] = ("polynomial", "exponential")
DEFAULT_PLATEAU_THRESHOLD = 0.005
"""Absolute error (fraction) per 10× compute below which the curve counts as a plateau: 0.5 accuracy points."""


class ScalingError(ValueError):
    """Inputs that cannot be fitted. The message says which input is wrong and how to fix it."""


@dataclass(frozen=True)
class FitResult:
    """One straight-line fit against ``x = log10(compute)``.

    ``slope``: for ``polynomial`` the log-log slope ``d log10(error) / d log10(compute)`` (``-b`` in
    ``error ∝ compute^-b``; dimensionless); for ``exponential`` the change in error (fraction) per 10× compute.
    Negative when error falls with compute. ``intercept`` is ``log10(error)`` (polynomial) or ``error``
    (exponential) at ``compute = 1`` in the caller's unit. ``r2`` is in [0, 1] (0 when the errors are all equal).
    ``slope_ci`` is the ``confidence`` interval of the slope; ``slope_stderr`` its OLS standard error. ``n`` is
    the number of points, ``compute_range`` the smallest and largest observed compute. ``x_mean``, ``y_mean``,
    ``sxx`` (sum of squared deviations of x) and ``resid_std`` (residual standard deviation, n - 2 dof) are kept for
    inverse-prediction intervals.
    """

    form: Form
    slope: float
    intercept: float
    r2: float
    slope_ci: tuple[float, float]
    n: int
    slope_stderr: float
    resid_std: float
    x_mean: float
    y_mean: float
    sxx: float
    compute_range: tuple[float, float]
    confidence: float = 0.95

    # -- the model ---------------------------------------------------------------------------------------------

    def _y_of_error(self, error: float) -> float:
        return math.log10(error) if self.form == "polynomial" else error

    def predict_error(self, compute: ArrayLike) -> Any:
        """Fitted error (fraction) at ``compute`` (> 0, caller's unit); a float for a scalar, else an array.

        The exponential form is a straight line in error, which crosses zero at large compute; its predictions are
        clipped at 0 there (no error left to remove). Outside :attr:`compute_range` this is extrapolation.
        """
        c = np.asarray(compute, dtype=float)
        if np.any(~(c > 0)):
            raise ScalingError(f"predict_error: compute must be > 0, got {compute!r}")
        y = self.intercept + self.slope * np.log10(c)
        out = np.power(10.0, y) if self.form == "polynomial" else np.clip(y, 0.0, None)
        return float(out) if out.ndim == 0 else out

    def compute_for_error(self, target_error: float) -> float | None:
        """Compute (caller's unit) at which the fitted line reaches ``target_error`` (fraction in (0, 1]).

        ``None`` when the fit says error does not fall with compute (``slope >= 0``), so no amount reaches a lower
        target; ``math.inf`` when the answer overflows a float. Usually an extrapolation: compare with
        :attr:`compute_range`, and see :meth:`compute_for_error_interval` for its uncertainty.
        """
        _check_target(target_error)
        if not self.slope < 0:
            return None
        return _pow10((self._y_of_error(target_error) - self.intercept) / self.slope)

    def compute_for_error_interval(self, target_error: float) -> tuple[float, float]:
        """``confidence`` interval of the compute that reaches ``target_error``, by Fieller's inverse regression.

        The set of ``x = log10(compute)`` at which the confidence band of the fitted line contains the target. It
        is bounded only when the slope differs significantly from zero; otherwise ``(0.0, inf)`` is returned
        (the data cannot say how much compute the target needs). Residuals are assumed homoscedastic, as for
        :attr:`slope_ci`.
        """
        _check_target(target_error)
        t = _t_quantile(self.confidence, self.n)
        g = (t * self.slope_stderr) ** 2  # t² · SE(b)²
        h = (t * self.resid_std) ** 2 / self.n  # t² · SE(mean response at x̄)²
        b = self.slope
        e = self.y_mean - self._y_of_error(target_error)
        a2 = b * b - g
        if not a2 > 0:
            return (0.0, math.inf)
        # (e + b·d)² = h + g·d²  with d = x - x̄; discriminant is 4·(g·e² + a2·h) >= 0 when a2 > 0
        root = math.sqrt(g * e * e + a2 * h)
        d1, d2 = (-b * e - root) / a2, (-b * e + root) / a2
        return (_pow10(self.x_mean + min(d1, d2)), _pow10(self.x_mean + max(d1, d2)))

    def marginal_gain_per_10x(self, compute: float) -> float:
        """Fitted error removed by the next 10× of compute: ``error(c) - error(10·c)``, in error units (fraction).

        Constant ``-slope`` for the exponential form (until its line reaches zero); shrinks with compute for the
        polynomial one. Negative when the fit has error rising with compute.
        """
        return float(self.predict_error(compute) - self.predict_error(10.0 * compute))

    def describe(self) -> str:
        """One phrase: the fitted law, its R² and the slope's confidence interval."""
        lo, hi = self.slope_ci
        pct = f"{self.confidence:.0%}"
        if self.form == "polynomial":
            law = (f"error falls as compute^{self.slope:.3g}" if self.slope < 0
                   else f"error does not fall with compute (log-log slope {self.slope:+.3g})")
            ci = f"{pct} CI of the exponent {lo:.3g} to {hi:.3g}"
        else:
            law = (f"error falls by {-self.slope:.3g} per 10× compute" if self.slope < 0
                   else f"error does not fall with compute ({self.slope:+.3g} per 10× compute)")
            ci = f"{pct} CI of the slope {lo:.3g} to {hi:.3g} per 10×"
        return f"{law} (R² {self.r2:.2f}, {ci}, n={self.n})"

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for tracking and JSON."""
        return {"form": self.form, "slope": self.slope, "intercept": self.intercept, "r2": self.r2,
                "slope_ci_low": self.slope_ci[0], "slope_ci_high": self.slope_ci[1], "n": self.n,
                "slope_stderr": self.slope_stderr, "confidence": self.confidence}


@dataclass(frozen=True)
class ScalingReport:
    """Both fits of one error-against-compute curve, which fits better, an extrapolation and a plateau flag.

    ``fits`` maps form to :class:`FitResult`; ``best`` is the one with the higher R² (see the module docstring for
    why the R² values are comparable). ``marginal_gain_at_max`` is the best fit's error removed by 10× more compute
    than the largest observed (fraction); ``plateau`` is true when it is below ``plateau_threshold``.
    ``compute_for_target`` (caller's unit) and its interval are given when ``target_error`` was.
    """

    fits: dict[str, FitResult]
    best: FitResult
    plateau: bool
    plateau_threshold: float
    marginal_gain_at_max: float
    compute_min: float
    compute_max: float
    best_observed_error: float
    n: int
    compute_unit: str
    target_error: float | None = None
    compute_for_target: float | None = None
    compute_for_target_ci: tuple[float, float] | None = None

    @property
    def summary(self) -> str:
        """One paragraph for humans: the best law, which form fits better, the extrapolation and the plateau verdict."""
        return _summary(self)

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        """Flat plain values (``<prefix><form>_slope`` ...), for tracking and tables."""
        out: dict[str, Any] = {"best_form": self.best.form, "plateau": self.plateau,
                               "plateau_threshold": self.plateau_threshold,
                               "marginal_gain_per_10x_at_max": self.marginal_gain_at_max, "n": self.n,
                               "compute_min": self.compute_min, "compute_max": self.compute_max,
                               "best_observed_error": self.best_observed_error, "compute_unit": self.compute_unit,
                               "target_error": self.target_error, "compute_for_target": self.compute_for_target}
        for form, fit in self.fits.items():
            out.update({f"{form}_{k}": v for k, v in fit.to_dict().items() if k not in ("form", "n")})
        return {f"{prefix}{k}": v for k, v in out.items()}


# -- inputs --------------------------------------------------------------------------------------------------------


def errors_from_accuracy(accuracy: ArrayLike, *, percent: bool) -> np.ndarray:
    """``1 - accuracy`` as fractions; ``percent=True`` for accuracies in percent (NB201 tables), else fractions.

    NaN stays NaN (a failed trial). An accuracy outside [0, 100] % or [0, 1] raises :class:`ScalingError`.
    """
    acc = np.asarray(accuracy, dtype=float)
    top = 100.0 if percent else 1.0
    finite = acc[np.isfinite(acc)]
    if finite.size and (finite.min() < 0 or finite.max() > top):
        hint = (" They look like percentages: pass percent=True." if not percent and finite.max() <= 100
                else "")
        raise ScalingError(f"accuracies must lie in [0, {top:g}], got {finite.min():g}..{finite.max():g}.{hint}")
    return 1.0 - acc / top


def _validate(compute: ArrayLike, error: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(compute, dtype=float)
    e = np.asarray(error, dtype=float)
    if c.ndim != 1 or e.ndim != 1 or c.shape != e.shape:
        raise ScalingError(f"compute and error must be 1-D and of equal length, got shapes {c.shape} and {e.shape}")
    if len(c) < 3:
        raise ScalingError(f"need at least 3 points to fit a line with a confidence interval, got {len(c)}")
    bad = ~np.isfinite(c) | ~np.isfinite(e)
    if bad.any():
        raise ScalingError(f"{int(bad.sum())} point(s) have a non-finite compute or error (first at index "
                           f"{int(np.argmax(bad))}); drop failed trials before fitting")
    if (c <= 0).any():
        raise ScalingError(f"compute must be > 0 (it goes on a log scale); index {int(np.argmax(c <= 0))} is "
                           f"{c[c <= 0][0]:g}")
    if (e > 1).any():
        hint = (" These look like accuracies in percent: convert with errors_from_accuracy(acc, percent=True)."
                if e.max() <= 100 else "")
        raise ScalingError(f"error must be a fraction in (0, 1], got a maximum of {e.max():g}.{hint}")
    if (e <= 0).any():
        raise ScalingError(f"error must be > 0 (it goes on a log scale); index {int(np.argmax(e <= 0))} is "
                           f"{e[e <= 0][0]:g}. An error of 0 is below the evaluation set's resolution: raise it "
                           "to e.g. 0.5 / n_eval, or drop the point")
    if np.ptp(c) == 0:
        raise ScalingError(f"all {len(c)} points have the same compute ({c[0]:g}); a slope needs compute that varies")
    return c, e


def _check_target(target_error: float) -> None:
    if not 0 < target_error <= 1:
        raise ScalingError(f"target_error must be a fraction in (0, 1], got {target_error!r}")


def _t_quantile(confidence: float, n: int) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2.0, n - 2))


def _pow10(x: float) -> float:
    return math.inf if x > 308 else 10.0**x


# -- fitting -------------------------------------------------------------------------------------------------------


def fit_form(compute: ArrayLike, error: ArrayLike, form: Form, *, confidence: float = 0.95) -> FitResult:
    """OLS fit of one form (see the module docstring) to ``error`` (fractions in (0, 1]) against ``compute`` (> 0)."""
    if form not in FORMS:
        raise ScalingError(f"unknown form {form!r}; choose from {FORMS}")
    if not 0 < confidence < 1:
        raise ScalingError(f"confidence must be in (0, 1), got {confidence!r}")
    c, e = _validate(compute, error)
    x = np.log10(c)
    y = np.log10(e) if form == "polynomial" else e
    n = len(x)
    x_mean, y_mean = float(x.mean()), float(y.mean())
    dx, dy = x - x_mean, y - y_mean
    sxx, syy = float(dx @ dx), float(dy @ dy)
    slope = float(dx @ dy) / sxx
    intercept = y_mean - slope * x_mean
    resid = y - (intercept + slope * x)
    sse = max(float(resid @ resid), 0.0)
    r2 = 0.0 if syy == 0 else min(max(1.0 - sse / syy, 0.0), 1.0)
    resid_std = math.sqrt(sse / (n - 2)) if n > 2 else math.nan
    stderr = resid_std / math.sqrt(sxx)
    half = _t_quantile(confidence, n) * stderr
    return FitResult(form=form, slope=slope, intercept=intercept, r2=r2, slope_ci=(slope - half, slope + half), n=n,
                     slope_stderr=stderr, resid_std=resid_std, x_mean=x_mean, y_mean=y_mean, sxx=sxx,
                     compute_range=(float(c.min()), float(c.max())), confidence=confidence)


def fit_scaling(
    compute: ArrayLike,
    error: ArrayLike,
    forms: Sequence[Form] = FORMS,
    *,
    target_error: float | None = None,
    plateau_threshold: float = DEFAULT_PLATEAU_THRESHOLD,
    compute_unit: str = "FLOPs",
    confidence: float = 0.95,
) -> ScalingReport:
    """Fit ``error`` (fractions in (0, 1], i.e. ``1 - accuracy``) against ``compute`` (> 0) in each of ``forms``.

    ``best`` is the form with the higher R², comparable across forms as the module docstring explains.
    ``target_error`` (fraction), when given, is extrapolated to the compute that reaches it under the best form.
    The plateau flag compares the best form's fitted gain per 10× compute at the largest observed compute with
    ``plateau_threshold`` (absolute error, default 0.005 = half an accuracy point). ``compute_unit`` only labels
    the summary. Raises :class:`ScalingError` (a ``ValueError``) for unusable input: fewer than 3 points,
    non-finite values, compute <= 0, error outside (0, 1], or compute all equal.
    """
    if not forms:
        raise ScalingError("forms is empty; pass ('polynomial', 'exponential') or one of them")
    if len(set(forms)) != len(forms):
        raise ScalingError(f"forms repeats an entry: {tuple(forms)}")
    if not plateau_threshold >= 0:
        raise ScalingError(f"plateau_threshold must be >= 0 (error per 10× compute), got {plateau_threshold!r}")
    if target_error is not None:
        _check_target(target_error)
    c, e = _validate(compute, error)
    fits = {form: fit_form(c, e, form, confidence=confidence) for form in forms}
    # ties (e.g. a flat curve, R² 0 in both) go to the form listed first, polynomial by default
    best = max(fits.values(), key=lambda f: f.r2)
    c_max = float(c.max())
    gain = best.marginal_gain_per_10x(c_max)
    plateau = bool(gain < plateau_threshold)
    need = need_ci = None
    if target_error is not None:
        need = best.compute_for_error(target_error)
        need_ci = best.compute_for_error_interval(target_error)
    report = ScalingReport(fits=fits, best=best, plateau=plateau, plateau_threshold=plateau_threshold,
                           marginal_gain_at_max=gain, compute_min=float(c.min()), compute_max=c_max,
                           best_observed_error=float(e.min()), n=len(c), compute_unit=compute_unit,
                           target_error=target_error, compute_for_target=need, compute_for_target_ci=need_ci)
    logger.debug("scaling fit: %s", report.summary)
    return report


def _summary(r: ScalingReport) -> str:
    unit = r.compute_unit
    parts = [r.best.describe()]
    others = [f for f in r.fits.values() if f is not r.best]
    if others:
        parts.append("; ".join(f"{r.best.form} fits better than {o.form} (R² {r.best.r2:.3f} vs {o.r2:.3f})"
                               if r.best.r2 > o.r2 else
                               f"{r.best.form} and {o.form} fit equally (R² {o.r2:.3f})" for o in others))
    if r.target_error is not None:
        need, ci = r.compute_for_target, r.compute_for_target_ci
        if need is None:
            parts.append(f"no amount of compute reaches {r.target_error:.3g} error under this fit")
        else:
            ratio = need / r.compute_max
            if not math.isfinite(ratio):
                where = "beyond float range"
            elif ratio > 1:
                where = f"{ratio:.3g}× the largest trial"
            else:
                where = "within the observed compute"
            rng = f", {r.best.confidence:.0%} range {ci[0]:.2g} to {ci[1]:.2g}" if ci is not None else ""
            parts.append(f"reaching {r.target_error:.3g} error needs ~{need:.2g} {unit} ({where}{rng})")
    verdict = "a plateau" if r.plateau else "not a plateau"
    parts.append(f"10× beyond the largest trial ({r.compute_max:.3g} {unit}) buys {r.marginal_gain_at_max:.3g} "
                 f"error: {verdict} (threshold {r.plateau_threshold:g})")
    return "; ".join(parts) + "."


# -- search-level curve and trial records --------------------------------------------------------------------------


def best_so_far(
    compute_cumsum: ArrayLike, errors: ArrayLike, *, improvements_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The search's curve: cumulative search compute against the best error so far.

    ``compute_cumsum[i]`` is the compute spent by trials ``0..i`` together (non-decreasing, any unit), and
    ``errors[i]`` trial ``i``'s error (fraction; NaN for a failed trial, whose compute still counts). Returns
    ``(compute, best_error)`` at every trial from the first with a finite error on, or, with
    ``improvements_only``, only at the trials that lowered the best error.
    """
    c = np.asarray(compute_cumsum, dtype=float)
    e = np.asarray(errors, dtype=float)
    if c.ndim != 1 or c.shape != e.shape:
        raise ScalingError(f"compute_cumsum and errors must be 1-D and of equal length, got {c.shape} and {e.shape}")
    if not np.isfinite(c).all():
        raise ScalingError("compute_cumsum has a non-finite value; count a failed trial's compute as 0 or more")
    if (np.diff(c) < 0).any():
        raise ScalingError("compute_cumsum must be non-decreasing (a running total); pass np.cumsum(per_trial)")
    ok = np.isfinite(e)
    if not ok.any():
        return np.empty(0), np.empty(0)
    run = np.fmin.accumulate(np.where(ok, e, np.nan))
    keep = np.arange(len(e)) >= int(np.argmax(ok))
    if improvements_only:
        prev = np.concatenate(([np.inf], run[:-1]))
        keep &= run < np.where(np.isnan(prev), np.inf, prev)
    return c[keep], run[keep]


def fit_search_scaling(trial_compute: ArrayLike, errors: ArrayLike, **kwargs: Any) -> ScalingReport:
    """:func:`fit_scaling` of the search's curve from per-trial compute (in trial order) and per-trial errors.

    Cumulates ``trial_compute`` (NaN counts as 0), takes :func:`best_so_far` and fits it; ``kwargs`` go to
    :func:`fit_scaling`.
    """
    per = np.nan_to_num(np.asarray(trial_compute, dtype=float), nan=0.0)
    c, best = best_so_far(np.cumsum(per), errors)
    return fit_scaling(c, best, **kwargs)


def fit_trials(
    rows: Sequence[Mapping[str, Any]],
    *,
    accuracy_key: str = "val_accuracy",
    target_error: float | None = None,
    plateau_threshold: float = DEFAULT_PLATEAU_THRESHOLD,
    error_floor: float = 1e-3,
) -> dict[str, ScalingReport]:
    """Scaling fits over a search's trial rows (``TrialRecord.row()``: ``trial``, ``status`` and metrics).

    Returns up to three reports: ``inference`` (``mflops``, forward MFLOPs per sample, against error),
    ``training`` (``train_flops``, FLOPs, against error) and ``search`` (cumulative ``train_flops`` over all trials
    in trial order, failed ones included, against the best error so far). ``accuracy_key`` holds accuracies as
    fractions. An accuracy of exactly 1 is below the evaluation set's resolution; its error is raised to
    ``error_floor`` (pass ``0.5 / n_val`` for a half-sample correction). A curve that cannot be fitted (fewer
    than 3 usable trials, equal compute) is left out, with a log message saying why.
    """
    ordered = sorted(rows, key=lambda r: r.get("trial", 0))

    def num(r: Mapping[str, Any], key: str) -> float:
        v = r.get(key)
        return float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else math.nan

    acc = np.array([num(r, accuracy_key) if r.get("status", "complete") == "complete" else math.nan
                    for r in ordered])
    err = errors_from_accuracy(acc, percent=False)
    clipped = int(np.sum(err < error_floor))
    if clipped:
        logger.info("scaling: %d trial(s) with error below %g raised to it", clipped, error_floor)
    err = np.where(np.isfinite(err), np.maximum(err, error_floor), np.nan)
    kw: dict[str, Any] = {"target_error": target_error, "plateau_threshold": plateau_threshold}
    curves: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
    for name, key, unit in (("inference", "mflops", "MFLOPs"), ("training", "train_flops", "FLOPs")):
        c = np.array([num(r, key) for r in ordered])
        ok = np.isfinite(c) & (c > 0) & np.isfinite(err)
        curves[name] = (c[ok], err[ok], unit)
    train = np.array([num(r, "train_flops") for r in ordered])
    sc, sb = best_so_far(np.cumsum(np.nan_to_num(train, nan=0.0)), err)
    curves["search"] = (sc[sc > 0], sb[sc > 0], "FLOPs")
    out: dict[str, ScalingReport] = {}
    for name, (c, e, unit) in curves.items():
        try:
            out[name] = fit_scaling(c, e, compute_unit=unit, **kw)
        except ScalingError as exc:
            logger.info("scaling: no %s fit: %s", name, exc)
    return out


__all__ = [
    "DEFAULT_PLATEAU_THRESHOLD",
    "FORMS",
    "FitResult",
    "Form",
    "ScalingError",
    "ScalingReport",
    "best_so_far",
    "errors_from_accuracy",
    "fit_form",
    "fit_scaling",
    "fit_search_scaling",
    "fit_trials",
]
