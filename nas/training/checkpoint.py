"""What a trial leaves in its checkpoint folder: weights, or a whole module, and how to read it back."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

WEIGHTS_FILE = "weights.pt"
MODULE_FILE = "model.pt"  # a whole pickled module, for compressed models
SCRIPT_FILE = "model.ts"  # the same as TorchScript, where a module cannot be pickled (FX-quantized graphs)


def save_module(model: torch.nn.Module, folder: str | Path, input_shape: tuple[int, ...]) -> Path:
    """Save a whole module: pickled when it can be, else traced to TorchScript (quantized FX graphs)."""
    try:
        path = Path(folder, MODULE_FILE)
        torch.save(model, path)
    except (AttributeError, TypeError, RuntimeError, pickle.PicklingError):
        Path(folder, MODULE_FILE).unlink(missing_ok=True)
        path = Path(folder, SCRIPT_FILE)
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(model.eval(), torch.zeros(1, *input_shape)), str(path))
    return path


def load_module(folder: str | Path) -> torch.nn.Module | None:
    """The module :func:`save_module` wrote in ``folder``, or None when there is none."""
    if Path(folder, MODULE_FILE).is_file():
        return torch.load(Path(folder, MODULE_FILE), map_location="cpu", weights_only=False)
    if Path(folder, SCRIPT_FILE).is_file():
        return torch.jit.load(str(Path(folder, SCRIPT_FILE)), map_location="cpu")
    return None
