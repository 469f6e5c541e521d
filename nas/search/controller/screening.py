"""Zero-cost proxies in the controller: scores of proposed candidates, which proxy to trust, screening a pool
of candidates down to one, and proxy-prior seeding (``proxy.use``: screen, prior, objective).

Plain values in and out: candidates are given as (objective rows, proxy scores); the controller asks and tells
Optuna. Screening picks by the hypervolume a candidate's predicted point would add (:mod:`nas.proxies.screen`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nas.config.experiment import Experiment
from nas.config.objectives import sign
from nas.pareto import front_order, reference_point
from nas.proxies import ProxyRanker
from nas.proxies.screen import pick_candidate, predict_accuracy
from nas.space import Space

log = logging.getLogger(__name__)

#: seeds of the random architectures a proxy prior scores: PRIOR_SEED_BASE + search seed × PRIOR_SEED_STRIDE + i
PRIOR_SEED_BASE, PRIOR_SEED_STRIDE = 30_000, 1_000

Scorer = Callable[[Mapping[str, Any]], dict[str, float]]


class Screening:
    """What the proxies said about each trial and how well that predicted trained accuracy.

    ``objectives``: (metric, direction) pairs; ``accuracy``: the maximized trained objective, or None (then
    screening keeps the sampler's choice). ``reference``: the hypervolume reference (None: from the rows seen).
    """

    def __init__(self, exp: Experiment, objectives: Sequence[tuple[str, str]], accuracy: str | None,
                 reference: Mapping[str, float] | None) -> None:
        self.exp, self.objectives, self.accuracy = exp, list(objectives), accuracy
        self.reference = dict(reference) if reference else None
        self.ranker = ProxyRanker()
        self.scores: dict[int, dict[str, float]] = {}
        self.accuracies: dict[int, float] = {}
        self.observed: list[dict[str, float]] = []  # objective rows of complete trials

    def score(self, number: int, scorer: Scorer, params: Mapping[str, Any]) -> dict[str, float]:
        """Trial ``number``'s proxy scores (empty when the proxy fails: that says nothing about the candidate)."""
        try:
            scores = {k: float(v) for k, v in scorer(params).items()}
        except Exception as e:
            log.warning("proxy scoring failed for trial %d: %s", number, e)
            scores = {}
        self.scores[number] = scores
        return scores

    def active(self) -> str:
        """The proxy trusted now: the configured one (or, for ``auto``, the best seen) when it beats ``params``
        by online Spearman ρ over at least ``proxy.min_pairs`` trained trials; ``params`` otherwise."""
        return self.ranker.best_proxy(min_pairs=self.exp.proxy.min_pairs)

    def correlations(self) -> dict[str, float]:
        """Each proxy's Spearman ρ with trained accuracy so far (NaN until defined)."""
        return self.ranker.correlations()

    def learn(self, number: int, metrics: Mapping[str, float]) -> None:
        """A trial completed with ``metrics``: its row joins the front, its accuracy the proxy correlations."""
        self.observed.append({name: float(metrics[name]) for name, _ in self.objectives})
        acc = float(metrics.get(self.accuracy, math.nan)) if self.accuracy else math.nan
        if math.isfinite(acc):
            self.accuracies[number] = acc
            if number in self.scores:
                self.ranker.add(self.scores[number], acc)

    def choose(self, rows: Sequence[Mapping[str, float]], scores: Sequence[Mapping[str, float]]) -> int:
        """Of candidates with cost ``rows`` (every objective but accuracy) and proxy ``scores``, the index of the
        one to train: the largest expected hypervolume gain of its predicted point; 0 (the sampler's own choice)
        while fewer than ``proxy.min_pairs`` trained trials relate the active proxy to accuracy."""
        name = self.active()
        pairs = [(self.scores[n].get(name, math.nan), a) for n, a in self.accuracies.items() if n in self.scores]
        pairs = [(s, a) for s, a in pairs if math.isfinite(s)]
        if self.accuracy is None or len(pairs) < self.exp.proxy.min_pairs:
            return 0
        predicted = predict_accuracy(pairs, [s.get(name, math.nan) for s in scores])
        points = [{**r, self.accuracy: p} for r, p in zip(rows, predicted, strict=True)]
        ref = self.reference or reference_point(
            self.objectives, {n: [r[n] for r in points + self.observed] for n, _ in self.objectives if n != self.accuracy})
        best, _ = pick_candidate(points, self.observed, self.objectives, ref)
        return best


def prior_params(exp: Experiment, space: Space, scorer: Scorer,
                 feasible_costs: Callable[[Mapping[str, Any]], dict[str, float] | None]) -> list[dict[str, Any]]:
    """``proxy.use: prior``: of ``prior_samples`` seeded random architectures, the feasible ones
    (``feasible_costs`` gives their profile objectives, None when infeasible or unbuildable) scored by the proxy,
    the ``prior_top`` best covering (proxy score, costs), best first."""
    px = exp.proxy
    rows, params_list = [], []
    for i in range(px.prior_samples):
        params = space.sample_random(PRIOR_SEED_BASE + exp.search.seed * PRIOR_SEED_STRIDE + i)
        costs = feasible_costs(params)
        if costs is None:
            continue
        try:
            scores = scorer(params)
        except Exception:
            continue
        name = px.name if px.name != "auto" else "naswot" if "naswot" in scores else next(iter(scores))
        rows.append({**costs, "proxy": scores.get(name, math.nan)})
        params_list.append(params)
    if not rows:
        return []
    objectives = [(o.name, o.direction) for o in exp.objectives if o.name in rows[0]] + [("proxy", "maximize")]
    losses = np.array([[sign(d) * r[k] for k, d in objectives] for r in rows])
    return [params_list[i] for i in front_order(losses)[: px.prior_top]]
