"""The one-shot section of the search report: supernet accuracy against stand-alone accuracy.

:func:`finalists_from_csv` reads the parent run's ``one_shot_subnets.csv`` (written by :mod:`nas.search.oneshot.run`)
into plain rows; the report (:mod:`nas.report`) renders them with :func:`ranking_png` and a table. Nothing here
imports MLflow.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from nas.oneshot.ranking import kendall_tau, ranking_png

__all__ = ["finalists_from_csv", "ranking_png", "summary"]


def finalists_from_csv(text: str, accuracy: str = "val_accuracy") -> list[dict[str, Any]]:
    """The trained finalists of a scored-subnet table: ``role`` (top/control), ``supernet_accuracy``,
    ``standalone_accuracy`` (fractions), ``mflops``."""
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("role") and row.get("standalone_val_accuracy"):
            out.append({"role": row["role"], "supernet_accuracy": float(row[accuracy]),
                        "standalone_accuracy": float(row["standalone_val_accuracy"]), "mflops": float(row["mflops"])})
    return out


def summary(finalists: list[dict[str, Any]]) -> tuple[list[tuple[float, float]], float]:
    """(supernet, stand-alone) accuracy pairs and their Kendall tau (NaN when undefined)."""
    pairs = [(f["supernet_accuracy"], f["standalone_accuracy"]) for f in finalists]
    tau = kendall_tau([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else math.nan
    return pairs, tau
