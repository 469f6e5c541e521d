"""``prune_structured``: remove whole output channels (convs) and neurons (Linear), so the model really shrinks.

The model is walked in dataflow order. A *group* is the output channels of a *producer* (a Linear, or a
convolution with ``groups == 1``), the channel-wise layers that carry them (BatchNorm, LayerNorm over the
features, depthwise convolutions, squeeze-excitation) and the one *consumer* that reads them (the next Linear or
convolution). In every group ``floor(amount * n)`` channels with the smallest L1 norm of the producer's weights
are removed from the producer's outputs, the carriers and the consumer's inputs. A producer with no consumer (the
classifier) is never pruned, and neither is a group whose channels meet a residual add, a flatten of a spatial
map or a module the walker does not know: those are listed in the notes.

Known containers (:data:`SEQUENTIAL`): ``nn.Sequential`` (and subclasses that keep its ``forward``), the ``cnn``
builder's ``CNN`` (stem, stages, head) and a non-residual ``MBConv``. A residual ``MBConv`` is pruned inside: its
expanded hidden channels (expand conv outputs, depthwise conv, squeeze-excitation, project conv inputs); its
input and output channels, tied by the residual add, stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from nas.builders._blocks import MBConv, SqueezeExcite
from nas.builders.cnn import CNN
from nas.compress._util import check_fraction
from nas.compress.registry import CompressedModel, register_method

log = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: Container type -> names of its children in the order its forward runs them (a pure chain).
SEQUENTIAL: dict[type[nn.Module], Callable[[nn.Module], list[str]]] = {
    CNN: lambda m: ["stem", "stages", "head"],
    MBConv: lambda m: ["body"],
}

#: Parameter-free modules that act on each channel separately (they never mix or reorder channels).
PASSTHROUGH: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU,
    nn.ELU, nn.SELU, nn.Mish, nn.Softplus, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Flatten,
)
_GLOBAL_POOLS = (
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)


def _param(t: Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(t.detach().clone(), requires_grad=like.requires_grad)


# ---- slicing: keep channels ``idx`` ------------------------------------------------------------------------

def _slice_outputs(m: nn.Module, idx: Tensor) -> None:
    """A producer (Linear or conv) keeps output channels ``idx``."""
    m.weight = _param(m.weight[idx], m.weight)
    if m.bias is not None:
        m.bias = _param(m.bias[idx], m.bias)
    if isinstance(m, nn.Linear):
        m.out_features = len(idx)
    else:
        m.out_channels = len(idx)


def _slice_inputs(m: nn.Module, idx: Tensor) -> None:
    """A consumer (Linear or conv with ``groups == 1``) keeps input channels ``idx``."""
    m.weight = _param(m.weight[:, idx], m.weight)
    if isinstance(m, nn.Linear):
        m.in_features = len(idx)
    else:
        m.in_channels = len(idx)


def _slice_norm(m: nn.Module, idx: Tensor) -> None:
    if m.weight is not None:
        m.weight = _param(m.weight[idx], m.weight)
    if m.bias is not None:
        m.bias = _param(m.bias[idx], m.bias)
    if isinstance(m, nn.LayerNorm):
        m.normalized_shape = (len(idx),)
        return
    if m.running_mean is not None:
        m.running_mean = m.running_mean[idx].clone()
        m.running_var = m.running_var[idx].clone()
    m.num_features = len(idx)


def _slice_depthwise(m: nn.Module, idx: Tensor) -> None:
    _slice_outputs(m, idx)
    m.in_channels = m.groups = len(idx)


def _slice_se(m: nn.Module, idx: Tensor) -> None:
    _slice_inputs(m.reduce, idx)
    _slice_outputs(m.expand, idx)


def _is_depthwise(m: nn.Module, n: int) -> bool:
    return isinstance(m, _CONVS) and m.groups == m.in_channels == m.out_channels == n


def _is_norm(m: nn.Module, n: int) -> bool:
    if isinstance(m, nn.LayerNorm):
        return tuple(m.normalized_shape) == (n,)
    return isinstance(m, nn.modules.batchnorm._BatchNorm) and m.num_features == n


#: Channel-wise layers with weights: (accepts(module, channels), slice(module, keep)).
CARRIERS: list[tuple[Callable[[nn.Module, int], bool], Callable[[nn.Module, Tensor], None]]] = [
    (_is_norm, _slice_norm),
    (_is_depthwise, _slice_depthwise),
    (lambda m, n: isinstance(m, SqueezeExcite) and m.reduce.in_channels == n, _slice_se),
]


def _is_producer(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or (isinstance(m, _CONVS) and m.groups == 1)


def _width(m: nn.Module) -> int:
    return m.out_features if isinstance(m, nn.Linear) else m.out_channels


# ---- the walk ---------------------------------------------------------------------------------------------

@dataclass
class _Group:
    name: str
    producer: nn.Module
    carriers: list[tuple[nn.Module, Callable[[nn.Module, Tensor], None]]] = field(default_factory=list)
    consumer: nn.Module | None = None


@dataclass
class _Walk:
    """State of the dataflow walk: the open group (outputs not yet consumed) and what was found."""

    groups: list[_Group] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    open: _Group | None = None
    flat: bool = True  # the current tensor has no spatial dims (after a Linear or a global pool)

    def close(self, reason: str) -> None:
        """The open group's channels cannot be removed (``reason``); keep them."""
        if self.open is not None:
            self.kept.append(f"{self.open.name}: output channels kept ({reason})")
            self.open = None

    def visit(self, name: str, m: nn.Module) -> None:
        seq = _sequence(m)
        if isinstance(m, MBConv) and m.residual:
            self._residual(name, m)
        elif seq is not None:
            for child in seq:
                self.visit(f"{name}.{child}" if name else child, m.get_submodule(child))
        elif _is_producer(m):
            if self.open is not None:
                self.open.consumer = m
                self.groups.append(self.open)
            self.open = _Group(name, m)
            self.flat = isinstance(m, nn.Linear)
        elif self.open is not None and (fn := _carrier(m, _width(self.open.producer))) is not None:
            self.open.carriers.append((m, fn))
        elif isinstance(m, PASSTHROUGH) and not (isinstance(m, nn.Flatten) and not self.flat):
            if isinstance(m, _GLOBAL_POOLS) and all(s == 1 for s in _as_tuple(m.output_size)):
                self.flat = True
        elif self.open is None and isinstance(m, CARRIER_TYPES):
            # a channel-wise layer (or a grouped conv) on channels nobody prunes
            self.flat = self.flat and not isinstance(m, _CONVS)
        else:
            where = name or "<model>"
            self.close(f"then {type(m).__name__} at {where}, which the walker does not rewire")
            if any(True for _ in m.parameters()):
                self.kept.append(f"{where}: {type(m).__name__} left as it is (structure unknown to the walker)")

    def _residual(self, name: str, m: MBConv) -> None:
        self.close(f"they feed the residual add of {name}")
        self.visit(f"{name}.body", m.body)
        self.close(f"the residual add of {name} ties them to the block's input")
        self.flat = False


CARRIER_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm, nn.LayerNorm, *_CONVS, SqueezeExcite,
)


def _carrier(m: nn.Module, n: int) -> Callable[[nn.Module, Tensor], None] | None:
    for accepts, fn in CARRIERS:
        if accepts(m, n):
            return fn
    return None


def _sequence(m: nn.Module) -> list[str] | None:
    for cls, children in SEQUENTIAL.items():
        if isinstance(m, cls):
            return children(m)
    if isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward:
        return [k for k, _ in m.named_children()]
    return None


def _as_tuple(v: Any) -> tuple[Any, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _keep_indices(producer: nn.Module, amount: float) -> Tensor:
    """Indices (ascending) of the output channels with the largest L1 norm of the producer's weights."""
    scores = producer.weight.detach().abs().flatten(1).sum(dim=1)
    n = len(scores)
    n_keep = max(1, n - int(amount * n + 1e-9))
    return torch.sort(torch.topk(scores, n_keep).indices).values


@register_method("prune_structured")
def prune_structured(model: nn.Module, *, amount: float = 0.5) -> CompressedModel:
    """Remove ``floor(amount * n)`` of the ``n`` output channels/neurons of every prunable layer (L1 ranking).

    See the module docstring for what is prunable. FLOPs, parameters, size and latency of the result are
    those of a genuinely smaller dense model.
    """
    amount = check_fraction(amount, "amount", "prune_structured")
    walk = _Walk()
    walk.visit("", model)
    walk.close("no consumer: the model's output")
    layers = []
    with torch.no_grad():
        keep = [_keep_indices(g.producer, amount) for g in walk.groups]  # all ranked on the unpruned weights
        for g, idx in zip(walk.groups, keep, strict=True):
            before = _width(g.producer)
            _slice_outputs(g.producer, idx)
            for carrier, fn in g.carriers:
                fn(carrier, idx)
            _slice_inputs(g.consumer, idx)
            layers.append({"layer": g.name, "before": before, "after": len(idx)})
    if layers:
        notes = [f"structured pruning: {amount:g} of the output channels/neurons of each of {len(layers)} layers "
                 "removed (smallest L1 norm); the model is genuinely smaller, FLOPs and latency are those of the "
                 "smaller dense model", *walk.kept]
    else:
        log.warning("prune_structured: nothing prunable found in %s", type(model).__name__)
        notes = ["structured pruning removed nothing: no layer's outputs could be removed and rewired", *walk.kept]
    return CompressedModel(
        model=model, method="prune_structured", settings={"amount": amount, "layers": layers}, notes=notes
    )
