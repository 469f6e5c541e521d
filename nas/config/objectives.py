"""The metrics a search can optimize or constrain: one table, one definition of each name, unit and source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class MetricInfo:
    """A metric known to the engine.

    ``source`` says who produces it: ``profile`` (known before training, so constraints on it are checked
    before any compute is spent) or ``train`` (known only after training).
    """

    name: str
    unit: str
    source: Literal["profile", "train"]
    natural_direction: Direction
    description: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("val_accuracy", "fraction", "train", "maximize", "validation accuracy of the final weights, in [0, 1]"),
        MetricInfo("mflops", "MFLOPs", "profile", "minimize", "forward MFLOPs per sample (1 multiply-add = 1 FLOP)"),
        MetricInfo("params", "count", "profile", "minimize", "number of parameters"),
        MetricInfo("latency_ms", "ms", "profile", "minimize", "median forward latency of one profiling batch"),
        MetricInfo("peak_mem_mb", "MiB", "profile", "minimize", "peak memory of a forward pass"),
        MetricInfo("size_mb", "MiB", "profile", "minimize",
                   "size of the saved weights; before training estimated as 4 bytes per parameter, measured after"),
    )
}


def sign(direction: Direction) -> float:
    """+1 for minimize, -1 for maximize: multiply a value by it to get a loss to minimize."""
    return 1.0 if direction == "minimize" else -1.0


def float32_size_mb(params: int) -> float:
    """Size of ``params`` float32 weights in MiB: ``size_mb`` of an architecture before it is trained."""
    return params * 4 / 2**20
