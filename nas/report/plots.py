"""Plots as PNG bytes (matplotlib, Agg backend): readable labels, units and legends."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nas.config.objectives import METRICS, Direction  # noqa: E402


def _label(name: str) -> str:
    info = METRICS.get(name)
    return f"{name} ({info.unit})" if info else name


def pareto_png(rows: Sequence[Mapping[str, Any]], pareto: Sequence[bool],
               objectives: Sequence[tuple[str, Direction]], title: str) -> bytes:
    """The first objective against each other one: every trial in grey, the Pareto set highlighted."""
    y_name = objectives[0][0]
    others = list(objectives[1:])
    fig, axes = plt.subplots(1, len(others), figsize=(5.5 * len(others), 4.2), squeeze=False)
    for ax, (x_name, _) in zip(axes[0], others, strict=True):
        xs = [float(r[x_name]) for r in rows]
        ys = [float(r[y_name]) for r in rows]
        ax.scatter(xs, ys, s=18, c="0.7", label="trials")
        front = sorted((x, y) for x, y, p in zip(xs, ys, pareto, strict=True) if p)
        if front:
            ax.plot([f[0] for f in front], [f[1] for f in front], "o-", c="tab:red", ms=6, drawstyle="steps-post",
                    label="Pareto set")
        if x_name in ("mflops", "params", "latency_ms") and xs and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(_label(x_name))
        ax.set_ylabel(_label(y_name))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def hv_compute_png(points: Sequence[tuple[float, float]], title: str, stop: str | None = None) -> bytes:
    """Hypervolume against cumulative training compute (TFLOPs), one point per finished trial; ``stop`` (the
    reason the search stopped, if a rule stopped it) is written under the curve."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    ax.plot(xs, ys, "o-", ms=3, drawstyle="steps-post", c="tab:blue")
    ax.set_xlabel("training compute spent (TFLOPs)")
    ax.set_ylabel("hypervolume of the front")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    if stop:
        import textwrap

        fig.subplots_adjust(bottom=0.27)
        fig.text(0.02, 0.02, textwrap.fill(f"stopped: {stop}", 120), fontsize=7, color="tab:red")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
