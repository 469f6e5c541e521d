"""Screening: of k profiled candidates, which one to train, judged by a zero-cost proxy.

A proxy score is mapped to a predicted accuracy by an increasing isotonic fit on the (score, trained accuracy)
pairs seen so far; each candidate's predicted point (predicted accuracy, its known costs) is scored by the
hypervolume it would add to the current front, and the candidate adding most is trained. Choosing by HV gain,
not by the raw score, matters in a multi-objective search: a proxy (like #params) favours big models, and the
front needs small ones too. Too few pairs (or no gain anywhere): the sampler's first candidate is kept.
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


def pick_candidate(
    predicted: Sequence[Mapping[str, float]],
    observed: Sequence[Mapping[str, float]],
    objectives: Sequence[tuple[str, Direction]],
    reference: Mapping[str, float],
) -> tuple[int, list[float]]:
    """Index of the candidate whose predicted objective row adds the most hypervolume to ``observed``, and
    every candidate's gain. Rows with a NaN prediction gain nothing; ties (e.g. all zero) go to the first."""
    rows = list(observed)
    if rows:  # only the front matters to a hypervolume
        rows = [r for r, on in zip(rows, pareto_mask(rows, objectives), strict=True) if on]
    base = hypervolume(rows, objectives, reference)
    gains = []
    for row in predicted:
        if any(not math.isfinite(float(row[name])) for name, _ in objectives):
            gains.append(0.0)
            continue
        gains.append(max(0.0, hypervolume([*rows, row], objectives, reference) - base))
    best = max(range(len(gains)), key=lambda i: (gains[i], -i))
    return best, gains
