"""The one search loop: turns backend events into records, optimizer feedback, stopping decisions and tracking.

:class:`SearchLoop` implements the backends' :class:`~nas.search.backends.base.Observer`; ``nas search`` runs it
on Ray Tune, ``nas bench`` on a benchmark table (:mod:`nas.search.backends`). Every finished or failed trial is
told to Optuna with its record (the durable ledger a resumed search rebuilds from), then written to the sink
(MLflow's tracker on its writer thread, or memory). The stopping rules live here for both backends:
Pareto-ASHA and pareto-promote at the rungs, the plateau and budget rules, and the measuring limits of a
benchmark (:class:`Limits`).

pareto-promote: every new trial stops at the (single) rung, saving a checkpoint there; a proposal slot may
instead go to a *promotion*, which resumes the stopped trial the :class:`Promoter` picks from its rung checkpoint
as a new trial (ASHA's promotion), billed for the epochs it trains (the table backend bills what its numbers
mean: a fresh training for NAS-Bench-201).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nas.config.experiment import Experiment
from nas.config.objectives import float32_size_mb
from nas.cost.ledger import bill_trial
from nas.pareto import hypervolume, pareto_mask
from nas.report.figures import hypervolume_png, pareto_png
from nas.search.backends.base import (
    RESUME_EPOCH,
    RESUME_FROM,
    SNAPSHOT_AT,
    Backend,
    RunnerTimes,
    train_tflops,
)
from nas.search.controller.core import Controller, NoNewCandidateError
from nas.search.sink import Sink
from nas.space import Space
from nas.stopping import BudgetRule, ParetoASHA, PlateauRule, Spent, experiment_rungs
from nas.stopping.promote import Promoter
from nas.training.records import TrialRecord
from nas.training.trial import TrialSpec

log = logging.getLogger(__name__)

PROFILE_METRICS = ("mflops", "params", "latency_ms", "latency_iqr_ms", "latency_threads", "peak_mem_mb", "size_mb")
#: a trial's training seed is search seed × SEED_STRIDE + trial number (a prime, so seeds never collide)
SEED_STRIDE = 100_003
#: the metric of a promoted trial naming the trial it resumed
RESUMED_FROM = "resumed_from_trial"
#: relative slack when comparing compute or hypervolume with a limit (float sums of fidelity shares)
LIMIT_RTOL = 1e-9


@dataclass(frozen=True)
class Point:
    """The search after one finished trial: trials finished (any status), full trainings (complete trials),
    compute spent (the backend's unit) and the hypervolume of the complete trials."""

    evaluations: int
    full: int
    compute: float
    hypervolume: float


@dataclass(frozen=True)
class Limits:
    """Limits of a measuring run (``nas bench``, benchmarks) on top of the experiment's own rules: at most
    ``max_trials`` trials (default ``search.trials``), ``max_compute`` (backend's unit), or stop once the
    hypervolume reaches ``until_hypervolume`` (a measuring convenience: it does not steer the search)."""

    max_trials: int | None = None
    max_compute: float | None = None
    until_hypervolume: float | None = None


@dataclass
class SearchState:
    """A snapshot for progress displays: counts, front size, hypervolume, compute spent, ETA (seconds)."""

    planned: int
    done: int = 0
    complete: int = 0
    failed: int = 0
    running: int = 0
    rejected: int = 0
    pruned: int = 0
    screened: int = 0
    saved_tflops: float = 0.0
    pareto_size: int = 0
    hypervolume: float = 0.0
    train_tflops: float = 0.0
    compute: float = 0.0
    promoted: int = 0
    trial_seconds: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    run_id: str = ""
    stop_reason: str | None = None
    #: trial number -> {"start": time.time(), "epoch": last reported, "val_accuracy": latest} of running trials
    running_trials: dict[int, dict[str, float]] = field(default_factory=dict)
    #: the most accurate completed trial so far: {"trial", "val_accuracy", and its cost objectives}
    best: dict[str, float] = field(default_factory=dict)


class SearchLoop:
    """Observer of a backend; ``records`` may be pre-filled by a resume (those count towards ``planned``).

    ``backend`` runs the trials (:meth:`run`) and says what a trial's compute is; without one the loop is driven
    by hand (tests) and compute is training TFLOPs.
    """

    def __init__(self, exp: Experiment, space: Space, controller: Controller, tracker: Sink,
                 reference: dict[str, float], *, backend: Backend | None = None,
                 on_update: Callable[[SearchState], None] | None = None, records: list[TrialRecord] | None = None,
                 limits: Limits | None = None, artifact_every_s: float = 5.0, plots_every_s: float = 60.0,
                 progress_every_s: float = 1.0) -> None:
        self.exp, self.space, self.controller, self.tracker = exp, space, controller, tracker
        self.reference, self.backend = reference, backend
        self.compute_of: Callable[[Mapping[str, float]], float] = backend.compute if backend else train_tflops
        self.limits = limits or Limits()
        self.objectives = [(o.name, o.direction) for o in exp.objectives]
        self.on_update = on_update
        self.records: dict[int, TrialRecord] = {r.number: r for r in records or []}
        planned = self.limits.max_trials if self.limits.max_trials is not None else exp.search.trials
        self.state = SearchState(planned=planned, run_id=tracker.run_id or "")
        self.started = time.time()
        self.space_yaml = Path(space.source).read_text()
        self.import_paths = [str(Path(p).resolve().parent) for p in (exp.source, space.source) if Path(p).is_file()]
        self.artifact_every_s, self._last_artifacts = artifact_every_s, 0.0
        # the two PNGs cost ~0.6 s of CPU on the writer thread (a per-second cost: 10 ms per trial at one result a
        # second, redrawn every 60 s): plots are redrawn less often than pareto.csv, the first 60 s into the search
        self.plots_every_s, self._last_plots = plots_every_s, time.time()
        self._written: tuple[object, ...] | None = None  # what the last deferred front artifacts showed
        self._plotted: tuple[int, ...] | None = None  # the front the last deferred plots showed
        self.progress_every_s, self._last_progress = progress_every_s, 0.0
        self.proposed = sum(1 for r in self.records.values() if r.status != "interrupted")
        for r in self.records.values():
            if r.status != "interrupted":
                self._count(r)
        self._init_rules()

    def _init_rules(self) -> None:
        exp = self.exp
        es = exp.early_stopping
        rungs = experiment_rungs(es.method, es.rungs, exp.training.epochs, es.eta)
        self.asha: ParetoASHA | None = None
        if es.method == "pareto-asha" and rungs:
            self.asha = ParetoASHA(rungs, self.objectives, eta=es.eta, grace=es.grace)
        self.promoter: Promoter | None = None
        self.promote_rung = float(rungs[0]) if rungs else math.inf
        acc = self.controller.accuracy_name
        if es.method == "pareto-promote" and rungs and acc is not None:
            self.promoter = Promoter(self.objectives, acc, self.reference, es.full_share, es.min_pairs,
                                     layers=es.promote_layers, min_rung=es.promote_after)
        self._promotions: dict[int, int] = {}  # promotion trial -> the stopped trial it resumes
        self._at_rung: dict[int, dict[str, float]] = {}  # trial -> its point where pareto-promote stopped it
        self._promoted_compute = 0.0
        b = exp.budget
        self.budget = BudgetRule(b.train_tflops, b.device_hours, b.wall_hours)
        pl = exp.plateau
        self.plateau = PlateauRule(pl.window, pl.threshold, pl.min_trials) if pl.enabled else None
        self.curve: list[Point] = []  # one point per finished trial
        self._front: list[TrialRecord] = []
        self._running_flops: dict[int, float] = {}
        for r in sorted(self.records.values(), key=lambda r: r.number):  # a resumed pareto-promote search
            if self.promoter is not None and r.status == "pruned" and RESUMED_FROM not in r.metrics:
                self.promoter.add_stopped(r.number, {n: r.metrics.get(n, math.nan) for n, _ in self.objectives},
                                          r.params)
            if self.promoter is not None and r.status == "complete" and RESUMED_FROM in r.metrics:
                self._promoted(int(r.metrics[RESUMED_FROM]), r)
        if self.completed():  # a resumed search: its curve starts where the dead driver's ended
            self._front, self.state.hypervolume = self.front()
            self._add_curve_point()

    @property
    def hv_curve(self) -> list[tuple[float, float]]:
        """(compute spent, hypervolume) after each finished trial."""
        return [(p.compute, p.hypervolume) for p in self.curve]

    def run(self) -> RunnerTimes:
        """Run the remaining trials on the backend; returns its driver-side timings."""
        if self.backend is None:
            raise RuntimeError("this search loop has no backend to run on")
        return self.backend.run(self, max_trials=max(0, self.state.planned - self.proposed))

    # -- Observer ----------------------------------------------------------------------------------------------

    def propose(self) -> TrialSpec | None:
        while self.proposed < self.state.planned and not self.over_failure_limit() and not self._check_stop():
            resumes = self._next_promotion()
            try:
                cand = (self.controller.propose_promotion(resumes) if resumes is not None
                        else self.controller.propose())
            except NoNewCandidateError as e:
                self.state.stop_reason = str(e)
                return None
            self.proposed += 1
            self.state.rejected = self.controller.stats.rejected
            self.state.screened = self.controller.stats.screened_out
            if cand.error:  # could not be built or profiled: a failed trial, already told to Optuna
                now = time.time()
                rec = TrialRecord(number=cand.number, params=cand.params, training=cand.training, profile={},
                                  status="failed", reason=cand.error, start_time=now, end_time=now)
                self.records[rec.number] = rec
                if resumes is not None and self.promoter is not None:
                    self.promoter.abandon(resumes)
                self.bill(rec)
                self._finish(rec)
                continue
            assert cand.profile is not None
            prof = {**cand.profile.as_dict(), "size_mb": float32_size_mb(cand.profile.params)}
            self.records[cand.number] = TrialRecord(
                number=cand.number, params=cand.params, training=cand.training,
                profile={**{k: prof[k] for k in PROFILE_METRICS if prof.get(k) is not None},
                         **{f"proxy_{k}": v for k, v in cand.scores.items()}},
            )
            extra: dict[str, object] = {"profiled": sorted(self.records[cand.number].profile),
                                         "import_paths": self.import_paths}
            seed = trial_seed(self.exp, cand.number)
            if resumes is not None:
                self._promotions[cand.number] = resumes
                stopped = self.records[resumes]
                seed = trial_seed(self.exp, resumes)
                extra[RESUME_EPOCH] = self.promote_rung
                if stopped.checkpoint_dir:
                    extra[RESUME_FROM] = stopped.checkpoint_dir
            elif self.promoter is not None:
                extra[SNAPSHOT_AT] = [self.promote_rung]
            return TrialSpec(
                number=cand.number, params=cand.params, space_yaml=self.space_yaml, space_source=self.space.source,
                space_hash=self.space.hash, data=asdict(self.exp.data), training=cand.training,
                seed=seed, mflops=cand.profile.mflops,
                cpu_threads=max(1, int(self.exp.resources.cpu)), device="auto", extra=extra,
                latency={"batch_size": self.exp.profile.batch_size, "warmup": self.exp.profile.warmup,
                         "repeats": self.exp.profile.repeats},
            )
        return None

    def _next_promotion(self) -> int | None:
        """The stopped trial to promote in this slot (pareto-promote), or None for a new trial."""
        p = self.promoter
        if p is None or not p.wants(self.state.compute, self._promoted_compute):
            return None
        pick = p.pick([r.metrics for r in self._front])
        if pick is not None:
            p.start(pick)
        return None if pick is None else int(pick)  # type: ignore[call-overload]

    def on_trial_start(self, number: int) -> None:
        self.records[number].start_time = time.time()
        self.state.running += 1
        self.state.running_trials[number] = {"start": self.records[number].start_time, "epoch": 0.0}
        self.tracker.defer(self.tracker.start_trial, self.records[number])  # the UI shows it running
        self._update()

    def on_epoch(self, number: int, metrics: dict[str, float]) -> None:
        self.records[number].history.append(metrics)
        live = self.state.running_trials.setdefault(number, {"start": time.time()})
        live.update({k: float(metrics[k]) for k in ("epoch", "val_accuracy") if k in metrics})
        self.tracker.defer(self.tracker.log_epoch, number, dict(metrics))  # live per-epoch curves in the UI

    def should_stop(self, number: int, metrics: dict[str, float]) -> str | None:
        """Asked at every epoch report of a running trial: why to stop it now (a spent budget, or Pareto-ASHA
        at a rung), or None to let it go on."""
        self._running_flops[number] = metrics.get("train_flops", 0.0)
        reason = self.budget.reason(self._spent())
        if reason is not None:
            self.state.stop_reason = self.state.stop_reason or reason
            return reason
        if "epoch" not in metrics or number in self._promotions:
            return None
        rec = self.records[number]
        point = {**rec.profile, **metrics}
        point = {name: point.get(name, float("nan")) for name, _ in self.objectives}
        acc = self.controller.accuracy_name
        if self.promoter is not None:
            if metrics["epoch"] < self.promote_rung - LIMIT_RTOL:
                return None
            if acc is not None:
                self.controller.observe_rung(number, point[acc])
            self._at_rung[number] = point
            return (f"pareto-promote: stopped after {metrics['epoch']:g} of {self.exp.training.epochs} epochs, "
                    "waiting for a promotion")
        if self.asha is None:
            return None
        first = self.asha.rungs[0]
        if acc is not None and metrics["epoch"] >= first and number not in self.asha.recorded[first]:
            self.controller.observe_rung(number, point[acc])  # the surrogate (if on) learns the first rung's accuracy
        if self.asha.on_result(number, metrics["epoch"], point):
            return None
        d = self.asha.decisions[-1][1]
        return (f"pareto-asha: stopped after {d.rung:g} of {self.exp.training.epochs} epochs, place {d.position + 1} "
                f"of {d.n} at that rung (the top {d.keep} go on, eta={self.asha.eta:g})")

    def on_trial_pruned(self, number: int, reason: str, metrics: dict[str, float],
                        checkpoint_dir: str | None = None) -> None:
        """A trial the loop stopped early: billed for the epochs it ran, told to Optuna as pruned; under
        pareto-promote it waits for a promotion (from ``checkpoint_dir``, its rung checkpoint, when there is one)."""
        rec = self.records[number]
        rec.end_time, rec.status, rec.reason = time.time(), "pruned", reason
        rec.checkpoint_dir = checkpoint_dir
        rec.metrics = {**rec.profile, **metrics}
        epochs, done = float(rec.training.get("epochs", self.exp.training.epochs)), float(metrics.get("epoch", 0.0))
        spent = metrics.get("train_flops", 0.0)
        saved = spent * (epochs - done) / done if done > 0 else 0.0
        rec.metrics["saved_train_flops"] = saved
        self.state.saved_tflops += saved / 1e12
        if number in self._promotions and self.promoter is not None:  # a promotion cut by the budget
            self.promoter.abandon(self._promotions.pop(number))
        self.bill(rec)
        self.controller.tell_pruned(number, reason, record=rec.to_json())
        if self.promoter is not None and number in self._at_rung:
            self.promoter.add_stopped(number, self._at_rung.pop(number), rec.params)
        self.state.running = max(0, self.state.running - 1)
        self._finish(rec)

    def on_trial_complete(self, number: int, final: dict[str, float], checkpoint_dir: str | None) -> None:
        rec = self.records[number]
        rec.end_time, rec.status, rec.checkpoint_dir = time.time(), "complete", checkpoint_dir
        rec.metrics = {**rec.profile, **final}
        if number in self._promotions:
            rec.metrics[RESUMED_FROM] = float(self._promotions[number])
            self._promoted(self._promotions.pop(number), rec)
        self.bill(rec)
        self.controller.tell(number, rec.metrics, record=rec.to_json())
        self.state.running = max(0, self.state.running - 1)
        self._finish(rec)

    def on_trial_node(self, number: int, node: dict[str, str]) -> None:
        """Where the trial runs (Ray node id and IP), recorded on its child run."""
        self.records[number].node = dict(node)

    def on_trial_failed(self, number: int, reason: str) -> None:
        rec = self.records[number]
        rec.end_time, rec.status, rec.reason = time.time(), "failed", reason
        rec.metrics = dict(rec.profile)
        if number in self._promotions and self.promoter is not None:
            self.promoter.abandon(self._promotions.pop(number))
        self.bill(rec)
        self.controller.tell_failed(number, reason, record=rec.to_json())
        self.state.running = max(0, self.state.running - 1)
        self._finish(rec)

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _promoted(self, stopped: int, rec: TrialRecord) -> None:
        assert self.promoter is not None
        acc = self.controller.accuracy_name
        self.promoter.add_promoted(stopped, float(rec.metrics.get(acc, math.nan)) if acc else math.nan)
        self._promoted_compute += self.compute_of(rec.metrics)
        self.state.promoted += 1

    def _spent(self) -> Spent:
        per_trial = self.exp.resources.gpu or self.exp.resources.cpu
        now = time.time()
        # started, not yet finished (state.running_trials), not a scan of every record
        running = [r for n in self.state.running_trials if (r := self.records[n]).status == "pending" and r.start_time > 0]
        device_s = self.state.trial_seconds + sum(now - r.start_time for r in running)
        flops = self.state.train_tflops * 1e12 + sum(self._running_flops.get(r.number, 0.0) for r in running)
        return Spent(train_flops=flops, device_seconds=device_s * per_trial, wall_seconds=now - self.started)

    def _check_stop(self) -> bool:
        """True (and ``state.stop_reason`` set) once a budget is spent or the plateau rule fires."""
        if self.state.stop_reason is None:
            self.state.stop_reason = self.budget.reason(self._spent()) or self._limit_reason()
        if self.state.stop_reason is None and self.plateau is not None:
            self.state.stop_reason = self.plateau.reason()
        if self.state.stop_reason is not None:
            log.info("search stopping: %s", self.state.stop_reason)
        return self.state.stop_reason is not None

    def _limit_reason(self) -> str | None:
        lim, s = self.limits, self.state
        if lim.max_compute is not None and s.compute >= lim.max_compute - LIMIT_RTOL:
            unit = self.backend.compute_unit if self.backend else "TFLOPs"
            return f"compute {s.compute:.4g} {unit} reached the limit {lim.max_compute:g}"
        if lim.until_hypervolume is not None and s.hypervolume >= lim.until_hypervolume * (1 - LIMIT_RTOL):
            return "reached the target hypervolume"
        return None

    def _add_curve_point(self) -> None:
        s = self.state
        self.curve.append(Point(s.done, s.complete, s.compute, s.hypervolume))
        if self.plateau is not None:
            self.plateau.add(s.compute, s.hypervolume)

    def over_failure_limit(self) -> bool:
        limit = self.exp.search.max_failures
        return limit is not None and self.state.failed > limit

    def completed(self) -> list[TrialRecord]:
        return [r for r in sorted(self.records.values(), key=lambda r: r.number) if r.status == "complete"]

    def _add_to_front(self, rec: TrialRecord) -> None:
        """Keep the front and its hypervolume up to date: a trial off the front never returns to it, so the
        new one is compared with the front only (sets ``pareto`` on both). A new trial off the front changes
        nothing (whatever dominated a front member would be on the front itself): the hypervolume stands."""
        rows = [*self._front, rec]
        mask = pareto_mask([r.metrics for r in rows], self.objectives)
        if not mask[-1]:
            rec.pareto = False
            return
        for r, m in zip(rows, mask, strict=True):
            r.pareto = m
        self._front = [r for r, m in zip(rows, mask, strict=True) if m]
        self.state.hypervolume = hypervolume([r.metrics for r in self._front], self.objectives, self.reference)

    def front(self) -> tuple[list[TrialRecord], float]:
        done = self.completed()
        rows = [r.metrics for r in done]
        mask = pareto_mask(rows, self.objectives)
        for r, m in zip(done, mask, strict=True):
            r.pareto = m
        return [r for r, m in zip(done, mask, strict=True) if m], hypervolume(rows, self.objectives, self.reference)

    def _count(self, rec: TrialRecord) -> None:
        self.state.done += 1
        self.state.complete += rec.status == "complete"
        self.state.failed += rec.status == "failed"
        self.state.pruned += rec.status == "pruned"
        self.state.train_tflops += rec.metrics.get("train_flops", 0.0) / 1e12
        self.state.compute += self.compute_of(rec.metrics)
        self.state.trial_seconds += max(0.0, rec.end_time - rec.start_time)

    def bill(self, rec: TrialRecord) -> None:
        """Add the trial's bill (``nas_cost/*``: the epochs it ran) to its metrics, before the record goes to the
        study: the study's record is the durable ledger a rebuilt child run is written from, bill included."""
        if rec.start_time == 0.0:
            rec.start_time = rec.end_time
        rec.metrics.update(bill_trial(rec, self.exp.resources, self.exp.energy).as_metrics())

    def _finish(self, rec: TrialRecord) -> None:
        self._count(rec)
        self.state.running_trials.pop(rec.number, None)
        acc = rec.metrics.get("val_accuracy")
        if rec.status == "complete" and acc is not None and acc > self.state.best.get("val_accuracy", -1.0):
            self.state.best = {"trial": float(rec.number), "val_accuracy": float(acc),
                               **{name: float(rec.metrics[name]) for name, _ in self.objectives
                                  if name != "val_accuracy" and name in rec.metrics}}
        if rec.status == "complete":
            self._add_to_front(rec)
        self.state.pareto_size = len(self._front)
        self._running_flops.pop(rec.number, None)
        self._add_curve_point()
        self._check_stop()
        self.tracker.defer(self.tracker.log_trial, rec)
        if time.time() - self._last_progress >= self.progress_every_s:
            self.tracker.defer(self.tracker.log_progress, self.state.done, self.progress_metrics())
            self._last_progress = time.time()
        if time.time() - self._last_artifacts > self.artifact_every_s:
            self.log_front_artifacts(deferred=True)
        self._update()

    def progress_metrics(self) -> dict[str, float]:
        s, c = self.state, self.controller.stats
        return {
            "trials_finished": s.done, "trials_failed": s.failed, "pareto_size": s.pareto_size,
            "hypervolume": s.hypervolume, "wall_time_s": time.time() - self.started,
            "trial_compute_tflops": s.train_tflops, "trial_compute_s": s.trial_seconds,
            "rejected_candidates": c.rejected, "rejected_saved_tflops": c.rejected_saved_train_flops / 1e12,
            "repeats": c.repeats, **self._cheap_metrics(),
        }

    def _cheap_metrics(self) -> dict[str, float]:
        """Early stopping, screening and proxy-trust figures (only those of the features in use)."""
        s, out = self.state, {}
        if self.asha is not None or self.promoter is not None:
            out.update({"trials_early_stopped": s.pruned, "early_stop_saved_tflops": s.saved_tflops})
        if self.promoter is not None:
            out["trials_promoted"] = s.promoted
        if self.exp.proxy.use != "off":
            out["candidates_screened_out"] = s.screened
            out.update({f"proxy_rho_{k}": v for k, v in self.controller.proxy_correlations().items() if v == v})
        if self.plateau is not None and (rate := self.plateau.rate()) is not None:
            out["plateau_rate"] = rate
        return out

    def log_front_artifacts(self, deferred: bool = False) -> None:
        """Write pareto.csv, and pareto.png and hv_vs_compute.png at most every ``plots_every_s`` (always when not
        deferred: the final call), on the parent run (rendered on the writer thread when deferred).

        A deferred call writes only what changed since the last one: nothing when the front and the tags are
        the same (the same pareto.csv) and no plot is due; plots are due once the front has changed since they
        were drawn (and ``plots_every_s`` has passed)."""
        front_key = tuple(sorted(r.number for r in self._front))
        key = (front_key, self.controller.stats.repeats,
               self.controller.active_proxy() if self.exp.proxy.use != "off" else "")
        plots_due = front_key != self._plotted and time.time() - self._last_plots >= self.plots_every_s
        if deferred and key == self._written and not plots_due:
            self._last_artifacts = time.time()
            return
        done = self.completed()
        if not done:
            return
        front, _ = self.front()
        rows, mask = [dict(r.metrics) for r in done], [r.pareto for r in done]
        numbers = [r.number for r in front]
        title = f"{self.exp.name}: {len(done)} trials, {len(front)} Pareto-optimal"

        curve, stop = list(self.hv_curve), self.state.stop_reason
        tags = {"nas.pareto_trials": ",".join(map(str, numbers)), "nas.repeats": str(self.controller.stats.repeats)}
        if self.exp.proxy.use != "off":
            tags["nas.proxy_active"] = self.controller.active_proxy()

        plots = not deferred or plots_due
        if plots:
            self._last_plots = time.time()
        if deferred:
            self._written = key
            if plots:
                self._plotted = front_key

        def write() -> None:  # on the writer thread the front's child-run ids are already set
            files: dict[str, str | bytes] = {"pareto.csv": pareto_csv(front, self.objectives)}
            if plots:
                files["pareto.png"] = pareto_png(rows, self.objectives, title, pareto=mask)
                files["hv_vs_compute.png"] = hypervolume_png([(t * 1e12, hv) for t, hv in curve], self.objectives,
                                                             f"{self.exp.name}: hypervolume vs compute", stop)
            self.tracker.log_artifacts(files, tags=tags)

        if deferred:
            self.tracker.defer(write)
        else:
            write()
        self._last_artifacts = time.time()

    def _update(self) -> None:
        s = self.state
        s.elapsed_s = time.time() - self.started
        if s.done:
            s.eta_s = max(0.0, (s.planned - s.done) * s.elapsed_s / s.done)
        if self.on_update is not None:
            self.on_update(s)


def trial_seed(exp: Experiment, number: int) -> int:
    """The training seed of trial ``number``: a function of the search seed and the trial number only."""
    return exp.search.seed * SEED_STRIDE + number


def pareto_csv(front: list[TrialRecord], objectives: list[tuple[str, str]]) -> str:
    cols = ["trial", *[o for o, _ in objectives]]
    extra = [k for k in ("val_accuracy", "mflops", "params", "latency_ms", "train_flops", "train_seconds") if k not in cols]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*cols, *extra, "params_json", "run_id"])
    for r in sorted(front, key=lambda r: -r.metrics.get("val_accuracy", 0.0)):
        w.writerow([r.number, *[r.metrics.get(c) for c in cols[1:]], *[r.metrics.get(c) for c in extra],
                    json.dumps(r.params, sort_keys=True), r.run_id or ""])
    return buf.getvalue()
