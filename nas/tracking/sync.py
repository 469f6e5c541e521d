"""Keeping a search's MLflow view equal to its study: Pareto tags, registered versions, the store's location.

Idempotent by design: a resumed (or repaired) search calls these with the final front, whatever an earlier
driver had written before it died.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlflow import MlflowClient
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException

from nas.errors import ConfigError
from nas.tracking.tracker import TAG_PARETO, artifact_root_for, trial_runs

log = logging.getLogger(__name__)

TAG_RANK = "nas.pareto_rank"


def sync_pareto(client: MlflowClient, parent_run_id: str, front: Mapping[str, int], model_name: str | None) -> None:
    """Tag exactly the child runs in ``front`` (run id -> rank) as Pareto-optimal; untag the others, and delete
    the registered versions (of ``model_name``) of runs that left the front."""
    parent = client.get_run(parent_run_id)
    off_front = set()
    for run in trial_runs(client, parent):
        rid, tags = run.info.run_id, run.data.tags
        if rid in front:
            if tags.get(TAG_PARETO) != "true" or tags.get(TAG_RANK) != str(front[rid]):
                client.log_batch(rid, tags=[RunTag(TAG_PARETO, "true"), RunTag(TAG_RANK, str(front[rid]))])
            continue
        off_front.add(rid)
        if tags.get(TAG_PARETO) == "true":
            client.log_batch(rid, tags=[RunTag(TAG_PARETO, "false")])
            if TAG_RANK in tags:
                client.delete_tag(rid, TAG_RANK)
    if model_name:
        for v in _versions(client, model_name):
            if v.run_id in off_front:
                client.delete_model_version(model_name, v.version)
                log.info("deleted version %s of %s: trial run %s left the Pareto front", v.version, model_name, v.run_id)


def registered_versions(client: MlflowClient, model_name: str, run_ids: Iterable[str | None]) -> set[str]:
    """The run ids among ``run_ids`` that already have a version of ``model_name``."""
    wanted = {r for r in run_ids if r}
    return {v.run_id for v in _versions(client, model_name) if v.run_id in wanted}


def _versions(client: MlflowClient, model_name: str) -> list:
    try:
        return list(client.search_model_versions(f"name='{model_name}'"))
    except MlflowException:  # no registry, or no such model yet
        return []


def read_text_artifact(client: MlflowClient, run_id: str, name: str) -> str:
    """A text artifact of a run; raises OSError or MlflowException when it is not there."""
    with tempfile.TemporaryDirectory() as d:
        return Path(client.download_artifacts(run_id, name, d)).read_text()


def check_store_location(client: MlflowClient, uri: str, experiment_name: str) -> None:
    """Refuse a sqlite store whose experiment, created by nas beside another store (``OTHER/mlartifacts``), keeps
    its artifacts outside this store's folder: the folder was moved or copied, and writing would touch the
    original's files (or fail on a path that no longer exists). Experiments MLflow created elsewhere pass."""
    expected = artifact_root_for(uri)
    if expected is None:
        return
    exp = client.get_experiment_by_name(experiment_name)
    if exp is None or not exp.artifact_location.startswith("file:"):
        return
    here = Path(unquote(urlparse(expected).path))
    there = Path(unquote(urlparse(exp.artifact_location).path))
    if there.name == here.name and there != here:  # nas's layout (DIR/mlartifacts) for another DIR
        raise ConfigError("--tracking-uri", "", f"the MLflow experiment {experiment_name!r} in {uri} keeps its "
                          f"artifacts in {there}, outside this store's folder {here.parent}: the project folder "
                          "was moved or copied, and searching here would write into the original's files",
                          "run from the original folder, or use a new tracking store (or experiment name) here")
