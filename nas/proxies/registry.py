"""The proxy table: named zero-cost proxies, each ``fn(model, x, y) -> float`` (higher = predicted better).

A zero-cost proxy scores an untrained model from ONE batch ``(x, y)``, before any training, so a search can
rank candidates for the price of a forward (and maybe a backward) pass. Every registered proxy must leave the
model it is given unchanged (weights, gradients, buffers, train/eval mode): the built-in ones work on a deep
copy. Add one with ``@register_proxy("name")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from nas.proxies._common import seeded

ProxyFn = Callable[[nn.Module, Tensor, Tensor], float]

#: Proxy name -> function, in registration order.
PROXIES: dict[str, ProxyFn] = {}


def register_proxy(name: str) -> Callable[[ProxyFn], ProxyFn]:
    """Register ``fn(model, x, y) -> float`` under ``name``; a name already taken raises ``ValueError``."""

    def deco(fn: ProxyFn) -> ProxyFn:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} is already registered (by {PROXIES[name].__module__})")
        PROXIES[name] = fn
        return fn

    return deco


def unregister_proxy(name: str) -> None:
    """Remove a proxy (tests and plugins that register temporary ones); unknown names are ignored."""
    PROXIES.pop(name, None)


def proxy_names() -> list[str]:
    """The registered proxy names, in registration order."""
    return list(PROXIES)


def get_proxy(name: str) -> ProxyFn:
    """The proxy registered as ``name``; ``KeyError`` naming the known proxies otherwise."""
    try:
        return PROXIES[name]
    except KeyError:
        raise KeyError(f"unknown proxy {name!r}; expected one of: {', '.join(PROXIES)}") from None


def compute_proxy(
    name: str, model: nn.Module, x: Tensor, y: Tensor, *, device: str | torch.device = "cpu"
) -> float:
    """Score ``model`` with proxy ``name`` on the batch ``(x, y)``, computed on ``device``.

    ``x`` is a batch of inputs ``(B, *input_shape)``, ``y`` its integer class labels ``(B,)``. Both are moved
    to ``device``; the proxy works on its own copy of the model there, so ``model`` stays where it is and as
    it is. Any randomness inside the model (e.g. stochastic layers) runs under a fixed seed in
    ``torch.random.fork_rng``: the same model and batch give the same score, and the global RNG is untouched.
    Higher = predicted better.
    """
    fn = get_proxy(name)
    dev = torch.device(device)
    with seeded(dev):
        return float(fn(model, x.to(dev), y.to(dev)))


def compute_proxies(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    names: Iterable[str] | None = None,
    *,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """``{name: compute_proxy(name, model, x, y, device=device)}`` for ``names`` (default: every proxy)."""
    return {
        n: compute_proxy(n, model, x, y, device=device) for n in (proxy_names() if names is None else names)
    }
