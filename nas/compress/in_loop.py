"""Compression in the search loop: a trial whose architecture carries a ``compression:`` plan is compressed right
after training, and its objectives become the compressed model's (:data:`nas.training.trial.PostTrain`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from nas.compress.plan import apply_plan, is_noop
from nas.data import Splits
from nas.training.trial import TrialSpec


def compress_trained(model: nn.Module, arch: Mapping[str, Any], splits: Splits, spec: TrialSpec,
                     final: dict[str, float]) -> tuple[nn.Module, dict[str, float]] | None:
    """Apply ``arch["compression"]`` to the trained ``model``; None when there is no plan or it does nothing.

    The returned metrics are ``final`` with the objectives (``val_accuracy``, ``mflops``, ``params``,
    ``size_mb``, ``latency_ms``) re-measured on the compressed model; ``uncompressed_val_accuracy`` and
    ``uncompressed_mflops`` keep the trained model's, and ``compress_flops`` (FLOPs) bills fine-tuning and
    calibration."""
    plan = arch.get("compression")
    if not plan or is_noop(plan):
        return None
    done = apply_plan(model, plan, splits, seed=spec.seed, lr=float(spec.training["lr"]),
                      batch_size=int(spec.data.get("batch_size", 64)))
    out = {**final, "uncompressed_val_accuracy": final["val_accuracy"], "uncompressed_mflops": spec.mflops,
           **done.metrics()}
    out["compress_flops"] = out.pop("compress_mflops") * 1e6
    return done.model, out
