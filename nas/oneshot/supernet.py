"""``Supernet``: one tensor per weight slot of a space, every architecture's weights a slice of them.

``extract(params)`` returns ``build(space, params)`` itself (so the same ``state_dict`` keys and shapes, FLOPs and
parameter count as the profiler counts) with its weights copied from the slots. ``forward(x, params)`` runs the
same architecture on the slots directly (``torch.func.functional_call`` on a weightless skeleton built on the
``meta`` device, with views of the slots as its tensors), so a training step updates exactly the shared weights
the extracted module inherits. How keys map to slots is the builder's :class:`~nas.oneshot.rules.SharingRule`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from nas.builders import build
from nas.oneshot.rules import SharingRule, sharing_rule
from nas.space import Space


def arch_key(params: Mapping[str, Any]) -> str:
    """A stable key of a flat params dict (sorted JSON)."""
    return json.dumps(dict(params), sort_keys=True, default=str)


def slice_slot(slot: Tensor, shape: Sequence[int]) -> Tensor:
    """The view of ``slot`` a subnet uses for a tensor of ``shape``: leading block on every dimension, except the
    two kernel dimensions of a 4-D convolution weight, which take the centred block. ``ValueError`` when ``shape``
    does not fit in ``slot``."""
    shape = tuple(shape)
    if len(shape) != slot.dim() or any(s > m for s, m in zip(shape, slot.shape, strict=True)):
        raise ValueError(f"a tensor of shape {list(shape)} does not fit in its slot of shape {list(slot.shape)}")
    index = []
    for d, (s, m) in enumerate(zip(shape, slot.shape, strict=True)):
        start = (m - s) // 2 if slot.dim() == 4 and d >= 2 else 0
        index.append(slice(start, start + s))
    return slot[tuple(index)]


class Supernet(nn.Module):
    """Every weight of every architecture of ``space`` (built for ``input_shape``/``num_classes``).

    Slots live as parameters (trainable tensors) and buffers (BatchNorm statistics) named ``slot_<n>``; the slot
    names are in :attr:`slot_names`. Initial values come from the rule's cover architectures built with ``seed``.
    Not thread-safe (the skeleton cache).
    """

    def __init__(self, space: Space, input_shape: Sequence[int], num_classes: int, *, seed: int = 0,
                 rule: SharingRule | None = None, cache_size: int = 64) -> None:
        super().__init__()
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), int(num_classes)
        self.rule = rule or sharing_rule(space.builder)
        self.cache_size = cache_size
        self._skeletons: OrderedDict[str, tuple[nn.Module, dict[str, str]]] = OrderedDict()
        largest: dict[str, Tensor] = {}
        trainable: set[str] = set()
        for i, params in enumerate(self.rule.cover(space)):
            model = build(space, params, input_shape=self.input_shape, num_classes=self.num_classes, seed=seed + i)
            slots = self.rule.slots(space.resolve(params), model)
            names = {k for k, _ in model.named_parameters()}
            for key, value in model.state_dict().items():
                slot = slots[key]
                held = largest.get(slot)
                if held is None or value.numel() > held.numel():
                    if held is not None and any(a < b for a, b in zip(value.shape, held.shape, strict=True)):
                        raise ValueError(f"cover of builder {space.builder!r}: slot {slot!r} has no largest shape "
                                         f"({list(held.shape)} and {list(value.shape)})")
                    largest[slot] = value.detach().clone()
                if key in names:
                    trainable.add(slot)
        self.slot_names: dict[str, str] = {}  # slot -> attribute name
        for n, (slot, value) in enumerate(sorted(largest.items())):
            attr = f"slot_{n}"
            self.slot_names[slot] = attr
            if slot in trainable:
                self.register_parameter(attr, nn.Parameter(value))
            else:
                self.register_buffer(attr, value)

    def slot(self, name: str) -> Tensor:
        """The full tensor of slot ``name``."""
        return getattr(self, self.slot_names[name])

    def _skeleton(self, params: Mapping[str, Any]) -> tuple[nn.Module, dict[str, str]]:
        key = arch_key(params)
        hit = self._skeletons.get(key)
        if hit is not None:
            self._skeletons.move_to_end(key)
            return hit
        with torch.device("meta"):
            model = build(self.space, params, input_shape=self.input_shape, num_classes=self.num_classes)
        slots = dict(self.rule.slots(self.space.resolve(params), model))
        missing = sorted({s for s in slots.values() if s not in self.slot_names})
        if missing:
            raise ValueError(f"supernet of builder {self.space.builder!r} has no slot {missing[0]!r}: the rule's "
                             "cover() does not reach every architecture of the space")
        self._skeletons[key] = (model, slots)
        if len(self._skeletons) > self.cache_size:
            self._skeletons.popitem(last=False)
        return model, slots

    def tensors(self, params: Mapping[str, Any]) -> dict[str, Tensor]:
        """The architecture's ``state_dict`` as views of the slots (gradients flow back to the slots)."""
        model, slots = self._skeleton(params)
        return {k: slice_slot(self.slot(slots[k]), v.shape) for k, v in model.state_dict(keep_vars=True).items()}

    def forward(self, x: Tensor, params: Mapping[str, Any]) -> Tensor:  # type: ignore[override]
        """Logits of architecture ``params`` on ``x``, computed on the shared weights. In training mode its
        BatchNorm layers use batch statistics and update the slots' running statistics."""
        model, _ = self._skeleton(params)
        model.train(self.training)
        return functional_call(model, self.tensors(params), (x,), tie_weights=False)

    def extract(self, params: Mapping[str, Any]) -> nn.Module:
        """A stand-alone copy of architecture ``params``: ``build(space, params)`` (on the CPU, eval mode) holding
        the supernet's weights; changing it leaves the supernet as it was."""
        model = build(self.space, params, input_shape=self.input_shape, num_classes=self.num_classes)
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.tensors(params).items()}
        model.load_state_dict(state, strict=True)
        return model.eval()
