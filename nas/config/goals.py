"""What a search optimizes (``objectives:``) and what it must respect (``constraints:``), over :data:`METRICS`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import ValidationError, field_validator, model_validator

from nas.config._schema import Float, Str, check, one_of, refuse, section
from nas.config.objectives import METRICS, Direction
from nas.config.translate import first_problem
from nas.errors import did_you_mean

DIRECTIONS = ("maximize", "minimize")


@section
class Objective:
    """One objective: a metric of :data:`METRICS` and whether to maximize or minimize it."""

    name: Str
    direction: Direction

    @field_validator("name", mode="after")
    @classmethod
    def _metric(cls, name: str) -> str:
        check(name in METRICS, f"no part of nas produces the metric {name!r}{did_you_mean(name, METRICS)}",
              f"use one of: {', '.join(METRICS)}")
        return name

    @field_validator("direction", mode="plain")
    @classmethod
    def _direction(cls, direction: Any) -> Direction:
        check(direction in DIRECTIONS, f"unknown direction {direction!r}", "use `maximize` or `minimize`")
        return direction


@section
class Constraint:
    """A hard limit on a metric: ``min <= value <= max`` (either bound may be absent), in the metric's unit."""

    metric: Annotated[Str, one_of(METRICS, "metric")]
    min: Float | None = None
    max: Float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Constraint:
        lo, hi = self.min, self.max
        check(lo is None or hi is None or lo <= hi, f"min ({lo}) is greater than max ({hi})",
              "swap them or widen the range")
        return self

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the bounds (0 when inside), in the metric's unit."""
        over = value - self.max if self.max is not None else 0.0
        under = self.min - value if self.min is not None else 0.0
        return max(0.0, over, under)


DEFAULT_OBJECTIVES = (Objective("val_accuracy", "maximize"), Objective("mflops", "minimize"))


def objectives_input(value: Any) -> Any:
    """``objectives:`` as written (a list of names or ``{name, direction}`` mappings) -> Objective inputs; an
    omitted direction is the metric's natural one."""
    if value is None:
        return DEFAULT_OBJECTIVES
    if not isinstance(value, list) or not value:
        refuse("must be a non-empty list",
               "e.g. `objectives: [{name: val_accuracy, direction: maximize}, {name: mflops, direction: minimize}]`")
    out: list[Any] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping):
            refuse("each objective must be a mapping with `name` and `direction`",
                   "e.g. `{name: mflops, direction: minimize}`", str(i))
        item = dict(item)
        if "direction" not in item and isinstance(item.get("name"), str) and item["name"] in METRICS:
            item["direction"] = METRICS[item["name"]].natural_direction
        out.append(item)
    return tuple(out)


def check_objectives(objectives: tuple[Objective, ...]) -> tuple[Objective, ...]:
    """Each metric once, and at least two of them."""
    for i, o in enumerate(objectives):
        check(all(p.name != o.name for p in objectives[:i]), f"objective {o.name!r} is listed twice",
              "list each objective once", f"{i}/name")
    check(len(objectives) >= 2, "a multi-objective search needs at least two objectives",
          "add a cost objective, e.g. `{name: mflops, direction: minimize}`")
    return objectives


def constraints_input(value: Any) -> Any:
    """``constraints:`` as written (metric -> ``{max: .., min: ..}``) -> a tuple of :class:`Constraint`."""
    if value is None:
        return ()
    if isinstance(value, (tuple, list)) and all(isinstance(c, Constraint) for c in value):
        return tuple(value)  # already built (dataclasses.replace)
    if not isinstance(value, Mapping):
        refuse("must be a mapping metric -> {max: ..., min: ...}", "e.g. `constraints: {mflops: {max: 5}}`")
    out = []
    for metric, bounds in value.items():
        if metric not in METRICS:
            refuse(f"unknown metric {metric!r}{did_you_mean(str(metric), METRICS)}",
                   f"constrain one of: {', '.join(METRICS)}", str(metric))
        if not isinstance(bounds, Mapping) or not bounds:
            refuse("must be a mapping with `max` and/or `min`", f"e.g. `{metric}: {{max: 5}}`", str(metric))
        for key in bounds:
            if key not in ("min", "max"):
                refuse(f"unknown key {key!r}{did_you_mean(str(key), ('min', 'max'))}", "use one of: min, max",
                       f"{metric}/{key}")
        try:
            out.append(Constraint(metric, **bounds))
        except ValidationError as err:
            path, problem, fix = first_problem(err, Constraint)
            refuse(problem, fix, f"{metric}/{path}" if path else str(metric))
    return tuple(out)
