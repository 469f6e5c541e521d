"""The one module that imports Ray: the Ray Tune backend, where ``nas search`` trials run.

``ray.init()`` starts a local cluster unless an address is given (``--address`` or ``RAY_ADDRESS``). Each trial
asks for ``resources.cpu`` CPUs and a ``resources.gpu`` GPU fraction; actors are reused between trials (a fresh
actor costs ~1.7 s on a 2-core box, a reused one ~0.2 s). The searcher asks the controller for feasible
candidates (constraints are checked before dispatch), and a Tune callback forwards every result to a plain
observer (the search loop), so the runner knows nothing of MLflow.

pareto-promote: a trial asked to (``TrialSpec.extra[SNAPSHOT_AT]``) reports its rung epoch with a checkpoint
holding its weights and training state; the loop stops it there, and a promotion later resumes it from that
checkpoint (ASHA's promotion), so it trains and is billed only the epochs past the rung.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
import torch
from ray import tune
from ray.tune import Callback, Checkpoint
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from nas._compat import ray_actor_table  # type: ignore[attr-defined]
from nas.compress.in_loop import compress_trained
from nas.errors import ConfigError
from nas.search.backends.base import Observer, RunnerTimes, train_tflops
from nas.training.checkpoint import WEIGHTS_FILE, save_module
from nas.training.trial import SNAPSHOT_FILE, TrialSpec, cached_splits, run_trial

if TYPE_CHECKING:
    from nas.config.experiment import Experiment

log = logging.getLogger(__name__)

# Tune's own CSV/JSON/TensorBoard loggers and console reporter duplicate what MLflow records and cost time per
# result; the snapshot warning fires on every short trial. Tune's experiment snapshot (every trial's state, for
# Tuner.restore, which nas never uses: a resume rebuilds from the Optuna study) is written every 10 s or more by
# default, a cost that grows with the number of trials; here every 10 min (and at the end). Set by init_ray
# (never at import); users can still override these from the environment.
TUNE_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0",
            "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0", "TUNE_GLOBAL_CHECKPOINT_S": "600"}

FINAL_KEY = "nas_final"
FAILED_KEY = "nas_failed"
ERROR_KEY = "nas_error"
NODE_ID_KEY = "nas_node_id"
NODE_IP_KEY = "nas_node_ip"


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nothing listens at (``ray.init`` itself waits minutes)."""
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local" and the like: Ray resolves them
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError("--address", "", f"nothing answers at the Ray address {address!r} ({e})",
                          "start the cluster (`ray start --head`), fix the address, or unset RAY_ADDRESS to run "
                          "on a local cluster") from None


def cluster_resources() -> dict[str, float]:
    """CPUs and GPUs of the Ray cluster this process is connected to."""
    return {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}


def cluster_nodes(address: str | None = None) -> list[dict[str, Any]]:
    """The nodes of the cluster at ``address`` (joined if not yet): node id, IP, alive, resources (plain dicts)."""
    if not ray.is_initialized():
        init_ray(address)
    return [{"node_id": n["NodeID"], "ip": n["NodeManagerAddress"], "alive": bool(n["Alive"]),
             "resources": {k: float(v) for k, v in n.get("Resources", {}).items()}} for n in ray.nodes()]


_ACTOR_ID = re.compile(r"actor ([0-9a-f]{32})")


def _actor_node(error: str) -> dict[str, str] | None:
    """The node of the actor an error names (Ray's actor table keeps dead actors' addresses), else None."""
    m = _ACTOR_ID.search(error)
    if m is None:
        return None
    try:
        address = ray_actor_table(actor_id=m.group(1)).get("Address", {})
    except Exception:  # a debugging API: a missing answer only loses the node's name
        return None
    return {"id": address["NodeID"], "ip": address.get("IPAddress", "")} if address.get("NodeID") else None


def _where() -> dict[str, str]:
    """The node this process runs on (reported with every result, recorded on the trial's child run)."""
    return {NODE_ID_KEY: ray.get_runtime_context().get_node_id(), NODE_IP_KEY: ray.util.get_node_ip_address()}


def node_resources() -> list[dict[str, float]]:
    """CPUs and GPUs of each live node of the cluster (a trial must fit on one node)."""
    return [{k: float(v) for k, v in n.get("Resources", {}).items() if k in ("CPU", "GPU")}
            for n in ray.nodes() if n.get("Alive")]


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> dict[str, Any]:
    """Start (or join) Ray; returns the cluster's resources. Joining uses ``address`` or ``RAY_ADDRESS``."""
    for key, value in TUNE_ENV.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _probe(address)
    if ray.is_initialized():
        return ray.cluster_resources()
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                              "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError("--address" if address else "ray", "", f"cannot start or join Ray at {address or 'local'}: {e}",
                          "check the address (ray://host:10001 or host:6379) or unset RAY_ADDRESS to run locally") from None
    return ray.cluster_resources()


def _trainable(config: dict[str, Any]) -> None:
    """Runs in a Ray worker (reused across trials): one trial, reporting every epoch, weights at the end.
    The scheduler may stop it after any epoch's report (early stopping, budget)."""
    spec = TrialSpec.from_dict(config["nas"])
    where = _where()
    snapshot: dict[str, Any] = {}

    def on_epoch(metrics: dict[str, float]) -> None:
        if not snapshot:
            tune.report({**metrics, **where})
            return
        with tempfile.TemporaryDirectory() as d:  # a rung checkpoint, for a promotion to resume from
            torch.save(snapshot.pop("state"), Path(d, SNAPSHOT_FILE))
            tune.report({**metrics, **where}, checkpoint=Checkpoint.from_directory(d))

    try:
        _, state, final = run_trial(spec, on_epoch=on_epoch, on_snapshot=lambda _, s: snapshot.update(state=s),
                                    post_train=compress_trained)
    except Exception as e:  # recorded as a failed trial with its reason; the search goes on
        log.warning("trial %d failed: %s", spec.number, e)
        tune.report({FAILED_KEY: 1.0, ERROR_KEY: f"{type(e).__name__}: {e}"[:2000], FINAL_KEY: 1.0, **where})
        return
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        if isinstance(state, torch.nn.Module):  # compressed: its structure no longer follows from the params
            save_module(state, d, tuple(cached_splits(spec.data).input_shape))
        else:
            torch.save(state, Path(d, WEIGHTS_FILE))
        final["checkpoint_s"] = time.perf_counter() - t0  # writing the weights; Tune's upload is not included
        Path(d, "final.json").write_text(json.dumps(final))
        tune.report({**final, FINAL_KEY: 1.0, **where}, checkpoint=Checkpoint.from_directory(d))


class _Unpicklable:
    """Tune pickles its searcher and callbacks to snapshot the experiment; the live observer (threads, stores)
    stays behind: resuming reconnects a new observer instead."""

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("observer", "times")}


class _Searcher(_Unpicklable, Searcher):
    """Tune searcher that gets each new trial from the observer (which asks the controller)."""

    def __init__(self, observer: Observer, times: RunnerTimes) -> None:
        super().__init__()
        self.observer, self.times = observer, times
        self.numbers: dict[str, int] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        spec = self.observer.propose()
        self.times.propose_s += time.perf_counter() - t0
        if spec is None:
            return Searcher.FINISHED
        self.numbers[trial_id] = spec.number
        return {"nas": spec.to_dict()}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Outcomes reach the controller through :class:`_Forwarder`, which sees checkpoints and errors too."""

    def save(self, checkpoint_path: str) -> None:
        """Tune snapshots the searcher; the study itself lives in Optuna, so only the id map is kept."""
        Path(checkpoint_path).write_text(json.dumps(self.numbers))

    def restore(self, checkpoint_path: str) -> None:
        self.numbers = {k: int(v) for k, v in json.loads(Path(checkpoint_path).read_text()).items()}


class _Scheduler(_Unpicklable, FIFOScheduler):
    """Stops a running trial when the observer says so (Pareto-ASHA at a rung, a spent budget); remembers why."""

    def __init__(self, observer: Observer, searcher: _Searcher, times: RunnerTimes) -> None:
        super().__init__()
        self.observer, self.searcher, self.times = observer, searcher, times
        self.stopped: dict[str, str] = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(FINAL_KEY) or result.get(FAILED_KEY) or trial.trial_id not in self.searcher.numbers:
            return TrialScheduler.CONTINUE
        t0 = time.perf_counter()
        reason = self.observer.should_stop(self.searcher.numbers[trial.trial_id], _metrics(result))
        self.times.callbacks_s += time.perf_counter() - t0
        if reason is None:
            return TrialScheduler.CONTINUE
        self.stopped[trial.trial_id] = reason
        return TrialScheduler.STOP


class _Forwarder(_Unpicklable, Callback):
    def __init__(self, observer: Observer, searcher: _Searcher, times: RunnerTimes,
                 scheduler: _Scheduler | None = None) -> None:
        self.observer, self.searcher, self.times = observer, searcher, times
        self.scheduler = scheduler
        self.done: set[str] = set()
        self.nodes: dict[str, dict[str, str]] = {}  # trial id -> the node it runs on (from its first result)

    def _number(self, trial: Any) -> int:
        return self.searcher.numbers[trial.trial_id]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._timed(self.observer.on_trial_start, self._number(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._node(trial, result)
        if not result.get(FINAL_KEY):
            self._timed(self.observer.on_epoch, self._number(trial), _metrics(result))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.done:
            return
        self.done.add(trial.trial_id)
        result = trial.last_result or {}
        number = self._number(trial)
        self._node(trial, result)
        if result.get(FAILED_KEY):
            self._timed(self.observer.on_trial_failed, number, str(result.get(ERROR_KEY, "unknown error")))
        elif self.scheduler is not None and trial.trial_id in self.scheduler.stopped and not result.get(FINAL_KEY):
            ckpt = trial.checkpoint.path if trial.checkpoint is not None else None
            self._timed(self.observer.on_trial_pruned, number, self.scheduler.stopped[trial.trial_id],
                        _metrics(result), ckpt)
        elif not result.get(FINAL_KEY):
            self._timed(self.observer.on_trial_failed, number, "trial ended without a final result")
        else:
            ckpt = trial.checkpoint.path if trial.checkpoint is not None else None
            self._timed(self.observer.on_trial_complete, number, _metrics(result), ckpt)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.done:
            return
        self.done.add(trial.trial_id)
        reason = "worker error"
        if trial.error_file and os.path.exists(trial.error_file):
            reason = Path(trial.error_file).read_text().strip().splitlines()[-1][:2000]
        node = self.nodes.get(trial.trial_id) or _actor_node(reason)
        if node and node["id"] not in reason:  # a dead node's trials say which node it was
            reason = f"{reason} (on node {node['id']} at {node['ip']})"
            if trial.trial_id not in self.nodes:
                self.nodes[trial.trial_id] = node
                self._timed(self.observer.on_trial_node, self._number(trial), node)
        self._timed(self.observer.on_trial_failed, self._number(trial), reason)

    def _node(self, trial: Any, result: dict) -> None:
        if trial.trial_id not in self.nodes and result.get(NODE_ID_KEY):
            node = {"id": str(result[NODE_ID_KEY]), "ip": str(result.get(NODE_IP_KEY, ""))}
            self.nodes[trial.trial_id] = node
            if hasattr(self.observer, "on_trial_node"):
                self._timed(self.observer.on_trial_node, self._number(trial), node)

    def _timed(self, fn: Callable[..., None], *args: Any) -> None:
        t0 = time.perf_counter()
        fn(*args)
        self.times.callbacks_s += time.perf_counter() - t0


def _metrics(result: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in result.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in (FINAL_KEY, FAILED_KEY)
            and not k.startswith(("time_", "timestamp", "training_iteration", "pid", "done", "iterations_"))}


class RayBackend:
    """Trials as Ray Tune trials (Ray must be initialized: :func:`init_ray`): each asks for ``cpu`` CPUs and a
    ``gpu`` fraction, at most ``concurrency`` at a time; checkpoints go under ``storage_path``/``name``."""

    compute_unit = "TFLOPs"

    def __init__(self, *, concurrency: int, cpu: float, gpu: float, storage_path: str, name: str,
                 time_budget_s: float | None = None) -> None:
        self.concurrency, self.cpu, self.gpu = concurrency, cpu, gpu
        self.storage_path, self.name, self.time_budget_s = storage_path, name, time_budget_s

    @classmethod
    def for_experiment(cls, exp: Experiment, *, storage_path: str, name: str) -> RayBackend:
        """The backend an experiment asks for: its concurrency, per-trial resources and time budget."""
        return cls(concurrency=exp.search.concurrency, cpu=exp.resources.cpu, gpu=exp.resources.gpu,
                   storage_path=storage_path, name=name, time_budget_s=exp.search.time_budget_s)

    def compute(self, metrics: dict[str, float]) -> float:
        """A trial's training FLOPs, in TFLOPs."""
        return train_tflops(metrics)

    def run(self, observer: Observer, *, max_trials: int) -> RunnerTimes:
        return run_trials(observer, max_trials=max_trials, concurrency=self.concurrency, cpu=self.cpu,
                          gpu=self.gpu, storage_path=self.storage_path, name=self.name,
                          time_budget_s=self.time_budget_s)


def run_trials(
    observer: Observer,
    *,
    max_trials: int,
    concurrency: int,
    cpu: float,
    gpu: float,
    storage_path: str,
    name: str,
    time_budget_s: float | None = None,
) -> RunnerTimes:
    """Run up to ``max_trials`` trials through Ray Tune (Ray must be initialized). Returns driver-side timings."""
    times = RunnerTimes()
    if max_trials <= 0:
        return times
    searcher = _Searcher(observer, times)
    scheduler = _Scheduler(observer, searcher, times)
    trainable = tune.with_resources(_trainable, {"cpu": cpu, "gpu": gpu})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=max_trials, max_concurrent_trials=concurrency,
            reuse_actors=True, time_budget_s=time_budget_s,
            trial_name_creator=lambda t: f"trial_{searcher.numbers.get(t.trial_id, t.trial_id)}",
            trial_dirname_creator=lambda t: f"trial_{t.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=storage_path, verbose=0, callbacks=[_Forwarder(observer, searcher, times, scheduler)],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            log_to_file=False,
        ),
    )
    # The ResultGrid Tune builds at the end reads its own JSON logs, which are off: every result already reached
    # the observer, so its "failed to fetch metrics" warning is noise here.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    tuner.fit()
    return times


# -- one-shot search: the supernet trains as one Ray trial ----------------------------------------------------------


def _supernet_trainable(config: dict[str, Any]) -> None:
    """Runs in a Ray worker: trains the supernet (pure torch, :mod:`nas.oneshot.trial`), reporting every epoch
    and checkpointing every ``checkpoint_every`` epochs; a restarted trial resumes from its last checkpoint."""
    from nas.oneshot.trial import SupernetSpec, run_supernet, write_checkpoint

    spec = SupernetSpec.from_dict(config["nas_supernet"])

    def report(metrics: dict[str, float], due: bool, supernet: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        if not due:
            tune.report(dict(metrics))
            return
        with tempfile.TemporaryDirectory() as d:
            write_checkpoint(d, supernet, opt, int(metrics["epoch"]), metrics)  # type: ignore[arg-type]
            tune.report(dict(metrics), checkpoint=Checkpoint.from_directory(d))

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        run_supernet(spec, report)
        return
    with checkpoint.as_directory() as d:
        run_supernet(spec, report, resume_from=d)


class _LastResult(Callback):
    def __init__(self) -> None:
        self.result: dict[str, Any] = {}
        self.checkpoint: str | None = None
        self.error: str | None = None

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.result = dict(result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.checkpoint = trial.checkpoint.path if trial.checkpoint is not None else None

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.error = "worker error"
        if trial.error_file and os.path.exists(trial.error_file):
            self.error = Path(trial.error_file).read_text().strip().splitlines()[-1][:2000]


def train_supernet_trial(spec: dict[str, Any], *, cpu: float, gpu: float, storage_path: str,
                         name: str) -> tuple[dict[str, float], str]:
    """Train a one-shot supernet (``spec``: :class:`nas.oneshot.trial.SupernetSpec` as a dict) as one Ray Tune
    trial holding ``cpu`` CPUs and ``gpu`` GPUs (it trains on the GPU when it holds one). A worker that dies is
    restarted once from the last checkpoint. Returns (the last epoch's metrics, the final checkpoint directory);
    raises RuntimeError with the worker's reason when it fails. Ray must be initialized."""
    last = _LastResult()
    tuner = tune.Tuner(
        tune.with_resources(_supernet_trainable, {"cpu": cpu, "gpu": gpu}),
        param_space={"nas_supernet": spec},
        tune_config=tune.TuneConfig(num_samples=1, trial_name_creator=lambda t: "supernet",
                                    trial_dirname_creator=lambda t: f"supernet_{t.trial_id}"),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0, callbacks=[last],
                                  failure_config=tune.FailureConfig(max_failures=1),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2), log_to_file=False),
    )
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    tuner.fit()
    if last.error is not None or last.checkpoint is None:
        raise RuntimeError(f"the supernet trial failed: {last.error or 'it ended without a checkpoint'}")
    return _metrics(last.result), last.checkpoint
