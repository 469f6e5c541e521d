"""What a trial leaves in its checkpoint folder: weights, or a whole module, and how to read it back.

Artifacts are data, not code: weights load with ``weights_only=True``; a whole module is read from its TorchScript
file (``model.ts``, no Python runs), and its pickle (``model.pt``, which can run any code when loaded) only with
``trust_code=True``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from nas.errors import ConfigError

WEIGHTS_FILE = "weights.pt"
MODULE_FILE = "model.pt"  # a whole pickled module, for compressed models
SCRIPT_FILE = "model.ts"  # the same as TorchScript, where a module cannot be pickled (FX-quantized graphs)


def save_module(model: torch.nn.Module, folder: str | Path, input_shape: tuple[int, ...]) -> Path:
    """Save a whole module as TorchScript (traced: loadable without trusting the file) and, when it can be
    pickled, as a pickle too (the exact Python module, for trusted loads). Returns the TorchScript path, or the
    pickle's when the module cannot be traced."""
    folder = Path(folder)
    script: Path | None = folder / SCRIPT_FILE
    try:
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(model.eval(), torch.zeros(1, *input_shape)), str(script))
    except Exception:  # noqa: BLE001 - tracing fails in many ways; the pickle below still keeps the model
        Path(folder, SCRIPT_FILE).unlink(missing_ok=True)
        script = None
    try:
        torch.save(model, folder / MODULE_FILE)
    except (AttributeError, TypeError, RuntimeError, pickle.PicklingError):
        Path(folder, MODULE_FILE).unlink(missing_ok=True)
        if script is None:
            raise
    return script or folder / MODULE_FILE


class UntrustedCodeError(ConfigError):
    """Loading an artifact would run code it carries (a pickled module, a ``module:function`` reference)."""


def check_builder(builder: str, *, trust_code: bool, source: str) -> None:
    """Refuse to rebuild a model whose space names a ``module:function`` builder that is not registered, unless
    ``trust_code``: importing it would run code the artifact ``source`` names. Built-in names always pass."""
    from nas.space.registry import builder_names

    if not trust_code and ":" in builder and builder not in builder_names():
        raise UntrustedCodeError(source, "builder", f"the builder {builder!r} is code named by the artifact: "
                                 "rebuilding the model would import and run it",
                                 "pass --trust-code (trust_code=True) if you trust where the artifact came from")


def load_module(folder: str | Path, *, trust_code: bool = False) -> torch.nn.Module | None:
    """The module :func:`save_module` wrote in ``folder``, or None when there is none (weights only).

    TorchScript first; the pickle only with ``trust_code`` (loading a pickle can run any code, so a tampered
    artifact could): without it, a folder holding only a pickle raises :class:`UntrustedCodeError`.
    """
    pickled, script = Path(folder, MODULE_FILE), Path(folder, SCRIPT_FILE)
    if pickled.is_file() and trust_code:
        return torch.load(pickled, map_location="cpu", weights_only=False)
    if script.is_file():
        return torch.jit.load(str(script), map_location="cpu")
    if pickled.is_file():
        raise UntrustedCodeError(str(pickled), "", "this model is a pickled Python module: loading it runs code "
                                 "stored in the artifact", "pass --trust-code (trust_code=True) if you trust "
                                 "the tracking store it came from")
    return None
