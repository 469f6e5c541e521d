"""Small helpers shared by the compression methods: option checks, module replacement, weight listing."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

#: Layers whose weights the pruning and factorization methods act on.
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def check_fraction(value: object, name: str, method: str, *, closed_high: bool = False) -> float:
    """``value`` as a float in (0, 1) (or (0, 1] with ``closed_high``), else ``ValueError``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = 0.0 < v < 1.0 or (closed_high and v == 1.0)
    if not ok:
        interval = "(0, 1]" if closed_high else "(0, 1)"
        raise ValueError(f"{method}: {name} must be a number in {interval}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule at dotted path ``name`` of ``root`` by ``new``."""
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    parent._modules[child] = new


def weight_tensors(model: nn.Module) -> Iterator[tuple[str, Tensor]]:
    """Every weight and bias of ``model`` as a float tensor, quantized modules included (dequantized).

    Buffers (BatchNorm running statistics, quantization scales) are not weights and are left out. Quantized
    Linear/Conv modules keep their weights in packed form behind ``weight()``/``bias()`` methods, dynamic
    quantized RNNs behind ``get_weight()``/``get_bias()``; plain modules as parameters.
    """
    for mod_name, module in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        if callable(getattr(module, "get_weight", None)) and callable(getattr(module, "get_bias", None)):
            tensors = {**module.get_weight(), **module.get_bias()}
        elif callable(getattr(module, "weight", None)):
            tensors = {"weight": module.weight()}
            if callable(getattr(module, "bias", None)):
                tensors["bias"] = module.bias()
        else:
            tensors = dict(module.named_parameters(recurse=False))
        for key, tensor in tensors.items():
            if tensor is None:
                continue
            yield prefix + key, tensor.dequantize() if tensor.is_quantized else tensor.detach()


def is_quantized(model: nn.Module) -> bool:
    """True when any weight or buffer of ``model`` is a quantized tensor or a packed quantized weight."""
    if any(callable(getattr(m, "weight", None)) or callable(getattr(m, "get_weight", None)) for m in model.modules()):
        return True
    return any(t.is_quantized for t in model.state_dict().values() if isinstance(t, Tensor))


def dense_macs_zeroed(model: nn.Module, x: Tensor) -> float:
    """Multiply-adds of ``model(x)`` (per sample of the batch ``x``) that meet a zero weight.

    For every Linear and Conv layer that runs: zero weights x the number of times each weight is used
    (output positions: spatial positions of a conv's output, tokens of a Linear's input). Bias adds are not
    counted here (they are the same for dense and sparse weights).
    """
    total = 0.0
    handles = []

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        zeros = float((module.weight == 0).sum())
        if isinstance(module, nn.Linear):
            uses = inputs[0].numel() / module.in_features
        else:
            uses = output.numel() / module.out_channels
        total += zeros * uses / x.shape[0]

    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS):
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total
