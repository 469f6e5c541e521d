"""``run_search``: the library entry point behind ``nas search`` (and ``--resume``).

Order matters: everything that can refuse the input is checked before anything is written (space, data, tracking
store, constraints that no architecture meets, the Ray address); then the parent run is created (or re-opened),
the Optuna study is created (or loaded) in durable storage, the trials run, and at the end every Pareto model is
logged and registered.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas.config.experiment import Experiment
from nas.config.objectives import METRICS
from nas.cost.energy import EnergyMeter
from nas.cost.environment import hardware, package_versions
from nas.cost.ledger import SearchBill, bill_search, effective_workers, search_card
from nas.errors import ConfigError
from nas.pareto import reference_point as pareto_reference_point
from nas.proxies.scorer import ArchitectureScorer, proxy_set
from nas.search.backends.ray import cluster_resources, init_ray, run_trials
from nas.search.controller.core import Controller
from nas.search.loop import SearchLoop, SearchState, trial_seed
from nas.search.resume import missing_child_runs, recover_records
from nas.space import Space, load_space
from nas.tracking.models import write_model_dir
from nas.tracking.tracker import SearchTracker, client_for, get_search_run
from nas.training.records import TrialRecord
from nas.training.trial import cached_splits

log = logging.getLogger(__name__)

#: seeds of the random architectures that set the hypervolume reference (apart from other probes' seeds)
REFERENCE_SEED_BASE = 10_000


class SearchAbortedError(RuntimeError):
    """The search stopped early (``max_failures`` exceeded); everything recorded so far is kept."""


@dataclass
class SearchResult:
    run_id: str
    tracking_uri: str
    experiment_id: str
    records: list[TrialRecord]
    pareto: list[TrialRecord]
    hypervolume: float
    reference: dict[str, float]
    state: SearchState
    overhead_s: dict[str, float] = field(default_factory=dict)
    bill: SearchBill | None = None
    one_shot: dict[str, Any] | None = None  # a one-shot search's tau, pairs and supernet figures (nas.search.oneshot.run)


def reference_point(exp: Experiment, controller: Controller, samples: int = 16) -> dict[str, float]:
    """Hypervolume reference, fixed for the whole search (:func:`nas.pareto.reference_point`): a cost's
    constraint max when set, else 1.1 × the largest value among ``samples`` seeded random architectures."""
    caps = {c.metric: float(c.max) for c in exp.constraints if c.max is not None}
    need = [o.name for o in exp.objectives if METRICS[o.name].source == "profile" and o.name not in caps]
    seen: dict[str, list[float]] = {name: [] for name in need}
    for i in range(samples if need else 0):
        try:
            prof = controller.profile(controller.space.sample_random(REFERENCE_SEED_BASE + i))
        except Exception:  # an unbuildable sample says nothing about the reference
            continue
        for name in need:
            seen[name].append(controller.metric_value(prof, name))
    objectives = [(o.name, o.direction) for o in exp.objectives]
    return pareto_reference_point(objectives, seen, given={k: v for k, v in caps.items() if k in dict(objectives)})


def ray_storage_for(exp: Experiment) -> str:
    """Where Ray Tune keeps trial checkpoints: ``nas_runs/`` beside a sqlite tracking store, else a temp dir."""
    uri = exp.tracking.uri
    if uri.startswith("sqlite:///"):
        return str(Path(uri[len("sqlite:///"):]).expanduser().resolve().parent / "nas_runs")
    return str(Path(tempfile.gettempdir(), "nas_runs").resolve())


def run_search(exp: Experiment, *, address: str | None = None, storage_path: str | None = None,
               on_update: Callable[[SearchState], None] | None = None, register_models: bool = True,
               resume: str | None = None) -> SearchResult:
    """Run (or, with ``resume=RUN_ID``, continue) the search described by ``exp``. Blocking.

    The driver's torch uses one thread while the search runs (restored after), so profiling does not compete with
    the trials for cores. Raises ConfigError for bad input before anything is written, and SearchAbortedError
    when more than ``search.max_failures`` trials fail.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if exp.one_shot is not None:  # weight-sharing search: its own orchestration (nas/oneshot/run.py)
            from nas.search.oneshot.run import run_one_shot

            return run_one_shot(exp, storage_root=storage_path or ray_storage_for(exp), start_parent=_start_parent,
                                reference_point=reference_point, result_cls=SearchResult, address=address,
                                on_update=on_update, register_models=register_models, resume=resume)
        return _run_search(exp, address=address, storage_path=storage_path, on_update=on_update,
                           register_models=register_models, resume=resume)
    finally:
        torch.set_num_threads(threads)


def _run_search(exp: Experiment, *, address: str | None, storage_path: str | None,
                on_update: Callable[[SearchState], None] | None, register_models: bool,
                resume: str | None) -> SearchResult:
    t_start, started_at = time.perf_counter(), time.time()
    # RAPL / NVML where this machine exposes them, else estimated from exp.energy (the bill says which)
    meter = EnergyMeter(exp.energy, cpu_cores=exp.search.concurrency * exp.resources.cpu,
                        gpu_fraction=exp.search.concurrency * exp.resources.gpu).start()
    # 1. Everything that can refuse the input, before anything is written.
    if exp.early_stopping.method == "pareto-promote":
        raise ConfigError(exp.source, "early_stopping/method",
                          "pareto-promote runs in `nas bench` only for now: a real search does not yet train a "
                          "trial stopped at a rung again later", "use `method: pareto-asha` for `nas search`")
    space = load_space(exp.space)
    splits = cached_splits(asdict(exp.data))
    client = client_for(exp.tracking.uri)
    if resume:
        get_search_run(client, resume)
    probe = Controller(exp, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
                       train_samples_per_trial=exp.training.epochs * len(splits.train))
    probe.check_feasible()
    t0 = time.perf_counter()
    init_ray(address)
    ray_init_s = time.perf_counter() - t0

    # 2. The parent run and the durable study.
    tracker = SearchTracker(exp.tracking.uri, exp.experiment_name)
    storage = exp.study_storage()
    if resume:
        run = tracker.attach(resume)
        tags = run.data.tags
        if tags.get("nas.space_hash") != space.hash:
            tracker.finish("FAILED")
            raise ConfigError("--resume", "", f"the space changed since run {resume} started "
                              f"(hash {space.hash} != {tags.get('nas.space_hash')})",
                              "resume with the same space file, or start a new search")
        storage, study_name = tags.get("nas.study_storage") or None, tags["nas.study_name"]
        if storage is None:
            tracker.finish("FAILED")
            raise ConfigError("--resume", "", f"run {resume} kept its Optuna study in memory, so it cannot resume",
                              "set `search.storage` (any RDB URL) or use a sqlite tracking store")
        reference = json.loads(run.data.params["hv_reference"])
        run_id = resume
    else:
        t_ref = time.perf_counter()
        reference = reference_point(exp, probe)
        probe.stats.profile_seconds += time.perf_counter() - t_ref
        run_id = _start_parent(tracker, exp, space, splits.input_shape, splits.num_classes, reference, storage)
        study_name = f"nas-{run_id}"
        if storage is None:
            log.warning("the Optuna study lives in memory (non-sqlite tracking store, no search.storage): "
                        "this search cannot be resumed")
    scorer = None
    if exp.proxy.use != "off":
        scorer = ArchitectureScorer.from_dataset(space, splits.train, proxy_set(exp.proxy.name),
                                                 batch_size=exp.proxy.batch_size, num_classes=splits.num_classes,
                                                 seed=exp.search.seed)
    controller = Controller(exp, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
                            train_samples_per_trial=exp.training.epochs * len(splits.train),
                            storage=storage, study_name=study_name, scorer=scorer, reference=reference)
    records = recover_records(controller) if resume else []
    if not resume and controller.seed_prior():
        log.info("proxy prior: the first trials are the best-scored of %d random architectures", exp.proxy.prior_samples)
    if resume:
        for rec in missing_child_runs(records, tracker.logged_trials()):
            tracker.log_trial(rec)
    loop = SearchLoop(exp, space, controller, tracker, reference, on_update=on_update, records=records)
    loop.state.run_id = run_id

    # 3. The trials.
    remaining = exp.search.trials - loop.proposed
    try:
        times = run_trials(loop, max_trials=remaining, concurrency=exp.search.concurrency, cpu=exp.resources.cpu,
                           gpu=exp.resources.gpu, storage_path=storage_path or ray_storage_for(exp),
                           name=f"{run_id}-{int(time.time())}", time_budget_s=exp.search.time_budget_s)
    except BaseException:
        tracker.finish("KILLED")
        raise

    # 4. The front, its models, the bill.
    tracker.flush()
    front, hv = loop.front()
    loop.log_front_artifacts()
    model_name = f"nas-{exp.experiment_name}" if register_models else None
    ranked = sorted(front, key=lambda r: -r.metrics.get("val_accuracy", 0.0))
    t_models = time.perf_counter()
    for rank, rec in enumerate(ranked):
        tracker.mark_pareto(rec, rank)
        if rec.checkpoint_dir and Path(rec.checkpoint_dir).is_dir():
            with tempfile.TemporaryDirectory() as d:
                write_model_dir(d, rec, space, splits.input_shape, splits.num_classes, trial_seed(exp, rec.number),
                                asdict(exp.data))
                tracker.log_model(rec, d, model_name)
    models_s = time.perf_counter() - t_models
    sampler_s = controller.stats.sampler_seconds + probe.stats.sampler_seconds + controller.stats.proxy_seconds
    profile_s = controller.stats.profile_seconds + probe.stats.profile_seconds
    overhead = {"sampler_s": sampler_s, "profile_s": profile_s, "tracking_s": tracker.seconds,
                "ray_init_s": ray_init_s,
                "propose_s": max(0.0, times.propose_s - controller.stats.sampler_seconds - controller.stats.profile_seconds),
                "callbacks_s": times.callbacks_s, "models_s": models_s, "total_s": time.perf_counter() - t_start}
    cluster = cluster_resources()
    workers = effective_workers(exp.search.concurrency, exp.search.trials, exp.resources, cluster.get("CPU", 1.0),
                                cluster.get("GPU", 0.0))
    this_driver = [r for r in loop.records.values() if r.start_time >= started_at]  # a resume bills its own part
    bill = bill_search(this_driver, overhead, overhead["total_s"], workers, exp.resources, exp.energy,
                       measured_energy=meter.stop(), started_at=started_at,
                       flops_saved_by_rejections=controller.stats.rejected_saved_train_flops)
    card_json, card_md = search_card(bill, space_hash=space.hash, seeds={"search": exp.search.seed, "data": exp.data.seed},
                                     hardware=hardware(), versions=package_versions(), experiment=exp.to_dict())
    tracker.log_progress(loop.state.done, {**loop.progress_metrics(), **bill.as_metrics()})
    tracker.log_artifacts({"search_card.json": card_json, "search_card.md": card_md}, tags=bill.as_tags())
    aborted = loop.over_failure_limit()
    stop_reason = "max_failures" if aborted else loop.state.stop_reason or "trials"
    if not aborted and loop.state.stop_reason is None and loop.proposed < exp.search.trials:
        stop_reason = f"time_budget_s: search.time_budget_s={exp.search.time_budget_s} reached"
    loop.state.stop_reason = stop_reason
    tracker.finish("FAILED" if aborted else "FINISHED",
                   tags={"nas.stop_reason": stop_reason, "nas.pareto_size": len(front)})
    if aborted:
        reasons = sorted({r.reason for r in loop.records.values() if r.status == "failed"})
        raise SearchAbortedError(
            f"search {run_id} stopped: {loop.state.failed} trials failed, more than search.max_failures "
            f"({exp.search.max_failures}). Reasons: {'; '.join(reasons)[:1500]}. Everything recorded so far is in "
            f"MLflow; fix the cause, then start again or resume with --resume {run_id}"
        )
    return SearchResult(run_id, exp.tracking.uri, tracker.experiment_id,
                        sorted(loop.records.values(), key=lambda r: r.number), ranked, hv, reference, loop.state,
                        overhead, bill)


def _start_parent(tracker: SearchTracker, exp: Experiment, space: Space, input_shape: tuple[int, ...],
                  num_classes: int, reference: dict[str, float], storage: str | None) -> str:
    versions, hw = package_versions(), hardware()
    run_name = f"{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_id = tracker.start(
        run_name=run_name,
        params={"experiment": exp.source, "space": space.source, "space_hash": space.hash, "builder": space.builder,
                "sampler": exp.search.sampler, "trials": exp.search.trials, "concurrency": exp.search.concurrency,
                "seed": exp.search.seed, "data": exp.data.name, "data_seed": exp.data.seed,
                "epochs": exp.training.epochs, "resources_cpu": exp.resources.cpu, "resources_gpu": exp.resources.gpu,
                "objectives": ",".join(f"{o.name}:{o.direction}" for o in exp.objectives),
                "constraints": json.dumps([asdict(c) for c in exp.constraints]),
                "hv_reference": json.dumps(reference), "input_shape": list(input_shape), "num_classes": num_classes,
                "data_config": json.dumps(asdict(exp.data))},
        tags={"nas.space_hash": space.hash, "nas.seed": exp.search.seed, "nas.builder": space.builder,
              "nas.hardware": json.dumps(hw), "nas.versions": json.dumps(versions),
              "nas.study_storage": storage or ""},
        texts={"experiment.yaml": Path(exp.source).read_text() if Path(exp.source).is_file() else json.dumps(exp.raw),
               "space.yaml": Path(space.source).read_text(), "hardware.json": json.dumps(hw, indent=2),
               "versions.json": json.dumps(versions, indent=2)},
    )
    tracker.set_tags({"nas.study_name": f"nas-{run_id}"})
    return run_id
