"""Parse one dimension mapping (``{type: int|float|categorical, ...}``) into a validated ``Dimension``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from nas.space.dims import KINDS, SCALAR_TYPES, Dimension, is_int, is_number
from nas.space.errors import SpaceError, join, options_hint

KEYS: dict[str, tuple[str, ...]] = {
    "int": ("type", "low", "high", "step", "log"),
    "float": ("type", "low", "high", "step", "log"),
    "categorical": ("type", "choices"),
}
_A = {"int": "an int", "float": "a float", "categorical": "a categorical"}
# YAML 1.1 reads `1e-3` (no dot) as a string; numeric fields accept such strings as numbers.
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_dimension(spec: Mapping[str, Any], path: str, src: str) -> Dimension:
    """``spec`` (a mapping with ``type``) as an anonymous ``Dimension``; ``SpaceError`` naming the bad key."""
    kind = spec["type"]
    if kind not in KINDS:
        raise SpaceError(
            src, join(path, "type"), f"unknown dimension type {kind!r}", options_hint(kind, KINDS, "types")
        )
    for key in spec:
        if key not in KEYS[kind]:
            raise SpaceError(
                src, join(path, key), f"unknown key {key!r} in {_A[kind]} dimension", _key_fix(key, kind)
            )
    return _PARSERS[kind](spec, path, src, kind)


def _key_fix(key: object, kind: str) -> str:
    owners = [k for k, keys in KEYS.items() if key in keys]
    if owners:
        return f"{key!r} belongs to {' or '.join(_A[o] for o in owners)} dimension; change `type` or remove it ({kind} takes: {', '.join(KEYS[kind])})"
    return options_hint(key, KEYS[kind], f"{_A[kind]} dimension takes")


def _fmt(x: float) -> str:
    return repr(round(x, 12)) if isinstance(x, float) else repr(x)


def _bound(spec: Mapping[str, Any], key: str, path: str, src: str, kind: str) -> int | float:
    where = join(path, key)
    if key not in spec:
        raise SpaceError(
            src, path, f"{_A[kind]} dimension needs `{key}`", f"add `{key}: <number>` (bounds are inclusive)"
        )
    value = spec[key]
    if kind == "int":
        if is_int(value):
            return value
        if is_number(value) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
            raise SpaceError(
                src,
                where,
                f"an int dimension needs integer bounds, got {value!r}",
                "use whole numbers, or `type: float` for a real-valued dimension",
            )
        raise SpaceError(
            src, where, f"`{key}` must be an integer, got {value!r}", f"write `{key}: <integer>`"
        )
    number = _as_float(value)
    if number is None:
        raise SpaceError(
            src,
            where,
            f"`{key}` must be a number, got {value!r}",
            f"write `{key}: <number>`, e.g. 0.5 or 1.0e-3",
        )
    if not math.isfinite(number):
        raise SpaceError(src, where, f"`{key}` must be finite, got {value!r}", "use finite bounds")
    return number


def _as_float(value: Any) -> float | None:
    if is_number(value):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _numeric(spec: Mapping[str, Any], path: str, src: str, kind: str) -> Dimension:
    low = _bound(spec, "low", path, src, kind)
    high = _bound(spec, "high", path, src, kind)
    if low > high:
        raise SpaceError(
            src,
            join(path, "low"),
            f"low ({low}) is greater than high ({high})",
            "swap them: bounds are inclusive, low <= high",
        )
    log = spec.get("log")
    if log is None:
        log = False
    if not isinstance(log, bool):
        raise SpaceError(
            src,
            join(path, "log"),
            f"`log` must be true or false, got {log!r}",
            "write `log: true` or remove it",
        )
    step = spec.get("step")
    if log and step is not None:
        raise SpaceError(
            src,
            join(path, "step"),
            "`log` and `step` cannot be combined (Optuna refuses it)",
            "remove `step` for a log-uniform dimension, or remove `log: true` for a stepped one",
        )
    if log and low <= 0:
        raise SpaceError(
            src,
            join(path, "low"),
            f"a log dimension needs low > 0, got low = {low}",
            "raise `low` above 0 (e.g. 1.0e-5) or remove `log: true`",
        )
    step = _step(step, low, high, path, src, kind)
    return Dimension(name="", kind=kind, low=low, high=high, step=step, log=log)


def _step(step: Any, low: float, high: float, path: str, src: str, kind: str) -> int | float | None:
    where = join(path, "step")
    if step is None:
        return 1 if kind == "int" else None
    if kind == "int" and not is_int(step):
        raise SpaceError(
            src, where, f"an int dimension needs an integer step, got {step!r}", "use a whole number >= 1"
        )
    value = step if kind == "int" else _as_float(step)
    if value is None:
        raise SpaceError(
            src, where, f"`step` must be a number, got {step!r}", "write `step: <number>` or remove it"
        )
    if value <= 0:
        raise SpaceError(
            src, where, f"`step` must be > 0, got {step!r}", "use a positive step, or remove `step`"
        )
    if (high - low) / value > _MAX_GRID:
        raise SpaceError(
            src, where, f"step {value!r} cuts [{low}, {high}] into more than {_MAX_GRID:.0e} values",
            "use a larger step, or remove `step` for a continuous float",
        )
    below, above = _grid_neighbours(low, high, value)
    if below != high:
        raise SpaceError(
            src,
            join(path, "high"),
            f"high - low = {Decimal(str(high)) - Decimal(str(low))} is not a multiple of step {value}",
            f"set high to {_fmt(below)} or {_fmt(above)} so that high is on the grid low + k * step",
        )
    return value


_MAX_GRID = 1e9  # more grid points than any search can visit: surely a typo (and Decimal's // would overflow)


def _grid_neighbours(low: float, high: float, step: float) -> tuple[float, float]:
    """The grid points ``low + k * step`` at or below and above ``high``, in decimal arithmetic on the written
    values, as Optuna checks divisibility (so Optuna never silently moves ``high``)."""
    if isinstance(step, int) and isinstance(low, int) and isinstance(high, int):
        k = (high - low) // step
        return low + k * step, low + (k + 1) * step
    d_low, d_step = Decimal(str(low)), Decimal(str(step))
    k = (Decimal(str(high)) - d_low) // d_step
    below = float(d_low + k * d_step)
    return below, float(d_low + (k + 1) * d_step)


def _categorical(spec: Mapping[str, Any], path: str, src: str, kind: str) -> Dimension:
    where = join(path, "choices")
    if "choices" not in spec:
        raise SpaceError(src, path, "a categorical dimension needs `choices`", "add `choices: [a, b, ...]`")
    choices = spec["choices"]
    if not isinstance(choices, list):
        raise SpaceError(
            src, where, f"`choices` must be a list, got {choices!r}", "write `choices: [a, b, ...]`"
        )
    if not choices:
        raise SpaceError(src, where, "`choices` is empty", "list at least one value, e.g. `choices: [a, b]`")
    for i, choice in enumerate(choices):
        _check_choice(choice, choices[:i], join(where, i), src)
    return Dimension(name="", kind=kind, choices=tuple(choices))


def _check_choice(choice: Any, earlier: list[Any], where: str, src: str) -> None:
    if not isinstance(choice, SCALAR_TYPES):
        raise SpaceError(
            src,
            where,
            f"a choice must be a scalar (str, int, float, bool or null), got {type(choice).__name__} {choice!r}",
            "use scalar choices; for structured alternatives use `choice:` branches",
        )
    if isinstance(choice, float) and math.isnan(choice):
        raise SpaceError(
            src, where, "a choice cannot be NaN (it never equals itself)", "remove it or use null"
        )
    for j, other in enumerate(earlier):
        if other == choice:
            same = (
                ""
                if type(other) is type(choice)
                else " (Optuna compares choices with ==, so 1, 1.0 and true are one choice)"
            )
            raise SpaceError(
                src,
                where,
                f"choice {choice!r} duplicates {other!r} at index {j}{same}",
                "remove the duplicate",
            )


_PARSERS: dict[str, Callable[[Mapping[str, Any], str, str, str], Dimension]] = {
    "int": _numeric,
    "float": _numeric,
    "categorical": _categorical,
}
