"""Classical baselines on the search's own split: logistic regression and gradient-boosted trees (scikit-learn).

On small data, traditional models are often as accurate as a searched network at a tiny fraction of its compute.
:func:`fit_baselines` trains them on ``splits.train``, scores them on ``splits.val`` and ``splits.test``, and
estimates their inference cost in the unit the rest of nas uses, so they can sit on the accuracy-against-MFLOPs
Pareto plot as reference points (:meth:`BaselineResult.row` gives the same keys as a trial row).

FLOP convention, as in :mod:`nas.profile`: 1 multiply-add = 1 FLOP, plus one FLOP per bias add; one comparison
= 1 FLOP. Softmax and the final argmax are left out, as they are for the networks.

- **Logistic regression** (multinomial, on standardized features): the standardization folds into the
  coefficients (``W' = W / σ``, ``b' = b - W'·μ``), so inference is one affine map:
  ``features × classes`` multiply-adds plus ``classes`` bias adds. For digits: 64 × 10 + 10 = 650 FLOPs, exactly
  what :func:`nas.profile.count_flops` reports for ``nn.Linear(64, 10)``.
- **Gradient-boosted trees** (``HistGradientBoostingClassifier``; one tree per class per iteration for more than
  two classes): a sample walks one root-to-leaf path per tree, one comparison per internal node on the path, then
  adds the leaf's value to its class score. FLOPs = Σ over trees of (expected path length + 1) + one add per
  class for the initial (baseline) score. The expected path length of a tree is read from the fitted model: the
  depth of each leaf weighted by the number of training samples that reached it. The worst case (every tree
  walked to its deepest leaf) is in ``details["worst_case_mflops"]``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nas.data import Splits
from nas.errors import did_you_mean

logger = logging.getLogger(__name__)

BASELINES = ("logreg", "gbt")


@dataclass(frozen=True)
class BaselineResult:
    """One fitted classical baseline.

    ``val_accuracy`` and ``test_accuracy`` are fractions in [0, 1]. ``mflops`` is the estimated inference cost per
    sample in MFLOPs (10^6 FLOPs, convention in the module docstring). ``params`` counts stored numbers the model
    needs at inference: coefficients and intercepts for logistic regression; tree nodes for the trees (each node
    holds a feature and threshold, or a leaf value). ``fit_seconds`` is the wall-clock training time.
    ``details`` holds the counts behind the estimate.
    """

    name: str
    val_accuracy: float
    test_accuracy: float
    mflops: float
    params: int
    fit_seconds: float
    details: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """A row with the keys of a trial row (``val_accuracy``, ``mflops``, ``params``), for Pareto plots/tables."""
        return {"trial": f"baseline:{self.name}", "status": "baseline", "name": self.name,
                "val_accuracy": self.val_accuracy, "test_accuracy": self.test_accuracy, "mflops": self.mflops,
                "params": self.params, "fit_seconds": self.fit_seconds}

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain values."""
        return asdict(self)


def _arrays(splits: Splits, part: str) -> tuple[np.ndarray, np.ndarray]:
    ds = getattr(splits, part)
    x, y = ds.tensors
    return x.reshape(len(x), -1).numpy().astype(np.float64), y.numpy()


def logreg_flops(n_features: int, n_classes: int) -> tuple[int, int]:
    """``(flops, macs)`` of multinomial logistic regression per sample: MACs = features × classes, FLOPs add one
    bias add per class. Two classes use a single logit (sklearn's binary model): features MACs plus one add."""
    outputs = 1 if n_classes == 2 else n_classes
    macs = n_features * outputs
    return macs + outputs, macs


def tree_ensemble_flops(model: Any) -> dict[str, float]:
    """Inference FLOPs per sample of a fitted ``HistGradientBoostingClassifier``/``Regressor``.

    Returns ``flops`` (expected: Σ over trees of the training-count-weighted mean leaf depth + 1 leaf add, plus
    one baseline add per output), ``worst_case_flops`` (each tree to its deepest leaf), ``comparisons``
    (expected comparisons alone), ``trees``, ``nodes`` and ``leaves``.
    """
    predictors = model._predictors  # list (iterations) of lists (one tree per output); no public accessor
    trees = [tree for iteration in predictors for tree in iteration]
    if not trees:
        raise ValueError("tree_ensemble_flops: the model has no trees; fit it first")
    comparisons = worst = 0.0
    nodes = leaves = 0
    for tree in trees:
        nd = tree.nodes
        leaf = nd["is_leaf"].astype(bool)
        depth = nd["depth"].astype(float)
        counts = nd["count"].astype(float)
        root = counts[0]
        comparisons += float(counts[leaf] @ depth[leaf] / root) if root > 0 else float(depth[leaf].mean())
        worst += float(depth[leaf].max())
        nodes += len(nd)
        leaves += int(leaf.sum())
    outputs = len(predictors[0])
    adds = len(trees) + outputs
    return {"flops": comparisons + adds, "worst_case_flops": worst + adds, "comparisons": comparisons,
            "trees": float(len(trees)), "nodes": float(nodes), "leaves": float(leaves)}


def _fit_logreg(xtr: np.ndarray, ytr: np.ndarray, seed: int, n_classes: int) -> tuple[Any, int, dict[str, float]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # lbfgs fits the multinomial (softmax) model for more than two classes
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    model.fit(xtr, ytr)
    lr = model[-1]
    flops, macs = logreg_flops(xtr.shape[1], n_classes)
    params = int(lr.coef_.size + lr.intercept_.size)
    return model, params, {"flops": float(flops), "macs": float(macs), "features": float(xtr.shape[1]),
                           "worst_case_mflops": flops / 1e6}


def _fit_gbt(xtr: np.ndarray, ytr: np.ndarray, seed: int, n_classes: int) -> tuple[Any, int, dict[str, float]]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=50, learning_rate=0.2, max_leaf_nodes=15,
                                           early_stopping=False, random_state=seed)
    model.fit(xtr, ytr)
    counts = tree_ensemble_flops(model)
    details = {**counts, "worst_case_mflops": counts["worst_case_flops"] / 1e6, "iterations": float(model.n_iter_)}
    return model, int(counts["nodes"]), details


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of ``y`` predicted right; NaN for an empty split."""
    return float(np.mean(model.predict(x) == y)) if len(y) else float("nan")


_FITTERS = {"logreg": _fit_logreg, "gbt": _fit_gbt}


def fit_baselines(
    splits: Splits, *, seed: int = 0, which: Sequence[str] = BASELINES, n_threads: int | None = 1
) -> list[BaselineResult]:
    """Train each baseline in ``which`` (``"logreg"``, ``"gbt"``) on ``splits.train``; score on val and test.

    Inputs are flattened to ``(n, prod(input_shape))`` features. ``seed`` seeds the solvers. ``n_threads`` caps the
    BLAS/OpenMP threads while fitting (``None``: no cap); the default 1 is fastest on small data, where thread
    start-up costs more than it saves and oversubscribes a machine that is also running trials. Results come in
    the order of ``which``. Takes a second or two on ``digits``.
    """
    unknown = [w for w in which if w not in _FITTERS]
    if unknown:
        raise ValueError(f"unknown baseline {unknown[0]!r}; choose from {BASELINES}."
                         f"{did_you_mean(unknown[0], BASELINES, sentence=True)}")
    xtr, ytr = _arrays(splits, "train")
    xva, yva = _arrays(splits, "val")
    xte, yte = _arrays(splits, "test")
    out = []
    with threadpool_limits(limits=n_threads):
        for name in which:
            t0 = time.perf_counter()
            model, params, details = _FITTERS[name](xtr, ytr, seed, splits.num_classes)
            seconds = time.perf_counter() - t0
            val_acc, test_acc = _accuracy(model, xva, yva), _accuracy(model, xte, yte)
            res = BaselineResult(name=name, val_accuracy=val_acc, test_accuracy=test_acc,
                                 mflops=details["flops"] / 1e6, params=params, fit_seconds=seconds, details=details)
            logger.info("baseline %s on %s: val acc %.4f, test acc %.4f, %.3g MFLOPs, %d params, %.2f s",
                        name, splits.name, res.val_accuracy, res.test_accuracy, res.mflops, res.params, seconds)
            out.append(res)
    return out


__all__ = ["BASELINES", "BaselineResult", "fit_baselines", "logreg_flops", "tree_ensemble_flops"]
