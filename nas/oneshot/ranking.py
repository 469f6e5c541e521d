"""How well the supernet ranks architectures: Kendall's tau against stand-alone accuracy, and its plot."""

from __future__ import annotations

import io
import math

from scipy.stats import kendalltau

__all__ = ["kendall_tau", "ranking_png"]


def kendall_tau(supernet_acc: list[float], standalone_acc: list[float]) -> float:
    """Kendall's tau-b between the two accuracy lists; NaN with fewer than 3 pairs or no variation."""
    if len(supernet_acc) < 3:
        return math.nan
    tau = kendalltau(supernet_acc, standalone_acc).statistic
    return float(tau) if tau is not None and math.isfinite(tau) else math.nan


def ranking_png(pairs: list[tuple[float, float]], tau: float, threshold: float) -> bytes:
    """Scatter of supernet accuracy (x) against stand-alone accuracy (y) of the trained finalists, as PNG bytes."""
    from matplotlib.figure import Figure  # the object API: no pyplot, no global backend switch

    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    if pairs:
        ax.scatter([p[0] for p in pairs], [p[1] for p in pairs])
    ax.set_xlabel("supernet accuracy (inherited weights)")
    ax.set_ylabel("stand-alone accuracy")
    ax.set_title(f"Kendall tau {tau:.2f} (threshold {threshold:g})")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()
