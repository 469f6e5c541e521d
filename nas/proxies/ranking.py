"""Rank correlation of proxy scores with trained accuracy, and an online judge of which proxy to trust.

The search calls :class:`ProxyRanker`: every trained candidate adds its proxy scores (computed at build
time) and its accuracy; the ranker reports each proxy's Spearman ρ so far and picks the proxy to rank new,
untrained candidates with. Plain Python and numpy/scipy: no tracking or distributed state.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.stats import spearmanr

log = logging.getLogger(__name__)

BASELINE = "params"


def spearman(
    scores: Sequence[float] | Iterable[float], accuracies: Sequence[float] | Iterable[float]
) -> float:
    """Spearman rank correlation ρ of ``scores`` with ``accuracies`` (paired by position), in [-1, 1].

    Ties get average ranks; ±inf scores rank as the extremes they are. Pairs with a NaN on either side are
    dropped. NaN when fewer than 2 pairs remain or either side is constant (no ranking to correlate).
    ``ValueError`` when the two sequences differ in length.
    """
    s = np.asarray(list(scores), dtype=np.float64)
    a = np.asarray(list(accuracies), dtype=np.float64)
    if s.shape != a.shape or s.ndim != 1:
        raise ValueError(
            f"spearman: scores and accuracies must be equal-length 1-D, got {s.shape} and {a.shape}"
        )
    keep = ~(np.isnan(s) | np.isnan(a))
    s, a = s[keep], a[keep]
    if s.size < 2 or np.all(s == s[0]) or np.all(a == a[0]):
        return math.nan
    # scipy ranks inf like any other value; map ±inf to finite extremes so its arithmetic stays finite
    finite = s[np.isfinite(s)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    s = np.where(s == np.inf, hi + 1.0, np.where(s == -np.inf, lo - 1.0, s))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = spearmanr(s, a).statistic
    return float(rho)


class ProxyRanker:
    """(proxy score, trained accuracy) pairs seen online, and which proxy to trust now.

    ``add({"synflow": 3.1e15, "params": 1.2e6, ...}, accuracy=0.91)`` records one trained candidate.
    :meth:`correlations` gives each proxy's Spearman ρ with accuracy over its pairs so far.

    :meth:`best_proxy` rule: among the proxies with at least ``min_pairs`` pairs and a defined ρ, take the
    one with the highest ρ; trust it only if its ρ beats the ``params`` baseline's ρ by more than ``margin``
    (default 0: strictly higher), otherwise return ``"params"``. Until ``params`` itself has ``min_pairs``
    pairs (too little evidence to prefer anything) the answer is also ``"params"``. The default is the
    parameter count because ZiCo (Li et al., ICLR 2023) found that no zero-cost proxy beats #params
    consistently across search spaces and tasks: a proxy must earn its place on this search's own data.
    """

    def __init__(self, baseline: str = BASELINE) -> None:
        self.baseline = baseline
        self._pairs: dict[str, list[tuple[float, float]]] = {}

    def add(self, scores: Mapping[str, float], accuracy: float) -> None:
        """Record one trained candidate: its proxy ``scores`` (any subset of proxies) and its ``accuracy``.

        NaN scores are skipped for that proxy (a proxy that failed says nothing); a NaN accuracy is ignored.
        """
        acc = float(accuracy)
        if math.isnan(acc):
            log.debug("ProxyRanker.add: NaN accuracy ignored")
            return
        for name, score in scores.items():
            value = float(score)
            if not math.isnan(value):
                self._pairs.setdefault(name, []).append((value, acc))

    def __len__(self) -> int:
        """The largest number of pairs any proxy has."""
        return max((len(p) for p in self._pairs.values()), default=0)

    @property
    def proxies(self) -> list[str]:
        """The proxies seen so far, in first-seen order."""
        return list(self._pairs)

    def n_pairs(self, name: str) -> int:
        """How many (score, accuracy) pairs proxy ``name`` has."""
        return len(self._pairs.get(name, ()))

    def rho(self, name: str) -> float:
        """Spearman ρ of proxy ``name`` with accuracy over its pairs (NaN with fewer than 2 or no spread)."""
        pairs = self._pairs.get(name, [])
        return spearman([s for s, _ in pairs], [a for _, a in pairs])

    def correlations(self) -> dict[str, float]:
        """``{proxy: ρ}`` for every proxy seen."""
        return {name: self.rho(name) for name in self._pairs}

    def best_proxy(self, min_pairs: int = 5, margin: float = 0.0) -> str:
        """The proxy to rank untrained candidates with now (see the class docstring for the rule)."""
        if self.n_pairs(self.baseline) < min_pairs:
            return self.baseline
        base = self.rho(self.baseline)
        rhos = {
            n: r
            for n in self._pairs
            if n != self.baseline and self.n_pairs(n) >= min_pairs and not math.isnan(r := self.rho(n))
        }
        if not rhos:
            return self.baseline
        best = max(rhos, key=lambda n: rhos[n])
        if math.isnan(base) or rhos[best] > base + margin:
            return best
        return self.baseline
