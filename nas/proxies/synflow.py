"""``synflow``: Synaptic Flow (Tanaka et al., NeurIPS 2020), as zero-cost-nas / NASLib compute it.

The network is linearized: every entry of its ``state_dict`` is replaced by its absolute value, normalization
layers are bypassed (NASLib's ``synflow`` copies the net with ``bn=False``: BatchNorm forwards its input
unchanged), and the input is a single all-ones sample ``(1, *input_shape)``. With ``R`` the sum of the output,

    synflow = sum over parameters θ of |θ ⊙ ∂R/∂θ|

(the parameters that ``R`` does not depend on, such as the bypassed BatchNorm affine ones, add 0; NASLib
sums conv/Linear weights only, so biases, e.g. the classifier's, are the only extra terms here). It is
data-free: ``x`` gives only the input shape, ``y`` is unused. A large score means a large total "flow" of
signal through the weights, which favours wide, deep and well-connected networks; higher = predicted better.

The score spans many orders of magnitude (on NAS-Bench-201 from about 1 for cells whose edges are mostly
``none`` to about 1e50 for all-conv cells); only its order matters for
ranking, and NASLib reports its logarithm. It is computed in float64 where the device supports it (so
products of many weights neither underflow nor overflow early), on a deep copy of the model: the caller's
weights, signs included, are never touched, so there is nothing to restore afterwards.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas.proxies._common import working_copy
from nas.proxies.registry import register_proxy

#: Normalization layers that synflow bypasses (identity): they would undo the linearization.
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
)


def _bypass_norms(model: nn.Module) -> None:
    """Replace every normalization layer of ``model`` (in place) by ``nn.Identity``."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, NORM_LAYERS):
                setattr(parent, name, nn.Identity())


def _float_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


@register_proxy("synflow")
def synflow(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Synaptic flow of ``model`` at an all-ones input shaped like one sample of ``x`` (higher = better)."""
    del y  # data-free
    dtype = _float_dtype(x.device)
    work = working_copy(model, x.device)
    _bypass_norms(work)
    work.to(dtype)
    with torch.no_grad():
        for tensor in work.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    params = [p for p in work.parameters() if p.requires_grad]
    ones = torch.ones((1, *x.shape[1:]), dtype=dtype, device=x.device)
    flow = work(ones).sum()
    grads = torch.autograd.grad(flow, params, allow_unused=True)
    total = torch.zeros((), dtype=dtype, device=x.device)
    for p, g in zip(params, grads, strict=True):
        if g is not None:
            total += (p.detach() * g).abs().sum()
    return float(total)
