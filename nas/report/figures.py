"""The report's plots as PNG bytes (matplotlib, Agg): titles, axis labels with units, legends on every one."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from nas.config.objectives import METRICS  # noqa: E402
from nas.cost.ledger import PARTS, SearchBill  # noqa: E402
from nas.report.data import ACCURACY, CURVES, pareto_flags  # noqa: E402

DPI = 120
BASELINE_MARKERS = ("*", "D", "P", "X", "s", "^")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
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


def _front_2d(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D front of (cost to minimize, accuracy to maximize), sorted by cost."""
    order = np.lexsort((-ys, xs))
    fx, fy, best = [], [], -math.inf
    for i in order:
        if ys[i] > best:
            fx.append(xs[i])
            fy.append(ys[i])
            best = ys[i]
    return np.array(fx), np.array(fy)


def pareto_png(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]], cost: str,
               baselines: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """Accuracy (%) against one cost: every trial, the search's Pareto set, the 2-D front and the baselines."""
    flags = pareto_flags(rows, objectives)
    ok = [(r, p) for r, p in zip(rows, flags, strict=True)
          if r.get("status", "complete") == "complete" and math.isfinite(_num(r, cost)) and math.isfinite(_num(r, ACCURACY))]
    xs = np.array([_num(r, cost) for r, _ in ok])
    ys = np.array([100 * _num(r, ACCURACY) for r, _ in ok])
    on = np.array([p for _, p in ok], dtype=bool)
    base = [b for b in baselines if math.isfinite(_num(b, cost)) and math.isfinite(_num(b, ACCURACY))]
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    ax.scatter(xs[~on], ys[~on], s=14, c="0.65", alpha=0.6, lw=0, label=f"trials ({len(xs)})")
    if on.any():
        ax.scatter(xs[on], ys[on], s=36, c="tab:red", zorder=3, label=f"Pareto set, all objectives ({int(on.sum())})")
    if len(xs):
        fx, fy = _front_2d(xs, ys)
        ax.step(fx, fy, where="post", c="tab:red", lw=1.2, alpha=0.8, label=f"front: accuracy vs {cost}")
    for i, b in enumerate(base):
        x, y = _num(b, cost), 100 * _num(b, ACCURACY)
        ax.scatter([x], [y], s=110, marker=BASELINE_MARKERS[i % len(BASELINE_MARKERS)], c="tab:blue",
                   edgecolors="k", zorder=4, label=f"baseline: {b.get('name', b.get('trial'))}")
        ax.annotate(str(b.get("name", "")), (x, y), textcoords="offset points", xytext=(6, -12), fontsize=9,
                    color="tab:blue")
    allx = np.concatenate([xs, [_num(b, cost) for b in base]]) if base else xs
    if len(allx) and allx.min() > 0 and allx.max() / allx.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(axis_label(cost) + (", log scale" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(axis_label(ACCURACY))
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=9)
    return _png(fig)


def hypervolume_png(history: Sequence[tuple[float, float]], objectives: Sequence[tuple[str, str]], title: str) -> bytes:
    """Hypervolume against cumulative training compute (TFLOPs)."""
    c = np.array([h[0] for h in history]) / 1e12
    hv = np.array([h[1] for h in history])
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.step(c, hv, where="post", c="tab:green", lw=1.8, label="hypervolume after each trial")
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
    fig, ax = plt.subplots(figsize=(8.0, 0.45 * len(names) + 1.6))
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
    handles = [plt.Rectangle((0, 0), 1, 1, fc=colors[k], ec="k", hatch="//" if k == "concurrent" else "")
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
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
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
