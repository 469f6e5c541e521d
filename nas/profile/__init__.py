"""Profiling: FLOPs (fvcore), parameters, measured latency and peak memory, and a training-cost estimate.

``profile_model(model, input_shape)`` gives a :class:`Profile`. The FLOP convention (1 multiply-add = 1 FLOP,
bias adds counted, the total over conv/linear/matmul ops, everything else itemized) is documented in
:mod:`nas.profile.flops`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas.profile.flops import FLOP_HANDLES, MAC_OPS, count_flops, training_flops
from nas.profile.measure import Latency, forward_peak_mem_mb, measure_latency, train_step_peak_mem_mb
from nas.profile.measure import measure_latency as _measure_latency

__all__ = ["FLOP_HANDLES", "MAC_OPS", "Latency", "Profile", "count_flops", "measure_latency", "profile_model",
           "training_flops"]


@dataclass(frozen=True)
class Profile:
    """What a model costs. Plain values: ``as_dict()`` is JSON-ready.

    mflops: forward MFLOPs per sample (10^6 FLOPs; 1 multiply-add = 1 FLOP, plus bias adds; conv, linear and
        matmul ops only, see :mod:`nas.profile.flops`).
    params: number of parameters (buffers such as BatchNorm running statistics excluded).
    latency_ms: median wall-clock milliseconds of one forward pass of a batch of ``batch_size``
        (eval mode, inference mode) over ``latency_repeats`` timed passes after ``latency_warmup`` untimed ones;
        ``None`` when not measured.
    peak_mem_mb: peak MiB allocated by that forward pass beyond weights and input; ``None`` when not
        measured or not measurable on ``device``.
    train_peak_mem_mb: peak MiB of one training step (forward, cross-entropy, backward, SGD step) at batch
        size ``max(batch_size, 2)`` (BatchNorm cannot train on one sample); ``None`` likewise.
    batch_size: the batch size of the latency and memory measurements.
    device: where they were measured, e.g. ``"cpu"`` or ``"cuda:0"``.
    flops_by_op: MFLOPs per sample per op type, the total's ops and the auxiliary ones (normalization,
        elementwise, activations, pooling) that the total leaves out.
    unsupported_ops: ops that nobody counted, with their number of occurrences (empty when all counted).
    latency_iqr_ms: interquartile range (ms) of those timed passes: how much to trust ``latency_ms``.
    latency_threads: torch CPU threads the latency was measured with.
    latency_warmup, latency_repeats: untimed and timed passes of the measurement.
    """

    mflops: float
    params: int
    latency_ms: float | None
    peak_mem_mb: float | None
    train_peak_mem_mb: float | None
    batch_size: int
    device: str
    flops_by_op: dict[str, float]
    unsupported_ops: dict[str, int]
    latency_iqr_ms: float | None = None
    latency_threads: int | None = None
    latency_warmup: int | None = None
    latency_repeats: int | None = None

    @property
    def aux_mflops(self) -> float:
        """MFLOPs per sample of the auxiliary ops (in ``flops_by_op`` but not in ``mflops``)."""
        return sum(v for k, v in self.flops_by_op.items() if k not in MAC_OPS)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict of plain values (``Profile(**p.as_dict()) == p``)."""
        return dataclasses.asdict(self)


def profile_model(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 10,
    threads: int | None = None,
    measure_latency: bool = True,
    measure_memory: bool = True,
) -> Profile:
    """Profile ``model`` (already on ``device``) for inputs of ``input_shape`` (per sample, no batch dim).

    FLOPs are per sample; latency and memory are measured on random batches of ``batch_size``, the latency with
    ``warmup`` untimed and ``repeats`` timed passes on ``threads`` torch CPU threads (None: the caller's). The
    model's weights and train/eval modes are unchanged afterwards (the training step runs on a deep copy).
    """
    if batch_size < 1:
        raise ValueError(f"profile_model: batch_size must be >= 1, got {batch_size}")
    dev = torch.device(device)
    shape = tuple(int(s) for s in input_shape)
    total, by_op, unsupported = count_flops(model, shape, device=dev)
    lat = peak = train_peak = None
    if measure_latency:
        lat = _measure_latency(model, torch.randn(batch_size, *shape, device=dev), warmup=warmup, repeats=repeats,
                               threads=threads)
    if measure_memory:
        peak = forward_peak_mem_mb(model, torch.randn(batch_size, *shape, device=dev))
        train_peak = train_step_peak_mem_mb(model, torch.randn(max(batch_size, 2), *shape, device=dev))
    return Profile(
        mflops=total / 1e6,
        params=sum(p.numel() for p in model.parameters()),
        latency_ms=None if lat is None else lat.median_ms,
        peak_mem_mb=peak,
        train_peak_mem_mb=train_peak,
        batch_size=batch_size,
        device=str(dev),
        flops_by_op={k: v / 1e6 for k, v in sorted(by_op.items())},
        unsupported_ops=dict(sorted(unsupported.items())),
        latency_iqr_ms=None if lat is None else lat.iqr_ms,
        latency_threads=None if lat is None else lat.threads,
        latency_warmup=None if lat is None else lat.warmup,
        latency_repeats=None if lat is None else lat.repeats,
    )
