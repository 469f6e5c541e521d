"""A search on a :class:`~nas.testing.cluster.LocalCluster`, and the checks that it used the cluster as a team would.

Shared by ``scripts/cluster.py demo`` (``make cluster-demo``), ``tests/test_cluster*.py`` and docs/CLUSTER.md:
the experiment points at the MLflow server (HTTP), keeps the Optuna study in PostgreSQL, writes checkpoints to
the cluster's shared ``storage_path``; the driver runs on the head node (its namespace) from a directory of its
own; the model is loaded back by a third process elsewhere.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas.testing.cluster import ROOT, LocalCluster


def cluster_experiment(cluster: LocalCluster, dst: str | Path, *, base: str | Path = ROOT / "experiments/digits_cnn.yaml",
                       name: str = "cluster-demo", **overrides: Any) -> Path:
    """Write ``dst/<name>.yaml``: ``base`` pointed at the cluster's servers, with ``overrides`` per section
    (e.g. ``training={"epochs": 2}``, ``search={"trials": 6}``); the space path is made absolute."""
    base = Path(base)
    doc = yaml.safe_load(base.read_text())
    doc["name"] = name
    doc["space"] = str((base.parent / doc["space"]).resolve()) if isinstance(doc["space"], str) else doc["space"]
    doc["tracking"] = {"uri": cluster.tracking_uri, "experiment": f"nas-{name}"}
    doc.setdefault("search", {})["storage"] = cluster.postgres_url("optuna")
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(doc.get(section), dict):
            doc[section] = {**doc[section], **values}
        else:
            doc[section] = values
    out = Path(dst, f"{name}.yaml")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def search_argv(cluster: LocalCluster, experiment: str | Path, *extra: str) -> list[str]:
    """``nas search`` on the head node, joined to the cluster, logging to the MLflow server over HTTP."""
    return cluster.driver_argv([sys.executable, "-m", "nas.cli", "search", str(experiment), "--quiet",
                                "--address", cluster.ray_address, "--tracking-uri", cluster.tracking_uri,
                                "--storage-path", str(cluster.storage_path), *extra])


def start_driver(cluster: LocalCluster, experiment: str | Path, *extra: str, log: str | Path) -> subprocess.Popen:
    """Start the driver (its own working directory ``driver/``, output to ``log``); returns the process."""
    cwd = cluster.root / "driver"
    cwd.mkdir(exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(search_argv(cluster, experiment, *extra), cwd=cwd, env=cluster.env(), stdout=out,
                                stderr=subprocess.STDOUT)


def run_id_from(output: str) -> str:
    """The search's run id, from the driver's output (``run_id: ...``) or its first log of the parent run."""
    m = re.search(r"run_id: ([0-9a-f]{32})", output)
    if not m:
        raise ValueError(f"no run id in the driver's output:\n{output[-3000:]}")
    return m.group(1)


def parent_run_id(cluster: LocalCluster, experiment_name: str) -> str:
    """The newest search (parent) run of MLflow experiment ``experiment_name`` on the server."""
    from nas.tracking.tracker import client_for

    client = client_for(cluster.tracking_uri)
    exp = client.get_experiment_by_name(experiment_name)
    if exp is None:
        raise LookupError(f"no MLflow experiment {experiment_name!r} on {cluster.tracking_uri}")
    runs = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'search'", order_by=["start_time DESC"],
                              max_results=1)
    if not runs:
        raise LookupError(f"no search run in {experiment_name!r}")
    return str(runs[0].info.run_id)


@dataclass
class SearchReport:
    """What the server and the cluster hold after a search (the checks read these)."""

    run_id: str
    status: str
    trials: list[dict[str, Any]] = field(default_factory=list)  # per child run: number, status, node id and ip, ...
    models: list[dict[str, Any]] = field(default_factory=list)  # registered model versions
    study_trials: int = 0  # trials in the Optuna study on PostgreSQL
    nodes: dict[str, str] = field(default_factory=dict)  # node id -> IP, of the cluster
    loaded: dict[str, Any] = field(default_factory=dict)  # what nas.load_model returned in a fresh process

    def by_node(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t["node_id"]] = out.get(t["node_id"], 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "trials": self.trials, "models": self.models,
                "study_trials": self.study_trials, "nodes": self.nodes, "trials_by_node": self.by_node(),
                "loaded": self.loaded}


def inspect_search(cluster: LocalCluster, run_id: str, *, load: bool = True) -> SearchReport:
    """Read the search back from the servers; with ``load``, ``nas.load_model`` in a fresh process, elsewhere."""
    import optuna

    from nas.tracking.tracker import client_for, trial_runs

    client = client_for(cluster.tracking_uri)
    parent = client.get_run(run_id)
    report = SearchReport(run_id, parent.info.status, nodes={n.node_id: n.ip for n in cluster.nodes})
    for r in sorted(trial_runs(client, parent), key=lambda r: int(r.data.tags["nas.trial_number"])):
        tags = r.data.tags
        report.trials.append({"number": int(tags["nas.trial_number"]), "run_id": r.info.run_id,
                              "status": tags.get("nas.status"),
                              "run_status": r.info.status, "node_id": tags.get("nas.node_id", ""),
                              "node_ip": tags.get("nas.node_ip", ""), "reason": tags.get("nas.failure_reason", ""),
                              "checkpoint_dir": tags.get("nas.checkpoint_dir", ""),
                              "val_accuracy": r.data.metrics.get("val_accuracy")})
    name = parent.data.tags.get("nas.study_name") or f"nas-{run_id}"
    report.models = _model_versions(client, report)
    storage = parent.data.tags.get("nas.study_storage")
    if storage:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        report.study_trials = len(optuna.load_study(study_name=name, storage=storage).trials)
    if load:
        report.loaded = load_in_fresh_process(cluster, run_id)
    return report


def _model_versions(client: Any, report: SearchReport) -> list[dict[str, Any]]:
    runs = {t["run_id"] for t in report.trials}
    out = []
    for v in client.search_model_versions(max_results=1000):
        if v.run_id in runs:
            # an MLflow 3 version's source is its logged model (models:/m-...); where its files live is the
            # logged model's artifact location
            model_id = getattr(v, "model_id", None) or (v.source[len("models:/"):] if v.source.startswith("models:/m-")
                                                          else None)
            where = client.get_logged_model(model_id).artifact_location if model_id else v.source
            out.append({"name": v.name, "version": int(v.version), "run_id": v.run_id, "source": v.source,
                        "artifacts": where})
    return out


_LOAD = """
import json, sys, torch, nas
m = nas.load_model(sys.argv[1], tracking_uri=sys.argv[2])
shape = m.nas_arch["input_shape"]
y = m(torch.zeros(2, *shape))
print(json.dumps({"trial": m.nas_arch.get("trial"), "output_shape": list(y.shape), "cls": type(m).__name__}))
"""


def load_in_fresh_process(cluster: LocalCluster, run_id: str) -> dict[str, Any]:
    """``nas.load_model`` in a new Python process outside every Ray node's namespace, from another directory:
    the model comes from the MLflow server's artifact store over HTTP, nothing from the driver's disk."""
    cwd = cluster.root / "consumer"
    cwd.mkdir(exist_ok=True)
    env = {k: v for k, v in cluster.env().items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run([sys.executable, "-c", _LOAD, run_id, cluster.tracking_uri], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"nas.load_model failed in a fresh process:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))
