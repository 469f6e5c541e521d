"""Screening: of k profiled candidates, which one to train, judged by a zero-cost proxy.

A proxy score is mapped to a predicted accuracy by an increasing isotonic fit on the (score, trained accuracy)
pairs seen so far; each candidate's predicted point (predicted accuracy, its known costs) is scored by the
hypervolume it would add to the current front, and the candidate adding most is trained. Choosing by HV gain,
not by the raw score, matters in a multi-objective search: a proxy (like #params) favours big models, and the
front needs small ones too. Too few pairs (or no gain anywhere): the sampler's first candidate is kept.

A point prediction regresses to the mean: once the front is good, every candidate's predicted point lies behind
it and all gains are 0. :func:`prediction_errors` gives each candidate the residuals of the fit on the pairs
nearest its score (a local empirical error distribution); with them, :func:`pick_candidate` ranks by the
*expected* hypervolume improvement (EHVI, Emmerich et al. 2006) over those errors, which still tells a likely
improvement from an unlikely one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.isotonic import IsotonicRegression

from nas.config.objectives import Direction
from nas.pareto import hypervolume, pareto_mask


def predict_accuracy(pairs: Sequence[tuple[float, float]], scores: Sequence[float]) -> list[float]:
    """Accuracy predicted for each of ``scores`` by an increasing isotonic fit of ``pairs`` (score, accuracy).

    Scores outside the seen range get the nearest end's prediction; a NaN score predicts NaN.
    """
    xs = np.array([p[0] for p in pairs], dtype=float)
    ys = np.array([p[1] for p in pairs], dtype=float)
    fit = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(xs, ys)
    s = np.asarray(scores, dtype=float)
    out = np.full(len(s), np.nan)
    ok = np.isfinite(s)
    if ok.any():
        out[ok] = fit.predict(s[ok])
    return out.tolist()


def prediction_errors(
    pairs: Sequence[tuple[float, float]], scores: Sequence[float], neighbours: int = 16
) -> list[list[float]]:
    """For each of ``scores``: the residuals (accuracy - fit) of the isotonic fit on the ``neighbours`` pairs
    nearest that score (fewer if there are fewer pairs); an empty list for a NaN score."""
    xs = np.array([p[0] for p in pairs], dtype=float)
    ys = np.array([p[1] for p in pairs], dtype=float)
    if len(xs) == 0:
        return [[] for _ in scores]
    fit = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(xs, ys)
    resid = ys - fit.predict(xs)
    m = min(neighbours, len(xs))
    out: list[list[float]] = []
    for s in scores:
        if not math.isfinite(float(s)):
            out.append([])
            continue
        near = np.argsort(np.abs(xs - float(s)), kind="stable")[:m]
        out.append(resid[near].tolist())
    return out


def pick_candidate(
    predicted: Sequence[Mapping[str, float]],
    observed: Sequence[Mapping[str, float]],
    objectives: Sequence[tuple[str, Direction]],
    reference: Mapping[str, float],
    *,
    uncertain: str | None = None,
    errors: Sequence[Sequence[float]] | None = None,
) -> tuple[int, list[float]]:
    """Index of the candidate whose predicted objective row adds the most hypervolume to ``observed``, and
    every candidate's gain. Rows with a NaN prediction gain nothing; ties (e.g. all zero) go to the first.

    With ``errors`` (one list per candidate, e.g. from :func:`prediction_errors`) and ``uncertain`` (the
    objective they apply to), a candidate's gain is the mean gain of its row with ``uncertain`` shifted by each
    error: its expected hypervolume improvement. An empty error list means the point gain.
    """
    if errors is not None and (uncertain is None or len(errors) != len(predicted)):
        raise ValueError("errors need `uncertain` (an objective name) and one list per candidate")
    rows = list(observed)
    if rows:  # only the front matters to a hypervolume
        rows = [r for r, on in zip(rows, pareto_mask(rows, objectives), strict=True) if on]
    base = hypervolume(rows, objectives, reference)
    gains = []
    for i, row in enumerate(predicted):
        if any(not math.isfinite(float(row[name])) for name, _ in objectives):
            gains.append(0.0)
            continue
        shifts = list(errors[i]) if errors is not None and errors[i] else [0.0]
        total = 0.0
        for e in shifts:
            moved = {**row, uncertain: float(row[uncertain]) + e} if e and uncertain is not None else row
            total += hypervolume([*rows, moved], objectives, reference) - base
        gains.append(max(0.0, total / len(shifts)))
    best = max(range(len(gains)), key=lambda i: (gains[i], -i))
    return best, gains
