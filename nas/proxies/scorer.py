"""Score architectures of a space with zero-cost proxies on one fixed batch (the search's ``scorer``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from nas.builders import build
from nas.proxies.registry import compute_proxies
from nas.space import Space

AUTO = ("synflow", "naswot")


def proxy_set(name: str) -> tuple[str, ...]:
    """The proxies to compute for ``proxy.name``: ``auto`` is synflow and naswot; ``params`` always joins as the
    baseline a proxy must beat."""
    names = AUTO if name == "auto" else (name,)
    return tuple(dict.fromkeys((*names, "params")))


class ArchitectureScorer:
    """``scorer(params) -> {"synflow": ..., "params": ...}``: builds the architecture (seeded, untrained) and scores
    it on the first ``batch_size`` training samples. Costs one build and a forward/backward per proxy; the
    search counts it as proxy time, not training compute (≈ 0 next to a training)."""

    def __init__(self, space: Space, x: torch.Tensor, y: torch.Tensor, names: Sequence[str], *,
                 input_shape: tuple[int, ...], num_classes: int, seed: int = 0) -> None:
        self.space, self.x, self.y, self.names = space, x, y, tuple(names)
        self.input_shape, self.num_classes, self.seed = tuple(input_shape), num_classes, seed

    @classmethod
    def from_dataset(cls, space: Space, dataset: torch.utils.data.TensorDataset, names: Sequence[str], *,
                     batch_size: int, num_classes: int, seed: int = 0) -> ArchitectureScorer:
        x, y = dataset.tensors[0][:batch_size], dataset.tensors[1][:batch_size]
        return cls(space, x, y, names, input_shape=tuple(x.shape[1:]), num_classes=num_classes, seed=seed)

    def __call__(self, params: Mapping[str, Any]) -> dict[str, float]:
        model = build(self.space, params, input_shape=self.input_shape, num_classes=self.num_classes, seed=self.seed)
        return compute_proxies(model, self.x, self.y, self.names)
