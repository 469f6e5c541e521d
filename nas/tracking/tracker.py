"""The one module that imports MLflow: a parent run per search, a child run per trial, Pareto models.

Logging is batched: on an sqlite store each trial's child run is written whole in one transaction (see
``_OneTransactionRuns``), elsewhere in ``create_run`` + one ``log_batch`` + ``set_terminated``; one ``log_batch``
per progress update (chunked to MLflow's limits). The parent run carries the experiment and space files, the
space hash, seeds, hardware and package versions, metrics over time and the Pareto artifacts; each child run
carries one trial's architecture, per-epoch metrics, profile and status. Any tracking URI works; the default is
``sqlite:///mlflow.db`` (MLflow 3's own default).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
from mlflow.utils.uri import append_to_uri_path
from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.engine import Engine

from nas._compat import (  # MLflow's private store API
    SqlAlchemyStore,
    SqlExperiment,
    SqlLatestMetric,
    SqlMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from nas._compat import use_tracking_uri as _use_tracking_uri
from nas._compat import validate_batch_log_data as _validate_batch_log_data
from nas.durable.locks import store_lock
from nas.errors import ConfigError
from nas.tracking.retry import call_with_retry
from nas.training.records import TrialRecord

log = logging.getLogger(__name__)
#: one INFO record when a search's parent run is created or re-opened (``nas_run_id`` on the record): the CLI
#: prints the run id and the resume command from it, before the first trial
started_log = logging.getLogger("nas.search.started")

TAG_KIND = "nas.kind"  # "search" on the parent, "trial" on children
TAG_SEARCH = "nas.search_run_id"
TAG_PARETO = "nas.pareto"
TAG_STATUS = "nas.status"
TAG_MERGED = "nas.pareto_merged"  # on the merged front of trials and their compressed versions
MODEL_DIR = "nas_model"
BEST_ALIAS = "best"  # on the registered version of the latest search's most accurate Pareto model
_MAX_PARAMS, _MAX_TAGS, _MAX_METRICS = 100, 100, 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


def artifact_root_for(uri: str) -> str | None:
    """Artifacts of a ``sqlite:///x/mlflow.db`` store go to ``x/mlartifacts``, beside the database."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):]).expanduser()
        return (db.resolve().parent / "mlartifacts").as_uri()
    return None


def _chunks(items: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _param_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s[:6000]


_FAST_SQLITE: set[str] = set()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """For the sqlite tracking stores nas opens: write-ahead logging and ``synchronous=NORMAL``.

    Each MLflow request is a transaction; with the default rollback journal every commit syncs the file, ~100 ms
    per trial here. WAL + NORMAL stays consistent after a crash of the process (a power cut may lose the last
    commits) and lets readers (``mlflow ui``, a second search) work beside the writer: ~20 ms per trial
    (docs/DESIGN.md). Other SQLAlchemy engines in the process are left alone.
    """
    if not _FAST_SQLITE or "sqlite" not in type(dbapi_conn).__module__:
        return
    cur = dbapi_conn.cursor()
    try:
        files = {row[2] for row in cur.execute("PRAGMA database_list").fetchall()}
        if files & _FAST_SQLITE:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def client_for(uri: str) -> MlflowClient:
    """A client for ``uri``, failing early with a clear message when the store cannot be reached."""
    fix = "pass a reachable URI, e.g. sqlite:///mlflow.db or http://host:5000"
    if uri.startswith("sqlite:///"):
        db_file = Path(uri[len("sqlite:///"):]).expanduser().resolve()
        folder = db_file.parent
        _FAST_SQLITE.add(str(db_file))
        if not event.contains(Engine, "connect", _sqlite_pragmas):  # registered on first use, not at import
            event.listen(Engine, "connect", _sqlite_pragmas)
        if not folder.is_dir():
            raise ConfigError("--tracking-uri", "", f"the folder {str(folder)!r} of the sqlite store does not exist",
                              f"create it, or {fix}")
    if uri.startswith(("http://", "https://")):
        try:  # MLflow's own client retries for minutes; one health check answers in seconds
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).close()
        except (OSError, ValueError) as e:
            raise ConfigError("--tracking-uri", "", f"no MLflow tracking server answers at {uri!r} ({e})", fix) from None
    deadline = time.monotonic() + _SCHEMA_WAIT_S
    while True:
        try:
            with store_lock(uri):  # opening a new store creates and migrates it: one nas process at a time
                client = MlflowClient(tracking_uri=uri)
                client.search_experiments(max_results=1)
            return client
        except Exception as e:  # MLflow raises many types for a bad store
            # another process (an `mlflow ui`, a script) is creating the same new sqlite store: its half-made
            # schema fails our open ("table ... already exists", "no such table"); wait until it is complete
            racing = uri.startswith("sqlite:///") and any(m in str(e) for m in _SCHEMA_RACE)
            if not racing or time.monotonic() > deadline:
                raise ConfigError("--tracking-uri", "", f"cannot reach the MLflow tracking store {uri!r}: {e}",
                                  fix) from None
            time.sleep(0.25)


_SCHEMA_WAIT_S = 60.0
_SCHEMA_RACE = ("already exists", "no such table", "no such column", "database is locked", "alembic")


# The columns _OneTransactionRuns fills, as MLflow 3.x defines them. Another MLflow whose tables differ (a column
# added or renamed) gets the client path instead of rows it might leave incomplete.
_WRITTEN_COLUMNS = {
    SqlRun: {"artifact_uri", "deleted_time", "end_time", "entry_point_name", "experiment_id", "lifecycle_stage",
             "name", "run_uuid", "source_name", "source_type", "source_version", "start_time", "status", "user_id"},
    SqlTag: {"key", "run_uuid", "value"},
    SqlParam: {"key", "run_uuid", "value"},
    SqlMetric: {"is_nan", "key", "run_uuid", "step", "timestamp", "value"},
    SqlLatestMetric: {"is_nan", "key", "run_uuid", "step", "timestamp", "value"},
}


def _schema_as_written() -> bool:
    """True when the installed MLflow's run tables have exactly the columns the one-transaction writer fills."""
    return all({c.name for c in model.__table__.columns} == cols for model, cols in _WRITTEN_COLUMNS.items())


class _OneTransactionRuns:
    """Writes a whole finished child run to an MLflow sqlite store in one transaction.

    Through the client a trial's child run takes ``create_run`` + ``log_batch`` + ``set_terminated``: about a dozen
    ORM sessions (``log_batch`` alone opens one each for the run check, params, metrics and tags) and ~17 ms of
    CPU per trial, on the writer thread that shares the driver's GIL and cores. Here the same rows (``runs``,
    ``tags`` with ``mlflow.runName``, ``params``, ``metrics``, ``latest_metrics``) go in through MLflow's own
    table definitions, validated by MLflow's own ``log_batch`` checks, in one session of the store's own session
    maker (its pragmas and busy timeout): ~2 ms. ``tests/test_tracking_fast.py`` checks that both paths leave
    the same rows in every table. A reader never sees a half-written run.
    """

    def __init__(self, store: SqlAlchemyStore, experiment_id: str) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self.artifact_location = store.get_experiment(experiment_id).artifact_location

    @staticmethod
    def for_client(client: MlflowClient, experiment_id: str) -> _OneTransactionRuns | None:
        """The writer for a client of an sqlite store; None for any other store (written through the client)."""
        store = getattr(getattr(client, "_tracking_client", None), "store", None)
        if type(store) is not SqlAlchemyStore or store.db_type != "sqlite" or not _schema_as_written():
            return None
        return _OneTransactionRuns(store, experiment_id)

    def write(self, *, run_name: str, start_ms: int, end_ms: int | None, status: str, tags: Mapping[str, str],
              params: list[Param], metrics: list[Metric]) -> tuple[str, str]:
        """Insert a terminated run with its tags, params and metrics; returns its run id and artifact URI."""
        metrics, params, run_tags = _validate_batch_log_data(
            metrics, params, [RunTag(k, v) for k, v in {**tags, MLFLOW_RUN_NAME: run_name}.items()])
        run_id = uuid.uuid4().hex
        artifact_uri = append_to_uri_path(self.artifact_location, run_id, SqlAlchemyStore.ARTIFACTS_FOLDER_NAME)
        metric_rows, seen = [], set()
        for m in metrics:  # duplicates dropped, NaN and inf stored as log_batch stores them
            if m in seen:
                continue
            seen.add(m)
            is_nan, value = self.store.sanitize_metric_value(m.value)
            metric_rows.append({"run_uuid": run_id, "key": m.key, "value": value, "timestamp": m.timestamp,
                                "step": m.step, "is_nan": is_nan})
        latest: dict[str, dict[str, Any]] = {}
        for row in metric_rows:  # log_batch's rule: the greatest (step, timestamp, value) is the latest
            old = latest.get(row["key"])
            if old is None or (row["step"], row["timestamp"], row["value"]) > (old["step"], old["timestamp"], old["value"]):
                latest[row["key"]] = row
        with self.store.ManagedSessionMaker(read_only=False) as session:
            stage = session.execute(select(SqlExperiment.lifecycle_stage).where(
                SqlExperiment.experiment_id == int(self.experiment_id))).scalar_one_or_none()
            if stage != "active":
                raise MlflowException(f"The experiment {self.experiment_id} must be in the 'active' state. "
                                      f"Current state is {stage}.")
            session.execute(insert(SqlRun.__table__), [{  # what create_run + set_terminated leave
                "run_uuid": run_id, "name": run_name, "experiment_id": int(self.experiment_id),
                "artifact_uri": artifact_uri, "source_type": "UNKNOWN", "source_name": "", "entry_point_name": "", "user_id": "unknown",
                "status": status, "start_time": start_ms, "end_time": end_ms, "deleted_time": None,
                "source_version": "", "lifecycle_stage": "active",
            }])
            session.execute(insert(SqlTag.__table__),
                            [{"run_uuid": run_id, "key": t.key, "value": t.value} for t in run_tags])
            if params:
                session.execute(insert(SqlParam.__table__),
                                [{"run_uuid": run_id, "key": p.key, "value": p.value} for p in params])
            if metric_rows:
                session.execute(insert(SqlMetric.__table__), metric_rows)
                session.execute(insert(SqlLatestMetric.__table__), list(latest.values()))
        return run_id, artifact_uri

    def append(self, run_id: str, *, tags: Mapping[str, str] | None = None, metrics: list[Metric] | None = None,
               status: str | None = None, end_ms: int | None = None) -> None:
        """Add to a run in one transaction: tags (replacing same keys), metrics (``latest_metrics`` kept as
        ``log_batch`` keeps it: the greatest (step, timestamp, value) per key) and, when given, its status and
        end time (what ``set_terminated`` sets)."""
        metrics, _, run_tags = _validate_batch_log_data(
            list(metrics or []), [], [RunTag(k, v) for k, v in (tags or {}).items()])
        rows = []
        for m in dict.fromkeys(metrics):  # duplicates dropped
            is_nan, value = self.store.sanitize_metric_value(m.value)
            rows.append({"run_uuid": run_id, "key": m.key, "value": value, "timestamp": m.timestamp,
                         "step": m.step, "is_nan": is_nan})
        with self.store.ManagedSessionMaker(read_only=False) as session:
            if run_tags:
                session.execute(delete(SqlTag.__table__).where(
                    SqlTag.run_uuid == run_id, SqlTag.key.in_([t.key for t in run_tags])))
                session.execute(insert(SqlTag.__table__),
                                [{"run_uuid": run_id, "key": t.key, "value": t.value} for t in run_tags])
            if rows:  # a row already there (same key, step, time, value) is kept once, as log_batch keeps it
                session.execute(insert(SqlMetric.__table__).prefix_with("OR IGNORE", dialect="sqlite"), rows)
                keys = sorted({r["key"] for r in rows})
                latest = {r.key: {"run_uuid": run_id, "key": r.key, "value": r.value, "timestamp": r.timestamp,
                                  "step": r.step, "is_nan": r.is_nan}
                          for r in session.execute(select(SqlLatestMetric).where(
                              SqlLatestMetric.run_uuid == run_id, SqlLatestMetric.key.in_(keys))).scalars()}
                for row in rows:
                    old = latest.get(row["key"])
                    if old is None or (row["step"], row["timestamp"], row["value"]) > (
                            old["step"], old["timestamp"], old["value"]):
                        latest[row["key"]] = row
                session.execute(delete(SqlLatestMetric.__table__).where(
                    SqlLatestMetric.run_uuid == run_id, SqlLatestMetric.key.in_(keys)))
                session.execute(insert(SqlLatestMetric.__table__), list(latest.values()))
            if status is not None:
                session.execute(update(SqlRun.__table__).where(SqlRun.run_uuid == run_id).values(
                    status=status, end_time=end_ms if end_ms is not None else _now_ms()))


class SearchTracker:
    """Logs one search. Call :meth:`start`, then :meth:`log_trial`/:meth:`log_progress` as the search goes, then
    :meth:`finish`. Each call is a handful of batched requests; ``seconds`` accumulates the time spent here.

    :meth:`defer` runs a call on one background writer thread, in submission order, so the search loop does not
    wait for the store; :meth:`flush` waits for every deferred call and re-raises the first error.

    A deferred call starts ``write_delay_s`` after it was submitted (at once when :meth:`flush` waits for it). A
    trial's writes are submitted just as the driver gets busy (telling Optuna, proposing and profiling the next
    candidate, dispatching it), and a writer thread running then holds the GIL against the driver: each time the
    driver releases it, it may wait a switch interval (5 ms) to get it back. A short delay moves the writes into
    the next trial's training, when the driver waits on Ray with the GIL released. Nothing is dropped or merged.
    """

    def __init__(self, uri: str, experiment_name: str, *, write_delay_s: float = 0.05,
                 live_after_s: float = 1.0) -> None:
        self.uri = uri
        self.client = client_for(uri)
        self.seconds = 0.0
        with store_lock(uri):  # two searches creating the same experiment at once: one creates, one finds it
            exp = self.client.get_experiment_by_name(experiment_name)
            if exp is None:
                exp_id = self.client.create_experiment(experiment_name, artifact_location=artifact_root_for(uri))
            else:
                exp_id = exp.experiment_id
        # Declares the experiment as model training. MLflow 3.17's UI does not read it (its sidebar switch and the
        # URL's ?workflowType=machine_learning choose the view: see runs_url), but it costs nothing and says what
        # the experiment holds.
        self.client.set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
        self.experiment_id = exp_id
        self.run_id: str | None = None
        self._runs = _OneTransactionRuns.for_client(self.client, exp_id)
        self._artifact_uris: dict[str, str] = {}  # child run id -> artifact URI, for the runs written here
        self._registered: set[str] = set()  # registered model names known to exist
        self._open: dict[int, str] = {}  # trial number -> child run created at its start, not yet ended
        self._adopted: dict[int, int] = {}  # trial number -> last epoch logged on a dead driver's open run
        self._ranks: dict[str, int] = {}  # child run id -> Pareto rank (0: most accurate), set by mark_pareto
        self.retries = 0  # writes retried after a transient failure (server down, its database restarting)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nas-mlflow")
        self._pending: list[Future[Any]] = []
        self.write_delay_s = write_delay_s
        self.live_after_s = live_after_s
        self._hurry = threading.Event()  # set while flush() waits: deferred calls start at once

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the writer thread (FIFO), ``write_delay_s`` from now at the earliest
        (:meth:`start_trial`: ``live_after_s``, see there)."""
        delay = self.live_after_s if fn == self.start_trial else self.write_delay_s
        self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
        self._pending.append(self._writer.submit(self._when_due, time.monotonic() + delay, fn, *args))

    def _when_due(self, due: float, fn: Callable[..., Any], *args: Any) -> Any:
        wait = due - time.monotonic()
        if wait > 0:
            self._hurry.wait(wait)
        return call_with_retry(fn, *args, on_retry=self._count_retry)  # an outage of the server loses nothing

    def _count_retry(self, error: BaseException, wait_s: float) -> None:
        self.retries += 1

    def flush(self) -> None:
        """Wait for every deferred call (started at once); raise the first error one of them raised."""
        pending, self._pending = self._pending, []
        self._hurry.set()
        try:
            errors = [e for e in (f.exception() for f in pending) if e is not None]
        finally:
            self._hurry.clear()
        if errors:
            raise errors[0]

    # -- parent run --------------------------------------------------------------------------------------------

    def start(self, run_name: str, params: Mapping[str, Any], tags: Mapping[str, Any],
              texts: Mapping[str, str]) -> str:
        """Create the parent run; log ``params``, ``tags`` and text artifacts (file name -> content)."""
        t0 = time.perf_counter()
        run = self.client.create_run(self.experiment_id, run_name=run_name,
                                     tags={TAG_KIND: "search", **{k: str(v) for k, v in tags.items()}})
        self.run_id = run.info.run_id
        started_log.info("search run %s started", self.run_id, extra={"nas_run_id": self.run_id, "nas_resumed": False})
        self._batch(self.run_id, params=params)
        for name, text in texts.items():
            self.client.log_text(self.run_id, text, name)
        self.seconds += time.perf_counter() - t0
        return self.run_id

    def attach(self, run_id: str) -> Any:
        """Continue an existing parent run (``--resume``): it is set RUNNING again; returns the run."""
        run = get_search_run(self.client, run_id)
        if run.info.run_id != run_id:
            raise ConfigError("--resume", "", f"run {run_id!r} is a trial, not a search",
                              f"resume its search: --resume {run.info.run_id}")
        if run.info.experiment_id != self.experiment_id:
            raise ConfigError("--resume", "", f"run {run_id!r} belongs to another MLflow experiment",
                              "resume with the experiment file that started it")
        self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        started_log.info("search run %s resumed", run_id, extra={"nas_run_id": run_id, "nas_resumed": True})
        return run

    def logged_trials(self) -> dict[int, str]:
        """Trial number -> child run id, for the trials of this search completely logged in MLflow.

        A child run left unterminated (RUNNING: created live at its trial's start, or its driver died while ending
        it) is adopted, as :meth:`adopt` says: :meth:`log_trial` completes and ends that same run (keeping the
        per-epoch metrics it holds), so a trial never gets a second run. An unterminated run of a number that
        already has a finished one (or a second unterminated one) is deleted: it holds nothing the other lacks."""
        parent = self.client.get_run(self._parent())
        done: dict[int, str] = {}
        live: dict[int, Any] = {}
        extra: list[str] = []
        for r in sorted(trial_runs(self.client, parent), key=lambda r: r.info.start_time or 0):
            number, rid = int(r.data.tags["nas.trial_number"]), r.info.run_id
            if r.info.status in ("FINISHED", "FAILED", "KILLED"):
                done.setdefault(number, rid)
            elif number in live:
                extra.append(rid)
            else:
                live[number] = r
        for number, r in live.items():
            if number in done:
                extra.append(r.info.run_id)
            else:
                self.adopt(number, r.info.run_id, self._last_epoch(r))
        for rid in extra:
            self.client.delete_run(rid)
        return done

    def adopt(self, number: int, run_id: str, last_epoch: int = -1) -> None:
        """Take over trial ``number``'s unterminated child run ``run_id`` (a dead driver's, whose per-epoch
        metrics reach epoch ``last_epoch``): the next :meth:`log_trial` of that trial adds its status, final
        metrics, the epochs of its record after ``last_epoch`` and its end to this run, instead of writing a new
        one."""
        self._open[number] = run_id
        self._adopted[number] = last_epoch

    def _last_epoch(self, run: Any) -> int:
        """The last epoch (step) of a run's per-epoch metrics; -1 when it has none."""
        keys = [k for k in run.data.metrics if k.startswith("epoch/")]
        if not keys:
            return -1
        return max((m.step for m in self.client.get_metric_history(run.info.run_id, keys[0])), default=-1)

    def log_progress(self, step: int, metrics: Mapping[str, float]) -> None:
        """Search-level metrics at ``step`` (trials finished so far)."""
        t0 = time.perf_counter()
        self._batch(self._parent(), metrics={k: v for k, v in metrics.items() if v is not None}, step=step)
        self.seconds += time.perf_counter() - t0

    def log_artifacts(self, files: Mapping[str, str | bytes], tags: Mapping[str, Any] | None = None) -> None:
        """Write (overwrite) parent-run artifacts: file name -> text or bytes; optional tags with them."""
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            for name, content in files.items():
                p = Path(d, name)
                p.write_bytes(content if isinstance(content, bytes) else content.encode())
            self.client.log_artifacts(self._parent(), d)
        if tags:
            self._batch(self._parent(), tags=tags)
        self.seconds += time.perf_counter() - t0

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags on the parent run."""
        self._batch(self._parent(), tags=tags)

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Log params on the parent run (one not logged yet: MLflow params are write-once)."""
        self._batch(self._parent(), params=params)

    def finish(self, status: str = "FINISHED", tags: Mapping[str, Any] | None = None) -> None:
        """Flush deferred calls, then end the parent run with ``status``."""
        try:
            self.flush()
        finally:
            self._writer.shutdown(wait=True)
        t0 = time.perf_counter()
        tags = {**(tags or {}), "nas.tracking_retries": self.retries}
        call_with_retry(lambda: self._batch(self._parent(), tags=tags), on_retry=self._count_retry)
        call_with_retry(self.client.set_terminated, self._parent(), status, on_retry=self._count_retry)
        self.seconds += time.perf_counter() - t0

    # -- child runs --------------------------------------------------------------------------------------------

    def start_trial(self, rec: TrialRecord) -> str | None:
        """Create the child run of a running trial (RUNNING, with its architecture and training params), so the
        MLflow UI lists running trials; :meth:`log_epoch` then adds each epoch's metrics as they come and
        :meth:`log_trial` completes and ends the same run. Returns its run id.

        Deferred, it runs ``live_after_s`` (1 s) after the trial started: a trial that has already ended by then
        gets no live run (returns None) and :meth:`log_trial` writes its whole run, epochs included, in one
        write instead of three. Short trials, where the engine's cost per trial matters, pay one write; a
        trial the UI could show running for more than a second is shown."""
        if rec.end_time:
            return None
        t0 = time.perf_counter()
        parent = self._parent()
        tags = {"mlflow.parentRunId": parent, TAG_KIND: "trial", TAG_SEARCH: parent, TAG_STATUS: "running",
                "nas.trial_number": str(rec.number)}
        start_ms, name = int(rec.start_time * 1000) or _now_ms(), f"trial-{rec.number:04d}"
        if self._runs is not None:  # one transaction: the run, its tags and params, status RUNNING
            rid, artifact_uri = self._runs.write(
                run_name=name, start_ms=start_ms, end_ms=None, status="RUNNING", tags=tags,
                params=[Param(k, _param_value(v)) for k, v in _trial_params(rec).items()], metrics=[])
        else:
            run = self.client.create_run(self.experiment_id, start_time=start_ms, tags=tags, run_name=name)
            rid, artifact_uri = run.info.run_id, run.info.artifact_uri
            self._batch(rid, params=_trial_params(rec))
        self._open[rec.number] = rid
        self._artifact_uris[rid] = artifact_uri
        rec.run_id = rid
        self.seconds += time.perf_counter() - t0
        return rid

    def log_epoch(self, number: int, metrics: Mapping[str, float]) -> None:
        """One epoch's metrics (``epoch/<name>`` at step ``epoch``) on a running trial's child run; nothing for
        a trial without a live run (:meth:`log_trial` writes its epochs)."""
        rid = self._open.get(number)
        if rid is None:
            return
        t0 = time.perf_counter()
        step, ts = int(metrics.get("epoch", 0)), _now_ms()
        batch = [Metric(f"epoch/{k}", float(v), ts, step) for k, v in metrics.items()
                 if k != "epoch" and isinstance(v, (int, float))]
        if self._runs is not None:
            self._runs.append(rid, metrics=batch)
        else:
            self.client.log_batch(rid, metrics=batch)
        self.seconds += time.perf_counter() - t0

    def log_trial(self, rec: TrialRecord) -> str:
        """The child run of a finished or failed trial: the run :meth:`start_trial` opened, completed and ended;
        else (a trial that never started, a resume's backfill) written whole, in one transaction on an sqlite
        store, else ~3 requests. Returns its run id."""
        t0 = time.perf_counter()
        parent = self._parent()
        tags = {
            "mlflow.parentRunId": parent, TAG_KIND: "trial", TAG_SEARCH: parent, TAG_STATUS: rec.status,
            "nas.trial_number": str(rec.number),
        }
        if rec.reason:
            tags["nas.failure_reason"] = rec.reason[:4000]
        if rec.checkpoint_dir:
            tags["nas.checkpoint_dir"] = rec.checkpoint_dir
        tags.update({f"nas.node_{k}": v for k, v in rec.node.items()})  # nas.node_id, nas.node_ip
        params = _trial_params(rec)
        ts = int(rec.end_time * 1000) or _now_ms()
        metrics = [Metric(k, float(v), ts, 0) for k, v in {**rec.profile, **rec.metrics}.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for ep in rec.history:
            step = int(ep.get("epoch", 0))
            metrics += [Metric(f"epoch/{k}", float(v), ts, step) for k, v in ep.items() if k != "epoch"]
        # an early-stopped trial was stopped on purpose, not broken: KILLED, as MLflow calls a run ended from outside
        status = {"complete": "FINISHED", "pruned": "KILLED", "interrupted": "KILLED"}.get(rec.status, "FAILED")
        run_name = f"trial-{rec.number:04d}"
        start_ms, end_ms = int(rec.start_time * 1000) or None, int(rec.end_time * 1000) or None
        if rec.number in self._open:  # opened at its start, per-epoch metrics already there
            rid = self._open[rec.number]
            last = self._adopted.get(rec.number)  # a dead driver's run: add the epochs it did not write
            final = [m for m in metrics if not m.key.startswith("epoch/") or (last is not None and m.step > last)]
            new_tags = {k: v for k, v in tags.items() if k != "mlflow.parentRunId"}
            if self._runs is not None:
                self._runs.append(rid, tags=new_tags, metrics=final, status=status, end_ms=end_ms)
            else:
                self._batch(rid, tags=new_tags, metric_list=final)
                self.client.set_terminated(rid, status=status, end_time=end_ms)
            del self._open[rec.number]  # only once written: a retry after a failed write completes the same run
            self._adopted.pop(rec.number, None)
        elif self._runs is not None:
            rid, artifact_uri = self._runs.write(
                run_name=run_name, start_ms=start_ms or _now_ms(), end_ms=end_ms or _now_ms(), status=status,
                tags=tags, params=[Param(k, _param_value(v)) for k, v in params.items()], metrics=metrics)
            self._artifact_uris[rid] = artifact_uri
        else:
            rid = rec.run_id or self.client.create_run(self.experiment_id, start_time=start_ms, tags=tags,
                                                       run_name=run_name).info.run_id
            rec.run_id = rid  # a retry after a failed write below goes on with this run: nothing duplicated
            self._batch(rid, params=params, metric_list=metrics)
            self.client.set_terminated(rid, status=status, end_time=end_ms)
        rec.run_id = rid
        self.seconds += time.perf_counter() - t0
        return rid

    def note_ranks(self, ranks: Mapping[str, int]) -> None:
        """Pareto ranks (child run id -> rank, 0 the most accurate) whose tags were written elsewhere
        (:func:`nas.tracking.sync.sync_pareto`): :meth:`log_model` gives rank 0 the alias ``best``."""
        self._ranks.update(ranks)

    def mark_pareto(self, rec: TrialRecord, rank: int) -> None:
        assert rec.run_id is not None
        self._batch(rec.run_id, tags={TAG_PARETO: "true", "nas.pareto_rank": rank})
        self._ranks[rec.run_id] = rank

    def log_model(self, rec: TrialRecord, model_dir: str, register_as: str | None) -> str | None:
        """Log a Pareto model on its child run, twice from one folder: the folder itself under ``nas_model/``
        (weights + arch.json + space.yaml, what ``nas.load_model`` and ``nas compress`` read), and as an MLflow
        model (``mlflow.pytorch.log_model``: preprocessing inside, signature, raw input example, the folder in
        its ``extra_files``, linked metrics, tags for the search, trial and space hash). Registered as a version
        of ``register_as`` with a description and its metrics; the search's rank-0 model (see :meth:`mark_pareto`)
        gets the alias ``best`` (``models:/<name>@best``). Returns the version, or None."""
        t0 = time.perf_counter()
        assert rec.run_id is not None
        artifact_uri = self._artifact_uris.get(rec.run_id)
        if artifact_uri is None:  # not written here (another store, or a resume): the store says where it lives
            self.client.log_artifacts(rec.run_id, model_dir, MODEL_DIR)
            artifact_uri = self.client.get_run(rec.run_id).info.artifact_uri
        else:  # written here: the same repository the client would look up with two reads of the whole run
            get_artifact_repository(artifact_uri, tracking_uri=self.uri).log_artifacts(model_dir, MODEL_DIR)
        info = self._log_mlflow_model(rec, model_dir)
        self._batch(rec.run_id, tags={"nas.model_uri": info.model_uri})
        version = None
        if register_as:
            try:
                if register_as not in self._registered:
                    try:
                        self.client.create_registered_model(
                            register_as, description="Pareto-optimal models of nas searches (one version per model; "
                            "the tags nas.search_run_id and nas.trial_number tell them apart).")
                    except MlflowException:
                        pass  # already registered
                    self._registered.add(register_as)
                metrics = model_metrics(rec.metrics)
                with _use_tracking_uri(self.uri):  # the registry resolves models:/<id> through the global URI
                    mv = self.client.create_model_version(
                        register_as, source=info.model_uri, run_id=rec.run_id, model_id=info.model_id,
                        tags={"nas.search_run_id": self._parent(), "nas.trial_number": str(rec.number),
                              "nas.space_hash": info.tags.get("nas.space_hash", ""),
                              **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()}},
                        description=model_description(rec, self._parent(), metrics))
                version = mv.version
                if self._ranks.get(rec.run_id) == 0:  # models:/<name>@best: the latest search's most accurate
                    self.client.set_registered_model_alias(register_as, BEST_ALIAS, str(version))
            except MlflowException as e:  # a store without a registry still keeps the model
                log.warning("could not register model of trial %d: %s", rec.number, e)
        self.seconds += time.perf_counter() - t0
        return version

    def _log_mlflow_model(self, rec: TrialRecord, model_dir: str) -> Any:
        """``mlflow.pytorch.log_model`` of the folder's model on the trial's run; returns MLflow's ModelInfo."""
        import mlflow.pytorch
        import numpy as np
        import torch
        from mlflow.models import infer_signature

        from nas.tracking.model_dir import deployable

        assert rec.run_id is not None
        module, example, arch = deployable(model_dir)
        with torch.no_grad():
            out = module(torch.tensor(np.asarray(example, dtype=np.float32))).numpy()
        tags = {TAG_SEARCH: self._parent(), "nas.trial_number": str(rec.number), "nas.space_hash": arch["space_hash"],
                "nas.builder": arch["builder"], "nas.preprocessing": json.dumps(arch.get("preprocessing"))[:4000]}
        extra = [str(f) for f in Path(model_dir).iterdir() if f.is_file()]
        code = [] if isinstance(module, torch.jit.ScriptModule) else _code_paths(arch)
        # The logged model is created here, linked to the run with its own metrics in one batch: through
        # log_model(run_id=...), MLflow reads the run's params and every metric's history to copy them (~30 reads).
        model = self.client.create_logged_model(self.experiment_id, name=f"trial-{rec.number:04d}",
                                                source_run_id=rec.run_id, tags=tags, model_type="nas-pareto",
                                                params={k: _param_value(v)[:1000] for k, v in
                                                        _trial_params(rec).items()})
        quiet = logging.getLogger("mlflow.pytorch")  # its per-model warning about pickle: ours is TorchScript
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with _use_tracking_uri(self.uri), _no_progress_bars():
                info = mlflow.pytorch.log_model(
                    module, name=f"trial-{rec.number:04d}", model_id=model.model_id,
                    signature=infer_signature(example, out), input_example=example,
                    pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"], extra_files=extra,
                    code_paths=code or None, serialization_format="pickle", validate_serving_input=False)
        finally:
            quiet.setLevel(level)
        ts = _now_ms()
        linked = {k: v for k, v in model_metrics(rec.metrics).items() if math.isfinite(v)}
        self.client.log_outputs(rec.run_id, [LoggedModelOutput(model.model_id, step=0)])
        self.client.log_batch(rec.run_id, metrics=[Metric(k, float(v), ts, 0, model_id=model.model_id)
                                                   for k, v in linked.items()])  # on the run too
        self.client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        return info

    # -- helpers -----------------------------------------------------------------------------------------------

    def _parent(self) -> str:
        if self.run_id is None:
            raise RuntimeError("SearchTracker.start() was not called")
        return self.run_id

    def _batch(self, run_id: str, *, params: Mapping[str, Any] | None = None, metrics: Mapping[str, float] | None = None,
               tags: Mapping[str, Any] | None = None, step: int = 0, metric_list: list[Metric] | None = None) -> None:
        ts = _now_ms()
        p = [Param(k, _param_value(v)) for k, v in (params or {}).items()]
        m = list(metric_list or []) + [Metric(k, float(v), ts, step) for k, v in (metrics or {}).items()]
        t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        if self._runs is not None and not p and len(m) <= _MAX_METRICS and len(t) <= _MAX_TAGS:
            # sqlite: tags and metrics in one transaction, the rows log_batch leaves (~2 ms, not ~15)
            self._runs.append(run_id, tags={x.key: x.value for x in t}, metrics=m)
            return
        # One request when everything fits MLflow's per-batch limits, else as few as the limits allow.
        p_chunks, t_chunks, m_chunks = list(_chunks(p, _MAX_PARAMS)), list(_chunks(t, _MAX_TAGS)), list(_chunks(m, _MAX_METRICS))
        for i in range(max(len(p_chunks), len(t_chunks), len(m_chunks))):
            self.client.log_batch(run_id, params=p_chunks[i] if i < len(p_chunks) else (),
                                  tags=t_chunks[i] if i < len(t_chunks) else (),
                                  metrics=m_chunks[i] if i < len(m_chunks) else ())


_PROGRESS_BARS = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_progress_lock = threading.Lock()


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """No "Downloading artifacts" bars on stderr while a model is logged: MLflow copies each of its extra files
    through a download with a progress bar, a few lines of noise per Pareto model at the end of every search. A
    user's own setting of the variable is kept; the variable is restored after the block."""
    with _progress_lock:
        if _PROGRESS_BARS in os.environ:
            yield
            return
        os.environ[_PROGRESS_BARS] = "false"
        try:
            yield
        finally:
            os.environ.pop(_PROGRESS_BARS, None)


def _trial_params(rec: TrialRecord) -> dict[str, Any]:
    return {**{f"arch/{k}": v for k, v in rec.params.items()}, **{f"train/{k}": v for k, v in rec.training.items()}}


def model_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The metrics a registered model version carries (those present): accuracies, cost, size."""
    keys = ("val_accuracy", "test_accuracy", "mflops", "params", "latency_ms", "size_mb")
    return {k: float(metrics[k]) for k in keys if isinstance(metrics.get(k), (int, float))}


def model_description(rec: TrialRecord, search_run_id: str, metrics: Mapping[str, float]) -> str:
    """One paragraph for a registered version: which search and trial, its figures, how it takes inputs."""
    figures = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    return (f"Pareto-optimal trial {rec.number} of nas search {search_run_id}: {figures}. Takes raw inputs (the "
            "data's preprocessing is inside the model); outputs class logits. test_accuracy is on the held-out "
            "test split and was not used to choose it. Architecture: " + json.dumps(rec.params, default=str)[:1500])


def _code_paths(arch: Mapping[str, Any]) -> list[str]:
    """Source an eager (pickled) model needs at load time: the nas package and a user builder's module."""
    import nas

    paths = [str(Path(nas.__file__).parent)]
    module = sys.modules.get(str(arch.get("builder", "")).partition(":")[0])
    file = getattr(module, "__file__", None)
    if file and not Path(file).resolve().is_relative_to(Path(paths[0]).resolve()):
        paths.append(str(Path(file).parent) if Path(file).name == "__init__.py" else file)
    return paths


# ---- reading back ------------------------------------------------------------------------------------------------

def runs_url(experiment_id: str, host: str = "http://127.0.0.1:5000") -> str:
    """The MLflow UI page of an experiment's training-runs table (parent runs with their trials folded under)."""
    return f"{host}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")


def resolve_run_id(client: MlflowClient, ref: str) -> str:
    """The full id of the search run ``ref`` names: a full run id, or a unique prefix of a search's run id (as the
    live display shows). ConfigError when no search or several match."""
    ref = ref.strip()
    if len(ref) == 32:
        return ref
    if len(ref) < 4 or not all(c in "0123456789abcdef" for c in ref.lower()):
        raise ConfigError("RUN_ID", "", f"{ref!r} is not a run id or a prefix of one (4 to 32 hex digits)",
                          "copy the id from the `run_id:` line `nas search` printed")
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    matches: list[str] = []
    token = None
    while ids:
        page = client.search_runs(ids, f"tags.`{TAG_KIND}` = 'search'", ViewType.ALL, 1000, page_token=token)
        matches += [r.info.run_id for r in page if r.info.run_id.startswith(ref.lower())]
        token = page.token
        if not token:
            break
    if not matches:
        raise ConfigError("RUN_ID", "", f"no search run id starts with {ref!r} in the tracking store "
                          f"{client.tracking_uri!r}", "copy the id from the `run_id:` line `nas search` printed, "
                          "or pass --tracking-uri")
    if len(matches) > 1:
        raise ConfigError("RUN_ID", "", f"{len(matches)} searches start with {ref!r}: {', '.join(sorted(matches)[:5])}",
                          "give more characters of the id")
    return matches[0]


def store_exists(uri: str) -> bool:
    """False for a sqlite store whose file does not exist (a read-only command must not create it)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).expanduser().is_file()
    return True


def get_search_run(client: MlflowClient, run_id: str) -> Any:
    """The parent run ``run_id``; ConfigError when it does not exist or is not a search."""
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError("RUN_ID", "", f"no run {run_id!r} in the tracking store {client.tracking_uri!r}",
                          "copy the id from the `run_id:` line `nas search` printed, or pass --tracking-uri") from None
    if run.data.tags.get(TAG_KIND) != "search":
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent:
            return get_search_run(client, parent)
        raise ConfigError("RUN_ID", "", f"run {run_id!r} is not a nas search", "pass the parent run of a `nas search`")
    return run


def trial_runs(client: MlflowClient, search_run: Any, *, pareto_only: bool = False, kind: str | None = "trial",
               merged_front: bool = False) -> list[Any]:
    """The child runs of a search: trials (``kind="trial"``), compressed models (``"compressed"``) or both
    (``None``); optionally only the search's Pareto set, or only the merged front after ``nas compress``. Deleted
    runs are not among them: a deleted run is gone for every reader (report, Pareto tags, models, resume)."""
    flt = f"tags.`{TAG_SEARCH}` = '{search_run.info.run_id}'"
    if kind:
        flt += f" and tags.`{TAG_KIND}` = '{kind}'"
    if pareto_only:
        flt += f" and tags.`{TAG_PARETO}` = 'true'"
    if merged_front:
        flt += f" and tags.`{TAG_MERGED}` = 'true'"
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([search_run.info.experiment_id], flt, ViewType.ACTIVE_ONLY, 1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def log_compressed(client: MlflowClient, search_run: Any, *, source_trial: int, source_run: str, method: str,
                   metrics: Mapping[str, float], settings: Mapping[str, Any], notes: Sequence[str],
                   model_dir: str) -> str:
    """One child run of the search for a compressed Pareto model (tagged with its method and source trial)."""
    parent = search_run.info.run_id
    run = client.create_run(search_run.info.experiment_id, run_name=f"trial-{source_trial:04d}-{method}", tags={
        "mlflow.parentRunId": parent, TAG_KIND: "compressed", TAG_SEARCH: parent, TAG_STATUS: "complete",
        "nas.trial_number": str(source_trial), "nas.source_run_id": source_run,
        "nas.compression_method": method, "nas.compression_notes": " | ".join(notes)[:4000]})
    rid = run.info.run_id
    ts = _now_ms()
    client.log_batch(rid, metrics=[Metric(k, float(v), ts, 0) for k, v in metrics.items() if v is not None],
                     params=[Param(f"compress/{k}", _param_value(v)) for k, v in settings.items()][:_MAX_PARAMS])
    client.log_artifacts(rid, model_dir, MODEL_DIR)
    client.set_terminated(rid, "FINISHED")
    return rid


def set_run_tags(client: MlflowClient, run_id: str, tags: Mapping[str, Any]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_parent_extras(client: MlflowClient, run_id: str, metrics: Mapping[str, float],
                      files: Mapping[str, str | bytes]) -> None:
    """Metrics and (over)written artifacts on a finished parent run, e.g. after ``nas compress``."""
    ts = _now_ms()
    client.log_batch(run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in metrics.items()])
    with tempfile.TemporaryDirectory() as d:
        for name, content in files.items():
            Path(d, name).parent.mkdir(parents=True, exist_ok=True)
            Path(d, name).write_bytes(content if isinstance(content, bytes) else content.encode())
        client.log_artifacts(run_id, d)


def download_model_uri(uri: str, dst: str, tracking_uri: str) -> str:
    """Download an MLflow model (``models:/<name>/<version>`` or ``models:/<model_id>``); returns its folder."""
    import mlflow.artifacts

    try:
        with _use_tracking_uri(tracking_uri):  # models:/ URIs resolve through the registry of the global URI
            return mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst, tracking_uri=tracking_uri)
    except MlflowException as e:
        raise ConfigError("MODEL_URI", "", f"no MLflow model {uri!r} in {tracking_uri!r}: {e.message}",
                          "copy a version from the MLflow UI's Models page, e.g. models:/nas-my-search/1") from None


def download_model_dir(client: MlflowClient, trial_run_id: str, dst: str) -> str:
    """Download a logged Pareto model folder; returns its local path. ConfigError naming the run when the
    folder is not in the tracking store (its weights were gone when the search finished, or were deleted)."""
    try:
        return client.download_artifacts(trial_run_id, MODEL_DIR, dst)
    except (MlflowException, OSError) as e:
        error = e.message if isinstance(e, MlflowException) else str(e)
    tags = client.get_run(trial_run_id).data.tags
    trial, search = tags.get("nas.trial_number", "?"), tags.get(TAG_SEARCH, "?")
    gone = tags.get("nas.model_missing")
    why = (f"its weights were gone from {gone} when the search finished (nas_runs/ removed before a resume?), so "
           "the model was never logged" if gone else f"the tracking store has no {MODEL_DIR}/ folder for it ({error})")
    raise ConfigError("RUN_ID", "", f"the Pareto model of trial {trial} of search {search} (child run "
                      f"{trial_run_id}) cannot be loaded: {why}",
                      f"load another Pareto model (`nas pareto {search}` lists them; choose with --trial or "
                      "--rank), or train this one again with a new search; keep nas_runs/ until a search has "
                      "finished") from None
