"""Validate the top level of a space file (``builder``, ``input_shape``, ``num_classes``, ``description``,
``params``) against the builder registry, and parse ``params`` into the tree."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nas.space.dims import is_int
from nas.space.errors import SpaceError, join, options_hint
from nas.space.parse import check_keys, parse_fields
from nas.space.registry import BuilderImportError, BuilderSpec, builder_names, get_builder
from nas.space.tree import Group

TOP_KEYS = ("builder", "input_shape", "num_classes", "description", "params", "compression")
#: Keys of the optional ``compression:`` block (applied after training; see nas/compress/plan.py).
COMPRESSION_KEYS = ("prune", "sparsity", "rank_energy", "quantize", "finetune_epochs")
RESERVED_PARAMS = ("input_shape", "num_classes")
_DOC = "see docs/SPACE_FORMAT.md"


@dataclass(frozen=True)
class Header:
    """The validated top level of a space."""

    builder: str
    input_shape: tuple[int, ...] | None
    num_classes: int | None
    description: str
    root: Group


def parse_top(data: Any, src: str) -> Header:
    """Validate ``data`` (the loaded YAML) and parse it; ``SpaceError`` on the first problem found."""
    if data is None:
        raise SpaceError(src, "", "the space is empty", f"write at least `builder:` and `params:` ({_DOC})")
    if not isinstance(data, Mapping):
        raise SpaceError(
            src,
            "",
            f"the top level must be a mapping, got {type(data).__name__}",
            f"write `builder: <name>` and `params: {{...}}` at the top level ({_DOC})",
        )
    check_keys(data, "", src)
    for key in data:
        if key not in TOP_KEYS:
            raise SpaceError(
                src, key, f"unknown top-level key {key!r}", options_hint(key, TOP_KEYS, "top-level keys")
            )
    for key in ("builder", "params"):
        if key not in data:
            raise SpaceError(src, "", f"the space has no `{key}`", f"add `{key}:` ({_DOC})")
    spec = _builder(data["builder"], src)
    root = _params(data["params"], spec, src)
    if data.get("compression") is not None:
        root = Group((*root.fields, ("compression", _compression(data["compression"], src))))
    return Header(
        builder=spec.name,
        input_shape=_input_shape(data.get("input_shape"), src),
        num_classes=_num_classes(data.get("num_classes"), src),
        description=_description(data.get("description"), src),
        root=root,
    )


def _compression(block: Any, src: str) -> Group:
    """The ``compression:`` block: constants or dimensions under known keys, sampled as ``compression/<key>``."""
    if not isinstance(block, Mapping) or not block:
        raise SpaceError(src, "compression", "must be a non-empty mapping",
                         "e.g. `compression: {prune: {type: categorical, choices: [0.0, 0.5]}, quantize: true}`")
    check_keys(block, "compression", src)
    for key in block:
        if key not in COMPRESSION_KEYS:
            raise SpaceError(src, join("compression", key), f"unknown compression key {key!r}",
                             options_hint(key, COMPRESSION_KEYS, "compression keys"))
    return parse_fields(block, "compression", src)


def _builder(name: Any, src: str) -> BuilderSpec:
    if not isinstance(name, str):
        raise SpaceError(
            src,
            "builder",
            f"`builder` must be a name, got {name!r}",
            options_hint(name, builder_names(), "known builders"),
        )
    try:
        return get_builder(name)
    except BuilderImportError as e:  # a module:function reference: say why it cannot be used
        raise SpaceError(src, "builder", e.problem, e.fix) from None
    except KeyError:
        raise SpaceError(
            src, "builder", f"unknown builder {name!r}", options_hint(name, builder_names(), "known builders")
        ) from None


def _input_shape(shape: Any, src: str) -> tuple[int, ...] | None:
    fix = "write 1 to 3 positive ints: [features], [C, L] or [C, H, W]; or remove it (the data sets it)"
    if shape is None:
        return None
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3:
        raise SpaceError(
            src, "input_shape", f"`input_shape` must be a list of 1 to 3 ints, got {shape!r}", fix
        )
    for i, dim in enumerate(shape):
        if not is_int(dim) or dim <= 0:
            raise SpaceError(
                src, join("input_shape", i), f"`input_shape` entries must be positive ints, got {dim!r}", fix
            )
    return tuple(shape)


def _num_classes(n: Any, src: str) -> int | None:
    if n is None:
        return None
    if not is_int(n) or n < 2:
        raise SpaceError(
            src,
            "num_classes",
            f"`num_classes` must be an int >= 2, got {n!r}",
            "set the number of classes (>= 2), or remove it (the data sets it)",
        )
    return n


def _description(text: Any, src: str) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise SpaceError(
            src, "description", f"`description` must be text, got {text!r}", 'quote it: description: "..."'
        )
    return text


def _params(params: Any, spec: BuilderSpec, src: str) -> Group:
    if not isinstance(params, Mapping):
        raise SpaceError(
            src,
            "params",
            f"`params` must be a mapping of builder keyword -> value, got {params!r}",
            "write `params: {keyword: <constant or dimension>, ...}` (`params: {}` if the builder needs none)",
        )
    check_keys(params, "params", src)
    open_ended = _takes_var_keyword(spec.fn)
    for key in params:
        if key in RESERVED_PARAMS:
            raise SpaceError(
                src,
                join("params", key),
                f"`{key}` is not a builder parameter here",
                f"move `{key}:` to the top level",
            )
        if key not in spec.param_names and not open_ended:
            raise SpaceError(
                src,
                join("params", key),
                f"builder {spec.name!r} has no parameter {key!r}",
                options_hint(key, sorted(spec.param_names), "its parameters"),
            )
    missing = sorted(spec.required - set(params))
    if missing:
        raise SpaceError(
            src,
            "params",
            f"builder {spec.name!r} needs parameter(s) {', '.join(missing)}",
            f"add {', '.join(f'`{m}:`' for m in missing)} under `params`",
        )
    return parse_fields(params, "params", src)


def _takes_var_keyword(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes ``**kwargs`` (then any parameter name is accepted)."""
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
