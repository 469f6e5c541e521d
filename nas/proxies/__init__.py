"""Zero-cost proxies: score an untrained model from one batch, before any training (higher = better).

Built in: ``synflow`` (data-free synaptic flow), ``naswot`` (activation-pattern kernel log-determinant),
``snip`` and ``grad_norm`` (one cross-entropy backward), and ``params`` (the parameter count: the baseline
a proxy has to beat). Each is ``fn(model, x, y) -> float`` and leaves ``model`` unchanged.

    from nas.proxies import compute_proxy, ProxyRanker
    score = compute_proxy("synflow", model, x, y)

:class:`ProxyRanker` collects (score, trained accuracy) pairs during a search and says which proxy to trust.
"""

from __future__ import annotations

from nas.proxies import baseline, gradient, naswot, synflow  # noqa: F401  (registers the built-in proxies)
from nas.proxies.ranking import ProxyRanker, spearman
from nas.proxies.registry import (
    PROXIES,
    ProxyFn,
    compute_proxies,
    compute_proxy,
    get_proxy,
    proxy_names,
    register_proxy,
    unregister_proxy,
)

__all__ = [
    "PROXIES",
    "ProxyFn",
    "ProxyRanker",
    "compute_proxies",
    "compute_proxy",
    "get_proxy",
    "proxy_names",
    "register_proxy",
    "spearman",
    "unregister_proxy",
]
