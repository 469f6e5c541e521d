"""Parse the values under ``params:`` into the space tree (``nas.space.tree``), validating as it goes.

A mapping is a dimension (``type:``), a repeat (``repeat:``/``each:``), a choice (``choice:``) or a group of
fields; a scalar or a list of scalars is a constant. Every error is a ``SpaceError`` at the offending path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nas.space.dimparse import parse_dimension
from nas.space.dims import SCALAR_TYPES, is_int
from nas.space.errors import SpaceError, join, options_hint
from nas.space.tree import Choice, Const, Group, Node, Repeat

MARKERS = ("type", "repeat", "choice")
_ROLES = {"type": "a dimension", "repeat": "a repeat", "choice": "a choice", "each": "a repeat"}


def parse_node(value: Any, path: str, src: str) -> Node:
    """One value of the space: constant, dimension, repeat, choice or group."""
    if isinstance(value, Mapping):
        return _mapping(value, path, src)
    if isinstance(value, list):
        return _const_list(value, path, src)
    if isinstance(value, SCALAR_TYPES):
        return Const(value)
    raise SpaceError(
        src,
        path,
        f"unsupported value {value!r} (YAML read it as {type(value).__name__})",
        "quote it to make it a string, or use a number, bool, null, list or mapping",
    )


def parse_fields(fields: Mapping[Any, Any], path: str, src: str) -> Group:
    """A mapping of field name -> value, as a ``Group`` in file order."""
    check_keys(fields, path, src)
    return Group(tuple((key, parse_node(value, join(path, key), src)) for key, value in fields.items()))


def check_keys(mapping: Mapping[Any, Any], path: str, src: str) -> None:
    """Keys must be non-empty strings without '/' (names are '/'-joined)."""
    for key in mapping:
        if not isinstance(key, str):
            raise SpaceError(
                src,
                join(path, key),
                f"key {key!r} is a {type(key).__name__}, keys must be strings",
                f"quote it: '{key}'",
            )
        if not key:
            raise SpaceError(src, path, "a key is empty", "give every field a name")
        if "/" in key:
            raise SpaceError(
                src,
                path,
                f"key {key!r} contains '/', which joins param names",
                f"rename it, e.g. {key.replace('/', '_')!r}",
            )


def _mapping(value: Mapping[Any, Any], path: str, src: str) -> Node:
    check_keys(value, path, src)
    markers = [m for m in MARKERS if m in value]
    if len(markers) > 1:
        found = " and ".join(f"`{m}`" for m in markers)
        raise SpaceError(
            src,
            path,
            f"this mapping has {found}; it can be only one of a dimension (`type`), a repeat (`repeat`) or a choice (`choice`)",
            "split it, e.g. put the dimension under a field of `each:` or of a branch",
        )
    if markers:
        return _BY_MARKER[markers[0]](value, path, src)
    if "each" in value:
        raise SpaceError(
            src,
            path,
            "`each` without `repeat`",
            "add `repeat: <int>` or `repeat: {low: .., high: ..}` next to `each`",
        )
    return parse_fields(value, path, src)


def _const_list(value: list[Any], path: str, src: str) -> Const:
    for i, item in enumerate(value):
        if not isinstance(item, SCALAR_TYPES):
            raise SpaceError(
                src,
                join(path, i),
                f"a constant list may hold only scalars, got {type(item).__name__} {item!r}",
                "for a list of sub-spaces use `repeat:` with `each:`; for alternatives use `type: categorical`",
            )
    return Const(tuple(value))


def _only(value: Mapping[str, Any], allowed: tuple[str, ...], path: str, src: str, what: str) -> None:
    for key in value:
        if key not in allowed:
            raise SpaceError(
                src,
                join(path, key),
                f"unknown key {key!r} in {what}",
                options_hint(key, allowed, f"{what} takes"),
            )


def _repeat(value: Mapping[str, Any], path: str, src: str) -> Repeat:
    _only(value, ("repeat", "each"), path, src, "a repeat")
    low, high, fixed = _repeat_count(value["repeat"], join(path, "repeat"), src)
    if "each" not in value:
        raise SpaceError(src, path, "`repeat` without `each`", "add `each:` with the fields of one element")
    each = value["each"]
    if not isinstance(each, Mapping):
        raise SpaceError(
            src,
            join(path, "each"),
            f"`each` must be a mapping of the fields of one element, got {each!r}",
            "write `each: {field: <constant or dimension>, ...}`",
        )
    return Repeat(low=low, high=high, fixed=fixed, each=_body(each, join(path, "each"), src, "`each`"))


def _repeat_count(count: Any, where: str, src: str) -> tuple[int, int, bool]:
    fix = "write `repeat: 3` (a fixed depth) or `repeat: {low: 1, high: 3}` (a variable depth)"
    if is_int(count):
        if count < 0:
            raise SpaceError(src, where, f"`repeat` must be >= 0, got {count}", fix)
        return count, count, True
    if not isinstance(count, Mapping):
        raise SpaceError(src, where, f"`repeat` must be an int >= 0 or {{low, high}}, got {count!r}", fix)
    _only(count, ("low", "high"), where, src, "`repeat`")
    bounds = []
    for key in ("low", "high"):
        if key not in count:
            raise SpaceError(src, where, f"`repeat` has no `{key}`", fix)
        if not is_int(count[key]) or count[key] < 0:
            raise SpaceError(src, join(where, key), f"`{key}` must be an int >= 0, got {count[key]!r}", fix)
        bounds.append(count[key])
    low, high = bounds
    if low > high:
        raise SpaceError(
            src, join(where, "low"), f"low ({low}) is greater than high ({high})", "swap them: low <= high"
        )
    return low, high, False


def _body(value: Mapping[Any, Any], path: str, src: str, what: str) -> Group:
    """The fields of a repeat element or of a choice branch (a group, never itself a dimension/repeat/choice)."""
    check_keys(value, path, src)
    for key in (*MARKERS, "each"):
        if key in value:
            note = (
                " (nor have a field named `type`: a resolved branch stores its name there)"
                if key == "type"
                else ""
            )
            raise SpaceError(
                src,
                join(path, key),
                f"{what} holds the fields of a sub-space, so it cannot itself be {_ROLES[key]}{note}",
                f"put it under a field name, e.g. `value: {{{key}: ...}}`",
            )
    return parse_fields(value, path, src)


def _choice(value: Mapping[str, Any], path: str, src: str) -> Choice:
    _only(value, ("choice",), path, src, "a choice")
    where = join(path, "choice")
    branches = value["choice"]
    if not isinstance(branches, Mapping):
        raise SpaceError(
            src,
            where,
            f"`choice` must be a mapping of branch name -> sub-space, got {branches!r}",
            "write `choice: {a: {}, b: {field: ...}}`",
        )
    if not branches:
        raise SpaceError(
            src,
            where,
            "`choice` has no branches",
            "add at least one branch, e.g. `choice: {a: {}, b: {field: ...}}`",
        )
    check_keys(branches, where, src)
    parsed = []
    for name, body in branches.items():
        if body is None:
            parsed.append((name, Group(())))
        elif isinstance(body, Mapping):
            parsed.append((name, _body(body, join(where, name), src, f"branch {name!r}")))
        else:
            raise SpaceError(
                src,
                join(where, name),
                f"branch {name!r} must be a mapping of fields or null, got {body!r}",
                f"write `{name}: {{}}` or `{name}: {{field: ...}}`",
            )
    return Choice(tuple(parsed))


_BY_MARKER: dict[str, Callable[[Mapping[str, Any], str, str], Node]] = {
    "type": parse_dimension,
    "repeat": _repeat,
    "choice": _choice,
}
