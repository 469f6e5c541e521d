"""``naswot``: Neural Architecture Search WithOut Training (Mellor et al., ICML 2021, the paper's v2 score).

Each sample of the batch gets a binary code: one bit per activation unit, 1 where the unit's input is > 0
(for a ReLU: the unit is active). Over all hooked activations,

    K = C·Cᵀ + (1 - C)·(1 - C)ᵀ,    naswot = log|det K|

where ``C`` is the ``(B, units)`` code matrix: ``K[i, j]`` counts the units on which samples i and j agree
(units minus their Hamming distance). A network whose activation patterns tell the inputs apart has a
K close to diagonal and a large log-determinant; higher = predicted better. A batch with repeated inputs
gives a singular K and ``-inf``, as does a network in which no hooked activation sees the input (a
NAS-Bench-201 cell where every path from input to output crosses a ``none`` edge outputs zeros, so every
code row is the same). ``y`` is unused.

The score depends on the batch: its scale grows with the batch size (compare scores of one batch only), and
its ranking with the data. Use real inputs where there are any. Without data, random images whose pixels
share a positive mean (U[0, 1)) rank NAS-Bench-201 cells as NASLib's CIFAR-10 batch does (Spearman ρ 0.80
vs. 0.81 with accuracy), while i.i.d. zero-mean noise ranks them worse (0.74): its samples' codes are
nearly orthogonal for every network. See ``benchmarks/proxy_check.py``.

Hooked modules: every instance of :data:`ACTIVATIONS`. For ReLU the code is the on/off pattern of the
unit; for the smooth activations the cnn and mlp builders offer (SiLU, Hardswish, GELU, Tanh, ...) the code
is the sign of the pre-activation, ``input > 0``: the half-space each unit's input falls in, which is the
same hyperplane partition of input space that ReLU's on/off pattern gives. The codes are read by forward
pre-hooks, before the module runs, so in-place activations are handled. Activations called as functions
(``F.relu``) are not seen; a model without any hooked module raises ``ValueError``.

As in NASLib, the network runs in train mode (BatchNorm uses the batch's statistics), on a deep copy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas.proxies._common import working_copy
from nas.proxies.registry import register_proxy

#: Activation modules whose input sign gives the binary codes.
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Softplus,
    nn.Tanh,
    nn.Hardtanh,
)

_EXACT_F32 = 2**24


def activation_kernel(model: nn.Module, x: Tensor) -> Tensor:
    """The ``(B, B)`` float64 agreement kernel ``K`` of the binary activation codes of ``model`` on ``x``.

    ``model`` runs as given (the caller chooses the copy and mode); hooks are removed afterwards.
    """
    batch = x.shape[0]
    kernel = torch.zeros((batch, batch), dtype=torch.float64, device=x.device)
    seen = 0

    def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
        nonlocal kernel, seen
        flat = args[0].detach().reshape(batch, -1)
        units = flat.shape[1]
        # 0/1 products summed in float32 are exact below 2**24 units per layer; float64 beyond
        codes = (flat > 0).to(torch.float32 if units < _EXACT_F32 else torch.float64)
        agree = (codes @ codes.T).to(torch.float64)
        ones = codes.sum(dim=1, dtype=torch.float64)
        # C·Cᵀ + (1-C)·(1-C)ᵀ = 2·C·Cᵀ - s_i - s_j + units, with s_i the number of 1-bits of sample i
        kernel = kernel + 2.0 * agree - ones[:, None] - ones[None, :] + units
        seen += 1

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, ACTIVATIONS)]
    try:
        if not handles:
            names = ", ".join(t.__name__ for t in ACTIVATIONS)
            raise ValueError(f"naswot: the model has no activation module to hook (one of: {names})")
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if seen == 0:
        raise ValueError("naswot: no hooked activation ran in the forward pass")
    return kernel


@register_proxy("naswot")
def naswot(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """log|det K| of the activation-code kernel of ``model`` on the batch ``x`` (higher = better)."""
    del y  # label-free
    work = working_copy(model, x.device)
    kernel = activation_kernel(work, x)
    return float(torch.linalg.slogdet(kernel.cpu()).logabsdet)
