"""Checks in the driver before the first trial: an error every trial would hit is found once, with exit 2.

:func:`preflight` resolves the experiment's relative paths against its file (Ray workers run in another folder),
puts the experiment's and the space file's folders on the import path (a ``module:function`` builder or dataset
beside them imports in the driver and in the workers alike), loads the space and the data, builds one sampled
architecture and runs one training step with the experiment's settings. A bad ``lr``, a space none of whose
samples builds, or a builder that returns something other than an ``nn.Module`` is then a :class:`ConfigError`,
not a search whose every trial fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from nas.builders import build
from nas.config.experiment import Experiment, training_dimension
from nas.data import Splits
from nas.errors import ConfigError
from nas.space import Space, load_space
from nas.training.train import train_step
from nas.training.trial import cached_splits, use_import_paths

#: how many seeded samples of the space are tried before "nothing in this space builds" is an error
SAMPLES = 8

#: set while the driver runs its check step
PREFLIGHT_ENV = "NAS_PREFLIGHT"

#: data options that name files or folders (resolved against the experiment file when relative)
_PATH_OPTIONS = ("path", "data_dir", "root", "file")


def _is_path_option(key: str) -> bool:
    return key in _PATH_OPTIONS or key.endswith(("_path", "_dir", "_file"))


def _replace(obj: Any, **changes: Any) -> Any:
    """A copy of a config object with fields replaced (a frozen dataclass or a pydantic model)."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **changes)
    return obj.model_copy(update=changes)


def experiment_dir(exp: Experiment) -> Path | None:
    """The folder of the experiment file, or None for an experiment not read from a file."""
    src = Path(exp.source)
    return src.resolve().parent if exp.source != "<string>" and src.is_file() else None


def resolve_paths(exp: Experiment) -> Experiment:
    """``exp`` with relative data paths (``data_dir``, and options such as ``path``) made absolute against the
    experiment file's folder, as ``space:`` already is. Absolute paths, ``~`` paths and experiments not read from
    a file are left as they are."""
    base = experiment_dir(exp)
    if base is None:
        return exp

    def absolute(value: Any) -> Any:
        if not isinstance(value, (str, os.PathLike)) or not str(value) or str(value).startswith("~"):
            return value
        p = Path(value)
        return value if p.is_absolute() else str((base / p).resolve())

    data = exp.data
    options = {k: absolute(v) if _is_path_option(k) else v for k, v in (data.options or {}).items()}
    changed = _replace(data, data_dir=absolute(data.data_dir) if data.data_dir is not None else None, options=options)
    return exp if changed == data else _replace(exp, data=changed)


def import_paths(exp: Experiment) -> list[str]:
    """Folders a ``module:function`` builder or dataset is imported from besides PYTHONPATH: the experiment
    file's folder, then the space file's."""
    folders = [experiment_dir(exp), Path(exp.space).resolve().parent]
    return list(dict.fromkeys(str(f) for f in folders if f is not None))


def training_settings(exp: Experiment) -> dict[str, Any]:
    """The experiment's training settings for the check step; a sampled ``lr``/``weight_decay`` takes the
    geometric (log) or arithmetic middle of its range, or its first choice."""
    out: dict[str, Any] = {}
    for key in ("lr", "weight_decay"):
        v = getattr(exp.training, key)
        if isinstance(v, Mapping):
            dim = training_dimension(v, key, exp.source)
            if getattr(dim, "choices", None):
                v = dim.choices[0]
            elif getattr(dim, "log", False) and dim.low > 0:
                v = math.sqrt(dim.low * dim.high)
            else:
                v = (dim.low + dim.high) / 2
        out[key] = float(v)
    return out


def check_candidate(exp: Experiment, space: Space, splits: Splits) -> dict[str, Any]:
    """Build a sampled architecture and run one training step on it; returns its params.

    Up to :data:`SAMPLES` seeded samples are tried until one builds and steps with a finite loss, so a space
    where only some architectures fail still runs (those trials fail and are recorded). Raises
    :class:`ConfigError` naming the file, the setting and the error when none does (every trial would hit it),
    or at once when the builder returns something other than an ``nn.Module``.
    """
    build_errors: list[tuple[dict[str, Any], str]] = []
    step_errors: list[tuple[dict[str, Any], Exception | str]] = []
    settings = training_settings(exp)
    for i in range(SAMPLES):
        params: dict[str, Any] = {}
        try:
            params = space.sample_random(exp.search.seed * 1000 + i)
            model = build(space, params, input_shape=splits.input_shape, num_classes=splits.num_classes, seed=i)
        except Exception as e:  # a builder may raise anything; the reason is reported, not swallowed
            build_errors.append((params, getattr(e, "problem", None) or f"{type(e).__name__}: {e}"))
            continue
        if not isinstance(model, nn.Module):
            raise ConfigError(space.source, "builder", f"builder {space.builder!r} returned {type(model).__name__}, "
                              "not a torch.nn.Module", "make the builder function `return` the model it builds")
        try:
            with _checking():
                loss = train_step(model, splits, batch_size=exp.data.batch_size, optimizer=exp.training.optimizer,
                                  seed=exp.search.seed, **settings)
        except Exception as e:
            step_errors.append((params, e))
            continue
        if not math.isfinite(loss):
            step_errors.append((params, f"the first batch gives a loss of {loss} before any update"))
            continue
        return params
    if not step_errors:
        first_params, problem = build_errors[0]
        raise ConfigError(space.source, "params", f"none of {SAMPLES} sampled architectures can be built, so every "
                          f"trial would fail; the first ({first_params}): {problem}",
                          f"narrow the dimensions to values builder {space.builder!r} accepts "
                          "(`nas space show` builds one sample)")
    params, err = step_errors[0]
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    field = next((f"training/{k}" for k in ("lr", "weight_decay") if k in str(err)), "training")
    raise ConfigError(exp.source, field, f"one training step failed in the driver for every architecture that "
                      f"built ({len(step_errors)} of {SAMPLES} samples), so every trial would fail; the first "
                      f"({params}): {text}",
                      f"fix `{field}` in the experiment" if field != "training" else
                      "fix the training settings or the builder's forward pass (the step runs the model on one "
                      f"batch of {tuple(splits.train.tensors[0].shape[1:])} inputs)")


@contextlib.contextmanager
def _checking() -> Iterator[None]:
    """Marks the driver's check step (``NAS_PREFLIGHT=1``): the fault-injection builder of the tests
    (:mod:`nas.testing.faults`) fires only in trials, never in the driver."""
    old = os.environ.get(PREFLIGHT_ENV)
    os.environ[PREFLIGHT_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(PREFLIGHT_ENV, None)
        else:
            os.environ[PREFLIGHT_ENV] = old


def preflight(exp: Experiment) -> Experiment:
    """Everything above, in order; returns ``exp`` with its paths resolved (use it from here on)."""
    exp = resolve_paths(exp)
    use_import_paths(import_paths(exp))
    space = load_space(exp.space)
    splits = cached_splits(asdict(exp.data))
    check_candidate(exp, space, splits)
    return exp
