"""``Dimension``: one named Optuna distribution of the space, and how to check a value against it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import BaseTrial

KINDS = ("int", "float", "categorical")
SCALAR_TYPES = (str, int, float, bool, type(None))
STEP_TOLERANCE = 1e-8  # the tolerance Optuna's FloatDistribution uses for "on the step grid"


def is_number(value: object) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def same_choice(value: object, choice: object) -> bool:
    """Whether ``value`` is ``choice``: bools match only bools, numbers match numerically, others by type and ``==``."""
    if isinstance(value, bool) or isinstance(choice, bool):
        return type(value) is type(choice) and value == choice
    if is_number(value) and is_number(choice):
        return value == choice
    return type(value) is type(choice) and value == choice


@dataclass(frozen=True)
class Dimension:
    """One parameter the space samples.

    ``name`` is the '/'-joined param name; ``kind`` is ``'int'``, ``'float'`` or ``'categorical'``. Numeric
    dimensions use ``low``/``high`` (inclusive), ``step`` (``None`` for a continuous float; 1 by default for an
    int) and ``log``; a categorical one uses ``choices``. Instances are valid by construction (the parser checks).
    """

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple | None = None

    @property
    def distribution(self) -> BaseDistribution:
        """The Optuna distribution ``sample`` suggests this dimension from."""
        return _DISTRIBUTIONS[self.kind](self)

    def size(self) -> int | None:
        """Number of distinct values; ``None`` for a continuous float with ``low < high``."""
        return _SIZES[self.kind](self)

    def suggest(self, trial: BaseTrial) -> Any:
        """Suggest this dimension on ``trial`` under ``self.name``."""
        return _SUGGESTERS[self.kind](self, trial)

    def check(self, value: Any) -> Any:
        """``value`` normalized to this dimension (int/float/the stored choice); ``ValueError`` if outside it."""
        return _CHECKERS[self.kind](self, value)

    def describe(self) -> str:
        """A short human description, e.g. ``int in [8, 64] step 8``."""
        if self.kind == "categorical":
            return f"one of {list(self.choices or ())!r}"
        shows_step = self.step is not None and not (self.kind == "int" and self.step == 1)
        extra = " (log)" if self.log else (f" step {self.step}" if shows_step else "")
        return f"{self.kind} in [{self.low}, {self.high}]{extra}"


def _int_size(d: Dimension) -> int:
    return (int(d.high) - int(d.low)) // int(d.step or 1) + 1


def _float_size(d: Dimension) -> int | None:
    if d.low == d.high:
        return 1
    if d.step is None:
        return None
    return round((d.high - d.low) / d.step) + 1


def _check_range(d: Dimension, value: float | int) -> None:
    if not d.low <= value <= d.high:
        raise ValueError(f"{value!r} is outside [{d.low}, {d.high}]")
    if d.step is not None:
        k = (value - d.low) / d.step
        if abs(k - round(k)) > STEP_TOLERANCE:
            raise ValueError(f"{value!r} is not on the grid {d.low} + k * {d.step}")


def _check_int(d: Dimension, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not is_int(value):
        raise ValueError(f"{value!r} is not an integer")
    _check_range(d, value)
    return value


def _check_float(d: Dimension, value: Any) -> float:
    if not is_number(value) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    _check_range(d, value)
    return float(value)


def _check_categorical(d: Dimension, value: Any) -> Any:
    for choice in d.choices or ():
        if same_choice(value, choice):
            return choice
    raise ValueError(f"{value!r} is not one of {list(d.choices or ())!r}")


_DISTRIBUTIONS: dict[str, Callable[[Dimension], BaseDistribution]] = {
    "int": lambda d: IntDistribution(int(d.low), int(d.high), log=d.log, step=int(d.step or 1)),
    "float": lambda d: FloatDistribution(float(d.low), float(d.high), log=d.log, step=d.step),
    "categorical": lambda d: CategoricalDistribution(d.choices or ()),
}
_SIZES: dict[str, Callable[[Dimension], int | None]] = {
    "int": _int_size,
    "float": _float_size,
    "categorical": lambda d: len(d.choices or ()),
}
_SUGGESTERS: dict[str, Callable[[Dimension, BaseTrial], Any]] = {
    "int": lambda d, t: t.suggest_int(d.name, int(d.low), int(d.high), step=int(d.step or 1), log=d.log),
    "float": lambda d, t: t.suggest_float(d.name, float(d.low), float(d.high), step=d.step, log=d.log),
    "categorical": lambda d, t: t.suggest_categorical(d.name, d.choices or ()),
}
_CHECKERS: dict[str, Callable[[Dimension, Any], Any]] = {
    "int": _check_int,
    "float": _check_float,
    "categorical": _check_categorical,
}
