"""The search loop's state machine: turns runner events into records, optimizer feedback and tracking calls.

:class:`SearchLoop` implements the runner's ``Observer``. Every finished or failed trial is told to Optuna with its
record (the durable ledger a resumed search rebuilds from), then logged to MLflow on the tracker's writer thread.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from nas.config.experiment import Experiment
from nas.config.objectives import float32_size_mb
from nas.cost.ledger import bill_trial
from nas.pareto import hypervolume, pareto_mask
from nas.report.figures import hypervolume_png, pareto_png
from nas.search.controller.core import Controller
from nas.space import Space
from nas.stopping import BudgetRule, ParetoASHA, PlateauRule, Spent, experiment_rungs
from nas.tracking.tracker import SearchTracker
from nas.training.records import TrialRecord
from nas.training.trial import TrialSpec

log = logging.getLogger(__name__)

PROFILE_METRICS = ("mflops", "params", "latency_ms", "latency_iqr_ms", "latency_threads", "peak_mem_mb", "size_mb")


@dataclass
class SearchState:
    """A snapshot for progress displays: counts, front size, hypervolume, compute spent, ETA (seconds)."""

    planned: int
    done: int = 0
    failed: int = 0
    running: int = 0
    rejected: int = 0
    pruned: int = 0
    screened: int = 0
    saved_tflops: float = 0.0
    pareto_size: int = 0
    hypervolume: float = 0.0
    train_tflops: float = 0.0
    trial_seconds: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    run_id: str = ""
    stop_reason: str | None = None


class SearchLoop:
    """Observer of the runner; ``records`` may be pre-filled by a resume (those count towards ``planned``)."""

    def __init__(self, exp: Experiment, space: Space, controller: Controller, tracker: SearchTracker,
                 reference: dict[str, float], *, on_update: Callable[[SearchState], None] | None = None,
                 records: list[TrialRecord] | None = None, artifact_every_s: float = 5.0, plots_every_s: float = 30.0,
                 progress_every_s: float = 1.0) -> None:
        self.exp, self.space, self.controller, self.tracker = exp, space, controller, tracker
        self.reference = reference
        self.objectives = [(o.name, o.direction) for o in exp.objectives]
        self.on_update = on_update
        self.records: dict[int, TrialRecord] = {r.number: r for r in records or []}
        self.state = SearchState(planned=exp.search.trials, run_id=tracker.run_id or "")
        self.started = time.time()
        self.space_yaml = Path(space.source).read_text()
        self.artifact_every_s, self._last_artifacts = artifact_every_s, 0.0
        # a PNG costs ~0.5 s of CPU on the writer thread: plots are redrawn less often than pareto.csv
        self.plots_every_s, self._last_plots = plots_every_s, 0.0
        self.progress_every_s, self._last_progress = progress_every_s, 0.0
        self.proposed = sum(1 for r in self.records.values() if r.status != "interrupted")
        for r in self.records.values():
            if r.status != "interrupted":
                self._count(r)
        self.bookkeeping_s = 0.0
        self._init_rules()

    def _init_rules(self) -> None:
        exp = self.exp
        es = exp.early_stopping
        self.asha: ParetoASHA | None = None
        if es.method == "pareto-asha":
            rungs = experiment_rungs(es.method, es.rungs, exp.training.epochs, es.eta)
            if rungs:
                self.asha = ParetoASHA(rungs, self.objectives, eta=es.eta, grace=es.grace)
        b = exp.budget
        self.budget = BudgetRule(b.train_tflops, b.device_hours, b.wall_hours)
        pl = exp.plateau
        self.plateau = PlateauRule(pl.window, pl.threshold, pl.min_trials) if pl.enabled else None
        self.hv_curve: list[tuple[float, float]] = []  # (training TFLOPs spent, hypervolume) per finished trial
        self._running_flops: dict[int, float] = {}
        if self.completed():  # a resumed search: its curve starts where the dead driver's ended
            self.state.hypervolume = self.front()[1]
            self._add_curve_point()

    # -- Observer ----------------------------------------------------------------------------------------------

    def propose(self) -> TrialSpec | None:
        while self.proposed < self.state.planned and not self.over_failure_limit() and not self._check_stop():
            cand = self.controller.propose()
            self.proposed += 1
            self.state.rejected = self.controller.stats.rejected
            self.state.screened = self.controller.stats.screened_out
            if cand.error:  # could not be built or profiled: a failed trial, already told to Optuna
                now = time.time()
                rec = TrialRecord(number=cand.number, params=cand.params, training=cand.training, profile={},
                                  status="failed", reason=cand.error, start_time=now, end_time=now)
                self.records[rec.number] = rec
                self._finish(rec)
                continue
            assert cand.profile is not None
            prof = {**cand.profile.as_dict(), "size_mb": float32_size_mb(cand.profile.params)}
            self.records[cand.number] = TrialRecord(
                number=cand.number, params=cand.params, training=cand.training,
                profile={**{k: prof[k] for k in PROFILE_METRICS if prof.get(k) is not None},
                         **{f"proxy_{k}": v for k, v in cand.scores.items()}},
            )
            return TrialSpec(
                number=cand.number, params=cand.params, space_yaml=self.space_yaml, space_source=self.space.source,
                space_hash=self.space.hash, data=asdict(self.exp.data), training=cand.training,
                seed=trial_seed(self.exp, cand.number), mflops=cand.profile.mflops,
                cpu_threads=max(1, int(self.exp.resources.cpu)), device="auto",
                extra={"profiled": sorted(self.records[cand.number].profile),
                       "latency": {"warmup": self.exp.profile.warmup, "repeats": self.exp.profile.repeats}},
            )
        return None

    def on_trial_start(self, number: int) -> None:
        self.records[number].start_time = time.time()
        self.state.running += 1
        self._update()

    def on_epoch(self, number: int, metrics: dict[str, float]) -> None:
        self.records[number].history.append(metrics)

    def should_stop(self, number: int, metrics: dict[str, float]) -> str | None:
        """Asked at every epoch report of a running trial: why to stop it now (a spent budget, or Pareto-ASHA
        at a rung), or None to let it go on."""
        self._running_flops[number] = metrics.get("train_flops", 0.0)
        reason = self.budget.reason(self._spent())
        if reason is not None:
            self.state.stop_reason = self.state.stop_reason or reason
            return reason
        if self.asha is None or "epoch" not in metrics:
            return None
        rec = self.records[number]
        point = {**rec.profile, **metrics}
        point = {name: point.get(name, float("nan")) for name, _ in self.objectives}
        first = self.asha.rungs[0]
        acc = self.controller.accuracy_name
        if acc is not None and metrics["epoch"] >= first and number not in self.asha.recorded[first]:
            self.controller.observe_rung(number, point[acc])  # the surrogate (if on) learns the first rung's accuracy
        if self.asha.on_result(number, metrics["epoch"], point):
            return None
        d = self.asha.decisions[-1][1]
        return (f"pareto-asha: stopped after {d.rung:g} of {self.exp.training.epochs} epochs, place {d.position + 1} "
                f"of {d.n} at that rung (the top {d.keep} go on, eta={self.asha.eta:g})")

    def on_trial_pruned(self, number: int, reason: str, metrics: dict[str, float]) -> None:
        """A trial the scheduler stopped early: billed for the epochs it ran, told to Optuna as pruned."""
        rec = self.records[number]
        rec.end_time, rec.status, rec.reason = time.time(), "pruned", reason
        rec.metrics = {**rec.profile, **metrics}
        epochs, done = float(rec.training.get("epochs", self.exp.training.epochs)), float(metrics.get("epoch", 0.0))
        spent = metrics.get("train_flops", 0.0)
        saved = spent * (epochs - done) / done if done > 0 else 0.0
        rec.metrics["saved_train_flops"] = saved
        self.state.saved_tflops += saved / 1e12
        self.controller.tell_pruned(number, reason, record=rec.to_json())
        self.state.running = max(0, self.state.running - 1)
        self._finish(rec)

    def on_trial_complete(self, number: int, final: dict[str, float], checkpoint_dir: str | None) -> None:
        rec = self.records[number]
        rec.end_time, rec.status, rec.checkpoint_dir = time.time(), "complete", checkpoint_dir
        rec.metrics = {**rec.profile, **final}
        self.controller.tell(number, rec.metrics, record=rec.to_json())
        self.state.running = max(0, self.state.running - 1)
        self._finish(rec)

    def on_trial_failed(self, number: int, reason: str) -> None:
        rec = self.records[number]
        rec.end_time, rec.status, rec.reason = time.time(), "failed", reason
        rec.metrics = dict(rec.profile)
        self.controller.tell_failed(number, reason, record=rec.to_json())
        self.state.running = max(0, self.state.running - 1)
        self._finish(rec)

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _spent(self) -> Spent:
        per_trial = self.exp.resources.gpu or self.exp.resources.cpu
        now = time.time()
        running = [r for r in self.records.values() if r.status == "pending" and r.start_time > 0]
        device_s = self.state.trial_seconds + sum(now - r.start_time for r in running)
        flops = self.state.train_tflops * 1e12 + sum(self._running_flops.get(r.number, 0.0) for r in running)
        return Spent(train_flops=flops, device_seconds=device_s * per_trial, wall_seconds=now - self.started)

    def _check_stop(self) -> bool:
        """True (and ``state.stop_reason`` set) once a budget is spent or the plateau rule fires."""
        if self.state.stop_reason is None:
            self.state.stop_reason = self.budget.reason(self._spent())
        if self.state.stop_reason is None and self.plateau is not None:
            self.state.stop_reason = self.plateau.reason()
        if self.state.stop_reason is not None:
            log.info("search stopping: %s", self.state.stop_reason)
        return self.state.stop_reason is not None

    def _add_curve_point(self) -> None:
        self.hv_curve.append((self.state.train_tflops, self.state.hypervolume))
        if self.plateau is not None:
            self.plateau.add(self.state.train_tflops, self.state.hypervolume)

    def over_failure_limit(self) -> bool:
        limit = self.exp.search.max_failures
        return limit is not None and self.state.failed > limit

    def completed(self) -> list[TrialRecord]:
        return [r for r in sorted(self.records.values(), key=lambda r: r.number) if r.status == "complete"]

    def front(self) -> tuple[list[TrialRecord], float]:
        done = self.completed()
        rows = [r.metrics for r in done]
        mask = pareto_mask(rows, self.objectives)
        for r, m in zip(done, mask, strict=True):
            r.pareto = m
        return [r for r, m in zip(done, mask, strict=True) if m], hypervolume(rows, self.objectives, self.reference)

    def _count(self, rec: TrialRecord) -> None:
        self.state.done += 1
        self.state.failed += rec.status == "failed"
        self.state.pruned += rec.status == "pruned"
        self.state.train_tflops += rec.metrics.get("train_flops", 0.0) / 1e12
        self.state.trial_seconds += max(0.0, rec.end_time - rec.start_time)

    def _finish(self, rec: TrialRecord) -> None:
        t0 = time.perf_counter()
        if rec.start_time == 0.0:
            rec.start_time = rec.end_time
        rec.metrics.update(bill_trial(rec, self.exp.resources, self.exp.energy).as_metrics())
        self._count(rec)
        front, hv = self.front()
        self.state.pareto_size, self.state.hypervolume = len(front), hv
        self._running_flops.pop(rec.number, None)
        self._add_curve_point()
        self._check_stop()
        self.tracker.defer(self.tracker.log_trial, rec)
        if time.time() - self._last_progress >= self.progress_every_s:
            self.tracker.defer(self.tracker.log_progress, self.state.done, self.progress_metrics())
            self._last_progress = time.time()
        if time.time() - self._last_artifacts > self.artifact_every_s:
            self.log_front_artifacts(deferred=True)
        self.bookkeeping_s += time.perf_counter() - t0
        self._update()

    def progress_metrics(self) -> dict[str, float]:
        s, c = self.state, self.controller.stats
        return {
            "trials_finished": s.done, "trials_failed": s.failed, "pareto_size": s.pareto_size,
            "hypervolume": s.hypervolume, "wall_time_s": time.time() - self.started,
            "trial_compute_tflops": s.train_tflops, "trial_compute_s": s.trial_seconds,
            "rejected_candidates": c.rejected, "rejected_saved_tflops": c.rejected_saved_train_flops / 1e12,
            **self._cheap_metrics(),
        }

    def _cheap_metrics(self) -> dict[str, float]:
        """Early stopping, screening and proxy-trust figures (only those of the features in use)."""
        s, out = self.state, {}
        if self.asha is not None:
            out.update({"trials_early_stopped": s.pruned, "early_stop_saved_tflops": s.saved_tflops})
        if self.exp.proxy.use != "off":
            out["candidates_screened_out"] = s.screened
            out.update({f"proxy_rho_{k}": v for k, v in self.controller.proxy_correlations().items() if v == v})
        if self.plateau is not None and (rate := self.plateau.rate()) is not None:
            out["plateau_rate"] = rate
        return out

    def log_front_artifacts(self, deferred: bool = False) -> None:
        """Write pareto.csv, and pareto.png and hv_vs_compute.png at most every ``plots_every_s`` (always when not
        deferred: the final call), on the parent run (rendered on the writer thread when deferred)."""
        done = self.completed()
        if not done:
            return
        front, _ = self.front()
        rows, mask = [dict(r.metrics) for r in done], [r.pareto for r in done]
        numbers = [r.number for r in front]
        title = f"{self.exp.name}: {len(done)} trials, {len(front)} Pareto-optimal"

        curve, stop = list(self.hv_curve), self.state.stop_reason
        tags = {"nas.pareto_trials": ",".join(map(str, numbers))}
        if self.exp.proxy.use != "off":
            tags["nas.proxy_active"] = self.controller.active_proxy()

        plots = not deferred or time.time() - self._last_plots >= self.plots_every_s
        if plots:
            self._last_plots = time.time()

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
    return exp.search.seed * 100_003 + number


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
