"""The preprocessing a dataset applies to raw inputs, saved so that it travels with the model.

Every loader writes ``info["preprocessing"] = {"offset": ..., "divisor": ...}``: the model sees
``(raw - offset) / divisor``, with scalars or per-feature lists (over the first input dimension, e.g. the CSV's
feature columns). :func:`with_preprocessing` wraps a trained model so that it takes raw inputs (pixels 0..16 for
digits, 0..255 for images, the CSV's own units) and gives the accuracy that was logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


def preprocessing(offset: float | Sequence[float] = 0.0, divisor: float | Sequence[float] = 1.0) -> dict[str, Any]:
    """The ``info["preprocessing"]`` record of a loader: the model input is ``(raw - offset) / divisor``."""
    def plain(v: float | Sequence[float]) -> float | list[float]:
        return float(v) if isinstance(v, (int, float)) else [float(x) for x in v]

    return {"offset": plain(offset), "divisor": plain(divisor)}


class WithPreprocessing(nn.Module):
    """``model((x - offset) / divisor)``: a trained model that takes raw inputs. ``offset`` and ``divisor`` are
    buffers (saved in the state dict, moved with the module), shaped to broadcast over ``(batch, *input_shape)``."""

    def __init__(self, model: nn.Module, offset: torch.Tensor, divisor: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("offset", offset)
        self.register_buffer("divisor", divisor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.offset) / self.divisor)


def _tensor(value: float | Sequence[float], input_shape: Sequence[int]) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32)
    if t.ndim == 0:
        return t
    # per-feature values run over the first input dimension (features, or channels of an image)
    return t.reshape(len(t), *([1] * (len(input_shape) - 1)))


def with_preprocessing(model: nn.Module, record: Mapping[str, Any] | None, input_shape: Sequence[int]) -> nn.Module:
    """``model`` wrapped to take raw inputs per ``record`` (``info["preprocessing"]``); unchanged without one."""
    if not record:
        return model
    return WithPreprocessing(model, _tensor(record.get("offset", 0.0), input_shape),
                             _tensor(record.get("divisor", 1.0), input_shape))


def to_raw(x: torch.Tensor, record: Mapping[str, Any] | None, input_shape: Sequence[int]) -> torch.Tensor:
    """The raw inputs that preprocess to ``x`` (``x * divisor + offset``), e.g. for an input example."""
    if not record:
        return x
    return x * _tensor(record.get("divisor", 1.0), input_shape) + _tensor(record.get("offset", 0.0), input_shape)
