"""The search loop: controller (Optuna) + runner (Ray Tune) + tracker (MLflow), wired by plain records.

:func:`run_search` is the library entry point behind ``nas search``. It loads the data once on the driver to learn
the input shape, fixes the hypervolume reference point, starts the parent run, runs the trials, keeps the Pareto
front and its hypervolume up to date on the parent run, and at the end logs and registers every Pareto model.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from nas.controller import Controller
from nas.experiment import Experiment
from nas.objectives import METRICS
from nas.pareto import hypervolume, pareto_mask
from nas.plots import pareto_png
from nas.records import TrialRecord
from nas.runner import WEIGHTS_FILE, init_ray, run_trials
from nas.space import Space, load_space
from nas.tracking import SearchTracker
from nas.trial import TrialSpec, cached_splits

log = logging.getLogger(__name__)

PROFILE_METRICS = ("mflops", "params", "latency_ms", "peak_mem_mb")
_PACKAGES = ("nas", "torch", "optuna", "ray", "fvcore", "mlflow", "numpy", "moocore")


@dataclass
class SearchState:
    """A snapshot for progress displays: counts, front size, hypervolume, compute spent, ETA (seconds)."""

    planned: int
    done: int = 0
    failed: int = 0
    running: int = 0
    rejected: int = 0
    pareto_size: int = 0
    hypervolume: float = 0.0
    train_tflops: float = 0.0
    trial_seconds: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    run_id: str = ""


@dataclass
class SearchResult:
    run_id: str
    tracking_uri: str
    records: list[TrialRecord]
    pareto: list[TrialRecord]
    hypervolume: float
    reference: dict[str, float]
    state: SearchState
    overhead_s: dict[str, float] = field(default_factory=dict)


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, Any]:
    hw: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                          "processor": platform.processor() or platform.machine(), "python": platform.python_version()}
    import os

    hw["cpu_count"] = os.cpu_count()
    hw["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return hw


class _Loop:
    """Implements the runner's Observer: turns Ray events into records, optimizer feedback and MLflow logs."""

    def __init__(self, exp: Experiment, space: Space, controller: Controller, tracker: SearchTracker,
                 reference: dict[str, float], planned: int, on_update: Callable[[SearchState], None] | None,
                 artifact_every_s: float = 5.0, progress_every_s: float = 1.0) -> None:
        self.exp, self.space, self.controller, self.tracker = exp, space, controller, tracker
        self.reference = reference
        self.objectives = [(o.name, o.direction) for o in exp.objectives]
        self.on_update = on_update
        self.records: dict[int, TrialRecord] = {}
        self.state = SearchState(planned=planned, run_id=tracker.run_id or "")
        self.started = time.time()
        self.space_yaml = Path(space.source).read_text()
        self.artifact_every_s, self._last_artifacts = artifact_every_s, 0.0
        self.progress_every_s, self._last_progress = progress_every_s, 0.0
        self.bookkeeping_s = 0.0
        self.proposed = 0
        self.failures_allowed = exp.search.max_failures

    # -- Observer ----------------------------------------------------------------------------------------------

    def propose(self) -> TrialSpec | None:
        if self.proposed >= self.state.planned or self._over_failure_limit():
            return None
        cand = self.controller.propose()
        self.proposed += 1
        self.state.rejected = self.controller.stats.rejected
        prof = cand.profile.as_dict()
        self.records[cand.number] = TrialRecord(
            number=cand.number, params=cand.params, training=cand.training,
            profile={k: prof[k] for k in PROFILE_METRICS if prof.get(k) is not None},
        )
        d = self.exp.data
        return TrialSpec(
            number=cand.number, params=cand.params, space_yaml=self.space_yaml, space_source=self.space.source,
            space_hash=self.space.hash, data=asdict(d), training=cand.training,
            seed=self.exp.search.seed * 100_003 + cand.number, mflops=cand.profile.mflops,
            cpu_threads=max(1, int(self.exp.resources.cpu)), device="auto",
        )

    def on_trial_start(self, number: int) -> None:
        self.records[number].start_time = time.time()
        self.state.running += 1
        self._update()

    def on_epoch(self, number: int, metrics: dict[str, float]) -> None:
        self.records[number].history.append(metrics)

    def on_trial_complete(self, number: int, final: dict[str, float], checkpoint_dir: str | None) -> None:
        rec = self.records[number]
        rec.end_time, rec.status, rec.checkpoint_dir = time.time(), "complete", checkpoint_dir
        rec.metrics = {**rec.profile, **final}
        self.controller.tell(number, rec.metrics)
        self._finish(rec)

    def on_trial_failed(self, number: int, reason: str) -> None:
        rec = self.records[number]
        rec.end_time, rec.status, rec.reason = time.time(), "failed", reason
        rec.metrics = dict(rec.profile)
        self.controller.tell_failed(number, reason)
        self.state.failed += 1
        self._finish(rec)

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _over_failure_limit(self) -> bool:
        return self.failures_allowed is not None and self.state.failed > self.failures_allowed

    def completed(self) -> list[TrialRecord]:
        return [r for r in sorted(self.records.values(), key=lambda r: r.number) if r.status == "complete" and r.end_time]

    def front(self) -> tuple[list[TrialRecord], float]:
        done = self.completed()
        rows = [r.metrics for r in done]
        mask = pareto_mask(rows, self.objectives)
        for r, m in zip(done, mask, strict=True):
            r.pareto = m
        return [r for r, m in zip(done, mask, strict=True) if m], hypervolume(rows, self.objectives, self.reference)

    def _finish(self, rec: TrialRecord) -> None:
        t0 = time.perf_counter()
        self.state.running = max(0, self.state.running - 1)
        if rec.start_time == 0.0:
            rec.start_time = rec.end_time
        self.state.done += 1
        self.state.train_tflops += rec.metrics.get("train_flops", 0.0) / 1e12
        self.state.trial_seconds += max(0.0, rec.end_time - rec.start_time)
        front, hv = self.front()
        self.state.pareto_size, self.state.hypervolume = len(front), hv
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
        }

    def log_front_artifacts(self, deferred: bool = False) -> None:
        """Write pareto.csv and pareto.png on the parent run (rendered on the writer thread when deferred)."""
        done = self.completed()
        if not done:
            return
        front, _ = self.front()
        rows, mask = [dict(r.metrics) for r in done], [r.pareto for r in done]
        numbers = [r.number for r in front]
        title = f"{self.exp.name}: {len(done)} trials, {len(front)} Pareto-optimal"

        def write() -> None:  # on the writer thread the front's child-run ids are already set
            self.tracker.log_artifacts(
                {"pareto.csv": pareto_csv(front, self.objectives),
                 "pareto.png": pareto_png(rows, mask, self.objectives, title)},
                tags={"nas.pareto_trials": ",".join(map(str, numbers))})

        if deferred:
            self.tracker.defer(write)
        else:
            write()
        self._last_artifacts = time.time()

    def _update(self) -> None:
        s = self.state
        s.elapsed_s = time.time() - self.started
        if s.done:
            per = s.elapsed_s / s.done
            s.eta_s = max(0.0, (s.planned - s.done) * per)
        if self.on_update is not None:
            self.on_update(s)


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


def reference_point(exp: Experiment, controller: Controller, samples: int = 16) -> dict[str, float]:
    """Hypervolume reference, fixed for the whole search: 0 for accuracy; for a cost, its constraint's max when
    set, else 1.1 × the largest value among ``samples`` random architectures of the space (seeded)."""
    ref: dict[str, float] = {}
    caps = {c.metric: c.max for c in exp.constraints if c.max is not None}
    need = [o for o in exp.objectives if METRICS[o.name].source == "profile" and o.name not in caps]
    seen: dict[str, list[float]] = {o.name: [] for o in need}
    for i in range(samples if need else 0):
        prof = controller.profile(controller.space.sample_random(10_000 + i))
        for o in need:
            seen[o.name].append(float(getattr(prof, o.name)))
    for o in exp.objectives:
        if METRICS[o.name].source == "train":
            ref[o.name] = 0.0 if o.direction == "maximize" else 1.0
        elif o.name in caps:
            ref[o.name] = float(caps[o.name])
        else:
            ref[o.name] = 1.1 * max(seen[o.name])
    return ref


def run_search(
    exp: Experiment,
    *,
    address: str | None = None,
    storage_path: str | None = None,
    on_update: Callable[[SearchState], None] | None = None,
    register_models: bool = True,
) -> SearchResult:
    """Run the search described by ``exp`` (already validated, overrides applied). Blocking.

    The driver's torch uses one thread while the search runs (restored after), so profiling does not compete with
    the trials for cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_search(exp, address=address, storage_path=storage_path, on_update=on_update,
                           register_models=register_models)
    finally:
        torch.set_num_threads(threads)


def _run_search(exp: Experiment, *, address: str | None, storage_path: str | None,
                on_update: Callable[[SearchState], None] | None, register_models: bool) -> SearchResult:
    t_start = time.perf_counter()
    space = load_space(exp.space)
    splits = cached_splits(asdict(exp.data))
    tracker = SearchTracker(exp.tracking.uri, exp.experiment_name)
    controller = Controller(
        exp, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
        train_samples_per_trial=exp.training.epochs * len(splits.train),
    )
    reference = reference_point(exp, controller)
    versions, hw = package_versions(), hardware()
    run_id = tracker.start(
        run_name=f"{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}",
        params={"experiment": exp.source, "space": space.source, "space_hash": space.hash, "builder": space.builder,
                "sampler": exp.search.sampler, "trials": exp.search.trials, "concurrency": exp.search.concurrency,
                "seed": exp.search.seed, "data": exp.data.name, "data_seed": exp.data.seed,
                "epochs": exp.training.epochs, "resources_cpu": exp.resources.cpu, "resources_gpu": exp.resources.gpu,
                "objectives": ",".join(f"{o.name}:{o.direction}" for o in exp.objectives),
                "constraints": json.dumps([asdict(c) for c in exp.constraints]),
                "hv_reference": json.dumps(reference), "input_shape": list(splits.input_shape),
                "num_classes": splits.num_classes},
        tags={"nas.space_hash": space.hash, "nas.seed": exp.search.seed, "nas.builder": space.builder,
              "nas.hardware": json.dumps(hw), "nas.versions": json.dumps(versions)},
        texts={"experiment.yaml": Path(exp.source).read_text() if Path(exp.source).is_file() else json.dumps(exp.raw),
               "space.yaml": Path(space.source).read_text(), "hardware.json": json.dumps(hw, indent=2),
               "versions.json": json.dumps(versions, indent=2)},
    )
    loop = _Loop(exp, space, controller, tracker, reference, exp.search.trials, on_update)
    loop.state.run_id = run_id
    status = "FINISHED"
    t0 = time.perf_counter()
    init_ray(address)
    ray_init_s = time.perf_counter() - t0
    storage = storage_path or str(Path(tempfile.gettempdir(), "nas_ray").resolve())
    try:
        times = run_trials(loop, max_trials=exp.search.trials, concurrency=exp.search.concurrency,
                           cpu=exp.resources.cpu, gpu=exp.resources.gpu, storage_path=storage, name=run_id,
                           time_budget_s=exp.search.time_budget_s)
    except BaseException:
        tracker.finish("KILLED")
        raise
    tracker.flush()
    front, hv = loop.front()
    loop.log_front_artifacts()
    model_name = f"nas-{exp.experiment_name}" if register_models else None
    for rank, rec in enumerate(sorted(front, key=lambda r: -r.metrics["val_accuracy"])):
        tracker.mark_pareto(rec, rank)
        if rec.checkpoint_dir:
            with tempfile.TemporaryDirectory() as d:
                write_model_dir(d, rec, space, exp, splits.input_shape, splits.num_classes)
                tracker.log_model(rec, d, model_name)
    stopped = "max_failures" if loop._over_failure_limit() else "trials"
    overhead = {"sampler_s": controller.stats.sampler_seconds, "profile_s": controller.stats.profile_seconds,
                "tracking_s": tracker.seconds, "ray_init_s": ray_init_s, "propose_s": times.propose_s,
                "callbacks_s": times.callbacks_s, "total_s": time.perf_counter() - t_start}
    tracker.log_progress(loop.state.done, {**loop.progress_metrics(), **{f"overhead/{k}": v for k, v in overhead.items()}})
    tracker.finish(status, tags={"nas.stop_reason": stopped, "nas.pareto_size": len(front)})
    return SearchResult(run_id, exp.tracking.uri, sorted(loop.records.values(), key=lambda r: r.number),
                        sorted(front, key=lambda r: -r.metrics["val_accuracy"]), hv, reference, loop.state, overhead)


def write_model_dir(d: str, rec: TrialRecord, space: Space, exp: Experiment, input_shape: tuple[int, ...],
                    num_classes: int) -> None:
    """A self-contained model folder: weights, the architecture (params + space hash) and the space file."""
    assert rec.checkpoint_dir is not None
    state = torch.load(Path(rec.checkpoint_dir, WEIGHTS_FILE), map_location="cpu", weights_only=True)
    torch.save(state, Path(d, WEIGHTS_FILE))
    Path(d, "space.yaml").write_text(Path(space.source).read_text())
    Path(d, "arch.json").write_text(json.dumps({
        "trial": rec.number, "params": rec.params, "training": rec.training, "space_hash": space.hash,
        "space_source": space.source, "builder": space.builder, "input_shape": list(input_shape),
        "num_classes": num_classes, "seed": exp.search.seed * 100_003 + rec.number, "data": asdict(exp.data),
        "metrics": rec.metrics,
    }, indent=2, default=str))
