"""Define-by-run sampling of a space on an Optuna trial, and ``resolve``: flat params -> nested builder config.

Both walk the tree in the same order with the same names, so ``resolve(sample(trial))`` is the config the
trial sampled, and a recorded params dict replays the same config.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from functools import singledispatch
from typing import Any

import optuna
from optuna.samplers import RandomSampler
from optuna.storages import InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import BaseTrial

from nas.errors import closest
from nas.space.dims import Dimension
from nas.space.errors import SpaceError, join
from nas.space.tree import Choice, Const, Group, Repeat

_SCRATCH_STUDY = "nas.space.sample_random"


@singledispatch
def sample(node: Any, name: str, trial: BaseTrial, out: dict[str, Any]) -> None:
    """Suggest every dimension under ``node`` on ``trial``; record each sampled value in ``out`` by name."""
    raise TypeError(f"not a space node: {node!r}")


@sample.register
def _(node: Const, name: str, trial: BaseTrial, out: dict[str, Any]) -> None:
    return None


@sample.register
def _(node: Dimension, name: str, trial: BaseTrial, out: dict[str, Any]) -> None:
    out[name] = replace(node, name=name).suggest(trial)


@sample.register
def _(node: Group, name: str, trial: BaseTrial, out: dict[str, Any]) -> None:
    for key, child in node.fields:
        sample(child, join(name, key), trial, out)


@sample.register
def _(node: Repeat, name: str, trial: BaseTrial, out: dict[str, Any]) -> None:
    n = node.low
    if not node.fixed:
        n = out[f"{name}/n"] = node.count_dimension(name).suggest(trial)
    for i in range(n):
        sample(node.each, join(name, i), trial, out)


@sample.register
def _(node: Choice, name: str, trial: BaseTrial, out: dict[str, Any]) -> None:
    branch = out[name] = node.branch_dimension(name).suggest(trial)
    sample(node.body(branch), join(name, branch), trial, out)


def random_trial(seed: int) -> optuna.Trial:
    """A trial of a throwaway in-memory study with a ``RandomSampler(seed)``."""
    storage = InMemoryStorage()
    storage.create_new_study([StudyDirection.MINIMIZE], study_name=_SCRATCH_STUDY)
    study = optuna.Study(study_name=_SCRATCH_STUDY, storage=storage, sampler=RandomSampler(seed=seed))
    return study.ask()


@singledispatch
def resolve(node: Any, name: str, params: Mapping[str, Any], src: str) -> Any:
    """The builder value of ``node`` given flat ``params``; ``SpaceError`` (path = param name) when a needed
    param is missing or outside its distribution."""
    raise TypeError(f"not a space node: {node!r}")


@resolve.register
def _(node: Const, name: str, params: Mapping[str, Any], src: str) -> Any:
    return list(node.value) if isinstance(node.value, tuple) else node.value


@resolve.register
def _(node: Dimension, name: str, params: Mapping[str, Any], src: str) -> Any:
    return take(node, name, params, src)


@resolve.register
def _(node: Group, name: str, params: Mapping[str, Any], src: str) -> Any:
    return {key: resolve(child, join(name, key), params, src) for key, child in node.fields}


@resolve.register
def _(node: Repeat, name: str, params: Mapping[str, Any], src: str) -> Any:
    n = node.low if node.fixed else take(node.count_dimension(name), f"{name}/n", params, src)
    return [resolve(node.each, join(name, i), params, src) for i in range(n)]


@resolve.register
def _(node: Choice, name: str, params: Mapping[str, Any], src: str) -> Any:
    branch = take(node.branch_dimension(name), name, params, src)
    return {"type": branch, **resolve(node.body(branch), join(name, branch), params, src)}


def take(dim: Dimension, name: str, params: Mapping[str, Any], src: str) -> Any:
    """``params[name]`` checked against ``dim``."""
    if name not in params:
        close = closest(name, [str(k) for k in params])
        hint = f"; did you mean {close!r}, which params has?" if close else ""
        raise SpaceError(
            src,
            name,
            f"param {name!r} is missing",
            f"pass every param the space samples for this configuration, as `Space.sample` records them{hint}",
        )
    value = params[name]
    try:
        return dim.check(value)
    except ValueError as err:
        raise SpaceError(
            src,
            name,
            f"param {name!r} = {value!r} is outside its distribution: {err}",
            f"use a value in {dim.describe()}, or replay against the space the run used (compare Space.hash)",
        ) from None


class _DropScratchStudyLog(logging.Filter):
    """Hide Optuna's "A new study created in memory" line for ``random_trial``'s scratch study only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _SCRATCH_STUDY not in record.getMessage()


def _install_log_filter() -> None:
    logger = logging.getLogger(InMemoryStorage.__module__)
    if not any(isinstance(f, _DropScratchStudyLog) for f in logger.filters):
        logger.addFilter(_DropScratchStudyLog())


_install_log_filter()
