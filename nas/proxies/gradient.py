"""Gradient proxies from one cross-entropy backward pass: ``snip`` and ``grad_norm``.

Both differentiate the loss ``L = cross_entropy(model(x), y)`` on the batch with respect to the weights of
the convolution and Linear layers (biases, BatchNorm and other parameters are not scored, as in
zero-cost-nas / NASLib). The network runs in train mode (BatchNorm uses the batch's statistics), on a deep
copy, so the caller's model, its ``.grad`` fields included, is left as it was.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.proxies._common import weight_layers, working_copy
from nas.proxies.registry import register_proxy


def weight_gradients(model: nn.Module, x: Tensor, y: Tensor) -> list[tuple[Tensor, Tensor]]:
    """``(W, ∂L/∂W)`` for each conv/Linear weight of a working copy of ``model``, with ``L`` the mean
    cross-entropy of ``model(x)`` against labels ``y``. A weight the loss does not reach gets a zero gradient.
    """
    work = working_copy(model, x.device)
    weights = [m.weight for m in weight_layers(work)]
    if not weights:
        raise ValueError("the model has no convolution or Linear weight to score")
    loss = F.cross_entropy(work(x), y)
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return [
        (w.detach(), torch.zeros_like(w) if g is None else g) for w, g in zip(weights, grads, strict=True)
    ]


def snip_score(pairs: list[tuple[Tensor, Tensor]]) -> float:
    """Σ |W ⊙ ∂L/∂W| over ``pairs`` from :func:`weight_gradients`."""
    return float(sum((w * g).abs().sum(dtype=torch.float64) for w, g in pairs))


def grad_norm_score(pairs: list[tuple[Tensor, Tensor]]) -> float:
    """Σ ‖∂L/∂W‖₂ (Frobenius norm per layer) over ``pairs`` from :func:`weight_gradients`."""
    return float(sum(torch.linalg.vector_norm(g.double()) for _, g in pairs))


@register_proxy("snip")
def snip(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """SNIP connection sensitivity (Lee et al., ICLR 2019): Σ over conv/Linear weights of |W ⊙ ∂L/∂W|.

    How much the loss would change if each connection were removed, summed: a network whose weights matter
    more to the loss at initialization scores higher; higher = predicted better.
    """
    return snip_score(weight_gradients(model, x, y))


@register_proxy("grad_norm")
def grad_norm(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Σ over conv/Linear layers of ‖∂L/∂W‖₂ (Abdelfattah et al., ICLR 2021): the size of the first step a
    gradient method would take; higher = predicted better.
    """
    return grad_norm_score(weight_gradients(model, x, y))
