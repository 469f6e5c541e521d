"""The search controller: an Optuna multi-objective study that proposes architectures and learns from results.

Each proposal is sampled from the space, built and profiled. Hard constraints are checked on the profile BEFORE any
training: an infeasible candidate is told to Optuna at once (objective values from its profile, accuracy at its
worst, a positive constraint violation for the constrained samplers) and is never trained. Nothing here imports
Ray or MLflow; the runner drives it from the Ray driver process.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.config.experiment import Experiment, training_dimension
from nas.config.objectives import METRICS
from nas.durable.locks import store_lock
from nas.profile import Profile, training_flops
from nas.search.controller import feasibility
from nas.search.controller.profiling import ProfileCache
from nas.search.controller.repeats import CANONICAL, ResultCache, trial_key
from nas.search.controller.samplers import make_sampler
from nas.search.controller.screening import Scorer, Screening, prior_params
from nas.search.controller.storage import Storage, open_storage
from nas.space import Space
from nas.stopping.asha import experiment_rungs
from nas.surrogate.propose import SurrogateProposer

log = logging.getLogger(__name__)

STATUS_ATTR = "nas_status"
REASON_ATTR = "nas_reason"
SAVED_ATTR = "nas_saved_train_flops"
RECORD_ATTR = "nas_record"  # the trial's record as JSON: the durable ledger a resumed search rebuilds from
#: the status of an Optuna trial answered from a known result (not a trial of the search: never trained)
REPEAT_STATUS = "repeat"
#: the proxy objective value told for a trial without a score (rejected, or its proxy failed): the worst
WORST_PROXY = -1e300


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
    repeats: int = 0
    proxy_seconds: float = 0.0
    sampler_seconds: float = 0.0
    profile_seconds: float = 0.0
    rejections_by_metric: dict[str, int] = field(default_factory=dict)


class NoFeasibleCandidateError(RuntimeError):
    """The space kept producing candidates that break the hard constraints."""


class NoNewCandidateError(RuntimeError):
    """The sampler kept proposing trials whose result is already known (a small space, exhausted)."""


#: re-proposals answered from known results in a row after which the sampler is taken to have run dry
MAX_REPEATS_IN_A_ROW = 2000


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
        storage: Storage = None,
        study_name: str | None = None,
        profiler: Callable[[Mapping[str, Any]], Profile] | None = None,
        scorer: Scorer | None = None,
        reference: Mapping[str, float] | None = None,
        reuse: bool = True,
    ) -> None:
        self.exp, self.space = experiment, space
        self.profiler, self.scorer = profiler, scorer
        self.reference = dict(reference) if reference else None
        objectives = [(o.name, o.direction) for o in experiment.objectives]
        acc = self._accuracy_objective()
        self.screening = Screening(experiment, objectives, acc[0] if acc else None, self.reference)
        px = experiment.proxy
        self.proxy_objective = px.name if px.use == "objective" and scorer is not None else None
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.train_samples_per_trial = train_samples_per_trial
        self.stats = ControllerStats()
        self.reuse = reuse
        self.known = ResultCache()
        self._keys: dict[int, tuple[str, dict[str, Any]]] = {}  # trial -> (its key, its params), in flight
        self._inflight: dict[str, int] = {}  # key -> the trial training it now
        #: trials answered from known results instead of trained, in order: (number, params, whether the result
        #: answered with is a full training); what a benchmark bills when repeats are paid
        self.answered: list[tuple[int, dict[str, Any], bool]] = []
        self._stopped_params: dict[int, dict[str, Any]] = {}  # Optuna params of trials stopped early
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
        self._profile = ProfileCache(experiment, space, input_shape, num_classes, profiler)
        self._arch: dict[int, tuple[dict[str, Any], Profile]] = {}  # trial -> (params, profile), while in flight
        es = experiment.early_stopping
        self._rungs = experiment_rungs(es.method, es.rungs, experiment.training.epochs, es.eta)
        self.surrogate = SurrogateProposer(
            space, experiment.surrogate, objectives, acc[0],
            reference, self._costs_if_feasible, experiment.search.seed, canonical=CANONICAL.get(space.builder),
        ) if experiment.surrogate.enabled and acc is not None else None

    # -- proposing ---------------------------------------------------------------------------------------------

    def propose(self, fixed: Mapping[str, Any] | None = None) -> Candidate:
        """The next trial to train. A trial whose key (:func:`trial_key`: canonical architecture and training
        settings) has a known result is never trained again: with ``reuse``, it is told that result at once
        (complete, or stopped as before), counted in ``stats.repeats``, and the next one is drawn; after
        :data:`MAX_REPEATS_IN_A_ROW` of them in a row, :class:`NoNewCandidateError`.

        ``fixed``: train exactly these architecture params next, as a new trial (a known result still answers).

        Otherwise, with ``surrogate.enabled`` and past its warm-up, the surrogate's choice is the next trial.
        Else: ask until a candidate meets every hard constraint; rejected ones are told to Optuna, never trained.

        A candidate that cannot be built or profiled (e.g. too small an input for its strides) comes back with
        ``error`` set, already told to Optuna as failed. With ``proxy.use: screen``, ``proxy.candidates`` feasible
        candidates are drawn and the one :func:`pick_candidate` prefers is returned; the others are told to
        Optuna as pruned (status ``screened``), never trained.
        """
        for _ in range(MAX_REPEATS_IN_A_ROW):
            cand = self._propose_new(fixed)
            if cand.error or not self._answer_known(cand):
                return cand
            fixed = None
        raise NoNewCandidateError(
            f"the sampler proposed only trials with known results {MAX_REPEATS_IN_A_ROW} times in a row")

    def propose_promotion(self, number: int) -> Candidate:
        """Trial ``number``, stopped early, again as a new trial with the same params and training settings:
        a promotion (the backend resumes it from its checkpoint). Never answered from known results."""
        self.study.enqueue_trial(self._stopped_params.pop(number))
        cand = self._remember(self._propose_one())
        if not cand.error:
            self._track(cand.number, trial_key(self.space.builder, cand.params, cand.training), cand.params)
        return cand

    def _track(self, number: int, key: str, params: Mapping[str, Any]) -> None:
        self._keys[number] = (key, dict(params))
        self._inflight[key] = number

    def _untrack(self, number: int) -> tuple[str, dict[str, Any]] | None:
        entry = self._keys.pop(number, None)
        if entry is not None and self._inflight.get(entry[0]) == number:
            del self._inflight[entry[0]]
        return entry

    def remember(self, number: int, params: Mapping[str, Any], training: Mapping[str, Any], status: str,
                 metrics: Mapping[str, float], reason: str = "", trial_params: Mapping[str, Any] | None = None) -> None:
        """A result paid for before this controller existed (a resumed search's record of trial ``number``;
        ``trial_params``: its Optuna params, which a promotion of a stopped trial enqueues again)."""
        key = trial_key(self.space.builder, params, training)
        if status == "complete":
            self.known.complete(key, params, metrics)
        elif status == "pruned":
            self.known.stopped(key, params, reason)
            if trial_params is not None:
                self._stopped_params[number] = dict(trial_params)

    def _answer_known(self, cand: Candidate) -> bool:
        """Tell ``cand`` its known result instead of training it; False when there is none (or no reuse). A trial
        whose twin is training right now is told as stopped (its result is not known yet), not trained twice."""
        key = trial_key(self.space.builder, cand.params, cand.training)
        known = self.known.get(key) if self.reuse else None
        twin = self._inflight.get(key) if self.reuse else None
        if known is None and twin is None:
            self._track(cand.number, key, cand.params)
            return False
        assert cand.profile is not None
        self.stats.repeats += 1
        self.answered.append((cand.number, dict(cand.params), known is not None and not known.stopped))
        if known is None:
            self.tell_pruned(cand.number, f"not trained: the same trial is training now (trial {twin})",
                             status=REPEAT_STATUS)
        elif known.stopped:
            self.tell_pruned(cand.number, f"not trained again: the same trial was stopped early ({known.stopped})",
                             status=REPEAT_STATUS)
        else:
            same = known.params == cand.params  # else an isomorphic one: its own costs, the known training
            self.tell(cand.number, known.metrics if same else {**known.metrics, **self.costs(cand.profile)},
                      status=REPEAT_STATUS)
        return True

    def _propose_new(self, fixed: Mapping[str, Any] | None) -> Candidate:
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
        chosen = pool[self._screen(pool)]
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
            if not feasibility.is_feasible(self._violations(profile)):
                return None
            return self.costs(profile)
        except Exception:
            return None

    def costs(self, profile: Profile) -> dict[str, float]:
        """The cost objectives (everything but the trained metrics) of a profiled candidate."""
        return {o.name: self.metric_value(profile, o.name) for o in self.exp.objectives
                if METRICS[o.name].source != "train"}

    def _violations(self, profile: Profile) -> dict[str, float]:
        """Each hard constraint's violation (> 0: broken): :func:`feasibility.violations`."""
        return feasibility.violations(self.exp, profile, self.train_flops(profile))

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
            if not feasibility.is_feasible(violations):
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
        scores = self.screening.score(cand.number, self.scorer, cand.params)
        self.stats.proxy_seconds += time.perf_counter() - t0
        trial = self._live[cand.number]
        for k, v in scores.items():
            trial.set_user_attr(f"proxy_{k}", v)
        return Candidate(cand.number, cand.params, cand.training, cand.profile, cand.propose_seconds, scores=scores)

    def active_proxy(self) -> str:
        """The proxy trusted now (:meth:`Screening.active`)."""
        return self.screening.active()

    def proxy_correlations(self) -> dict[str, float]:
        """Each proxy's Spearman ρ with trained accuracy so far (NaN until defined)."""
        return self.screening.correlations()

    @property
    def accuracy_name(self) -> str | None:
        """The maximized accuracy objective, if the experiment has exactly one."""
        acc = self._accuracy_objective()
        return acc[0] if acc else None

    def _accuracy_objective(self) -> tuple[str, str] | None:
        train = [(o.name, o.direction) for o in self.exp.objectives if METRICS[o.name].source == "train"]
        return train[0] if len(train) == 1 and train[0][1] == "maximize" else None

    def _screen(self, pool: list[Candidate]) -> int:
        rows = []
        for c in pool:
            assert c.profile is not None
            rows.append({o.name: self.metric_value(c.profile, o.name) for o in self.exp.objectives
                         if o.name != self.accuracy_name})
        return self.screening.choose(rows, [c.scores for c in pool])

    def seed_prior(self) -> int:
        """``proxy.use: prior``: enqueue the ``prior_top`` best-covering of ``prior_samples`` scored random
        feasible architectures (:func:`prior_params`) as the sampler's first trials. Returns how many."""
        if self.exp.proxy.use != "prior" or self.scorer is None or len(self.study.trials) > 0:
            return 0
        t0 = time.perf_counter()
        chosen = prior_params(self.exp, self.space, self.scorer, self._costs_if_feasible)
        self.stats.proxy_seconds += time.perf_counter() - t0
        for params in chosen:
            self.study.enqueue_trial(params, skip_if_exists=True)
        return len(chosen)

    def check_feasible(self, samples: int = 64, max_seconds: float = 20.0) -> None:
        """Refuse hard constraints that no architecture of the space meets (:func:`feasibility.check_feasible`)."""
        feasibility.check_feasible(self.exp, self.space, self.profile, self.train_flops, samples, max_seconds)

    def profile(self, params: Mapping[str, Any]) -> Profile:
        """The candidate's profile (:class:`ProfileCache`: an architecture seen before is not rebuilt)."""
        return self._profile(params)

    metric_value = staticmethod(feasibility.metric_value)

    def _sample_training(self, trial: optuna.Trial) -> dict[str, Any]:
        t = self.exp.training
        caps = [c for c in (t.max_seconds, self.exp.budget.trial_seconds) if c is not None]
        out: dict[str, Any] = {"epochs": t.epochs, "optimizer": t.optimizer, "momentum": t.momentum,
                               "lr_schedule": t.lr_schedule, "amp": t.amp, "max_seconds": min(caps) if caps else None}
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
        ] + [WORST_PROXY] * bool(self.proxy_objective)
        self.study.tell(trial, values)
        log.debug("trial %d rejected before training: %s", trial.number, violations)

    def _rejection_summary(self) -> str:
        return ", ".join(f"{m}: {n}" for m, n in sorted(self.stats.rejections_by_metric.items())) or "none"

    # -- learning ----------------------------------------------------------------------------------------------

    def tell(self, number: int, metrics: Mapping[str, float], record: str | None = None,
             status: str = "complete") -> None:
        """Tell Optuna a finished trial's objective values (looked up by objective name in ``metrics``);
        ``record`` (JSON) is stored with it so a resumed search can rebuild the trial."""
        trial = self._live.pop(number)
        trial.set_user_attr(STATUS_ATTR, status)
        entry = self._untrack(number)
        if entry is not None:
            self.known.complete(entry[0], entry[1], metrics)
        if record is not None:
            trial.set_user_attr(RECORD_ATTR, record)
        values = [float(metrics[o.name]) for o in self.exp.objectives]
        if self.proxy_objective:
            values.append(self.screening.scores.get(number, {}).get(self.proxy_objective, math.nan))
            if not math.isfinite(values[-1]):
                values[-1] = WORST_PROXY  # a failed proxy: worst possible, not a crash
        self.study.tell(trial, values)
        self.stats.told_complete += 1
        self.screening.learn(number, metrics)
        acc = self.accuracy_name
        if acc is not None and not self._rungs:  # no rung to learn from: the surrogate learns full accuracies
            self.observe_rung(number, float(metrics.get(acc, math.nan)))
        self._arch.pop(number, None)

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
        key = self._untrack(number)
        if status == "pruned":  # stopped early: remembered, and promotable
            if key is not None:
                self.known.stopped(key[0], key[1], reason)
            self._stopped_params[number] = dict(trial.params)
        self.study.tell(trial, state=TrialState.PRUNED)
        self.stats.told_pruned += 1

    def tell_failed(self, number: int, reason: str, record: str | None = None) -> None:
        """Tell Optuna a trial failed; the reason (and ``record``) are kept on the Optuna trial."""
        self._arch.pop(number, None)
        trial = self._live.pop(number, None)
        if trial is None:
            return
        self._untrack(number)
        trial.set_user_attr(STATUS_ATTR, "failed")
        trial.set_user_attr(REASON_ATTR, reason[:2000])
        if record is not None:
            trial.set_user_attr(RECORD_ATTR, record)
        self.study.tell(trial, state=TrialState.FAIL)
        self.stats.told_failed += 1
