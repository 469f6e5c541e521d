"""The building blocks of the experiment schema: section classes, strict value types and refusals.

Every section is a frozen pydantic dataclass (``@section``) that refuses unknown keys (``extra="forbid"``), so it
still works with ``dataclasses.replace`` and ``asdict`` while pydantic validates it. Values are strict: YAML's
``"3"`` is not an int, ``true`` is not a number, an int is a float; floats are finite. A check that pydantic's
field constraints cannot say is written next to its field and raises :func:`refuse`, whose problem and fix reach
the user unchanged (:mod:`nas.config.translate` turns every validation error into a :class:`nas.errors.ConfigError`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, NoReturn, TypeVar

from pydantic import (
    AfterValidator,
    AllowInfNan,
    ConfigDict,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from nas.errors import did_you_mean

Int = StrictInt
Str = StrictStr
Bool = StrictBool
#: a finite number; an int is accepted (and stored as a float)
Float = Annotated[float, Strict(), AllowInfNan(False)]
#: a non-empty string (a column, a URI...)
Name = Annotated[str, Strict(), StringConstraints(min_length=1)]

SECTION_CONFIG = ConfigDict(extra="forbid")
T = TypeVar("T")

#: the error type :func:`refuse` raises; its context carries ``problem``, ``fix`` and an optional ``path``
REFUSAL = "nas_refusal"


def section(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen, validated section that refuses unknown keys."""
    return dataclass(frozen=True, config=SECTION_CONFIG)(cls)  # type: ignore[return-value]


def refuse(problem: str, fix: str, path: str = "") -> NoReturn:
    """Refuse a value: ``problem`` says what is wrong, ``fix`` what to write; ``path`` ('/'-joined) is relative to
    the field or section being validated ('' for itself)."""
    raise PydanticCustomError(REFUSAL, "{problem}", {"problem": problem, "fix": fix, "path": path})


def known(value: Any, names: Iterable[str], what: str, extra: tuple[str, ...] = ()) -> None:
    """Refuse ``value`` unless it is one of ``names`` (or ``extra``), with a did-you-mean."""
    options = [*extra, *sorted(names)]
    if value not in options:
        refuse(f"unknown {what} {value!r}{did_you_mean(str(value), options)}", f"use one of: {', '.join(options)}")


def check(ok: bool, problem: str, fix: str, path: str = "") -> None:
    """:func:`refuse` unless ``ok``."""
    if not ok:
        refuse(problem, fix, path)


def one_of(names: Iterable[str] | Callable[[], Iterable[str]], what: str, extra: tuple[str, ...] = ()) -> Any:
    """A field's annotation metadata: the value must be one of ``names`` (a callable is asked at each validation,
    so a registry may grow) or ``extra``; else :func:`known`'s refusal. Use as ``Annotated[Str, one_of(...)]``."""

    def _check(value: str) -> str:
        known(value, names() if callable(names) else names, what, extra)
        return value

    return AfterValidator(_check)


def in_unit(key: str, example: float, *, zero: bool = False) -> Any:
    """A field's annotation metadata: the value must lie in (0, 1) (``[0, 1)`` with ``zero``); the fix suggests
    ``key: example``. Use as ``Annotated[Float, in_unit(...)]``."""
    low = "[0" if zero else "(0"

    def _check(value: float) -> float:
        check((0 <= value if zero else 0 < value) and value < 1, f"must be in {low}, 1), got {value}",
              f"set `{key}: {example}`")
        return value

    return AfterValidator(_check)
