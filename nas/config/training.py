"""``training:``: how each architecture is trained. ``lr`` and ``weight_decay`` may be dimensions, sampled with
the architecture under the names ``train/lr`` and ``train/weight_decay``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from nas.config._schema import Bool, Float, Int, Str, check, in_unit, one_of, refuse, section
from nas.config.names import registered

#: setting -> (smallest allowed value, whether it is allowed itself)
_LOWER: dict[str, tuple[float, bool]] = {"lr": (0.0, False), "weight_decay": (0.0, True)}


@section
class TrainingConfig:
    """``optimizer``: a registered optimizer (``adam``, ``adamw``, ``sgd``, ``nesterov``...); ``momentum``: the
    SGD/Nesterov momentum in [0, 1) (Adam ignores it); ``lr_schedule``: a registered schedule (``cosine``,
    ``constant``); ``lr`` > 0 and ``weight_decay`` >= 0, finite, each a number or a dimension (``{type: ...}``);
    ``max_seconds``: wall-time cap of one trial's training."""

    epochs: Int = Field(10, ge=1)
    optimizer: Annotated[Str, one_of(lambda: registered("optimizer"), "optimizer")] = "adam"
    lr: float | dict[str, Any] = 3e-3
    weight_decay: float | dict[str, Any] = 0.0
    momentum: Annotated[Float, in_unit("momentum", 0.9, zero=True)] = 0.9
    lr_schedule: Annotated[Str, one_of(lambda: registered("lr_schedule"), "lr_schedule")] = "cosine"
    amp: Bool = False
    max_seconds: Float | None = Field(None, gt=0)

    @field_validator("lr", "weight_decay", mode="plain")
    @classmethod
    def _number_or_dimension(cls, value: Any, info: ValidationInfo) -> float | dict[str, Any]:
        key = str(info.field_name)
        if isinstance(value, Mapping):
            check("type" in value, "a mapping here must be a dimension with `type:`",
                  f"e.g. `{key}: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}`")
            dim = training_dimension(value, key)
            values = dim.choices if dim.kind == "categorical" else (dim.low, dim.high)
            for v in values:
                _check_value(v, key)
            return dict(value)
        _check_value(value, key)
        return float(value)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> TrainingConfig:
        check(self.optimizer != "nesterov" or self.momentum > 0, "nesterov needs momentum > 0",
              "set `momentum: 0.9` or use `optimizer: sgd`", "momentum")
        return self


def _check_value(v: Any, key: str) -> None:
    low, inclusive = _LOWER[key]
    op = ">=" if inclusive else ">"
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    check(ok and (v >= low if inclusive else v > low), f"must be a finite number {op} {low:g}, got {v!r}",
          f"e.g. `{key}: {3e-3 if key == 'lr' else 0.0}` or a dimension `{{type: float, low: ..., high: ...}}`")


def training_dimension(spec: Mapping[str, Any], key: str, source: str = "<string>") -> Any:
    """A training setting given as a dimension, parsed by the search-space rules and named ``train/<key>``.
    Refused as a schema error (path relative to ``training/<key>``)."""
    from nas.space.dimparse import parse_dimension
    from nas.space.errors import SpaceError

    try:
        dim = parse_dimension(spec, "", source)
    except SpaceError as err:
        refuse(err.problem, err.fix, err.path)
    return dataclasses.replace(dim, name=f"train/{key}")
