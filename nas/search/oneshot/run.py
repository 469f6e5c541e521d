"""The one-shot search's own stages (``search: {strategy: one-shot}``), run inside ``nas.search.api.run_search``.

``run_search`` validates, opens (driver lease, signal handlers, energy meter, parent run, durable study, the
search loop) and finalizes (front, Pareto models, bill, search card) a one-shot search exactly as any other; only
the trials stage differs, and lives here:

1. The supernet trains as ONE Ray trial (on a GPU when the trial holds one), checkpointed; billed as search
   compute.
2. A controller (its own in-memory study, the same sampler and constraints) proposes ``one_shot.subnets``
   architectures, scored with inherited weights after BN recalibration: one table artifact on the parent
   (``one_shot_subnets.csv``), not child runs; billed as search compute.
3. The ``top_k`` of that ranking plus ``controls`` random ones train stand-alone through the search loop on the
   Ray backend (child runs, billed): the front the user gets. Kendall's tau between their supernet and
   stand-alone accuracies is logged as ``one_shot_kendall_tau``; below ``tau_threshold`` (or undefined) the
   search says so and runs ``fallback_trials`` more trials of the multi-fidelity search (Pareto-ASHA) in the same
   study, loop and run.

A signal during 1 or 2 stops the search at once (the parent run ends KILLED); during 3, gracefully, as any search.
A one-shot search is not resumable (:func:`check_one_shot` refuses ``--resume`` before anything is written).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from nas.config.experiment import (
    EarlyStoppingConfig,
    Experiment,
    PlateauConfig,
    ProxyConfig,
    SurrogateConfig,
)
from nas.cost.ledger import search_compute_record
from nas.errors import ConfigError
from nas.oneshot.ranking import kendall_tau, ranking_png
from nas.oneshot.rules import has_supernet
from nas.oneshot.supernet import arch_key
from nas.oneshot.trial import SupernetSpec, load_supernet
from nas.search.backends.base import RunnerTimes
from nas.search.backends.ray import RayBackend, train_supernet_trial
from nas.search.controller.core import Controller, ControllerStats
from nas.search.loop import SearchLoop
from nas.search.oneshot.score import pick_finalists, score_subnets, table_csv
from nas.search.signals import GracefulStop
from nas.space import Space
from nas.stopping import BudgetRule, ParetoASHA, experiment_rungs
from nas.tracking.tracker import SearchTracker
from nas.training.records import TrialRecord
from nas.training.trial import pick_device

log = logging.getLogger(__name__)

TAU_METRIC = "one_shot_kendall_tau"


def check_one_shot(exp: Experiment, space: Space, probe: Controller, resume: str | None) -> None:
    """ConfigError, before anything is written, for a one-shot search that cannot run as asked."""
    if resume:
        raise ConfigError("--resume", "", "a one-shot search cannot be resumed yet",
                          "start it again (the supernet checkpoint is under the Ray storage path)")
    if not has_supernet(space.builder):
        raise ConfigError(exp.source, "search/strategy", f"builder {space.builder!r} offers no supernet",
                          "use `strategy: full`, or register a SharingRule for it (nas.oneshot.register_sharing)")
    if probe.accuracy_name is None:
        raise ConfigError(exp.source, "objectives", "a one-shot search needs exactly one maximized accuracy "
                          "objective (the supernet scores it)", "add `{name: val_accuracy, direction: maximize}`")


def finalists_experiment(exp: Experiment, trials: int | None = None) -> Experiment:
    """What the stand-alone stage runs: the finalists as chosen (no early stopping, proxy screening, surrogate
    or plateau rule), ``trials`` of them (default: ``top_k + controls``)."""
    assert exp.one_shot is not None
    n = exp.one_shot.top_k + exp.one_shot.controls if trials is None else trials
    return replace(exp, search=replace(exp.search, trials=n), early_stopping=EarlyStoppingConfig(),
                   proxy=ProxyConfig(), surrogate=SurrogateConfig(), plateau=PlateauConfig())


@dataclass
class OneShotOutcome:
    """What the stages leave for the search's finalize step."""

    times: RunnerTimes
    stats: list[ControllerStats]  # the scoring controller's sampler and profiling time
    info: dict[str, Any]  # tau, pairs, figures and the two search-compute records: SearchResult.one_shot

    @property
    def records(self) -> list[TrialRecord]:
        """Search compute outside the trials, billed with them: the supernet's training, the scoring."""
        return [self.info["supernet_record"], self.info["scoring_record"]]


def run_one_shot(exp: Experiment, space: Space, splits: Any, tracker: SearchTracker, loop: SearchLoop,
                 controller: Controller, reference: dict[str, float], run_id: str, storage_root: str,
                 stop: GracefulStop) -> OneShotOutcome:
    """Stages 1-3 of the module docstring on an open search: ``loop`` and ``controller`` (on the durable study)
    run the finalists; ``stop`` (the search's GracefulStop) is handed the loop once stand-alone training starts."""
    cfg = exp.one_shot
    assert cfg is not None
    objectives = [(o.name, o.direction) for o in exp.objectives]
    tracker.set_tags({"nas.strategy": "one-shot"})
    # 1. the supernet: one Ray trial
    spec = SupernetSpec(space_yaml=Path(space.source).read_text(), space_source=space.source, space_hash=space.hash,
                        data=asdict(exp.data), epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                        optimizer=cfg.optimizer, sandwich=cfg.sandwich, seed=exp.search.seed,
                        cpu_threads=max(1, int(exp.resources.cpu)), checkpoint_every=cfg.checkpoint_every)
    t0 = time.time()
    sn_metrics, ckpt = train_supernet_trial(spec.to_dict(), cpu=exp.resources.cpu, gpu=exp.resources.gpu,
                                            storage_path=storage_root, name=f"{run_id}-supernet")
    supernet_rec = search_compute_record(-1, "one-shot supernet training (one Ray trial)",
                                         sn_metrics.get("train_flops", 0.0), sn_metrics.get("trial_seconds", 0.0),
                                         t0, time.time())
    tracker.log_progress(0, {"one_shot_supernet_tflops": sn_metrics.get("train_flops", 0.0) / 1e12,
                             "one_shot_supernet_s": sn_metrics.get("trial_seconds", 0.0),
                             "one_shot_supernet_train_loss": sn_metrics.get("train_loss", math.nan),
                             "one_shot_supernet_on_gpu": sn_metrics.get("on_gpu", 0.0)})
    tracker.set_tags({"nas.one_shot_checkpoint": ckpt})

    # 2. score subnets with inherited weights (driver; its own in-memory study)
    device = str(pick_device("auto"))
    supernet = load_supernet(spec, ckpt, device=device)
    scoring_exp = replace(finalists_experiment(exp), search=replace(exp.search, trials=cfg.subnets))
    scorer = Controller(scoring_exp, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
                        train_samples_per_trial=exp.training.epochs * len(splits.train), reference=reference)
    t1 = time.time()
    scored = score_subnets(scorer, supernet, splits, subnets=cfg.subnets, batch=cfg.batch,
                           calibration=cfg.calibration_batches, calibration_batch_size=cfg.calibration_batch_size,
                           seed=exp.search.seed, device=device)
    scoring_rec = search_compute_record(-2, "one-shot subnet scoring (BN recalibration + validation, no training)",
                                        scored.forward_flops, scored.seconds, t1, time.time())
    top, controls = pick_finalists(scored.rows, objectives, top_k=cfg.top_k, controls=cfg.controls,
                                   seed=exp.search.seed)
    roles = {arch_key(r.params): "top" for r in top} | {arch_key(r.params): "control" for r in controls}
    acc_name = scorer.accuracy_name
    assert acc_name is not None
    supernet_acc = {arch_key(r.params): r.metrics[acc_name] for r in [*top, *controls]}
    tracker.log_progress(0, {"one_shot_subnets_scored": float(len(scored.rows)),
                             "one_shot_scoring_s": scored.seconds,
                             "one_shot_scoring_tflops": scored.forward_flops / 1e12,
                             "one_shot_rejected": float(scorer.stats.rejected)})

    # 3. finalists stand-alone, through the search loop on the Ray backend
    for r in [*top, *controls]:
        controller.study.enqueue_trial(r.params)
    loop.exp = finalists_experiment(exp, len(roles))
    loop.state.planned = len(roles)
    times = _run_trials(exp, loop, stop, storage_root, f"{run_id}-final", len(roles))
    trained = {arch_key(r.params): (roles[arch_key(r.params)], r.metrics[acc_name])
               for r in loop.completed() if arch_key(r.params) in roles}
    pairs = [(supernet_acc[k], a) for k, (_, a) in trained.items()]
    tau = kendall_tau([p[0] for p in pairs], [p[1] for p in pairs])
    tracker.log_progress(loop.state.done, {TAU_METRIC: tau, "one_shot_tau_pairs": float(len(pairs))})
    tracker.log_artifacts({"one_shot_subnets.csv": table_csv(scored.rows, objectives, trained),
                           "one_shot_ranking.png": ranking_png(pairs, tau, cfg.tau_threshold)})
    trusted = math.isfinite(tau) and tau >= cfg.tau_threshold
    tracker.set_tags({"nas.one_shot_trusted": str(trusted).lower()})

    # fallback: the supernet's ranking is not trusted -> the multi-fidelity search with what is left
    if not trusted and stop.signum is None:
        more = cfg.fallback_trials if cfg.fallback_trials is not None else max(0, exp.search.trials - len(roles))
        log.warning("one-shot: Kendall's tau %.3f between supernet and stand-alone accuracy is below %.2f (or "
                    "undefined): the supernet's ranking is not trusted; running %d trials of the multi-fidelity "
                    "search (Pareto-ASHA) instead", tau, cfg.tau_threshold, more)
        tracker.set_tags({"nas.one_shot_fallback": f"tau {tau:.3f} < {cfg.tau_threshold}: {more} Pareto-ASHA trials"})
        if more > 0:
            es = exp.early_stopping if exp.early_stopping.method == "pareto-asha" else EarlyStoppingConfig(method="pareto-asha")
            spent = loop.state.train_tflops + (supernet_rec.metrics["train_flops"] + scored.forward_flops) / 1e12
            budget = exp.budget
            if budget.train_tflops is not None:
                budget = replace(budget, train_tflops=max(1e-9, budget.train_tflops - spent))
            loop.exp = replace(exp, early_stopping=es, budget=budget,
                               search=replace(exp.search, trials=len(roles) + more))
            rungs = experiment_rungs(es.method, es.rungs, exp.training.epochs, es.eta)
            loop.asha = ParetoASHA(rungs, objectives, eta=es.eta, grace=es.grace) if rungs else None
            loop.budget = BudgetRule(budget.train_tflops, budget.device_hours, budget.wall_hours)
            loop.state.planned = len(roles) + more
            more_times = _run_trials(exp, loop, stop, storage_root, f"{run_id}-fallback", more)
            times = RunnerTimes(propose_s=times.propose_s + more_times.propose_s,
                                callbacks_s=times.callbacks_s + more_times.callbacks_s)
    if stop.signum is None and loop.state.stop_reason is None:  # ended as planned (not by a budget or a signal)
        loop.state.stop_reason = "one-shot" if trusted else "one-shot: tau below threshold, multi-fidelity fallback"
    info = {"tau": tau, "trusted": trusted, "pairs": pairs, "scored": len(scored.rows),
            "supernet_flops": supernet_rec.metrics["train_flops"], "scoring_flops": scored.forward_flops,
            "supernet_record": supernet_rec, "scoring_record": scoring_rec}
    return OneShotOutcome(times, [scorer.stats], info)


def _run_trials(exp: Experiment, loop: SearchLoop, stop: GracefulStop, storage_root: str, name: str,
                max_trials: int) -> RunnerTimes:
    loop.backend = RayBackend.for_experiment(exp, storage_path=storage_root, name=name)
    stop.loop = loop  # from here a signal stops the search gracefully
    return loop.backend.run(loop, max_trials=max_trials)


__all__ = ["TAU_METRIC", "OneShotOutcome", "check_one_shot", "finalists_experiment", "run_one_shot"]
