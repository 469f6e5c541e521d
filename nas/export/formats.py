"""The export formats: each writes a file and loads it back in its own runtime (a table, not an if/elif chain)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from nas.builders import build
from nas.data.preprocess import to_raw, with_preprocessing
from nas.space import parse_space
from nas.training.checkpoint import check_builder
from nas.training.trial import cached_splits, use_import_paths

#: outputs of an exported model may differ from PyTorch's by at most this (absolute, on logits)
TOLERANCE = 1e-4

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ExportResult:
    """What ``nas export`` wrote and what it measured: ``max_abs_diff`` between the exported and the PyTorch
    model's logits on raw test inputs, ``latency_ms`` the median of one-sample passes in ``runtime``."""

    path: str
    format: str
    trial: int
    rank: int
    runtime: str
    max_abs_diff: float
    latency_ms: float
    raw_inputs: bool
    metrics: dict[str, float]


def _write_pt(model: nn.Module, example: torch.Tensor, path: Path) -> Runner:
    torch.save({"state_dict": model.state_dict(), "arch": model.nas_arch,  # type: ignore[attr-defined]
                "space_yaml": model.nas_space_yaml}, path)  # type: ignore[attr-defined]
    loaded = load_pt(path, trust_code=True)  # the file this process just wrote

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return loaded(torch.from_numpy(x)).numpy()

    return run


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Runner:
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(model, example), str(path))
    loaded = torch.jit.load(str(path), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return loaded(torch.from_numpy(x)).numpy()

    return run


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Runner:
    import onnxruntime

    torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"input": x})[0]

    return run


#: format -> (writer returning a runner of the loaded file, runtime name, takes raw inputs)
FORMATS: dict[str, tuple[Callable[[nn.Module, torch.Tensor, Path], Runner], str, bool]] = {
    "pt": (_write_pt, "PyTorch (nas.load_model)", False),
    "torchscript": (_write_torchscript, "TorchScript (torch.jit.load)", True),
    "onnx": (_write_onnx, "onnxruntime (CPUExecutionProvider)", True),
}


def load_pt(path: str | Path, *, trust_code: bool = False) -> nn.Module:
    """Rebuild the model of a ``pt`` export (weights + architecture + space, read with ``weights_only=True``).
    A ``module:function`` builder named by the file is imported only with ``trust_code``."""
    saved = torch.load(Path(path), map_location="cpu", weights_only=True)
    arch = saved["arch"]
    doc = yaml.safe_load(saved["space_yaml"])
    check_builder(str(doc.get("builder", "")) if isinstance(doc, dict) else "", trust_code=trust_code, source=str(path))
    if trust_code:
        use_import_paths(arch.get("import_paths", ()))
    space = parse_space(doc, source=arch.get("space_source", str(path)))
    if space.hash != arch["space_hash"]:
        raise ValueError(f"{path}: space hash {space.hash} does not match the recorded {arch['space_hash']}")
    model = build(space, arch["params"], input_shape=tuple(arch["input_shape"]), num_classes=int(arch["num_classes"]))
    model.load_state_dict(saved["state_dict"])
    model.eval()
    model.nas_arch = arch  # type: ignore[assignment]
    model.nas_space_yaml = saved["space_yaml"]  # type: ignore[assignment]
    return model


def _latency_ms(run: Runner, x: np.ndarray, repeats: int = 30) -> float:
    for _ in range(3):
        run(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def export_model(model: nn.Module, out: str | Path, fmt: str, *, rank: int = 0) -> ExportResult:
    """Write ``model`` (from ``nas.load_model``, with ``nas_arch``) to ``out`` as ``fmt``, load it back, check its
    outputs on raw test inputs against the PyTorch model (ValueError beyond :data:`TOLERANCE`) and measure its
    latency (batch of 1) in the export's runtime."""
    writer, runtime, raw_inputs = FORMATS[fmt]
    arch: dict[str, Any] = dict(model.nas_arch)  # type: ignore[arg-type]
    shape = tuple(arch["input_shape"])
    splits = cached_splits(arch["data"])
    part = splits.test if len(splits.test) else splits.val
    inputs = part.tensors[0][:64]
    reference_model = with_preprocessing(model, arch.get("preprocessing"), shape).eval() if raw_inputs else model
    x = to_raw(inputs, arch.get("preprocessing"), shape) if raw_inputs else inputs
    path = Path(out)
    run = writer(reference_model, x[:1].contiguous(), path)
    with torch.no_grad():
        expected = reference_model(x).numpy()
    got = run(x.numpy().astype(np.float32))
    diff = float(np.abs(got - expected).max())
    if not diff <= TOLERANCE:
        raise ValueError(f"the {fmt} export's outputs differ from the PyTorch model's by {diff:.3g} (more than "
                         f"{TOLERANCE:g}); {path} is not usable")
    return ExportResult(str(path), fmt, int(arch.get("trial", -1)), rank, runtime, diff,
                        _latency_ms(run, x[:1].numpy().astype(np.float32)), raw_inputs,
                        {k: float(v) for k, v in arch.get("metrics", {}).items() if isinstance(v, (int, float))})
