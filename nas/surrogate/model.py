"""A tree-ensemble surrogate: predicted accuracy (the mean over trees) and its spread (the std over trees), as in
BANANAS-style ensembles (White et al. 2021) but with extremely randomized trees, which fit in milliseconds."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor


class ForestSurrogate:
    """``fit(X, y)`` then ``predict(X) -> (mean, std)``. ``trees`` trees, leaves of at least ``min_leaf``."""

    def __init__(self, seed: int, trees: int = 100, min_leaf: int = 2) -> None:
        self.model = ExtraTreesRegressor(n_estimators=trees, min_samples_leaf=min_leaf, n_jobs=1, random_state=seed)
        self.fitted = False

    def fit(self, x: np.ndarray, y: np.ndarray) -> ForestSurrogate:
        self.model.fit(x, y)
        self.fitted = True
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over the trees, one of each per row of ``x``."""
        x32 = np.ascontiguousarray(x, dtype=np.float32)  # the trees' own dtype; skips sklearn's per-call checks
        per_tree = np.stack([t.tree_.predict(x32).reshape(len(x32), -1)[:, 0] for t in self.model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)
