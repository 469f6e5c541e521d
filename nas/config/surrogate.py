"""``surrogate:``: model-based proposals (:mod:`nas.surrogate`)."""

from __future__ import annotations

from pydantic import Field

from nas.config._schema import Bool, Float, Int, section


@section
class SurrogateConfig:
    """``enabled``: after ``warmup`` trials from the sampler, each trial slot scores ``candidates`` random
    architectures (costs profiled, never trained) with a tree-ensemble surrogate of the lowest-fidelity accuracy
    (the first rung's, else the full one), refitted every ``refit_every`` trials, and trains the one whose
    optimistic point (mean + ``kappa`` × spread, its known costs) adds most hypervolume to the ``layers``-th
    non-dominated layer of the trials seen so far."""

    enabled: Bool = False
    candidates: Int = Field(512, ge=1)
    layers: Int = Field(3, ge=1)
    warmup: Int = Field(40, ge=2)
    refit_every: Int = Field(8, ge=1)
    kappa: Float = Field(1.0, ge=0)
