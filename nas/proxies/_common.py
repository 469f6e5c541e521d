"""Helpers shared by the proxies: a working copy of the model, weight layers, a seeded RNG scope."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

#: Layers whose ``weight`` the gradient proxies score (as NASLib / zero-cost-nas: convolutions and Linear).
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.modules.conv._ConvNd, nn.Linear)

#: Dropout-like modules: switched to eval in the working copy so a proxy is deterministic.
_DROPOUT: tuple[type[nn.Module], ...] = (
    nn.modules.dropout._DropoutNd,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)

PROXY_SEED = 0


def working_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy of ``model`` on ``device`` in train mode with dropout off; ``model`` is not touched.

    Train mode makes BatchNorm normalize with the batch's own statistics (as NASLib computes its proxies on a
    freshly built network, which is in train mode); dropout is switched off so the score does not depend on a
    random mask. The copy's gradients are cleared.
    """
    work = copy.deepcopy(model).to(device)
    work.train()
    for m in work.modules():
        if isinstance(m, _DROPOUT):
            m.eval()
    for p in work.parameters():
        p.grad = None
    return work


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The convolution and Linear layers of ``model`` whose ``weight`` is a trainable parameter."""
    return [
        m
        for m in model.modules()
        if isinstance(m, WEIGHT_LAYERS) and isinstance(getattr(m, "weight", None), nn.Parameter)
    ]


@contextlib.contextmanager
def seeded(device: torch.device, seed: int = PROXY_SEED) -> Iterator[None]:
    """Run the block under ``torch.manual_seed(seed)`` inside ``fork_rng``: global RNG state is restored after."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield
