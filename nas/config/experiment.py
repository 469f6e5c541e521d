"""Experiment files (``experiments/*.yaml``): what to search, on which data, for which objectives, how.

The schema is pydantic: one section class per ``key:`` of the file (:mod:`nas.config.data`, ``training``,
``search``, ``runtime``, ``stopping``, ``proxy``, ``surrogate``, ``bench``, ``energy``, ``goals``), each with its
checks next to its fields; :class:`Experiment` holds them and the checks that span sections. Loading validates
the whole file and raises :class:`ConfigError` naming the file, the field and the fix (:mod:`nas.config.translate`).
Defaults keep a short file working: only ``space`` is required. The experiment is the single source of truth for
each objective's name and direction. Sections are frozen pydantic dataclasses: ``dataclasses.replace`` makes a
validated copy and ``asdict`` a plain dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, field, replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError, ValidationInfo, field_validator, model_validator

from nas.config._schema import Name, check, section
from nas.config.bench import BenchConfig, check_bench
from nas.config.data import DataConfig
from nas.config.energy import EnergyConfig
from nas.config.goals import (
    DEFAULT_OBJECTIVES,
    Constraint,
    Objective,
    check_objectives,
    constraints_input,
    objectives_input,
)
from nas.config.one_shot import OneShotConfig
from nas.config.proxy import PROXY_USES, ProxyConfig
from nas.config.runtime import DEFAULT_TRACKING_URI, ProfileConfig, Resources, TrackingConfig
from nas.config.search import SearchConfig
from nas.config.stopping import EARLY_STOPPING, BudgetConfig, EarlyStoppingConfig, PlateauConfig, check_rungs
from nas.config.surrogate import SurrogateConfig
from nas.config.training import TrainingConfig, training_dimension
from nas.config.translate import INTERNAL_FIELDS, first_problem, to_config_error
from nas.errors import ConfigError

__all__ = [
    "DEFAULT_TRACKING_URI", "EARLY_STOPPING", "PROXY_USES", "BenchConfig", "BudgetConfig", "Constraint", "DataConfig",
    "EarlyStoppingConfig", "EnergyConfig", "Experiment", "Objective", "PlateauConfig", "ProfileConfig", "ProxyConfig",
    "Resources", "SearchConfig", "SurrogateConfig", "TrackingConfig", "TrainingConfig", "load_experiment",
    "parse_experiment", "training_dimension",
]


@section
class Experiment:
    """A validated experiment. ``space`` is an absolute path once loaded; ``source`` the file it came from and
    ``raw`` the mapping as written (both set by the loader, never by the file)."""

    space: Name
    source: str = "<string>"
    name: Name = "nas"
    data: DataConfig = field(default_factory=DataConfig)
    objectives: tuple[Objective, ...] = DEFAULT_OBJECTIVES
    constraints: tuple[Constraint, ...] = ()
    training: TrainingConfig = field(default_factory=TrainingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    resources: Resources = field(default_factory=Resources)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    surrogate: SurrogateConfig = field(default_factory=SurrogateConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    plateau: PlateauConfig = field(default_factory=PlateauConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    one_shot: OneShotConfig | None = None  # set by `search.strategy: one-shot` or a `one_shot:` section
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @field_validator("space", mode="after")
    @classmethod
    def _space_file(cls, space: str, info: ValidationInfo) -> str:
        if (info.context or {}).get("check_files"):
            check(Path(space).is_file(), f"search-space file {space!r} not found",
                  "give the path relative to the experiment file")
        return space

    @field_validator("objectives", mode="before")
    @classmethod
    def _objectives_in(cls, value: Any) -> Any:
        if isinstance(value, tuple) and all(isinstance(o, Objective) for o in value):
            return value
        return objectives_input(value)

    @field_validator("objectives", mode="after")
    @classmethod
    def _objectives(cls, value: tuple[Objective, ...]) -> tuple[Objective, ...]:
        return check_objectives(value)

    @field_validator("constraints", mode="before")
    @classmethod
    def _constraints(cls, value: Any) -> Any:
        return constraints_input(value)

    @model_validator(mode="after")
    def _across_sections(self) -> Experiment:
        check_rungs(self.early_stopping, self.training.epochs)
        check_bench(self)
        if self.search.strategy == "one-shot" and self.one_shot is None:
            object.__setattr__(self, "one_shot", OneShotConfig())
        return self

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name

    def with_overrides(self, **changes: Any) -> Experiment:
        """A copy with ``search``/``tracking`` fields replaced, e.g. ``trials=6, seed=1, tracking_uri=...``; a
        refused value raises :class:`ConfigError` naming the flag."""
        search = {k: v for k, v in changes.items() if k in SearchConfig.__dataclass_fields__ and v is not None}
        exp = replace(self, search=_replaced(self.search, search))
        if changes.get("tracking_uri"):
            exp = replace(exp, tracking=_replaced(exp.tracking, {"uri": changes["tracking_uri"]}))
        return exp

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        return d


def _replaced(section_value: Any, changes: dict[str, Any]) -> Any:
    try:
        return replace(section_value, **changes)
    except ValidationError as err:
        path, problem, fix = first_problem(err, type(section_value))
        flag = "--" + {"uri": "tracking-uri"}.get(path, path).replace("_", "-")
        raise ConfigError(flag, "", problem, f"pass a valid `{flag}` ({fix})") from None


_ADAPTER = TypeAdapter(Experiment)


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read and validate an experiment file. Relative ``space`` paths are resolved against the file's folder.
    Duplicate keys, recursive aliases and malformed YAML are refused like every other mistake."""
    from nas.space.errors import SpaceError
    from nas.space.yamlio import read_yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(p), "", "experiment file not found", "check the path (experiments/*.yaml ship with nas)")
    try:
        data, _ = read_yaml(p)
    except SpaceError as err:  # the space format's reader: same YAML rules, same error fields
        raise ConfigError(err.file, err.path, err.problem, err.fix) from None
    return parse_experiment(data, source=str(p), base_dir=p.parent)


def parse_experiment(data: Any, *, source: str = "<string>", base_dir: str | os.PathLike[str] = ".") -> Experiment:
    """Validate a parsed experiment mapping; see the module docstring."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", f"the top level must be a mapping, not {type(data).__name__}",
                          "write `space: ../search_spaces/cnn.yaml` and other sections as keys")
    doc = {str(k): v for k, v in data.items()}
    for key in INTERNAL_FIELDS:
        if key in doc:
            raise ConfigError(source, key, f"unknown key {key!r}", "remove it (the loader sets it)")
    doc.setdefault("name", Path(source).stem if source != "<string>" else "nas")
    space = doc.get("space")
    if isinstance(space, str) and space and not os.path.isabs(space):
        doc["space"] = str((Path(base_dir) / space).resolve())
    _apply_shorthand(doc, source)
    try:
        return _ADAPTER.validate_python({**doc, "source": source, "raw": dict(data)}, context={"check_files": True})
    except ValidationError as err:
        raise to_config_error(err, source, Experiment) from None


def _apply_shorthand(doc: dict[str, Any], source: str) -> None:
    """``search: {early_stopping: m}`` -> ``early_stopping: {method: m}`` (refused when both disagree)."""
    search, es = doc.get("search"), doc.get("early_stopping")
    shorthand = search.get("early_stopping") if isinstance(search, Mapping) else None
    if not isinstance(shorthand, str) or (es is not None and not isinstance(es, Mapping)):
        return
    es = dict(es or {})
    if es.get("method", shorthand) != shorthand:
        raise ConfigError(source, "search/early_stopping",
                          f"says {shorthand!r} but early_stopping/method says {es['method']!r}", "keep one of the two")
    doc["early_stopping"] = {**es, "method": shorthand}
