"""The one-shot search, end to end (``search: {strategy: one-shot}``; called from ``nas.search.api.run_search``).

1. Validate (space has a supernet, one accuracy objective, data, tracking store, constraints), start Ray.
2. Parent run (MLflow) and the durable Optuna study, as for a plain search.
3. The supernet trains as ONE Ray trial (on a GPU when the trial holds one), checkpointed; billed.
4. The controller (its own in-memory study, same sampler and constraints) proposes ``one_shot.subnets``
   architectures, scored with inherited weights after BN recalibration: one table artifact on the parent
   (``one_shot_subnets.csv``), not child runs.
5. The ``top_k`` of that ranking plus ``controls`` random ones train stand-alone through the normal Ray path
   (child runs, billed): the front the user gets. Kendall's tau between their supernet and stand-alone accuracies
   is logged as ``one_shot_kendall_tau``; below ``tau_threshold`` (or undefined) the search says so and runs
   ``fallback_trials`` more trials of the multi-fidelity search (Pareto-ASHA) in the same study and run.
6. Front, models, bill (supernet and scoring billed as search compute), search card, as a plain search.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from nas.config.experiment import (
    EarlyStoppingConfig,
    Experiment,
    PlateauConfig,
    ProxyConfig,
    SurrogateConfig,
)
from nas.cost.energy import EnergyMeter
from nas.cost.environment import hardware, package_versions
from nas.cost.ledger import bill_search, effective_workers, search_card, search_compute_record
from nas.durable.fingerprint import fingerprint_doc
from nas.durable.study import new_location
from nas.errors import ConfigError
from nas.oneshot.ranking import kendall_tau, ranking_png
from nas.oneshot.rules import has_supernet
from nas.oneshot.supernet import arch_key
from nas.oneshot.trial import SupernetSpec, load_supernet
from nas.search.backends.ray import cluster_resources, init_ray, run_trials, train_supernet_trial
from nas.search.controller.core import Controller
from nas.search.loop import SearchLoop, SearchState, trial_seed
from nas.search.oneshot.score import pick_finalists, score_subnets, table_csv
from nas.space import load_space
from nas.stopping import BudgetRule, ParetoASHA, experiment_rungs
from nas.tracking.models import write_model_dir
from nas.tracking.tracker import SearchTracker, client_for
from nas.training.trial import cached_splits, pick_device

log = logging.getLogger(__name__)

TAU_METRIC = "one_shot_kendall_tau"


def run_one_shot(exp: Experiment, *, storage_root: str, start_parent: Callable[..., str],
                 reference_point: Callable[..., dict[str, float]], result_cls: Callable[..., Any],
                 address: str | None = None, on_update: Callable[[SearchState], None] | None = None,
                 register_models: bool = True, resume: str | None = None) -> Any:
    """Run the one-shot search of ``exp`` (module docstring). Blocking; ConfigError before anything is written.

    ``run_search`` passes what it shares with a plain search (so this module does not import it back): where Ray
    keeps checkpoints, how the parent run starts, the hypervolume reference rule, and its result class."""
    cfg = exp.one_shot
    assert cfg is not None
    t_start, started_at = time.perf_counter(), time.time()
    meter = EnergyMeter(exp.energy, cpu_cores=exp.search.concurrency * exp.resources.cpu,
                        gpu_fraction=exp.search.concurrency * exp.resources.gpu).start()
    # 1. validate
    if resume:
        raise ConfigError("--resume", "", "a one-shot search cannot be resumed yet",
                          "start it again (the supernet checkpoint is under the Ray storage path)")
    space = load_space(exp.space)
    if not has_supernet(space.builder):
        raise ConfigError(exp.source, "search/strategy", f"builder {space.builder!r} offers no supernet",
                          "use `strategy: full`, or register a SharingRule for it (nas.oneshot.register_sharing)")
    scoring_exp = replace(exp, proxy=ProxyConfig(), surrogate=SurrogateConfig(), plateau=PlateauConfig(),
                          early_stopping=EarlyStoppingConfig(), search=replace(exp.search, trials=cfg.subnets))
    splits = cached_splits(asdict(exp.data))
    client_for(exp.tracking.uri)
    samples = exp.training.epochs * len(splits.train)
    probe = Controller(scoring_exp, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
                       train_samples_per_trial=samples)
    if probe.accuracy_name is None:
        raise ConfigError(exp.source, "objectives", "a one-shot search needs exactly one maximized accuracy "
                          "objective (the supernet scores it)", "add `{name: val_accuracy, direction: maximize}`")
    probe.check_feasible()
    init_ray(address)

    # 2. parent run, durable study
    tracker = SearchTracker(exp.tracking.uri, exp.experiment_name)
    reference = reference_point(exp, probe)
    run_id = start_parent(tracker, exp, space, splits.input_shape, splits.num_classes, reference,
                          fingerprint_doc(exp.to_dict(), space.hash))
    study = new_location(exp.tracking.uri, exp.search.storage, run_id)  # one study per search, as run_search
    storage = study.storage
    tracker.set_tags({"nas.strategy": "one-shot", **study.tags})
    try:
        return _run(exp, cfg, space, splits, tracker, run_id, storage, reference, scoring_exp, storage_root,
                    on_update, register_models, t_start, started_at, meter, probe, result_cls)
    except BaseException:
        tracker.finish("FAILED")
        raise


def _run(exp, cfg, space, splits, tracker, run_id, storage, reference, scoring_exp, storage_root,  # type: ignore[no-untyped-def]
         on_update, register_models, t_start, started_at, meter, probe, result_cls):
    """Steps 3-6 of the module docstring, once the parent run exists (the caller ends it as FAILED on an error)."""
    objectives = [(o.name, o.direction) for o in exp.objectives]
    # 3. the supernet: one Ray trial
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

    # 4. score subnets with inherited weights (driver; its own in-memory study)
    device = str(pick_device("auto"))
    supernet = load_supernet(spec, ckpt, device=device)
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
    supernet_acc = {arch_key(r.params): r.metrics[scorer.accuracy_name] for r in [*top, *controls]}
    tracker.log_progress(0, {"one_shot_subnets_scored": float(len(scored.rows)),
                             "one_shot_scoring_s": scored.seconds,
                             "one_shot_scoring_tflops": scored.forward_flops / 1e12,
                             "one_shot_rejected": float(scorer.stats.rejected)})

    # 5. finalists stand-alone through the normal Ray path
    final_exp = replace(exp, search=replace(exp.search, trials=len(roles)), early_stopping=EarlyStoppingConfig(),
                        proxy=ProxyConfig(), surrogate=SurrogateConfig(), plateau=PlateauConfig())
    controller = Controller(final_exp, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
                            train_samples_per_trial=exp.training.epochs * len(splits.train), storage=storage,
                            study_name=f"nas-{run_id}", reference=reference)
    for r in [*top, *controls]:
        controller.study.enqueue_trial(r.params)
    loop = SearchLoop(final_exp, space, controller, tracker, reference, on_update=on_update)
    loop.state.run_id = run_id
    times = [run_trials(loop, max_trials=len(roles), concurrency=exp.search.concurrency, cpu=exp.resources.cpu,
                        gpu=exp.resources.gpu, storage_path=storage_root, name=f"{run_id}-final",
                        time_budget_s=exp.search.time_budget_s)]
    acc_name = scorer.accuracy_name
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
    if not trusted:
        more = cfg.fallback_trials if cfg.fallback_trials is not None else max(0, exp.search.trials - len(roles))
        log.warning("one-shot: Kendall's tau %.3f between supernet and stand-alone accuracy is below %.2f (or "
                    "undefined): the supernet's ranking is not trusted; running %d trials of the multi-fidelity "
                    "search (Pareto-ASHA) instead", tau, cfg.tau_threshold, more)
        tracker.set_tags({"nas.one_shot_fallback": f"tau {tau:.3f} < {cfg.tau_threshold}: {more} Pareto-ASHA trials"})
        if more > 0:
            es = exp.early_stopping if exp.early_stopping.method == "pareto-asha" else EarlyStoppingConfig(method="pareto-asha")
            spent = (loop.state.train_tflops + (supernet_rec.metrics["train_flops"] + scored.forward_flops) / 1e12)
            budget = exp.budget
            if budget.train_tflops is not None:
                budget = replace(budget, train_tflops=max(1e-9, budget.train_tflops - spent))
            loop.exp = replace(exp, early_stopping=es, budget=budget,
                               search=replace(exp.search, trials=len(roles) + more))
            rungs = experiment_rungs(es.method, es.rungs, exp.training.epochs, es.eta)
            loop.asha = ParetoASHA(rungs, objectives, eta=es.eta, grace=es.grace) if rungs else None
            loop.budget = BudgetRule(budget.train_tflops, budget.device_hours, budget.wall_hours)
            loop.state.planned = len(roles) + more
            times.append(run_trials(loop, max_trials=more, concurrency=exp.search.concurrency, cpu=exp.resources.cpu,
                                    gpu=exp.resources.gpu, storage_path=storage_root, name=f"{run_id}-fallback",
                                    time_budget_s=exp.search.time_budget_s))

    # 6. front, models, bill
    tracker.flush()
    front, hv = loop.front()
    loop.log_front_artifacts()
    model_name = f"nas-{exp.experiment_name}" if register_models else None
    ranked = sorted(front, key=lambda r: -r.metrics.get(acc_name, 0.0))
    t_models = time.perf_counter()
    for rank, rec in enumerate(ranked):
        tracker.mark_pareto(rec, rank)
        if rec.checkpoint_dir and Path(rec.checkpoint_dir).is_dir():
            with tempfile.TemporaryDirectory() as d:
                write_model_dir(d, rec, space, splits.input_shape, splits.num_classes, trial_seed(exp, rec.number),
                                asdict(exp.data))
                tracker.log_model(rec, d, model_name)
    stats = [controller.stats, scorer.stats, probe.stats]
    overhead = {"sampler_s": sum(s.sampler_seconds for s in stats), "profile_s": sum(s.profile_seconds for s in stats),
                "tracking_s": tracker.seconds, "callbacks_s": sum(t.callbacks_s for t in times),
                "propose_s": max(0.0, sum(t.propose_s for t in times) - controller.stats.sampler_seconds
                                 - controller.stats.profile_seconds),
                "models_s": time.perf_counter() - t_models, "total_s": time.perf_counter() - t_start}
    cluster = cluster_resources()
    workers = effective_workers(exp.search.concurrency, max(1, len(loop.records)), exp.resources,
                                cluster.get("CPU", 1.0), cluster.get("GPU", 0.0))
    records = [*loop.records.values(), supernet_rec, scoring_rec]
    bill = bill_search(records, overhead, overhead["total_s"], workers, exp.resources, exp.energy,
                       measured_energy=meter.stop(), started_at=started_at,
                       flops_saved_by_rejections=controller.stats.rejected_saved_train_flops)
    card_json, card_md = search_card(bill, space_hash=space.hash, seeds={"search": exp.search.seed,
                                     "data": exp.data.seed}, hardware=hardware(), versions=package_versions(),
                                     experiment=exp.to_dict())
    tracker.log_progress(loop.state.done, {**loop.progress_metrics(), **bill.as_metrics()})
    tracker.log_artifacts({"search_card.json": card_json, "search_card.md": card_md}, tags=bill.as_tags())
    stop = "one-shot" if trusted else "one-shot: tau below threshold, multi-fidelity fallback"
    loop.state.stop_reason = loop.state.stop_reason or stop
    if not front:
        tracker.finish("FAILED", tags={"nas.stop_reason": "no stand-alone training completed",
                                       "nas.pareto_size": 0})
        raise RuntimeError(f"one-shot search {run_id} produced no trained model: every stand-alone training failed")
    tracker.finish("FINISHED", tags={"nas.stop_reason": loop.state.stop_reason, "nas.pareto_size": len(front)})
    one_shot = {"tau": tau, "trusted": trusted, "pairs": pairs, "scored": len(scored.rows),
                       "supernet_flops": supernet_rec.metrics["train_flops"], "scoring_flops": scored.forward_flops,
                       "supernet_record": supernet_rec, "scoring_record": scoring_rec}
    return result_cls(run_id, exp.tracking.uri, tracker.experiment_id,
                      sorted(loop.records.values(), key=lambda r: r.number), ranked, hv, reference, loop.state,
                      overhead, bill, one_shot=one_shot)


__all__ = ["TAU_METRIC", "run_one_shot"]
