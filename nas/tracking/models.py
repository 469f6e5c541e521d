"""Pareto models back from the tracking store: list them, pick one, rebuild it with its weights.

A logged model is its params dict plus the space (file and hash) plus weights; :func:`load_model` rebuilds it with
the same ``build()`` the search used, checks the space hash, and loads the weights.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from nas.builders import build
from nas.builders.registry import builder_names
from nas.errors import ConfigError
from nas.space import parse_space
from nas.tracking.tracker import (
    client_for,
    default_tracking_uri,
    download_model_dir,
    get_search_run,
    trial_runs,
)
from nas.training.checkpoint import MODULE_FILE, SCRIPT_FILE, WEIGHTS_FILE, UntrustedCodeError, load_module

_METRIC_COLS = ("val_accuracy", "mflops", "params", "latency_ms", "peak_mem_mb", "train_flops", "train_seconds")


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
    """
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


def load_model_dir(path: str | Path, *, trust_code: bool = False) -> nn.Module:
    """Rebuild a model from a folder written by the search (weights.pt, arch.json, space.yaml).

    The folder is data: a builder named as ``module:function`` (not a registered built-in) is imported, and a
    pickled module loaded, only with ``trust_code`` (see :func:`nas.training.checkpoint.load_module`)."""
    p = Path(path)
    arch = json.loads(Path(p, "arch.json").read_text())
    doc = yaml.safe_load(Path(p, "space.yaml").read_text())
    builder = str(doc.get("builder", "")) if isinstance(doc, dict) else ""
    if not trust_code and ":" in builder and builder not in builder_names():
        raise UntrustedCodeError(str(Path(p, "space.yaml")), "builder", f"the builder {builder!r} is code named by "
                                 "the artifact: rebuilding the model would import and run it",
                                 "pass --trust-code (trust_code=True) if you trust the tracking store it came from")
    space = parse_space(doc, source=arch.get("space_source", str(p)))
    if space.hash != arch["space_hash"]:
        raise ValueError(f"{p}: space hash {space.hash} does not match the recorded {arch['space_hash']}")
    model = load_module(p, trust_code=trust_code)  # a compressed model, saved whole by the search
    if model is None:
        model = build(space, arch["params"], input_shape=tuple(arch["input_shape"]),
                      num_classes=int(arch["num_classes"]))
        model.load_state_dict(torch.load(Path(p, WEIGHTS_FILE), map_location="cpu", weights_only=True))
    model.eval()
    try:
        model.nas_arch = arch  # type: ignore[assignment]
    except (AttributeError, RuntimeError):  # a TorchScript module takes no new attributes
        object.__setattr__(model, "nas_arch", arch)
    return model


def write_model_dir(d: str | Path, rec: Any, space: Any, input_shape: tuple[int, ...], num_classes: int,
                    seed: int, data: dict[str, Any]) -> None:
    """A self-contained model folder: weights (or the whole module when compressed), the architecture (params +
    space hash) and the space file."""
    for name in (WEIGHTS_FILE, MODULE_FILE, SCRIPT_FILE):
        if Path(rec.checkpoint_dir, name).is_file():
            shutil.copy(Path(rec.checkpoint_dir, name), Path(d, name))
    Path(d, "space.yaml").write_text(Path(space.source).read_text())
    Path(d, "arch.json").write_text(json.dumps({
        "trial": rec.number, "params": rec.params, "training": rec.training, "space_hash": space.hash,
        "space_source": space.source, "builder": space.builder, "input_shape": list(input_shape),
        "num_classes": num_classes, "seed": seed, "data": data, "metrics": rec.metrics,
    }, indent=2, default=str))


def export_model(run_id: str, out: str | Path, *, where: str | None = None, best: str = "val_accuracy",
                 tracking_uri: str | None = None, trust_code: bool = False) -> ParetoEntry:
    """Pick the best Pareto model meeting ``where`` and save it (``torch.save`` of weights + arch) to ``out``."""
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
    torch.save({"state_dict": model.state_dict(), "arch": model.nas_arch}, out)
    return entry
