"""Builder registry: a table of named model builders (the timm/fvcore habit, not an if/elif chain).

A builder is a function ``fn(*, input_shape, num_classes, **config) -> nn.Module``. ``config`` holds the
resolved search-space values (nested dicts and lists for ``repeat:`` and ``choice:``). The keyword names of
``fn`` other than ``input_shape`` and ``num_classes`` are the parameters a space for that builder may set.
"""

from __future__ import annotations

import difflib
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


class BuilderImportError(KeyError):
    """A ``module:function`` builder reference that cannot be used: ``problem`` says why (module not found, an
    import error inside it, no such function, a wrong signature), ``fix`` how to fix it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix

    def __str__(self) -> str:
        return f"{self.problem}. Fix: {self.fix}"


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
        _import_reference(name)  # BuilderImportError (a KeyError) says why it cannot be used
    try:
        return _BUILDERS[name]
    except KeyError:
        raise KeyError(f"unknown builder {name!r}; known: {', '.join(sorted(_BUILDERS))}, "
                       "or a reference package.module:function") from None


def _import_reference(name: str) -> None:
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise BuilderImportError(f"builder {name!r} is not a reference package.module:function",
                                 "write e.g. `builder: mynet:build_net` (module mynet.py, function build_net)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        missing = getattr(e, "name", None)
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise BuilderImportError(
                f"builder {name!r}: no module named {missing!r} on the import path (PYTHONPATH, the experiment's "
                "folder, the space file's folder)",
                f"put {missing.replace('.', '/')}.py beside the experiment or space file, or add the folder holding "
                "it to PYTHONPATH: export PYTHONPATH=/path/to/folder:$PYTHONPATH") from None
        raise BuilderImportError(f"builder {name!r}: module {module_name!r} was found but importing it failed: "
                                 f"{type(e).__name__}: {e}", "install what it imports, or fix the module") from None
    except Exception as e:  # the module's own code raised while being imported
        raise BuilderImportError(f"builder {name!r}: importing module {module_name!r} raised "
                                 f"{type(e).__name__}: {e}", f"fix the module {module_name!r}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        functions = [k for k, v in vars(module).items() if callable(v) and not k.startswith("_")]
        close = difflib.get_close_matches(attr, functions, n=1)
        what = "no function" if fn is None else f"{attr!r} is a {type(fn).__name__}, not a function:"
        raise BuilderImportError(
            f"builder {name!r}: module {module_name!r} ({getattr(module, '__file__', '?')}) has {what} {attr!r}"
            + (f" (did you mean {close[0]!r}?)" if close else ""),
            f"name a function of {module_name!r}" + (f": {module_name}:{close[0]}" if close else
                                                    f" (it has: {', '.join(functions[:12]) or 'none'})"))
    if name not in _BUILDERS:
        try:
            register_builder(name)(fn)
        except TypeError as e:
            raise BuilderImportError(
                f"builder {name!r} has the wrong signature {inspect.signature(fn)}: {e}",
                "define it as `def fn(*, input_shape, num_classes, **dims) -> nn.Module`, with one keyword per "
                "dimension of the space") from None


def builder_names() -> list[str]:
    """Names of all builders registered by name, sorted (``module:function`` references imported on use are
    not listed: they are not names to pick from)."""
    _load_builtin()
    return sorted(n for n in _BUILDERS if ":" not in n)


#: the package whose import registers the built-in builders (mlp, cnn, nb201): loaded by name on first use, as
#: a plugin would be, so the space layer never imports the (higher) builders layer
BUILTIN_PACKAGE = "nas.builders"


def _load_builtin() -> None:
    importlib.import_module(BUILTIN_PACKAGE)  # registers the built-ins exactly once (a module imports once)
