"""What a report shows, as plain data, and the derived series the search may not have stored.

:class:`ReportData` is filled by the caller (the CLI reads MLflow; tests and benchmarks build it by hand). Every
field but ``title``, ``run_id`` and ``trials`` may be left empty: sections without data say so instead of
failing. Accuracies are fractions in [0, 1]; FLOPs are plain FLOPs except ``mflops`` (forward MFLOPs per sample).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.cost.breakeven import BreakEvenRow
from nas.cost.ledger import SearchBill
from nas.pareto import hypervolume_curve, pareto_mask
from nas.report.scaling import ScalingReport, best_so_far, fit_trials

log = logging.getLogger(__name__)

ACCURACY = "val_accuracy"


@dataclass
class ReportData:
    """Everything one report shows.

    trials: one row per trial (``TrialRecord.row()``: ``trial``, ``status`` and metrics; a ``pareto`` flag is
        computed from ``objectives`` when absent). objectives: ``(metric, direction)``, accuracy first.
    experiment: a summary shown as a table (name, space, hash, seeds, hardware ...).
    baselines: classical baseline rows (``BaselineResult.row()``), plotted as labelled reference points.
    hypervolume: ``(cumulative training FLOPs, hypervolume)`` after each trial; :func:`hypervolume_history`
        computes it from ``trials`` and a reference point.
    bill: the search's :class:`~nas.cost.ledger.SearchBill` (``None``: no bill section content).
    break_even: :class:`~nas.cost.breakeven.BreakEvenRow` rows.
    scaling: curve name -> ``ScalingReport.to_dict()`` plus ``summary`` (see :func:`scaling_entries`), optionally
        ``points`` ``[[compute, error], ...]``; ``None`` fits the trials here (:func:`nas.report.scaling.fit_trials`).
    one_shot: for a one-shot search, its trained finalists (:func:`nas.oneshot.report.finalists_from_csv`).
    """

    title: str
    run_id: str
    trials: list[dict[str, Any]]
    objectives: list[tuple[str, str]] = field(default_factory=lambda: [(ACCURACY, "maximize"), ("mflops", "minimize")])
    experiment: dict[str, Any] = field(default_factory=dict)
    baselines: list[dict[str, Any]] = field(default_factory=list)
    hypervolume: list[tuple[float, float]] = field(default_factory=list)
    bill: SearchBill | None = None
    break_even: list[BreakEvenRow] = field(default_factory=list)
    scaling: dict[str, dict[str, Any]] | None = None
    one_shot: list[dict[str, Any]] | None = None  # a one-shot search's finalists (nas.oneshot.report)


def _finite(row: Mapping[str, Any], key: str) -> float | None:
    v = row.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def complete_rows(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[Mapping[str, Any]]:
    """Completed trials with a finite value for every key."""
    return [r for r in rows if r.get("status", "complete") == "complete" and all(_finite(r, k) is not None for k in keys)]


def pareto_flags(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]]) -> list[bool]:
    """Each row's ``pareto`` flag if every row has one, else computed over the completed rows."""
    if rows and all(isinstance(r.get("pareto"), bool) for r in rows):
        return [bool(r["pareto"]) for r in rows]
    names = [n for n, _ in objectives]
    ok = {id(r) for r in complete_rows(rows, names)}
    usable = [r for r in rows if id(r) in ok]
    mask = dict(zip(map(id, usable), pareto_mask(usable, objectives), strict=True))
    return [mask.get(id(r), False) for r in rows]


def hypervolume_history(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]],
                        reference: Mapping[str, float], *, points: int = 200) -> list[tuple[float, float]]:
    """``(cumulative training FLOPs, hypervolume)`` in trial order (failed trials' FLOPs count), evaluated at most
    ``points`` times (evenly spaced trials, the last always included)."""
    ordered = sorted(rows, key=lambda r: r.get("trial", 0) if isinstance(r.get("trial"), int) else 0)
    if not ordered:
        return []
    names = [n for n, _ in objectives]
    done = {id(r) for r in complete_rows(ordered, names)}
    at = {int(i) for i in np.linspace(0, len(ordered) - 1, min(points, len(ordered)))}
    steps = [(_finite(r, "train_flops") or 0.0, r if id(r) in done else None) for r in ordered]
    return hypervolume_curve(steps, objectives, reference, at=at)


def scaling_entries(reports: Mapping[str, ScalingReport]) -> dict[str, dict[str, Any]]:
    """``ReportData.scaling`` from :func:`nas.report.scaling.fit_trials` results."""
    return {name: {**rep.to_dict(), "summary": rep.summary} for name, rep in reports.items()}


CURVES: dict[str, tuple[str, str]] = {
    "inference": ("mflops", "forward MFLOPs per sample"),
    "training": ("train_flops", "training FLOPs per trial"),
    "search": ("train_flops", "cumulative training FLOPs of the search"),
}
"""Scaling curve name -> (trial metric, x-axis label), as :func:`nas.report.scaling.fit_trials` names them."""


def curve_points(name: str, rows: Sequence[Mapping[str, Any]], error_floor: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """The observed ``(compute, error)`` of one scaling curve from trial rows (as :func:`fit_trials` fits it)."""
    ordered = sorted(rows, key=lambda r: r.get("trial", 0) if isinstance(r.get("trial"), int) else 0)
    key = CURVES[name][0]
    acc = np.array([(_finite(r, ACCURACY) if r.get("status", "complete") == "complete" else None) or math.nan
                    for r in ordered])
    err = np.where(np.isfinite(acc), np.maximum(1.0 - acc, error_floor), np.nan)
    comp = np.array([_finite(r, key) or math.nan for r in ordered])
    if name == "search":
        c, e = best_so_far(np.cumsum(np.nan_to_num(comp, nan=0.0)), err)
        keep = c > 0
        return c[keep], e[keep]
    keep = np.isfinite(comp) & (comp > 0) & np.isfinite(err)
    return comp[keep], err[keep]


def resolved_scaling(data: ReportData) -> dict[str, dict[str, Any]]:
    """``data.scaling``, or fits of ``data.trials`` when it is ``None``."""
    if data.scaling is not None:
        return data.scaling
    try:
        return scaling_entries(fit_trials(data.trials))
    except ValueError as e:  # accuracies outside [0, 1] and the like: the section says so
        log.warning("report: no scaling fits: %s", e)
        return {}
