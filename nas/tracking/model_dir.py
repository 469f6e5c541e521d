"""A model folder, the unit a Pareto model is stored as: weights (or the whole module), ``arch.json`` (params,
space hash, data, preprocessing, test accuracy) and the space file. Written by the search, read back by
:mod:`nas.tracking.models` and the compression stage, and turned into the MLflow model the tracker logs."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from nas.builders import build
from nas.data.preprocess import to_raw, with_preprocessing
from nas.space import parse_space
from nas.training.checkpoint import MODULE_FILE, SCRIPT_FILE, WEIGHTS_FILE, check_builder, load_module
from nas.training.train import evaluate
from nas.training.trial import cached_splits, use_import_paths


def load_model_dir(path: str | Path, *, trust_code: bool = False) -> nn.Module:
    """Rebuild a model from a folder written by the search (weights.pt, arch.json, space.yaml), or from an MLflow
    model folder that carries them (in ``extra_files/``). The model takes preprocessed inputs, as in training;
    ``model.nas_arch["preprocessing"]`` says how raw inputs become those (see :mod:`nas.data.preprocess`).

    The folder is data: a builder named as ``module:function`` (not a registered built-in) is imported, and a
    pickled module loaded, only with ``trust_code`` (see :func:`nas.training.checkpoint.load_module`)."""
    p = Path(path)
    if not Path(p, "arch.json").is_file() and Path(p, "extra_files", "arch.json").is_file():
        p = p / "extra_files"
    arch = json.loads(Path(p, "arch.json").read_text())
    doc = yaml.safe_load(Path(p, "space.yaml").read_text())
    builder = str(doc.get("builder", "")) if isinstance(doc, dict) else ""
    check_builder(builder, trust_code=trust_code, source=str(Path(p, "space.yaml")))
    if trust_code:
        use_import_paths(arch.get("import_paths", ()))
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
        model.nas_space_yaml = Path(p, "space.yaml").read_text()  # type: ignore[assignment]
    except (AttributeError, RuntimeError):  # a TorchScript module takes no new attributes
        object.__setattr__(model, "nas_arch", arch)
        object.__setattr__(model, "nas_space_yaml", Path(p, "space.yaml").read_text())
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
        accuracy, _ = evaluate(load_model_dir(d, trust_code=True), splits.test)  # our own folder
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

    model = load_model_dir(d, trust_code=True)  # the search's own folder, just written
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
