"""Every plot nas draws, as PNG bytes: titles, axis labels with units, legends on every one.

Figures are built with the object API (:class:`matplotlib.figure.Figure`, rendered by the Agg canvas), never
through ``pyplot``: importing this module changes no global state (a notebook's backend stays its own).
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from nas.config.objectives import METRICS
from nas.cost.ledger import PARTS, SearchBill
from nas.pareto import pareto_mask
from nas.report.data import ACCURACY, CURVES, pareto_flags

DPI = 120
BASELINE_MARKERS = ("*", "D", "P", "X", "s", "^")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def axis_label(name: str) -> str:
    """``mflops`` -> ``mflops (MFLOPs)``; accuracy is shown in percent."""
    if name == ACCURACY:
        return "validation accuracy (%)"
    info = METRICS.get(name)
    if info:
        return f"{re.split(r' [(]|[,;]', info.description)[0]} ({info.unit})"
    return name


def _num(r: Mapping[str, Any], key: str) -> float:
    v = r.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def pareto_png(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]], title: str, *,
               costs: Sequence[str] | None = None, baselines: Sequence[Mapping[str, Any]] = (),
               pareto: Sequence[bool] | None = None) -> bytes:
    """The first maximized objective (accuracy, shown in %) against each other objective, or each of ``costs``, one
    panel each: every completed trial, the Pareto set over all objectives (``pareto``: one flag per row, else
    computed), the panel's two-objective front as a step line, and the ``baselines`` as labelled markers."""
    y_name = next((n for n, d in objectives if d == "maximize"), objectives[0][0])
    directions = dict(objectives)
    costs = list(costs) if costs is not None else [n for n, _ in objectives if n != y_name]
    flags = list(pareto) if pareto is not None else pareto_flags(rows, objectives)
    fig = Figure(figsize=(7.5 * len(costs), 5.0))
    for ax, cost in zip(fig.subplots(1, len(costs), squeeze=False)[0], costs, strict=True):
        _pareto_panel(ax, rows, flags, (y_name, directions.get(y_name, "maximize")),
                      (cost, directions.get(cost, "minimize")), baselines)
        ax.set_title(title if len(costs) == 1 else f"{y_name} against {cost}")
    if len(costs) > 1:
        fig.suptitle(title)
    return _png(fig)


def _pareto_panel(ax: Any, rows: Sequence[Mapping[str, Any]], flags: Sequence[bool], y: tuple[str, str],
                  x: tuple[str, str], baselines: Sequence[Mapping[str, Any]]) -> None:
    (y_name, _), (cost, _) = y, x
    scale = 100.0 if y_name == ACCURACY else 1.0
    ok = [(r, p) for r, p in zip(rows, flags, strict=True)
          if r.get("status", "complete") == "complete" and math.isfinite(_num(r, cost)) and math.isfinite(_num(r, y_name))]
    xs = np.array([_num(r, cost) for r, _ in ok])
    ys = np.array([scale * _num(r, y_name) for r, _ in ok])
    on = np.array([p for _, p in ok], dtype=bool)
    base = [b for b in baselines if math.isfinite(_num(b, cost)) and math.isfinite(_num(b, y_name))]
    ax.scatter(xs[~on], ys[~on], s=14, c="0.65", alpha=0.6, lw=0, label=f"trials ({len(xs)})")
    if on.any():
        ax.scatter(xs[on], ys[on], s=36, c="tab:red", zorder=3, label=f"Pareto set, all objectives ({int(on.sum())})")
    if len(xs):
        front = sorted((r[cost], scale * r[y_name]) for r, keep in zip([r for r, _ in ok], pareto_mask(
            [r for r, _ in ok], [x, y]), strict=True) if keep)
        ax.step([f[0] for f in front], [f[1] for f in front], where="post", c="tab:red", lw=1.2, alpha=0.8,
                label=f"front: {y_name} vs {cost}")
    for i, b in enumerate(base):
        bx, by = _num(b, cost), scale * _num(b, y_name)
        ax.scatter([bx], [by], s=110, marker=BASELINE_MARKERS[i % len(BASELINE_MARKERS)], c="tab:blue",
                   edgecolors="k", zorder=4, label=f"baseline: {b.get('name', b.get('trial'))}")
        ax.annotate(str(b.get("name", "")), (bx, by), textcoords="offset points", xytext=(6, -12), fontsize=9,
                    color="tab:blue")
    allx = np.concatenate([xs, [_num(b, cost) for b in base]]) if base else xs
    if len(allx) and allx.min() > 0 and allx.max() / allx.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(axis_label(cost) + (", log scale" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(axis_label(y_name))
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=9)


def hypervolume_png(history: Sequence[tuple[float, float]], objectives: Sequence[tuple[str, str]], title: str,
                    stop: str | None = None) -> bytes:
    """Hypervolume against cumulative training compute: ``history`` is ``(training FLOPs spent, hypervolume)``
    after each trial, shown in TFLOPs; ``stop`` (why a rule stopped the search, if one did) is written below."""
    c = np.array([h[0] for h in history]) / 1e12
    hv = np.array([h[1] for h in history])
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    ax.step(c, hv, where="post", c="tab:green", lw=1.8, label="hypervolume after each trial")
    if len(hv):
        ax.scatter(c[-1:], hv[-1:], c="tab:green", zorder=3, label=f"final: {hv[-1]:.4g}")
    units = " × ".join(METRICS[n].unit if n in METRICS else n for n, _ in objectives)
    log_x = len(c) > 1 and c[0] > 0 and c[-1] / c[0] > 100
    if log_x:  # early progress would be squeezed against the axis
        ax.set_xscale("log")
    ax.set_xlabel("cumulative training compute of the search (TFLOPs" + (", log scale)" if log_x else ")"))
    ax.set_ylabel(f"hypervolume ({units})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    if stop:
        fig.text(0.01, -0.02, textwrap.fill(f"stopped: {stop}", 120), fontsize=7, color="tab:red", va="top")
    return _png(fig)


def bill_png(bill: SearchBill, title: str) -> bytes:
    """Slot-seconds by part: trial compute, each machinery part, and the concurrent parts (hatched, not added)."""
    names = ["trial compute", *bill.machinery_by_part_s, *(f"{k} (concurrent)" for k in bill.concurrent_by_part_s)]
    values = [bill.trial_s, *bill.machinery_by_part_s.values(), *bill.concurrent_by_part_s.values()]
    kinds = ["trial", *(PARTS[k].kind if k in PARTS else "serial" for k in bill.machinery_by_part_s),
             *(["concurrent"] * len(bill.concurrent_by_part_s))]
    colors = {"trial": "tab:green", "serial": "tab:orange", "worker": "tab:purple", "remainder": "0.55",
              "concurrent": "white"}
    hours = bill.capacity_s > 7200
    unit, div = ("slot-hours", 3600.0) if hours else ("slot-seconds", 1.0)
    shown = [v / div for v in values]
    fig = Figure(figsize=(8.0, 0.45 * len(names) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(names))[::-1]
    bars = ax.barh(y, shown, color=[colors[k] for k in kinds], edgecolor="k", lw=0.6,
                   hatch=[("//" if k == "concurrent" else "") for k in kinds])
    top = max(shown) if shown else 1.0
    for bar, v in zip(bars, values, strict=True):
        ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2,
                f"{v / div:.3g} {'h' if hours else 's'} ({_pct(v / bill.capacity_s)})", va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=9)
    ax.set_ylabel("part of the search")
    ax.set_xlim(0, top * 1.3)
    ax.set_xlabel(f"{unit} (capacity {bill.capacity_s / div:.4g} = {bill.wall_s / div:.4g} {'h' if hours else 's'} "
                  f"wall × {bill.workers} slot(s))")
    handles = [Rectangle((0, 0), 1, 1, fc=colors[k], ec="k", hatch="//" if k == "concurrent" else "")
               for k in ("trial", "serial", "worker", "remainder", "concurrent")]
    ax.legend(handles, ["trial compute", "driver part (measured)", "in-worker, outside compute (measured)",
                        "unattributed remainder", "concurrent (overlaps trials, not added)"],
              loc="lower right", fontsize=8)
    ax.set_title(f"{title}\noverhead ratio {bill.overhead_ratio:.3g} (machinery / trial compute), "
                 f"{bill.attributed_fraction:.0%} of machinery attributed")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def _pct(x: float) -> str:
    """A share as a percentage with 3 significant figures (0.0123% rather than 0.0%)."""
    return f"{100 * x:.3g}%"


def _fit_line(entry: Mapping[str, Any], form: str, c: np.ndarray) -> np.ndarray | None:
    slope, intercept = entry.get(f"{form}_slope"), entry.get(f"{form}_intercept")
    if slope is None or intercept is None:
        return None
    y = intercept + slope * np.log10(c)
    return np.power(10.0, y) if form == "polynomial" else np.where(y > 0, y, np.nan)


def scaling_png(name: str, entry: Mapping[str, Any], points: tuple[np.ndarray, np.ndarray], title: str,
                extrapolate: float = 100.0) -> bytes:
    """Error against compute, log-log: observed points, both fitted forms, extrapolated ``extrapolate``× beyond."""
    c_obs, e_obs = points
    lo = float(entry.get("compute_min") or (c_obs.min() if len(c_obs) else 1.0))
    hi = float(entry.get("compute_max") or (c_obs.max() if len(c_obs) else 10.0))
    grid = np.logspace(math.log10(lo), math.log10(hi * extrapolate), 200)
    fig = Figure(figsize=(7.5, 5.0))
    ax = fig.subplots()
    observed = "best error so far" if name == "search" else "trials"
    if name == "search":
        ax.step(c_obs, e_obs, where="post", c="0.35", lw=1.2)
    ax.scatter(c_obs, e_obs, s=14, c="0.35", alpha=0.7, lw=0, label=f"observed: {observed} ({len(c_obs)})", zorder=3)
    best = entry.get("best_form")
    for form, color in (("polynomial", "tab:blue"), ("exponential", "tab:orange")):
        y = _fit_line(entry, form, grid)
        if y is None:
            continue
        r2 = entry.get(f"{form}_r2")
        inside = grid <= hi
        label = f"{form} fit (R² {r2:.2f})" + (", best" if form == best else "")
        ax.plot(grid[inside], y[inside], c=color, lw=2, label=label)
        ax.plot(grid[~inside], y[~inside], c=color, lw=2, ls="--")
    ax.axvspan(hi, grid[-1], color="0.9", zorder=0, label=f"extrapolation (to {extrapolate:g}× the largest)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    unit = entry.get("compute_unit", "")
    ax.set_xlabel(f"{CURVES.get(name, (None, name))[1]} ({unit}, log scale)")
    ax.set_ylabel("validation error (fraction, log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=9)  # below: never over the data
    return _png(fig)
