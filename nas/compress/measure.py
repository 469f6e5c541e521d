"""Measure a compressed model: FLOPs, effective FLOPs, parameters, file size, latency and accuracy.

Every figure is measured on the compressed model itself, never copied from the model it came from, with one
labelled exception: fvcore cannot trace torch's quantized modules, so the FLOPs of an int8 model are counted on
the float model it was quantized from (the same multiply-adds, done in int8), and the report's notes say so.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.compress._util import dense_macs_zeroed, is_quantized, weight_tensors
from nas.compress.quantize import quiet_quantization
from nas.compress.registry import CompressedModel
from nas.profile import count_flops
from nas.profile.measure import latency_ms, model_size_mb, torch_threads
from nas.training.train import evaluate

log = logging.getLogger(__name__)


INT8_FLOPS_NOTE = (
    "mflops: same MACs, int8 - counted by fvcore on the float model this one was quantized from (fvcore cannot "
    "trace quantized kernels); an int8 MAC is cheaper than a float one"
)


@dataclass(frozen=True)
class CompressionReport:
    """Measured costs and accuracy of a compressed model. Plain values: ``as_dict()`` is JSON-ready.

    method: the compression method (``"none"`` for an uncompressed baseline).
    mflops: forward MFLOPs per sample (10^6 FLOPs, 1 multiply-add = 1 FLOP plus bias adds, the convention of
        :mod:`nas.profile.flops`), counted by fvcore on the compressed model (int8: see ``flops_counted_on``).
    effective_mflops: ``mflops`` minus the multiply-adds that meet a zero weight (what a sparse kernel would
        do); equal to ``mflops`` for dense and for quantized models.
    params: number of weights and biases (quantized ones included; BatchNorm running statistics excluded).
    nonzero_params: how many of them are not zero.
    size_mb: MiB of ``torch.save(model.state_dict())`` (2^20 bytes).
    latency_ms: median milliseconds of one forward pass of a batch of 1 on the CPU (eval, inference mode).
    threads: CPU threads torch used for the latency measurement.
    val_accuracy, val_loss: accuracy (fraction) and mean cross-entropy (nats) evaluated on ``eval_data``;
        ``None`` when no data was given.
    compute_mflops: MFLOPs spent producing the compressed model (calibration, fine-tuning), for the ledger.
    flops_counted_on: ``"compressed model"`` or ``"float reference (same MACs, int8)"``.
    unsupported_ops: ops fvcore could not count (op name -> occurrences), left out of ``mflops``; e.g.
        ``aten::lstm``. Empty when everything was counted.
    settings, notes: the method's settings and caveats (plus any added while measuring).
    """

    method: str
    mflops: float
    effective_mflops: float
    params: int
    nonzero_params: int
    size_mb: float
    latency_ms: float
    threads: int
    val_accuracy: float | None
    val_loss: float | None
    compute_mflops: float
    flops_counted_on: str
    unsupported_ops: dict[str, int]
    settings: dict[str, Any]
    notes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict of plain values."""
        out = dataclasses.asdict(self)
        out["notes"] = list(self.notes)
        return out


def count_params(model: nn.Module) -> tuple[int, int]:
    """``(params, nonzero_params)`` over all weights and biases, quantized modules included."""
    total = nonzero = 0
    for _, tensor in weight_tensors(model):
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor))
    return total, nonzero


def measure(
    cm: CompressedModel | nn.Module,
    input_shape: Sequence[int],
    *,
    eval_data: TensorDataset | None = None,
    warmup: int = 10,
    repeats: int = 50,
    threads: int | None = 1,
) -> CompressionReport:
    """Measure ``cm`` (a :class:`CompressedModel`, or a plain module measured as the ``"none"`` baseline) for
    inputs of ``input_shape`` (per sample). Latency: median of ``repeats`` timed batch-1 passes after ``warmup``
    on the CPU with ``threads`` torch threads (default 1: batch-1 passes of small models are fastest and most
    stable on one thread, and the figures of different methods stay comparable; ``None`` keeps the caller's
    setting; the caller's thread count is restored afterwards). Accuracy is evaluated on
    ``eval_data`` when given. The model's weights are not changed; a model off the CPU is measured as a copy.
    """
    if isinstance(cm, nn.Module):
        cm = CompressedModel(model=cm, method="none")
    shape = tuple(int(s) for s in input_shape)
    model = cm.model
    if any(t.device.type != "cpu" for t in model.state_dict().values() if isinstance(t, torch.Tensor)):
        model = copy.deepcopy(model).cpu()
    notes = list(cm.notes)
    quantized = is_quantized(model)
    x = torch.randn(1, *shape)
    if quantized:
        if cm.flops_reference is None:
            raise ValueError(f"measure: {cm.method} gave a quantized model without a float flops_reference")
        total, _, unsupported = count_flops(cm.flops_reference, shape)
        mflops = effective = total / 1e6
        counted_on = "float reference (same MACs, int8)"
        notes.append(INT8_FLOPS_NOTE)
    else:
        total, _, unsupported = count_flops(model, shape)
        mflops = total / 1e6
        was_training = model.training
        model.eval()
        try:
            effective = mflops - dense_macs_zeroed(model, x) / 1e6
        finally:
            model.train(was_training)
        counted_on = "compressed model"
    if unsupported:
        notes.append(f"mflops leaves out ops fvcore could not count: {dict(sorted(unsupported.items()))}")
    params, nonzero = count_params(model)
    accuracy = loss = None
    with quiet_quantization(), torch_threads(threads) as used:
        latency = latency_ms(model, x, warmup=warmup, repeats=repeats)
        if eval_data is not None:
            accuracy, loss = evaluate(model, eval_data)
        size_mb = model_size_mb(model)
    report = CompressionReport(
        method=cm.method, mflops=mflops, effective_mflops=effective, params=params, nonzero_params=nonzero,
        size_mb=size_mb, latency_ms=latency, threads=used, val_accuracy=accuracy, val_loss=loss,
        compute_mflops=cm.compute_mflops, flops_counted_on=counted_on,
        unsupported_ops=dict(sorted(unsupported.items())), settings=dict(cm.settings),
        notes=tuple(notes),
    )
    log.info("measure: %s mflops=%.4f effective=%.4f params=%d size_mb=%.4f latency_ms=%.3f acc=%s",
             cm.method, mflops, effective, params, report.size_mb, latency, accuracy)
    return report
