"""The ``one_shot:`` section of an experiment (weight-sharing search, :mod:`nas.oneshot`).

Enabled by ``search: {strategy: one-shot}`` or by writing a ``one_shot:`` section. Units: ``epochs`` and
``batch_size`` of the supernet's own training (``epochs: 0`` leaves it untrained, to see the self-check refuse it);
``subnets`` architectures scored with inherited weights (no training), ``batch`` of them proposed and scored at a
time; ``top_k`` of the supernet's ranking and ``controls`` random scored architectures trained stand-alone;
``tau_threshold``: below this Kendall's tau between supernet and stand-alone accuracy the supernet's ranking is not
trusted and ``fallback_trials`` trials of the multi-fidelity search (Pareto-ASHA) run instead (default:
``search.trials`` minus those already trained).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nas.config._schema import Bool, Float, Int, section

STRATEGIES = ("full", "one-shot")


@section
class OneShotConfig:
    """Settings of a one-shot search (module docstring)."""

    epochs: Int = Field(30, ge=0)
    batch_size: Int = Field(32, ge=2)
    lr: Float = Field(0.01, gt=0)  # Adam: 0.01 lowered the digits cnn supernet loss faster than 0.003
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    sandwich: Bool = False
    checkpoint_every: Int = Field(5, ge=1)
    subnets: Int = Field(1000, ge=1)
    batch: Int = Field(64, ge=1)
    calibration_batches: Int = Field(4, ge=1)
    calibration_batch_size: Int = Field(64, ge=2)
    top_k: Int = Field(5, ge=1)
    controls: Int = Field(2, ge=0)
    tau_threshold: Float = Field(0.5, ge=-1.0, le=1.0)
    fallback_trials: Int | None = Field(None, ge=0)
