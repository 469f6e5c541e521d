"""A compression plan: the ``compression:`` values of one architecture, applied in a fixed order and measured.

Order: structured pruning (``prune``), unstructured pruning (``sparsity``), low rank (``rank_energy``), optional
fine-tuning (``finetune_epochs``), then int8 (``quantize``) last, since quantized models are not trained. Every
objective is re-measured on the result (accuracy evaluated, FLOPs counted, size and latency measured); the compute
spent compressing (fine-tuning, calibration) is billed in ``compute_mflops``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from nas.compress.finetune import finetune
from nas.compress.measure import CompressionReport, measure
from nas.compress.registry import CompressedModel, compress
from nas.data import Splits
from nas.space.toplevel import COMPRESSION_KEYS

#: plan key -> (method, option name, value meaning "do nothing")
STEPS: dict[str, tuple[str, str, Any]] = {
    "prune": ("prune_structured", "amount", 0.0),
    "sparsity": ("prune_unstructured", "amount", 0.0),
    "rank_energy": ("lowrank", "energy", 1.0),
}
PLAN_KEYS = COMPRESSION_KEYS  # one definition: the space format's
CALIBRATION_SAMPLES = 128


@dataclass
class PlanResult:
    model: nn.Module
    report: CompressionReport
    methods: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compute_mflops: float = 0.0

    def metrics(self) -> dict[str, float]:
        """Objective values after compression, plus what compressing cost (``compress_mflops``, total)."""
        r = self.report
        out = {"mflops": r.mflops, "effective_mflops": r.effective_mflops, "params": float(r.params),
               "nonzero_params": float(r.nonzero_params), "size_mb": r.size_mb, "latency_ms": r.latency_ms,
               "compress_mflops": self.compute_mflops}
        if r.val_accuracy is not None:
            out["val_accuracy"] = r.val_accuracy
        return out


def is_noop(plan: Mapping[str, Any]) -> bool:
    return all(plan.get(k, noop) in (noop, None) for k, (_, _, noop) in STEPS.items()) and not plan.get("quantize")


def apply_plan(model: nn.Module, plan: Mapping[str, Any], splits: Splits, *, seed: int = 0, lr: float = 1e-3,
               batch_size: int = 64) -> PlanResult:
    """Compress a copy of trained ``model`` as ``plan`` says and measure it on ``splits.val``."""
    unknown = sorted(set(plan) - set(PLAN_KEYS) - {"type"})
    if unknown:
        raise ValueError(f"unknown compression key(s) {unknown}; known: {', '.join(PLAN_KEYS)}")
    cm = CompressedModel(model=copy.deepcopy(model), method="none")
    methods, notes, compute = [], [], 0.0
    for key, (method, option, noop) in STEPS.items():
        value = plan.get(key, noop)
        if value is None or value == noop:
            continue
        step = compress(cm.model, method, **{option: value})
        cm, compute = step, compute + step.compute_mflops
        methods.append(f"{method}({option}={value:g})")
        notes += step.notes
    epochs = int(plan.get("finetune_epochs") or 0)
    if epochs and methods:
        tuned = finetune(cm, splits, epochs=epochs, lr=lr, seed=seed, batch_size=batch_size)
        compute += tuned.compute_mflops - cm.compute_mflops
        cm = tuned
        methods.append(f"finetune(epochs={epochs})")
    if plan.get("quantize"):
        step = compress(cm.model, "int8", calibration=splits.train.tensors[0][:CALIBRATION_SAMPLES])
        cm, compute = step, compute + step.compute_mflops
        methods.append("int8")
        notes += step.notes
    report = measure(cm, splits.input_shape, eval_data=splits.val, repeats=20)
    return PlanResult(cm.model, report, methods or ["none"], notes, compute)
