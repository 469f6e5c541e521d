"""Pareto models back from the tracking store: list them, pick one, rebuild it with its weights.

A logged model is its params dict plus the space (file and hash) plus weights; :func:`load_model` rebuilds it with
the same ``build()`` the search used, checks the space hash, and loads the weights.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from nas.errors import ConfigError
from nas.export import ExportResult, load_pt
from nas.export import export_model as export_to
from nas.tracking.model_dir import deployable, load_model_dir, write_model_dir  # noqa: F401  (re-exported)
from nas.tracking.tracker import (
    client_for,
    default_tracking_uri,
    download_model_dir,
    download_model_uri,
    get_search_run,
    trial_runs,
)

_METRIC_COLS = ("val_accuracy", "test_accuracy", "mflops", "params", "latency_ms", "peak_mem_mb", "train_flops", "train_seconds")


@dataclass(frozen=True)
class ParetoEntry:
    """One Pareto-optimal trial of a search; ``rank`` 0 is the most accurate."""

    rank: int
    trial: int
    run_id: str
    metrics: dict[str, float]
    params: dict[str, Any]

    def row(self) -> dict[str, Any]:
        return {"rank": self.rank, "trial": self.trial, **{k: self.metrics[k] for k in _METRIC_COLS if k in self.metrics}}


def pareto_set(run_id: str, tracking_uri: str | None = None, *, front: str = "search") -> list[ParetoEntry]:
    """The Pareto set of search ``run_id``, most accurate first. ``front="merged"``: the front of the trials and
    their compressed versions after ``nas compress`` (falls back to the search's set before any)."""
    client = client_for(tracking_uri or default_tracking_uri())
    search = get_search_run(client, run_id)
    runs = trial_runs(client, search, kind=None, merged_front=True) if front == "merged" else []
    if not runs:
        runs = trial_runs(client, search, pareto_only=True)
    runs.sort(key=lambda r: (-r.data.metrics.get("val_accuracy", 0.0), int(r.data.tags.get("nas.trial_number", 0))))
    out = []
    for rank, r in enumerate(runs):
        params = {k[len("arch/"):]: _decode(v) for k, v in r.data.params.items() if k.startswith("arch/")}
        out.append(ParetoEntry(rank, int(r.data.tags.get("nas.trial_number", -1)), r.info.run_id,
                               dict(r.data.metrics), params))
    return out


def _decode(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def load_model(run_id: str, rank: int = 0, *, tracking_uri: str | None = None, trial: int | None = None,
               front: str = "search", trust_code: bool = False) -> nn.Module:
    """Rebuild a Pareto model of search ``run_id`` with its trained weights, in eval mode.

    ``rank`` 0 is the most accurate Pareto model (or pick by ``trial`` number). ``front="merged"`` picks from the
    front that ``nas compress`` merged (compressed models load the same way). The returned module carries its
    architecture record (params, space hash, metrics, data settings) as ``model.nas_arch``.
    ``run_id`` may also be an MLflow model URI (``models:/<name>/<version>``) or a ``nas export --format pt``
    file: that model is rebuilt.
    """
    if Path(run_id).suffix == ".pt" and Path(run_id).is_file():  # a `nas export --format pt` file
        return load_pt(run_id, trust_code=trust_code)
    if run_id.startswith("models:/"):
        with tempfile.TemporaryDirectory() as d:
            return load_model_dir(download_model_uri(run_id, d, tracking_uri or default_tracking_uri()),
                                  trust_code=trust_code)
    entries = pareto_set(run_id, tracking_uri, front=front)
    if not entries:
        raise ConfigError("RUN_ID", "", f"search {run_id!r} has no logged Pareto models",
                          "wait for the search to finish, or check that it completed trials")
    if trial is not None:
        chosen = [e for e in entries if e.trial == trial]
        if not chosen:
            raise ConfigError("--trial", "", f"trial {trial} is not in the Pareto set of {run_id}",
                              f"choose one of: {', '.join(str(e.trial) for e in entries)}")
        entry = chosen[0]
    else:
        if not 0 <= rank < len(entries):
            raise ConfigError("--rank", "", f"rank {rank} is out of range; the Pareto set has {len(entries)} models",
                              f"use a rank from 0 to {len(entries) - 1}")
        entry = entries[rank]
    client = client_for(tracking_uri or default_tracking_uri())
    with tempfile.TemporaryDirectory() as d:
        return load_model_dir(download_model_dir(client, entry.run_id, d), trust_code=trust_code)


def export_model(run_id: str, out: str | Path, *, where: str | None = None, best: str = "val_accuracy",
                 tracking_uri: str | None = None, fmt: str = "pt",
                 trust_code: bool = False) -> tuple[ParetoEntry, ExportResult]:
    """Pick the best Pareto model meeting ``where`` and export it to ``out`` as ``fmt`` (see :mod:`nas.export`):
    written, loaded back in its runtime, outputs checked against PyTorch, latency measured there."""
    from nas.config.objectives import METRICS
    from nas.pareto import select

    entries = pareto_set(run_id, tracking_uri)
    rows = [{**e.metrics, "_rank": e.rank} for e in entries]
    direction = METRICS[best].natural_direction if best in METRICS else "maximize"
    picked = select(rows, where=where, best=best, direction=direction)
    if not picked:
        raise ConfigError("--where", "", f"no Pareto model of {run_id} meets {where!r}",
                          "relax the condition; `nas pareto RUN_ID` lists the set")
    entry = entries[int(picked[0]["_rank"])]
    model = load_model(run_id, trial=entry.trial, tracking_uri=tracking_uri, trust_code=trust_code)
    return entry, export_to(model, out, fmt, rank=entry.rank)
