"""``search:``: which sampler proposes, how many trials, how many at once, and where the study is stored."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from nas.config._schema import Float, Int, Str, one_of, section
from nas.config.names import registered


@section
class SearchConfig:
    """``sampler``: a registered Optuna sampler (``nsga2``, ``tpe``, ``gp``, ``random``). ``storage`` is the
    Optuna study storage: any RDB URL (``sqlite:///...``, ``postgresql://...``) or the path of a journal file.
    Unset, it is the journal file ``optuna.journal`` beside a sqlite tracking store (durable, so ``--resume``
    works; about 9x faster per trial than sqlite here: see docs/DESIGN.md), and in memory for other tracking
    stores (no resume). ``early_stopping`` is a shorthand for ``early_stopping: {method: ...}``."""

    sampler: Annotated[Str, one_of(lambda: registered("sampler"), "sampler")] = "nsga2"
    trials: Int = Field(20, ge=1)
    concurrency: Int = Field(2, ge=1)
    seed: Int = Field(0, ge=0)
    time_budget_s: Float | None = Field(None, gt=0)
    max_failures: Int | None = Field(None, ge=0)
    population_size: Int | None = Field(None, ge=2)
    max_rejections: Int = Field(1000, ge=1)
    storage: Str | None = Field(None, min_length=1)
    early_stopping: Str | None = None
    strategy: Literal["full", "one-shot"] = "full"  # one-shot: weight-sharing search (nas/config/one_shot.py)
