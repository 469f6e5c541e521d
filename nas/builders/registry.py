"""Builder registry: a table of named model builders (the timm/fvcore habit, not an if/elif chain).

A builder is a function ``fn(*, input_shape, num_classes, **config) -> nn.Module``. ``config`` holds the
resolved search-space values (nested dicts and lists for ``repeat:`` and ``choice:``). The keyword names of
``fn`` other than ``input_shape`` and ``num_classes`` are the parameters a space for that builder may set.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

BuilderFn = Callable[..., nn.Module]
ParamsHook = Callable[[Mapping[str, Any]], dict[str, Any]]

_RESERVED = ("input_shape", "num_classes")


@dataclass(frozen=True)
class BuilderSpec:
    """One registered builder.

    ``params_hook`` (optional) turns an alternative params form into the flat params dict of the space, e.g.
    nb201's ``{"arch": "|nor_conv_3x3~0|+|...|"}``. It must return params unchanged when they are already flat.
    """

    name: str
    fn: BuilderFn
    params_hook: ParamsHook | None = None
    doc: str = ""
    param_names: frozenset[str] = field(default_factory=frozenset)
    required: frozenset[str] = field(default_factory=frozenset)


_BUILDERS: dict[str, BuilderSpec] = {}


def register_builder(name: str, *, params_hook: ParamsHook | None = None) -> Callable[[BuilderFn], BuilderFn]:
    """Register ``fn`` under ``name``. A duplicate name raises ``ValueError``."""

    def deco(fn: BuilderFn) -> BuilderFn:
        if name in _BUILDERS:
            raise ValueError(f"builder {name!r} is already registered (by {_BUILDERS[name].fn.__module__})")
        sig = inspect.signature(fn)
        kw = {
            p.name: p
            for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _RESERVED
        }
        missing = [r for r in _RESERVED if r not in sig.parameters]
        if missing:
            raise TypeError(f"builder {name!r} must take keyword arguments {', '.join(missing)}")
        _BUILDERS[name] = BuilderSpec(
            name=name,
            fn=fn,
            params_hook=params_hook,
            doc=(inspect.getdoc(fn) or "").split("\n")[0],
            param_names=frozenset(kw),
            required=frozenset(k for k, p in kw.items() if p.default is inspect.Parameter.empty),
        )
        return fn

    return deco


def unregister_builder(name: str) -> None:
    """Remove a builder (tests and plugins that register temporary builders)."""
    _BUILDERS.pop(name, None)


def get_builder(name: str) -> BuilderSpec:
    """The builder registered as ``name``; ``KeyError`` naming the known builders otherwise.

    A name of the form ``package.module:function`` imports that module and registers ``function`` under the
    full name on first use: the only way custom builder code is loaded (no path or eval magic).
    """
    _load_builtin()
    if name not in _BUILDERS and ":" in name:
        _import_reference(name)
    try:
        return _BUILDERS[name]
    except KeyError:
        raise KeyError(f"unknown builder {name!r}; known: {', '.join(sorted(_BUILDERS))}, "
                       "or a reference package.module:function") from None


def _import_reference(name: str) -> None:
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise KeyError(f"builder {name!r}: cannot import module {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise KeyError(f"builder {name!r}: module {module_name!r} has no function {attr!r}")
    if name not in _BUILDERS:
        register_builder(name)(fn)


def builder_names() -> list[str]:
    """Names of all builders registered by name, sorted (``module:function`` references imported on use are
    not listed: they are not names to pick from)."""
    _load_builtin()
    return sorted(n for n in _BUILDERS if ":" not in n)


def _load_builtin() -> None:
    # Importing the package registers the built-in builders (mlp, cnn, nb201) exactly once.
    import nas.builders  # noqa: F401
