"""The search controller: an Optuna multi-objective study that proposes architectures and learns from results.

Each proposal is sampled from the space, built and profiled. Hard constraints are checked on the profile BEFORE any
training: an infeasible candidate is told to Optuna at once (objective values from its profile, accuracy at its
worst, a positive constraint violation for the constrained samplers) and is never trained. Nothing here imports
Ray or MLflow; the runner drives it from the Ray driver process.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import get_lock_file  # the lock Optuna's own append takes
from optuna.trial import TrialState

from nas.builders import build
from nas.config.experiment import Experiment, training_dimension
from nas.config.objectives import METRICS, float32_size_mb, sign
from nas.durable.locks import store_lock
from nas.errors import ConfigError
from nas.pareto import default_reference
from nas.profile import Profile, profile_model, training_flops
from nas.proxies import ProxyRanker
from nas.proxies.screen import pick_candidate, predict_accuracy
from nas.space import Space
from nas.stopping.asha import experiment_rungs, order
from nas.surrogate.propose import SurrogateProposer

log = logging.getLogger(__name__)

STATUS_ATTR = "nas_status"
REASON_ATTR = "nas_reason"
SAVED_ATTR = "nas_saved_train_flops"
RECORD_ATTR = "nas_record"  # the trial's record as JSON: the durable ledger a resumed search rebuilds from


def _nsga2(exp: Experiment) -> optuna.samplers.BaseSampler:
    pop = exp.search.population_size or max(8, min(50, exp.search.trials // 3))
    return optuna.samplers.NSGAIISampler(population_size=pop, seed=exp.search.seed)


SAMPLERS: dict[str, Callable[[Experiment], optuna.samplers.BaseSampler]] = {
    "nsga2": _nsga2,
    "tpe": lambda exp: optuna.samplers.TPESampler(
        seed=exp.search.seed, multivariate=True, constant_liar=True,
        n_startup_trials=max(4, min(10, exp.search.trials // 3)),
    ),
    "gp": lambda exp: optuna.samplers.GPSampler(seed=exp.search.seed),
    "random": lambda exp: optuna.samplers.RandomSampler(seed=exp.search.seed),
}


def open_storage(storage: str | optuna.storages.BaseStorage | None) -> str | optuna.storages.BaseStorage | None:
    """An Optuna storage from ``search.storage``: an RDB URL as is, any other string as a journal file path.

    The journal is written under Optuna's file lock (safe for several processes) and flushed to the OS at every
    append, without Optuna's per-append ``fsync``: it survives the death of any process (a ``kill -9`` of the
    driver loses nothing) but not a power cut, the same guarantee as the tracking store's WAL mode. That takes the
    study's cost from ~31 to a few ms per trial (docs/DESIGN.md).
    """
    if storage is None or not isinstance(storage, str) or "://" in storage:
        return storage
    return JournalStorage(_FlushedJournalFile(storage))


class _FlushedJournalFile(JournalFileBackend):
    """Optuna's journal file backend, appending under its lock, flushed but not fsynced (see open_storage)."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with get_lock_file(self._lock), open(self._file_path, "ab") as f:
            f.write(text.encode("utf-8"))
            f.flush()


def make_sampler(exp: Experiment) -> optuna.samplers.BaseSampler:
    """The sampler named by ``search.sampler``, seeded. NSGA-II, TPE and GP read each trial's constraint values
    (``Trial.set_constraint``; feasible when all are <= 0) and prefer feasible trials."""
    return SAMPLERS[exp.search.sampler](exp)


@dataclass(frozen=True)
class Candidate:
    """A feasible, profiled architecture ready to train, or (``error`` set, ``profile`` None) one that could not
    be built or profiled: already told to Optuna as failed, to be recorded as a failed trial."""

    number: int
    params: dict[str, Any]
    training: dict[str, Any]
    profile: Profile | None
    propose_seconds: float
    error: str = ""
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class ControllerStats:
    """Running counts. ``rejected_saved_train_flops`` estimates the training compute that constraint checks saved:
    3 × forward FLOPs × samples the rejected candidates would have seen."""

    proposed: int = 0
    rejected: int = 0
    rejected_saved_train_flops: float = 0.0
    told_complete: int = 0
    told_failed: int = 0
    told_pruned: int = 0
    screened_out: int = 0
    proxy_seconds: float = 0.0
    sampler_seconds: float = 0.0
    profile_seconds: float = 0.0
    rejections_by_metric: dict[str, int] = field(default_factory=dict)


class NoFeasibleCandidateError(RuntimeError):
    """The space kept producing candidates that break the hard constraints."""


class Controller:
    """Proposes feasible candidates and tells Optuna the outcomes.

    ``input_shape``/``num_classes`` come from the data. ``train_samples_per_trial`` (epochs × training-set size)
    is used only to estimate the compute a rejection saved. Not thread-safe: call from one thread.

    ``profiler`` replaces build + fvcore (the tabular backend looks costs up instead); ``scorer`` gives an
    architecture's zero-cost proxy scores (``{"synflow": ..., "params": ...}``, higher = better); without one,
    ``experiment.proxy`` is ignored (a controller that only profiles, e.g. for the feasibility check).
    ``reference`` (the hypervolume reference) is used by screening.
    """

    def __init__(
        self,
        experiment: Experiment,
        space: Space,
        *,
        input_shape: tuple[int, ...],
        num_classes: int,
        train_samples_per_trial: int,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        profiler: Callable[[Mapping[str, Any]], Profile] | None = None,
        scorer: Callable[[Mapping[str, Any]], dict[str, float]] | None = None,
        reference: Mapping[str, float] | None = None,
    ) -> None:
        self.exp, self.space = experiment, space
        self.profiler, self.scorer = profiler, scorer
        self.reference = dict(reference) if reference else None
        self.ranker = ProxyRanker()
        self.observed: list[dict[str, float]] = []  # objective rows of complete trials, for screening
        self._scores: dict[int, dict[str, float]] = {}
        self._accuracies: dict[int, float] = {}
        px = experiment.proxy
        self.proxy_objective = px.name if px.use == "objective" and scorer is not None else None
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.train_samples_per_trial = train_samples_per_trial
        self.stats = ControllerStats()
        with store_lock(storage if isinstance(storage, str) else None):  # a new sqlite file migrates once
            self.study = optuna.create_study(
                directions=[o.direction for o in experiment.objectives] + ["maximize"] * bool(self.proxy_objective),
                sampler=make_sampler(experiment),
                storage=open_storage(storage),
                study_name=study_name,
                load_if_exists=study_name is not None,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.set_metric_names([o.name for o in experiment.objectives]
                                        + [f"proxy_{self.proxy_objective}"] * bool(self.proxy_objective))
        self._live: dict[int, optuna.Trial] = {}
        self._profiles: dict[str, Profile] = {}  # by architecture (params as sorted JSON)
        self._arch: dict[int, tuple[dict[str, Any], Profile]] = {}  # trial -> (params, profile), while in flight
        es = experiment.early_stopping
        self._rungs = experiment_rungs(es.method, es.rungs, experiment.training.epochs, es.eta)
        acc = self._accuracy_objective()
        self.surrogate = SurrogateProposer(
            space, experiment.surrogate, [(o.name, o.direction) for o in experiment.objectives], acc[0],
            reference, self._costs_if_feasible, experiment.search.seed,
        ) if experiment.surrogate.enabled and acc is not None else None

    # -- proposing ---------------------------------------------------------------------------------------------

    def propose(self, fixed: Mapping[str, Any] | None = None) -> Candidate:
        """``fixed``: train exactly these architecture params next (e.g. a promotion), as a new trial.

        Otherwise, with ``surrogate.enabled`` and past its warm-up, the surrogate's choice is the next trial.
        Else: ask until a candidate meets every hard constraint; rejected ones are told to Optuna, never trained.

        A candidate that cannot be built or profiled (e.g. too small an input for its strides) comes back with
        ``error`` set, already told to Optuna as failed. With ``proxy.use: screen``, ``proxy.candidates`` feasible
        candidates are drawn and the one :func:`pick_candidate` prefers is returned; the others are told to
        Optuna as pruned (status ``screened``), never trained.
        """
        if fixed is None and self.surrogate is not None:
            fixed = self.surrogate.propose()
        if fixed is not None:
            self.study.enqueue_trial(dict(fixed))
            return self._remember(self._propose_one())
        px = self.exp.proxy
        k = px.candidates if px.use == "screen" and self.scorer is not None else 1
        pool: list[Candidate] = []
        while len(pool) < k:
            cand = self._propose_one()
            if cand.error:
                if pool:  # keep the feasible ones drawn so far; the unbuildable one is already told as failed
                    break
                return cand
            pool.append(self._with_scores(cand) if self.scorer is not None else cand)
        if len(pool) == 1:
            return self._remember(pool[0])
        chosen = self._screen(pool)
        for c in pool:
            if c is not chosen:
                self.tell_pruned(c.number, f"screened out by proxy {self.active_proxy()} before training",
                                 status="screened")
                self.stats.screened_out += 1
        return self._remember(chosen)

    def _remember(self, cand: Candidate) -> Candidate:
        if cand.profile is not None and not cand.error:
            self._arch[cand.number] = (dict(cand.params), cand.profile)
            if self.surrogate is not None:
                self.surrogate.mark(cand.params)
        return cand

    def _costs_if_feasible(self, params: Mapping[str, Any]) -> dict[str, float] | None:
        """The cost objectives of ``params`` (profiled, cached), or None if it cannot be built or breaks a hard
        constraint: what the surrogate may propose."""
        try:
            profile = self.profile(params)
            if any(v > 0 for v in self._violations(profile).values()):
                return None
            return self.costs(profile)
        except Exception:
            return None

    def costs(self, profile: Profile) -> dict[str, float]:
        """The cost objectives (everything but the trained metrics) of a profiled candidate."""
        return {o.name: self.metric_value(profile, o.name) for o in self.exp.objectives
                if METRICS[o.name].source != "train"}

    def _violations(self, profile: Profile) -> dict[str, float]:
        """Each hard constraint's violation (> 0: broken), ``trial_tflops`` included when capped."""
        violations = {c.metric: c.violation(self.metric_value(profile, c.metric)) for c in self.exp.constraints}
        cap = self.exp.budget.trial_tflops
        if cap is not None:
            violations["trial_tflops"] = max(0.0, self.train_flops(profile) / 1e12 - cap)
        return violations

    def observe_rung(self, number: int, accuracy: float) -> None:
        """Trial ``number``'s accuracy at the first early-stopping rung: what the surrogate learns under early
        stopping (without early stopping it learns the full accuracies given to :meth:`tell`)."""
        if self.surrogate is None or number not in self._arch:
            return
        params, profile = self._arch[number]
        self.surrogate.observe(params, float(accuracy), self.costs(profile))

    def _propose_one(self) -> Candidate:
        for _ in range(self.exp.search.max_rejections):
            t0 = time.perf_counter()
            trial = self.study.ask()
            params = self.space.sample(trial)
            training = self._sample_training(trial)
            t1 = time.perf_counter()
            try:
                profile = self.profile(params)
            except Exception as e:  # the architecture cannot be built for this input: a failed trial
                self.stats.sampler_seconds += t1 - t0
                self.stats.proposed += 1
                reason = f"cannot build or profile this architecture: {type(e).__name__}: {e}"
                self._live[trial.number] = trial
                self.tell_failed(trial.number, reason)
                return Candidate(trial.number, params, training, None, time.perf_counter() - t0, error=reason)
            t2 = time.perf_counter()
            self.stats.sampler_seconds += t1 - t0
            self.stats.profile_seconds += t2 - t1
            self.stats.proposed += 1
            violations = self._violations(profile)
            for metric, v in violations.items():
                trial.set_constraint(metric, v)
            if any(v > 0 for v in violations.values()):
                self._reject(trial, profile, violations)
                continue
            self._live[trial.number] = trial
            return Candidate(trial.number, params, training, profile, t2 - t0)
        raise NoFeasibleCandidateError(
            f"{self.exp.source}: constraints: {self.exp.search.max_rejections} candidates in a row broke the hard "
            f"constraints ({self._rejection_summary()}). Fix: loosen `constraints`"
            + (" or `budget.trial_tflops`" if "trial_tflops" in self.stats.rejections_by_metric else "")
            + f" or narrow the space {self.space.source} towards smaller models"
        )

    def train_flops(self, profile: Profile) -> float:
        """Estimated training FLOPs of a full training of a profiled candidate (3 × forward × samples)."""
        return training_flops(profile.mflops * 1e6, self.train_samples_per_trial)

    # -- proxies -----------------------------------------------------------------------------------------------

    def _with_scores(self, cand: Candidate) -> Candidate:
        assert self.scorer is not None
        t0 = time.perf_counter()
        try:
            scores = {k: float(v) for k, v in self.scorer(cand.params).items()}
        except Exception as e:  # a proxy that fails says nothing about this candidate
            log.warning("proxy scoring failed for trial %d: %s", cand.number, e)
            scores = {}
        self.stats.proxy_seconds += time.perf_counter() - t0
        self._scores[cand.number] = scores
        trial = self._live[cand.number]
        for k, v in scores.items():
            trial.set_user_attr(f"proxy_{k}", v)
        return Candidate(cand.number, cand.params, cand.training, cand.profile, cand.propose_seconds, scores=scores)

    def active_proxy(self) -> str:
        """The proxy trusted now: the configured one (or, for ``auto``, the best seen) when it beats ``params``
        by online Spearman ρ over at least ``proxy.min_pairs`` trained trials; ``params`` otherwise."""
        return self.ranker.best_proxy(min_pairs=self.exp.proxy.min_pairs)

    def proxy_correlations(self) -> dict[str, float]:
        """Each proxy's Spearman ρ with trained accuracy so far (NaN until defined)."""
        return self.ranker.correlations()

    @property
    def accuracy_name(self) -> str | None:
        """The maximized accuracy objective, if the experiment has exactly one."""
        acc = self._accuracy_objective()
        return acc[0] if acc else None

    def _accuracy_objective(self) -> tuple[str, str] | None:
        train = [(o.name, o.direction) for o in self.exp.objectives if METRICS[o.name].source == "train"]
        return train[0] if len(train) == 1 and train[0][1] == "maximize" else None

    def _screen(self, pool: list[Candidate]) -> Candidate:
        acc = self._accuracy_objective()
        name = self.active_proxy()
        pairs = [(self._scores[n].get(name, math.nan), a) for n, a in self._pairs() if n in self._scores]
        pairs = [(s, a) for s, a in pairs if math.isfinite(s)]
        if acc is None or len(pairs) < self.exp.proxy.min_pairs:
            return pool[0]  # no evidence yet: the sampler's own choice
        predicted = predict_accuracy(pairs, [c.scores.get(name, math.nan) for c in pool])
        rows = []
        for c, p in zip(pool, predicted, strict=True):
            assert c.profile is not None
            row = {o.name: self.metric_value(c.profile, o.name) for o in self.exp.objectives if o.name != acc[0]}
            rows.append({**row, acc[0]: p})
        objectives = [(o.name, o.direction) for o in self.exp.objectives]
        best, _ = pick_candidate(rows, self.observed, objectives, self.reference or default_reference(rows + self.observed, objectives))
        return pool[best]

    def _pairs(self) -> list[tuple[int, float]]:
        acc = self._accuracy_objective()
        if acc is None:
            return []
        return list(self._accuracies.items())

    def seed_prior(self) -> int:
        """``proxy.use: prior``: score ``prior_samples`` seeded random feasible architectures and enqueue the
        ``prior_top`` that best cover (proxy score, costs) as the sampler's first trials. Returns how many."""
        px = self.exp.proxy
        if px.use != "prior" or self.scorer is None or len(self.study.trials) > 0:
            return 0
        rows, params_list = [], []
        t0 = time.perf_counter()
        for i in range(px.prior_samples):
            params = self.space.sample_random(30_000 + self.exp.search.seed * 1_000 + i)
            try:
                profile = self.profile(params)
                scores = self.scorer(params)
            except Exception:
                continue
            if any(c.violation(self.metric_value(profile, c.metric)) > 0 for c in self.exp.constraints):
                continue
            name = px.name if px.name != "auto" else "naswot" if "naswot" in scores else next(iter(scores))
            row = {o.name: self.metric_value(profile, o.name) for o in self.exp.objectives
                   if METRICS[o.name].source == "profile"}
            rows.append({**row, "proxy": scores.get(name, math.nan)})
            params_list.append(params)
        self.stats.proxy_seconds += time.perf_counter() - t0
        objectives = [(k, d) for k, d in [(o.name, o.direction) for o in self.exp.objectives] if k in (rows[0] if rows else {})]
        losses = np.array([[sign(d) * r[k] for k, d in [*objectives, ("proxy", "maximize")]] for r in rows])
        chosen = order(losses)[: px.prior_top] if rows else []
        for i in chosen:
            self.study.enqueue_trial(params_list[i], skip_if_exists=True)
        return len(chosen)

    def check_feasible(self, samples: int = 64, max_seconds: float = 20.0) -> None:
        """Refuse constraints that no architecture of the space meets, before anything is written or trained:
        profile up to ``samples`` seeded random architectures and raise ConfigError when none is feasible."""
        if not self.exp.constraints:
            return
        start, tried, closest = time.perf_counter(), 0, {}
        for i in range(samples):
            try:
                profile = self.profile(self.space.sample_random(20_000 + i))
            except Exception:  # unbuildable samples are a trial-time failure, not a constraint problem
                continue
            tried += 1
            values = {c.metric: self.metric_value(profile, c.metric) for c in self.exp.constraints}
            if all(c.violation(values[c.metric]) == 0 for c in self.exp.constraints):
                return
            for m, v in values.items():
                closest[m] = min(closest.get(m, v), v)
            if time.perf_counter() - start > max_seconds:
                break
        if tried == 0:
            return
        raise ConfigError(
            self.exp.source, "constraints",
            f"none of {tried} random architectures of {self.space.source} meets the constraints "
            f"(smallest values seen: {', '.join(f'{m}={v:.4g}' for m, v in closest.items())})",
            "loosen the bounds in `constraints` or give the space smaller architectures",
        )

    def profile(self, params: Mapping[str, Any]) -> Profile:
        """The candidate's profile; an architecture seen before (categorical spaces repeat them) is not rebuilt."""
        key = json.dumps(dict(params), sort_keys=True, default=str)
        if key not in self._profiles:
            self._profiles[key] = self._measure(params)
        return self._profiles[key]

    def _measure(self, params: Mapping[str, Any]) -> Profile:
        if self.profiler is not None:
            return self.profiler(params)
        model = build(self.space, params, input_shape=self.input_shape, num_classes=self.num_classes)
        p = self.exp.profile
        # Latency and memory are measured here, on the driver's critical path, only when an objective or
        # constraint needs them before training; otherwise the trial measures latency on its own device after
        # training (nas/trial.py), so every child run still records it.
        names = self._metric_names()
        return profile_model(
            model, self.input_shape, device=p.device, batch_size=p.batch_size, warmup=p.warmup, repeats=p.repeats,
            measure_latency="latency_ms" in names, measure_memory="peak_mem_mb" in names,
        )

    def _metric_names(self) -> list[str]:
        return [o.name for o in self.exp.objectives] + [c.metric for c in self.exp.constraints]

    @staticmethod
    def metric_value(profile: Profile, name: str) -> float:
        if name == "size_mb":  # float32 weights; the trial measures the real file size after training/compression
            return float32_size_mb(profile.params)
        value = getattr(profile, name)
        if value is None:
            raise ValueError(f"metric {name!r} is not measurable here (profiling returned None)")
        return float(value)

    def _sample_training(self, trial: optuna.Trial) -> dict[str, Any]:
        t = self.exp.training
        caps = [c for c in (t.max_seconds, self.exp.budget.trial_seconds) if c is not None]
        out: dict[str, Any] = {"epochs": t.epochs, "optimizer": t.optimizer, "amp": t.amp,
                               "max_seconds": min(caps) if caps else None}
        for key in ("lr", "weight_decay"):
            v = getattr(t, key)
            out[key] = training_dimension(v, key, self.exp.source).suggest(trial) if isinstance(v, Mapping) else v
        return out

    def _reject(self, trial: optuna.Trial, profile: Profile, violations: dict[str, float]) -> None:
        self.stats.rejected += 1
        for m, v in violations.items():
            if v > 0:
                self.stats.rejections_by_metric[m] = self.stats.rejections_by_metric.get(m, 0) + 1
        saved = self.train_flops(profile)
        self.stats.rejected_saved_train_flops += saved
        trial.set_user_attr(SAVED_ATTR, saved)
        trial.set_user_attr(STATUS_ATTR, "infeasible")
        trial.set_user_attr(REASON_ATTR, ", ".join(f"{m} exceeds its bound by {v:.4g}" for m, v in violations.items() if v > 0))
        values = [
            0.0 if METRICS[o.name].source == "train" else self.metric_value(profile, o.name) for o in self.exp.objectives
        ] + [-1e300] * bool(self.proxy_objective)
        self.study.tell(trial, values)
        log.debug("trial %d rejected before training: %s", trial.number, violations)

    def _rejection_summary(self) -> str:
        return ", ".join(f"{m}: {n}" for m, n in sorted(self.stats.rejections_by_metric.items())) or "none"

    # -- learning ----------------------------------------------------------------------------------------------

    def tell(self, number: int, metrics: Mapping[str, float], record: str | None = None) -> None:
        """Tell Optuna a finished trial's objective values (looked up by objective name in ``metrics``);
        ``record`` (JSON) is stored with it so a resumed search can rebuild the trial."""
        trial = self._live.pop(number)
        trial.set_user_attr(STATUS_ATTR, "complete")
        if record is not None:
            trial.set_user_attr(RECORD_ATTR, record)
        values = [float(metrics[o.name]) for o in self.exp.objectives]
        if self.proxy_objective:
            values.append(self._scores.get(number, {}).get(self.proxy_objective, float("nan")))
            if not math.isfinite(values[-1]):
                values[-1] = -1e300  # a failed proxy: worst possible, not a crash
        self.study.tell(trial, values)
        self.stats.told_complete += 1
        self.observed.append({o.name: float(metrics[o.name]) for o in self.exp.objectives})
        acc = self._accuracy_objective()
        if acc is not None and not self._rungs:  # no rung to learn from: the surrogate learns full accuracies
            self.observe_rung(number, float(metrics.get(acc[0], math.nan)))
        self._arch.pop(number, None)
        if acc is not None and math.isfinite(float(metrics.get(acc[0], math.nan))):
            self._accuracies[number] = float(metrics[acc[0]])
            if number in self._scores:
                self.ranker.add(self._scores[number], self._accuracies[number])

    def tell_pruned(self, number: int, reason: str, record: str | None = None, status: str = "pruned") -> None:
        """Tell Optuna a trial was stopped before its full training (early stopping, budget, screening): state
        PRUNED without values, which every sampler here accepts (multi-objective TPE too, optuna#5260)."""
        self._arch.pop(number, None)
        trial = self._live.pop(number, None)
        if trial is None:
            return
        trial.set_user_attr(STATUS_ATTR, status)
        trial.set_user_attr(REASON_ATTR, reason[:2000])
        if record is not None:
            trial.set_user_attr(RECORD_ATTR, record)
        self.study.tell(trial, state=TrialState.PRUNED)
        self.stats.told_pruned += 1

    def tell_failed(self, number: int, reason: str, record: str | None = None) -> None:
        """Tell Optuna a trial failed; the reason (and ``record``) are kept on the Optuna trial."""
        self._arch.pop(number, None)
        trial = self._live.pop(number, None)
        if trial is None:
            return
        trial.set_user_attr(STATUS_ATTR, "failed")
        trial.set_user_attr(REASON_ATTR, reason[:2000])
        if record is not None:
            trial.set_user_attr(RECORD_ATTR, record)
        self.study.tell(trial, state=TrialState.FAIL)
        self.stats.told_failed += 1
