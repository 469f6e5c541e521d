"""pydantic's validation errors as the one-paragraph :class:`nas.errors.ConfigError` users get everywhere.

Only the first error is reported (an unknown key first: a typo explains the errors that follow it). Each pydantic
error type maps to a problem and a fix; the field's default, when it has one, is the example in the fix.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticUndefined

from nas.config._schema import REFUSAL
from nas.errors import ConfigError, did_you_mean

#: pydantic type-error type -> what the value should have been
_KINDS: dict[str, str] = {
    "int_type": "int", "int_parsing": "int", "int_from_float": "int", "float_type": "a number",
    "float_parsing": "a number", "string_type": "a string", "bool_type": "true or false", "bool_parsing": "true or false",
}
_CONTAINERS: dict[str, tuple[str, str]] = {
    "dict_type": ("a mapping", "then indented `key: value` lines"),
    "dataclass_type": ("a mapping", "then indented fields"),
    "dataclass_exact_type": ("a mapping", "then indented fields"),
    "dataclass_args_type": ("a mapping", "then indented fields"),
    "list_type": ("a list", "then `[a, b]`"),
    "tuple_type": ("a list", "then `[a, b]`"),
}
_BOUNDS: dict[str, tuple[str, str]] = {
    "greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"), "less_than_equal": ("le", "<="),
}
_UNKNOWN_KEY = ("unexpected_keyword_argument", "extra_forbidden")
#: fields a user never writes (set by the loader)
INTERNAL_FIELDS = ("source", "raw")


def to_config_error(err: ValidationError, source: str, root: Any) -> ConfigError:
    """The first problem of ``err`` (raised validating ``root``, a section class) as a :class:`ConfigError`."""
    return ConfigError(source, *first_problem(err, root))


def first_problem(err: ValidationError, root: Any) -> tuple[str, str, str]:
    """``(path, problem, fix)`` of the first error of ``err``; ``path`` is '/'-joined from ``root``."""
    errors = err.errors(include_url=False)
    e = next((x for x in errors if x["type"] in _UNKNOWN_KEY), errors[0])
    return _describe(e, root)


def _describe(e: ErrorDetails, root: Any) -> tuple[str, str, str]:
    is_key = "[key]" in e["loc"]
    loc = [p for p in e["loc"] if p != "[key]"]
    path = "/".join(str(p) for p in loc)
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    name = str(loc[-1]) if loc else ""
    if kind == REFUSAL:
        return "/".join(p for p in (path, ctx.get("path", "")) if p), str(ctx["problem"]), str(ctx["fix"])
    if kind in _UNKNOWN_KEY:
        allowed = [f for f in _fields(_type_at(root, loc[:-1])) if f not in INTERNAL_FIELDS]
        return (path, f"unknown key {name!r}{did_you_mean(name, allowed)}",
                f"use one of: {', '.join(allowed)}" if allowed else f"remove `{name}`")
    if kind == "missing":
        return path, "missing required field", f"add `{name}: ...`"
    default = _default(root, loc)
    example = f", e.g. `{name}: {_yaml(default)}`" if default is not None else ""
    if kind in _KINDS:
        if is_key:
            return path, f"key {value!r} must be {_KINDS[kind]}", "write the key as " + _KINDS[kind]
        return (path, f"expected {_KINDS[kind]}, got {value!r} ({type(value).__name__})",
                f"set `{name}` to {_KINDS[kind]}{example}")
    if kind in _CONTAINERS:
        what, how = _CONTAINERS[kind]
        return path, f"must be {what}, not {type(value).__name__}", f"write `{name}:` {how}"
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        fix = f"set `{name}: {_yaml(default)}`" if default is not None else f"remove it or set `{name}` {op} {ctx[key]}"
        return path, f"must be {op} {ctx[key]}, got {value!r}", fix
    if kind == "finite_number":
        return path, f"must be a finite number, got {value!r}", f"set `{name}` to a finite number{example}"
    if kind in ("string_too_short", "string_pattern_mismatch"):
        rule = "must not be empty" if kind == "string_too_short" else f"must match {ctx.get('pattern')}"
        return path, f"{rule}, got {value!r}", f"set `{name}`{example or ' to a non-empty string'}"
    return path, str(e["msg"]), f"fix `{name or 'the file'}`{example}"


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list, tuple)) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    return str(value)


def _unwrap(tp: Any) -> Any:
    """``X`` from ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _fields(tp: Any) -> dict[str, Any]:
    return dict(getattr(tp, "__pydantic_fields__", {}) or {}) if dataclasses.is_dataclass(tp) else {}


def _type_at(root: Any, loc: list[Any]) -> Any:
    """The (unwrapped) type found at ``loc`` under ``root``, or None."""
    tp = _unwrap(root)
    for part in loc:
        fields = _fields(tp)
        origin = typing.get_origin(tp)
        if fields:
            if part not in fields:
                return None
            tp = fields[part].annotation
        elif origin in (tuple, list):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
        tp = _unwrap(tp)
    return tp


def _default(root: Any, loc: list[Any]) -> Any:
    """The default of the field at ``loc``, or None."""
    if not loc:
        return None
    info = _fields(_type_at(root, loc[:-1])).get(loc[-1])
    if info is None:
        return None
    if info.default is not PydanticUndefined:
        return info.default
    return info.default_factory() if info.default_factory is not None else None  # type: ignore[call-arg]
