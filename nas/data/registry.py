"""Dataset registry: a table of named loaders, and :func:`load_data`, the one way in.

A loader is a function ``fn(*, seed, data_dir, val_fraction, test_fraction, **options) -> Splits``; the keyword
names of ``fn`` besides those four are the options a user may pass. A name ``"package.module:function"`` is not
looked up in the table: it imports exactly that module and calls that function (a user's own loader).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from nas.data.base import DataError, Splits
from nas.errors import did_you_mean

log = logging.getLogger(__name__)

LoaderFn = Callable[..., Splits]

_COMMON = ("seed", "data_dir", "val_fraction", "test_fraction")


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset: its loader, the first line of its docstring and the options it accepts."""

    name: str
    fn: LoaderFn
    doc: str = ""
    options: frozenset[str] = field(default_factory=frozenset)
    accepts_any_option: bool = False


_DATASETS: dict[str, DatasetSpec] = {}


def _spec(name: str, fn: LoaderFn) -> DatasetSpec:
    params = inspect.signature(fn).parameters.values()
    named = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return DatasetSpec(
        name=name, fn=fn, doc=(inspect.getdoc(fn) or "").split("\n")[0],
        options=frozenset(named - set(_COMMON)),
        accepts_any_option=any(p.kind is p.VAR_KEYWORD for p in params),
    )


def register_dataset(name: str) -> Callable[[LoaderFn], LoaderFn]:
    """Register ``fn`` as the loader of dataset ``name``. A duplicate name, or a name containing ``:`` (reserved
    for ``module:function`` references), raises ``ValueError``; a loader that takes neither each common keyword
    (``seed``, ``data_dir``, ``val_fraction``, ``test_fraction``) nor ``**kwargs`` raises ``TypeError``."""

    def deco(fn: LoaderFn) -> LoaderFn:
        if ":" in name:
            raise ValueError(f"dataset name {name!r} must not contain ':' (reserved for module:function loaders)")
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is already registered (by {_DATASETS[name].fn.__module__})")
        params = inspect.signature(fn).parameters
        missing = [c for c in _COMMON if c not in params]
        if missing and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise TypeError(f"dataset loader {name!r} must take keyword arguments {', '.join(missing)}")
        _DATASETS[name] = _spec(name, fn)
        return fn

    return deco


def unregister_dataset(name: str) -> None:
    """Remove a dataset (tests and plugins that register temporary ones)."""
    _DATASETS.pop(name, None)


def dataset_names() -> list[str]:
    """Names of all registered datasets, sorted."""
    return sorted(_DATASETS)


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (a registered name or a ``module:function`` reference)."""
    if ":" in name:
        return _spec(name, _import_loader(name))
    try:
        return _DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}.{did_you_mean(name, _DATASETS, sentence=True)} Known datasets: "
                        f"{', '.join(sorted(_DATASETS))}; or pass 'package.module:function' for your own "
                        "loader returning Splits.") from None


def _import_loader(ref: str) -> LoaderFn:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise DataError(f"dataset reference {ref!r} must look like 'package.module:function'.")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        missing = getattr(err, "name", None)
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise DataError(f"dataset {ref!r}: no module named {missing!r} on the import path (PYTHONPATH, the "
                            f"experiment's folder). Put {missing.replace('.', '/')}.py beside the experiment file, or "
                            "add the folder holding it to PYTHONPATH: export PYTHONPATH=/path/to/folder:$PYTHONPATH"
                            ) from err
        raise DataError(f"dataset {ref!r}: module {module_name!r} was found but importing it failed "
                        f"({type(err).__name__}: {err}). Install what it imports, or fix the module.") from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DataError(f"dataset {ref!r}: {module_name!r} has no attribute {attr!r}."
                            f"{did_you_mean(part, dir(obj), sentence=True)}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise DataError(f"dataset {ref!r}: {attr!r} is a {type(obj).__name__}, not a function returning Splits.")
    return obj


def load_data(
    name: str,
    *,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    **options: Any,
) -> Splits:
    """Load dataset ``name`` as in-memory train/val/test :class:`Splits`.

    ``seed`` picks the split (same seed, same tensors; another seed, another split). ``val_fraction`` and
    ``test_fraction`` are fractions of all samples for data without an official split; where a dataset has an
    official test set, its loader documents how they apply. ``data_dir`` is where files are read (and caches
    written). ``options`` are the dataset's own keywords; an unknown one raises :class:`DataError` listing the
    valid ones. A ``module:function`` name calls that function with the common keywords it accepts plus
    ``options``, and it must return :class:`Splits`.
    """
    spec = get_dataset(name)
    unknown = sorted(set(options) - spec.options) if not spec.accepts_any_option else []
    if unknown:
        valid = ", ".join(sorted(spec.options)) or "none"
        raise DataError(f"dataset {name!r} has no option {unknown[0]!r}.{did_you_mean(unknown[0], spec.options, sentence=True)} "
                        f"Its options: {valid}.")
    common = {"seed": int(seed), "data_dir": data_dir, "val_fraction": float(val_fraction),
              "test_fraction": float(test_fraction)}
    params = inspect.signature(spec.fn).parameters
    kwargs = {k: v for k, v in common.items() if k in params or spec.accepts_any_option}
    start = time.perf_counter()
    splits = spec.fn(**kwargs, **options)
    check_splits(splits, name)
    log.info("loaded dataset %s: %s samples, input %s, %d classes in %.2f s", name, splits.sizes(),
             splits.input_shape, splits.num_classes, time.perf_counter() - start)
    return splits


#: The fewest rows each split may have: two to train (batch norm needs two samples), one to validate and to test.
MIN_ROWS = {"train": 2, "val": 1, "test": 1}


def check_splits(splits: Any, name: str) -> None:
    """Raise :class:`DataError` unless ``splits`` honours the :class:`Splits` contract (types, dtypes, shapes,
    labels in ``[0, num_classes)``)."""
    if not isinstance(splits, Splits):
        raise DataError(f"dataset {name!r}: the loader returned {type(splits).__name__}, not nas.data.Splits.")
    for part in ("train", "val", "test"):
        tensors = getattr(getattr(splits, part), "tensors", None)
        if tensors is None or len(tensors) != 2:
            raise DataError(f"dataset {name!r}: the {part} set must be a TensorDataset(x, y). Fix the loader.")
        for problem in _problems(*tensors, splits):
            raise DataError(f"dataset {name!r}: {part} set: {problem}. Fix the loader.")
        need = MIN_ROWS[part]
        if len(tensors[0]) < need:
            raise DataError(f"dataset {name!r}: the {part} set has {len(tensors[0])} row(s), fewer than {need} "
                            f"(all splits: {splits.sizes()}). Use more data, or other val_fraction/test_fraction.")


def _problems(x: torch.Tensor, y: torch.Tensor, splits: Splits) -> list[str]:
    checks = [
        (x.dtype != torch.float32, f"x is {x.dtype}, expected torch.float32"),
        (y.dtype != torch.int64, f"y is {y.dtype}, expected torch.int64"),
        (y.ndim != 1 or len(y) != len(x), f"y has shape {tuple(y.shape)}, expected ({len(x)},)"),
        (tuple(x.shape[1:]) != tuple(splits.input_shape),
         f"x has per-sample shape {tuple(x.shape[1:])}, input_shape says {tuple(splits.input_shape)}"),
    ]
    found = [msg for bad, msg in checks if bad]
    if not found and len(y) and (int(y.min()) < 0 or int(y.max()) >= splits.num_classes):
        found.append(f"labels span [{int(y.min())}, {int(y.max())}], outside [0, {splits.num_classes})")
    if not found and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        found.append(f"x holds {bad} non-finite value(s) (NaN or inf); training on them gives NaN losses, whatever "
                     "the learning rate. Clean or impute them in the data")
    return found
