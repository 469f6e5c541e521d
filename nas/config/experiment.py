"""Experiment files (``experiments/*.yaml``): what to search, on which data, for which objectives, how.

Loading validates the whole file and raises :class:`ConfigError` naming the file, the field and the fix. Defaults
keep a short file working: only ``space`` is required. The experiment is the single source of truth for each
objective's name and direction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from nas.config.objectives import METRICS, Direction
from nas.cost.energy import EnergyConfig
from nas.errors import ConfigError, did_you_mean

SAMPLERS = ("nsga2", "tpe", "gp", "random")
OPTIMIZERS = ("adam", "adamw", "sgd")
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@dataclass(frozen=True)
class Objective:
    name: str
    direction: Direction


@dataclass(frozen=True)
class Constraint:
    """A hard limit on a metric: ``min <= value <= max`` (either bound may be absent)."""

    metric: str
    min: float | None = None
    max: float | None = None

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the bounds (0 when inside), in the metric's unit."""
        over = value - self.max if self.max is not None else 0.0
        under = self.min - value if self.min is not None else 0.0
        return max(0.0, over, under)


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"
    seed: int = 0
    batch_size: int = 64
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    data_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings. ``lr`` and ``weight_decay`` may be dimensions (a mapping with ``type:``): they are then
    sampled with the architecture, under the names ``train/lr`` and ``train/weight_decay``."""

    epochs: int = 10
    optimizer: str = "adam"
    lr: float | dict[str, Any] = 3e-3
    weight_decay: float | dict[str, Any] = 0.0
    amp: bool = False
    max_seconds: float | None = None


@dataclass(frozen=True)
class SearchConfig:
    """``storage`` is the Optuna study storage: any RDB URL (``sqlite:///...``, ``postgresql://...``) or the path
    of a journal file. Unset, it is the journal file ``optuna.journal`` beside a sqlite tracking store (durable, so
    ``--resume`` works; about 9x faster per trial than sqlite here: see docs/DESIGN.md), and in memory for other
    tracking stores (no resume)."""

    sampler: str = "nsga2"
    trials: int = 20
    concurrency: int = 2
    seed: int = 0
    time_budget_s: float | None = None
    max_failures: int | None = None
    population_size: int | None = None
    max_rejections: int = 1000
    storage: str | None = None
    early_stopping: str | None = None  # shorthand for `early_stopping: {method: ...}`


EARLY_STOPPING = ("none", "pareto-asha", "pareto-promote")
PROXY_USES = ("off", "screen", "prior", "objective")


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """``pareto-asha``: trials are judged at ``rungs`` (epochs; default ``epochs / eta**k``, k >= 1) and go on
    only in the top ``1/eta`` of the non-dominated order at that rung; the first ``grace`` at a rung always go on.
    ``pareto-promote`` (``nas bench``): every trial stops at the one rung; a stopped trial is trained in full later,
    when it is expected to add the most hypervolume and full trainings have used under ``full_share`` of the
    compute, once ``promote_after`` trials reached the rung, among those within its first ``promote_layers``
    non-dominated layers (0: all) (:class:`nas.stopping.promote.Promoter`)."""

    method: str = "none"
    eta: float = 3.0
    rungs: list[int] | None = None
    grace: int = 1
    full_share: float = 0.5
    min_pairs: int = 8
    promote_after: int = 0
    promote_layers: int = 3


@dataclass(frozen=True)
class ProxyConfig:
    """Zero-cost proxies (scores from one batch before training). ``use``: ``off``; ``screen`` (draw
    ``candidates`` from the sampler per trial slot, train the one the proxy predicts most useful to the front);
    ``prior`` (score ``prior_samples`` random architectures and try the best ``prior_top`` first); ``objective``
    (the proxy is an extra objective for the sampler). ``name``: a proxy, or ``auto`` (synflow and naswot, the
    best by online Spearman ρ). A proxy is trusted only once it beats ``params`` on ``min_pairs`` trained trials."""

    use: str = "off"
    name: str = "auto"
    candidates: int = 4
    prior_samples: int = 64
    prior_top: int = 8
    min_pairs: int = 5
    batch_size: int = 64


@dataclass(frozen=True)
class SurrogateConfig:
    """Model-based proposals (:mod:`nas.surrogate`). ``enabled``: after ``warmup`` trials from the sampler, each
    trial slot scores ``candidates`` random architectures (costs profiled, never trained) with a tree-ensemble
    surrogate of the lowest-fidelity accuracy (the first rung's, else the full one), refitted every
    ``refit_every`` trials, and trains the one whose optimistic point (mean + ``kappa`` × spread, its known costs)
    adds most hypervolume to the ``layers``-th non-dominated layer of the trials seen so far."""

    enabled: bool = False
    candidates: int = 512
    layers: int = 3
    warmup: int = 40
    refit_every: int = 8
    kappa: float = 1.0


@dataclass(frozen=True)
class BudgetConfig:
    """Total budgets (the search stops cleanly at the first reached) and per-trial caps (None = none).
    ``trial_tflops`` rejects before training any candidate whose estimated training compute exceeds it;
    ``trial_seconds`` stops a trial's training at that wall time (recorded as failed, reason given)."""

    train_tflops: float | None = None
    device_hours: float | None = None
    wall_hours: float | None = None
    trial_tflops: float | None = None
    trial_seconds: float | None = None


@dataclass(frozen=True)
class PlateauConfig:
    """Stop when the hypervolume gained per evaluation-equivalent of compute over the last ``window``
    finished trials falls below ``threshold`` (a fraction of the front's hypervolume), after ``min_trials``."""

    enabled: bool = False
    window: int = 10
    threshold: float = 0.002
    min_trials: int = 20


@dataclass(frozen=True)
class BenchConfig:
    """``nas bench``: a tabular benchmark that looks metrics up instead of training (nas.bench).

    ``table``: CSV path, relative to the experiment file; ``arch_column`` holds each row's architecture string.
    ``accuracy_columns``: epochs -> column; the largest epochs is the full training (its column is the
    validation accuracy the search sees), the others are the lower fidelities Pareto-ASHA may stop at.
    ``cost_columns``: metric -> column for the costs (every cost objective needs one; extra ones fill the profile).
    ``proxy_columns``: proxy name -> column of precomputed zero-cost scores (higher = better).
    ``test_column``: reported, never shown to the search. ``accuracy_scale`` multiplies accuracies (0.01: % ->
    fraction). ``reference``: hypervolume reference per objective (default: 0 for accuracy, 1.01 × the table's
    largest value for a minimized cost). ``train_samples``: training images per epoch, for simulated FLOPs.
    """

    table: str | None = None
    arch_column: str = "arch_str"
    accuracy_columns: dict[int, str] = field(default_factory=dict)
    cost_columns: dict[str, str] = field(default_factory=dict)
    proxy_columns: dict[str, str] = field(default_factory=dict)
    test_column: str | None = None
    accuracy_scale: float = 1.0
    reference: dict[str, float] = field(default_factory=dict)
    train_samples: int = 25_000


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class ProfileConfig:
    batch_size: int = 1
    device: str = "cpu"
    warmup: int = 2
    repeats: int = 5


@dataclass(frozen=True)
class TrackingConfig:
    uri: str = DEFAULT_TRACKING_URI
    experiment: str | None = None


@dataclass(frozen=True)
class Experiment:
    """A validated experiment. ``space`` is an absolute path; ``source`` the file it came from."""

    space: str
    source: str = "<string>"
    name: str = "nas"
    data: DataConfig = field(default_factory=DataConfig)
    objectives: tuple[Objective, ...] = (Objective("val_accuracy", "maximize"), Objective("mflops", "minimize"))
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
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name

    def with_overrides(self, **changes: Any) -> Experiment:
        """A copy with ``search``/``tracking`` fields replaced, e.g. ``trials=6, seed=1, tracking_uri=...``."""
        search = {k: v for k, v in changes.items() if k in SearchConfig.__dataclass_fields__ and v is not None}
        if search.get("trials") is not None and search["trials"] < 1:
            raise ConfigError("--trials", "", f"must be >= 1, got {search['trials']}", "pass --trials 10")
        exp = replace(self, search=replace(self.search, **search))
        if changes.get("tracking_uri"):
            exp = replace(exp, tracking=replace(exp.tracking, uri=changes["tracking_uri"]))
        return exp

    def study_storage(self) -> str | None:
        """The Optuna storage URL this search uses (see :class:`SearchConfig`); None means in memory."""
        if self.search.storage:
            return self.search.storage
        uri = self.tracking.uri
        if uri.startswith("sqlite:///"):
            db = Path(uri[len("sqlite:///"):]).expanduser().resolve()
            return str(db.parent / "optuna.journal")
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        return d


# ---- parsing -------------------------------------------------------------------------------------------------

_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "training": TrainingConfig,
    "search": SearchConfig,
    "resources": Resources,
    "profile": ProfileConfig,
    "tracking": TrackingConfig,
    "energy": EnergyConfig,
    "early_stopping": EarlyStoppingConfig,
    "proxy": ProxyConfig,
    "surrogate": SurrogateConfig,
    "budget": BudgetConfig,
    "plateau": PlateauConfig,
    "bench": BenchConfig,
}
_TOP_KEYS = ("name", "space", "objectives", "constraints", *_SECTIONS)


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read and validate an experiment file. Relative ``space`` paths are resolved against the file's folder."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(p), "", "experiment file not found", "check the path (experiments/*.yaml ship with nas)")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(p), "", f"malformed YAML{where}: {getattr(e, 'problem', e)}",
                          "fix the YAML syntax (indentation, colons, quotes)") from None
    return parse_experiment(data, source=str(p), base_dir=p.parent)


def parse_experiment(data: Any, *, source: str = "<string>", base_dir: str | os.PathLike[str] = ".") -> Experiment:
    """Validate a parsed experiment mapping; see the module docstring."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", f"the top level must be a mapping, not {type(data).__name__}",
                          "write `space: ../search_spaces/cnn.yaml` and other sections as keys")
    _check_keys(data, _TOP_KEYS, source, "")
    if "space" not in data:
        raise ConfigError(source, "space", "missing required field", "add `space: ../search_spaces/cnn.yaml`")
    space = data["space"]
    if not isinstance(space, str) or not space:
        raise ConfigError(source, "space", "must be a path to a search-space YAML file", "e.g. `space: ../search_spaces/cnn.yaml`")
    space_path = (Path(base_dir) / space).resolve() if not os.path.isabs(space) else Path(space)
    if not space_path.is_file():
        raise ConfigError(source, "space", f"search-space file {str(space_path)!r} not found",
                          "give the path relative to the experiment file")
    sections = {key: _section(data.get(key), cls, source, key) for key, cls in _SECTIONS.items()}
    objectives = _objectives(data.get("objectives"), source)
    constraints = _constraints(data.get("constraints"), source)
    name = data.get("name", Path(source).stem if source != "<string>" else "nas")
    if not isinstance(name, str) or not name:
        raise ConfigError(source, "name", "must be a non-empty string", "e.g. `name: digits-cnn`")
    shorthand = sections["search"].early_stopping
    if shorthand is not None:
        es = data.get("early_stopping") or {}
        if isinstance(es, Mapping) and es.get("method", shorthand) != shorthand:
            raise ConfigError(source, "search/early_stopping",
                              f"says {shorthand!r} but early_stopping/method says {es['method']!r}",
                              "keep one of the two")
        sections["early_stopping"] = replace(sections["early_stopping"], method=shorthand)
    exp = Experiment(space=str(space_path), source=source, name=name, objectives=objectives,
                     constraints=constraints, raw=dict(data), **sections)
    _check_values(exp)
    return exp


def _check_keys(mapping: Mapping[str, Any], allowed: tuple[str, ...] | list[str], source: str, path: str) -> None:
    for key in mapping:
        if key not in allowed:
            where = f"{path}/{key}" if path else str(key)
            raise ConfigError(source, where, f"unknown key {key!r}{did_you_mean(str(key), allowed)}",
                              f"use one of: {', '.join(allowed)}")


_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _section(value: Any, cls: type, source: str, key: str) -> Any:
    if value is None:
        return cls()
    if not isinstance(value, Mapping):
        raise ConfigError(source, key, f"must be a mapping, not {type(value).__name__}", f"write `{key}:` then indented fields")
    fields = cls.__dataclass_fields__
    _check_keys(value, list(fields), source, key)
    kwargs: dict[str, Any] = {}
    for fname, fval in value.items():
        expected = str(fields[fname].type)
        ok = _type_ok(fval, expected)
        if not ok:
            raise ConfigError(source, f"{key}/{fname}", f"expected {expected}, got {fval!r} ({type(fval).__name__})",
                              f"set `{fname}` to a value of type {expected}")
        kwargs[fname] = fval
    try:
        return cls(**kwargs)
    except ValueError as e:  # a section's own checks (e.g. EnergyConfig: pue >= 1)
        raise ConfigError(source, key, str(e), f"fix the value under `{key}:`") from None


def _type_ok(value: Any, annotation: str) -> bool:
    if value is None:
        return "None" in annotation
    if isinstance(value, bool):
        return "bool" in annotation
    if isinstance(value, Mapping):
        return "dict" in annotation
    if isinstance(value, list):
        return "list[int]" in annotation and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return any(isinstance(value, _TYPES[t]) for t in _TYPES if t in annotation.replace("dict[str, Any]", ""))


def _objectives(value: Any, source: str) -> tuple[Objective, ...]:
    if value is None:
        return Experiment.__dataclass_fields__["objectives"].default
    if not isinstance(value, list) or not value:
        raise ConfigError(source, "objectives", "must be a non-empty list",
                          "e.g. `objectives: [{name: val_accuracy, direction: maximize}, {name: mflops, direction: minimize}]`")
    out: list[Objective] = []
    for i, item in enumerate(value):
        path = f"objectives/{i}"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping):
            raise ConfigError(source, path, "each objective must be a mapping with `name` and `direction`",
                              "e.g. `{name: mflops, direction: minimize}`")
        _check_keys(item, ("name", "direction"), source, path)
        name = item.get("name")
        if name not in METRICS:
            raise ConfigError(source, f"{path}/name", f"no part of nas produces the metric {name!r}{did_you_mean(str(name), METRICS)}",
                              f"use one of: {', '.join(METRICS)}")
        direction = item.get("direction", METRICS[name].natural_direction)
        if direction not in ("maximize", "minimize"):
            raise ConfigError(source, f"{path}/direction", f"unknown direction {direction!r}", "use `maximize` or `minimize`")
        if any(o.name == name for o in out):
            raise ConfigError(source, f"{path}/name", f"objective {name!r} is listed twice", "list each objective once")
        out.append(Objective(name, direction))
    if len(out) < 2:
        raise ConfigError(source, "objectives", "a multi-objective search needs at least two objectives",
                          "add a cost objective, e.g. `{name: mflops, direction: minimize}`")
    return tuple(out)


def _constraints(value: Any, source: str) -> tuple[Constraint, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(source, "constraints", "must be a mapping metric -> {max: ..., min: ...}", "e.g. `constraints: {mflops: {max: 5}}`")
    out = []
    for metric, bounds in value.items():
        path = f"constraints/{metric}"
        if metric not in METRICS:
            raise ConfigError(source, path, f"unknown metric {metric!r}{did_you_mean(str(metric), METRICS)}",
                              f"constrain one of: {', '.join(METRICS)}")
        if not isinstance(bounds, Mapping) or not bounds:
            raise ConfigError(source, path, "must be a mapping with `max` and/or `min`", f"e.g. `{metric}: {{max: 5}}`")
        _check_keys(bounds, ("min", "max"), source, path)
        for k, b in bounds.items():
            if isinstance(b, bool) or not isinstance(b, (int, float)):
                raise ConfigError(source, f"{path}/{k}", f"bound must be a number, got {b!r}", f"e.g. `{k}: 5`")
        lo, hi = bounds.get("min"), bounds.get("max")
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(source, path, f"min ({lo}) is greater than max ({hi})", "swap them or widen the range")
        out.append(Constraint(metric, None if lo is None else float(lo), None if hi is None else float(hi)))
    return tuple(out)


def _check_values(exp: Experiment) -> None:
    s, src = exp.search, exp.source
    checks: list[tuple[bool, str, str, str]] = [
        (s.sampler in SAMPLERS, "search/sampler", f"unknown sampler {s.sampler!r}{did_you_mean(s.sampler, SAMPLERS)}",
         f"use one of: {', '.join(SAMPLERS)}"),
        (s.trials >= 1, "search/trials", f"must be >= 1, got {s.trials}", "set `trials: 20`"),
        (s.concurrency >= 1, "search/concurrency", f"must be >= 1, got {s.concurrency}", "set `concurrency: 2`"),
        (s.time_budget_s is None or s.time_budget_s > 0, "search/time_budget_s", "must be positive", "remove it or set seconds > 0"),
        (s.max_failures is None or s.max_failures >= 0, "search/max_failures", "must be >= 0", "remove it or set a count"),
        (exp.training.epochs >= 1, "training/epochs", f"must be >= 1, got {exp.training.epochs}", "set `epochs: 10`"),
        (exp.training.optimizer in OPTIMIZERS, "training/optimizer",
         f"unknown optimizer {exp.training.optimizer!r}{did_you_mean(exp.training.optimizer, OPTIMIZERS)}",
         f"use one of: {', '.join(OPTIMIZERS)}"),
        (exp.data.batch_size >= 1, "data/batch_size", "must be >= 1", "set `batch_size: 64`"),
        (0 < exp.data.val_fraction < 1, "data/val_fraction", "must be in (0, 1)", "set `val_fraction: 0.2`"),
        (0 <= exp.data.test_fraction < 1 and exp.data.val_fraction + exp.data.test_fraction < 1, "data/test_fraction",
         "val_fraction + test_fraction must leave training data", "lower the fractions"),
        (exp.resources.cpu > 0, "resources/cpu", "must be > 0", "set `cpu: 1`"),
        (0 <= exp.resources.gpu, "resources/gpu", "must be >= 0", "set `gpu: 0` or a fraction like 0.25"),
        (exp.profile.batch_size >= 1, "profile/batch_size", "must be >= 1", "set `batch_size: 1`"),
    ]
    for ok, path, problem, fix in checks + _cheap_checks(exp) + _bench_checks(exp):
        if not ok:
            raise ConfigError(src, path, problem, fix)
    for key in ("lr", "weight_decay"):
        v = getattr(exp.training, key)
        if isinstance(v, Mapping) and "type" not in v:
            raise ConfigError(src, f"training/{key}", "a mapping here must be a dimension with `type:`",
                              f"e.g. `{key}: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}`")
        if isinstance(v, Mapping):
            training_dimension(v, key, src)  # validated by the space format's own rules (SpaceError)


def _cheap_checks(exp: Experiment) -> list[tuple[bool, str, str, str]]:
    """Checks of the early-stopping, proxy, budget and plateau sections."""
    from nas.proxies import proxy_names

    es, px, b, pl, sg = exp.early_stopping, exp.proxy, exp.budget, exp.plateau, exp.surrogate
    rungs = es.rungs or []
    checks: list[tuple[bool, str, str, str]] = [
        (es.method in EARLY_STOPPING, "early_stopping/method",
         f"unknown method {es.method!r}{did_you_mean(es.method, EARLY_STOPPING)}", f"use one of: {', '.join(EARLY_STOPPING)}"),
        (es.eta > 1, "early_stopping/eta", f"must be > 1, got {es.eta}", "set `eta: 3`"),
        (es.grace >= 1, "early_stopping/grace", f"must be >= 1, got {es.grace}", "set `grace: 1`"),
        (all(isinstance(r, int) and not isinstance(r, bool) and 1 <= r < exp.training.epochs for r in rungs),
         "early_stopping/rungs", f"rungs are epochs in [1, training.epochs={exp.training.epochs}), got {rungs}",
         "e.g. `rungs: [1, 3]` for 9 epochs, or leave it out for epochs/eta^k"),
        (es.method == "none" or exp.training.epochs >= 2, "training/epochs",
         "pareto-asha needs at least 2 epochs to stop anything early", "raise `training.epochs` or drop early stopping"),
        (px.use in PROXY_USES, "proxy/use", f"unknown use {px.use!r}{did_you_mean(px.use, PROXY_USES)}",
         f"use one of: {', '.join(PROXY_USES)}"),
        (px.name == "auto" or px.name in proxy_names(), "proxy/name",
         f"unknown proxy {px.name!r}{did_you_mean(px.name, proxy_names())}", f"use auto or one of: {', '.join(proxy_names())}"),
        (not (px.use == "objective" and px.name == "auto"), "proxy/name",
         "an objective needs one fixed proxy, not auto", "name one, e.g. `name: naswot`"),
        (px.candidates >= 1, "proxy/candidates", f"must be >= 1, got {px.candidates}", "set `candidates: 4`"),
        (px.prior_samples >= px.prior_top >= 1, "proxy/prior_top", "need prior_samples >= prior_top >= 1",
         "e.g. `prior_samples: 64, prior_top: 8`"),
        (px.min_pairs >= 2, "proxy/min_pairs", f"must be >= 2, got {px.min_pairs}", "set `min_pairs: 5`"),
        (px.batch_size >= 2, "proxy/batch_size", f"must be >= 2, got {px.batch_size}", "set `batch_size: 64`"),
        (es.method != "pareto-promote" or len(rungs) == 1, "early_stopping/rungs",
         f"pareto-promote stops every trial at one rung; got {rungs or 'none'}", "set one rung, e.g. `rungs: [12]`"),
        (0 < es.full_share < 1, "early_stopping/full_share", f"must be in (0, 1), got {es.full_share}",
         "set `full_share: 0.5`"),
        (es.min_pairs >= 2, "early_stopping/min_pairs", f"must be >= 2, got {es.min_pairs}", "set `min_pairs: 8`"),
        (es.promote_after >= 0, "early_stopping/promote_after", f"must be >= 0, got {es.promote_after}",
         "set `promote_after: 0`"),
        (es.promote_layers >= 0, "early_stopping/promote_layers", f"must be >= 0, got {es.promote_layers}",
         "set `promote_layers: 3` (0: no filter)"),
        (sg.candidates >= 1, "surrogate/candidates", f"must be >= 1, got {sg.candidates}", "set `candidates: 512`"),
        (sg.layers >= 1, "surrogate/layers", f"must be >= 1, got {sg.layers}", "set `layers: 3`"),
        (sg.warmup >= 2, "surrogate/warmup", f"must be >= 2, got {sg.warmup}", "set `warmup: 40`"),
        (sg.refit_every >= 1, "surrogate/refit_every", f"must be >= 1, got {sg.refit_every}", "set `refit_every: 8`"),
        (sg.kappa >= 0, "surrogate/kappa", f"must be >= 0, got {sg.kappa}", "set `kappa: 1.0`"),
        (pl.window >= 1, "plateau/window", f"must be >= 1, got {pl.window}", "set `window: 10`"),
        (pl.threshold >= 0, "plateau/threshold", f"must be >= 0, got {pl.threshold}", "set `threshold: 0.002`"),
    ]
    for key in ("train_tflops", "device_hours", "wall_hours", "trial_tflops", "trial_seconds"):
        v = getattr(b, key)
        checks.append((v is None or v > 0, f"budget/{key}", f"must be > 0, got {v}", f"remove it or set `{key}` > 0"))
    return checks


def _bench_checks(exp: Experiment) -> list[tuple[bool, str, str, str]]:
    """Checks of the ``bench:`` section (only when it names a table); the columns are checked on loading it."""
    b = exp.bench
    if b.table is None:
        return []
    epochs = list(b.accuracy_columns)
    ok_epochs = bool(epochs) and all(isinstance(e, int) and not isinstance(e, bool) and e >= 1 for e in epochs)
    full = max(epochs) if ok_epochs else None
    named = {**b.accuracy_columns, **b.cost_columns, **b.proxy_columns}
    train = [o for o in exp.objectives if METRICS[o.name].source == "train"]
    costs = [o.name for o in exp.objectives if METRICS[o.name].source != "train"]
    rungs = exp.early_stopping.rungs or []
    checks: list[tuple[bool, str, str, str]] = [
        (isinstance(b.table, str) and bool(b.table), "bench/table", "must be a CSV path",
         "e.g. `table: ../benchmarks/data/nb201/nb201_cifar10.csv`"),
        (ok_epochs, "bench/accuracy_columns", f"must map epochs (ints >= 1) to columns, got {b.accuracy_columns}",
         "e.g. `accuracy_columns: {200: cifar10_valid_acc, 12: cifar10_test_acc_12ep}`"),
        (all(isinstance(v, str) and v for v in named.values()), "bench", "every column must be a non-empty string",
         "name the CSV columns, e.g. `cost_columns: {mflops: flops_M}`"),
        (all(k in METRICS and METRICS[k].source == "profile" for k in b.cost_columns), "bench/cost_columns",
         f"keys must be cost metrics, got {list(b.cost_columns)}",
         f"use: {', '.join(k for k, m in METRICS.items() if m.source == 'profile')}"),
        (len(train) == 1 and train[0].direction == "maximize", "objectives",
         "a bench search needs exactly one maximized accuracy objective", "keep `{name: val_accuracy}`"),
        (all(c in b.cost_columns for c in costs), "bench/cost_columns",
         f"every cost objective needs a column: missing {[c for c in costs if c not in b.cost_columns]}",
         "add e.g. `mflops: flops_M` under bench/cost_columns"),
        (full is None or exp.training.epochs == full, "training/epochs",
         f"is {exp.training.epochs}, but the table's full training is {full} epochs",
         f"set `training.epochs: {full}`"),
        (exp.early_stopping.method == "none" or (bool(rungs) and all(r in epochs for r in rungs)),
         "early_stopping/rungs", f"rungs must be epochs the table has an accuracy for ({epochs}), got {rungs or 'default'}",
         f"set `rungs:` to some of {sorted(e for e in epochs if e != full)}"),
        (exp.proxy.use == "off" or "params" in b.proxy_columns, "bench/proxy_columns",
         "proxy screening needs the `params` baseline among the proxy columns", "add `params: params_M`"),
        (exp.proxy.use == "off" or exp.proxy.name in ("auto", *b.proxy_columns), "proxy/name",
         f"{exp.proxy.name!r} has no column under bench/proxy_columns", "add it there or use `name: auto`"),
        (b.accuracy_scale > 0, "bench/accuracy_scale", f"must be > 0, got {b.accuracy_scale}", "e.g. 0.01 for %"),
        (b.train_samples >= 1, "bench/train_samples", f"must be >= 1, got {b.train_samples}", "e.g. 25000"),
        (all(k in {o.name for o in exp.objectives} for k in b.reference), "bench/reference",
         f"keys must be objectives, got {list(b.reference)}", "e.g. `reference: {val_accuracy: 0.8}`"),
    ]
    return checks


def training_dimension(spec: Mapping[str, Any], key: str, source: str = "<string>") -> Any:
    """A training setting given as a dimension, parsed by the search-space rules and named ``train/<key>``."""
    from nas.space.dimparse import parse_dimension

    return replace(parse_dimension(spec, f"training/{key}", source), name=f"train/{key}")
