"""Pareto models back from the tracking store: list them, pick one, rebuild it with its weights.

A logged model is its params dict plus the space (file and hash) plus weights; :func:`load_model` rebuilds it with
the same ``build()`` the search used, checks the space hash, and loads the weights.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from nas.builders import build
from nas.data.preprocess import to_raw, with_preprocessing
from nas.errors import ConfigError
from nas.export import ExportResult, load_pt
from nas.export import export_model as export_to
from nas.space import parse_space
from nas.tracking.tracker import (
    client_for,
    default_tracking_uri,
    download_model_dir,
    download_model_uri,
    get_search_run,
    trial_runs,
)
from nas.training.checkpoint import MODULE_FILE, SCRIPT_FILE, WEIGHTS_FILE, load_module
from nas.training.train import evaluate
from nas.training.trial import cached_splits, use_import_paths

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
               front: str = "search") -> nn.Module:
    """Rebuild a Pareto model of search ``run_id`` with its trained weights, in eval mode.

    ``rank`` 0 is the most accurate Pareto model (or pick by ``trial`` number). ``front="merged"`` picks from the
    front that ``nas compress`` merged (compressed models load the same way). The returned module carries its
    architecture record (params, space hash, metrics, data settings) as ``model.nas_arch``.
    ``run_id`` may also be an MLflow model URI (``models:/<name>/<version>``) or a ``nas export --format pt``
    file: that model is rebuilt.
    """
    if Path(run_id).suffix == ".pt" and Path(run_id).is_file():  # a `nas export --format pt` file
        return load_pt(run_id)
    if run_id.startswith("models:/"):
        with tempfile.TemporaryDirectory() as d:
            return load_model_dir(download_model_uri(run_id, d, tracking_uri or default_tracking_uri()))
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
        return load_model_dir(download_model_dir(client, entry.run_id, d))


def load_model_dir(path: str | Path) -> nn.Module:
    """Rebuild a model from a folder written by the search (weights.pt, arch.json, space.yaml), or from an MLflow
    model folder that carries them (in ``extra_files/``). The model takes preprocessed inputs, as in training;
    ``model.nas_arch["preprocessing"]`` says how raw inputs become those (see :mod:`nas.data.preprocess`)."""
    p = Path(path)
    if not Path(p, "arch.json").is_file() and Path(p, "extra_files", "arch.json").is_file():
        p = p / "extra_files"
    arch = json.loads(Path(p, "arch.json").read_text())
    use_import_paths(arch.get("import_paths", ()))
    space = parse_space(yaml.safe_load(Path(p, "space.yaml").read_text()), source=arch.get("space_source", str(p)))
    if space.hash != arch["space_hash"]:
        raise ValueError(f"{p}: space hash {space.hash} does not match the recorded {arch['space_hash']}")
    model = load_module(p)  # a compressed model, saved whole by the search (trusted: our own run)
    if model is None:
        model = build(space, arch["params"], input_shape=tuple(arch["input_shape"]),
                      num_classes=int(arch["num_classes"]))
        model.load_state_dict(torch.load(Path(p, WEIGHTS_FILE), map_location="cpu", weights_only=True))
    model.eval()
    model.nas_arch = arch  # type: ignore[assignment]
    model.nas_space_yaml = Path(p, "space.yaml").read_text()  # type: ignore[assignment]
    return model


def write_model_dir(d: str | Path, rec: Any, space: Any, input_shape: tuple[int, ...], num_classes: int,
                    seed: int, data: dict[str, Any]) -> None:
    """A self-contained model folder: weights (or the whole module when compressed), the architecture (params +
    space hash), the space file and the data's preprocessing. The model's accuracy on the held-out test split is
    measured here, stored in ``arch.json`` and in ``rec.metrics["test_accuracy"]``: reported, never used to
    choose (the Pareto set is already fixed when this runs)."""
    for name in (WEIGHTS_FILE, MODULE_FILE, SCRIPT_FILE):
        if Path(rec.checkpoint_dir, name).is_file():
            shutil.copy(Path(rec.checkpoint_dir, name), Path(d, name))
    Path(d, "space.yaml").write_text(Path(space.source).read_text())
    splits = cached_splits(data)
    arch = {
        "trial": rec.number, "params": rec.params, "training": rec.training, "space_hash": space.hash,
        "space_source": space.source, "builder": space.builder, "input_shape": list(input_shape),
        "num_classes": num_classes, "seed": seed, "data": data, "metrics": rec.metrics,
        "preprocessing": splits.info.get("preprocessing"), "feature_columns": splits.info.get("feature_columns"),
        "class_names": splits.info.get("class_names"),
        "import_paths": [str(Path(space.source).resolve().parent), *_builder_folder(space.builder)],
    }
    Path(d, "arch.json").write_text(json.dumps(arch, indent=2, default=str))
    if len(splits.test):
        accuracy, _ = evaluate(load_model_dir(d), splits.test)
        rec.metrics["test_accuracy"] = accuracy
        arch["metrics"] = rec.metrics
        Path(d, "arch.json").write_text(json.dumps(arch, indent=2, default=str))


def _builder_folder(builder: str) -> list[str]:
    """The folder a ``module:function`` builder's top-level module was imported from (none for a package)."""
    module = sys.modules.get(builder.partition(":")[0]) if ":" in builder else None
    file = getattr(module, "__file__", None)
    if not file or Path(file).name == "__init__.py":
        return []
    return [str(Path(file).resolve().parents[builder.partition(":")[0].count(".")])]


def deployable(d: str | Path) -> tuple[nn.Module, Any, dict[str, Any]]:
    """The model of folder ``d`` as it is logged to MLflow: preprocessing inside (it takes raw inputs), traced to
    TorchScript where tracing works (it then loads without nas), else the eager module. Returns the module, an
    input example of raw test inputs (a DataFrame with the feature names for tabular data, else an array) and
    the ``arch.json`` record."""
    import numpy as np
    import pandas as pd

    model = load_model_dir(d)
    arch = dict(model.nas_arch)  # type: ignore[arg-type]
    shape = tuple(arch["input_shape"])
    wrapped = with_preprocessing(model, arch.get("preprocessing"), shape).eval()
    splits = cached_splits(arch["data"])
    part = splits.test if len(splits.test) else splits.val
    raw = to_raw(part.tensors[0][:2], arch.get("preprocessing"), shape)
    try:
        with torch.no_grad():
            traced = torch.jit.trace(wrapped, raw)
            same = torch.allclose(traced(raw), wrapped(raw), atol=1e-5)
        module: nn.Module = traced if same else wrapped
    except Exception:  # e.g. a quantized graph that does not trace: logged as the eager module
        module = wrapped
    columns = arch.get("feature_columns")
    example: Any = raw.numpy().astype(np.float32)
    if columns and len(shape) == 1 and len(columns) == shape[0]:
        example = pd.DataFrame(example.astype(np.float64), columns=[str(c) for c in columns])  # as read_csv reads
    return module, example, arch


def export_model(run_id: str, out: str | Path, *, where: str | None = None, best: str = "val_accuracy",
                 tracking_uri: str | None = None, fmt: str = "pt") -> tuple[ParetoEntry, ExportResult]:
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
    model = load_model(run_id, trial=entry.trial, tracking_uri=tracking_uri)
    return entry, export_to(model, out, fmt, rank=entry.rank)
