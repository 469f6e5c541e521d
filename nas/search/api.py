"""``run_search``: the library entry point behind ``nas search`` (and ``--resume``).

Four phases, each with one job (see :func:`run_search`):

1. **validate**: everything that can refuse the input (space, data, tracking store, constraints no architecture
   meets, the Ray cluster and whether it can hold one trial, and for a resume: the run, its study, the experiment's
   fingerprint). Nothing is written.
2. **open**: the driver lease, the parent run (created, or re-opened on resume), the Optuna study. From here on,
   every way out leaves the parent run in a true state: FINISHED, FAILED with the error, or KILLED with
   ``nas.stop_reason: interrupted``; the energy meter and the lease are released on every path
   (``contextlib.ExitStack``).
3. **run**: the trials. SIGINT/SIGTERM stop it gracefully (no new trials; trials in flight recorded as
   interrupted); a second signal stops at once.
4. **finalize**: the Pareto front, its tags and models (registered once each), the bill over the whole search.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from nas.config.experiment import Experiment
from nas.config.objectives import METRICS
from nas.cost.energy import EnergyMeter, EnergyReading
from nas.cost.environment import hardware, package_versions
from nas.cost.ledger import SearchBill, bill_if_missing, bill_search, effective_workers, search_card
from nas.durable.fingerprint import EXTENDABLE, differences, fingerprint, fingerprint_doc
from nas.durable.lease import DriverLease, LeaseHeldError
from nas.durable.study import (
    RUN_ATTR,
    TAG_JOURNAL,
    TAG_STORAGE,
    StudyLocation,
    new_location,
    owner,
    recorded_location,
)
from nas.errors import ConfigError
from nas.pareto import reference_point as pareto_reference_point
from nas.proxies.scorer import ArchitectureScorer, proxy_set
from nas.search.backends.ray import RayBackend, cluster_resources, init_ray, node_resources
from nas.search.controller import Controller, open_storage
from nas.search.loop import SearchLoop, SearchState, trial_seed
from nas.search.oneshot.run import OneShotOutcome, check_one_shot, finalists_experiment, run_one_shot
from nas.search.preflight import preflight
from nas.search.resume import missing_child_runs, record_in_flight, recover_records, reseed_sampler
from nas.search.signals import GracefulStop
from nas.space import Space, load_space
from nas.tracking.models import write_model_dir
from nas.tracking.sync import check_store_location, read_text_artifact, registered_versions, sync_pareto
from nas.tracking.tracker import SearchTracker, client_for, get_search_run, set_run_tags, trial_runs
from nas.training.records import TrialRecord
from nas.training.trial import cached_splits

log = logging.getLogger(__name__)

#: seeds of the random architectures that set the hypervolume reference (apart from other probes' seeds)
REFERENCE_SEED_BASE = 10_000
TAG_FINGERPRINT = "nas.fingerprint"
TAG_SESSIONS = "nas.driver_sessions"  # JSON list of earlier drivers' {wall_s, overhead}: the bill covers them all
FINGERPRINT_FILE = "fingerprint.json"


class SearchAbortedError(RuntimeError):
    """The search stopped early (``max_failures`` exceeded); everything recorded so far is kept."""


class SearchInterruptedError(RuntimeError):
    """SIGINT or SIGTERM stopped the search; everything recorded so far is kept and ``--resume run_id`` continues.
    ``signum`` is the signal (the CLI exits with 128 + signum)."""

    def __init__(self, run_id: str, signum: int) -> None:
        self.run_id, self.signum = run_id, signum
        super().__init__(f"search {run_id} interrupted by signal {signum}; continue it with --resume {run_id}")


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
    the trials for cores. Raises ConfigError for bad input before anything is written (a refused resume leaves the
    run as it was), SearchAbortedError when more than ``search.max_failures`` trials fail, and
    SearchInterruptedError after SIGINT/SIGTERM (the run is KILLED, resumable).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    stop = GracefulStop()
    try:
        with contextlib.ExitStack() as stack:
            plan = _validate(exp, stack, address=address, resume=resume)
            session = _open(plan, stack, stop, on_update=on_update)
            times = _run(session, stack, storage_path=storage_path)
            return _finalize(session, times, register_models=register_models)
    except KeyboardInterrupt:  # a second signal: stopped at once, the run already marked KILLED
        if stop.run_id is None:
            raise
        raise SearchInterruptedError(stop.run_id, stop.last or signal.SIGINT) from None
    finally:
        torch.set_num_threads(threads)


# ---- 1. validate: nothing is written ------------------------------------------------------------------------------

@dataclass
class _Plan:
    exp: Experiment
    space: Space
    splits: Any
    probe: Controller
    fingerprint: dict[str, Any]
    ray_init_s: float
    resume_run: Any = None  # the parent run to continue
    study: StudyLocation | None = None  # the resumed run's study
    study_existed: bool = True  # False: the resumed run's first driver died before creating its study
    t_start: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)


def _validate(exp: Experiment, stack: contextlib.ExitStack, *, address: str | None, resume: str | None) -> _Plan:
    """Every check that can refuse the input; for a resume, also take the run's driver lease (held on ``stack``),
    so that a second driver is refused at once, before Ray starts."""
    t_start, started_at = time.perf_counter(), time.time()
    exp = preflight(exp)  # paths resolved, builder imported, one candidate built and stepped (nas/search/preflight.py)
    space = load_space(exp.space)
    splits = cached_splits(asdict(exp.data))
    client = client_for(exp.tracking.uri)
    check_store_location(client, exp.tracking.uri, exp.experiment_name)
    doc = fingerprint_doc(exp.to_dict(), space.hash)
    run, study, existed = _check_resume(client, exp, space, doc, resume) if resume else (None, None, True)
    if study is not None:
        _lease(stack, study, run.info.run_id)  # refused here: the run is still untouched
    probe = Controller(exp, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
                       train_samples_per_trial=exp.training.epochs * len(splits.train))
    probe.check_feasible()
    if exp.one_shot is not None:
        check_one_shot(exp, space, probe, resume)
    t0 = time.perf_counter()
    cluster = init_ray(address)
    ray_init_s = time.perf_counter() - t0
    _check_resources(exp, cluster)
    return _Plan(exp, space, splits, probe, doc, ray_init_s, run, study, existed, t_start, started_at)


def _check_resume(client: Any, exp: Experiment, space: Space, doc: dict[str, Any],
                  run_id: str) -> tuple[Any, StudyLocation, bool]:
    """The run to resume, its study and whether that study exists, or ConfigError (the run untouched) when it
    cannot be resumed as asked."""
    run = get_search_run(client, run_id)
    if run.info.run_id != run_id:
        raise ConfigError("--resume", "", f"run {run_id!r} is a trial, not a search",
                          f"resume its search: --resume {run.info.run_id}")
    mine = client.get_experiment_by_name(exp.experiment_name)
    if mine is None or run.info.experiment_id != mine.experiment_id:
        raise ConfigError("--resume", "", f"run {run_id!r} belongs to another MLflow experiment",
                          "resume with the experiment file that started it")
    tags = run.data.tags
    if tags.get("nas.space_hash") != space.hash:
        raise ConfigError("--resume", "", f"the space changed since run {run_id} started "
                          f"(hash {space.hash} != {tags.get('nas.space_hash')})",
                          "resume with the same space file, or start a new search")
    if TAG_FINGERPRINT in tags and tags[TAG_FINGERPRINT] != fingerprint(doc):
        try:
            old = json.loads(read_text_artifact(client, run_id, FINGERPRINT_FILE))
            diff = "; ".join(differences(old, doc)[:8])
        except Exception:  # the fingerprint file is lost: the hash still says something changed
            diff = f"fingerprint {tags[TAG_FINGERPRINT]} != {fingerprint(doc)}"
        raise ConfigError("--resume", "", f"the experiment changed since run {run_id} started ({diff}); only "
                          f"{', '.join(EXTENDABLE)} may change on resume",
                          "resume with the experiment file that started the run, or start a new search")
    try:
        study = recorded_location(exp.tracking.uri, run_id, tags)
    except LookupError as e:
        raise ConfigError("--resume", "", str(e), "set `search.storage` (any RDB URL) or use a sqlite tracking "
                          "store for searches you want to resume") from None
    if TAG_JOURNAL not in tags and TAG_STORAGE not in tags and _empty(study) and not trial_runs(client, run):
        log.info("run %s: its first driver died before creating its study; starting it", run_id)
        return run, study, False
    _check_study(study, run_id)
    return run, study, True


def _empty(study: StudyLocation) -> bool:
    return study.journal is not None and (not study.journal.is_file() or study.journal.stat().st_size == 0)


def _check_study(study: StudyLocation, run_id: str) -> None:
    """Refuse a resume whose study is missing, empty or another run's: a resume never starts a study afresh."""
    fix = (f"run `nas doctor {run_id}` to see what is left; restore the study file from a backup, or start a new "
           "search")
    if study.journal is not None and (not study.journal.is_file() or study.journal.stat().st_size == 0):
        raise ConfigError("--resume", "", f"the Optuna study of run {run_id} is missing or empty "
                          f"({study.journal}): resuming would train every trial again", fix)
    storage = open_storage(study.storage)
    try:
        loaded = optuna.load_study(study_name=study.study_name, storage=storage)
    except KeyError:
        raise ConfigError("--resume", "", f"no study {study.study_name!r} in {study.storage}: resuming would train "
                          "every trial again", fix) from None
    except Exception as e:  # a damaged journal: say so, in one paragraph
        raise ConfigError("--resume", "", f"cannot read the Optuna study of run {run_id} ({e})", fix) from None
    belongs = owner(loaded.user_attrs)
    if belongs is not None and belongs != run_id:
        raise ConfigError("--resume", "", f"the study {study.study_name!r} in {study.storage} belongs to run "
                          f"{belongs}, not {run_id}", fix)


def _check_resources(exp: Experiment, cluster: dict[str, Any]) -> None:
    """Refuse a trial that no node of the cluster can hold (it would wait forever)."""
    nodes = node_resources()
    for key, need in (("CPU", float(exp.resources.cpu)), ("GPU", float(exp.resources.gpu))):
        best = max((n.get(key, 0.0) for n in nodes), default=float(cluster.get(key, 0.0)))
        if need > best:
            have = f"{best:g} {key}" + (" on its largest node" if len(nodes) > 1 else "")
            raise ConfigError(exp.source, f"resources/{key.lower()}",
                              f"each trial asks for {need:g} {key}, but the Ray cluster has {have}: no trial could "
                              "ever start", f"set resources.{key.lower()} <= {best:g}, or join a cluster that has "
                              f"more (--address)")


# ---- 2. open: the lease, the parent run, the study ------------------------------------------------------------

@dataclass
class _Session:
    plan: _Plan
    tracker: SearchTracker
    controller: Controller
    loop: SearchLoop
    meter: _Meter
    run_id: str
    reference: dict[str, float]
    resumed_finished: bool  # resuming a FINISHED search with nothing left to do
    stop: GracefulStop
    earlier: list[dict[str, Any]] = field(default_factory=list)  # earlier drivers' sessions
    one_shot: OneShotOutcome | None = None  # a one-shot search's stages (nas/search/oneshot/run.py)


class _Meter:
    """The energy meter, stopped exactly once on any path."""

    def __init__(self, exp: Experiment) -> None:
        # RAPL / NVML where this machine exposes them, else estimated from exp.energy (the bill says which)
        self.meter = EnergyMeter(exp.energy, cpu_cores=exp.search.concurrency * exp.resources.cpu,
                                 gpu_fraction=exp.search.concurrency * exp.resources.gpu).start()
        self.reading: EnergyReading | None = None

    def stop(self) -> EnergyReading:
        if self.reading is None:
            self.reading = self.meter.stop()
        return self.reading


def _open(plan: _Plan, stack: contextlib.ExitStack, stop: GracefulStop, *,
          on_update: Callable[[SearchState], None] | None) -> _Session:
    exp, space, splits = plan.exp, plan.space, plan.splits
    stack.enter_context(stop.installed())
    meter = _Meter(exp)
    stack.callback(meter.stop)
    tracker = SearchTracker(exp.tracking.uri, exp.experiment_name, live_after_s=exp.tracking.live_after_s)
    if plan.resume_run is not None:
        run_id = plan.resume_run.info.run_id
        tags = plan.resume_run.data.tags
        resumed_finished = plan.resume_run.info.status == "FINISHED"
        tracker.attach(run_id)
        stop.run_id = run_id
        stack.push(_parent_guard(tracker, stop))
        study = plan.study
        assert study is not None
        if "hv_reference" in plan.resume_run.data.params:
            reference = json.loads(plan.resume_run.data.params["hv_reference"])
        else:  # the first driver died before logging it: the same seeded samples give the same point
            reference = reference_point(exp, plan.probe)
            tracker.set_params({"hv_reference": json.dumps(reference)})
        earlier = json.loads(tags.get(TAG_SESSIONS, "[]"))
    else:
        t_ref = time.perf_counter()
        reference = reference_point(exp, plan.probe)
        plan.probe.stats.profile_seconds += time.perf_counter() - t_ref
        stack.push(_parent_guard(tracker, stop))
        run_id = _start_parent(tracker, exp, space, splits.input_shape, splits.num_classes, reference,
                               plan.fingerprint)
        stop.run_id = run_id
        study = new_location(exp.tracking.uri, exp.search.storage, run_id)
        if study.journal is not None:
            _lease(stack, study, run_id)
        if study.storage is None:
            log.warning("the Optuna study lives in memory (non-sqlite tracking store, no search.storage): "
                        "this search cannot be resumed")
        resumed_finished, earlier = False, []
    if exp.one_shot is not None:  # the trials are the supernet's finalists (nas/search/oneshot/run.py)
        exp = finalists_experiment(exp)
    scorer = None
    if exp.proxy.use != "off":
        scorer = ArchitectureScorer.from_dataset(space, splits.train, proxy_set(exp.proxy.name),
                                                 batch_size=exp.proxy.batch_size, num_classes=splits.num_classes,
                                                 seed=exp.search.seed)
    controller = Controller(exp, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
                            train_samples_per_trial=exp.training.epochs * len(splits.train),
                            storage=study.storage, study_name=study.study_name, scorer=scorer, reference=reference)
    if plan.resume_run is None or not plan.study_existed:
        controller.study.set_user_attr(RUN_ATTR, run_id)
        tracker.set_tags(study.tags)  # after the study exists: a tagged run always has its study
    records = recover_records(controller) if plan.resume_run is not None else []
    if plan.resume_run is None and controller.seed_prior():
        log.info("proxy prior: the first trials are the best-scored of %d random architectures", exp.proxy.prior_samples)
    if plan.resume_run is not None:
        reseed_sampler(controller, exp, len(controller.study.get_trials(deepcopy=False)))
        for rec in missing_child_runs(records, tracker.logged_trials()):
            bill_if_missing(rec, exp.resources, exp.energy)
            tracker.log_trial(rec)
    loop = SearchLoop(exp, space, controller, tracker, reference, on_update=on_update, records=records)
    loop.state.run_id = run_id
    resumed_finished = resumed_finished and loop.proposed >= exp.search.trials
    return _Session(plan, tracker, controller, loop, meter, run_id, reference, resumed_finished, stop, earlier)


def _lease(stack: contextlib.ExitStack, study: StudyLocation, run_id: str) -> None:
    if study.journal is None:
        return
    try:
        stack.enter_context(DriverLease(study.journal))
    except LeaseHeldError as e:
        raise ConfigError("--resume", "", f"run {run_id} is being driven by another process ("
                          + ", ".join(f"{k} {v}" for k, v in e.holder.items()) + ")",
                          "wait for it to finish, or stop it (Ctrl-C) and resume then; a driver that died "
                          "releases the run at once") from None


def _parent_guard(tracker: SearchTracker, stop: GracefulStop) -> Callable[..., bool]:
    """An ExitStack callback: on an exception, end the parent run in the state that is true."""

    def on_exit(exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or tracker.run_id is None or isinstance(exc, (SearchAbortedError, SearchInterruptedError)):
            return False  # finalize already ended the run
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit)) or stop.signum is not None
        status = "KILLED" if interrupted else "FAILED"
        reason = "interrupted" if interrupted else f"error: {type(exc).__name__}: {exc}"[:4000]
        try:
            tracker.finish(status, tags={"nas.stop_reason": reason})
        except Exception as e:  # never hide the original error behind a tracking one
            log.error("could not mark the parent run %s: %s", status, e)
        return False

    return on_exit


# ---- 3. run: the trials ---------------------------------------------------------------------------------------

def _run(session: _Session, stack: contextlib.ExitStack, *, storage_path: str | None) -> Any:
    exp, loop = session.plan.exp, session.loop
    if exp.one_shot is not None:  # supernet, scoring, then the finalists through this loop
        session.one_shot = run_one_shot(exp, session.plan.space, session.plan.splits, session.tracker, loop,
                                        session.controller, session.reference, session.run_id,
                                        storage_path or ray_storage_for(exp), session.stop)
        times = session.one_shot.times
    else:
        remaining = 0 if session.resumed_finished else exp.search.trials - loop.proposed
        session.stop.loop = loop
        loop.backend = RayBackend.for_experiment(exp, storage_path=storage_path or ray_storage_for(exp),
                                                 name=f"{session.run_id}-{int(time.time())}")
        times = loop.backend.run(loop, max_trials=remaining)
    session.stop.finishing = True
    reason = ("interrupted" if session.stop.signum is not None
              else f"time_budget_s: search.time_budget_s={exp.search.time_budget_s} reached")
    for rec in record_in_flight(session.controller, loop.records.values(), reason, loop.bill):
        session.tracker.defer(session.tracker.log_trial, rec)
    return times


# ---- 4. finalize: front, models, bill ---------------------------------------------------------------------------

def _finalize(session: _Session, times: Any, *, register_models: bool) -> SearchResult:
    plan, tracker, loop, controller = session.plan, session.tracker, session.loop, session.controller
    exp, space, splits, probe = plan.exp, plan.space, plan.splits, plan.probe
    interrupted = session.stop.signum is not None
    tracker.flush()
    front, hv = loop.front()
    ranked = sorted(front, key=lambda r: -r.metrics.get("val_accuracy", 0.0))
    model_name = f"nas-{exp.experiment_name}" if register_models else None
    t_models = time.perf_counter()
    ranks = {r.run_id: rank for rank, r in enumerate(ranked) if r.run_id}
    sync_pareto(tracker.client, session.run_id, ranks, model_name)
    tracker.note_ranks(ranks)  # the alias `best` goes to rank 0's registered version
    if not interrupted:
        done = registered_versions(tracker.client, model_name, {r.run_id for r in ranked}) if model_name else set()
        for rec in ranked:
            if rec.run_id in done:
                continue  # registered by an earlier driver of this search: never twice
            if rec.checkpoint_dir and Path(rec.checkpoint_dir).is_dir():
                with tempfile.TemporaryDirectory() as d:
                    write_model_dir(d, rec, space, splits.input_shape, splits.num_classes,
                                    trial_seed(exp, rec.number), asdict(exp.data))
                    tracker.log_model(rec, d, model_name)
            else:
                log.warning("the weights of Pareto trial %d are gone (%s): its model is not logged",
                            rec.number, rec.checkpoint_dir)
                tracker.defer(set_run_tags, tracker.client, rec.run_id, {"nas.model_missing": str(rec.checkpoint_dir)})
    tracker.flush()
    models_s = time.perf_counter() - t_models
    if session.resumed_finished:
        # nothing ran: the bill and card of the search stand as they were
        tracker.finish("FINISHED", tags={"nas.pareto_size": len(front)})
        return _result(session, ranked, hv, {}, None)
    loop.log_front_artifacts()
    stats = [controller.stats, probe.stats, *(session.one_shot.stats if session.one_shot else [])]
    sampler_s = sum(s.sampler_seconds for s in stats) + controller.stats.proxy_seconds
    profile_s = sum(s.profile_seconds for s in stats)
    wall_s = time.perf_counter() - plan.t_start
    overhead = {"sampler_s": sampler_s, "profile_s": profile_s, "tracking_s": tracker.seconds,
                "ray_init_s": plan.ray_init_s,
                "propose_s": max(0.0, times.propose_s - controller.stats.sampler_seconds - controller.stats.profile_seconds),
                "callbacks_s": times.callbacks_s, "models_s": models_s, "total_s": wall_s}
    bill = _bill(session, overhead, wall_s)
    card_json, card_md = search_card(bill, space_hash=space.hash, seeds={"search": exp.search.seed, "data": exp.data.seed},
                                     hardware=hardware(), versions=package_versions(), experiment=exp.to_dict())
    tracker.log_progress(loop.state.done, {**loop.progress_metrics(), **bill.as_metrics()})
    sessions = [*session.earlier, {"wall_s": wall_s, "overhead": {k: round(v, 3) for k, v in overhead.items()}}]
    tracker.log_artifacts({"search_card.json": card_json, "search_card.md": card_md},
                          tags={**bill.as_tags(), TAG_SESSIONS: json.dumps(sessions)[-7900:]})
    aborted = loop.over_failure_limit()
    stop_reason = "max_failures" if aborted else loop.state.stop_reason or "trials"
    if interrupted:
        stop_reason = "interrupted"
    elif not aborted and loop.state.stop_reason is None and loop.proposed < exp.search.trials:
        stop_reason = f"time_budget_s: search.time_budget_s={exp.search.time_budget_s} reached"
    loop.state.stop_reason = stop_reason
    status = "KILLED" if interrupted else "FAILED" if aborted else "FINISHED"
    tracker.finish(status, tags={"nas.stop_reason": stop_reason, "nas.pareto_size": len(front)})
    if interrupted:
        assert session.stop.signum is not None
        raise SearchInterruptedError(session.run_id, session.stop.signum)
    if aborted:
        reasons = sorted({r.reason for r in loop.records.values() if r.status == "failed"})
        raise SearchAbortedError(
            f"search {session.run_id} stopped: {loop.state.failed} trials failed, more than search.max_failures "
            f"({exp.search.max_failures}). Reasons: {'; '.join(reasons)[:1500]}. Everything recorded so far is in "
            f"MLflow; fix the cause, then start again or resume with --resume {session.run_id}"
        )
    return _result(session, ranked, hv, overhead, bill)


def _bill(session: _Session, overhead: dict[str, float], wall_s: float) -> SearchBill:
    """The bill of the whole search: every trial of every driver; wall time and machinery summed over the drivers
    that ended normally (one killed with -9 leaves no account of its own machinery)."""
    exp, loop = session.plan.exp, session.loop
    cluster = cluster_resources()
    workers = effective_workers(exp.search.concurrency, exp.search.trials, exp.resources, cluster.get("CPU", 1.0),
                                cluster.get("GPU", 0.0))
    total_wall, parts = wall_s, dict(overhead)
    for s in session.earlier:
        total_wall += float(s.get("wall_s", 0.0))
        for k, v in s.get("overhead", {}).items():
            parts[k] = parts.get(k, 0.0) + float(v)
    energy = session.meter.stop()
    extra = session.one_shot.records if session.one_shot else []  # the supernet's training and the scoring
    return bill_search([*loop.records.values(), *extra], parts, total_wall, workers, exp.resources, exp.energy,
                       measured_energy=energy if not session.earlier else None,
                       started_at=session.plan.started_at if not session.earlier else None,
                       flops_saved_by_rejections=session.controller.stats.rejected_saved_train_flops)


def _result(session: _Session, ranked: list[TrialRecord], hv: float, overhead: dict[str, float],
            bill: SearchBill | None) -> SearchResult:
    loop = session.loop
    return SearchResult(session.run_id, session.plan.exp.tracking.uri, session.tracker.experiment_id,
                        sorted(loop.records.values(), key=lambda r: r.number), ranked, hv, session.reference,
                        loop.state, overhead, bill, one_shot=session.one_shot.info if session.one_shot else None)


def _start_parent(tracker: SearchTracker, exp: Experiment, space: Space, input_shape: tuple[int, ...],
                  num_classes: int, reference: dict[str, float], doc: dict[str, Any]) -> str:
    versions, hw = package_versions(), hardware()
    run_name = f"{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = exp.search.storage
    # Where the study lives is known before the run id for search.storage and in-memory studies; the per-run
    # journal's path follows from the run id, so a driver killed right after this call leaves a resumable run.
    where = {"nas.study_storage": storage} if storage else {} if exp.tracking.uri.startswith("sqlite:///") else {
        "nas.study_storage": ""}
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
              TAG_FINGERPRINT: fingerprint(doc), **where},
        texts={"experiment.yaml": Path(exp.source).read_text() if Path(exp.source).is_file() else json.dumps(exp.raw),
               "space.yaml": Path(space.source).read_text(), "hardware.json": json.dumps(hw, indent=2),
               "versions.json": json.dumps(versions, indent=2), FINGERPRINT_FILE: json.dumps(doc, indent=1)},
    )
    return run_id
